//! strata-data: everything between a file on disk and a batch of windows.
//!
//! * [`table`]: reads TSLib-layout CSV / `.csv.gz` files into a [`table::Table`].
//! * [`registry`]: the named datasets (ETTh1, ..., ILI, `custom`) with their split borders.
//! * [`impute`]: missing-value detection and filling, with a report.
//! * [`scaler`]: per-variable StandardScaler fitted on training rows only.
//! * [`timefeat`]: calendar features (TSLib `timeenc=1`).
//! * [`window`]: stride-1 sliding windows and zero-copy batching.
//! * [`prepare`]: the whole pipeline for one run (read, impute, select, scale, split).
//! * [`gluonts`]: GluonTS JSON-lines datasets and their rolling test windows.
//! * [`spatial`], [`graph`], [`prepare_st`]: spatio-temporal signals, sensor graphs and the
//!   traffic protocol; [`npy`] and [`pickle`] read the NumPy and Python files they ship in.

pub mod covariates;
pub mod dynamic_diffusion;
pub mod drift_stream;
pub mod error;
pub mod gluonts;
pub mod graph;
pub mod impute;
pub mod npy;
pub mod pickle;
pub mod prepare;
pub mod pygt;
pub mod prepare_st;
pub mod registry;
pub mod source;
pub mod spatial;
pub mod spatial_covariates;
pub mod synthetic;
pub mod scaler;
pub mod table;
pub mod timefeat;
pub mod window;

pub use error::DataError;
pub use prepare::{DataConfig, Features, Prepared};
pub use prepare_st::{SpatialPrepared, prepare_spatial};

/// The directory holding the real data: `$STRATA_DATA`, else `../shared/data`.
pub fn data_root() -> std::path::PathBuf {
    std::env::var_os("STRATA_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("../shared/data"))
}

/// SHA-256 of a file's bytes, or of a folder's data files (each file's name and SHA-256, in
/// name order), as lowercase hex.
pub fn sha256_path(path: &std::path::Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    if !path.is_dir() {
        return sha256_file(path);
    }
    let mut h = Sha256::new();
    for f in source::folder::data_files(path)? {
        h.update(format!("{}\0{}\n", f.file_name().unwrap_or_default().to_string_lossy(), sha256_file(&f)?).as_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// SHA-256 of a file's bytes, as lowercase hex.
pub fn sha256_file(path: &std::path::Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}
