//! Result records: `results.json` (everything needed to trust and reproduce a number) and a
//! one-row `results.csv`, both written atomically into the run folder.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::checkpoint::{EpochLog, TrainState, write_atomic};

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

/// Seconds since the Unix epoch, for records.
pub fn created_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The processes a run trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParallelRecord {
    pub world_size: usize,
    /// What started the ranks (`mpirun (Open MPI, 2 ranks)`, `srun (Slurm)`); none for one process.
    pub launcher: Option<String>,
}

impl ParallelRecord {
    pub fn now() -> Self {
        let w = super::parallel::world();
        ParallelRecord { world_size: w.size(), launcher: w.launcher().map(str::to_string) }
    }
}

/// How training went, as every task's record holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    pub train_seconds: f64,
    pub resumed_at_epoch: Option<usize>,
    pub history: Vec<EpochLog>,
    /// The processes it trained on (absent in records written before data parallelism).
    #[serde(default)]
    pub parallel: Option<ParallelRecord>,
}

impl TrainingRecord {
    pub fn new(state: &TrainState, resumed_at_epoch: Option<usize>) -> Self {
        TrainingRecord {
            epochs_run: state.epochs_done,
            best_epoch: state.best_epoch,
            stopped_early: state.stopped_early,
            train_seconds: state.train_seconds,
            resumed_at_epoch,
            history: state.history.clone(),
            parallel: Some(ParallelRecord::now()),
        }
    }
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
