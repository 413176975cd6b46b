//! `strata synth`, `strata distill` and `strata distill-eval` end to end on a small synthetic
//! graph: the distilled folder is complete and a model trained on it forecasts every location.

mod common;

use common::{strata, tmp};

#[test]
fn distill_a_synthetic_graph_and_train_on_the_result() {
    let dir = tmp("distill");
    let data = dir.join("synth");
    let out = strata().args(["synth", "--nodes", "40", "--days", "4", "--steps-per-day", "24", "--seed", "3", "--out"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SYNTHETIC"));
    let sets = [
        "data.dataset=\"spatial\"".to_string(),
        format!("data.path=\"{}\"", data.join("signal.npy").display()),
        format!("data.graph=\"{}\"", data.join("graph.csv").display()),
        "data.graph_weights=\"raw\"".into(),
        "data.graph_symmetric=true".into(),
        "data.steps_per_day=24".into(),
        "distill.outer=2".into(),
        "distill.inner=2".into(),
        "distill.subsets=2".into(),
        "distill.batch=8".into(),
        "distill.model_epochs=1".into(),
        "distill.eval_every=1".into(),
        "distill.eval_epochs=2".into(),
        "distill.temporal=0.2".into(),
        "distill.spatial=0.25".into(),
        "distill.model.layers=2".into(),
        "distill.model.conv_channels=8".into(),
        "distill.model.residual_channels=8".into(),
        "distill.model.skip_channels=8".into(),
        "distill.model.end_channels=16".into(),
    ];
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
