//! `strata synth`, `strata distill` and `strata distill-eval` end to end on a small synthetic
//! graph: the distilled folder is complete and a model trained on it forecasts every location.

mod common;

use common::{small_distill_sets, strata, synth_graph, tmp};

#[test]
fn distill_a_synthetic_graph_and_train_on_the_result() {
    let dir = tmp("distill");
    let data = synth_graph(&dir, 40);
    let sets = small_distill_sets(&data);
    for method in ["stemdist", "random"] {
        let folder = dir.join(method);
        let mut cmd = strata();
        cmd.args(["distill", "--method", method, "--out"]).arg(&folder);
        for s in &sets {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(folder.join("distilled.json")).unwrap()).unwrap();
        // 10 of 40 locations; 20% of the training windows.
        assert_eq!(r["k"], 10, "{method}");
        assert_eq!(r["real_locations"], 40);
        assert_eq!(r["m"].as_u64().unwrap(), (0.2 * r["real_windows"].as_f64().unwrap()).round() as u64);
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 0.0);
        assert_eq!(r["assignment"].as_array().unwrap().len(), 40);
        let ev = strata().arg("distill-eval").arg(&folder).args(["--epochs", "2", "--seed", "1"]).output().unwrap();
        assert!(ev.status.success(), "{method}: {}", String::from_utf8_lossy(&ev.stderr));
        let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(folder.join("eval_s1.json")).unwrap()).unwrap();
        // The model trained on 10 (synthetic) locations forecasts all 40 real ones: every test
        // window x 12 steps x 40 locations is scored (no null values in this data).
        let test_windows = {
            let rows = 4 * 24;
            let total = rows - 24 + 1;
            total - (0.7 * total as f64).round() as usize - (0.1 * total as f64).round() as usize
        };
        assert_eq!(e["test"]["points"].as_u64().unwrap() as usize, test_windows * 12 * 40, "{method}");
        assert!(e["test"]["rrse"].as_f64().unwrap().is_finite());
    }
    let bad = strata().args(["distill-eval"]).arg(dir.join("nothing")).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a distilled folder"), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// On the real los-loop data: k-center and CondTSF (MTT underneath) distil through the CLI,
/// and `strata train --distilled` writes a run whose model forecasts every test window at all
/// 207 real locations; its MAE, recomputed here from `test_forecast.npy` and the real series,
/// equals the one it reports.
#[test]
fn train_on_a_distilled_los_loop_folder() {
    let dir = tmp("distill-train");
    let tiny = [
        "distill.temporal=0.1",
        "distill.spatial=0.1",
        "distill.outer=1",
        "distill.inner=1",
        "distill.eval_every=1",
        "distill.eval_epochs=1",
        "distill.model.layers=2",
        "distill.model.conv_channels=8",
        "distill.model.residual_channels=8",
        "distill.model.skip_channels=8",
        "distill.model.end_channels=16",
        "distill.mtt.experts=1",
        "distill.mtt.expert_epochs=1",
        "distill.mtt.expert_batches=1",
        "distill.mtt.expert_span=1",
        "distill.mtt.syn_steps=2",
        "distill.condtsf.every=1",
        "distill.condtsf.epochs=1",
    ];
    for method in ["kcenter", "condtsf"] {
        let folder = dir.join(method);
        let mut cmd = strata();
        cmd.args(["distill", "--dataset", "los-loop", "--method", method, "--out"]).arg(&folder);
        for s in tiny {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(folder.join("distilled.json")).unwrap()).unwrap();
        // Time only: 1% of the windows, every location.
        assert_eq!(r["k"], 207, "{method}");
        assert_eq!(r["m"].as_u64().unwrap(), (0.01 * r["real_windows"].as_f64().unwrap()).round() as u64, "{method}");
    }
    let run = dir.join("run");
    let out = strata().args(["train", "--distilled"]).arg(dir.join("condtsf")).args(["--epochs", "2", "--out"]).arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all 207 real locations"));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["method"], "condtsf");
    assert_eq!(r["real_locations"], 207);
    assert_eq!(r["data_sha256"].as_str().unwrap().len(), 64);
    assert!(r["git_revision"].as_str().is_some() && r["wall_seconds"].as_f64().unwrap() > 0.0);
    for f in ["model.bpk", "locations.npy"] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let (shape, pred) = strata_data::npy::read_npy(&run.join("test_forecast.npy")).unwrap();
    let windows = r["test_windows"].as_u64().unwrap() as usize;
    assert_eq!(shape, vec![windows, 12, 207]);
    // The truth from the real series, gathered independently of the run: test window i starts
    // at the first test row + i; null speeds (0) are masked.
    // SAFETY: set before any thread of this test reads the environment; others set the same.
    unsafe { std::env::set_var("STRATA_DATA", common::data_root()) };
    let cfg = strata_data::DataConfig { dataset: "los-loop".into(), seq_len: 12, pred_len: 12, ..Default::default() };
    let d = strata_data::prepare_spatial(&cfg).unwrap();
    assert_eq!(d.test.len(), windows);
    let (mut ae, mut count) = (0f64, 0usize);
    for i in 0..windows {
        for t in 0..12 {
            for n in 0..207 {
                let y = d.train.target.data[(d.test.start + i + 12 + t) * 207 + n] as f64;
                if y.abs() > 1e-4 {
                    ae += (pred[(i * 12 + t) * 207 + n] as f64 - y).abs();
                    count += 1;
                }
            }
        }
    }
    let mae = r["test"]["mae"].as_f64().unwrap();
    assert_eq!(r["test"]["points"].as_u64().unwrap() as usize, count);
    assert!((ae / count as f64 - mae).abs() < 1e-3 * mae, "recomputed {} vs reported {mae}", ae / count as f64);
}
