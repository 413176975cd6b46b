//! Result records: `results.json` (everything needed to trust and reproduce a number) and a
//! one-row `results.csv`, both written atomically into the run folder.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::checkpoint::write_atomic;

/// The git revision of the working directory (`-dirty` when it has uncommitted changes),
/// or `unknown` outside a repository.
pub fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".into(),
    }
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// Write a CSV with one header line and one row.
pub fn write_csv_row(path: &Path, fields: &[(&str, String)]) -> Result<()> {
    let header: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    let row: Vec<String> = fields
        .iter()
        .map(|(_, v)| if v.contains(',') || v.contains('"') { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.clone() })
        .collect();
    write_atomic(path, format!("{}\n{}\n", header.join(","), row.join(",")).as_bytes())
}
