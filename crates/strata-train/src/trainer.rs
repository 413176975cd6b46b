//! The training loop: seeded shuffling, scheduled learning rate, gradient clipping, early stopping
//! on the validation loss, atomic checkpoints after every epoch, and resume.
//!
//! A run folder holds `config.toml`, `state.json`, `last.bpk` + `optimizer.bpk` (resume point),
//! `best.bpk` (best validation loss), `results.json` and `results.csv`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use strata_data::SpatialPrepared;
use strata_data::prepare::Prepared;
use strata_data::window::{Batch, epoch_order};
use strata_models::{Capabilities, Model};

use crate::checkpoint::{EpochLog, TrainState, load_module, load_optimizer, save_module, save_optimizer, write_atomic};
use crate::config::{Loss, Optimizer, RunConfig, TrainConfig};
use crate::device::{compute_device, device_name, training_device};
use crate::evaluate::{Evaluation, evaluate};
use crate::evaluate_st::{Baselines, SpatialEvaluation, evaluate_baselines, evaluate_spatial};
use crate::progress::Progress;
use crate::task::Task;
use crate::metrics::Metrics;
use crate::record::{git_revision, write_csv_row, write_json};
use crate::schedule::{Steps, learning_rate};

/// How `train` treats an existing run folder.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainOptions {
    /// Discard any checkpoint in the run folder and start over.
    pub fresh: bool,
}

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
    pub probabilistic: Option<crate::prob_metrics::AggregateMetrics>,
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
pub struct DataRecord {
    pub dataset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub rows: usize,
    pub columns: Vec<String>,
    pub features: String,
    pub borders: [(usize, usize); 3],
    pub windows: [usize; 3],
    pub cells_imputed: usize,
    pub duplicate_timestamps: usize,
    pub irregular_steps: usize,
    /// Spatio-temporal data: the graph file and its SHA-256, the node count.
    #[serde(default)]
    pub graph: Option<PathBuf>,
    #[serde(default)]
    pub graph_sha256: Option<String>,
    #[serde(default)]
    pub nodes: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub parameters: usize,
    pub cross_channel: bool,
    pub probabilistic: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    pub train_seconds: f64,
    pub resumed_at_epoch: Option<usize>,
    pub history: Vec<EpochLog>,
}

impl TrainingRecord {
    pub(crate) fn new(state: &TrainState, resumed_at_epoch: Option<usize>) -> Self {
        TrainingRecord {
            epochs_run: state.epochs_done,
            best_epoch: state.best_epoch,
            stopped_early: state.stopped_early,
            train_seconds: state.train_seconds,
            resumed_at_epoch,
            history: state.history.clone(),
        }
    }
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

pub fn build_optimizer(t: &TrainConfig) -> ModuleOptimizer {
    let clip = t.grad_clip.map(|c| GradientClippingConfig::Norm(c as f32));
    match t.optimizer {
        Optimizer::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay((t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32)))
            .with_grad_clipping(clip)
            .init(),
        Optimizer::Adamw => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(t.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
    }
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

/// Build the model of `cfg` for the data of `task`, or say why it cannot be built.
fn build_model(cfg: &RunConfig, task: &Task, device: &Device) -> Result<Model> {
    let shape = task.shape();
    cfg.model.check(&shape, task.adjacency().is_some()).map_err(anyhow::Error::msg)?;
    cfg.model.try_init(shape, task.adjacency(), device).map_err(anyhow::Error::msg)
}

/// The default run folder for a config file: `runs/<name or file stem>`.
pub fn default_run_dir(cfg: &RunConfig, config_path: &Path) -> PathBuf {
    let stem = cfg.name.clone().unwrap_or_else(|| config_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or("run".into()));
    PathBuf::from("runs").join(stem)
}

/// Train (or resume) the run described by `cfg` in `run_dir`, then evaluate the best checkpoint.
pub fn train(cfg: &RunConfig, run_dir: &Path, opts: TrainOptions) -> Result<Results> {
    let wall = Instant::now();
    let task = Task::load(&cfg.data)?;
    let (mut state, resumed_at) = run_epochs(cfg, &task, run_dir, opts, cfg.train.epochs)?;
    let paths = RunPaths::new(run_dir);
    state.finished = true;
    state.save(&paths.state)?;

    let t = &cfg.train;
    let caps = cfg.model.capabilities();
    let eval_device = training_device().without_autodiff();
    let best = load_module(build_model(cfg, &task, &eval_device)?, &paths.best)?;
    let scores = evaluate_splits(&best, &task, t, cfg.eval.inverse, &eval_device);
    let results = Results {
        strata_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: git_revision(),
        created_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        device: device_name(&eval_device),
        protocol: protocol_line(&task),
        config: cfg.clone(),
        data: data_record(&task),
        model: model_record(cfg.model.name(), best.num_params(), caps),
        seed: t.seed,
        training: TrainingRecord::new(&state, resumed_at),
        val: scores.val,
        test: scores.test,
        test_original_scale: scores.test_original,
        test_drop_last: scores.test_drop_last,
        spatial: scores.spatial,
        probabilistic: scores.probabilistic,
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    write_results(&paths, &results)?;
    write_schema(cfg, &task, run_dir)?;
    Ok(results)
}

/// Train (or resume) until `until` epochs are done, training stops early or it finished before;
/// returns the training state and the epoch it resumed at. `strata tune` pauses trials here.
pub fn train_epochs(cfg: &RunConfig, run_dir: &Path, fresh: bool, until: usize) -> Result<TrainState> {
    let task = Task::load(&cfg.data)?;
    Ok(run_epochs(cfg, &task, run_dir, TrainOptions { fresh }, until)?.0)
}

fn run_epochs(cfg: &RunConfig, task: &Task, run_dir: &Path, opts: TrainOptions, until: usize) -> Result<(TrainState, Option<usize>)> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create run folder {}", run_dir.display()))?;
    let paths = RunPaths::new(run_dir);
    let (mut state, resumed_at) = open_run(&paths, opts.fresh, cfg, RunConfig::from_toml_str)?;
    write_atomic(&paths.config, cfg.to_toml().as_bytes())?;

    let t = &cfg.train;
    let device = training_device();
    device.seed(t.seed);
    let mut model = build_model(cfg, &task, &device)?;
    let caps = cfg.model.capabilities();
    if caps.probabilistic && (matches!(*task, Task::Spatial(_)) || cfg.data.features == strata_data::Features::MS) {
        bail!("{} with a distribution head trains on long-sequence data with features M or S", cfg.model.name());
    }
    let mut optim = build_optimizer(t);
    if state.epochs_done > 0 {
        model = load_module(model, &paths.last)?;
        optim = load_optimizer(optim, &paths.optim)?;
        eprintln!("resuming {} at epoch {}/{}", run_dir.display(), state.epochs_done + 1, t.epochs);
    }
    let caps = cfg.model.capabilities();
    let shape = task.shape();
    eprintln!(
        "{} on {} ({} {}->{}, {} {}): {} parameters ({} trainable, {:.1}%), {} training windows, {}",
        cfg.model.name(),
        task.dataset(),
        if matches!(task, Task::Spatial(_)) { "ST" } else { cfg.data.features.name() },
        cfg.data.seq_len,
        cfg.data.pred_len,
        shape.channels,
        if matches!(task, Task::Spatial(_)) { "nodes" } else { "channels" },
        model.num_params(),
        strata_models::ModelConfig::trainable_params(&model),
        100.0 * strata_models::ModelConfig::trainable_params(&model) as f64 / model.num_params().max(1) as f64,
        task.splits()[0].len(),
        device_name(&device)
    );
    match &task {
        Task::Lsf(data) if data.impute.total > 0 => {
            eprintln!("imputed {} missing cells ({:?}): {:?}", data.impute.total, cfg.data.impute, data.impute.filled)
        }
        Task::Spatial(d) if d.missing > 0 => eprintln!("{} missing cells read as 0 (the null value, masked in loss and metrics)", d.missing),
        _ => {}
    }

    let [train_windows, ..] = task.splits();
    let n = train_windows.len();
    let steps_per_epoch = t.max_steps_per_epoch.map_or(n.div_ceil(t.batch_size), |m| m.min(n.div_ceil(t.batch_size)));
    let total_steps = steps_per_epoch * t.epochs;
    let eval_device = device.clone().without_autodiff();
    let mut batch = Batch::default();
    while !state.finished && state.epochs_done < until.min(t.epochs) && !state.stopped_early {
        let epoch = state.epochs_done;
        let started = Instant::now();
        device.seed(t.seed.wrapping_add(1 + epoch as u64));
        strata_models::dropout::seed(t.seed.wrapping_add(1 + epoch as u64));
        let order = epoch_order(n, Some(t.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64)));
        let mut bar = Progress::new(steps_per_epoch as u64, format!("epoch {}/{}", epoch + 1, t.epochs));
        let mut loss_sum = 0.0;
        let mut lr = t.lr;
        for (i, idx) in order.chunks(t.batch_size).take(steps_per_epoch).enumerate() {
            lr = learning_rate(t.schedule, t.lr, epoch, t.epochs, state.global_step, total_steps, t.pct_start, Steps { milestones: &t.milestones, gamma: t.gamma });
            train_windows.fill(idx, &mut batch);
            let x = task.input(&mut batch, &device);
            let y = task.target(&mut batch, &device);
            let marks = task.marks(&mut batch, &device);
            let loss = if caps.probabilistic {
                // Negative log-likelihood (beta-NLL) of every (window, step, channel) target.
                let n = y.dims().iter().product::<usize>();
                model.distribution(x, marks).expect("a probabilistic model has a distribution").beta_nll(y.reshape([n]), t.nll_beta)
            } else {
                task.loss(t.loss, model.forward_marked(x, marks), y)
            };
            let value: f32 = loss.clone().into_scalar();
            if !value.is_finite() {
                bail!("training diverged at epoch {} step {i}: loss is {value}; lower train.lr or set train.grad_clip", epoch + 1);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            loss_sum += value as f64;
            state.global_step += 1;
            bar.step(loss_sum / (i + 1) as f64);
        }
        bar.finish();
        let val_loss = validation_loss(&model.valid(), &task, t, &eval_device);
        let seconds = started.elapsed().as_secs_f64();
        let train_loss = loss_sum / steps_per_epoch as f64;
        let log = EpochLog { epoch: epoch + 1, train_loss, val_loss, lr, seconds, steps: steps_per_epoch };
        let improved = finish_epoch(&mut state, &paths, &model, &optim, log, t.patience)?;
        eprintln!(
            "epoch {:>3}/{} train {train_loss:.5} val {val_loss:.5} lr {lr:.3e} {seconds:.1}s{}",
            epoch + 1,
            t.epochs,
            if improved { " *" } else { "" }
        );
        if state.stopped_early {
            eprintln!("early stopping: no better validation loss for {} epochs", t.patience);
        }
    }
    state.save(&paths.state)?;
    Ok((state, resumed_at))
}

/// Make the run folder self-contained for `strata forecast` / `strata serve` (long-sequence
/// runs on TSLib-layout files).
fn write_schema(cfg: &RunConfig, task: &Task, run_dir: &Path) -> Result<()> {
    match task {
        Task::Lsf(d) if !d.rolling => crate::forecast::Schema::of(&cfg.model, task.shape(), d, cfg.data.impute, protocol_line(task)).write(run_dir),
        Task::Spatial(d) => crate::forecast::Schema::of_spatial(&cfg.model, task.shape(), d, protocol_line(task)).write_with_graph(run_dir, task.adjacency()),
        Task::Lsf(_) => Ok(()),
    }
}

/// Record a finished epoch: keep the model as the staged best when its validation loss is the
/// best so far (it becomes `best.bpk` once `state.json` says so, see [`settle_best`]), count
/// epochs without improvement for early stopping, append the log line, and write the resume
/// point (`last.bpk`, `optimizer.bpk`, `state.json`) atomically. Returns whether it improved.
pub fn finish_epoch<M: Module>(state: &mut TrainState, paths: &RunPaths, model: &M, optim: &ModuleOptimizer, log: EpochLog, patience: usize) -> Result<bool> {
    let improved = state.best_val.is_none_or(|b| log.val_loss < b);
    if improved {
        (state.best_val, state.best_epoch, state.bad_epochs) = (Some(log.val_loss), Some(log.epoch), 0);
        save_module(model, &paths.staged_best(log.epoch))?;
    } else {
        state.bad_epochs += 1;
    }
    state.train_seconds += log.seconds;
    state.history.push(log);
    state.epochs_done += 1;
    state.stopped_early = state.bad_epochs >= patience;
    save_module(model, &paths.last)?;
    save_optimizer(optim, &paths.optim)?;
    state.save(&paths.state)?;
    settle_best(paths, state)?;
    Ok(improved)
}

/// Open a run folder: start over (`fresh`), or resume the training state of a run of the same
/// configuration (`parse` reads its `config.toml`); a run of another configuration is refused.
pub fn open_run<C: PartialEq>(paths: &RunPaths, fresh: bool, cfg: &C, parse: impl Fn(&str) -> Result<C>) -> Result<(TrainState, Option<usize>)> {
    if !paths.state.exists() {
        return Ok((TrainState::default(), None));
    }
    if fresh {
        paths.clear()?;
        return Ok((TrainState::default(), None));
    }
    let text = std::fs::read_to_string(&paths.config).with_context(|| format!("cannot read {}", paths.config.display()))?;
    let saved = parse(&text).with_context(|| format!("cannot read {}", paths.config.display()))?;
    if &saved != cfg {
        bail!("{} holds a run of a different configuration; pass --fresh to start over or --out to use another folder", paths.dir.display());
    }
    let state = TrainState::load(&paths.state)?;
    settle_best(paths, &state)?;
    let at = state.epochs_done;
    Ok((state, Some(at)))
}

/// The validation loss early stopping watches: the training loss's metric on the validation
/// windows (scaled for LSF; masked on the original scale for spatio-temporal data).
fn validation_loss(model: &Model, task: &Task, t: &TrainConfig, device: &Device) -> f64 {
    match task {
        Task::Lsf(data) if model.distribution_head() => crate::evaluate_prob::validation_nll(model, &data.val, t.eval_batch_size, device),
        Task::Lsf(data) => {
            let val = evaluate(model, &data.val, data.output_channels(), t.eval_batch_size, device, None, None);
            match t.loss {
                Loss::Mse => val.scaled.mse,
                Loss::Mae => val.scaled.mae,
            }
        }
        Task::Spatial(d) => {
            let val = evaluate_spatial(model, d, &d.val, t.eval_batch_size, device);
            match t.loss {
                Loss::Mse => val.average.rmse.powi(2),
                Loss::Mae => val.average.mae,
            }
        }
    }
}

struct Scores {
    val: crate::metrics::Metrics,
    test: crate::metrics::Metrics,
    test_original: Option<crate::metrics::Metrics>,
    test_drop_last: Option<crate::metrics::Metrics>,
    spatial: Option<SpatialResults>,
    probabilistic: Option<crate::prob_metrics::AggregateMetrics>,
}

fn evaluate_splits(model: &Model, task: &Task, t: &TrainConfig, inverse: bool, device: &Device) -> Scores {
    match task {
        Task::Lsf(data) => {
            let scaler = if inverse { data.scaler.as_ref() } else { None };
            let val: Evaluation = evaluate(model, &data.val, data.output_channels(), t.eval_batch_size, device, None, None);
            let test = evaluate(model, &data.test, data.output_channels(), t.eval_batch_size, device, scaler, (!data.rolling).then_some(t.batch_size));
            let season = crate::evaluate_prob::seasonality(&data.freq);
            // GluonTS data is scored as GluonTS does: raw values, whole history; LSF on the scaled data.
            let (scale_back, full) = if data.rolling { (data.scaler.as_ref(), true) } else { (None, false) };
            let probabilistic = crate::evaluate_prob::evaluate_probabilistic(model, &data.test, t.eval_batch_size, device, 100, t.seed, season, scale_back, full);
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
    let record = data_record(&task);
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
    let model = load_module(build_model(&cfg, &task, &device)?, &paths.best)?;
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
    let model = load_module(build_model(&cfg, &task, device)?, &paths.best)?;
    Ok((cfg, model))
}

pub struct RunPaths {
    pub config: PathBuf,
    pub state: PathBuf,
    pub last: PathBuf,
    pub optim: PathBuf,
    pub best: PathBuf,
    pub dir: PathBuf,
    pub results_json: PathBuf,
    pub results_csv: PathBuf,
}

impl RunPaths {
    /// Where the model of `epoch` (1-based) waits until `state.json` records it as the best.
    pub(crate) fn staged_best(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("best.epoch{epoch}.bpk"))
    }

    pub fn new(dir: &Path) -> Self {
        RunPaths {
            config: dir.join("config.toml"),
            state: dir.join("state.json"),
            last: dir.join("last.bpk"),
            optim: dir.join("optimizer.bpk"),
            best: dir.join("best.bpk"),
            dir: dir.to_path_buf(),
            results_json: dir.join("results.json"),
            results_csv: dir.join("results.csv"),
        }
    }

    /// Remove every checkpoint and record (`--fresh`).
    pub(crate) fn clear(&self) -> Result<()> {
        for p in [&self.state, &self.last, &self.optim, &self.best, &self.results_json, &self.results_csv] {
            let _ = std::fs::remove_file(p);
        }
        settle_best(self, &TrainState::default())
    }
}

/// Finish or discard staged best checkpoints (`best.epochN.bpk`): the one whose epoch
/// `state.json` records as the best becomes `best.bpk`; any other (a run killed before its state
/// was written) is discarded and its epoch runs again on resume.
pub(crate) fn settle_best(paths: &RunPaths, state: &TrainState) -> Result<()> {
    let entries = std::fs::read_dir(&paths.dir).with_context(|| format!("cannot list {}", paths.dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(epoch) = name.strip_prefix("best.epoch").and_then(|r| r.strip_suffix(".bpk")).and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let path = entry.path();
        if state.best_epoch == Some(epoch) && epoch <= state.epochs_done {
            std::fs::rename(&path, &paths.best).with_context(|| format!("cannot rename {}", path.display()))?;
        } else {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

fn data_record(task: &Task) -> DataRecord {
    match task {
        Task::Lsf(d) => data_record_lsf(d),
        Task::Spatial(d) => DataRecord {
            dataset: d.dataset.clone(),
            path: d.path.clone(),
            sha256: d.sha256.clone(),
            rows: d.rows,
            columns: d.ids.clone().unwrap_or_default(),
            features: "ST".into(),
            borders: d.borders,
            windows: [d.train.len(), d.val.len(), d.test.len()],
            cells_imputed: 0,
            duplicate_timestamps: 0,
            irregular_steps: 0,
            graph: d.graph.as_ref().map(|g| g.path.clone()),
            graph_sha256: d.graph_sha256.clone(),
            nodes: Some(d.nodes),
        },
    }
}

/// The data record of long-sequence data.
pub fn data_record_lsf(d: &Prepared) -> DataRecord {
    DataRecord {
        graph: None,
        graph_sha256: None,
        nodes: None,
        dataset: d.dataset.clone(),
        path: d.path.clone(),
        sha256: d.sha256.clone(),
        rows: d.rows,
        columns: d.columns.clone(),
        features: d.features.name().into(),
        borders: [d.borders.train, d.borders.val, d.borders.test],
        windows: [d.train.len(), d.val.len(), d.test.len()],
        cells_imputed: d.impute.total,
        duplicate_timestamps: d.quality.duplicate_timestamp_lines.len(),
        irregular_steps: d.quality.irregular_step_lines.len(),
    }
}

fn model_record(name: &str, parameters: usize, caps: Capabilities) -> ModelRecord {
    ModelRecord { name: name.into(), parameters, cross_channel: caps.cross_channel, probabilistic: caps.probabilistic }
}

fn write_results(paths: &RunPaths, r: &Results) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_best_is_kept_only_when_the_state_records_it() {
        let dir = std::env::temp_dir().join(format!("strata-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = RunPaths::new(&dir);
        std::fs::write(&paths.best, b"old").unwrap();
        // Killed after staging epoch 3's model but before state.json said so: discard it.
        std::fs::write(paths.staged_best(3), b"new").unwrap();
        let state = TrainState { epochs_done: 2, best_epoch: Some(2), ..Default::default() };
        settle_best(&paths, &state).unwrap();
        assert_eq!(std::fs::read(&paths.best).unwrap(), b"old");
        assert!(!paths.staged_best(3).exists());
        // Killed after state.json recorded epoch 3 as the best, before the rename: keep it.
        std::fs::write(paths.staged_best(3), b"new").unwrap();
        let state = TrainState { epochs_done: 3, best_epoch: Some(3), ..Default::default() };
        settle_best(&paths, &state).unwrap();
        assert_eq!(std::fs::read(&paths.best).unwrap(), b"new");
        assert!(!paths.staged_best(3).exists());
    }
}
