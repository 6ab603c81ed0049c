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
}
