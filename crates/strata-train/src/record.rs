//! Result records: `results.json` (everything needed to trust and reproduce a number) and a
//! one-row `results.csv`, both written atomically into the run folder.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::checkpoint::write_atomic;

/// The git revision strata was built from (`-dirty` when tracked files differed from HEAD at
/// build time), or `unknown` when it was built outside a repository. Stamped by `build.rs`,
/// so a run records its binary's code even if the checkout moves while it trains.
pub fn git_revision() -> String {
    env!("STRATA_GIT_REVISION").to_string()
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

#[cfg(test)]
mod tests {
    /// The stamp names the commit checked out now (tests are built from it), or `unknown`
    /// exactly when there is no repository to ask.
    #[test]
    fn git_revision_is_the_checked_out_commit() {
        let head = std::process::Command::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let stamped = super::git_revision();
        match head {
            Some(head) => assert_eq!(stamped.trim_end_matches("-dirty"), head),
            None => assert_eq!(stamped, "unknown"),
        }
    }
}
