//! Online forecasting (`strata online`): a model trained on the first part of a series walks the
//! rest in time order. At every step it forecasts the next window, the truth is revealed, the
//! error is added to the stream's cumulative MSE/MAE, and the model is updated by its strategy
//! (none, OGD, experience replay, DER++, periodic re-training), as FSNet's protocol does (Pham
//! et al., ICLR 2023: batch size 1, one update per step). A drift detector on the errors
//! (Page-Hinkley, ADWIN) can trigger re-training. The updates are steps of the training engine,
//! so an online run checkpoints every `checkpoint_every` steps and resumes (docs/online.md).

pub mod drift;
mod job;
pub mod live;
mod refit;
pub mod replay;
pub mod settings;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::device::{device_name, training_device};
use crate::engine::checkpoint::{TrainState, write_atomic};
use crate::engine::record::{TrainingRecord, created_unix, git_revision};
use crate::engine::{Run, RunPaths, Store, fit};
use crate::evaluation::run::protocol_line;
use crate::tasks::data::{DataRecord, Task};
use crate::tasks::forecasting::{TrainOptions, train};
pub use drift::{Detector, DriftConfig};
pub use settings::{OnDrift, OnlineConfig, Reveal, Strategy};
use job::OnlineJob;

/// Everything `online.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnlineResults {
    pub strata_version: String,
    pub git_revision: String,
    pub created_unix: u64,
    pub device: String,
    pub protocol: String,
    pub config: RunConfig,
    pub data: DataRecord,
    pub seed: u64,
    /// The warm-up run folder and its test MSE (the frozen model on the test split's windows).
    pub warmup: PathBuf,
    pub warmup_test_mse: Option<f64>,
    /// The learning rate of the online updates.
    pub lr: f64,
    /// Stream steps walked (test windows in time order).
    pub steps: usize,
    /// Cumulative MSE / MAE over every step (scaled data; FSNet's metric).
    pub mse: f64,
    pub mae: f64,
    /// Steps (0-based) at which the drift detector fired.
    pub drift_steps: Vec<usize>,
    /// Steps at which the model was re-trained.
    pub retrain_steps: Vec<usize>,
    pub seconds_per_step: f64,
    pub training: TrainingRecord,
    pub wall_seconds: f64,
}

/// The rate a trained run's optimiser would use next: FSNet goes on with the warm-up's optimiser
/// and its decayed rate (after an early stop, the rate of the last epoch trained).
pub fn continuation_rate(cfg: &RunConfig, state: &TrainState) -> f64 {
    let last = if state.stopped_early { state.epochs_done.saturating_sub(1) } else { state.epochs_done };
    cfg.train.rate().at(last, state.global_step, state.global_step.max(1))
}

/// The run config of the warm-up: the online one without its `[online]` table.
fn warmup_config(cfg: &RunConfig) -> RunConfig {
    RunConfig { online: None, ..cfg.clone() }
}

/// Walk the stream of `cfg` (its `[online]` table) in `run_dir`, resuming where it stopped.
pub fn run_online(cfg: &RunConfig, run_dir: &Path, fresh: bool) -> Result<OnlineResults> {
    let wall = Instant::now();
    let online = cfg.online.clone().unwrap_or_default();
    online.validate()?;
    let task = Task::load(&cfg.data)?;
    if matches!(task, Task::Spatial(_)) {
        bail!("strata online walks long-sequence data; `{}` is spatio-temporal", cfg.data.dataset);
    }
    // The warm-up: a run folder given, or one trained here (resumed if interrupted).
    let warm_dir = match &online.from {
        Some(dir) => dir.clone(),
        None => {
            let dir = run_dir.join("warmup");
            train(&warmup_config(cfg), &dir, TrainOptions { fresh })?;
            dir
        }
    };
    let warm = RunPaths::new(&warm_dir);
    let warm_cfg = RunConfig::load(&warm.config, &[]).with_context(|| format!("{}: not a trained run folder (online.from)", warm_dir.display()))?;
    if warm_cfg.model != cfg.model || warm_cfg.data.seq_len != cfg.data.seq_len || warm_cfg.data.pred_len != cfg.data.pred_len || warm_cfg.data.features != cfg.data.features {
        bail!("{}: its model or data (seq_len, pred_len, features) differ from this config's: online.from must be a run of the same model on the same windows", warm_dir.display());
    }
    let warm_state = TrainState::load(&warm.state)?;
    let lr = online.lr.unwrap_or_else(|| continuation_rate(&warm_cfg, &warm_state));
    let warmup_test_mse = std::fs::read_to_string(&warm.results_json)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["test"]["mse"].as_f64());

    let out = run_dir.join("online");
    let mut run = Run::open(&out, fresh, cfg, &cfg.to_toml(), RunConfig::from_toml_str)?;
    let mut job = OnlineJob::new(cfg, &online, &task, &warm, lr)?;
    let eprint_line = format!(
        "online {} ({} reveal) over {} stream windows of {}, lr {lr:.3e}{}",
        online.strategy.name(),
        format!("{:?}", online.reveal).to_lowercase(),
        job.steps(),
        task.dataset(),
        online.drift.as_ref().map(|d| format!(", drift detector {}", d.name())).unwrap_or_default()
    );
    eprintln!("{eprint_line}");
    let device = training_device();
    let fitted = fit(&mut job, Store::Folder(&mut run), &device, usize::MAX)?;
    run.finish()?;
    let (mse, mae) = job.totals();
    let results = OnlineResults {
        strata_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: git_revision(),
        created_unix: created_unix(),
        device: device_name(&device),
        protocol: format!("{}; online: test windows in time order, batch 1, {:?} reveal", protocol_line(&task), online.reveal),
        config: cfg.clone(),
        data: task.record(),
        seed: cfg.train.seed,
        warmup: warm_dir,
        warmup_test_mse,
        lr,
        steps: job.steps(),
        mse,
        mae,
        drift_steps: job.drift_steps().to_vec(),
        retrain_steps: job.retrain_steps().to_vec(),
        seconds_per_step: if run.resumed_at.is_none() { fitted.seconds_per_step } else { run.state.train_seconds / job.steps().max(1) as f64 },
        training: TrainingRecord::new(&run.state, run.resumed_at),
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    write_atomic(&out.join("online.json"), serde_json::to_string_pretty(&results)?.as_bytes())?;
    write_atomic(&out.join("online_curve.csv"), job.curve_csv().as_bytes())?;
    Ok(results)
}
