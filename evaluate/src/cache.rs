//! On-disk cache of extracted features (safetensors), keyed by the model's
//! SHA-256, the split's content fingerprint, the input size and the resize
//! policy: a second evaluation of the same model on the same data reads them
//! back instead of running the encoder again.

use crate::features::Features;
use mixco_data::fsutil::hex;
use mixco_model::{Checkpoint, HostTensor};
use std::path::{Path, PathBuf};

/// `$MIXCO_CACHE/features`, else `$XDG_CACHE_HOME/mixco/features`, else `~/.cache/mixco/features`.
pub fn default_dir() -> PathBuf {
    mixco_data::fsutil::cache_dir("features")
}

/// What identifies a set of features.
pub struct Key {
    pub model_sha256: String,
    pub split_fingerprint: String,
    pub input_size: usize,
    pub resize_policy: String,
}

impl Key {
    fn file(&self, dir: &Path) -> PathBuf {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [&self.model_sha256, &self.split_fingerprint, &self.input_size.to_string(), &self.resize_policy] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        dir.join(format!("{}.safetensors", &hex(&h.finalize())[..32]))
    }
}

/// Cached features, if present and consistent with `n` rows; an unreadable
/// or inconsistent entry is treated as absent (and overwritten later).
pub fn load(dir: &Path, key: &Key, n: usize) -> Option<Features> {
    let path = key.file(dir);
    let ck = Checkpoint::load(&path).ok()?;
    if ck.metadata.get("model_sha256") != Some(&key.model_sha256) || ck.metadata.get("split_fingerprint") != Some(&key.split_fingerprint) {
        return None;
    }
    let t = ck.tensors.get("features")?;
    let (rows, dim) = match t.shape[..] {
        [r, d] => (r, d),
        _ => return None,
    };
    let data = t.as_f32()?.to_vec();
    (rows == n && data.iter().all(|v| v.is_finite())).then_some(Features { data, n, dim })
}

pub fn store(dir: &Path, key: &Key, f: &Features) -> Result<PathBuf, mixco_model::CheckpointError> {
    let mut ck = Checkpoint::default();
    ck.metadata.insert("model_sha256".into(), key.model_sha256.clone());
    ck.metadata.insert("split_fingerprint".into(), key.split_fingerprint.clone());
    ck.metadata.insert("input_size".into(), key.input_size.to_string());
    ck.metadata.insert("resize_policy".into(), key.resize_policy.clone());
    ck.tensors.insert("features".into(), HostTensor::f32(vec![f.n, f.dim], f.data.clone()));
    let path = key.file(dir);
    ck.save(&path)?;
    Ok(path)
}
