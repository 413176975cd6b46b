//! Distillation settings: the method, the compression ratios, and each method's knobs.

use serde::{Deserialize, Serialize};
use strata_models::MTGNNConfig;

/// Distillation settings (defaults: the paper's main setting, 10% x 10%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    /// One of [`METHODS`].
    pub method: String,
    /// Share of training windows kept (srr).
    pub temporal: f64,
    /// Share of locations kept (nrr).
    pub spatial: f64,
    /// Outer iterations (a fresh model each).
    pub outer: usize,
    /// Distillation steps per outer iteration.
    pub inner: usize,
    /// Random cluster subsets per step (K).
    pub subsets: usize,
    /// Real windows per step.
    pub batch: usize,
    pub lr_data: f64,
    pub lr_model: f64,
    /// Model training epochs on the synthetic set after each distillation step.
    pub model_epochs: usize,
    /// Validate the synthetic set every this many outer iterations (keep the best).
    pub eval_every: usize,
    /// Epochs of the evaluation model (validation of S, and `evaluate`).
    pub eval_epochs: usize,
    pub kmeans_iters: usize,
    /// Locations per forward pass when scoring on the real data (0: all at once); for very
    /// large graphs, see [`forecast`].
    pub eval_chunk: usize,
    pub seed: u64,
    pub model: MTGNNConfig,
    /// Trajectory matching (MTT, and CondTSF's trajectory part).
    pub mtt: MttConfig,
    /// CondTSF's value term, on top of `mtt`.
    pub condtsf: CondTsfConfig,
}

/// Trajectory matching settings (defaults: MTT's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MttConfig {
    /// Expert trajectories trained on the real data (paper: 20).
    pub experts: usize,
    /// Epochs per expert, parameters recorded after each (paper: 15).
    pub expert_epochs: usize,
    /// Batches per expert epoch (0: every training window once).
    pub expert_batches: usize,
    /// The experts' SGD learning rate.
    pub expert_lr: f64,
    /// Student steps on the synthetic set per iteration (N).
    pub syn_steps: usize,
    /// Expert epochs the student must cover (M).
    pub expert_span: usize,
    /// Latest expert epoch a student starts from (T+).
    pub max_start_epoch: usize,
    /// Initial (learned) student learning rate, and the learning rate of that rate.
    pub syn_lr: f64,
    pub lr_lr: f64,
    /// Synthetic windows per student step (0: all).
    pub syn_batch: usize,
    /// Expert buffer file (`.npy`, `[experts, expert_epochs + 1, parameters]`): read when it
    /// exists, written after training the experts otherwise.
    pub buffer: Option<std::path::PathBuf>,
}

/// CondTSF's value term (method `condtsf`, on top of MTT): every `every` iterations
/// `y <- (1 - beta) y + beta f(x)` with `f` a DLinear expert trained `epochs` on the real data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CondTsfConfig {
    pub every: usize,
    pub beta: f64,
    pub epochs: usize,
}

impl Default for CondTsfConfig {
    fn default() -> Self {
        CondTsfConfig { every: 3, beta: 0.01, epochs: 10 }
    }
}

impl Default for MttConfig {
    fn default() -> Self {
        MttConfig {
            experts: 20,
            expert_epochs: 15,
            expert_batches: 0,
            expert_lr: 1e-2,
            syn_steps: 20,
            expert_span: 2,
            max_start_epoch: 10,
            syn_lr: 1e-2,
            lr_lr: 1e-5,
            syn_batch: 0,
            buffer: None,
        }
    }
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            method: "stemdist".into(),
            temporal: 0.1,
            spatial: 0.1,
            outer: 100,
            inner: 20,
            subsets: 4,
            batch: 64,
            lr_data: 1e-2,
            lr_model: 1e-3,
            model_epochs: 10,
            eval_every: 5,
            eval_epochs: 100,
            kmeans_iters: 50,
            eval_chunk: 0,
            seed: 2021,
            model: MTGNNConfig { location_encoder: true, ..Default::default() },
            mtt: MttConfig::default(),
            condtsf: CondTsfConfig::default(),
        }
    }
}

/// Every method `strata distill --method` takes.
pub const METHODS: [&str; 8] = ["stemdist", "random", "kcenter", "herding", "dc", "dm", "mtt", "condtsf"];

impl DistillConfig {
    /// Windows kept by a method that compresses time only (k-center, herding, DC, DM, MTT,
    /// CondTSF keep every location): the total ratio `temporal x spatial` of the windows.
    pub fn time_only_windows(&self, real_windows: usize) -> usize {
        ((self.temporal * self.spatial * real_windows as f64).round() as usize).max(1)
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if !METHODS.contains(&self.method.as_str()) {
            anyhow::bail!("distill.method = \"{}\": unknown; one of {}", self.method, METHODS.join(", "));
        }
        for (key, v) in [("distill.temporal", self.temporal), ("distill.spatial", self.spatial)] {
            if !(v > 0.0 && v <= 1.0) {
                anyhow::bail!("{key} = {v}: a share in (0, 1]");
            }
        }
        if self.mtt.expert_span == 0 || self.mtt.experts == 0 || self.mtt.expert_epochs < self.mtt.expert_span {
            anyhow::bail!("distill.mtt: need experts >= 1 and expert_epochs >= expert_span >= 1");
        }
        Ok(())
    }
}

