//! Crash consistency (docs/reliability.md): `strata train` killed with SIGKILL at random moments
//! and the moment a checkpoint file is being written, and made to die (`STRATA_CRASH_AT`) at
//! chosen checkpoint events (a file written beside its destination, or renamed into place: every
//! window between the files of one epoch's resume point), at least 20 times each, resumed after
//! each, ends with exactly the metrics and training history of an uninterrupted run with the
//! same seed (data order and dropout restored on resume; the resume point is one epoch's files,
//! committed by `state.json`).

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Rng, strata, tmp};

/// PatchTST with dropout on ETTh1, short epochs: the resume point (the model, ~0.36 MB, Adam's
/// two moments, the state) is written after each of five epochs.
const CONFIG: &str = r#"
[data]
dataset = "ETTh1"
seq_len = 96
pred_len = 24
[model]
name = "patchtst"
d_model = 64
n_heads = 4
d_ff = 128
e_layers = 2
dropout = 0.2
[train]
epochs = 5
batch_size = 32
max_steps_per_epoch = 8
lr = 0.001
patience = 10
seed = 7
"#;

fn results(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap()
}

/// Files of an unfinished checkpoint: staged (`*.epochN`, `best.epochN.bpk`) or temporary.
fn unfinished(run: &Path) -> usize {
    std::fs::read_dir(run).map_or(0, |d| d.flatten().filter(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.contains(".epoch") || n.contains(".tmp")
    }).count())
}

/// How one attempt ends a run early.
#[derive(Clone, Copy)]
enum Kill {
    /// SIGKILL at a random moment of a run's length, or (every other attempt) the moment a
    /// checkpoint file of the next epoch appears, then up to 4 ms more.
    Signal,
    /// The process dies at its n-th checkpoint event (`STRATA_CRASH_AT`), n random in 1..=40
    /// (a run of five epochs has about 45).
    Injected,
}

/// Kill `strata train` at least 20 times, resuming after each, over as many runs as it takes;
/// every run must end with `want`'s metrics and losses. Returns (kills, kills that left a
/// checkpoint half written, runs).
fn campaign(dir: &Path, cfg: &Path, want: &serde_json::Value, full: Duration, how: Kill) -> (usize, usize, usize) {
    let command = |run: &Path| {
        let mut c = strata();
        c.args(["train", "--config"]).arg(cfg).arg("--out").arg(run);
        c
    };
    let same = |got: &serde_json::Value, want: &serde_json::Value, run: usize| {
        for key in ["val", "test"] {
            assert_eq!(got[key], want[key], "run {run}: {key} metrics after the kills");
        }
        let history = |r: &serde_json::Value| r["training"]["history"].as_array().unwrap().iter().map(|e| (e["epoch"].clone(), e["train_loss"].clone(), e["val_loss"].clone())).collect::<Vec<_>>();
        assert_eq!(history(got), history(want), "run {run}: the epochs' losses");
    };
    kill_campaign(dir, &command, want, full, how, 20, &same)
}

/// [`campaign`] for any command (`command(run folder)`), `wanted` kills, results compared by `same`.
fn kill_campaign(dir: &Path, command: &dyn Fn(&Path) -> std::process::Command, want: &serde_json::Value, full: Duration, how: Kill, wanted: usize, same: &dyn Fn(&serde_json::Value, &serde_json::Value, usize)) -> (usize, usize, usize) {
    let mut rng = Rng(0x5eed_2026);
    let (mut kills, mut mid_checkpoint, mut cycles) = (0, 0, 0);
    while kills < wanted {
        cycles += 1;
        let run = dir.join(format!("run{cycles}"));
        loop {
            let crash_at = 1 + (rng.next() * 40.0) as usize;
            let mut cmd = command(&run);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            if matches!(how, Kill::Injected) {
                cmd.env("STRATA_CRASH_AT", crash_at.to_string());
            }
            let mut child: Child = cmd.spawn().unwrap();
            let started = Instant::now();
            let at_checkpoint = kills % 2 == 1;
            let delay = full.mul_f64(rng.next());
            let after = Duration::from_secs_f64(0.004 * rng.next());
            let mut seen: Option<Instant> = None;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if matches!(how, Kill::Signal) {
                    if at_checkpoint && seen.is_none() && unfinished(&run) > 0 {
                        seen = Some(Instant::now());
                    }
                    if if at_checkpoint { seen.is_some_and(|t| t.elapsed() >= after) } else { started.elapsed() >= delay } {
                        child.kill().unwrap();
                        break child.wait().unwrap();
                    }
                }
                assert!(started.elapsed() < Duration::from_secs(600), "a run did not end");
                std::thread::sleep(Duration::from_micros(if at_checkpoint { 50 } else { 1000 }));
            };
            if status.success() {
                break;
            }
            assert!(status.code().is_none(), "run {cycles} failed on its own after {kills} kills ({status})");
            kills += 1;
            if unfinished(&run) > 0 {
                mid_checkpoint += 1;
            }
            if kills >= wanted && !run.join("results.json").exists() {
                // Let the last run finish uninterrupted.
                let out = command(&run).output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                break;
            }
        }
        same(&results(&run), want, cycles);
    }
    (kills, mid_checkpoint, cycles)
}

/// The uninterrupted reference run: its results and wall time.
fn reference(dir: &Path) -> (std::path::PathBuf, serde_json::Value, Duration) {
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let t0 = Instant::now();
    let out = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(dir.join("reference")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = t0.elapsed();
    (cfg, results(&dir.join("reference")), full)
}

#[test]
fn twenty_sigkills_at_random_moments_end_with_the_uninterrupted_runs_metrics() {
    let dir = tmp("crash-signal");
    let (cfg, want, full) = reference(&dir);
    let (kills, mid, runs) = campaign(&dir, &cfg, &want, full, Kill::Signal);
    // How many kills land inside a checkpoint write depends on timing: reported, not asserted
    // (the injected crashes below land there by construction).
    eprintln!("SIGKILL: {kills} kills over {runs} run(s), {mid} of them with a checkpoint half written; every run ended with the reference's metrics");
}

#[test]
fn twenty_crashes_between_checkpoint_files_end_with_the_uninterrupted_runs_metrics() {
    let dir = tmp("crash-injected");
    let (cfg, want, full) = reference(&dir);
    let (kills, mid, runs) = campaign(&dir, &cfg, &want, full, Kill::Injected);
    eprintln!("injected: {kills} crashes over {runs} run(s), {mid} of them with a checkpoint half written; every run ended with the reference's metrics");
    assert!(mid >= 5, "only {mid} crashes left a checkpoint half written");
}

/// A full disk in the middle of epoch 3's checkpoint (the write fails with ENOSPC, half the file
/// written): a clear error naming the file and the fix, the previous checkpoint intact (nothing
/// half-written left, epoch 2 the resume point), and the same command afterwards resumes and
/// ends with the uninterrupted run's metrics.
#[test]
fn a_full_disk_is_a_clear_error_and_leaves_the_previous_checkpoint_intact() {
    let dir = tmp("crash-full-disk");
    let (cfg, want, _) = reference(&dir);
    let run = dir.join("run");
    // Writes: config.toml, then per epoch the staged best (when it improves), last.bpk, the
    // optimiser, state.json: epoch 3's checkpoint starts near the tenth. Fail the first write
    // that leaves epoch 2 recorded.
    let mut fail_at = None;
    for n in 6..40 {
        let _ = std::fs::remove_dir_all(&run);
        let out = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(&run).env("STRATA_FAIL_WRITE_AT", n.to_string()).output().unwrap();
        let state: Option<serde_json::Value> = std::fs::read_to_string(run.join("state.json")).ok().and_then(|s| serde_json::from_str(&s).ok());
        if !out.status.success() && state.is_some_and(|s| s["epochs_done"] == 2) {
            fail_at = Some((n, String::from_utf8_lossy(&out.stderr).into_owned()));
            break;
        }
    }
    let (n, stderr) = fail_at.expect("a write of epoch 3's checkpoint");
    assert!(stderr.contains("No space left on device") && stderr.contains("is full: free space and run the same command again"), "write {n}: {stderr}");
    assert!(stderr.contains(run.to_str().unwrap()), "the error names the file: {stderr}");
    let half: Vec<String> = std::fs::read_dir(&run).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp")).collect();
    assert!(half.is_empty(), "nothing half-written left behind: {half:?}");
    let out = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(&run).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("resuming"), "{err}");
    let got = results(&run);
    assert_eq!((&got["val"], &got["test"]), (&want["val"], &want["test"]));
}

/// `strata finetune` (AdaLoRA on the tiny MOIRAI fixture, whose importance scores and ranks
/// are part of the resume point) dies at random checkpoint events 5 times and ends with the
/// uninterrupted fine-tuning's metrics and losses.
#[test]
fn finetune_crashes_end_with_the_uninterrupted_runs_metrics() {
    let dir = tmp("crash-finetune");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/moirai/tiny");
    let csv = common::two_series_csv(&dir);
    let command = |run: &Path| {
        let mut c = strata();
        c.args(["finetune", "--method", "adalora", "--model"]).arg(&model).args(["--dataset", "custom", "--set"]).arg(format!("data.path={:?}", csv.display().to_string()));
        c.args(["--set", "data.seq_len=64", "--set", "data.pred_len=16", "--set", "patch_size=8", "--set", "train.epochs=4", "--set", "train.max_steps_per_epoch=3"]);
        c.args(["--set", "train.batch_size=8", "--set", "train.lr=1e-3", "--set", "train.paths=20"]);
        c.args(["--set", "adalora.t_init=1", "--set", "adalora.t_final=1", "--set", "adalora.delta_t=1", "--out"]).arg(run);
        c
    };
    let t0 = Instant::now();
    let out = command(&dir.join("reference")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = t0.elapsed();
    let want = results(&dir.join("reference"));
    let same = |got: &serde_json::Value, want: &serde_json::Value, run: usize| {
        for key in ["test_mse", "test_mae", "notes"] {
            assert_eq!(got[key], want[key], "run {run}: {key} after the crashes");
        }
        let losses = |r: &serde_json::Value| r["history"].as_array().unwrap().iter().map(|e| (e["epoch"].clone(), e["train_loss"].clone(), e["val_loss"].clone())).collect::<Vec<_>>();
        assert_eq!(losses(got), losses(want), "run {run}: the epochs' losses");
    };
    let (kills, mid, runs) = kill_campaign(&dir, &command, &want, full, Kill::Injected, 5, &same);
    eprintln!("finetune: {kills} crashes over {runs} run(s), {mid} with a checkpoint half written; the same metrics, losses and AdaLoRA ranks");
}

/// `strata distill` (STemDist on a small synthetic graph) killed once mid-distillation and made
/// to die at each of its output writes: the same command afterwards leaves exactly the folder an
/// uninterrupted run leaves. A distillation has no resume point (it starts over, seeded);
/// its three files are written atomically, so no half-written one is ever read.
#[test]
fn distill_killed_and_crashed_ends_with_the_uninterrupted_folder() {
    let dir = tmp("crash-distill");
    let sets = common::small_distill_sets(&common::synth_graph(&dir, 30));
    let command = |folder: &Path| {
        let mut c = strata();
        c.args(["distill", "--method", "stemdist", "--out"]).arg(folder);
        for s in &sets {
            c.args(["--set", s]);
        }
        c
    };
    let t0 = Instant::now();
    let out = command(&dir.join("reference")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = t0.elapsed();
    let folder = |d: &Path| {
        let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("distilled.json")).unwrap()).unwrap();
        for timing in ["distill_seconds", "peak_rss_mb"] {
            r[timing] = serde_json::Value::Null;
        }
        (r, std::fs::read(d.join("x.npy")).unwrap(), std::fs::read(d.join("y.npy")).unwrap())
    };
    let want = folder(&dir.join("reference"));
    let run = dir.join("run");
    // SIGKILL halfway through.
    let mut child = command(&run).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(full / 2);
    let killed = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    // Then a death at each of the first output events (x.npy written, renamed, y.npy ...).
    for n in 1..=5 {
        let status = command(&run).env("STRATA_CRASH_AT", n.to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        assert!(!status.success(), "crash point {n} was not reached");
        let half: Vec<String> = std::fs::read_dir(&run).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp")).collect()).unwrap_or_default();
        // The record is renamed into place last (event 6): never there after a crash before it.
        assert!(!run.join("distilled.json").exists(), "crash point {n}: the record landed before the arrays ({half:?})");
    }
    let out = command(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(folder(&run) == want, "the distilled folder after the kills differs from the uninterrupted one");
    eprintln!("distill: killed {} at {:.1} s of {:.1} s, then 5 injected crashes at its output writes; the final folder equals the uninterrupted one", if killed { "mid-run" } else { "after it ended" }, (full / 2).as_secs_f64(), full.as_secs_f64());
}
