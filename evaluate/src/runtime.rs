//! Finding and loading ONNX Runtime. The library is loaded at run time
//! (ort's `load-dynamic`): from `$MIXCO_ORT_LIB` if set, else from where the
//! build found it (the onnxruntime wheel in the project's `.venv`).

use std::path::PathBuf;
use std::sync::OnceLock;

/// The environment variable that overrides the library's location.
pub const ENV_VAR: &str = "MIXCO_ORT_LIB";

#[derive(Clone, Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime not found: set {ENV_VAR} to libonnxruntime.so (1.31), e.g. .venv/lib/python3.X/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1 after `make venv`")]
    NotConfigured,
    #[error("{}: ONNX Runtime library does not exist (from {source_of_path}); set {ENV_VAR} to libonnxruntime.so (1.31)", path.display())]
    Missing { path: PathBuf, source_of_path: String },
    #[error("{}: cannot load ONNX Runtime: {message}", path.display())]
    Load { path: PathBuf, message: String },
}

/// The library to load and where that choice came from.
pub fn library() -> Result<(PathBuf, String), RuntimeError> {
    let (path, from) = match std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), format!("${ENV_VAR}")),
        None => match option_env!("MIXCO_ORT_DEFAULT").filter(|p| !p.is_empty()) {
            Some(p) => (PathBuf::from(p), "the location recorded at build time".to_string()),
            None => return Err(RuntimeError::NotConfigured),
        },
    };
    if !path.is_file() {
        return Err(RuntimeError::Missing { path, source_of_path: from });
    }
    Ok((path, from))
}

/// The process's ONNX Runtime environment (sessions need it alive).
static LOADED: OnceLock<Result<(PathBuf, ort::environment::Environment), RuntimeError>> = OnceLock::new();

/// Loads ONNX Runtime once per process; returns the library's path.
pub fn init() -> Result<PathBuf, RuntimeError> {
    let loaded = LOADED.get_or_init(|| {
        let (path, _) = library()?;
        let load_err = |message: String| RuntimeError::Load { path: path.clone(), message };
        let builder = ort::init_from(&path).map_err(|e| load_err(e.to_string()))?;
        let env = builder.with_name("mixco").build().map_err(|e| load_err(e.to_string()))?;
        Ok((path.clone(), env))
    });
    match loaded {
        Ok((path, _)) => Ok(path.clone()),
        Err(e) => Err(e.clone()),
    }
}

/// The process's environment, for creating sessions.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    init()?;
    match LOADED.get() {
        Some(Ok((_, env))) => Ok(env),
        _ => unreachable!("init() succeeded"),
    }
}

/// ONNX Runtime's own build description (loads it first).
pub fn build_info() -> Result<String, RuntimeError> {
    init()?;
    Ok(ort::info().to_string())
}
