//! The fine-tuning loop, shared by the backbones (LSF protocol: the standard split, scaled by
//! the training rows' statistics, stride-1 windows, early stopping on the validation loss).
//! Every channel of a window is one univariate series. MOIRAI: the loss is the NLL of the
//! horizon (per scale and weighted for MSFT), the point forecast the mean of sample paths (MSE)
//! and their median (MAE). TinyTimeMixer: the loss is the MSE, the forecast a point.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{Module, Param};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use strata_data::prepare::{DataConfig, Prepared, prepare};
use strata_data::window::{Batch, Windows, epoch_order};
use strata_train::checkpoint::{EpochLog, load_module, load_optimizer, save_optimizer, write_atomic};
use strata_train::device::{device_name, training_device};
use strata_train::progress::Progress;
use strata_train::record::{git_revision, write_json};
use strata_train::trainer::{DataRecord, RunPaths, data_record_lsf, finish_epoch, open_run};

use crate::FinetuneConfig;

/// What `strata finetune` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneResults {
    pub config: FinetuneConfig,
    pub model_sha256: String,
    pub data: DataRecord,
    pub protocol: String,
    pub parameters: usize,
    pub trainable: usize,
    pub trainable_share: f64,
    pub epochs_run: usize,
    pub best_epoch: Option<usize>,
    pub history: Vec<EpochLog>,
    pub seconds_per_step: f64,
    /// MSFT: softmax of the learned scale weights.
    pub scale_weights: Vec<f32>,
    /// MOIRAI: NLL; TinyTimeMixer: MSE (per-scale, weighted, for MSFT).
    pub val_loss: f64,
    /// Method-specific facts (AdaLoRA: triplets kept per matrix).
    #[serde(default)]
    pub notes: Option<String>,
    pub test_mse: f64,
    pub test_mae: f64,
    pub test_windows: usize,
    pub device: String,
    pub git_revision: String,
    pub train_seconds: f64,
    pub wall_seconds: f64,
}

/// A model `strata finetune` trains: univariate rows in, a loss and point forecasts out.
pub trait Tunable: Module + Clone {
    /// Context steps a window needs.
    fn history(&self, cfg: &FinetuneConfig) -> usize;
    /// `context` `[rows, history]`, `target` `[rows, H]`.
    fn loss(&self, context: &[f32], target: &[f32], rows: usize, cfg: &FinetuneConfig, device: &Device) -> Tensor<1>;
    /// Point forecasts `[rows, h]` for MSE and for MAE.
    fn point(&self, context: &[f32], rows: usize, h: usize, cfg: &FinetuneConfig, seed: u64, device: &Device) -> (Vec<f32>, Vec<f32>);
    fn scale_weights(&self) -> &Param<Tensor<1>>;
    /// Softmax of the scale weights as used for mixing.
    fn mix(&self) -> Vec<f32>;
    /// How the test forecast is made (for the protocol line).
    fn describe(&self, cfg: &FinetuneConfig) -> String;
    /// AdaLoRA, when the model has it: its penalty, importance scores and checkpointed state
    /// come from here.
    fn adalora(&self) -> Option<&strata_models::adalora::AdaLora> {
        None
    }
    /// A penalty added to the training loss only (AdaLoRA's orthogonality).
    fn penalty(&self) -> Option<Tensor<1>> {
        self.adalora().map(|a| a.penalty())
    }
    /// Before the optimiser step: see this step's gradients (AdaLoRA's importance scores).
    fn observe(&self, grads: &GradientsParams) {
        if let Some(a) = self.adalora() {
            a.observe(grads);
        }
    }
    /// After the optimiser step `step` (1-based) of `total` (AdaLoRA's budget re-allocation).
    fn after_step(self, _step: usize, _total: usize) -> Self {
        self
    }
    /// Extra facts for the results (AdaLoRA's final ranks).
    fn notes(&self) -> Option<String> {
        self.adalora().map(|a| format!("AdaLoRA triplets kept per adapted matrix: {:?}", a.ranks()))
    }
    /// Training state outside the parameters, as JSON (AdaLoRA's importance scores), saved with
    /// every checkpoint.
    fn aux_state(&self) -> Option<String> {
        self.adalora().map(|a| a.state_json())
    }
    /// Restore [`Tunable::aux_state`] on resuming.
    fn restore_aux_state(&self, json: &str) -> Result<(), String> {
        self.adalora().map_or(Ok(()), |a| a.restore_state(json))
    }
}

fn optimizer(cfg: &FinetuneConfig) -> ModuleOptimizer {
    let t = &cfg.train;
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.98)
        .with_epsilon(1e-6)
        .with_weight_decay(t.weight_decay as f32)
        .with_grad_clipping((t.grad_clip > 0.0).then(|| GradientClippingConfig::Norm(t.grad_clip as f32)))
        .init()
}

/// `[b, L, C]` windows as `b * C` univariate rows `[rows, L]` (row = window * C + channel).
fn rows(x: &[f32], b: usize, len: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for w in 0..b {
        for t in 0..len {
            for ch in 0..c {
                out[(w * c + ch) * len + t] = x[(w * len + t) * c + ch];
            }
        }
    }
    out
}

/// Mean loss over every `every`-th window of `w`.
fn val_loss<M: Tunable>(model: &M, w: &Windows, cfg: &FinetuneConfig, every: usize, device: &Device) -> f64 {
    let idx: Vec<usize> = (0..w.len()).step_by(every.max(1)).collect();
    let (c, l, h) = (w.channels(), w.seq_len, w.pred_len);
    let mut batch = Batch::default();
    let (mut sum, mut n) = (0f64, 0usize);
    for chunk in idx.chunks(cfg.train.eval_batch_size.max(1)) {
        w.fill(chunk, &mut batch);
        let loss: f32 = model.loss(&rows(&batch.x, chunk.len(), l, c), &rows(&batch.y, chunk.len(), h, c), chunk.len() * c, cfg, device).into_scalar();
        sum += loss as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    sum / n.max(1) as f64
}

/// Test MSE and MAE over every test window.
fn test_metrics<M: Tunable>(model: &M, w: &Windows, cfg: &FinetuneConfig, device: &Device) -> (f64, f64) {
    let (c, l, h) = (w.channels(), w.seq_len, w.pred_len);
    let all: Vec<usize> = (0..w.len()).collect();
    let mut batch = Batch::default();
    let (mut sq, mut ab) = (0f64, 0f64);
    for (k, chunk) in all.chunks(cfg.train.eval_batch_size.max(1)).enumerate() {
        w.fill(chunk, &mut batch);
        let r = chunk.len() * c;
        let (mean, median) = model.point(&rows(&batch.x, chunk.len(), l, c), r, h, cfg, cfg.train.seed.wrapping_add(k as u64 * 7919), device);
        let truth = rows(&batch.y, chunk.len(), h, c);
        for ((m, md), y) in mean.iter().zip(&median).zip(&truth) {
            sq += ((m - y) as f64).powi(2);
            ab += ((md - y) as f64).abs();
        }
    }
    let count = (w.len() * h * c).max(1) as f64;
    (sq / count, ab / count)
}

/// Fine-tune (or resume) the run `cfg` in `run_dir`; `build` makes the model on a device.
pub fn finetune<M: Tunable>(cfg: &FinetuneConfig, run_dir: &Path, fresh: bool, build: impl Fn(&Device) -> Result<M>) -> Result<FinetuneResults> {
    let wall = Instant::now();
    let t = &cfg.train;
    if t.epochs == 0 || t.batch_size == 0 || !(t.lr > 0.0) || !(t.scale_lr > 0.0) {
        bail!("key `train`: epochs, batch_size, lr and scale_lr must be positive");
    }
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create run folder {}", run_dir.display()))?;
    let paths = RunPaths::new(run_dir);
    let (mut state, _) = open_run(&paths, fresh, cfg, FinetuneConfig::from_toml)?;
    write_atomic(&paths.config, cfg.to_toml().as_bytes())?;
    let device = training_device();
    device.seed(t.seed);
    let mut model = build(&device)?;
    let data: Prepared = prepare(&DataConfig { seq_len: model.history(cfg), ..cfg.data.clone() })?;
    let (mut optim, mut optim_w) = (optimizer(cfg), optimizer(cfg));
    let optim_w_path: PathBuf = run_dir.join("optimizer_scales.bpk");
    let aux_path: PathBuf = run_dir.join("aux_state.json");
    if state.epochs_done > 0 {
        model = load_module(model, &paths.last)?;
        optim = load_optimizer(optim, &paths.optim)?;
        if optim_w_path.exists() {
            optim_w = load_optimizer(optim_w, &optim_w_path)?;
        }
        if let Ok(json) = std::fs::read_to_string(&aux_path) {
            model.restore_aux_state(&json).map_err(|e| anyhow::anyhow!("{}: {e}", aux_path.display()))?;
        }
        eprintln!("resuming {} at epoch {}/{}", run_dir.display(), state.epochs_done + 1, t.epochs);
    }
    let (total, trainable) = (model.num_params(), strata_models::trainable_params(&model));
    let (c, l, h) = (data.train.channels(), data.train.seq_len, data.train.pred_len);
    eprintln!(
        "fine-tuning {} ({}) on {}: {trainable} of {total} parameters train ({:.2}%), {} scale(s), context {l}, {} training windows x {c} channels, {}",
        cfg.model_dir().display(),
        cfg.method.name(),
        data.dataset,
        100.0 * trainable as f64 / total as f64,
        model.scale_weights().dims()[0],
        data.train.len(),
        device_name(&device)
    );
    let eval_device = device.clone().without_autodiff();
    let n = data.train.len();
    let steps_per_epoch = t.max_steps_per_epoch.map_or(n.div_ceil(t.batch_size), |m| m.min(n.div_ceil(t.batch_size)));
    let mut batch = Batch::default();
    let mut step_seconds = (0f64, 0usize);
    while state.epochs_done < t.epochs && !state.stopped_early {
        let epoch = state.epochs_done;
        let started = Instant::now();
        let order = epoch_order(n, Some(t.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64)));
        let mut loss_sum = 0.0;
        let mut bar = Progress::new(steps_per_epoch as u64, format!("epoch {}/{}", epoch + 1, t.epochs));
        for (i, idx) in order.chunks(t.batch_size).take(steps_per_epoch).enumerate() {
            let s = Instant::now();
            data.train.fill(idx, &mut batch);
            let loss = model.loss(&rows(&batch.x, idx.len(), l, c), &rows(&batch.y, idx.len(), h, c), idx.len() * c, cfg, &device);
            let value: f32 = loss.clone().into_scalar();
            let loss = match model.penalty() {
                Some(p) => loss + p,
                None => loss,
            };
            if !value.is_finite() {
                bail!("fine-tuning diverged at epoch {}: loss is {value}; lower train.lr", epoch + 1);
            }
            let mut grads = loss.backward();
            let gw = GradientsParams::from_module(&mut grads, model.scale_weights());
            let rest = GradientsParams::from_grads(grads, &model);
            model.observe(&rest);
            model = optim.step(t.lr, model, rest);
            if !gw.is_empty() {
                model = optim_w.step(t.scale_lr, model, gw);
            }
            loss_sum += value as f64;
            state.global_step += 1;
            model = model.after_step(state.global_step, steps_per_epoch * t.epochs);
            step_seconds = (step_seconds.0 + s.elapsed().as_secs_f64(), step_seconds.1 + 1);
            bar.step(loss_sum / (i + 1) as f64);
        }
        bar.finish();
        let val = val_loss(&model.valid(), &data.val, cfg, t.val_every, &eval_device);
        let seconds = started.elapsed().as_secs_f64();
        let log = EpochLog { epoch: epoch + 1, train_loss: loss_sum / steps_per_epoch as f64, val_loss: val, lr: t.lr, seconds, steps: steps_per_epoch };
        // The state outside the parameters first: a kill between the two writes resumes from
        // the previous checkpoint with newer scores, never the reverse.
        if let Some(json) = model.aux_state() {
            write_atomic(&aux_path, json.as_bytes())?;
        }
        let improved = finish_epoch(&mut state, &paths, &model, &optim, log, t.patience)?;
        save_optimizer(&optim_w, &optim_w_path)?;
        eprintln!("epoch {:>3}/{} train loss {:.4} val loss {val:.4} {seconds:.1}s{}", epoch + 1, t.epochs, loss_sum / steps_per_epoch as f64, if improved { " *" } else { "" });
    }
    state.finished = true;
    state.save(&paths.state)?;
    let best = load_module(build(&eval_device)?, &paths.best)?;
    let val = val_loss(&best, &data.val, cfg, t.val_every, &eval_device);
    let (test_mse, test_mae) = test_metrics(&best, &data.test, cfg, &eval_device);
    let results = FinetuneResults {
        config: cfg.clone(),
        model_sha256: strata_data::sha256_file(&cfg.model_dir().join("model.safetensors"))?,
        data: data_record_lsf(&data),
        protocol: format!(
            "fine-tune {} on {} train rows {:?} ({} stride-1 windows{}), select on the validation loss ({} windows, every {}), test rows {:?}: {} windows, context {l}, horizon {h}, every channel one series, scaled by the training rows' mean/std; {}",
            cfg.method.name(),
            data.dataset,
            data.borders.train,
            n,
            t.max_steps_per_epoch.map_or(String::new(), |m| format!(", at most {m} steps of {} per epoch", t.batch_size)),
            data.val.len(),
            t.val_every,
            data.borders.test,
            data.test.len(),
            best.describe(cfg)
        ),
        parameters: total,
        trainable,
        trainable_share: trainable as f64 / total as f64,
        epochs_run: state.epochs_done,
        best_epoch: state.best_epoch,
        history: state.history.clone(),
        seconds_per_step: step_seconds.0 / step_seconds.1.max(1) as f64,
        scale_weights: best.mix(),
        val_loss: val,
        notes: model.notes(),
        test_mse,
        test_mae,
        test_windows: data.test.len(),
        device: device_name(&device),
        git_revision: git_revision(),
        train_seconds: state.train_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    write_json(&paths.results_json, &results)?;
    Ok(results)
}

/// What `strata eval` measures on a fine-tuning run folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneEval {
    pub run_dir: std::path::PathBuf,
    pub data: DataRecord,
    pub test_mse: f64,
    pub test_mae: f64,
    pub test_windows: usize,
    pub git_revision: String,
    pub wall_seconds: f64,
}

/// Re-evaluate the best checkpoint of a fine-tuning run on its data's test split (`data.*`
/// overrides allowed, e.g. another file); writes `eval.json`.
pub fn evaluate<M: Tunable>(cfg: &FinetuneConfig, run_dir: &Path, build: impl Fn(&Device) -> Result<M>) -> Result<FinetuneEval> {
    let wall = Instant::now();
    let device = strata_train::device::compute_device();
    let model = load_module(build(&device)?, &RunPaths::new(run_dir).best)?;
    let data = prepare(&DataConfig { seq_len: model.history(cfg), ..cfg.data.clone() })?;
    let (test_mse, test_mae) = test_metrics(&model, &data.test, cfg, &device);
    let e = FinetuneEval { run_dir: run_dir.to_path_buf(), data: data_record_lsf(&data), test_mse, test_mae, test_windows: data.test.len(), git_revision: git_revision(), wall_seconds: wall.elapsed().as_secs_f64() };
    write_json(&run_dir.join("eval.json"), &e)?;
    Ok(e)
}
