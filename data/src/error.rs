use std::path::PathBuf;

/// Every failure names the file (or URL) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {problem}", path.display())]
    Format { path: PathBuf, problem: String },
    /// A dataset's file or folder is not under the data root (not fetched yet, or another root).
    #[error("{}: {what} not found (dataset {dataset}, data root {})", path.display(), root.display())]
    Missing { path: PathBuf, what: String, dataset: String, root: PathBuf },
    #[error("{}: checksum mismatch: expected {algo} {expected}, got {actual}", path.display())]
    Checksum { path: PathBuf, algo: &'static str, expected: String, actual: String },
    #[error("{url}: {problem}")]
    Download { url: String, problem: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Error {
        Error::Format { path: path.into(), problem: problem.into() }
    }
}
