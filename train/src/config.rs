//! Every setting of a training run. Stored as JSON in each checkpoint's
//! metadata (`hparams`) and readable from a TOML file (`--config`).

pub use mixco_model::Method;
use mixco_model::{Depth, Stem};
use serde::{Deserialize, Serialize};

/// Settings that do not fit together (or the data): which setting, and the
/// message, which starts with its name (`batch-size 3: ...`); the CLI shows
/// it as the flag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError { setting, message: message.into() }
    }
}

/// A TOML layer of settings that does not parse, or holds what is not a setting.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct LayerError {
    /// Its index among the layers.
    pub layer: usize,
    pub source: toml::de::Error,
}

/// The most epochs (and warm-up epochs) a run may have.
pub const MAX_EPOCHS: usize = 100_000;
/// The largest MoCo queue (MoCo's own is 65,536 keys).
pub const MAX_QUEUE: usize = 1 << 20;
/// The widest projection head.
pub const MAX_HEAD: usize = 1 << 14;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub method: Method,
    pub mixco: bool,
    pub arch: Depth,
    /// Channels of the first stage (64 = torchvision).
    pub width: usize,
    pub stem: Stem,
    /// Projection head hidden size (default: the feature dimension).
    pub head_hidden: Option<usize>,
    pub head_dim: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub warmup_epochs: usize,
    /// Contrastive temperature (default 0.2 for MoCo-v2, 0.5 for SimCLR).
    pub temperature: Option<f64>,
    /// β: weight of the MixCo loss.
    pub mix_weight: f64,
    /// Ramp β linearly from 0 over this many epochs (0 = full β from the start).
    pub mix_warmup_epochs: usize,
    /// MixCo temperature (default 0.05 for MoCo-v2, 0.5 for SimCLR).
    pub mix_temperature: Option<f64>,
    /// MoCo queue length K.
    pub queue_size: usize,
    /// MoCo key-encoder momentum m.
    pub key_momentum: f64,
    /// MoCo's groups for batch-norm statistics over the global batch
    /// (shuffle-BN on one device); each of W ranks computes bn_splits / W.
    pub bn_splits: usize,
    /// SimCLR's batch-norm groups over the global batch: 1 = the whole
    /// batch (one process); W ranks each normalise their own share, so W or
    /// a multiple (`mixco train --nproc-per-node` sets W if not given).
    pub simclr_bn_splits: usize,
    pub seed: u64,
    /// Model input size (default: the dataset's image size).
    pub input_size: Option<usize>,
    /// Use only the first N training images.
    pub train_limit: Option<usize>,
    /// kNN monitor every N epochs (0 = never).
    pub knn_every: usize,
    pub knn_k: usize,
    pub knn_temperature: f64,
    /// Training images used as the kNN memory bank (default: all).
    pub knn_train_limit: Option<usize>,
    /// Keep an `epoch-NNNN.safetensors` every N epochs (0 = only last/final).
    pub save_every: usize,
    /// Channels-last (NHWC) activations: faster convolutions, same results
    /// up to rounding.
    pub channels_last: bool,
    /// Mixed precision: convolutions and activations in bfloat16, parameters,
    /// batch-norm statistics, head and losses in float32 (default: on CUDA
    /// only).
    pub bf16: Option<bool>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            method: Method::MocoV2,
            mixco: false,
            arch: Depth::Resnet18,
            width: 64,
            stem: Stem::Cifar,
            head_hidden: None,
            head_dim: 128,
            epochs: 200,
            batch_size: 256,
            lr: 0.06,
            momentum: 0.9,
            weight_decay: 5e-4,
            warmup_epochs: 0,
            temperature: None,
            mix_weight: 1.0,
            mix_warmup_epochs: 0,
            mix_temperature: None,
            queue_size: 4096,
            key_momentum: 0.99,
            bn_splits: 8,
            simclr_bn_splits: 1,
            seed: 0,
            input_size: None,
            train_limit: None,
            knn_every: 1,
            knn_k: 200,
            knn_temperature: 0.1,
            knn_train_limit: None,
            save_every: 0,
            channels_last: true,
            bf16: None,
        }
    }
}

impl TrainConfig {
    pub fn temperature(&self) -> f64 {
        self.temperature.unwrap_or(match self.method {
            Method::MocoV2 => 0.2,
            Method::Simclr => 0.5,
        })
    }

    pub fn mix_temperature(&self) -> f64 {
        self.mix_temperature.unwrap_or(match self.method {
            Method::MocoV2 => 0.05,
            Method::Simclr => 0.5,
        })
    }

    /// Mixed precision where not set: on CUDA only.
    pub fn effective_bf16(&self, device: tch::Device) -> bool {
        self.bf16.unwrap_or(device.is_cuda())
    }

    /// Batch-norm groups over the global batch.
    pub fn effective_bn_splits(&self) -> usize {
        match self.method {
            Method::MocoV2 => self.bn_splits.max(1),
            Method::Simclr => self.simclr_bn_splits.max(1),
        }
    }

    /// The setting that holds `effective_bn_splits`.
    pub fn bn_splits_setting(&self) -> &'static str {
        match self.method {
            Method::MocoV2 => "bn-splits",
            Method::Simclr => "simclr-bn-splits",
        }
    }

    /// Checks that `world` ranks can share the global batch: each rank takes
    /// batch-size / world images (an even share with MixCo) and
    /// bn-splits / world of the batch-norm groups.
    pub fn validate_world(&self, world: usize) -> Result<(), ConfigError> {
        let (b, s) = (self.batch_size, self.effective_bn_splits());
        let bad = |setting: &'static str, message: String| Err(ConfigError::new(setting, message));
        if !b.is_multiple_of(world) {
            return bad("batch-size", format!("batch-size {b} is the global batch: it must be divisible by the {world} ranks"));
        }
        if self.mixco && !(b / world).is_multiple_of(2) {
            return bad("batch-size", format!("batch-size {b}: each of the {world} ranks mixes the two halves of its {} images, so batch-size / ranks must be even", b / world));
        }
        if !s.is_multiple_of(world) {
            let setting = self.bn_splits_setting();
            return bad(setting, format!("{setting} {s}: each of the {world} ranks normalises its own share of the batch, so the batch-norm groups must be a multiple of {world}"));
        }
        Ok(())
    }

    /// Checks the settings against each other; the error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let b = self.batch_size;
        let bad = |setting: &'static str, message: String| Err(ConfigError::new(setting, message));
        if b < 2 {
            return bad("batch-size", format!("batch-size {b}: must be at least 2"));
        }
        if self.mixco && !b.is_multiple_of(2) {
            return bad("batch-size", format!("batch-size {b}: MixCo mixes the two halves of the batch, so it must be even"));
        }
        if self.epochs == 0 {
            return bad("epochs", "epochs: must be at least 1".into());
        }
        // Stated limits, so that step arithmetic never overflows (in release
        // builds it once wrapped silently) and nothing huge is allocated.
        for (name, v) in [("epochs", self.epochs), ("warmup-epochs", self.warmup_epochs), ("mix-warmup-epochs", self.mix_warmup_epochs)] {
            if v > MAX_EPOCHS {
                return bad(name, format!("{name} {v}: at most {MAX_EPOCHS}"));
            }
        }
        for (name, v, max) in [("queue-size", self.queue_size, MAX_QUEUE), ("head-dim", self.head_dim, MAX_HEAD), ("head-hidden", self.head_hidden.unwrap_or(1), MAX_HEAD), ("knn-k", self.knn_k, 100_000)] {
            if v == 0 || v > max {
                return bad(name, format!("{name} {v}: must be 1 to {max}"));
            }
        }
        for (name, v) in [("knn-train-limit", self.knn_train_limit), ("train-limit", self.train_limit)] {
            if v == Some(0) {
                return bad(name, format!("{name} 0: must be at least 1 (leave it out for no limit)"));
            }
        }
        if let Some(s) = self.input_size.filter(|s| !(1..=mixco_model::checkpoint::MAX_INPUT_SIZE).contains(s)) {
            return bad("input-size", format!("input-size {s}: must be 1 to {} px", mixco_model::checkpoint::MAX_INPUT_SIZE));
        }
        for (name, v) in [("lr", self.lr), ("temperature", self.temperature()), ("mix-temperature", self.mix_temperature()), ("knn-temperature", self.knn_temperature)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(name, format!("{name} {v}: must be positive"));
            }
        }
        for (name, v) in [("momentum", self.momentum), ("weight-decay", self.weight_decay), ("mix-weight", self.mix_weight)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, format!("{name} {v}: must be a finite number, 0 or more"));
            }
        }
        if !(0.0..1.0).contains(&self.key_momentum) {
            return bad("key-momentum", format!("key-momentum {}: must be in [0, 1)", self.key_momentum));
        }
        let (s, setting) = (self.effective_bn_splits(), self.bn_splits_setting());
        if !b.is_multiple_of(s) {
            return bad("batch-size", format!("batch-size {b} is not divisible by {setting} {s}"));
        }
        if self.mixco && !(b / 2).is_multiple_of(s) {
            return bad("batch-size", format!("batch-size {b}: the mixed half-batch {} is not divisible by {setting} {s}", b / 2));
        }
        if self.method == Method::MocoV2 {
            if self.queue_size < b {
                return bad("queue-size", format!("queue-size {} is smaller than batch-size {b}", self.queue_size));
            }
        }
        if let Err(e) = (mixco_model::ArchSpec { depth: self.arch, width: self.width, stem: self.stem }).validate() {
            return bad("width", e.to_string());
        }
        Ok(())
    }

    pub fn from_toml(text: &str) -> Result<TrainConfig, toml::de::Error> {
        toml::from_str(text)
    }

    /// Settings from TOML layers, each later one overriding earlier ones key
    /// by key (an experiment's common settings, then one run's). Each layer
    /// must hold settings only; the error says which layer it is in.
    /// `from_toml_layers` of the files at `paths`; errors name the file.
    pub fn from_toml_files(paths: &[std::path::PathBuf]) -> Result<TrainConfig, ConfigFileError> {
        let file_error = |path: &std::path::Path, problem: String| ConfigFileError { path: path.into(), problem };
        let texts = paths.iter().map(|p| std::fs::read_to_string(p).map_err(|e| file_error(p, e.to_string()))).collect::<Result<Vec<_>, _>>()?;
        let layers: Vec<&str> = texts.iter().map(String::as_str).collect();
        TrainConfig::from_toml_layers(&layers).map_err(|e| file_error(paths.get(e.layer).map_or(std::path::Path::new("--config"), |p| p), e.to_string()))
    }

    pub fn from_toml_layers(layers: &[&str]) -> Result<TrainConfig, LayerError> {
        let mut merged = toml::Table::new();
        for (layer, text) in layers.iter().enumerate() {
            let table: toml::Table = toml::from_str(text).map_err(|source| LayerError { layer, source })?;
            toml::Value::Table(table.clone()).try_into::<TrainConfig>().map_err(|source| LayerError { layer, source })?;
            merged.extend(table);
        }
        toml::Value::Table(merged).try_into().map_err(|source| LayerError { layer: layers.len().saturating_sub(1), source })
    }
}

/// A settings file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ConfigFileError {
    pub path: std::path::PathBuf,
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_override_earlier_ones_key_by_key() {
        let c = TrainConfig::from_toml_layers(&["arch = \"resnet18\"\nwidth = 16\nepochs = 3\n", "epochs = 10\nmixco = true\n"]).unwrap();
        assert_eq!((c.arch, c.width, c.epochs, c.mixco), (Depth::Resnet18, 16, 10, true));
        assert_eq!(TrainConfig::from_toml_layers(&[]).unwrap(), TrainConfig::default());
        let e = TrainConfig::from_toml_layers(&["epochs = 3\n", "batch_sise = 8\n"]).unwrap_err();
        assert!(e.layer == 1 && e.to_string().contains("batch_sise"), "{e}");
        assert_eq!(TrainConfig::from_toml_layers(&["epochs = [\n"]).unwrap_err().layer, 0);
    }
}
