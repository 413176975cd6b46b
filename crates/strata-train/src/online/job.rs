//! The online walk as a task of the training engine: engine step `t` is stream step `t`. The
//! task forecasts window `t` (its error joins the stream's totals), and returns the update's
//! loss (the revealed window, plus replayed memories); the engine steps the optimiser, and
//! every `checkpoint_every` steps writes the model, the optimiser and the stream state
//! (errors so far, the replay memory, the detector), so an interrupted walk resumes exactly.

use std::cell::RefCell;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use strata_data::window::{Batch, Windows};
use strata_models::{Model, ModelConfig};

use super::drift::Detector;
use super::refit::refit;
use super::replay::{Memory, Reservoir};
use super::settings::{OnDrift, OnlineConfig, Reveal, Strategy};
use crate::config::RunConfig;
use crate::engine::checkpoint::{EpochLog, load_optimizer, load_trained};
use crate::engine::schedule::Rate;
use crate::engine::{Batches, Group, Job, OptimizerSpec, Plan, RunPaths, Step, StepLoss};
use crate::tasks::data::{Task, build_model};

/// What the stream has seen so far (the task's state outside the parameters).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamState {
    /// Each step's forecast MSE and MAE (over horizon x output channels).
    pub mse: Vec<f32>,
    pub mae: Vec<f32>,
    pub memory: Reservoir,
    pub detector: Option<Detector>,
    pub drift_steps: Vec<usize>,
    pub retrain_steps: Vec<usize>,
    /// A re-training is due after this step's update.
    pub refit_due: bool,
    /// A re-training is due after this step (a fired detector's, after `drift_wait`).
    #[serde(default)]
    pub refit_at: Option<usize>,
    /// `on_drift = "update"`: OGD steps until this step (exclusive).
    #[serde(default)]
    pub update_until: usize,
}

/// A walk's checkpointed state: the stream's and the model's own (FSNet's averages and memory).
#[derive(Serialize, Deserialize)]
struct Saved {
    stream: StreamState,
    model: Option<String>,
}

pub struct OnlineJob<'a> {
    /// The run config with every dropout set to 0 (the papers update in eval mode).
    cfg: RunConfig,
    online: OnlineConfig,
    task: &'a Task,
    warm: RunPaths,
    lr: f64,
    steps: usize,
    batch: Batch,
    device: Option<Device>,
    state: RefCell<StreamState>,
}

/// `model` with every `*dropout` setting at 0.
pub fn without_dropout(model: &ModelConfig) -> Result<ModelConfig> {
    let mut v = toml::Value::try_from(model)?;
    if let Some(t) = v.as_table_mut() {
        for (k, val) in t.iter_mut() {
            if k.ends_with("dropout") && val.is_float() {
                *val = toml::Value::Float(0.0);
            }
        }
    }
    Ok(v.try_into()?)
}

impl<'a> OnlineJob<'a> {
    pub fn new(cfg: &RunConfig, online: &OnlineConfig, task: &'a Task, warm: &RunPaths, lr: f64) -> Result<Self> {
        let test = task.splits()[2];
        let steps = online.max_steps.map_or(test.len(), |m| m.min(test.len()));
        if steps == 0 {
            bail!("the test split of {} has no complete window of {} + {} steps: nothing to walk", task.dataset(), cfg.data.seq_len, cfg.data.pred_len);
        }
        let cfg = RunConfig { model: without_dropout(&cfg.model)?, ..cfg.clone() };
        let state = StreamState { memory: Reservoir::new(online.buffer), detector: online.drift.clone().map(Detector::new), ..Default::default() };
        Ok(OnlineJob { cfg, online: online.clone(), task, warm: RunPaths::new(&warm.dir), lr, steps, batch: Batch::default(), device: None, state: RefCell::new(state) })
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Cumulative MSE and MAE over the steps walked.
    pub fn totals(&self) -> (f64, f64) {
        let s = self.state.borrow();
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
        (mean(&s.mse), mean(&s.mae))
    }

    pub fn drift_steps(&self) -> Vec<usize> {
        self.state.borrow().drift_steps.clone()
    }

    pub fn retrain_steps(&self) -> Vec<usize> {
        self.state.borrow().retrain_steps.clone()
    }

    /// `step,mse,mae,cumulative_mse,drift` per stream step.
    pub fn curve_csv(&self) -> String {
        let s = self.state.borrow();
        let mut out = String::from("step,mse,mae,cumulative_mse,drift\n");
        let mut sum = 0f64;
        let mut fired = s.drift_steps.iter().peekable();
        for (t, (m, a)) in s.mse.iter().zip(&s.mae).enumerate() {
            sum += *m as f64;
            let d = fired.next_if(|&&f| f == t).is_some();
            out += &format!("{t},{m},{a},{},{}\n", sum / (t + 1) as f64, d as u8);
        }
        out
    }

    fn test(&self) -> &'a Windows {
        self.task.splits()[2]
    }

    /// The model's forecast of test windows `idx` (output channels) and their truth.
    fn forecast(&mut self, model: &Model, idx: &[usize], device: &Device) -> (Tensor<3>, Tensor<3>) {
        let task = self.task;
        self.test().fill(idx, &mut self.batch);
        let x = task.input(&mut self.batch, device);
        let y = task.target(&mut self.batch, device);
        let marks = task.marks(&mut self.batch, device);
        let covariates = task.covariates(&mut self.batch, device);
        let out = task.output();
        let pred = model.forward_inputs(x, marks, None, covariates).narrow(2, out.start, out.len());
        (pred, y.narrow(2, out.start, out.len()))
    }

    /// The update's loss on window `w`: its MSE plus the replayed memories' terms. Stores `w`.
    fn update_loss(&mut self, model: &Model, w: usize, t: usize, device: &Device, known: Option<Tensor<3>>) -> Tensor<1> {
        let (pred, truth) = match known {
            Some(pred) => (pred, self.forecast_truth(w, device)),
            None => self.forecast(model, &[w], device),
        };
        let stored: Vec<f32> = pred.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 forecast");
        let mut loss = (pred - truth).powi_scalar(2).mean();
        let replay = matches!(self.online.strategy, Strategy::Er | Strategy::Derpp);
        let drawn: Vec<Memory> = if replay { self.state.borrow().memory.draw(self.online.replay_batch, self.cfg.train.seed, t).into_iter().cloned().collect() } else { vec![] };
        if !drawn.is_empty() {
            let idx: Vec<usize> = drawn.iter().map(|m| m.window).collect();
            let (out, truth) = self.forecast(model, &idx, device);
            loss = loss + (out.clone() - truth).powi_scalar(2).mean().mul_scalar(self.online.replay_weight);
            if self.online.strategy == Strategy::Derpp {
                let dims = out.dims();
                let logits: Vec<f32> = drawn.iter().flat_map(|m| m.forecast.iter().copied()).collect();
                let logits = Tensor::<3>::from_data(burn::tensor::TensorData::new(logits, dims), device);
                loss = loss + (out - logits).powi_scalar(2).mean().mul_scalar(self.online.logit_weight);
            }
        }
        if replay {
            self.state.borrow_mut().memory.offer(Memory { window: w, forecast: stored }, self.cfg.train.seed, t);
        }
        loss
    }

    fn forecast_truth(&mut self, w: usize, device: &Device) -> Tensor<3> {
        self.test().fill(&[w], &mut self.batch);
        let out = self.task.output();
        self.task.target(&mut self.batch, device).narrow(2, out.start, out.len())
    }

    /// Record window `t`'s forecast error; feed the detector the error the stream knows now.
    fn record(&mut self, t: usize, pred: &Tensor<3>, truth: &Tensor<3>) {
        let p: Vec<f32> = pred.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        let y: Vec<f32> = truth.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        let n = p.len().max(1) as f64;
        let mse = p.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / n;
        let mae = p.iter().zip(&y).map(|(a, b)| ((a - b) as f64).abs()).sum::<f64>() / n;
        let mut s = self.state.borrow_mut();
        s.mse.push(mse as f32);
        s.mae.push(mae as f32);
        // Immediate reveal: window t's error is known now; delayed: the window ending now.
        let known = match self.online.reveal {
            Reveal::Immediate => Some(t),
            Reveal::Delayed => t.checked_sub(self.cfg.data.pred_len),
        };
        if let Some(k) = known {
            let err = s.mse[k] as f64;
            if let Some(d) = s.detector.as_mut()
                && d.update(err)
            {
                s.drift_steps.push(t);
                match self.online.on_drift {
                    OnDrift::Retrain if s.refit_at.is_none() => s.refit_at = Some(t + self.online.drift_wait),
                    OnDrift::Update => s.update_until = t + 1 + self.online.drift_updates,
                    _ => {}
                }
            }
        }
        if s.refit_at == Some(t) {
            s.refit_at = None;
            s.refit_due = true;
        }
        if self.online.retrain_every > 0 && (t + 1) % self.online.retrain_every == 0 {
            s.refit_due = true;
        }
    }
}

impl Job for OnlineJob<'_> {
    type Model = Model;

    fn seed(&self) -> u64 {
        self.cfg.train.seed
    }

    fn plan(&self) -> Plan {
        let every = self.online.checkpoint_every;
        Plan {
            rounds: self.steps.div_ceil(every),
            steps_per_round: every,
            total_steps: self.steps,
            patience: usize::MAX,
            batches: Batches::Drawn,
            unit: "segment",
            activity: "online learning",
        }
    }

    fn build(&mut self, device: &Device) -> Result<Model> {
        self.device = Some(device.clone());
        let model = build_model(&self.cfg, self.task, device)?;
        // With its state outside the parameters (FSNet's gradient averages) as the warm-up's
        // last step left it.
        load_trained(model, &self.warm.dir, &self.warm.best).map_err(|e| anyhow::anyhow!("the warm-up model {}: {e}", self.warm.best.display()))
    }

    fn observe(&self, model: &Model, grads: &[burn::optim::GradientsParams]) {
        model.observe_gradients(&grads[0], true);
    }

    fn groups(&self) -> Vec<Group> {
        let mut group = Group::new(&OptimizerSpec::of_train(&self.cfg.train), Rate::Constant(self.lr), "optimizer.bpk");
        // FSNet goes on with the warm-up's optimiser and its state.
        if self.warm.optim.exists()
            && let Ok(o) = load_optimizer(OptimizerSpec::of_train(&self.cfg.train).build(), &self.warm.optim)
        {
            group.optim = o;
        }
        vec![group]
    }

    fn describe(&self, model: &Model, _device: &Device) -> String {
        format!("{} ({} parameters) from {}", self.cfg.model.name(), model.num_params(), self.warm.best.display())
    }

    fn loss(&mut self, model: &Model, step: &Step, device: &Device) -> Result<StepLoss> {
        let t = step.global;
        let h = self.cfg.data.pred_len;
        let updates = self.online.updates() || t < self.state.borrow().update_until;
        let loss = if updates && (self.online.reveal == Reveal::Immediate || h == 1) {
            // The forecast is also the update's forward pass (FSNet).
            let (pred, truth) = self.forecast(model, &[t], device);
            self.record(t, &pred, &truth);
            self.update_loss(model, t, t, device, Some(pred))
        } else {
            let eval = device.clone().without_autodiff();
            let (pred, truth) = self.forecast(&model.valid(), &[t], &eval);
            self.record(t, &pred, &truth);
            match t.checked_sub(h).filter(|_| updates) {
                Some(w) => self.update_loss(model, w, t, device, None),
                None => return Ok(StepLoss { loss: Tensor::zeros([1], device).require_grad(), value: 0.0, weight: None }),
            }
        };
        Ok(StepLoss::of(loss))
    }

    fn validate(&mut self, _model: &Model, _round: usize, _device: &Device) -> Option<f64> {
        Some(self.totals().0)
    }

    fn after_step(&self, model: Model, step: usize, _total: usize) -> Model {
        let due = std::mem::take(&mut self.state.borrow_mut().refit_due);
        if !due {
            return model;
        }
        let t = step - 1;
        // Windows whose whole horizon is known at step t.
        let known_end = match self.online.reveal {
            Reveal::Immediate => Some(t + 1),
            Reveal::Delayed => (t + 1).checked_sub(self.cfg.data.pred_len),
        };
        let Some(end) = known_end.filter(|&e| e > 0) else { return model };
        let start = end.saturating_sub(self.online.retrain_windows);
        let device = self.device.clone().expect("built");
        match refit(model.clone(), &self.cfg, self.task, start..end, self.online.retrain_epochs, &device) {
            Ok(m) => {
                self.state.borrow_mut().retrain_steps.push(t);
                m
            }
            Err(e) => {
                eprintln!("re-training at stream step {t} failed ({e}); the stream goes on with the current model");
                model
            }
        }
    }

    fn aux_state(&self, model: &Model) -> Option<String> {
        serde_json::to_string(&Saved { stream: self.state.borrow().clone(), model: model.extra_state() }).ok()
    }

    fn restore_aux_state(&self, model: &Model, json: &str) -> Result<()> {
        let saved: Saved = serde_json::from_str(json)?;
        if let Some(m) = &saved.model {
            model.restore_extra_state(m).map_err(anyhow::Error::msg)?;
        }
        *self.state.borrow_mut() = saved.stream;
        Ok(())
    }

    fn report(&self, plan: &Plan, log: &EpochLog, _improved: bool) -> Option<String> {
        let s = self.state.borrow();
        let done = s.mse.len();
        Some(format!(
            "stream {done}/{}: cumulative MSE {:.4} MAE {:.4}, {} drift(s), {} re-training(s), {:.1}s ({:.1} ms/step)",
            plan.total_steps,
            log.val_loss,
            s.mae.iter().map(|&x| x as f64).sum::<f64>() / done.max(1) as f64,
            s.drift_steps.len(),
            s.retrain_steps.len(),
            log.seconds,
            1e3 * log.step_seconds
        ))
    }
}
