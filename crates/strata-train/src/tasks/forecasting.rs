//! Forecasting runs (`strata train`): point, probabilistic (distribution heads) and
//! spatio-temporal models on their data's protocol, trained by the engine, then scored by the
//! best checkpoint (`evaluation::run`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use strata_data::window::Batch;
use strata_models::Model;

use crate::config::{Loss, RunConfig, TrainConfig};
use crate::device::{device_name, training_device};
use crate::engine::checkpoint::{TrainState, load_trained, save_module};
use crate::engine::record::{TrainingRecord, created_unix, git_revision};
use crate::engine::{Group, Job, OptimizerSpec, Plan, Run, Step, StepLoss, Store, fit, parallel};
use crate::evaluation::point::evaluate;
use crate::evaluation::run::{Results, evaluate_splits, model_record, protocol_line, write_results, write_schema};
use crate::evaluation::spatial::evaluate_spatial;
use crate::tasks::data::{Task, build_model};

/// How `train` treats an existing run folder.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainOptions {
    /// Discard any checkpoint in the run folder and start over.
    pub fresh: bool,
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
    let mut run = Run::open(run_dir, opts.fresh, cfg, &cfg.to_toml(), RunConfig::from_toml_str)?;
    let fitted = fit(&mut Forecasting::new(cfg, &task), Store::Folder(&mut run), &training_device(), cfg.train.epochs)?;
    if run.state.epochs_done == 0 && parallel::world().is_root() && !run.paths.best.exists() {
        // `train.epochs = 0`: a run folder holding the seeded initial model (for `set_weights`,
        // a federated client, or a baseline score), scored as any run.
        save_module(&fitted.model, &run.paths.best)?;
        save_module(&fitted.model, &run.paths.last)?;
    }
    run.finish()?;

    let t = &cfg.train;
    let eval_device = training_device().without_autodiff();
    let best = load_trained(build_model(cfg, &task, &eval_device)?, &run.paths.dir, &run.paths.best)?;
    let scores = evaluate_splits(&best, &task, t, cfg.eval.inverse, &eval_device);
    let results = Results {
        strata_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: git_revision(),
        created_unix: created_unix(),
        device: device_name(&eval_device),
        protocol: protocol_line(&task),
        config: cfg.clone(),
        data: task.record(),
        model: model_record(cfg.model.name(), best.num_params(), cfg.model.capabilities()),
        seed: t.seed,
        training: TrainingRecord::new(&run.state, run.resumed_at),
        val: scores.val,
        test: scores.test,
        test_original_scale: scores.test_original,
        test_drop_last: scores.test_drop_last,
        spatial: scores.spatial,
        probabilistic: scores.probabilistic,
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    if parallel::world().is_root() {
        write_results(&run.paths, &results)?;
        write_schema(cfg, &task, run_dir)?;
    }
    Ok(results)
}

/// Train a finished (or stopped) run folder for `epochs` more epochs, from its last
/// checkpoint and optimiser state, then evaluate the best checkpoint as `train` does. Early
/// stopping starts counting again; the config's `train.epochs` grows by `epochs`.
/// `proximal_mu` (FedProx) replaces `train.proximal_mu` from here on.
pub fn continue_training(run_dir: &Path, epochs: usize, proximal_mu: Option<f64>) -> Result<Results> {
    let paths = crate::engine::RunPaths::new(run_dir);
    if !paths.state.exists() {
        bail!("{} is not a trained run folder (no state.json): train it first", run_dir.display());
    }
    let mut cfg = RunConfig::load(&paths.config, &[])?;
    let mut state = TrainState::load(&paths.state)?;
    cfg.train.epochs = state.epochs_done + epochs;
    if let Some(mu) = proximal_mu {
        cfg.train.proximal_mu = mu;
        cfg.validate()?;
    }
    (state.finished, state.stopped_early, state.bad_epochs) = (false, false, 0);
    if parallel::world().is_root() {
        crate::engine::checkpoint::write_atomic(&paths.config, cfg.to_toml().as_bytes())?;
        state.save(&paths.state)?;
    }
    parallel::world().barrier();
    train(&cfg, run_dir, TrainOptions { fresh: false })
}

/// Train (or resume) until `until` epochs are done, training stops early or it finished before;
/// returns the training state. `strata tune` pauses trials here.
pub fn train_epochs(cfg: &RunConfig, run_dir: &Path, fresh: bool, until: usize) -> Result<TrainState> {
    let task = Task::load(&cfg.data)?;
    let mut run = Run::open(run_dir, fresh, cfg, &cfg.to_toml(), RunConfig::from_toml_str)?;
    fit(&mut Forecasting::new(cfg, &task), Store::Folder(&mut run), &training_device(), until)?;
    Ok(run.state)
}

/// A forecasting model on its data: MSE/MAE (masked on the original scale for
/// spatio-temporal data) or, for a distribution head, beta-NLL.
pub struct Forecasting<'a> {
    cfg: &'a RunConfig,
    task: &'a Task,
    batch: Batch,
}

impl<'a> Forecasting<'a> {
    pub fn new(cfg: &'a RunConfig, task: &'a Task) -> Self {
        Forecasting { cfg, task, batch: Batch::default() }
    }
}

impl Job for Forecasting<'_> {
    type Model = Model;

    fn seed(&self) -> u64 {
        self.cfg.train.seed
    }

    fn proximal_mu(&self) -> f64 {
        self.cfg.train.proximal_mu
    }

    fn detect_anomaly(&self) -> bool {
        self.cfg.train.detect_anomaly
    }

    fn diagnose_inputs(&self, step: &Step) -> Option<String> {
        self.task.nonfinite_input(step.batch)
    }

    fn plan(&self) -> Plan {
        let t = &self.cfg.train;
        Plan::epochs(t.epochs, self.task.splits()[0].len(), t.batch_size, t.max_steps_per_epoch, t.patience, t.seed)
    }

    fn build(&mut self, device: &Device) -> Result<Model> {
        let (cfg, task) = (self.cfg, self.task);
        let model = build_model(cfg, task, device)?;
        if cfg.model.capabilities().probabilistic && (matches!(task, Task::Spatial(_)) || cfg.data.features == strata_data::Features::MS) {
            bail!("{} with a distribution head trains on long-sequence data with features M or S", cfg.model.name());
        }
        Ok(model)
    }

    fn groups(&self) -> Vec<Group> {
        vec![Group::new(&OptimizerSpec::of_train(&self.cfg.train), self.cfg.train.rate(), "optimizer.bpk")]
    }

    fn describe(&self, model: &Model, device: &Device) -> String {
        let (cfg, task) = (self.cfg, self.task);
        let shape = task.shape();
        let trainable = strata_models::ModelConfig::trainable_params(model);
        let spatial = matches!(task, Task::Spatial(_));
        let mut line = format!(
            "{} on {} ({} {}->{}, {} {}): {} parameters ({trainable} trainable, {:.1}%), {} training windows, {}",
            cfg.model.name(),
            task.dataset(),
            if spatial { "ST" } else { cfg.data.features.name() },
            cfg.data.seq_len,
            cfg.data.pred_len,
            shape.channels,
            if spatial { "nodes" } else { "channels" },
            model.num_params(),
            100.0 * trainable as f64 / model.num_params().max(1) as f64,
            task.splits()[0].len(),
            device_name(device)
        );
        match task {
            Task::Lsf(data) if data.impute.total > 0 => line += &format!("\nimputed {} missing cells ({:?}): {:?}", data.impute.total, cfg.data.impute, data.impute.filled),
            Task::Spatial(d) if d.missing > 0 => line += &format!("\n{} missing cells read as 0 (the null value, masked in loss and metrics)", d.missing),
            _ => {}
        }
        line
    }

    fn begin_round(&mut self, round: usize, device: &Device) {
        let seed = self.cfg.train.seed.wrapping_add(1 + round as u64);
        device.seed(seed);
        strata_models::layers::dropout::seed(seed);
    }

    fn loss(&mut self, model: &Model, step: &Step, device: &Device) -> Result<StepLoss> {
        let (t, task) = (&self.cfg.train, self.task);
        task.splits()[0].fill(step.batch, &mut self.batch);
        let x = task.input(&mut self.batch, device);
        let y = task.target(&mut self.batch, device);
        let marks = task.marks(&mut self.batch, device);
        let graphs = task.graphs(task.splits()[0], &self.batch, device);
        let covariates = task.covariates(&mut self.batch, device);
        // A masked loss is a mean over the kept points: under data parallelism a rank's loss
        // counts with the number it kept.
        let weight = match task {
            Task::Spatial(_) if parallel::world().size() > 1 => Some(task.kept_points(&y)),
            _ => None,
        };
        let loss = if self.cfg.model.capabilities().probabilistic {
            // Negative log-likelihood (beta-NLL) of every (window, step, channel) target.
            let n = y.dims().iter().product::<usize>();
            model.distribution(x, marks).expect("a probabilistic model has a distribution").beta_nll(y.reshape([n]), t.nll_beta)
        } else {
            task.loss(t.loss, model.forward_inputs(x, marks, graphs, covariates), y)
        };
        Ok(StepLoss { weight, ..StepLoss::of(loss) })
    }

    fn validate(&mut self, model: &Model, _round: usize, device: &Device) -> Option<f64> {
        Some(validation_loss(model, self.task, &self.cfg.train, device))
    }

    fn observe(&self, model: &Model, grads: &[burn::optim::GradientsParams]) {
        model.observe_gradients(&grads[0], false);
    }

    fn aux_state(&self, model: &Model) -> Option<String> {
        model.extra_state()
    }

    fn restore_aux_state(&self, model: &Model, json: &str) -> Result<()> {
        model.restore_extra_state(json).map_err(anyhow::Error::msg)
    }
}

/// The validation loss early stopping watches: the training loss's metric on the validation
/// windows (scaled for LSF; masked on the original scale for spatio-temporal data).
fn validation_loss(model: &Model, task: &Task, t: &TrainConfig, device: &Device) -> f64 {
    match task {
        Task::Lsf(data) if model.distribution_head() => crate::evaluation::probabilistic::validation_nll(model, &data.val, t.eval_batch_size, device),
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

