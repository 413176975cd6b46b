//! Atomic checkpoints: every file is written beside its destination and renamed into place,
//! so an interrupted run never leaves a half-written checkpoint or record.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("file path").to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Write `path` through `write(tmp)` to a temporary file beside it, then rename into place.
/// The destination's folder is created if it does not exist.
fn via_tmp(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = tmp_path(path);
    if let Err(e) = write(&tmp).and_then(|()| injected_full_disk(&tmp)) {
        // Nothing half-written stays behind; the destination keeps its previous content.
        let _ = std::fs::remove_file(&tmp);
        let full = e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(28)));
        return Err(if full { e.context(format!("the disk holding {} is full: free space and run the same command again (the run resumes from its last complete checkpoint, which is intact)", path.display())) } else { e });
    }
    crash_point();
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    crash_point();
    Ok(())
}

/// Full-disk injection for the crash-consistency tests: with `STRATA_FAIL_WRITE_AT=n` the n-th
/// checkpoint file this process writes fails as on a full disk (ENOSPC, half the file written).
fn injected_full_disk(tmp: &Path) -> Result<()> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let at = *AT.get_or_init(|| std::env::var("STRATA_FAIL_WRITE_AT").ok().and_then(|v| v.parse().ok()));
    if at.is_some_and(|n| WRITES.fetch_add(1, Ordering::Relaxed) + 1 == n) {
        let len = std::fs::metadata(tmp).map(|m| m.len()).unwrap_or(0);
        std::fs::OpenOptions::new().write(true).open(tmp).and_then(|f| f.set_len(len / 2)).ok();
        return Err(anyhow::Error::new(std::io::Error::from_raw_os_error(28)).context(format!("cannot write {}", tmp.display())));
    }
    Ok(())
}

/// Crash injection for the crash-consistency tests (crates/strata-cli/tests/crash.rs): with
/// `STRATA_CRASH_AT=n` the process dies at once (abort: no unwinding, nothing flushed) at its
/// n-th checkpoint event, an event being a file written beside its destination or renamed
/// into place. Unset, it costs one atomic increment per file.
fn crash_point() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    static EVENTS: AtomicUsize = AtomicUsize::new(0);
    let at = *AT.get_or_init(|| std::env::var("STRATA_CRASH_AT").ok().and_then(|v| v.parse().ok()));
    if at.is_some_and(|n| EVENTS.fetch_add(1, Ordering::Relaxed) + 1 == n) {
        std::process::abort();
    }
}

/// Write bytes to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    via_tmp(path, |tmp| std::fs::write(tmp, bytes).with_context(|| format!("cannot write {}", tmp.display())))
}

/// Save a module's parameters (burnpack) atomically.
pub fn save_module<M: Module>(module: &M, path: &Path) -> Result<()> {
    via_tmp(path, |tmp| module.clone().save_file(tmp).map_err(|e| anyhow!("cannot write {}: {e}", tmp.display())))
}

/// Load parameters saved by [`save_module`] into `module` (which fixes shapes and names).
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    module.try_load_file(path).map_err(|e| anyhow!("cannot load checkpoint {}: {e}", path.display()))
}

/// A trained forecaster of a run folder: the weights of `checkpoint` and the model's state
/// outside them (FSNet's gradient averages and memory: the run's `aux_state.json`, as its last
/// training step left it, which is what the run evaluated). Models without such state ignore it.
pub fn load_trained(model: strata_models::Model, run_dir: &Path, checkpoint: &Path) -> Result<strata_models::Model> {
    let model = load_module(model, checkpoint)?;
    let aux = run_dir.join(super::AUX_STATE);
    if model.extra_state().is_some()
        && let Ok(json) = std::fs::read_to_string(&aux)
    {
        model.restore_extra_state(&json).map_err(|e| anyhow!("{}: {e} (the model state beside {}; delete the file to start that state afresh)", aux.display(), checkpoint.display()))?;
    }
    Ok(model)
}

pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<()> {
    via_tmp(path, |tmp| optim.save(tmp).map_err(|e| anyhow!("cannot write {}: {e}", tmp.display())))
}

pub fn load_optimizer(optim: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    optim.load(path).map_err(|e| anyhow!("cannot load optimizer state {}: {e}", path.display()))
}

/// One line of the training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub lr: f64,
    pub seconds: f64,
    pub steps: usize,
    /// Mean wall time of a training step (absent in logs written before it was recorded).
    #[serde(default)]
    pub step_seconds: f64,
    /// Of which, in the collectives of data-parallel training (all-reduce of the loss and
    /// gradients), per step.
    #[serde(default)]
    pub comm_seconds: f64,
}

/// Where training stands; written after every epoch, read to resume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed (the next epoch to run, 0-based).
    pub epochs_done: usize,
    pub global_step: usize,
    pub best_val: Option<f64>,
    pub best_epoch: Option<usize>,
    pub bad_epochs: usize,
    pub stopped_early: bool,
    pub finished: bool,
    /// Seconds spent training so far, over every session of this run.
    pub train_seconds: f64,
    pub history: Vec<EpochLog>,
}

impl TrainState {
    pub fn load(path: &Path) -> Result<TrainState> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid training state", path.display()))
    }
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Device;

    #[test]
    fn module_round_trip_and_wrong_shape_is_an_error() {
        let dir = std::env::temp_dir().join(format!("strata-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let device = Device::flex();
        let a = LinearConfig::new(3, 2).init(&device);
        let path = dir.join("m.bpk");
        save_module(&a, &path).unwrap();
        let b = load_module(LinearConfig::new(3, 2).init(&device), &path).unwrap();
        assert_eq!(a.weight.val().into_data(), b.weight.val().into_data());
        assert!(load_module(LinearConfig::new(4, 2).init(&device), &path).is_err());
        // Nothing temporary is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn atomic_write_creates_the_missing_folder() {
        let dir = std::env::temp_dir().join(format!("strata-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("a/b/results.json");
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
