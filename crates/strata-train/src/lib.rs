//! strata-train: run configuration, the training loop (schedules, clipping, early stopping,
//! atomic checkpoints, resume), evaluation metrics and result records.

pub mod checkpoint;
pub mod config;
pub mod device;
pub mod evaluate;
pub mod evaluate_prob;
pub mod evaluate_st;
pub mod forecast;
pub mod generative;
pub mod metrics;
pub mod pretrain;
pub mod progress;
pub mod prob_metrics;
pub mod record;
pub mod schedule;
pub mod task;
pub mod trainer;
pub mod tune;
pub mod zero_shot;

pub use config::{RunConfig, TrainConfig};
pub use metrics::Metrics;
