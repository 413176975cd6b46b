//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `strata` binary with the data root set.
pub fn strata() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env("STRATA_DATA", data_root());
    c
}

/// `$STRATA_DATA`, else the `shared/data` folder beside the repository.
pub fn data_root() -> PathBuf {
    std::env::var_os("STRATA_DATA").map(Into::into).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// A fresh temporary folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `config` as `<dir>/<name>.toml`, train it into `<dir>/<name>` and return that run folder.
pub fn train(dir: &Path, name: &str, config: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let run = dir.join(name);
    let out = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run
}
