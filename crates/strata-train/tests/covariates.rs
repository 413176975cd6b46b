//! Covariates end to end: the leakage guard for every covariate-aware model, training with
//! covariates, and refusals.
//!
//! The leakage guard writes a file, changes cells of it after a test window's forecast origin,
//! reads it again, and asserts that the model's forecast of that window is the same to the bit:
//! the reader, the splits, the scaling (fitted on training rows, before the origin), the window,
//! the batch and the model are all on the path. Changing the same covariate before the origin
//! must change the forecast, so the guard can fail.

mod common;

use common::date;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use strata_data::prepare::{DataConfig, Features};
use strata_data::covariates::CovariateConfig;
use strata_data::window::Batch;
use strata_models::{Model, ModelConfig};
use strata_train::RunConfig;
use strata_train::tasks::data::{Task, build_model, covariates_of, marks_of};

const ROWS: usize = 400;

/// One value of series `s`'s column `col` at row `t` (smooth, distinct).
fn value(col: &str, s: usize, t: usize) -> f64 {
    let tf = t as f64 + 7.0 * s as f64;
    match col {
        "load" | "temp" => (tf * 0.21).sin() * 3.0 + (tf * 0.05).cos(),
        "hol" => ((t / 24) % 7 == 5) as u8 as f64 + 0.1 * (tf * 0.3).sin(),
        "elev" => 100.0 + 50.0 * s as f64,
        _ => (tf * std::f64::consts::TAU / 24.0).sin() + 0.3 * (tf * 0.21 - 1.0).sin() + 5.0,
    }
}

/// A wide file `date,load,hol,OT`, cells of `perturb` (column, from row, to row) replaced.
fn write_wide(path: &Path, perturb: Option<(&str, usize, usize)>) {
    let mut s = String::from("date,load,hol,OT\n");
    for t in 0..ROWS {
        let cell = |c: &str| match perturb {
            Some((pc, from, to)) if pc == c && (from..to).contains(&t) => value(c, 0, t) + 17.0 + t as f64 * 0.5,
            _ => value(c, 0, t),
        };
        s.push_str(&format!("{},{:.6},{:.6},{:.6}\n", date(t), cell("load"), cell("hol"), cell("OT")));
    }
    std::fs::write(path, s).unwrap();
}

/// A long table of two series with per-series covariates: `unique_id,ds,y,temp,hol,elev`.
fn write_long(path: &Path, perturb: Option<(&str, usize, usize)>) {
    let mut s = String::from("unique_id,ds,y,temp,hol,elev\n");
    for (k, id) in ["north", "south"].iter().enumerate() {
        for t in 0..ROWS {
            let cell = |c: &str| match perturb {
                Some((pc, from, to)) if pc == c && (from..to).contains(&t) => value(c, k, t) - 11.0 - t as f64 * 0.25,
                _ => value(c, k, t),
            };
            s.push_str(&format!("{id},{},{:.6},{:.6},{:.6},{:.6}\n", date(t), cell("y"), cell("temp"), cell("hol"), cell("elev")));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn dir(name: &str) -> PathBuf {
    common::dir("strata-cov", name)
}

struct Case {
    long: bool,
    data: DataConfig,
    /// The past-observed covariate's column, the future-known one's, the target's.
    past: &'static str,
    future: &'static str,
    target: &'static str,
}

fn cases(dir: &Path) -> Vec<Case> {
    let wide = DataConfig {
        dataset: "custom".into(),
        path: Some(dir.join("wide.csv")),
        features: Features::S,
        seq_len: 32,
        pred_len: 8,
        covariates: CovariateConfig { past: vec!["load".into()], future: vec!["hol".into()], statics: vec![], ..Default::default() },
        ..Default::default()
    };
    let long = DataConfig {
        dataset: "custom".into(),
        path: Some(dir.join("long.csv")),
        features: Features::M,
        seq_len: 32,
        pred_len: 8,
        covariates: CovariateConfig { past: vec!["temp".into()], future: vec!["hol".into()], statics: vec!["elev".into()], ..Default::default() },
        ..Default::default()
    };
    vec![Case { long: false, data: wide, past: "load", future: "hol", target: "OT" }, Case { long: true, data: long, past: "temp", future: "hol", target: "y" }]
}

/// The forecast of test window `k` (scaled), through the evaluation's batch path.
fn forecast(task: &Task, model: &Model, k: usize, device: &Device) -> Vec<f32> {
    let w = task.splits()[2];
    let mut batch = Batch::default();
    w.fill(&[k], &mut batch);
    let x = task.input(&mut batch, device);
    let marks = marks_of(&mut batch, w.seq_len, w.pred_len, device);
    let cov = covariates_of(w, &mut batch, device);
    assert!(cov.is_some(), "the data has covariates");
    model.forward_inputs(x, marks, None, cov).into_data().convert::<f32>().try_into_vec().unwrap()
}

/// The long-sequence models that take covariates, small (the spatio-temporal ones need a
/// sensor graph or a grid: their guard, which runs these too, is in `spatial_covariates.rs`).
fn covariate_models() -> Vec<ModelConfig> {
    use ModelConfig::*;
    common::covariate_models(&["tide", "timexer", "itransformer"]).into_iter().filter(|m| !matches!(m, Stid(_) | Gwnet(_) | Stgcn(_) | Mtgnn(_) | Stcnn(_) | Convlstm(_))).collect()
}

#[test]
fn no_model_sees_past_covariates_or_the_target_after_the_origin() {
    let d = dir("leak");
    let device = Device::flex();
    for case in cases(&d) {
        let path = case.data.path.clone().unwrap();
        let write = |p: Option<(&str, usize, usize)>| if case.long { write_long(&path, p) } else { write_wide(&path, p) };
        write(None);
        let base = Task::load(&case.data).unwrap();
        let w = base.splits()[2];
        let k = 5;
        let origin = w.start + k * w.stride + w.seq_len;
        for model_cfg in covariate_models() {
            let kinds = model_cfg.covariates();
            let mut data = case.data.clone();
            if !kinds.statics {
                data.covariates.statics.clear();
            }
            write(None);
            let cfg = RunConfig { data: data.clone(), model: model_cfg.clone(), train: Default::default(), eval: Default::default(), online: None, name: None };
            let task = Task::load(&data).unwrap();
            let model = build_model(&cfg, &task, &device).unwrap();
            let reference = forecast(&task, &model, k, &device);
            let name = model_cfg.name();
            let check = |col: &'static str, from: usize, to: usize, must_change: bool| {
                write(Some((col, from, to)));
                let got = forecast(&Task::load(&data).unwrap(), &model, k, &device);
                let changed = got != reference;
                assert_eq!(changed, must_change, "{name} ({}): rows {from}..{to} of '{col}' {} the forecast", if case.long { "long" } else { "wide" }, if changed { "changed" } else { "left" });
            };
            // After the origin: the past-observed covariate and the target are unknown.
            check(case.past, origin, ROWS, false);
            check(case.target, origin, ROWS, false);
            // Before the origin (inside the window) both are seen: the guard can fail.
            check(case.past, origin - 4, origin, true);
            check(case.target, origin - 4, origin, true);
            // Future-known values over the horizon are seen by the models that read them there.
            if name == "tide" {
                check(case.future, origin, origin + w.pred_len, true);
            }
            // Nothing beyond the horizon is read by anyone.
            check(case.future, origin + w.pred_len, ROWS, false);
        }
    }
}

/// With the reference's final layer norm, TiDE's forecast is the linear residual plus a
/// constant: no covariate, and nothing of the look-back but through the linear map, reaches it.
#[test]
fn tide_with_the_reference_final_norm_ignores_its_covariates() {
    let d = dir("tide-norm");
    let device = Device::flex();
    let case = cases(&d).remove(0);
    let path = case.data.path.clone().unwrap();
    write_wide(&path, None);
    let cfg = RunConfig { data: case.data.clone(), model: ModelConfig::Tide(Default::default()), train: Default::default(), eval: Default::default(), online: None, name: None };
    let task = Task::load(&case.data).unwrap();
    let model = build_model(&cfg, &task, &device).unwrap();
    let reference = forecast(&task, &model, 5, &device);
    let w = task.splits()[2];
    let origin = w.start + 5 + w.seq_len;
    write_wide(&path, Some(("load", origin - 10, origin)));
    assert_eq!(forecast(&Task::load(&case.data).unwrap(), &model, 5, &device), reference);
}

#[test]
fn covariate_models_train_with_covariates_and_others_are_refused() {
    let d = dir("train");
    write_wide(&d.join("wide.csv"), None);
    write_long(&d.join("long.csv"), None);
    for case in cases(&d) {
        for model in covariate_models() {
            let mut data = case.data.clone();
            if !model.covariates().statics {
                data.covariates.statics.clear();
            }
            let mut cfg = RunConfig { name: Some(model.name().into()), data, model: model.clone(), train: Default::default(), eval: Default::default(), online: None };
            cfg.train.epochs = 2;
            cfg.train.batch_size = 32;
            cfg.train.lr = 3e-3;
            let run = d.join(format!("{}-{}", model.name(), case.long));
            let r = strata_train::tasks::forecasting::train(&cfg, &run, strata_train::tasks::forecasting::TrainOptions { fresh: true }).unwrap_or_else(|e| panic!("{}: {e:#}", model.name()));
            // Standardised targets: the zero forecast costs about 1; a trained model does better.
            assert!(r.test.mse < 0.9, "{} ({}): test MSE {}", model.name(), case.long, r.test.mse);
        }
    }
    // A model without covariates is refused, naming the kind, the key and who takes it.
    let case = &cases(&d)[0];
    let cfg = RunConfig { name: None, data: case.data.clone(), model: ModelConfig::Dlinear(Default::default()), train: Default::default(), eval: Default::default(), online: None };
    let e = build_model(&cfg, &Task::load(&case.data).unwrap(), &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("dlinear does not take past-observed covariates") && e.contains("data.covariates.past") && e.contains("tide"), "{e}");
    // Static covariates to a model that takes only time-varying ones.
    let cfg = RunConfig { name: None, data: cases(&d)[1].data.clone(), model: ModelConfig::Timexer(Default::default()), train: Default::default(), eval: Default::default(), online: None };
    let e = build_model(&cfg, &Task::load(&cfg.data).unwrap(), &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("timexer does not take static covariates") && e.contains("data.covariates.static"), "{e}");
    // MS with covariates: refused with the two settings that work.
    let data = DataConfig { features: Features::MS, ..case.data.clone() };
    let e = Task::load(&data).err().expect("refused").to_string();
    assert!(e.contains("\"S\"") && e.contains("\"M\""), "{e}");
}

/// `strata explain` of an iTransformer run with covariates shows the tokens the forecast used:
/// the series, its covariates, the calendar; and the covariate's values move the attention.
#[test]
fn itransformer_attention_covers_its_covariate_tokens() {
    let d = dir("attention");
    let device = Device::flex();
    let case = cases(&d).remove(0);
    let path = case.data.path.clone().unwrap();
    write_wide(&path, None);
    let model_cfg = ModelConfig::Itransformer(strata_models::ITransformerConfig { d_model: 32, n_heads: 4, d_ff: 64, ..Default::default() });
    let cfg = RunConfig { data: case.data.clone(), model: model_cfg, train: Default::default(), eval: Default::default(), online: None, name: None };
    let attention = |task: &Task, model: &Model| -> Vec<f32> {
        let w = task.splits()[2];
        let mut batch = Batch::default();
        w.fill(&[5], &mut batch);
        let x = task.input(&mut batch, &device);
        let marks = marks_of(&mut batch, w.seq_len, w.pred_len, &device);
        let cov = covariates_of(w, &mut batch, &device);
        let maps = model.attention_inputs(x, marks, cov).expect("itransformer attends");
        let (_, m) = maps.into_iter().next().unwrap();
        let [_, _, q, k] = m.dims();
        // OT, load, hol, then the 4 hourly calendar features.
        assert_eq!((q, k), (7, 7), "tokens: the series, its two covariates, the calendar");
        m.into_data().convert::<f32>().try_into_vec().unwrap()
    };
    let task = Task::load(&case.data).unwrap();
    let model = build_model(&cfg, &task, &device).unwrap();
    let before = attention(&task, &model);
    let w = task.splits()[2];
    let origin = w.start + 5 + w.seq_len;
    write_wide(&path, Some(("load", origin - 6, origin)));
    assert_ne!(attention(&Task::load(&case.data).unwrap(), &model), before, "the covariate's values move the attention");
}
