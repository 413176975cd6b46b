//! Re-training during the stream (periodic, or when the drift detector fires): the current model
//! trained for a few epochs on the latest windows whose truth is known, through the engine (in
//! memory), with the `[train]` batch size, optimiser and base rate, a fresh optimiser state and
//! a seed of its own.

use std::ops::Range;

use anyhow::Result;
use burn::tensor::Device;
use strata_data::window::Batch;
use strata_models::Model;

use crate::config::RunConfig;
use crate::engine::checkpoint::TrainState;
use crate::engine::schedule::Rate;
use crate::engine::{Group, Job, OptimizerSpec, Plan, Step, StepLoss, Store, fit};
use crate::tasks::data::Task;

struct Refit<'a> {
    model: Option<Model>,
    cfg: &'a RunConfig,
    task: &'a Task,
    windows: Range<usize>,
    epochs: usize,
    batch: Batch,
}

/// `model` trained `epochs` epochs on test windows `windows`.
pub fn refit(model: Model, cfg: &RunConfig, task: &Task, windows: Range<usize>, epochs: usize, device: &Device) -> Result<Model> {
    let mut job = Refit { model: Some(model), cfg, task, windows, epochs, batch: Batch::default() };
    let mut state = TrainState::default();
    Ok(fit(&mut job, Store::Memory(&mut state), device, epochs)?.model)
}

impl Job for Refit<'_> {
    type Model = Model;

    fn seed(&self) -> u64 {
        self.cfg.train.seed.wrapping_add(self.windows.end as u64)
    }

    fn plan(&self) -> Plan {
        let t = &self.cfg.train;
        Plan { activity: "re-training", ..Plan::epochs(self.epochs, self.windows.len(), t.batch_size, None, usize::MAX, self.seed()) }
    }

    fn build(&mut self, _device: &Device) -> Result<Model> {
        Ok(self.model.take().expect("built once"))
    }

    fn groups(&self) -> Vec<Group> {
        vec![Group::new(&OptimizerSpec::of_train(&self.cfg.train), Rate::Constant(self.cfg.train.lr), "refit.bpk")]
    }

    fn describe(&self, _model: &Model, _device: &Device) -> String {
        String::new()
    }

    fn loss(&mut self, model: &Model, step: &Step, device: &Device) -> Result<StepLoss> {
        let idx: Vec<usize> = step.batch.iter().map(|&i| self.windows.start + i).collect();
        let task = self.task;
        task.splits()[2].fill(&idx, &mut self.batch);
        let x = task.input(&mut self.batch, device);
        let y = task.target(&mut self.batch, device);
        let marks = task.marks(&mut self.batch, device);
        let covariates = task.covariates(&mut self.batch, device);
        Ok(StepLoss::of(task.loss(self.cfg.train.loss, model.forward_inputs(x, marks, None, covariates), y)))
    }

    fn validate(&mut self, _model: &Model, _round: usize, _device: &Device) -> Option<f64> {
        None
    }

    fn report(&self, _plan: &Plan, _log: &crate::engine::checkpoint::EpochLog, _improved: bool) -> Option<String> {
        None
    }
}
