use mixco_model::CheckpointError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Data(#[from] mixco_data::Error),
    #[error(transparent)]
    Dist(#[from] crate::dist::DistError),
    #[error("loss became {value} at step {step} (epoch {epoch}); training stopped{}", last_good.as_ref().map(|p| format!(". The last good checkpoint is {}", p.display())).unwrap_or_else(|| ". No checkpoint had been written yet".into()))]
    NonFinite { value: f64, step: usize, epoch: usize, last_good: Option<PathBuf> },
    #[error("{}: {holder} is training into this folder now (its lock file is .mixco.lock); wait for it, stop it, or choose another output folder", dir.display())]
    Busy { dir: PathBuf, holder: String },
    /// A new run's folder holds another run's files (the CLI says how to
    /// resume it, overwrite it, or choose another folder).
    #[error("{} already holds a run (log.jsonl, checkpoints)", dir.display())]
    HoldsRun { dir: PathBuf },
}
