//! Covariates of spatio-temporal data end to end: the leakage guard for every covariate-aware
//! model on a sensor graph (past-observed, future-known and static covariates per node, the
//! coordinates among the static ones), and what a past-observed covariate buys a model that
//! can use it.
//!
//! As in `covariates.rs`, the guard writes a long table, changes cells after a test window's
//! forecast origin, reads it again and asserts the forecast of that window is the same to the
//! bit; changing the same cells before the origin must change it, so the guard can fail.

mod common;

use common::date;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use strata_data::covariates::CovariateConfig;
use strata_data::prepare::DataConfig;
use strata_data::window::Batch;
use strata_models::{Model, ModelConfig};
use strata_train::RunConfig;
use strata_train::tasks::data::{Task, build_model, covariates_of};

const ROWS: usize = 360;
const NODES: usize = 4;

/// Noise in [-1, 1] (a hash of the cell), so that a covariate carries what the target's past
/// does not.
fn noise(s: usize, t: usize) -> f64 {
    let mut h = (s as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 29;
    (h % 20001) as f64 / 10000.0 - 1.0
}

/// One cell of node `s`: `y` follows a daily cycle plus the occupancy one step earlier.
fn value(col: &str, s: usize, t: usize) -> f64 {
    let daily = (t as f64 * std::f64::consts::TAU / 24.0 + s as f64).sin();
    match col {
        "occ" => noise(s, t),
        "hol" => ((t / 24) % 7 == 5) as u8 as f64 + 0.2 * noise(s + 9, t),
        "elev" => 100.0 + 40.0 * s as f64,
        "lat" => 34.0 + 0.01 * s as f64,
        "lon" => -118.0 + 0.02 * (s % 2) as f64,
        _ => 5.0 + daily + 0.8 * if t > 0 { noise(s, t - 1) } else { 0.0 },
    }
}

/// `unique_id,ds,y,occ,hol,elev,lat,lon`, cells of `perturb` (column, from row, to row) changed.
fn write_long(path: &Path, perturb: Option<(&str, usize, usize)>) {
    let mut s = String::from("unique_id,ds,y,occ,hol,elev,lat,lon\n");
    for k in 0..NODES {
        for t in 0..ROWS {
            let cell = |c: &str| match perturb {
                Some((pc, from, to)) if pc == c && (from..to).contains(&t) => value(c, k, t) + 3.0 + t as f64 * 0.05,
                _ => value(c, k, t),
            };
            let cols = ["y", "occ", "hol", "elev", "lat", "lon"].map(|c| format!("{:.6}", cell(c)));
            s.push_str(&format!("s{k},{},{}\n", date(t), cols.join(",")));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn dir(name: &str) -> PathBuf {
    common::dir("strata-stcov", name)
}

/// Four sensors, a k-nearest-neighbour graph from their coordinates, 12 steps in, `pred_len` out.
fn data(path: &Path, pred_len: usize, covariates: CovariateConfig) -> DataConfig {
    DataConfig {
        dataset: "spatial".into(),
        path: Some(path.to_path_buf()),
        seq_len: 12,
        pred_len,
        coordinate_columns: Some(vec!["lat".into(), "lon".into()]),
        graph_from: Some(strata_data::source::coords::GraphFrom::Knn),
        graph_k: 2,
        covariates,
        ..Default::default()
    }
}

fn all_kinds() -> CovariateConfig {
    CovariateConfig { past: vec!["occ".into()], future: vec!["hol".into()], statics: vec!["elev".into(), "lat".into()], ..Default::default() }
}

/// The forecast of test window `k`, through the evaluation's batch path.
fn forecast(task: &Task, model: &Model, k: usize, device: &Device) -> Vec<f32> {
    let w = task.splits()[2];
    let mut batch = Batch::default();
    w.fill(&[k], &mut batch);
    let x = task.input(&mut batch, device);
    let cov = covariates_of(w, &mut batch, device);
    assert!(cov.is_some(), "the data has covariates");
    model.forward_inputs(x, None, None, cov).into_data().convert::<f32>().try_into_vec().unwrap()
}

/// Every covariate-aware model, the spatio-temporal ones and the long-sequence ones.
fn covariate_models() -> Vec<ModelConfig> {
    common::covariate_models(&["stid", "gwnet", "stgcn", "mtgnn", "stcnn", "convlstm", "tide", "timexer", "itransformer"])
}

#[test]
fn no_spatial_model_sees_past_covariates_or_the_target_after_the_origin() {
    let d = dir("leak");
    let path = d.join("long.csv");
    let device = Device::flex();
    write_long(&path, None);
    for model_cfg in covariate_models() {
        let kinds = model_cfg.covariates();
        let mut cov = all_kinds();
        if !kinds.statics {
            cov.statics.clear();
        }
        if !kinds.future {
            cov.future.clear();
        }
        let data = data(&path, 6, cov);
        write_long(&path, None);
        let task = Task::load(&data).unwrap();
        let cfg = RunConfig { data: data.clone(), model: model_cfg.clone(), train: Default::default(), eval: Default::default(), online: None, name: None };
        let model = build_model(&cfg, &task, &device).unwrap_or_else(|e| panic!("{}: {e:#}", model_cfg.name()));
        let w = task.splits()[2];
        let k = 3;
        let origin = w.start + k + w.seq_len;
        let reference = forecast(&task, &model, k, &device);
        let name = model_cfg.name();
        let check = |col: &'static str, from: usize, to: usize, must_change: bool| {
            write_long(&path, Some((col, from, to)));
            let got = forecast(&Task::load(&data).unwrap(), &model, k, &device);
            let changed = got != reference;
            assert_eq!(changed, must_change, "{name}: rows {from}..{to} of '{col}' {} the forecast", if changed { "changed" } else { "left" });
        };
        check("occ", origin, ROWS, false);
        check("y", origin, ROWS, false);
        check("occ", origin - 3, origin, true);
        check("y", origin - 3, origin, true);
        if kinds.future {
            check("hol", origin + w.pred_len, ROWS, false);
            if matches!(name, "stid" | "tide") {
                check("hol", origin, origin + w.pred_len, true);
            }
        }
    }
}

#[test]
fn stid_uses_a_past_covariate_that_carries_what_the_target_does_not() {
    // y_t = 5 + daily + 0.8 occ_{t-1}, occ noise: one step ahead, the last input row's occupancy
    // explains what the target's own past cannot (a variance of 0.8^2 / 3 = 0.21).
    let d = dir("gain");
    let path = d.join("long.csv");
    write_long(&path, None);
    let mae = |cov: CovariateConfig, tag: &str| {
        let model = ModelConfig::Stid(strata_models::STIDConfig { dropout: 0.0, ..Default::default() });
        let mut cfg = RunConfig { name: Some(tag.into()), data: data(&path, 1, cov), model, train: Default::default(), eval: Default::default(), online: None };
        cfg.train.epochs = 40;
        cfg.train.batch_size = 32;
        cfg.train.lr = 3e-3;
        cfg.train.patience = 40;
        let r = strata_train::tasks::forecasting::train(&cfg, &d.join(tag), strata_train::tasks::forecasting::TrainOptions { fresh: true }).unwrap();
        r.spatial.expect("spatial results").test.average.mae
    };
    let without = mae(CovariateConfig::default(), "without");
    let with = mae(CovariateConfig { past: vec!["occ".into()], ..Default::default() }, "with");
    eprintln!("STID one step ahead, test masked MAE: without the covariate {without:.4}, with it {with:.4}");
    // Uniform noise of amplitude 0.8 left unexplained costs a mean absolute error near 0.4.
    assert!(without > 0.3, "without the covariate: MAE {without}");
    assert!(with < 0.5 * without, "with the covariate: MAE {with}, without {without}");
}

#[test]
fn refusals_name_the_model_the_kind_and_the_fix() {
    let d = dir("refuse");
    let path = d.join("long.csv");
    write_long(&path, None);
    let device = Device::flex();
    // Graph WaveNet takes past-observed covariates only.
    let data = data(&path, 6, all_kinds());
    let cfg = RunConfig { data: data.clone(), model: ModelConfig::Gwnet(Default::default()), train: Default::default(), eval: Default::default(), online: None, name: None };
    let e = build_model(&cfg, &Task::load(&data).unwrap(), &device).unwrap_err().to_string();
    assert!(e.contains("gwnet does not take future-known covariates") && e.contains("data.covariates.future") && e.contains("stid"), "{e}");
    // A name that is not a column of the table.
    let bad = self::data(&path, 6, CovariateConfig { past: vec!["speed".into()], ..Default::default() });
    let e = Task::load(&bad).err().expect("refused").to_string();
    assert!(e.contains("long.csv") && e.contains("'speed'"), "{e}");
    // Static covariates from a file of one row per sensor, matched by id.
    let file = d.join("sensors.csv");
    std::fs::write(&file, "id,lanes\ns0,2\ns1,3\ns2,4\n").unwrap();
    let with_file = self::data(&path, 6, CovariateConfig { statics: vec!["lanes".into()], static_file: Some(file.clone()), ..Default::default() });
    let e = Task::load(&with_file).err().expect("refused").to_string();
    assert!(e.contains("sensors.csv") && e.contains("'s3'"), "{e}");
    std::fs::write(&file, "id,lanes\ns3,5\ns0,2\ns1,3\ns2,4\n").unwrap();
    let task = Task::load(&with_file).unwrap();
    let c = task.splits()[0].covariates.as_ref().expect("covariates");
    assert_eq!(c.names.statics, ["lanes"]);
    // Scaled across the four sensors: 2 3 4 5 -> mean 3.5.
    let s = c.statics.as_ref().expect("statics");
    assert!(s[0] < 0.0 && s[3] > 0.0 && (s[0] + s[3]).abs() < 1e-6, "{s:?}");
}
