//! Probabilistic metrics against the reference libraries: `fixtures/prob_metrics.json` was written
//! by `fixtures/make_prob_fixtures.sh` (GluonTS 0.17 `Evaluator`, properscoring `crps_ensemble`).

use serde_json::Value;
use strata_train::evaluation::prob_metrics::{aggregate, item_metrics};

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/prob_metrics.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-6 * want.abs().max(1.0);
    assert!((got - want).abs() <= tol, "{what}: strata {got} vs reference {want}");
}

#[test]
fn item_and_aggregate_metrics_match_gluonts_and_properscoring() {
    let f = fixture();
    let m = f["seasonality"].as_u64().unwrap() as usize;
    let quantiles: Vec<f64> = f["quantiles"].as_array().unwrap().iter().map(|q| q.as_f64().unwrap()).collect();
    let mut items = Vec::new();
    for (i, s) in f["series"].as_array().unwrap().iter().enumerate() {
        let samples: Vec<f32> = s["samples"].as_array().unwrap().iter().flat_map(f32s).collect();
        let it = item_metrics(&f32s(&s["past"]), &f32s(&s["target"]), &samples, &quantiles, m, 0.05);
        let r = &s["item"];
        let get = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("series {i}: no {k}"));
        for (k, v) in [
            ("MSE", it.mse),
            ("abs_error", it.abs_error),
            ("abs_target_sum", it.abs_target_sum),
            ("seasonal_error", it.seasonal_error),
            ("MASE", it.mase),
            ("MAPE", it.mape),
            ("sMAPE", it.smape),
            ("MSIS", it.msis),
            ("ND", it.nd),
        ] {
            close(v, get(k), &format!("series {i} {k}"));
        }
        for (j, q) in quantiles.iter().enumerate() {
            close(it.quantile_loss[j], get(&format!("QuantileLoss[{q}]")), &format!("series {i} QuantileLoss[{q}]"));
            close(it.coverage[j], get(&format!("Coverage[{q}]")), &format!("series {i} Coverage[{q}]"));
        }
        let ps: Vec<f64> = s["crps_ensemble"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        close(it.crps, ps.iter().sum::<f64>() / ps.len() as f64, &format!("series {i} CRPS (properscoring)"));
        items.push(it);
    }
    let a = aggregate(&items, &quantiles);
    let r = &f["aggregate"];
    let get = |k: &str| r[k].as_f64().unwrap();
    for (k, v) in [
        ("MSE", a.mse),
        ("ND", a.nd),
        ("NRMSE", a.nrmse),
        ("MASE", a.mase),
        ("MAPE", a.mape),
        ("sMAPE", a.smape),
        ("MSIS", a.msis),
        ("mean_wQuantileLoss", a.mean_wquantile_loss),
    ] {
        close(v, get(k), &format!("aggregate {k}"));
    }
    // GluonTS 0.17's MAE_Coverage compares every level with the coverage of the LAST quantile (its
    // list comprehension uses the previous loop's variable), so it reports 0.5 here; strata
    // computes mean |coverage(q) - q| from the reference's own coverages instead.
    let want = quantiles.iter().map(|q| (get(&format!("Coverage[{q}]")) - q).abs()).sum::<f64>() / quantiles.len() as f64;
    close(a.mae_coverage, want, "mean |coverage - level|");
    for (j, q) in quantiles.iter().enumerate() {
        close(a.wquantile_loss[j], get(&format!("wQuantileLoss[{q}]")), &format!("aggregate wQuantileLoss[{q}]"));
        close(a.coverage[j], get(&format!("Coverage[{q}]")), &format!("aggregate Coverage[{q}]"));
    }
}
