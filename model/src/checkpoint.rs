//! mixco checkpoints: one `safetensors` file whose header metadata carries
//! everything needed downstream (architecture, method, hyper-parameters,
//! data, normalisation), so no side files are needed.
//!
//! Tensor layout: the query backbone under torchvision's names
//! (`conv1.weight`, ...), its projection head under `head.`, the momentum
//! (key) encoder under `momentum.`, the MoCo queue as `queue`, optimizer
//! momentum buffers under `optim.`.

use crate::arch::{ArchSpec, HeadSpec, TensorKind, TensorSpec};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "mixco-checkpoint-v1";

/// The largest input side (pixels) an encoder may state: batches of
/// 3 x size x size floats are allocated from it (1024 px: 12 MB an image).
pub const MAX_INPUT_SIZE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    #[error(transparent)]
    Data(#[from] mixco_data::Error),
}

fn invalid(path: &Path, problem: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid { path: path.into(), problem: problem.into() }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A tensor in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl HostTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        HostTensor { shape, data: TensorData::F32(data) }
    }
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> HostTensor {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        HostTensor { shape, data: TensorData::I64(data) }
    }
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

struct View<'a>(&'a HostTensor, Vec<u8>);

impl safetensors::View for View<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        match self.0.data {
            TensorData::F32(_) => safetensors::Dtype::F32,
            TensorData::I64(_) => safetensors::Dtype::I64,
        }
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.1)
    }
    fn data_len(&self) -> usize {
        self.1.len()
    }
}

/// What a model is, read from a checkpoint's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub arch: ArchSpec,
    pub head: HeadSpec,
    pub method: String,
    pub mixco: bool,
    pub input_size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// Typed reads of metadata fields, with errors naming the field.
struct Fields<'a> {
    path: &'a Path,
    meta: &'a BTreeMap<String, String>,
}

impl Fields<'_> {
    fn get(&self, k: &str) -> Result<&String, CheckpointError> {
        self.meta.get(k).ok_or_else(|| invalid(self.path, format!("metadata field `{k}` is missing")))
    }
    fn num(&self, k: &str) -> Result<usize, CheckpointError> {
        let v = self.get(k)?;
        v.parse().map_err(|_| invalid(self.path, format!("metadata field `{k}` is not a number: `{v}`")))
    }
    fn triple(&self, k: &str) -> Result<[f32; 3], CheckpointError> {
        let v = self.get(k)?;
        serde_json::from_str(v).map_err(|_| invalid(self.path, format!("metadata field `{k}` is not a list of 3 numbers: `{v}`")))
    }
}

impl ModelConfig {
    /// Writes the fields into checkpoint metadata (with the checkpoint `format`).
    pub fn to_metadata(&self, meta: &mut BTreeMap<String, String>) {
        meta.insert("format".into(), FORMAT.into());
        self.write_fields(meta);
    }

    /// The model's fields, as checkpoints and exported ONNX encoders carry them.
    pub fn write_fields(&self, meta: &mut BTreeMap<String, String>) {
        meta.insert("arch".into(), self.arch.name());
        meta.insert("width".into(), self.arch.width.to_string());
        meta.insert("stem".into(), self.arch.stem.to_string());
        meta.insert("head_hidden".into(), self.head.hidden.to_string());
        meta.insert("head_dim".into(), self.head.out_dim.to_string());
        meta.insert("method".into(), self.method.clone());
        meta.insert("mixco".into(), self.mixco.to_string());
        meta.insert("input_size".into(), self.input_size.to_string());
        meta.insert("mean".into(), serde_json::to_string(&self.mean).unwrap());
        meta.insert("std".into(), serde_json::to_string(&self.std).unwrap());
    }

    /// Reads a checkpoint's metadata.
    pub fn from_metadata(path: &Path, meta: &BTreeMap<String, String>) -> Result<ModelConfig, CheckpointError> {
        match meta.get("format") {
            Some(f) if f == FORMAT => {}
            Some(f) => return Err(invalid(path, format!("unsupported checkpoint format `{f}` (expected {FORMAT})"))),
            None => return Err(invalid(path, "no mixco metadata (field `format` missing): not a mixco checkpoint")),
        }
        let (arch, input_size, mean, std) = Self::encoder_fields(path, meta)?;
        let f = Fields { path, meta };
        let feat = arch.backbone().feature_dim;
        Ok(ModelConfig {
            arch,
            head: HeadSpec { in_dim: feat, hidden: f.num("head_hidden")?, out_dim: f.num("head_dim")? },
            method: f.get("method")?.clone(),
            mixco: f.get("mixco")? == "true",
            input_size,
            mean,
            std,
        })
    }

    /// What any encoder's metadata states (checkpoints, and ONNX encoders
    /// exported before the head fields were written into them): the
    /// architecture, input size, mean and std.
    pub fn encoder_fields(path: &Path, meta: &BTreeMap<String, String>) -> Result<(ArchSpec, usize, [f32; 3], [f32; 3]), CheckpointError> {
        let f = Fields { path, meta };
        let arch_name = f.get("arch")?;
        let depth = arch_name.parse().map_err(|_| invalid(path, format!("metadata field `arch`: unknown architecture `{arch_name}`")))?;
        let stem = f.get("stem")?;
        let stem = stem.parse().map_err(|_| invalid(path, format!("metadata field `stem`: unknown stem `{stem}`")))?;
        let arch = ArchSpec { depth, width: f.num("width")?, stem };
        arch.validate().map_err(|e| invalid(path, format!("metadata: {e}")))?;
        let input_size = f.num("input_size")?;
        if !(1..=MAX_INPUT_SIZE).contains(&input_size) {
            return Err(invalid(path, format!("metadata field `input_size`: {input_size} px is outside 1..={MAX_INPUT_SIZE}")));
        }
        let (mean, std) = (f.triple("mean")?, f.triple("std")?);
        // A zero or non-finite std makes every feature NaN or constant.
        if let Some(v) = mean.iter().find(|v| !v.is_finite()) {
            return Err(invalid(path, format!("metadata field `mean`: {v} is not a finite number")));
        }
        if let Some(v) = std.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(invalid(path, format!("metadata field `std`: {v} is not a positive finite number")));
        }
        Ok((arch, input_size, mean, std))
    }

    /// Backbone and head tensors, as stored under `prefix`.
    pub fn tensors(&self, prefix: &str) -> Vec<TensorSpec> {
        let mut t = self.arch.backbone().tensors();
        t.extend(self.head.tensors("head."));
        for s in &mut t {
            s.name = format!("{prefix}{}", s.name);
        }
        t
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub metadata: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, HostTensor>,
}

/// safetensors writes the metadata from a `HashMap`, so one checkpoint came
/// out with its header keys in a new order on every save. The header again
/// through serde_json (whose maps sort their keys; same compact form, so the
/// same length and data offsets) makes equal checkpoints equal bytes.
fn sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(n) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize) else { return bytes };
    let Some(header) = bytes.get(8..8 + n) else { return bytes };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else { return bytes };
    let mut sorted = serde_json::to_vec(&value).unwrap_or_default();
    if sorted.len() <= n {
        sorted.resize(n, b' '); // safetensors pads the header with spaces
        bytes[8..8 + n].copy_from_slice(&sorted);
    }
    bytes
}

impl Checkpoint {
    /// Serialises to safetensors and writes atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        mixco_data::fsutil::write_atomic(path, &self.to_bytes(path)?)?;
        Ok(())
    }

    /// The safetensors bytes (`path` names the file in errors).
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, CheckpointError> {
        let views: Vec<(String, View)> = self.tensors.iter().map(|(k, t)| (k.clone(), View(t, t.bytes()))).collect();
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| invalid(path, format!("cannot serialise: {e}")))?;
        Ok(sorted_header(bytes))
    }

    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = mixco_data::fsutil::read_file(path)?;
        Self::from_bytes(path, &bytes)
    }

    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        Self::from_bytes_filtered(path, bytes, |_| true)
    }

    /// The query encoder only (backbone and head): what export and evaluation
    /// need, without copying the key encoder, queue and optimizer state.
    pub fn encoder_from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        Self::from_bytes_filtered(path, bytes, |name| {
            !(name.starts_with("momentum.") || name.starts_with("optim.") || name == "queue")
        })
    }

    fn from_bytes_filtered(path: &Path, bytes: &[u8], keep: impl Fn(&str) -> bool) -> Result<Checkpoint, CheckpointError> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| invalid(path, format!("not a safetensors file: {e}")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| invalid(path, format!("not a safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if !keep(&name) {
                continue;
            }
            let shape = view.shape().to_vec();
            let raw = view.data();
            let data = match view.dtype() {
                safetensors::Dtype::F32 => TensorData::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
                safetensors::Dtype::I64 => TensorData::I64(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
                d => return Err(invalid(path, format!("tensor `{name}` has dtype {d:?}; expected F32 or I64"))),
            };
            tensors.insert(name, HostTensor { shape, data });
        }
        Ok(Checkpoint { metadata, tensors })
    }

    pub fn config(&self, path: &Path) -> Result<ModelConfig, CheckpointError> {
        ModelConfig::from_metadata(path, &self.metadata)
    }

    /// Checks that every tensor of `specs` is present with its shape and
    /// dtype, and that float tensors hold no NaN or infinity.
    /// Every tensor of `specs` present with its shape and dtype, finite, and
    /// batch-norm variances not negative.
    pub fn check_tensors(&self, path: &Path, specs: &[TensorSpec]) -> Result<(), CheckpointError> {
        for s in specs {
            let t = self.tensors.get(&s.name).ok_or_else(|| invalid(path, format!("tensor `{}` is missing", s.name)))?;
            if t.shape != s.shape {
                return Err(invalid(path, format!("tensor `{}` has shape {:?}, expected {:?}", s.name, t.shape, s.shape)));
            }
            match (&t.data, s.kind) {
                (TensorData::I64(_), TensorKind::Counter) => {}
                (TensorData::F32(v), TensorKind::Param | TensorKind::Buffer) => {
                    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                        return Err(invalid(path, format!("tensor `{}` holds a non-finite value ({}) at index {i}", s.name, v[i])));
                    }
                    // A negative variance makes batch norm's sqrt NaN.
                    if s.name.ends_with("running_var") {
                        if let Some(i) = v.iter().position(|x| *x < 0.0) {
                            return Err(invalid(path, format!("tensor `{}` holds a negative variance ({}) at index {i}", s.name, v[i])));
                        }
                    }
                }
                _ => return Err(invalid(path, format!("tensor `{}` has the wrong dtype", s.name))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ModelConfig {
        let arch = ArchSpec { depth: crate::Depth::Resnet10, width: 4, stem: crate::Stem::Cifar };
        ModelConfig {
            arch,
            head: HeadSpec { in_dim: 32, hidden: 32, out_dim: 8 },
            method: "moco-v2".into(),
            mixco: true,
            input_size: 32,
            mean: [0.5, 0.4, 0.3],
            std: [0.2, 0.2, 0.25],
        }
    }

    fn filled(cfg: &ModelConfig) -> Checkpoint {
        let mut ck = Checkpoint::default();
        cfg.to_metadata(&mut ck.metadata);
        for s in cfg.tensors("") {
            let n = s.shape.iter().product();
            let t = match s.kind {
                TensorKind::Counter => HostTensor::i64(s.shape, vec![3; n]),
                _ => HostTensor::f32(s.shape, (0..n).map(|i| i as f32 * 0.01).collect()),
            };
            ck.tensors.insert(s.name, t);
        }
        ck
    }

    #[test]
    fn round_trip_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.safetensors");
        let cfg = config();
        let ck = filled(&cfg);
        ck.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, ck);
        assert_eq!(back.config(&path).unwrap(), cfg);
        back.check_tensors(&path, &cfg.tensors("")).unwrap();
    }

    #[test]
    fn equal_checkpoints_are_equal_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ck = Checkpoint::default();
        for i in 0..40 {
            ck.metadata.insert(format!("key{i}"), format!("value {i}"));
        }
        ck.tensors.insert("w".into(), HostTensor::f32(vec![2], vec![1.0, 2.0]));
        let saves: Vec<Vec<u8>> = (0..5)
            .map(|i| {
                let path = dir.path().join(format!("{i}.safetensors"));
                ck.save(&path).unwrap();
                std::fs::read(&path).unwrap()
            })
            .collect();
        assert!(saves.iter().all(|b| b == &saves[0]), "a HashMap's order leaked into the bytes");
        assert_eq!(Checkpoint::from_bytes(Path::new("x"), &saves[0]).unwrap(), ck);
    }

    #[test]
    fn bad_checkpoints_name_the_problem() {
        let p = Path::new("m.safetensors");
        let cfg = config();
        let mut ck = filled(&cfg);
        ck.tensors.remove("layer2.0.bn1.running_var");
        let e = ck.check_tensors(p, &cfg.tensors("")).unwrap_err().to_string();
        assert_eq!(e, "m.safetensors: tensor `layer2.0.bn1.running_var` is missing");

        let mut ck = filled(&cfg);
        ck.tensors.insert("conv1.weight".into(), HostTensor::f32(vec![4, 3, 7, 7], vec![0.0; 588]));
        let e = ck.check_tensors(p, &cfg.tensors("")).unwrap_err().to_string();
        assert_eq!(e, "m.safetensors: tensor `conv1.weight` has shape [4, 3, 7, 7], expected [4, 3, 3, 3]");

        let mut ck = filled(&cfg);
        ck.tensors.insert("head.2.bias".into(), HostTensor::f32(vec![8], vec![0., 0., f32::NAN, 0., 0., 0., 0., 0.]));
        let e = ck.check_tensors(p, &cfg.tensors("")).unwrap_err().to_string();
        assert_eq!(e, "m.safetensors: tensor `head.2.bias` holds a non-finite value (NaN) at index 2");

        let mut ck = filled(&cfg);
        ck.metadata.insert("arch".into(), "vgg16".into());
        assert_eq!(ck.config(p).unwrap_err().to_string(), "m.safetensors: metadata field `arch`: unknown architecture `vgg16`");
        ck.metadata.remove("format");
        assert!(ck.config(p).unwrap_err().to_string().contains("not a mixco checkpoint"));

        let e = Checkpoint::from_bytes(p, b"definitely not safetensors").unwrap_err().to_string();
        assert!(e.starts_with("m.safetensors: not a safetensors file"), "{e}");
    }
}
