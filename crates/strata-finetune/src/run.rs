//! The fine-tuning loop, shared by the backbones (LSF protocol: the standard split, scaled by
//! the training rows' statistics, stride-1 windows, early stopping on the validation loss).
//! Every channel of a window is one univariate series. MOIRAI: the loss is the NLL of the
//! horizon (per scale and weighted for MSFT), the point forecast the mean of sample paths (MSE)
//! and their median (MAE). TinyTimeMixer: the loss is the MSE, the forecast a point.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Tensor};
use serde::{Deserialize, Serialize};
use strata_data::prepare::{DataConfig, Prepared, prepare};
use strata_data::window::{Batch, Windows};
use strata_train::config::Optimizer;
use strata_train::device::{device_name, training_device};
use strata_train::engine::checkpoint::{EpochLog, load_module};
use strata_train::engine::record::{ParallelRecord, git_revision, write_json};
use strata_train::engine::schedule::Rate;
use strata_train::engine::{Group, Job, OptimizerSpec, Plan, Run, RunPaths, Step, StepLoss, Store, fit, parallel};
use strata_train::tasks::data::{DataRecord, data_record_lsf};

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
    /// The processes it trained on.
    #[serde(default)]
    pub parallel: Option<ParallelRecord>,
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
    fn adalora(&self) -> Option<&strata_models::adapters::adalora::AdaLora> {
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

/// AdamW (0.9, 0.98), epsilon 1e-6, uni2ts's fine-tuning optimiser.
fn optimizer(cfg: &FinetuneConfig) -> OptimizerSpec {
    let t = &cfg.train;
    OptimizerSpec {
        kind: Optimizer::Adamw,
        betas: Some((0.9, 0.98)),
        epsilon: Some(1e-6),
        weight_decay: Some(t.weight_decay as f32),
        grad_clip: (t.grad_clip > 0.0).then_some(t.grad_clip as f32),
    }
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
    // A data-parallel run splits the batches across its ranks and adds up their sums.
    let world = parallel::world();
    let mut sums = [0f64, 0f64];
    for (_, chunk) in idx.chunks(cfg.train.eval_batch_size.max(1)).enumerate().filter(|(k, _)| k % world.size() == world.rank()) {
        w.fill(chunk, &mut batch);
        let loss: f32 = model.loss(&rows(&batch.x, chunk.len(), l, c), &rows(&batch.y, chunk.len(), h, c), chunk.len() * c, cfg, device).into_scalar();
        sums[0] += loss as f64 * chunk.len() as f64;
        sums[1] += chunk.len() as f64;
    }
    world.sum_f64(&mut sums);
    sums[0] / sums[1].max(1.0)
}

/// Test MSE and MAE over every test window.
fn test_metrics<M: Tunable>(model: &M, w: &Windows, cfg: &FinetuneConfig, device: &Device) -> (f64, f64) {
    let (c, l, h) = (w.channels(), w.seq_len, w.pred_len);
    let all: Vec<usize> = (0..w.len()).collect();
    let mut batch = Batch::default();
    let world = parallel::world();
    let (mut sq, mut ab) = (0f64, 0f64);
    // Each chunk keeps its seed (its index) whichever rank forecasts it.
    for (k, chunk) in all.chunks(cfg.train.eval_batch_size.max(1)).enumerate().filter(|(k, _)| k % world.size() == world.rank()) {
        w.fill(chunk, &mut batch);
        let r = chunk.len() * c;
        let (mean, median) = model.point(&rows(&batch.x, chunk.len(), l, c), r, h, cfg, cfg.train.seed.wrapping_add(k as u64 * 7919), device);
        let truth = rows(&batch.y, chunk.len(), h, c);
        for ((m, md), y) in mean.iter().zip(&median).zip(&truth) {
            sq += ((m - y) as f64).powi(2);
            ab += ((md - y) as f64).abs();
        }
    }
    let mut sums = [sq, ab];
    world.sum_f64(&mut sums);
    let count = (w.len() * h * c).max(1) as f64;
    (sums[0] / count, sums[1] / count)
}

/// Fine-tuning as an engine task: two parameter groups, the model at `train.lr` and MSFT's
/// scale weights at `train.scale_lr`, each with its own AdamW state.
struct Finetuning<'a, M, B> {
    cfg: &'a FinetuneConfig,
    build: B,
    data: Option<Prepared>,
    batch: Batch,
    _model: std::marker::PhantomData<M>,
}

impl<M: Tunable, B: Fn(&Device) -> Result<M>> Finetuning<'_, M, B> {
    fn data(&self) -> &Prepared {
        self.data.as_ref().expect("the data is prepared when the model is built")
    }
}

impl<M: Tunable, B: Fn(&Device) -> Result<M>> Job for Finetuning<'_, M, B> {
    type Model = M;

    fn seed(&self) -> u64 {
        self.cfg.train.seed
    }

    fn plan(&self) -> Plan {
        let t = &self.cfg.train;
        Plan { activity: "fine-tuning", ..Plan::epochs(t.epochs, self.data().train.len(), t.batch_size, t.max_steps_per_epoch, t.patience, t.seed) }
    }

    fn build(&mut self, device: &Device) -> Result<M> {
        let model = (self.build)(device)?;
        self.data = Some(prepare(&DataConfig { seq_len: model.history(self.cfg), ..self.cfg.data.clone() })?);
        Ok(model)
    }

    fn groups(&self) -> Vec<Group> {
        let (spec, t) = (optimizer(self.cfg), &self.cfg.train);
        vec![Group::new(&spec, Rate::Constant(t.lr), "optimizer.bpk"), Group::new(&spec, Rate::Constant(t.scale_lr), "optimizer_scales.bpk")]
    }

    fn describe(&self, model: &M, device: &Device) -> String {
        let (cfg, data) = (self.cfg, self.data());
        let (total, trainable) = (model.num_params(), strata_models::trainable_params(model));
        format!(
            "fine-tuning {} ({}) on {}: {trainable} of {total} parameters train ({:.2}%), {} scale(s), context {}, {} training windows x {} channels, {}",
            cfg.model_dir().display(),
            cfg.method.name(),
            data.dataset,
            100.0 * trainable as f64 / total as f64,
            model.scale_weights().dims()[0],
            data.train.seq_len,
            data.train.len(),
            data.train.channels(),
            device_name(device)
        )
    }

    fn loss(&mut self, model: &M, step: &Step, device: &Device) -> Result<StepLoss> {
        let data = self.data.as_ref().expect("prepared");
        let w = &data.train;
        let (c, l, h, b) = (w.channels(), w.seq_len, w.pred_len, step.batch.len());
        w.fill(step.batch, &mut self.batch);
        let loss = model.loss(&rows(&self.batch.x, b, l, c), &rows(&self.batch.y, b, h, c), b * c, self.cfg, device);
        let value: f32 = loss.clone().into_scalar();
        // The penalty (AdaLoRA's orthogonality) shapes training; the logged loss leaves it out.
        let loss = match model.penalty() {
            Some(p) => loss + p,
            None => loss,
        };
        Ok(StepLoss { loss, value, weight: None })
    }

    fn split_grads(&self, model: &M, mut grads: Gradients) -> Vec<GradientsParams> {
        let scales = GradientsParams::from_module(&mut grads, model.scale_weights());
        vec![GradientsParams::from_grads(grads, model), scales]
    }

    fn observe(&self, model: &M, grads: &[GradientsParams]) {
        model.observe(&grads[0]);
    }

    fn after_step(&self, model: M, step: usize, total: usize) -> M {
        model.after_step(step, total)
    }

    fn aux_state(&self, model: &M) -> Option<String> {
        model.aux_state()
    }

    fn restore_aux_state(&self, model: &M, json: &str) -> Result<()> {
        model.restore_aux_state(json).map_err(anyhow::Error::msg)
    }

    fn validate(&mut self, model: &M, _round: usize, device: &Device) -> Option<f64> {
        Some(val_loss(model, &self.data().val, self.cfg, self.cfg.train.val_every, device))
    }

    fn divergence_hint(&self) -> &'static str {
        "lower train.lr"
    }
}

/// Fine-tune (or resume) the run `cfg` in `run_dir`; `build` makes the model on a device.
pub fn finetune<M: Tunable>(cfg: &FinetuneConfig, run_dir: &Path, fresh: bool, build: impl Fn(&Device) -> Result<M>) -> Result<FinetuneResults> {
    let wall = Instant::now();
    let t = &cfg.train;
    if t.epochs == 0 || t.batch_size == 0 || !(t.lr > 0.0) || !(t.scale_lr > 0.0) {
        bail!("key `train`: epochs, batch_size, lr and scale_lr must be positive");
    }
    let mut run = Run::open(run_dir, fresh, cfg, &cfg.to_toml(), FinetuneConfig::from_toml)?;
    let device = training_device();
    let mut job = Finetuning { cfg, build, data: None, batch: Batch::default(), _model: std::marker::PhantomData };
    let fitted = fit(&mut job, Store::Folder(&mut run), &device, usize::MAX)?;
    run.finish()?;
    let (model, build, data) = (fitted.model, job.build, job.data.expect("prepared"));
    let (paths, state) = (&run.paths, &run.state);
    let (total, trainable) = (model.num_params(), strata_models::trainable_params(&model));
    let (n, l, h) = (data.train.len(), data.train.seq_len, data.train.pred_len);
    let eval_device = device.clone().without_autodiff();
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
        seconds_per_step: fitted.seconds_per_step,
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
        parallel: Some(ParallelRecord::now()),
    };
    if strata_train::engine::parallel::world().is_root() {
        write_json(&paths.results_json, &results)?;
    }
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
