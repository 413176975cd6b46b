//! strata-train: the training engine and everything around it.
//!
//! * [`engine`]: the one training loop (steps, seeded order, schedules, optimiser groups,
//!   clipping, the non-finite guard, progress, validation, early stopping, atomic checkpoints,
//!   resume) and the records every run writes.
//! * [`tasks`]: what is trained: forecasting ([`tasks::forecasting`], on the data of
//!   [`tasks::data`]), the series VAE ([`tasks::vae`]), MOIRAI pretraining ([`tasks::pretrain`]).
//!   Fine-tuning (strata-finetune) and distilled-set training (strata-distill) are tasks too.
//! * [`evaluation`]: metrics (point, probabilistic, spatio-temporal) and a run's results.
//! * [`inference`]: forecasting new data with a trained run; zero-shot foundation models.
//! * [`search`]: hyper-parameter search (`strata tune`).
//! * [`online`]: online forecasting on a stream (`strata online`): update strategies, replay,
//!   drift detectors.

pub mod config;
pub mod device;
pub mod engine;
pub mod evaluation;
pub mod inference;
pub mod online;
pub mod search;
pub mod tasks;

pub use config::{RunConfig, TrainConfig};
pub use evaluation::metrics::Metrics;
