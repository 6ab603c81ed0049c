//! mixco's model zoo: a manifest of pretrained encoders with checksums, a
//! verified local cache, and an importer for PyTorch checkpoints that runs no
//! pickle code.

pub mod import;
pub mod layout;
pub mod locate;
pub mod manifest;
pub mod publish;
pub mod pickle;
pub mod store;
pub mod torch_file;

pub use manifest::{FileKind, Manifest, Model};
pub use store::{default_cache_dir, resolve, FileStatus, Notice, Zoo};

use std::path::PathBuf;

/// What is wrong inside a file being imported (its pickle, zip layout or
/// tensors); `Error::Import` names the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

impl From<String> for ReadError {
    fn from(s: String) -> ReadError {
        ReadError(s)
    }
}

impl From<&str> for ReadError {
    fn from(s: &str) -> ReadError {
        ReadError(s.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("zoo manifest {origin}: {problem}")]
    Manifest { origin: String, problem: String },
    #[error("zoo:{name}: the download from {url} does not match the manifest ({problem}); nothing was kept")]
    Checksum { name: String, url: String, problem: String },
    #[error("{}: {problem}", path.display())]
    Import { path: PathBuf, problem: ReadError },
    #[error("{0}")]
    Invalid(String),
    #[error("zoo:{name}: its publisher published no hash of {url}, so its download cannot be verified; it is pulled only when trusted explicitly (its SHA-256 is then pinned at first use)")]
    Untrusted { name: String, url: String },
    #[error("no model `{name}` in the zoo (known: {})", known.join(", "))]
    UnknownModel { name: String, known: Vec<String> },
    #[error(transparent)]
    Data(#[from] mixco_data::Error),
    #[error(transparent)]
    Checkpoint(#[from] mixco_model::checkpoint::CheckpointError),
}
