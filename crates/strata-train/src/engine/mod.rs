//! The training engine: the one loop every training run goes through (`strata train` for
//! forecasting, probabilistic, spatio-temporal and VAE runs, `strata pretrain`, every
//! `strata finetune` method, `strata tune`'s trials, `strata distill-eval`).
//!
//! The engine owns the epoch and step loop, the seeded data order, the learning-rate schedules,
//! the optimisers of the parameter groups (each with its own rate, gradient clipping inside),
//! the non-finite-loss guard, progress with ETA, validation, early stopping, atomic checkpoints
//! and resume. A training task (a [`Job`]) supplies only what differs: how the model is built,
//! how a step's batch becomes a loss, how validation is scored, which parameters train at which
//! rate, and what it reports.

pub mod anomaly;
pub mod checkpoint;
pub mod proximal;
pub mod interrupt;
pub mod optim;
pub mod parallel;
pub mod progress;
pub mod record;
pub mod run_folder;
pub mod schedule;

use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Tensor};
use strata_data::window::epoch_order;

use checkpoint::{EpochLog, TrainState, load_module, load_optimizer};
pub use optim::{Group, OptimizerSpec, build_optimizer};
use progress::Progress;
pub use run_folder::{Run, RunPaths};

/// Where a task's steps take their batches from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Batches {
    /// `n` windows in a seeded random order each epoch (`epoch_order` with seed
    /// `seed * 1_000_003 + epoch`), `batch_size` per step, the last batch short.
    Windows { n: usize, batch_size: usize, seed: u64 },
    /// The task draws its own batches (from the step numbers, or in [`Job::begin_round`]).
    Drawn,
}

/// The shape of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rounds of steps, each ending with validation and a checkpoint: epochs, or for
    /// pretraining `checkpoint_every` steps.
    pub rounds: usize,
    /// Steps of a full round; the last round stops at `total_steps`.
    pub steps_per_round: usize,
    pub total_steps: usize,
    /// Stop after this many rounds without a better validation loss (`usize::MAX`: never).
    pub patience: usize,
    pub batches: Batches,
    /// What a round is called in progress lines (`epoch`, `round`).
    pub unit: &'static str,
    /// What is trained, for messages (`training`, `pretraining`, `fine-tuning`).
    pub activity: &'static str,
}

impl Plan {
    /// `epochs` epochs over `n` windows in batches of `batch_size`, at most `max_steps` per epoch.
    pub fn epochs(epochs: usize, n: usize, batch_size: usize, max_steps: Option<usize>, patience: usize, seed: u64) -> Plan {
        let steps = max_steps.map_or(n.div_ceil(batch_size), |m| m.min(n.div_ceil(batch_size)));
        Plan {
            rounds: epochs,
            steps_per_round: steps,
            total_steps: steps * epochs,
            patience,
            batches: Batches::Windows { n, batch_size, seed },
            unit: "epoch",
            activity: "training",
        }
    }

    /// Steps of round `round` (0-based).
    pub fn steps_in(&self, round: usize) -> usize {
        self.steps_per_round.min(self.total_steps.saturating_sub(round * self.steps_per_round))
    }
}

/// One training step, as the task sees it.
pub struct Step<'a> {
    /// The round (epoch), 0-based.
    pub round: usize,
    /// The step within the round, 0-based.
    pub index: usize,
    /// Steps done before this one, over the whole run.
    pub global: usize,
    /// The windows of this step ([`Batches::Windows`]; empty for [`Batches::Drawn`]).
    pub batch: &'a [usize],
}

/// A step's loss: `loss` is differentiated; `value` is logged and guarded (it may leave out
/// terms that only shape training, such as a penalty). Under data parallelism each rank's loss
/// is a mean over its share of the batch and counts with `weight` (default: its windows; a
/// masked mean gives the points it kept), so the ranks' weighted mean is the global batch's.
pub struct StepLoss {
    pub loss: Tensor<1>,
    pub value: f32,
    pub weight: Option<f64>,
}

impl StepLoss {
    /// A loss that is also its own logged value.
    pub fn of(loss: Tensor<1>) -> Self {
        let value = loss.clone().into_scalar();
        StepLoss { loss, value, weight: None }
    }
}

/// A training task: what differs between runs.
pub trait Job {
    type Model: Module;

    /// The device's random seed before the model is built.
    fn seed(&self) -> u64;
    /// The shape of the run (asked once the model is built).
    fn plan(&self) -> Plan;
    /// Build the model on `device` (its random seed already set from [`Job::seed`]).
    fn build(&mut self, device: &Device) -> Result<Self::Model>;
    /// The parameter groups; the first takes every parameter that [`Job::split_grads`] does
    /// not give to a later one.
    fn groups(&self) -> Vec<Group>;
    /// The line printed once the model is built (and resumed); empty: none.
    fn describe(&self, model: &Self::Model, device: &Device) -> String;
    /// The loss of one step.
    fn loss(&mut self, model: &Self::Model, step: &Step, device: &Device) -> Result<StepLoss>;
    /// The validation loss that selects the best model and drives early stopping (lower is
    /// better); `None` skips validation this round (in-memory runs only).
    fn validate(&mut self, model: &Self::Model, round: usize, device: &Device) -> Option<f64>;

    /// Before a round's first step (seeding, the task's own data order).
    fn begin_round(&mut self, _round: usize, _device: &Device) {}
    /// The gradients of each group, in [`Job::groups`] order (default: all to the first).
    fn split_grads(&self, model: &Self::Model, grads: Gradients) -> Vec<GradientsParams> {
        vec![GradientsParams::from_grads(grads, model)]
    }
    /// See a step's gradients before the optimisers step (AdaLoRA's importance scores).
    fn observe(&self, _model: &Self::Model, _grads: &[GradientsParams]) {}

    /// FedProx's `mu`: a proximal term `mu/2 * ||w - w0||^2` to the weights the fit started from
    /// joins every step's loss (0: none).
    fn proximal_mu(&self) -> f64 {
        0.0
    }
    /// After optimiser step `step` (1-based) of `total` (AdaLoRA's budget).
    fn after_step(&self, model: Self::Model, _step: usize, _total: usize) -> Self::Model {
        model
    }
    /// Training state outside the parameters (JSON), checkpointed with them.
    fn aux_state(&self, _model: &Self::Model) -> Option<String> {
        None
    }
    fn restore_aux_state(&self, _model: &Self::Model, _json: &str) -> Result<()> {
        Ok(())
    }
    /// What to try when the loss is not finite.
    fn divergence_hint(&self) -> &'static str {
        "lower train.lr or set train.grad_clip"
    }
    /// Check every gradient after each backward pass (`train.detect_anomaly`).
    fn detect_anomaly(&self) -> bool {
        false
    }
    /// Why a step's inputs are not finite (which window, row and column), if they are not:
    /// asked when the loss is not finite.
    fn diagnose_inputs(&self, _step: &Step) -> Option<String> {
        None
    }
    /// The line printed after each round (`None`: none, for trainings inside an algorithm).
    fn report(&self, plan: &Plan, log: &EpochLog, improved: bool) -> Option<String> {
        let lr = log.lr;
        let comm = if log.comm_seconds > 0.0 { format!(" (all-reduce {:.0}% of a step)", 100.0 * log.comm_seconds / log.step_seconds) } else { String::new() };
        Some(format!("{} {:>3}/{} train {:.5} val {:.5} lr {lr:.3e} {:.1}s{comm}{}", plan.unit, log.epoch, plan.rounds, log.train_loss, log.val_loss, log.seconds, if improved { " *" } else { "" }))
    }
}

/// What [`fit`] leaves.
pub struct Fitted<M> {
    /// The model after the last step.
    pub model: M,
    /// In-memory runs: the model of the best validation loss.
    pub best: Option<M>,
    /// Mean wall time of a training step in this invocation, seconds.
    pub seconds_per_step: f64,
    /// The optimiser groups after the last step (their state), for a caller that goes on
    /// stepping the same model in later fits (`strata serve`'s online updates).
    pub groups: Vec<Group>,
}

/// Where a run keeps its checkpoints: a run folder, or nothing (the best model is kept in
/// memory; for short trainings inside an algorithm, e.g. scoring a distilled set).
pub enum Store<'a> {
    Folder(&'a mut Run),
    Memory(&'a mut TrainState),
}

impl Store<'_> {
    fn state(&mut self) -> &mut TrainState {
        match self {
            Store::Folder(run) => &mut run.state,
            Store::Memory(state) => state,
        }
    }
}

/// The file of a task's training state outside the parameters.
pub const AUX_STATE: &str = "aux_state.json";

/// Train `job` on `device` (an autodiff device) until `until` rounds are done (or the plan's
/// rounds, early stopping, or a finished run), resuming from the run folder's checkpoint.
pub fn fit<J: Job>(job: &mut J, mut store: Store, device: &Device, until: usize) -> Result<Fitted<J::Model>> {
    let world = parallel::world();
    let root = world.is_root();
    device.seed(job.seed());
    let mut model = job.build(device)?;
    let plan = job.plan();
    let mut groups = job.groups();
    // Resume from `last.bpk`: after an epoch, or in a run folder made with no epoch trained
    // (`train.epochs = 0`) whose model was then replaced (`set_weights`).
    if let Store::Folder(run) = &store
        && (run.state.epochs_done > 0 || (run.resumed_at.is_some() && run.paths.last.exists()))
    {
        let paths = &run.paths;
        model = load_module(model, &paths.last)?;
        for (g, group) in groups.iter_mut().enumerate() {
            let path = paths.dir.join(group.file);
            if (g == 0 && run.state.epochs_done > 0) || path.exists() {
                group.optim = load_optimizer(std::mem::replace(&mut group.optim, OptimizerSpec::adam().build()), &path)?;
            }
        }
        let aux = paths.dir.join(AUX_STATE);
        if let Ok(json) = std::fs::read_to_string(&aux) {
            job.restore_aux_state(&model, &json).map_err(|e| anyhow::anyhow!("{}: {e}", aux.display()))?;
        }
        if root {
            eprintln!("resuming {} at {} {}/{} (step {}/{})", paths.dir.display(), plan.unit, run.state.epochs_done + 1, plan.rounds, run.state.global_step, plan.total_steps);
        }
    }
    let anchor = proximal::Anchor::of(&model, job.proximal_mu());
    let line = job.describe(&model, device);
    if root && !line.is_empty() {
        eprintln!("{line}");
        if world.size() > 1 {
            eprintln!("data-parallel over {} ranks ({}), {} compute threads each", world.size(), world.launcher().unwrap_or("?"), std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()));
        }
    }

    let eval_device = device.clone().without_autodiff();
    let (mut step_seconds, mut steps_timed) = (0f64, 0usize);
    let mut best = None;
    let mut order = vec![];
    loop {
        let state = store.state();
        if state.finished || state.epochs_done >= until.min(plan.rounds) || state.stopped_early {
            break;
        }
        let round = state.epochs_done;
        let started = Instant::now();
        job.begin_round(round, device);
        let batch_size = match plan.batches {
            Batches::Windows { n, batch_size, seed } => {
                order = epoch_order(n, Some(seed.wrapping_mul(1_000_003).wrapping_add(round as u64)));
                batch_size
            }
            Batches::Drawn => 0,
        };
        let steps = plan.steps_in(round);
        let mut bar = root.then(|| Progress::new(steps as u64, format!("{} {}/{}", plan.unit, round + 1, plan.rounds)));
        let (mut loss_sum, mut lr) = (0.0, vec![0.0; groups.len()]);
        let (mut round_step_s, mut comm) = (0f64, std::time::Duration::ZERO);
        for i in 0..steps {
            if interrupt::requested() {
                if let Some(bar) = bar.take() {
                    bar.finish();
                }
                return Err(interrupt::Interrupted { round: round + 1 }.into());
            }
            let s = Instant::now();
            let global = store.state().global_step;
            for (g, group) in groups.iter().enumerate() {
                lr[g] = group.rate.at(round, global, plan.total_steps);
            }
            let batch = if batch_size > 0 { &order[(i * batch_size).min(order.len())..((i + 1) * batch_size).min(order.len())] } else { &[][..] };
            let (batch, share) = match world.size() {
                1 => (std::borrow::Cow::Borrowed(batch), None),
                _ => {
                    // This rank's share; a rank whose share is empty (a short last batch) runs the
                    // whole batch with weight 0, to take part in the same collectives.
                    let own = world.shard(batch);
                    let empty = own.is_empty() && !batch.is_empty();
                    (if empty { std::borrow::Cow::Borrowed(batch) } else { std::borrow::Cow::Owned(own) }, Some(empty))
                }
            };
            let StepLoss { mut loss, value, weight } = job.loss(&model, &Step { round, index: i, global, batch: &batch }, device)?;
            if let Some(p) = anchor.as_ref().and_then(|a| a.penalty(&model)) {
                loss = loss + p;
            }
            let (value, scale) = match share {
                None => (value, 1.0),
                Some(empty) => {
                    // The global loss: the ranks' losses weighted by their shares.
                    let w = if empty { 0.0 } else { weight.unwrap_or(if batch_size > 0 { batch.len() as f64 } else { 1.0 }) };
                    let mut h = [if w > 0.0 { w * value as f64 } else { 0.0 }, w];
                    let c = Instant::now();
                    world.sum_f64(&mut h);
                    comm += c.elapsed();
                    // No rank kept anything (a masked batch of null targets only): a zero loss
                    // and no step, as one process's masked mean gives.
                    if h[1] > 0.0 { ((h[0] / h[1]) as f32, (w / h[1]) as f32) } else { (0.0, 0.0) }
                }
            };
            let at = || {
                let shown: Vec<String> = batch.iter().take(8).map(|w| w.to_string()).collect();
                let windows = if batch.is_empty() { String::new() } else { format!(", windows [{}{}] of the epoch's data", shown.join(", "), if batch.len() > 8 { ", ..." } else { "" }) };
                format!("{} {} step {} (global step {}){windows}", plan.unit, round + 1, i + 1, global + 1)
            };
            if !value.is_finite() {
                // Why: the inputs, else a parameter already non-finite, else the loss itself.
                let why = job.diagnose_inputs(&Step { round, index: i, global, batch: &batch }).or_else(|| anomaly::nonfinite_parameter(&model)).unwrap_or_else(|| "inputs and parameters are finite: the loss overflowed".into());
                bail!("{} diverged at {}: loss is {value}; {why}; {}", plan.activity, at(), job.divergence_hint());
            }
            let mut grads = job.split_grads(&model, loss.backward());
            if job.detect_anomaly()
                && let Some(why) = grads.iter().find_map(|g| anomaly::nonfinite_gradient(&model, g))
            {
                bail!("{} went non-finite at {}: the loss is finite ({value}) but {why} (train.detect_anomaly); {}", plan.activity, at(), job.divergence_hint());
            }
            if share.is_some() {
                let c = Instant::now();
                for g in grads.iter_mut() {
                    parallel::reduce_grads(&model, g, scale, world, steps_timed == 0).map_err(anyhow::Error::msg)?;
                }
                comm += c.elapsed();
            }
            job.observe(&model, &grads);
            for (g, (group, grads)) in groups.iter_mut().zip(grads).enumerate() {
                if g == 0 || !grads.is_empty() {
                    model = group.optim.step(lr[g], model, grads);
                }
            }
            loss_sum += value as f64;
            let state = store.state();
            state.global_step += 1;
            model = job.after_step(model, state.global_step, plan.total_steps);
            step_seconds += s.elapsed().as_secs_f64();
            round_step_s += s.elapsed().as_secs_f64();
            steps_timed += 1;
            if let Some(bar) = bar.as_mut() {
                bar.step(loss_sum / (i + 1) as f64);
            }
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        // Every rank took the same steps from the same start (same seed, same averaged
        // gradients): the same model everywhere, BatchNorm statistics averaged.
        model = parallel::sync_module(model, world);
        let val = job.validate(&model.valid(), round, &eval_device);
        // Every rank validates the same model; rank 0's value decides for all.
        let val = match world.size() {
            1 => val,
            _ => Some(world.broadcast_f64(val.unwrap_or(f64::NAN))).filter(|v| !v.is_nan()),
        };
        let log = EpochLog {
            epoch: round + 1,
            train_loss: loss_sum / steps.max(1) as f64,
            val_loss: val.unwrap_or(f64::NAN),
            lr: lr.first().copied().unwrap_or(0.0),
            seconds: started.elapsed().as_secs_f64(),
            steps,
            step_seconds: round_step_s / steps.max(1) as f64,
            comm_seconds: comm.as_secs_f64() / steps.max(1) as f64,
        };
        let improved = match &mut store {
            Store::Folder(run) => {
                let aux = root.then(|| job.aux_state(&model)).flatten();
                run_folder::finish_epoch(&mut run.state, &run.paths, &model, &groups, aux, log.clone(), plan.patience, root)?
            }
            Store::Memory(state) => {
                let improved = val.is_some_and(|v| state.best_val.is_none_or(|b| v < b));
                if improved {
                    (state.best_val, state.best_epoch, state.bad_epochs) = (val, Some(log.epoch), 0);
                    best = Some(model.clone());
                } else if val.is_some() {
                    state.bad_epochs += 1;
                }
                state.train_seconds += log.seconds;
                state.history.push(log.clone());
                state.epochs_done += 1;
                state.stopped_early = state.bad_epochs >= plan.patience;
                improved
            }
        };
        if let Some(line) = job.report(&plan, &log, improved).filter(|_| root) {
            eprintln!("{line}");
        }
        if root && store.state().stopped_early {
            eprintln!("early stopping: no better validation loss for {} {}s", plan.patience, plan.unit);
        }
    }
    if let Store::Folder(run) = &store
        && root
    {
        run.state.save(&run.paths.state)?;
    }
    // The other ranks read the checkpoints rank 0 wrote only once they are complete.
    world.barrier();
    Ok(Fitted { model, best, seconds_per_step: step_seconds / steps_timed.max(1) as f64, groups })
}

#[cfg(test)]
mod tests;
