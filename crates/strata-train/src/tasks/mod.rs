//! Training tasks: each supplies the engine ([`crate::engine::Job`]) with what differs.
//!
//! * [`data`]: the data of forecasting runs (long-sequence and spatio-temporal) and its record.
//! * [`forecasting`]: `strata train` for forecasting models.
//! * [`vae`]: the series VAE (`strata train` with `[model] name = "vae"`, `strata sample`).
//! * [`pretrain`]: MOIRAI pretraining (`strata pretrain`).

pub mod data;
pub mod forecasting;
pub mod pretrain;
pub mod pretrain_config;
pub mod vae;
