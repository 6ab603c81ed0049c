//! An ONNX encoder and what its metadata says about it.

use mixco_data::fsutil::{hex, read_file};
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
}

pub struct EncoderModel {
    /// A label for tables: the file name.
    pub name: String,
    pub bytes: Vec<u8>,
    /// SHA-256 of the ONNX bytes (the feature cache key).
    pub sha256: String,
    pub metadata: BTreeMap<String, String>,
    pub input_size: usize,
    pub feature_dim: usize,
}

impl EncoderModel {
    /// Reads an `.onnx` file, or exports a `.safetensors` checkpoint on the fly.
    pub fn load(path: &Path) -> Result<EncoderModel, ModelError> {
        let bytes = read_file(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "safetensors") {
            use sha2::Digest;
            let sha = hex(&sha2::Sha256::digest(&bytes));
            let ck = Checkpoint::encoder_from_bytes(path, &bytes)?;
            let exported = mixco_export::export(&ck, path, &sha, &Default::default())?;
            return Self::from_onnx(path, name, exported.bytes);
        }
        Self::from_onnx(path, name, bytes)
    }

    pub fn from_onnx(path: &Path, name: String, bytes: Vec<u8>) -> Result<EncoderModel, ModelError> {
        use sha2::Digest;
        let invalid = |problem: String| ModelError::Invalid { path: path.into(), problem };
        let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| invalid(format!("not an ONNX model: {e}")))?;
        if proto.graph.is_none() {
            return Err(invalid("not an ONNX model: it has no graph".into()));
        }
        let metadata: BTreeMap<String, String> = proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        let num = |k: &str| -> Result<usize, ModelError> {
            metadata
                .get(k)
                .ok_or_else(|| invalid(format!("ONNX metadata has no `{k}`: not exported by mixco (foreign models are not supported yet)")))?
                .parse()
                .map_err(|_| invalid(format!("ONNX metadata `{k}` is not a number")))
        };
        let input_size = num("input_size")?;
        let feature_dim = num("feature_dim")?;
        Ok(EncoderModel { name, sha256: hex(&sha2::Sha256::digest(&bytes)), bytes, metadata, input_size, feature_dim })
    }
}
