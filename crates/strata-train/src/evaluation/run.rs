//! A forecasting run's record and its evaluation: `results.json` / `results.csv` (config,
//! protocol, data SHA-256, git revision, metrics), the splits scored by the best checkpoint,
//! `strata eval` on a finished run folder, and the schema that makes it self-contained.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use strata_data::SpatialPrepared;
use strata_models::{Capabilities, Model};

use crate::config::{RunConfig, TrainConfig};
use crate::device::compute_device;
use crate::engine::checkpoint::load_trained;
use crate::engine::record::{TrainingRecord, git_revision, write_csv_row, write_json};
use crate::engine::RunPaths;
use crate::evaluation::metrics::Metrics;
use crate::evaluation::point::{Evaluation, evaluate};
use crate::evaluation::spatial::{Baselines, SpatialEvaluation, evaluate_baselines, evaluate_spatial};
use crate::tasks::data::{DataRecord, Task, build_model};

/// Everything `results.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub strata_version: String,
    pub git_revision: String,
    pub created_unix: u64,
    pub device: String,
    pub protocol: String,
    pub config: RunConfig,
    pub data: DataRecord,
    pub model: ModelRecord,
    pub seed: u64,
    pub training: TrainingRecord,
    pub val: Metrics,
    pub test: Metrics,
    pub test_original_scale: Option<Metrics>,
    /// Test metrics over the windows the papers' code kept (`drop_last=True` at the training
    /// batch size), for comparison with published numbers only.
    #[serde(default)]
    pub test_drop_last: Option<Metrics>,
    /// Spatio-temporal runs: masked metrics on the original scale at horizons 3/6/12 and on
    /// average (test), and the validation average. `val`/`test` then hold unmasked metrics on
    /// the original scale.
    #[serde(default)]
    pub spatial: Option<SpatialResults>,
    /// Probabilistic models: CRPS (sample and quantile-loss forms), MSIS, coverage on the test
    /// windows (scaled data, 100 sample paths per window, GluonTS aggregation).
    #[serde(default)]
    pub probabilistic: Option<crate::evaluation::prob_metrics::AggregateMetrics>,
    /// Wall time of this invocation (data, training, evaluation), seconds.
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpatialResults {
    pub test: SpatialEvaluation,
    pub val: SpatialEvaluation,
    /// The last-value and historical-average forecasts on the same test windows.
    pub baselines: Baselines,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub parameters: usize,
    pub cross_channel: bool,
    pub probabilistic: bool,
}

/// The protocol line printed and recorded with every result.
pub fn protocol_line(task: &Task) -> String {
    let data = match task {
        Task::Lsf(d) if d.rolling => {
            return format!(
                "GluonTS: {} as {} aligned series, freq {}, train rows {:?} (validation: the last {} rows as rolling windows), test = the dataset's {} rolling windows of {} steps per series; scaler fitted on train rows; MSE/MAE on scaled data, probabilistic metrics on the original scale with the whole history for the seasonal error",
                d.dataset, d.channels(), d.freq, d.borders.train, d.borders.val.1 - d.borders.val.0 - d.train.seq_len, d.test.len(), d.test.pred_len
            );
        }
        Task::Lsf(d) => d,
        Task::Spatial(d) => return spatial_protocol_line(d),
    };
    format!(
        "LSF/TSLib: {} split rows train {:?} val {:?} test {:?}; scaler fitted on train rows; features {:?}; metrics on {} data; stride-1 windows, every test window evaluated (no drop_last)",
        data.dataset,
        data.borders.train,
        data.borders.val,
        data.borders.test,
        data.features,
        if data.scaler.is_some() { "scaled" } else { "raw" }
    )
}

fn spatial_protocol_line(d: &SpatialPrepared) -> String {
    format!(
        "ST/BasicTS: {} {} nodes, windows {}->{} split {:?} in time order (train/val/test windows {}/{}/{}); one z-score over all nodes of the training rows; inputs: value{}{}; loss and metrics on the original scale, masked where the target is 0 (null), summed over every test window",
        d.dataset,
        d.nodes,
        d.train.seq_len,
        d.train.pred_len,
        d.split,
        d.train.len(),
        d.val.len(),
        d.test.len(),
        if d.time_of_day { ", time of day" } else { "" },
        if d.day_of_week { ", day of week" } else { "" },
    )
}

/// Make the run folder self-contained for `strata forecast` / `strata serve` (long-sequence
/// runs on TSLib-layout files).
pub(crate) fn write_schema(cfg: &RunConfig, task: &Task, run_dir: &Path) -> Result<()> {
    match task {
        Task::Lsf(d) if !d.rolling => crate::inference::forecast::Schema::of(&cfg.model, task.shape(), d, cfg.data.impute, protocol_line(task)).write(run_dir),
        Task::Spatial(d) => crate::inference::forecast::Schema::of_spatial(&cfg.model, task.shape(), d, protocol_line(task)).write_with_graph(run_dir, task.adjacency()),
        Task::Lsf(_) => Ok(()),
    }
}

pub(crate) struct Scores {
    pub(crate) val: Metrics,
    pub(crate) test: Metrics,
    pub(crate) test_original: Option<Metrics>,
    pub(crate) test_drop_last: Option<Metrics>,
    pub(crate) spatial: Option<SpatialResults>,
    pub(crate) probabilistic: Option<crate::evaluation::prob_metrics::AggregateMetrics>,
}

pub(crate) fn evaluate_splits(model: &Model, task: &Task, t: &TrainConfig, inverse: bool, device: &Device) -> Scores {
    match task {
        Task::Lsf(data) => {
            let scaler = if inverse { data.scaler.as_ref() } else { None };
            let val: Evaluation = evaluate(model, &data.val, data.output_channels(), t.eval_batch_size, device, None, None);
            let test = evaluate(model, &data.test, data.output_channels(), t.eval_batch_size, device, scaler, (!data.rolling).then_some(t.batch_size));
            let season = crate::evaluation::probabilistic::seasonality(&data.freq);
            // GluonTS data is scored as GluonTS does: raw values, whole history; LSF on the scaled data.
            let (scale_back, full) = if data.rolling { (data.scaler.as_ref(), true) } else { (None, false) };
            let probabilistic = crate::evaluation::probabilistic::evaluate_probabilistic(model, &data.test, t.eval_batch_size, device, 100, t.seed, season, scale_back, full);
            Scores { val: val.scaled, test: test.scaled, test_original: test.original, test_drop_last: test.drop_last, spatial: None, probabilistic }
        }
        Task::Spatial(d) => {
            let val = evaluate_spatial(model, d, &d.val, t.eval_batch_size, device);
            let test = evaluate_spatial(model, d, &d.test, t.eval_batch_size, device);
            Scores { val: val.unmasked, test: test.unmasked, test_original: Some(test.unmasked), test_drop_last: None, spatial: Some(SpatialResults { test, val, baselines: evaluate_baselines(d, &d.test) }), probabilistic: None }
        }
    }
}

/// Re-evaluate the best checkpoint of a finished run folder on its data; writes `eval.json`.
///
/// `overrides` (`data.*`, `eval.*` keys) evaluate the model on other data of the same shape; a
/// model meets data with another node (channel) count only to refuse it.
pub fn evaluate_run(run_dir: &Path, overrides: &[String]) -> Result<Results> {
    let wall = Instant::now();
    let paths = RunPaths::new(run_dir);
    if !paths.config.exists() {
        bail!("{} is not a run folder (no config.toml)", run_dir.display());
    }
    if let Some(o) = overrides.iter().find(|o| !(o.starts_with("data.") || o.starts_with("eval."))) {
        bail!("--set {o}: only data.* and eval.* settings can change when evaluating a trained model");
    }
    let cfg = RunConfig::load(&paths.config, overrides)?;
    let mut results: Results = serde_json::from_str(&std::fs::read_to_string(&paths.results_json).with_context(|| format!("{} has no results.json: train it first", run_dir.display()))?)?;
    let task = Task::load(&cfg.data)?;
    let record = task.record();
    let trained = results.data.nodes.unwrap_or(results.data.columns.len());
    let now = task.shape().channels;
    if trained != now {
        let unit = if results.data.nodes.is_some() { "nodes" } else { "channels" };
        bail!(
            "{} holds a {} model trained on {trained} {unit}; {} has {now}: a model is tied to the node count it was trained on",
            run_dir.display(),
            cfg.model.name(),
            record.path.display()
        );
    }
    if record.sha256 != results.data.sha256 {
        eprintln!("warning: {} changed since training (sha256 {} -> {})", record.path.display(), results.data.sha256, record.sha256);
    }
    let device = compute_device();
    let model = load_trained(build_model(&cfg, &task, &device)?, run_dir, &paths.best)?;
    let scores = evaluate_splits(&model, &task, &cfg.train, cfg.eval.inverse, &device);
    results.val = scores.val;
    results.test = scores.test;
    results.test_original_scale = scores.test_original;
    results.test_drop_last = scores.test_drop_last;
    results.spatial = scores.spatial;
    results.probabilistic = scores.probabilistic;
    results.data = record;
    results.git_revision = git_revision();
    results.wall_seconds = wall.elapsed().as_secs_f64();
    write_json(&run_dir.join("eval.json"), &results)?;
    if overrides.is_empty() {
        write_schema(&cfg, &task, run_dir)?;
    }
    Ok(results)
}

/// The best checkpoint of a run folder, built for its data (read again from the config's paths).
pub fn load_best(run_dir: &Path, device: &Device) -> Result<(RunConfig, Model)> {
    let paths = RunPaths::new(run_dir);
    if !paths.config.exists() {
        bail!("{} is not a run folder (no config.toml)", run_dir.display());
    }
    let cfg = RunConfig::load(&paths.config, &[])?;
    let task = Task::load(&cfg.data)?;
    let model = load_trained(build_model(&cfg, &task, device)?, run_dir, &paths.best)?;
    Ok((cfg, model))
}

pub(crate) fn model_record(name: &str, parameters: usize, caps: Capabilities) -> ModelRecord {
    ModelRecord { name: name.into(), parameters, cross_channel: caps.cross_channel, probabilistic: caps.probabilistic }
}

pub(crate) fn write_results(paths: &RunPaths, r: &Results) -> Result<()> {
    write_json(&paths.results_json, r)?;
    let f = |v: f64| format!("{v:.6}");
    write_csv_row(
        &paths.results_csv,
        &[
            ("dataset", r.data.dataset.clone()),
            ("model", r.model.name.clone()),
            ("features", r.data.features.clone()),
            ("seq_len", r.config.data.seq_len.to_string()),
            ("pred_len", r.config.data.pred_len.to_string()),
            ("mse", f(r.test.mse)),
            ("mae", f(r.test.mae)),
            ("rmse", f(r.test.rmse)),
            ("mape", f(r.test.mape)),
            ("r2", f(r.test.r2)),
            ("test_windows", r.data.windows[2].to_string()),
            ("val_mse", f(r.val.mse)),
            ("epochs", r.training.epochs_run.to_string()),
            ("best_epoch", r.training.best_epoch.map_or(String::new(), |e| e.to_string())),
            ("seed", r.seed.to_string()),
            ("train_seconds", format!("{:.1}", r.training.train_seconds)),
            ("git_revision", r.git_revision.clone()),
            ("data_sha256", r.data.sha256.clone()),
        ],
    )
}

