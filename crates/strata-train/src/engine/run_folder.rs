//! The run folder: `config.toml`, `state.json`, `last.bpk` + the optimiser states + the task's
//! auxiliary state (the resume point), `best.bpk` (the best validation loss so far), the task's
//! records. Every file is written atomically, and the resume point as one: epoch N's files are
//! staged as `last.bpk.epochN`, `optimizer.bpk.epochN`, ... (and the best model as
//! `best.epochN.bpk`) until `state.json`, written last, records epoch N; only then do they take
//! their names ([`settle`]). A run killed at any moment resumes from one consistent epoch.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;

use super::checkpoint::{EpochLog, TrainState, save_module, save_optimizer, write_atomic};
use super::optim::Group;

/// An open run folder and where training stands in it.
pub struct Run {
    pub paths: RunPaths,
    pub state: TrainState,
    /// The epoch a resumed run went on from.
    pub resumed_at: Option<usize>,
}

impl Run {
    /// Create (or open) the run folder `dir` for the configuration `cfg`: start over with
    /// `fresh`, else resume a run of the same configuration (`parse` reads its `config.toml`;
    /// another configuration is refused). Writes `config.toml` (`toml`).
    /// In a data-parallel run rank 0 opens (and clears or checks) the folder; the other ranks
    /// then read the state it left.
    pub fn open<C: PartialEq>(dir: &Path, fresh: bool, cfg: &C, toml: &str, parse: impl Fn(&str) -> Result<C>) -> Result<Run> {
        let world = super::parallel::world();
        let paths = RunPaths::new(dir);
        let opened = if world.is_root() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create run folder {}", dir.display()))?;
            let (state, resumed_at) = open_run(&paths, fresh, cfg, parse)?;
            write_atomic(&paths.config, toml.as_bytes())?;
            Some((state, resumed_at))
        } else {
            None
        };
        world.barrier();
        let (state, resumed_at) = match opened {
            Some(o) => o,
            None if paths.state.exists() => {
                let state = TrainState::load(&paths.state)?;
                let at = state.epochs_done;
                (state, Some(at))
            }
            None => (TrainState::default(), None),
        };
        Ok(Run { paths, state, resumed_at })
    }

    /// Mark the run finished in `state.json` (rank 0 writes it).
    pub fn finish(&mut self) -> Result<()> {
        self.state.finished = true;
        if super::parallel::world().is_root() {
            self.state.save(&self.paths.state)?;
        }
        Ok(())
    }
}

/// Record a finished epoch: keep the model as the staged best when its validation loss is the
/// best so far (it becomes `best.bpk` once `state.json` says so, see [`settle_best`]), count
/// epochs without improvement for early stopping, append the log line, and write the resume
/// point (`last.bpk`, every group's optimiser state, `state.json`) atomically. Returns whether it improved.
/// Without `write` (the ranks other than 0 of a data-parallel run) only the state advances.
/// `aux`: the task's state outside the parameters (AdaLoRA's importance scores), part of the
/// resume point.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_epoch<M: Module>(state: &mut TrainState, paths: &RunPaths, model: &M, groups: &[Group], aux: Option<String>, log: EpochLog, patience: usize, write: bool) -> Result<bool> {
    let improved = state.best_val.is_none_or(|b| log.val_loss < b);
    if improved {
        (state.best_val, state.best_epoch, state.bad_epochs) = (Some(log.val_loss), Some(log.epoch), 0);
        if write {
            save_module(model, &paths.staged_best(log.epoch))?;
        }
    } else {
        state.bad_epochs += 1;
    }
    state.train_seconds += log.seconds;
    state.history.push(log);
    state.epochs_done += 1;
    state.stopped_early = state.bad_epochs >= patience;
    if !write {
        return Ok(improved);
    }
    let n = state.epochs_done;
    save_module(model, &staged(&paths.last, n))?;
    for g in groups {
        save_optimizer(&g.optim, &staged(&paths.dir.join(g.file), n))?;
    }
    if let Some(json) = aux {
        write_atomic(&staged(&paths.dir.join(super::AUX_STATE), n), json.as_bytes())?;
    }
    // The commit point: from here on epoch `n` is the resume point.
    state.save(&paths.state)?;
    settle(paths, state)?;
    Ok(improved)
}

/// Open a run folder: start over (`fresh`), or resume the training state of a run of the same
/// configuration (`parse` reads its `config.toml`); a run of another configuration is refused.
fn open_run<C: PartialEq>(paths: &RunPaths, fresh: bool, cfg: &C, parse: impl Fn(&str) -> Result<C>) -> Result<(TrainState, Option<usize>)> {
    if !paths.state.exists() {
        return Ok((TrainState::default(), None));
    }
    if fresh {
        paths.clear()?;
        return Ok((TrainState::default(), None));
    }
    let text = std::fs::read_to_string(&paths.config).with_context(|| format!("cannot read {}", paths.config.display()))?;
    let saved = parse(&text).with_context(|| format!("cannot read {}", paths.config.display()))?;
    if &saved != cfg {
        bail!("{} holds a run of a different configuration; pass --fresh to start over or --out to use another folder", paths.dir.display());
    }
    let state = TrainState::load(&paths.state)?;
    settle(paths, &state)?;
    let at = state.epochs_done;
    Ok((state, Some(at)))
}

pub struct RunPaths {
    pub config: PathBuf,
    pub state: PathBuf,
    pub last: PathBuf,
    pub optim: PathBuf,
    pub best: PathBuf,
    pub dir: PathBuf,
    pub results_json: PathBuf,
    pub results_csv: PathBuf,
}

impl RunPaths {
    /// Where the model of `epoch` (1-based) waits until `state.json` records it as the best.
    pub(crate) fn staged_best(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("best.epoch{epoch}.bpk"))
    }

    pub fn new(dir: &Path) -> Self {
        RunPaths {
            config: dir.join("config.toml"),
            state: dir.join("state.json"),
            last: dir.join("last.bpk"),
            optim: dir.join("optimizer.bpk"),
            best: dir.join("best.bpk"),
            dir: dir.to_path_buf(),
            results_json: dir.join("results.json"),
            results_csv: dir.join("results.csv"),
        }
    }

    /// Remove every checkpoint and record (`--fresh`).
    pub(crate) fn clear(&self) -> Result<()> {
        for p in [&self.state, &self.last, &self.optim, &self.best, &self.results_json, &self.results_csv] {
            let _ = std::fs::remove_file(p);
        }
        settle(self, &TrainState::default())
    }
}

/// Where a file of epoch `epoch`'s resume point waits until `state.json` records that epoch.
fn staged(path: &Path, epoch: usize) -> PathBuf {
    let mut name = path.file_name().expect("file path").to_os_string();
    name.push(format!(".epoch{epoch}"));
    path.with_file_name(name)
}

/// Finish or discard staged files: those of the epoch `state.json` records (`epochs_done`) take
/// their names; those of any other epoch (a run killed before its state was written) are
/// removed, and that epoch runs again on resume. Then the staged best models ([`settle_best`]).
pub(crate) fn settle(paths: &RunPaths, state: &TrainState) -> Result<()> {
    let entries = std::fs::read_dir(&paths.dir).with_context(|| format!("cannot list {}", paths.dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A temporary file of a killed writer (`<name>.tmp<pid>`): never read, removed.
        if name.rsplit_once(".tmp").is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())) {
            std::fs::remove_file(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
            continue;
        }
        let Some((base, epoch)) = name.rsplit_once(".epoch").and_then(|(b, n)| Some((b.to_string(), n.parse::<usize>().ok()?))) else {
            continue;
        };
        let path = entry.path();
        if epoch == state.epochs_done && epoch > 0 {
            std::fs::rename(&path, paths.dir.join(&base)).with_context(|| format!("cannot rename {}", path.display()))?;
        } else {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    settle_best(paths, state)
}

/// Finish or discard staged best checkpoints (`best.epochN.bpk`): the one whose epoch
/// `state.json` records as the best becomes `best.bpk`; any other (a run killed before its state
/// was written) is discarded and its epoch runs again on resume.
pub(crate) fn settle_best(paths: &RunPaths, state: &TrainState) -> Result<()> {
    let entries = std::fs::read_dir(&paths.dir).with_context(|| format!("cannot list {}", paths.dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(epoch) = name.strip_prefix("best.epoch").and_then(|r| r.strip_suffix(".bpk")).and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let path = entry.path();
        if state.best_epoch == Some(epoch) && epoch <= state.epochs_done {
            std::fs::rename(&path, &paths.best).with_context(|| format!("cannot rename {}", path.display()))?;
        } else {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::checkpoint::TrainState;

    #[test]
    fn staged_best_is_kept_only_when_the_state_records_it() {
        let dir = std::env::temp_dir().join(format!("strata-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = RunPaths::new(&dir);
        std::fs::write(&paths.best, b"old").unwrap();
        // Killed after staging epoch 3's model but before state.json said so: discard it.
        std::fs::write(paths.staged_best(3), b"new").unwrap();
        let state = TrainState { epochs_done: 2, best_epoch: Some(2), ..Default::default() };
        settle_best(&paths, &state).unwrap();
        assert_eq!(std::fs::read(&paths.best).unwrap(), b"old");
        assert!(!paths.staged_best(3).exists());
        // Killed after state.json recorded epoch 3 as the best, before the rename: keep it.
        std::fs::write(paths.staged_best(3), b"new").unwrap();
        let state = TrainState { epochs_done: 3, best_epoch: Some(3), ..Default::default() };
        settle_best(&paths, &state).unwrap();
        assert_eq!(std::fs::read(&paths.best).unwrap(), b"new");
        assert!(!paths.staged_best(3).exists());
    }

    #[test]
    fn the_resume_point_moves_only_when_the_state_records_its_epoch() {
        let dir = std::env::temp_dir().join(format!("strata-settle-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = RunPaths::new(&dir);
        std::fs::write(&paths.last, b"epoch2").unwrap();
        std::fs::write(&paths.optim, b"epoch2").unwrap();
        // Killed after epoch 3's model and optimiser were staged, before state.json: epoch 2 stays.
        std::fs::write(staged(&paths.last, 3), b"epoch3").unwrap();
        std::fs::write(staged(&paths.optim, 3), b"epoch3").unwrap();
        std::fs::write(dir.join("optimizer.bpk.epoch3.tmp4242"), b"half").unwrap();
        settle(&paths, &TrainState { epochs_done: 2, ..Default::default() }).unwrap();
        assert_eq!((std::fs::read(&paths.last).unwrap(), std::fs::read(&paths.optim).unwrap()), (b"epoch2".to_vec(), b"epoch2".to_vec()));
        let left: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left.len(), 2, "staged and temporary files removed: {left:?}");
        // Killed after state.json recorded epoch 3, with one file renamed and one still staged.
        std::fs::write(&paths.last, b"epoch3").unwrap();
        std::fs::write(staged(&paths.optim, 3), b"epoch3").unwrap();
        settle(&paths, &TrainState { epochs_done: 3, ..Default::default() }).unwrap();
        assert_eq!((std::fs::read(&paths.last).unwrap(), std::fs::read(&paths.optim).unwrap()), (b"epoch3".to_vec(), b"epoch3".to_vec()));
        assert!(!staged(&paths.optim, 3).exists());
    }
}
