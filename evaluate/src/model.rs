//! An ONNX encoder and what its metadata says about it.

use mixco_data::fsutil::{read_file, sha256_hex};
use mixco_export::proto::ModelProto;
use mixco_model::Checkpoint;
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Data(#[from] mixco_data::Error),
    #[error(transparent)]
    Checkpoint(#[from] mixco_model::CheckpointError),
    #[error(transparent)]
    Export(#[from] mixco_export::ExportError),
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    /// How to feed the model or read it is unknown or contradicts the graph.
    #[error("{}: {problem}", path.display())]
    Feed { path: PathBuf, problem: FeedProblem },
}

/// What [`Overrides`] lack or get wrong for a model.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FeedProblem {
    #[error("output `{given}` is none of the model's outputs ({})", outputs.join(", "))]
    UnknownOutput { given: String, outputs: Vec<String> },
    #[error("several outputs ({}); say which one gives the features", .0.join(", "))]
    SeveralOutputs(Vec<String>),
    #[error("exported by mixco: it normalises inside the graph and states its input size; an input size, mean or std is for foreign models")]
    OverridesMixco,
    #[error("not exported by mixco (no mixco metadata) and its input size is not fixed in the graph: its input size (and mean, std) must be given")]
    NoInputSize,
    #[error("input size {given}: the graph's input is fixed at {fixed}x{fixed}")]
    InputSizeFixed { given: usize, fixed: usize },
    #[error("not exported by mixco: the normalisation it was trained with (mean and std) must be given")]
    NoNormalisation,
    #[error("std values must be positive finite numbers, and mean values finite")]
    NonPositiveStd,
    #[error("input size {0} px: it must be 1 to {max} px (mixco's limit: batches of 3 x size x size floats are allocated from it)", max = mixco_model::checkpoint::MAX_INPUT_SIZE)]
    InputSize(usize),
}

pub struct EncoderModel {
    /// A label for tables: the file name.
    pub name: String,
    pub bytes: Vec<u8>,
    /// SHA-256 of the ONNX bytes (the feature cache key).
    pub sha256: String,
    pub metadata: BTreeMap<String, String>,
    pub input_size: usize,
    /// Known from the graph or metadata; 0 when only a run tells.
    pub feature_dim: usize,
    /// The graph's image input and the output used as features.
    pub input: String,
    pub output: String,
    /// Host-side (mean, std) normalisation for foreign models; mixco's
    /// encoders normalise inside the graph.
    pub normalise: Option<([f32; 3], [f32; 3])>,
    /// The output keeps spatial dimensions (N, C, H, W): features are its
    /// mean over H x W (global average pooling), C per image.
    pub spatial: bool,
    /// External-data files the graph names (`location`, bytes), read from
    /// the model's own folder and handed to ONNX Runtime from memory.
    pub external: Vec<(String, std::sync::Arc<[u8]>)>,
}

/// The files that `graph`'s external-data initializers name, read from the
/// folder of the model at `path` (ONNX Runtime given the bytes alone would
/// resolve them against the current folder: a hostile model could read
/// `./secret.bin` into its features). A location that is absolute, climbs
/// out with `..`, or leads out through a link is refused.
fn external_files(path: &Path, graph: &mixco_export::proto::GraphProto) -> Result<Vec<(String, std::sync::Arc<[u8]>)>, ModelError> {
    let invalid = |problem: String| ModelError::Invalid { path: path.into(), problem };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut out: Vec<(String, std::sync::Arc<[u8]>)> = Vec::new();
    for t in graph.initializer.iter().filter(|t| t.data_location == 1) {
        let location = t.external_data.iter().find(|e| e.key == "location").map(|e| e.value.clone());
        let location = location.ok_or_else(|| invalid(format!("initializer `{}` is stored externally without a location", t.name)))?;
        if out.iter().any(|(n, _)| *n == location) {
            continue;
        }
        let rel = Path::new(&location);
        let plain = !rel.is_absolute() && rel.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        let file = dir.join(rel);
        let inside = plain && file.canonicalize().ok().zip(dir.canonicalize().ok()).is_some_and(|(f, d)| f.starts_with(&d) && f.is_file());
        if !inside {
            return Err(invalid(format!(
                "initializer `{}` keeps its data in `{location}`, which is not a file inside the model's folder {}; refused",
                t.name,
                dir.display()
            )));
        }
        out.push((location, read_file(&file)?.into()));
    }
    Ok(out)
}

/// What the command line says about a model that mixco did not export.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub input_size: Option<usize>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub output: Option<String>,
}

impl EncoderModel {
    /// Reads an `.onnx` file, or exports a `.safetensors` checkpoint on the fly.
    pub fn load(path: &Path) -> Result<EncoderModel, ModelError> {
        Self::load_with(path, &Overrides::default())
    }

    /// Like [`load`](Self::load), with flags for foreign ONNX models.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<EncoderModel, ModelError> {
        let bytes = read_file(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let sha = sha256_hex(&bytes);
            let ck = Checkpoint::encoder_from_bytes(path, &bytes)?;
            let exported = mixco_export::export(&ck, path, &sha, &Default::default())?;
            return Self::from_onnx_with(path, name, exported.bytes, overrides);
        }
        Self::from_onnx_with(path, name, bytes, overrides)
    }

    pub fn from_onnx(path: &Path, name: String, bytes: Vec<u8>) -> Result<EncoderModel, ModelError> {
        Self::from_onnx_with(path, name, bytes, &Overrides::default())
    }

    pub fn from_onnx_with(path: &Path, name: String, bytes: Vec<u8>, ov: &Overrides) -> Result<EncoderModel, ModelError> {
        let invalid = |problem: String| ModelError::Invalid { path: path.into(), problem };
        let feed = |problem: FeedProblem| ModelError::Feed { path: path.into(), problem };
        let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| invalid(format!("not an ONNX model: {e}")))?;
        if proto.graph.is_none() {
            return Err(invalid("not an ONNX model: it has no graph".into()));
        }
        let metadata: BTreeMap<String, String> = proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        let graph = proto.graph.as_ref().unwrap();
        let initialisers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<_> = graph.input.iter().filter(|i| !initialisers.contains(i.name.as_str())).collect();
        let [input] = inputs.as_slice() else {
            return Err(invalid(format!("the graph has {} inputs; an image encoder takes one (N, 3, H, W)", inputs.len())));
        };
        let dims = |v: &mixco_export::proto::ValueInfoProto| -> Vec<Option<i64>> {
            v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()).and_then(|t| t.shape.as_ref()).map(|s| s.dim.iter().map(|d| d.dim_value).collect()).unwrap_or_default()
        };
        let in_dims = dims(input);
        if !in_dims.is_empty() && (in_dims.len() != 4 || in_dims[1].is_some_and(|c| c != 3)) {
            return Err(invalid(format!("input `{}` has shape {in_dims:?}; an image encoder takes (N, 3, H, W)", input.name)));
        }
        let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        if outputs.is_empty() {
            return Err(invalid("the graph has no outputs".into()));
        }
        let output = match &ov.output {
            Some(o) if outputs.contains(&o.as_str()) => o.clone(),
            Some(o) => return Err(feed(FeedProblem::UnknownOutput { given: o.clone(), outputs: outputs.iter().map(|s| s.to_string()).collect() })),
            None if outputs.contains(&"features") => "features".to_string(),
            None if outputs.len() == 1 => outputs[0].to_string(),
            None => return Err(feed(FeedProblem::SeveralOutputs(outputs.iter().map(|s| s.to_string()).collect()))),
        };
        let external = external_files(path, graph)?;
        // The cache key covers the external data too.
        let sha256 = match external.is_empty() {
            true => sha256_hex(&bytes),
            false => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(&bytes);
                for (name, data) in &external {
                    h.update(name.as_bytes());
                    h.update(data);
                }
                mixco_data::fsutil::hex(&h.finalize())
            }
        };
        if proto.producer_name == "mixco" || metadata.contains_key("mixco_version") {
            let num = |k: &str| -> Result<usize, ModelError> {
                metadata.get(k).ok_or_else(|| invalid(format!("ONNX metadata has no `{k}`"))).and_then(|v| v.parse().map_err(|_| invalid(format!("ONNX metadata `{k}` is not a number"))))
            };
            if ov.mean.is_some() || ov.std.is_some() || ov.input_size.is_some() {
                return Err(feed(FeedProblem::OverridesMixco));
            }
            let feature_dim = if output == "features" { num("feature_dim")? } else { 0 };
            // Its architecture, input size and normalisation, each bounded (a
            // 134-byte model once claimed 100,000 px).
            let (_, input_size, _, _) = mixco_model::ModelConfig::encoder_fields(path, &metadata)?;
            return Ok(EncoderModel { name, sha256, bytes, metadata, input_size, feature_dim, input: input.name.clone(), output, normalise: None, spatial: false, external });
        }
        // A foreign model: the flags (or the graph's static shape) say what it needs.
        let static_size = match (in_dims.get(2).copied().flatten(), in_dims.get(3).copied().flatten()) {
            (Some(h), Some(w)) if h == w && h > 0 => Some(usize::try_from(h).unwrap_or(usize::MAX)),
            _ => None,
        };
        let input_size = ov.input_size.or(static_size).ok_or_else(|| feed(FeedProblem::NoInputSize))?;
        if !(1..=mixco_model::checkpoint::MAX_INPUT_SIZE).contains(&input_size) {
            return Err(feed(FeedProblem::InputSize(input_size)));
        }
        if let Some(s) = static_size.filter(|&s| s != input_size) {
            return Err(feed(FeedProblem::InputSizeFixed { given: input_size, fixed: s }));
        }
        let normalise = match (ov.mean, ov.std) {
            (Some(m), Some(s)) => (m, s),
            _ => return Err(feed(FeedProblem::NoNormalisation)),
        };
        if normalise.1.iter().any(|&s| !(s.is_finite() && s > 0.0)) || normalise.0.iter().any(|m| !m.is_finite()) {
            return Err(feed(FeedProblem::NonPositiveStd));
        }
        // Declared dimensions are hints: a non-positive one is unknown (0),
        // and the run's own shape is checked against the batch.
        let out_dims: Vec<usize> = graph.output.iter().find(|o| o.name == output).map(dims).unwrap_or_default().iter().map(|d| d.filter(|&v| v > 0).map_or(0, |v| v as usize)).collect();
        let spatial = out_dims.len() == 4;
        let feature_dim = match out_dims.len() {
            4 => out_dims[1],
            2.. => out_dims[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(0),
            _ => 0,
        };
        Ok(EncoderModel { name, sha256, bytes, metadata, input_size, feature_dim, input: input.name.clone(), output, normalise: Some(normalise), spatial, external })
    }

    /// Part of the feature-cache key beyond the model's SHA-256: how the
    /// images are fed and which output is read.
    pub fn feeding(&self) -> String {
        let pooled = if self.spatial { "; averaged over H x W" } else { "" };
        match &self.normalise {
            None if self.output == "features" => String::new(),
            None => format!("output {}{pooled}", self.output),
            Some((m, s)) => format!("output {}; mean {m:?}; std {s:?}{pooled}", self.output),
        }
    }
}

/// Labels for models named on the command line: the file name, with as many
/// parent folders as it takes to tell apart files of the same name
/// (`a/encoder.onnx`, `b/encoder.onnx`); reports and charts match models by label.
pub fn distinct_labels(paths: &[PathBuf]) -> Vec<String> {
    use std::path::Component;
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| p.components().rev().filter_map(|c| if let Component::Normal(s) = c { Some(s.to_string_lossy().into_owned()) } else { None }).collect())
        .collect();
    let label = |i: usize, depth: usize| parts[i][..depth.min(parts[i].len())].iter().rev().cloned().collect::<Vec<_>>().join("/");
    let mut depth = vec![1; paths.len()];
    let mut labels: Vec<String> = (0..paths.len()).map(|i| label(i, 1)).collect();
    loop {
        let clashing: Vec<usize> = (0..labels.len()).filter(|&i| depth[i] < parts[i].len() && labels.iter().enumerate().any(|(j, l)| j != i && *l == labels[i])).collect();
        if clashing.is_empty() {
            break;
        }
        for i in clashing {
            depth[i] += 1;
            labels[i] = label(i, depth[i]);
        }
    }
    // The same file twice: number the repeats.
    let base = labels.clone();
    for i in 1..labels.len() {
        let repeats = base[..i].iter().filter(|l| **l == base[i]).count();
        if repeats > 0 {
            labels[i] = format!("{} ({})", base[i], repeats + 1);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::distinct_labels;
    use std::path::PathBuf;

    fn labels(paths: &[&str]) -> Vec<String> {
        distinct_labels(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn file_names_stay_short_unless_they_clash() {
        assert_eq!(labels(&["runs/a/moco.onnx", "/tmp/simclr.onnx"]), ["moco.onnx", "simclr.onnx"]);
        assert_eq!(labels(&["runs/a/encoder.onnx", "runs/b/encoder.onnx", "x.onnx"]), ["a/encoder.onnx", "b/encoder.onnx", "x.onnx"]);
        assert_eq!(labels(&["p/a/run/encoder.onnx", "q/b/run/encoder.onnx"]), ["a/run/encoder.onnx", "b/run/encoder.onnx"]);
        assert_eq!(labels(&["encoder.onnx", "runs/a/encoder.onnx"]), ["encoder.onnx", "a/encoder.onnx"]);
        assert_eq!(labels(&["./m.onnx", "m.onnx", "m.onnx"]), ["m.onnx", "m.onnx (2)", "m.onnx (3)"]);
    }
}
