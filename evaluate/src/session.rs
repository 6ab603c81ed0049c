//! Running an ONNX encoder with ONNX Runtime (CPU execution provider).

use crate::runtime::{environment, RuntimeError};
use ort::session::Session;
use ort::value::TensorRef;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{what}: {message}")]
    Ort { what: String, message: String },
}

fn ort_err(what: impl Into<String>) -> impl FnOnce(ort::Error) -> SessionError {
    let what = what.into();
    move |e| SessionError::Ort { what, message: e.to_string() }
}

/// An ONNX model loaded into an ONNX Runtime session.
pub struct OnnxModel {
    session: Session,
    name: String,
    /// The image input's name (`images` for mixco's encoders).
    pub input: String,
}

impl OnnxModel {
    /// `name` (a file name) labels errors.
    pub fn from_bytes(name: &str, bytes: &[u8], threads: usize) -> Result<OnnxModel, SessionError> {
        Self::from_bytes_on(name, bytes, threads, None)
    }

    /// Like [`from_bytes`](Self::from_bytes), on CUDA device `cuda` when given:
    /// an error (not a silent CPU fallback) when the loaded ONNX Runtime has
    /// no CUDA execution provider or no GPU is there.
    pub fn from_bytes_on(name: &str, bytes: &[u8], threads: usize, cuda: Option<i32>) -> Result<OnnxModel, SessionError> {
        Self::from_parts(name, bytes, &[], threads, cuda)
    }

    /// Like [`from_bytes_on`](Self::from_bytes_on), with the external-data
    /// files the graph names given in memory (`location`, bytes).
    pub fn from_parts(name: &str, bytes: &[u8], external: &[(String, std::sync::Arc<[u8]>)], threads: usize, cuda: Option<i32>) -> Result<OnnxModel, SessionError> {
        let env = environment()?;
        let mut builder = Session::builder(env).map_err(ort_err(name))?;
        for (location, data) in external {
            builder = builder.with_external_initializer_file_in_memory(location, data.clone()).map_err(|e| ort_err(name)(e.into()))?;
        }
        if let Some(device) = cuda {
            let ep = ort::ep::CUDA::default().with_device_id(device).build().error_on_failure();
            builder = builder.with_execution_providers([ep]).map_err(|e| SessionError::Ort {
                what: name.to_string(),
                message: format!(
                    "cannot use CUDA device {device} ({e}); the ONNX Runtime library must be a GPU build \
                     (pip install onnxruntime-gpu, then point {} at its libonnxruntime.so) and a GPU must be present",
                    crate::runtime::ENV_VAR
                ),
            })?;
        }
        if threads > 0 {
            builder = builder.with_intra_threads(threads).map_err(|e| ort_err(name)(e.into()))?;
        }
        let session = builder.commit_from_memory(bytes).map_err(ort_err(name))?;
        Ok(OnnxModel { session, name: name.to_string(), input: "images".into() })
    }

    /// The file name that labels this model's errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a batch `[n, 3, size, size]` and returns output `output` as a
    /// flat row-major vector with its shape.
    pub fn run(&mut self, images: &[f32], n: usize, size: usize, output: &str) -> Result<(Vec<usize>, Vec<f32>), SessionError> {
        let name = self.name.clone();
        let input = TensorRef::from_array_view(([n, 3, size, size], images)).map_err(ort_err(&name))?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input]).map_err(ort_err(&name))?;
        let value = outputs.get(output).ok_or_else(|| SessionError::Ort { what: name.clone(), message: format!("the model has no output `{output}`") })?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(ort_err(&name))?;
        Ok((shape.iter().map(|&d| d as usize).collect(), data.to_vec()))
    }
}
