//! `strata online` (docs/online.md) on the synthetic drift stream (`strata synth
//! --drift-stream`: a level shift at row 6,000, a gradual change over rows 9,000-10,000): the
//! frozen stream's cumulative MSE is the test split's MSE computed by the evaluation; OGD with a
//! zero rate forecasts exactly as the frozen model; OGD, ER and DER++ adapt to the shift; the
//! drift detectors fire after it and not before; delayed reveal equals immediate at horizon 1;
//! an interrupted walk resumes to the same stream, bit for bit.

mod common;

use std::path::{Path, PathBuf};

use common::{strata, tmp};

fn config(data: &Path) -> String {
    format!(
        r#"
[data]
dataset = "custom"
path = "{}"
features = "M"
seq_len = 48
pred_len = 4
split_rows = [3000, 1000, 8000]
[model]
name = "tcn"
hidden = 16
depth = 3
output = 32
[train]
epochs = 2
batch_size = 32
lr = 0.003
optimizer = "adamw"
weight_decay = 0.01
seed = 3
[online]
strategy = "none"
checkpoint_every = 500
"#,
        data.display()
    )
}

/// The drift stream and the config file in `dir`.
fn setup(dir: &Path) -> PathBuf {
    let out = strata().args(["synth", "--drift-stream", "--out"]).arg(dir.join("stream")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg = dir.join("online.toml");
    std::fs::write(&cfg, config(&dir.join("stream/drift.csv"))).unwrap();
    cfg
}

fn online(cfg: &Path, out: &Path, sets: &[&str]) -> serde_json::Value {
    let mut c = strata();
    c.args(["online", "--config"]).arg(cfg).arg("--out").arg(out);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("online/online.json")).unwrap()).unwrap()
}

/// Each step's MSE from `online_curve.csv`.
fn curve(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("online/online_curve.csv")).unwrap().lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn the_stream_walk_scores_adapts_and_detects() {
    let dir = tmp("online");
    let cfg = setup(&dir);
    // Frozen, with both detectors reporting: the cumulative MSE over every test window is the
    // test MSE the evaluation computed for the warm-up (batched, another code path).
    let frozen = online(&cfg, &dir.join("none"), &["online.drift.detector=\"adwin\""]);
    let warm = dir.join("none/warmup").display().to_string();
    let from = format!("online.from=\"{warm}\"");
    let (mse, test) = (frozen["mse"].as_f64().unwrap(), frozen["warmup_test_mse"].as_f64().unwrap());
    assert!((mse - test).abs() <= 1e-5 * test, "frozen stream {mse} vs test evaluation {test}");
    // The test rows start seq_len rows before row 4,000: 8,000 + 48 rows, 8,000 - 4 + 1 windows.
    assert_eq!(frozen["steps"], 8000 - 4 + 1);
    let none = curve(&dir.join("none"));

    // The level shift at row 6,000 enters the truth of step 6000 - 4000 - 4 + 1 = 1997 (the first
    // window whose horizon reaches it). ADWIN fires within 50 steps of it and never before.
    let fired: Vec<usize> = frozen["drift_steps"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let first = *fired.first().expect("ADWIN fires");
    assert!((1997..1997 + 50).contains(&first), "ADWIN fired first at step {first}");
    let ph = online(&cfg, &dir.join("ph"), &[&from, "online.drift.detector=\"page-hinkley\""]);
    let first = ph["drift_steps"][0].as_u64().expect("Page-Hinkley fires") as usize;
    assert!((1997..1997 + 100).contains(&first), "Page-Hinkley fired first at step {first}");

    // OGD at rate 0 forecasts as the frozen model (its forecast is the update's forward pass).
    let zero = online(&cfg, &dir.join("zero"), &[&from, "online.strategy=\"ogd\"", "online.lr=0.0", "online.max_steps=600"]);
    let z = curve(&dir.join("zero"));
    assert_eq!(zero["steps"], 600);
    for (t, (a, b)) in z.iter().zip(&none).enumerate() {
        assert!((a - b).abs() <= 1e-5 * b.max(1e-3), "step {t}: {a} vs frozen {b}");
    }

    // Every updating strategy adapts to the shift: lower cumulative MSE over the first 3000 steps
    // than the frozen model's, and lower still after the shift.
    let frozen_3000 = mean(&none[..3000]);
    let after = |c: &[f64]| mean(&c[2100..3000]);
    for s in ["ogd", "er", "derpp"] {
        let out = dir.join(s);
        let r = online(&cfg, &out, &[&from, &format!("online.strategy=\"{s}\""), "online.max_steps=3000"]);
        let c = curve(&out);
        let m = r["mse"].as_f64().unwrap();
        assert!((m - mean(&c)).abs() < 1e-6 * m, "{s}: online.json and the curve agree");
        assert!(m < frozen_3000, "{s}: cumulative MSE {m} vs frozen {frozen_3000}");
        assert!(after(&c) < 0.75 * after(&none), "{s}: after the shift {} vs frozen {}", after(&c), after(&none));
    }

    // Drift-triggered re-training: the frozen model, re-trained on the 100 windows after ADWIN
    // fired, does better after the shift than the frozen one.
    let out = dir.join("retrain");
    let r = online(&cfg, &out, &[&from, "online.drift.detector=\"adwin\"", "online.on_drift=\"retrain\"", "online.drift_wait=100", "online.retrain_windows=100", "online.retrain_epochs=3", "online.max_steps=3000"]);
    assert!(!r["retrain_steps"].as_array().unwrap().is_empty());
    assert!(after(&curve(&out)) < after(&none), "re-trained after the shift");
    // Drift-triggered updates: frozen until ADWIN fires, then OGD for 500 steps.
    let out = dir.join("update");
    online(&cfg, &out, &[&from, "online.drift.detector=\"adwin\"", "online.on_drift=\"update\"", "online.max_steps=3000"]);
    let c = curve(&out);
    assert_eq!(&c[..1990], &none[..1990], "frozen before the first fire");
    assert!(after(&c) < 0.75 * after(&none), "updated after the shift: {} vs frozen {}", after(&c), after(&none));
}

#[test]
fn delayed_reveal_is_immediate_reveal_at_horizon_one() {
    let dir = tmp("online-delayed");
    let cfg = setup(&dir);
    let sets = ["data.pred_len=1", "online.strategy=\"ogd\"", "online.max_steps=400"];
    online(&cfg, &dir.join("immediate"), &sets);
    let from = format!("online.from=\"{}\"", dir.join("immediate/warmup").display());
    online(&cfg, &dir.join("delayed"), &[sets[0], sets[1], sets[2], &from, "online.reveal=\"delayed\""]);
    assert_eq!(curve(&dir.join("immediate")), curve(&dir.join("delayed")));
    // At a longer horizon the delayed walk learns later: a different stream.
    let h4 = ["online.strategy=\"ogd\"", "online.max_steps=400"];
    online(&cfg, &dir.join("i4"), &h4);
    let from = format!("online.from=\"{}\"", dir.join("i4/warmup").display());
    online(&cfg, &dir.join("d4"), &[h4[0], h4[1], &from, "online.reveal=\"delayed\""]);
    assert_ne!(curve(&dir.join("i4")), curve(&dir.join("d4")));
}

#[test]
fn an_interrupted_walk_resumes_to_the_same_stream() {
    let dir = tmp("online-crash");
    let cfg = setup(&dir);
    let sets = ["online.strategy=\"derpp\"", "online.max_steps=1200", "online.checkpoint_every=200", "online.drift.detector=\"page-hinkley\""];
    let want = online(&cfg, &dir.join("whole"), &sets);
    let from = format!("online.from=\"{}\"", dir.join("whole/warmup").display());
    let want_curve = std::fs::read_to_string(dir.join("whole/online/online_curve.csv")).unwrap();
    // Die at a checkpoint event of the walk (a file written or renamed), then run again.
    for at in [2, 7, 13, 21] {
        let out = dir.join(format!("crash{at}"));
        let mut c = strata();
        c.args(["online", "--config"]).arg(&cfg).arg("--out").arg(&out).env("STRATA_CRASH_AT", at.to_string());
        for s in sets.iter().copied().chain([from.as_str()]) {
            c.args(["--set", s]);
        }
        let died = c.output().unwrap();
        assert!(!died.status.success(), "crash {at} happened");
        let got = online(&cfg, &out, &[sets[0], sets[1], sets[2], sets[3], &from]);
        for key in ["mse", "mae", "drift_steps", "steps"] {
            assert_eq!(got[key], want[key], "crash at event {at}: {key}");
        }
        assert_eq!(std::fs::read_to_string(out.join("online/online_curve.csv")).unwrap(), want_curve, "crash at event {at}: the curve");
    }
}

#[test]
fn fsnet_keeps_its_adapter_state_from_training_to_evaluation_and_the_walk() {
    // FSNet's gradient averages live outside the parameters: the warm-up's test evaluation,
    // `strata eval` of the warm-up and the frozen walk all read them as the last training step
    // left them (`aux_state.json`), so all three score the same windows the same; with the
    // averages started afresh the model forecasts differently.
    let dir = tmp("online-fsnet");
    let cfg = setup(&dir);
    let sets = ["model.name=\"fsnet\"", "model.controller=16", "model.slots=4", "train.epochs=1", "data.split_rows=[3000, 1000, 1500]"];
    let frozen = online(&cfg, &dir.join("none"), &sets);
    let (mse, test) = (frozen["mse"].as_f64().unwrap(), frozen["warmup_test_mse"].as_f64().unwrap());
    assert!((mse - test).abs() <= 1e-5 * test, "frozen FSNet stream {mse} vs its test evaluation {test}");
    let warm = dir.join("none/warmup");
    let o = strata().arg("eval").arg(&warm).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(warm.join("eval.json")).unwrap()).unwrap();
    let again = eval["test"]["mse"].as_f64().unwrap();
    assert!((again - test).abs() <= 1e-5 * test, "strata eval {again} vs the run's {test}");
    // Without the state (averages at zero) the same weights forecast otherwise.
    std::fs::remove_file(warm.join("aux_state.json")).unwrap();
    let o = strata().arg("eval").arg(&warm).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(warm.join("eval.json")).unwrap()).unwrap();
    let fresh = eval["test"]["mse"].as_f64().unwrap();
    assert!((fresh - test).abs() > 1e-4 * test, "the adapter state matters: {fresh} vs {test}");
}
