//! The strata binary end to end: resume after a kill, and errors that name the key or place.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{data_root, strata, tmp, two_series_csv};
use std::time::{Duration, Instant};

const SMALL: &str = r#"
[data]
dataset = "etth1"
seq_len = 96
pred_len = 24
[model]
name = "dlinear"
[train]
epochs = 6
batch_size = 16
lr = 0.005
patience = 10
max_steps_per_epoch = 150
"#;

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn killed_run_resumes_and_matches_an_uninterrupted_one() {
    let dir = tmp("resume");
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();

    // Uninterrupted reference run.
    let reference = dir.join("reference");
    let ok = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(&reference).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // Start again elsewhere, kill it as soon as the first epoch's checkpoint lands.
    let run = dir.join("run");
    let mut child = strata()
        .args(["train", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !run.join("state.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint written");
        std::thread::sleep(Duration::from_millis(5));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(still_running, "the run finished before it could be killed");
    assert!(!run.join("results.json").exists());

    let resumed = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(&run).output().unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    let (a, b) = (results(&reference), results(&run));
    assert!(b["training"]["resumed_at_epoch"].as_u64().unwrap() >= 1);
    assert_eq!(b["training"]["epochs_run"], 6);
    // Same seeds, same checkpointed optimizer state: the resumed run ends where the reference did.
    let (ma, mb) = (a["test"]["mse"].as_f64().unwrap(), b["test"]["mse"].as_f64().unwrap());
    assert!((ma - mb).abs() < 1e-6, "reference {ma} vs resumed {mb}");
    // The test table was printed.
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("| test | 2857 |"));

    // `strata eval` reproduces the recorded metrics from the run folder alone.
    let ev = strata().arg("eval").arg(&run).output().unwrap();
    assert!(ev.status.success(), "{}", String::from_utf8_lossy(&ev.stderr));
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert!((e["test"]["mse"].as_f64().unwrap() - mb).abs() < 1e-9);
}

#[test]
fn config_errors_name_the_key() {
    let dir = tmp("keys");
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    for (set, key) in [("train.lrr=1", "lrr"), ("data.seq_len=abc", "data.seq_len"), ("model.kernel=3", "kernel")] {
        let out = strata().args(["train", "--config"]).arg(&cfg).args(["--set", set]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(key), "{set}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn bad_csv_gets_a_one_line_error_with_file_line_and_column() {
    let dir = tmp("csv");
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, "date,a,OT\n2020-01-01 00:00:00,1,2\n2020-01-01 01:00:00,oops,2\n").unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, format!("[data]\ndataset = \"custom\"\npath = {:?}\nseq_len = 1\npred_len = 1\n[model]\nname = \"dlinear\"\n", csv)).unwrap();
    let out = strata().args(["train", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.csv:3: column 2 (a): cannot parse 'oops' as a number"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn datasets_lists_the_registry() {
    let out = strata().arg("datasets").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    for name in ["etth1", "ettm2", "weather", "exchange", "ili", "custom"] {
        assert!(s.contains(name), "{s}");
    }
    assert!(s.contains("yes ("), "{s}");
}

#[test]
fn graph_model_on_real_sensor_data_prints_horizons_and_baselines() {
    let dir = tmp("st");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/los-loop_stid.toml");
    let out = strata()
        .args(["train", "--config", config.to_str().unwrap(), "--set", "train.epochs=2", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for want in ["| horizon 3 |", "| horizon 6 |", "| horizon 12 |", "| average |", "baseline: last value", "baseline: historical average"] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    let r = results(&dir);
    assert_eq!(r["data"]["nodes"], 207);
    assert_eq!(r["data"]["windows"], serde_json::json!([1395, 199, 399]));
    // Two epochs of STID already beat repeating the last value.
    let st = &r["spatial"];
    let mae = st["test"]["average"]["mae"].as_f64().unwrap();
    let last = st["baselines"]["last_value"]["average"]["mae"].as_f64().unwrap();
    assert!(mae < last, "stid {mae} vs last value {last}");
    // Another dataset with a different node count is refused by the trained model.
    let e = strata().args(["eval", dir.to_str().unwrap(), "--set", "data.dataset=\"montevideo-bus\""]).output().unwrap();
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && err.contains("trained on 207 nodes") && err.contains("has 675"), "{err}");
}

/// Generated windows against ETTh1's raw training windows: (worst |mean diff| / std, worst
/// |1 - std ratio|, worst max-over-lags |acf diff|) over the 7 variables.
fn fidelity_to_etth1(samples: &Path) -> (f64, f64, f64) {
    use strata_train::tasks::vae::{Fidelity, MAX_LAG, all_windows, window_stats};
    let (shape, generated) = strata_data::npy::read_npy(samples).unwrap();
    assert_eq!(shape[1..], [96, 7], "{shape:?}");
    let cfg = strata_data::DataConfig { dataset: "etth1".into(), path: Some(data_root().join("ETTh1/ETTh1.csv")), seq_len: 96, pred_len: 96, scale: false, ..Default::default() };
    let mut real = strata_data::prepare::prepare(&cfg).unwrap();
    real.train.pred_len = 0;
    let real = window_stats(&all_windows(&real.train), 96, 7, MAX_LAG);
    Fidelity::new(real, window_stats(&generated, 96, 7, MAX_LAG)).worst()
}

/// The VAE trains on ETTh1 and `strata sample` writes windows in the data's units whose
/// per-variable mean, standard deviation and lag-1..24 autocorrelation are near the real
/// training windows'; a VAE after one step of training is not.
#[test]
fn vae_samples_match_etth1_statistics() {
    let dir = tmp("vae");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/etth1_vae.toml");
    let train = |out: &Path, sets: &[&str]| {
        let mut c = strata();
        c.args(["train", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        sets.iter().for_each(|s| {
            c.args(["--set", s]);
        });
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let sample = |run: &Path, file: &str| {
        let o = strata().args(["sample", run.to_str().unwrap(), "--n", "500", "--out"]).arg(run.join(file)).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        run.join(file)
    };
    // Tolerances (see docs/models.md): means within 0.35 std, std within 35%, autocorrelation
    // within 0.4 at every lag 1..24.
    let within = |(m, s, a): (f64, f64, f64)| m <= 0.35 && s <= 0.35 && a <= 0.4;

    let run = dir.join("vae");
    let stdout = train(&run, &["train.epochs=8"]);
    assert!(stdout.contains("-ELBO/window") && stdout.contains("OT"), "{stdout}");
    let f = fidelity_to_etth1(&sample(&run, "samples.npy"));
    eprintln!("trained VAE: {f:?}");
    assert!(within(f), "trained VAE: {f:?}");
    let csv = std::fs::read_to_string(sample(&run, "samples.csv")).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "window,step,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT");
    assert_eq!(csv.lines().count(), 1 + 500 * 96);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("samples.json")).unwrap()).unwrap();
    assert_eq!(report["windows"], 500);

    let untrained = dir.join("untrained");
    train(&untrained, &["train.epochs=1", "train.max_steps_per_epoch=1"]);
    let f = fidelity_to_etth1(&sample(&untrained, "samples.npy"));
    eprintln!("untrained VAE: {f:?}");
    assert!(!within(f), "one training step should not pass: {f:?}");

    // A forecasting run cannot be sampled.
    let e = strata().args(["sample", dir.to_str().unwrap()]).output().unwrap();
    assert!(!e.status.success());
}

/// `strata zero-shot` with IBM's TTM-R2 weights prints the ETTh1 512 -> 96 test MSE that IBM's
/// own implementation gives on the same windows (fixtures/ttm_etth1.json: 0.36281).
#[test]
fn zero_shot_ttm_on_etth1() {
    let dir = tmp("zs");
    let out = dir.join("zs.json");
    let o = strata()
        .args(["zero-shot", "--model"])
        .arg(data_root().join("ttm-r2"))
        .args(["--dataset", "etth1", "--horizon", "96", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("MSE 0.3628") && stdout.contains("2785 windows"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!((r["mse"].as_f64().unwrap() - 0.362812).abs() < 1e-4, "{r}");
    // A horizon beyond the model's is refused.
    let e = strata().args(["zero-shot", "--model"]).arg(data_root().join("ttm-r2")).args(["--dataset", "etth1", "--horizon", "192"]).output().unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("forecasts 1..=96"));
}

/// `strata zero-shot` on a MOIRAI checkpoint folder (the committed uni2ts fixture, random
/// weights): windows packed in patches, mean forecast, CRPS/MSIS from sample paths; a patch
/// size the checkpoint does not have is refused.
#[test]
fn zero_shot_moirai_prints_point_and_probabilistic_metrics() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/moirai/tiny");
    let dir = tmp("zsm");
    let out = dir.join("zs.json");
    let o = strata()
        .args(["zero-shot", "--model"])
        .arg(&model)
        .args(["--dataset", "etth1", "--horizon", "24", "--context", "96", "--patch-size", "32", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("zero-shot MOIRAI") && stdout.contains("CRPS"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let p = &r["probabilistic"];
    let cov = p["interval_coverage"].as_array().unwrap();
    assert!(cov[0].as_f64().unwrap() <= cov[1].as_f64().unwrap() && cov[1].as_f64().unwrap() <= cov[2].as_f64().unwrap(), "{p}");
    assert!(r["mse"].as_f64().unwrap().is_finite() && p["crps"].as_f64().unwrap() > 0.0, "{r}");
    let e = strata().args(["zero-shot", "--model"]).arg(&model).args(["--dataset", "etth1", "--patch-size", "20"]).output().unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("patch sizes [8, 16, 32, 64, 128]"));
}

/// `strata pretrain` on real corpus files: a tiny MOIRAI trains (its validation NLL falls),
/// records the corpus (ETTh1 left out) with SHA-256s, exports a uni2ts checkpoint that
/// `strata zero-shot` evaluates on the held-out ETTh1, and resumes instead of restarting.
#[test]
fn pretrain_then_zero_shot_on_a_held_out_dataset() {
    let dir = tmp("pretrain");
    let cfg = dir.join("pt.toml");
    std::fs::write(
        &cfg,
        "name = \"pt\"\n[model]\nd_model = 64\nnum_layers = 1\npatch_sizes = [8, 16, 32, 64, 128]\nmax_seq_len = 512\n\
         [corpus]\ndatasets = [\"etth1\", \"etth2\", \"exchange\", \"chickenpox\"]\nleave_out = [\"etth1\"]\n\
         [train]\nsteps = 24\nbatch_size = 4\nmax_length = 128\nwarmup_steps = 2\ncheckpoint_every = 8\nlr = 0.003\nval_batches = 2\n",
    )
    .unwrap();
    let run = dir.join("run");
    let o = strata().args(["pretrain", "--config"]).arg(&cfg).arg("--out").arg(&run).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&run);
    let names: Vec<&str> = r["corpus"].as_array().unwrap().iter().map(|c| c["dataset"].as_str().unwrap()).collect();
    assert_eq!(names, ["etth2", "exchange", "chickenpox"]);
    assert!(r["corpus"].as_array().unwrap().iter().all(|c| c["sha256"].as_str().unwrap().len() == 64));
    let h = r["history"].as_array().unwrap();
    assert_eq!(h.len(), 3);
    let (first, last) = (h[0]["val_loss"].as_f64().unwrap(), h[2]["val_loss"].as_f64().unwrap());
    assert!(last < first - 0.05, "validation NLL {first} -> {last}");
    // Finished: running again resumes at the end and trains nothing more.
    let again = strata().args(["pretrain", "--config"]).arg(&cfg).arg("--out").arg(&run).output().unwrap();
    assert!(again.status.success() && String::from_utf8_lossy(&again.stderr).contains("resuming"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(results(&run)["history"].as_array().unwrap().len(), 3);
    let model = run.join("model");
    let o = strata().args(["zero-shot", "--model"]).arg(&model).args(["--dataset", "etth1", "--horizon", "24", "--context", "128", "--patch-size", "32"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("on etth1: MSE"));
}

/// `strata finetune` on a MOIRAI checkpoint (the committed uni2ts fixture) and a small CSV:
/// MSFT and LoRA train, print their trainable share, record test metrics and learned scale
/// weights; LoRA trains far fewer parameters than full fine-tuning; an unknown method and a
/// method TinyTimeMixer does not take are refused by name.
#[test]
fn finetune_moirai_methods_on_a_small_csv() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/moirai/tiny");
    let dir = tmp("finetune");
    let csv = two_series_csv(&dir);
    let run_with = |method: &str, extra: &[&str]| {
        let out = dir.join(method);
        let o = strata()
            .args(["finetune", "--method", method, "--model"])
            .arg(&model)
            .args(["--dataset", "custom", "--set"])
            .arg(format!("data.path={:?}", csv.display().to_string()))
            .args(["--set", "data.seq_len=64", "--set", "data.pred_len=16", "--set", "patch_size=8", "--set", "train.epochs=2", "--set", "train.max_steps_per_epoch=3"])
            .args(["--set", "train.batch_size=8", "--set", "train.lr=1e-3", "--set", "train.paths=20", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{method}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("parameters train ("), "{}", String::from_utf8_lossy(&o.stderr));
        results(&out)
    };
    let run = |method: &str| run_with(method, &[]);
    let msft = run("msft");
    assert_eq!(msft["scale_weights"].as_array().unwrap().len(), 4);
    // The saved model re-evaluates to the same test metrics.
    let e = strata().arg("eval").arg(dir.join("msft")).output().unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let ev: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("msft/eval.json")).unwrap()).unwrap();
    assert!((ev["test_mse"].as_f64().unwrap() - msft["test_mse"].as_f64().unwrap()).abs() < 1e-9, "{ev}");
    assert!(msft["test_mse"].as_f64().unwrap().is_finite() && msft["history"].as_array().unwrap().len() == 2, "{msft}");
    let lora = run("lora");
    let full = run("full");
    // Everything trains but the (unused) weight of the single scale.
    assert_eq!(full["trainable"].as_u64().unwrap(), full["parameters"].as_u64().unwrap() - 1);
    // LoRA r 16 on q/k/v of 2 layers of d 64: 2 x 3 x (64 x 16 + 16 x 64) = 12,288.
    assert_eq!(lora["trainable"].as_u64().unwrap(), 12_288);
    // AdaLoRA, re-allocating from step 1: 6 q/k/v matrices of initial rank 12 end with the
    // target budget of 6 x 8 triplets; P, E, Q of rank 12 train: 2 x 3 x (64 x 12 + 12 + 12 x 64).
    let ada = run_with("adalora", &["--set", "adalora.t_init=1", "--set", "adalora.t_final=1", "--set", "adalora.delta_t=1"]);
    assert_eq!(ada["trainable"].as_u64().unwrap(), 9_288);
    let notes = ada["notes"].as_str().unwrap();
    let ranks: Vec<usize> = notes[notes.find('[').unwrap() + 1..notes.find(']').unwrap()].split(", ").map(|v| v.parse().unwrap()).collect();
    assert_eq!((ranks.len(), ranks.iter().sum::<usize>()), (6, 48), "{notes}");
    // Its importance scores are checkpointed beside the parameters (a resumed run goes on with them).
    let aux: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("adalora/aux_state.json")).unwrap()).unwrap();
    assert_eq!(aux["ranks"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 48, "{aux}");
    assert_eq!(aux["scores"].as_array().unwrap().len(), 6 * 12);
    let prompt = run("prompt");
    // 16 prompt tokens of d 64.
    assert_eq!(prompt["trainable"].as_u64().unwrap(), 16 * 64);
    let e = strata().args(["finetune", "--method", "bitfit", "--model"]).arg(&model).args(["--dataset", "etth1"]).output().unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("--method bitfit: expected one of"));
    let e = strata().args(["finetune", "--method", "prompt", "--model", "ttm-r2", "--dataset", "etth1", "--set", "prompt_tokens=8", "--out"]).arg(dir.join("ttm-prompt")).output().unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("TinyTimeMixer reads 8 patches"), "{}", String::from_utf8_lossy(&e.stderr));
}

/// `strata finetune --method msft` on TinyTimeMixer R2 (IBM's weights) and a small CSV with one
/// extra scale: the window reads 512 x 2 steps, two scale weights are learned and recorded.
#[test]
fn finetune_ttm_msft_on_a_small_csv() {
    let dir = tmp("finetune-ttm");
    let csv = dir.join("one.csv");
    let mut text = String::from("date,OT\n");
    for i in 0..2000 {
        let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(i);
        text += &format!("{},{:.4}\n", date.format("%Y-%m-%d %H:%M:%S"), ((i as f64) * 0.26).sin() * 3.0 + 10.0);
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.join("run");
    let o = strata()
        .args(["finetune", "--method", "msft", "--model", "ttm-r2", "--dataset", "custom", "--set"])
        .arg(format!("data.path={:?}", csv.display().to_string()))
        .args(["--set", "msft.scales=1", "--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=2", "--set", "train.batch_size=4", "--set", "train.lr=1e-4", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&out);
    assert_eq!(r["data"]["windows"][0].as_u64().unwrap(), 1400 - 1024 - 96 + 1);
    assert_eq!(r["scale_weights"].as_array().unwrap().len(), 2);
    assert!(r["test_mse"].as_f64().unwrap().is_finite(), "{r}");
    let e = strata().arg("eval").arg(&out).output().unwrap();
    assert!(e.status.success() && String::from_utf8_lossy(&e.stdout).contains("(msft) on custom: test MSE"), "{}", String::from_utf8_lossy(&e.stderr));
    let ev: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    assert!((ev["test_mse"].as_f64().unwrap() - r["test_mse"].as_f64().unwrap()).abs() < 1e-9, "{ev}");
    // Every other method on the same backbone, one step each.
    let method = |m: &str, extra: &[&str]| {
        let run = dir.join(m);
        let o = strata()
            .args(["finetune", "--method", m, "--model", "ttm-r2", "--dataset", "custom", "--set"])
            .arg(format!("data.path={:?}", csv.display().to_string()))
            .args(["--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=1", "--set", "train.batch_size=4", "--set", "train.lr=1e-4"])
            .args(extra.iter().flat_map(|s| ["--set", s]))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        assert!(o.status.success(), "{m}: {}", String::from_utf8_lossy(&o.stderr));
        let r = results(&run);
        assert!(r["test_mse"].as_f64().unwrap().is_finite(), "{r}");
        r
    };
    // Two prompt embeddings of TTM-R2's d_model 192 (config.json).
    assert_eq!(method("prompt", &[])["trainable"].as_u64().unwrap(), 2 * 192);
    // Full fine-tuning trains every weight of the checkpoint (805,280 elements in IBM's
    // model.safetensors; the one more parameter is the single scale's frozen mixing weight);
    // the linear probe the head only: 8 patches x the decoder's d_model 128 -> 96 steps, with
    // bias (config.json).
    let full = method("full", &[]);
    assert_eq!((full["trainable"].as_u64().unwrap(), full["parameters"].as_u64().unwrap()), (805_280, 805_281), "{full}");
    assert_eq!(method("linear-probe", &[])["trainable"].as_u64().unwrap(), 8 * 128 * 96 + 96);
    // LoRA r 16 trains 16 (d_in + d_out) per fc matrix; AdaLoRA r 12 trains 12 (d_in + d_out) + 12.
    let lora = method("lora", &[])["trainable"].as_u64().unwrap();
    let ada = method("adalora", &["adalora.t_init=0", "adalora.t_final=0", "adalora.delta_t=1"]);
    let notes = ada["notes"].as_str().unwrap();
    let ranks: Vec<u64> = notes[notes.find('[').unwrap() + 1..notes.find(']').unwrap()].split(", ").map(|v| v.parse().unwrap()).collect();
    let n = ranks.len() as u64;
    assert_eq!(ada["trainable"].as_u64().unwrap(), lora / 16 * 12 + 12 * n, "{notes}");
    assert_eq!(ranks.iter().sum::<u64>(), 8 * n, "{notes}");
}
