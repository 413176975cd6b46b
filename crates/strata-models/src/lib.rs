//! strata-models: forecasting models on burn tensors.
//!
//! burn 0.22 erases the backend behind a runtime [`burn::tensor::Device`] (Flex on CPU, CUDA
//! behind a feature), so a model is written once and runs wherever its device says. Every model
//! maps an input window `[batch, seq_len, channels]` to a forecast `[batch, pred_len, channels]`
//! ([`Forecaster`]), has a documented config struct with the published defaults, and is
//! reachable through [`ModelConfig`] / [`Model`] by name.

pub mod attention;
pub mod dlinear;
pub mod dropout;
pub mod gelu;
pub mod patchtst;
pub mod revin;
pub mod weights;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use dlinear::{DLinear, DLinearConfig};
pub use patchtst::{PatchTST, PatchTSTConfig};

/// The data shape a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub seq_len: usize,
    pub pred_len: usize,
    pub channels: usize,
}

/// What a model supports (as neuralforecast declares it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Uses cross-channel information (false: channel-independent, one model for every series).
    pub cross_channel: bool,
    /// Outputs a distribution rather than a point forecast.
    pub probabilistic: bool,
    /// Accepts exogenous / calendar inputs.
    pub exogenous: bool,
    /// Can return attention weights.
    pub attention: bool,
}

/// A point forecaster: `[batch, seq_len, channels] -> [batch, pred_len, channels]`.
pub trait Forecaster {
    fn forecast(&self, x: Tensor<3>) -> Tensor<3>;
}

/// Any model's configuration, chosen by `name` in the `[model]` table of a run config.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum ModelConfig {
    #[serde(alias = "DLinear")]
    Dlinear(DLinearConfig),
    #[serde(alias = "PatchTST")]
    Patchtst(PatchTSTConfig),
}

impl ModelConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Dlinear(_) => "dlinear",
            ModelConfig::Patchtst(_) => "patchtst",
        }
    }
    /// One default configuration of every model (the conformance test runs them all).
    pub fn all_defaults() -> Vec<ModelConfig> {
        vec![ModelConfig::Dlinear(DLinearConfig::default()), ModelConfig::Patchtst(PatchTSTConfig::default())]
    }

    pub fn capabilities(&self) -> Capabilities {
        match self {
            ModelConfig::Dlinear(_) => DLinearConfig::CAPABILITIES,
            ModelConfig::Patchtst(_) => PatchTSTConfig::CAPABILITIES,
        }
    }
    pub fn init(&self, shape: Shape, device: &Device) -> Model {
        match self {
            ModelConfig::Dlinear(c) => Model::DLinear(c.init(shape, device)),
            ModelConfig::Patchtst(c) => Model::PatchTST(c.init(shape, device)),
        }
    }
}

/// Any model, as one module type the trainer and checkpoints handle.
#[derive(Module, Debug)]
pub enum Model {
    DLinear(DLinear),
    PatchTST(PatchTST),
}

impl Forecaster for Model {
    fn forecast(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Model::DLinear(m) => m.forecast(x),
            Model::PatchTST(m) => m.forecast(x),
        }
    }
}
