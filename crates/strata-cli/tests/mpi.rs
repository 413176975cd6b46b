//! Data-parallel training under `mpirun -np 2` (feature `mpi`; needs Open MPI's `mpirun`):
//! two ranks take the steps one process takes, a whole run reaches the same test error, and a
//! fault on one rank ends every rank with the diagnosis; the run then resumes.
#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use common::{data_root, strata, tmp, two_series_csv};

/// `mpirun -np 2` of the strata binary (root allowed, more ranks than cores allowed: CI).
fn mpirun() -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-np", "2", "--oversubscribe", "-x", "STRATA_DATA"])
        .env("STRATA_DATA", data_root())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .arg(env!("CARGO_BIN_EXE_strata"));
    c
}

fn ok(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    o
}

fn results(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap()
}

/// Every float parameter of the run's best checkpoint, in visit order.
fn parameters(run: &Path) -> Vec<f32> {
    struct Read(Vec<f32>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.extend(p.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap());
        }
    }
    let p = strata_train::inference::forecast::Predictor::load(run, &Device::flex()).unwrap();
    let mut r = Read(vec![]);
    p.model().visit(&mut r);
    r.0
}

/// `|a - b| / |a|` (Euclidean norms over every parameter).
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let n: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

/// Train `args` in one process and on two ranks; both runs' folders.
fn both(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    let (one, two) = (dir.join(format!("{name}_1")), dir.join(format!("{name}_2")));
    ok(strata().args(args).arg("--out").arg(&one).output().unwrap(), "one process");
    let o = ok(mpirun().args(args).arg("--out").arg(&two).output().unwrap(), "mpirun -np 2");
    assert!(String::from_utf8_lossy(&o.stderr).contains("data-parallel over 2 ranks"));
    (one, two)
}

#[test]
fn two_ranks_take_the_steps_of_one_process() {
    let dir = tmp("mpi-steps");
    // DLinear on ETTh1 and STGCN on los-loop (masked MAE: each rank's loss counts with the
    // points it kept), dropout off, a few steps: the same parameters. PatchTST's BatchNorm
    // normalises each rank's half batch by its own statistics (as PyTorch DDP without
    // SyncBatchNorm): close, not equal.
    let cases: [(&str, f64, &[&str]); 3] = [
        ("dlinear", 1e-5, &["train", "--config", "../../configs/etth1_dlinear_336_96.toml", "--set", "train.epochs=2", "--set", "train.max_steps_per_epoch=4"]),
        ("stgcn", 1e-5, &["train", "--config", "../../configs/los-loop_stgcn.toml", "--set", "model.dropout=0.0", "--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=4"]),
        ("patchtst", 1e-3, &["train", "--config", "../../configs/etth1_patchtst_336_96.toml", "--set", "model.dropout=0.0", "--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=4"]),
    ];
    for (name, tolerance, args) in cases {
        let (one, two) = both(&dir, name, args);
        let d = rel_diff(&parameters(&one), &parameters(&two));
        eprintln!("{name}: |one - two| / |one| = {d:.2e}");
        assert!(d <= tolerance, "{name}: parameters differ by {d:.2e} (relative, Euclidean)");
        let (a, b) = (results(&one), results(&two));
        assert_eq!(b["training"]["parallel"]["world_size"], 2);
        assert!(b["training"]["parallel"]["launcher"].as_str().unwrap().contains("mpirun"));
        let (ta, tb) = (a["test"]["mae"].as_f64().unwrap(), b["test"]["mae"].as_f64().unwrap());
        assert!((ta - tb).abs() <= tolerance * ta, "{name}: test MAE {ta} vs {tb}");
    }
}

/// A fine-tuning method (every MOIRAI weight, on the tiny uni2ts fixture: no dropout): the
/// same validation loss and test error on two ranks.
#[test]
fn fine_tuning_on_two_ranks_matches_one_process() {
    let dir = tmp("mpi-finetune");
    let csv = two_series_csv(&dir);
    let path = format!("data.path={:?}", csv.display().to_string());
    let args = [
        "finetune", "--method", "full", "--model", "../../fixtures/moirai/tiny", "--dataset", "custom", "--set", &path, "--set", "data.seq_len=64", "--set", "data.pred_len=16",
        "--set", "patch_size=8", "--set", "train.epochs=2", "--set", "train.max_steps_per_epoch=3", "--set", "train.batch_size=8", "--set", "train.lr=1e-3", "--set", "train.paths=20",
    ];
    let (one, two) = both(&dir, "full", &args);
    let (a, b) = (results(&one), results(&two));
    for key in ["val_loss", "test_mse", "test_mae"] {
        let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-5 * x.abs(), "{key}: {x} vs {y}");
    }
    assert_eq!(b["parallel"]["world_size"], 2);
}

/// The whole DLinear run of the paper's config on two ranks: the one-process test MSE.
#[test]
fn a_whole_two_rank_run_reaches_the_one_process_test_error() {
    let dir = tmp("mpi-whole");
    let (one, two) = both(&dir, "dlinear", &["train", "--config", "../../configs/etth1_dlinear_336_96.toml"]);
    let (a, b) = (results(&one)["test"]["mse"].as_f64().unwrap(), results(&two)["test"]["mse"].as_f64().unwrap());
    assert!((a - b).abs() <= 0.005 * a, "test MSE {a} (one process) vs {b} (two ranks)");
}

/// A loss that is not finite on the ranks stops every rank with the diagnosis.
#[test]
fn a_diverging_run_stops_every_rank_with_the_diagnosis() {
    let dir = tmp("mpi-nan");
    let started = Instant::now();
    let o = mpirun().args(["train", "--config", "../../configs/etth1_dlinear_336_96.toml", "--set", "train.lr=1e30", "--out"]).arg(dir.join("run")).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("diverged at epoch 1 step 2") && err.contains("lower train.lr"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A rank killed mid-run ends the job on every rank within 30 s; the same command resumes
/// from the last checkpoint and finishes.
#[test]
fn a_killed_rank_ends_the_job_and_the_run_resumes() {
    let dir = tmp("mpi-kill");
    let run = dir.join("run");
    let args = ["train", "--config", "../../configs/etth1_patchtst_336_96.toml", "--set", "train.epochs=4", "--set", "train.max_steps_per_epoch=6", "--out"];
    let mut job = mpirun().args(args).arg(&run).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let waited = Instant::now();
    while !run.join("state.json").exists() {
        assert!(waited.elapsed() < Duration::from_secs(300), "no epoch finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The ranks: strata processes whose command line names this run folder.
    let ranks: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            comm.trim() == "strata" && String::from_utf8_lossy(&cmd).contains(run.to_str().unwrap())
        })
        .collect();
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    let killed = Instant::now();
    assert!(Command::new("kill").args(["-9", &ranks[1].to_string()]).status().unwrap().success());
    let status = job.wait().unwrap();
    assert!(!status.success());
    assert!(killed.elapsed() < Duration::from_secs(30), "the job took {:?} to end", killed.elapsed());
    let o = ok(mpirun().args(args).arg(&run).output().unwrap(), "resumed run");
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming"), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&run);
    assert!(r["training"]["resumed_at_epoch"].as_u64().unwrap() >= 1);
    assert_eq!(r["training"]["epochs_run"], 4);
}
