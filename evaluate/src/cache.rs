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

/// What the cache holds for a key.
pub enum Lookup {
    Hit(Features),
    Miss,
    /// An entry that cannot be used (why, with its path): recomputed.
    Bad(String),
}

/// Cached features for `n` rows of `dim` values each (`dim` 0: not known
/// before a run). Every entry is validated on read: one that is unreadable,
/// of another shape or holding non-finite values is `Bad`, never used (an
/// entry rewritten with an extra column once panicked in the probe).
pub fn load(dir: &Path, key: &Key, n: usize, dim: usize) -> Lookup {
    let path = key.file(dir);
    if std::fs::symlink_metadata(&path).is_err() {
        return Lookup::Miss;
    }
    let bad = |why: String| Lookup::Bad(format!("{}: {why}", path.display()));
    let ck = match Checkpoint::load(&path) {
        Ok(ck) => ck,
        Err(e) => return bad(e.to_string()),
    };
    if ck.metadata.get("model_sha256") != Some(&key.model_sha256) || ck.metadata.get("split_fingerprint") != Some(&key.split_fingerprint) {
        return bad("its metadata names another model or split".into());
    }
    let Some(t) = ck.tensors.get("features") else { return bad("no `features` tensor".into()) };
    let (rows, cols) = match t.shape[..] {
        [r, d] => (r, d),
        _ => return bad(format!("features of shape {:?}, not (rows, dim)", t.shape)),
    };
    let Some(data) = t.as_f32() else { return bad("features are not float32".into()) };
    if rows != n || cols == 0 || (dim > 0 && cols != dim) || data.len() != rows * cols {
        return bad(format!("{rows} x {cols} features, expected {n} x {}", if dim > 0 { dim.to_string() } else { "D".into() }));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return bad("a non-finite feature".into());
    }
    Lookup::Hit(Features { data: data.to_vec(), n, dim: cols })
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
