//! The `[online]` table of a run config: the update strategy, when the truth is revealed, the
//! replay memory, re-training and the drift detector (docs/online.md).

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::drift::DriftConfig;

/// How the model changes as the stream goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Frozen: the warm-up model forecasts the whole stream.
    None,
    /// Online gradient descent: one optimiser step on each revealed window.
    Ogd,
    /// Experience replay: OGD plus the loss on `replay_batch` windows drawn from a reservoir of
    /// past windows, weighted by `replay_weight`.
    Er,
    /// DER++ (Buzzega et al., NeurIPS 2020): ER plus the squared distance between the model's
    /// forecast of each drawn window and the forecast stored with it, weighted by `logit_weight`.
    Derpp,
    /// Frozen between re-trainings every `retrain_every` steps (the baseline users try first).
    Retrain,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Ogd => "ogd",
            Strategy::Er => "er",
            Strategy::Derpp => "derpp",
            Strategy::Retrain => "retrain",
        }
    }
}

/// When the truth of a forecast becomes available for the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reveal {
    /// Right after the forecast, the whole horizon (FSNet's and OneNet's code: the update at
    /// step t uses the truth of steps t+1..t+H).
    Immediate,
    /// Once the horizon has passed: at step t the model learns from the window that ended at t
    /// (what a deployed forecaster sees; for horizon 1 the same as `immediate`).
    Delayed,
}

/// What a fired drift detector does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDrift {
    /// Record the step only.
    Report,
    /// Re-train on the latest windows (as `retrain_every` does).
    Retrain,
    /// Take OGD steps for the next `drift_updates` steps (a frozen model that adapts only when
    /// the world changes).
    Update,
}

/// The `[online]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnlineConfig {
    pub strategy: Strategy,
    pub reveal: Reveal,
    /// A trained run folder whose best model starts the stream (its data and model must match
    /// this config's); default: train one in `<run>/warmup` with `[train]` on the training split.
    pub from: Option<PathBuf>,
    /// Learning rate of the online updates; default: the warm-up's last rate (FSNet keeps the
    /// warm-up's optimiser, its state and its decayed rate).
    pub lr: Option<f64>,
    /// Windows the replay memory holds (FSNet: 500).
    pub buffer: usize,
    /// Memories replayed with each update (FSNet: 8).
    pub replay_batch: usize,
    /// Weight of the replayed windows' loss against their truth (ER and DER++; FSNet: 0.2).
    pub replay_weight: f64,
    /// DER++: weight of the distance to the stored forecasts (FSNet: 0.2).
    pub logit_weight: f64,
    /// Re-train every this many steps (0: never; `strategy = "retrain"` needs it).
    pub retrain_every: usize,
    /// Re-training data: the latest windows whose truth is known, at most this many.
    pub retrain_windows: usize,
    /// Epochs of each re-training (from the current weights; `[train]` batch size and rate).
    pub retrain_epochs: usize,
    /// A drift detector on each step's forecast MSE (`[online.drift]`, `detector = "page-hinkley"`
    /// or `"adwin"`).
    pub drift: Option<DriftConfig>,
    pub on_drift: OnDrift,
    /// `on_drift = "retrain"`: steps to wait after the detector fires before re-training, so
    /// that the latest windows are mostly of the new regime (0: at once).
    pub drift_wait: usize,
    /// `on_drift = "update"`: steps of OGD after each fire.
    pub drift_updates: usize,
    /// Stream steps between checkpoints.
    pub checkpoint_every: usize,
    /// Stop after this many stream steps (quick checks; not for results).
    pub max_steps: Option<usize>,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        OnlineConfig {
            strategy: Strategy::Ogd,
            reveal: Reveal::Immediate,
            from: None,
            lr: None,
            buffer: 500,
            replay_batch: 8,
            replay_weight: 0.2,
            logit_weight: 0.2,
            retrain_every: 0,
            retrain_windows: 2880,
            retrain_epochs: 1,
            drift: None,
            on_drift: OnDrift::Report,
            drift_wait: 0,
            drift_updates: 500,
            checkpoint_every: 1000,
            max_steps: None,
        }
    }
}

impl OnlineConfig {
    pub fn validate(&self) -> Result<()> {
        if self.checkpoint_every == 0 {
            bail!("key `online.checkpoint_every`: must be positive");
        }
        if matches!(self.strategy, Strategy::Er | Strategy::Derpp) && (self.buffer == 0 || self.replay_batch == 0) {
            bail!("key `online.buffer`: {:?} replays past windows: online.buffer and online.replay_batch must be positive", self.strategy);
        }
        if self.strategy == Strategy::Retrain && self.retrain_every == 0 {
            bail!("key `online.retrain_every`: strategy \"retrain\" re-trains every this many steps: set it (e.g. 1000)");
        }
        if (self.retrain_every > 0 || self.on_drift == OnDrift::Retrain) && (self.retrain_windows == 0 || self.retrain_epochs == 0) {
            bail!("key `online.retrain_windows`: re-training needs windows and epochs (online.retrain_windows, online.retrain_epochs)");
        }
        if self.on_drift != OnDrift::Report && self.drift.is_none() {
            bail!("key `online.on_drift`: acting on a drift needs a detector: set online.drift.detector = \"page-hinkley\" or \"adwin\"");
        }
        if let Some(lr) = self.lr
            && !(lr >= 0.0 && lr.is_finite())
        {
            bail!("key `online.lr`: must be a finite rate >= 0, got {lr}");
        }
        if let Some(d) = &self.drift {
            d.check().map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// Whether the model takes gradient steps between re-trainings.
    pub fn updates(&self) -> bool {
        matches!(self.strategy, Strategy::Ogd | Strategy::Er | Strategy::Derpp)
    }
}
