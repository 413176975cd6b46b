//! Online updates of a served model (`strata serve`, `POST /v1/models/{name}/observe`): when the
//! observations a server holds complete a window (its `seq_len` inputs and the `pred_len` rows
//! after them), the model takes a gradient step on it through the training engine, with the
//! run's optimiser and its state (as `strata online`'s OGD with delayed reveal: a served model
//! only ever learns from a horizon that has passed). The weights after each batch of updates
//! are written to `online.bpk` beside the run's `best.bpk` (atomically, then `online_state.json`
//! names the version), and a restarted server serves them.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use strata_models::Model;

use super::settings::Strategy;
use crate::config::RunConfig;
use crate::device::training_device;
use crate::engine::checkpoint::{TrainState, load_optimizer, save_module, write_atomic};
use crate::engine::schedule::Rate;
use crate::engine::{Batches, Group, Job, OptimizerSpec, Plan, Step, StepLoss, Store, fit};
use crate::inference::forecast::{Predictor, Query};

/// The weights a served model has learned online.
pub const LIVE_CHECKPOINT: &str = "online.bpk";
/// Their version (updates taken), written after the weights.
pub const LIVE_STATE: &str = "online_state.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LiveState {
    /// Gradient steps taken since the run was trained.
    pub version: u64,
}

/// The checkpoint a server loads from `run_dir`: the online weights when a finished version of
/// them is there, else `best.bpk`; and its version.
pub fn serving_checkpoint(run_dir: &Path) -> (&'static str, u64) {
    let state = std::fs::read_to_string(run_dir.join(LIVE_STATE)).ok().and_then(|s| serde_json::from_str::<LiveState>(&s).ok());
    match state {
        Some(s) if run_dir.join(LIVE_CHECKPOINT).exists() => (LIVE_CHECKPOINT, s.version),
        _ => ("best.bpk", 0),
    }
}

/// One window to learn from: its query (the context) and the scaled truth of its output
/// columns over the horizon (`pred_len x outputs`).
pub struct Window {
    pub query: Query,
    pub truth: Vec<f32>,
}

/// A served model that learns as observations arrive.
pub struct Live {
    predictor: Predictor,
    model: Option<Model>,
    groups: std::cell::RefCell<Option<Vec<Group>>>,
    lr: f64,
    dir: PathBuf,
    pub version: u64,
}

impl Live {
    /// The updater of `run_dir` when its config's `[online]` table asks for updates (`strategy =
    /// "ogd"`); `None` when it does not.
    pub fn load(run_dir: &Path) -> Result<Option<Live>> {
        let cfg = RunConfig::load(&run_dir.join("config.toml"), &[])?;
        let Some(online) = cfg.online.clone() else { return Ok(None) };
        match online.strategy {
            Strategy::None => return Ok(None),
            Strategy::Ogd => {}
            other => bail!("{}: online.strategy = \"{}\": a served model updates by OGD (\"ogd\") or not at all (\"none\"); replay and re-training run in `strata online`", run_dir.display(), other.name()),
        }
        let device = training_device();
        let (checkpoint, version) = serving_checkpoint(run_dir);
        let predictor = Predictor::load_checkpoint(run_dir, checkpoint, &device)?;
        let state = TrainState::load(&run_dir.join("state.json")).unwrap_or_default();
        let lr = online.lr.unwrap_or_else(|| super::continuation_rate(&cfg, &state));
        let spec = OptimizerSpec::of_train(&cfg.train);
        let mut group = Group::new(&spec, Rate::Constant(lr), "optimizer.bpk");
        let saved = ["online_optimizer.bpk", "optimizer.bpk"].map(|f| run_dir.join(f)).into_iter().find(|p| p.exists());
        if let Some(path) = saved
            && let Ok(o) = load_optimizer(spec.build(), &path)
        {
            group.optim = o;
        }
        let model = predictor.model().clone();
        Ok(Some(Live { predictor, model: Some(model), groups: std::cell::RefCell::new(Some(vec![group])), lr, dir: run_dir.to_path_buf(), version }))
    }

    /// The learning rate of the updates.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The current weights, for inference.
    pub fn serving_model(&self) -> Model {
        self.model.as_ref().expect("held between updates").valid()
    }

    /// One gradient step per window, in order.
    pub fn update(&mut self, windows: &[Window]) -> Result<()> {
        if windows.is_empty() {
            return Ok(());
        }
        let device = training_device();
        let mut job = Updates { live: self, windows };
        let mut state = TrainState::default();
        let fitted = fit(&mut job, Store::Memory(&mut state), &device, 1)?;
        self.model = Some(fitted.model);
        *self.groups.borrow_mut() = Some(fitted.groups);
        self.version += windows.len() as u64;
        Ok(())
    }

    /// Write the weights, the optimiser state, then the version (each atomically; a crash
    /// between them leaves the previous version named, whose files are intact or replaced whole).
    pub fn save(&self) -> Result<()> {
        let model = self.model.as_ref().expect("held");
        save_module(model, &self.dir.join(LIVE_CHECKPOINT))?;
        if let Some(g) = self.groups.borrow().as_ref().and_then(|g| g.first()) {
            crate::engine::checkpoint::save_optimizer(&g.optim, &self.dir.join("online_optimizer.bpk"))?;
        }
        write_atomic(&self.dir.join(LIVE_STATE), serde_json::to_string(&LiveState { version: self.version })?.as_bytes())
    }
}

/// The engine task of one batch of updates: step `i` learns window `i`.
struct Updates<'a, 'w> {
    live: &'a mut Live,
    windows: &'w [Window],
}

impl Job for Updates<'_, '_> {
    type Model = Model;

    fn seed(&self) -> u64 {
        self.live.version
    }

    fn plan(&self) -> Plan {
        let n = self.windows.len();
        Plan { rounds: 1, steps_per_round: n, total_steps: n, patience: usize::MAX, batches: Batches::Drawn, unit: "update", activity: "online updating" }
    }

    fn build(&mut self, _device: &Device) -> Result<Model> {
        Ok(self.live.model.take().expect("held between updates"))
    }

    fn groups(&self) -> Vec<Group> {
        // The engine hands the groups back in `Fitted`; `update` puts them back.
        self.live.groups.borrow_mut().take().expect("held between updates")
    }

    fn describe(&self, _model: &Model, _device: &Device) -> String {
        String::new()
    }

    fn loss(&mut self, model: &Model, step: &Step, device: &Device) -> Result<StepLoss> {
        let w = &self.windows[step.index];
        let s = &self.live.predictor.schema;
        let out = s.output_range();
        let h = s.shape.pred_len;
        let pred = self.live.predictor.forward_with(model, std::slice::from_ref(&w.query)).narrow(2, out.start, out.len());
        let truth = Tensor::<3>::from_data(TensorData::new(w.truth.clone(), [1, h, out.len()]), device);
        Ok(StepLoss::of((pred - truth).powi_scalar(2).mean()))
    }

    fn validate(&mut self, _model: &Model, _round: usize, _device: &Device) -> Option<f64> {
        None
    }

    fn report(&self, _plan: &Plan, _log: &crate::engine::checkpoint::EpochLog, _improved: bool) -> Option<String> {
        None
    }
}
