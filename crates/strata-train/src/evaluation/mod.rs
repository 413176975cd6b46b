//! Scoring forecasts: point metrics ([`metrics`], [`point`]), probabilistic metrics
//! ([`prob_metrics`], [`probabilistic`]), the spatio-temporal protocol ([`spatial`]), and a
//! forecasting run's results ([`run`]).

pub mod fidelity;
pub mod metrics;
pub mod point;
pub mod prob_metrics;
pub mod probabilistic;
pub mod run;
pub mod spatial;
