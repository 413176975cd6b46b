use std::path::{Path, PathBuf};

/// Every data error names the file and, where there is one, the place in it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A problem at a known line (1-based, as an editor shows it) and column.
    #[error("{path}:{line}: column {column}: {msg}")]
    At { path: PathBuf, line: u64, column: String, msg: String },
    /// A problem with the file as a whole (no single line to blame).
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    /// A problem with a setting (dataset name, features mode, lengths).
    #[error("{0}")]
    Config(String),
}

impl DataError {
    /// A data file that is not there (an I/O "not found", so that callers can tell it apart).
    pub fn not_found(path: &Path) -> Self {
        DataError::Io { path: path.to_path_buf(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found (set STRATA_DATA or data.path)") }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }
    pub fn file(path: &Path, msg: impl Into<String>) -> Self {
        DataError::File { path: path.to_path_buf(), msg: msg.into() }
    }
}
