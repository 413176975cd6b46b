//! What every model shares: the data shape it is built for, the capabilities it declares,
//! calendar marks, and the two traits a model implements ([`Architecture`] on its config,
//! [`Forecast`] on its module) so that the registry (`crate::registry`) can dispatch to it.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::layers::distribution::Distribution;

/// The data shape a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub seq_len: usize,
    pub pred_len: usize,
    /// Channels (long-sequence data) or nodes (spatio-temporal data).
    pub channels: usize,
    /// Input features per node: the value, then time of day and day of week where present.
    pub features: usize,
    /// Steps per day (size of the time-of-day embedding); 0 when there is no time-of-day input.
    pub steps_per_day: usize,
    pub tod: bool,
    pub dow: bool,
    /// The nodes form a `[height, width]` grid.
    pub grid: Option<[usize; 2]>,
    /// Calendar features per step passed beside the input (0: none).
    #[serde(default)]
    pub marks: usize,
}

impl Shape {
    /// A long-sequence shape: `channels` series, one feature each.
    pub const fn lsf(seq_len: usize, pred_len: usize, channels: usize) -> Self {
        Shape { seq_len, pred_len, channels, features: 1, steps_per_day: 0, tod: false, dow: false, grid: None, marks: 0 }
    }
    pub fn time_of_day(&self) -> bool {
        self.tod
    }
    pub fn day_of_week(&self) -> bool {
        self.dow
    }
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

/// Calendar features of a batch: input rows `[batch, seq_len, m]`, target rows `[batch, pred_len, m]`.
#[derive(Debug, Clone)]
pub struct Marks {
    pub x: Tensor<3>,
    pub y: Tensor<3>,
}

/// A model's module as the trainer, the evaluation and the server use it.
pub trait Forecast: Module {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`, with the
    /// calendar features of the input and target rows for models that use them.
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3>;
    /// `[batch, seq_len, channels] -> [batch, pred_len, channels]`.
    fn predict_channels(&self, x: Tensor<3>) -> Tensor<3> {
        self.predict(x.unsqueeze_dim(3), None)
    }
    /// [`Forecast::predict`] with a graph per sample (`[batch, nodes, nodes]`: each window's
    /// adjacency, from a dynamic graph) in place of the static one. Only models whose
    /// [`Architecture::dynamic_graph`] is true override it; the training task refuses the others.
    fn predict_graph(&self, x: Tensor<4>, marks: Option<Marks>, _graph: Tensor<3>) -> Tensor<3> {
        self.predict(x, marks)
    }
    /// The forecast distribution of every `(batch, step, node)` point (distribution heads).
    fn distribution(&self, _x: Tensor<4>, _marks: Option<Marks>) -> Option<Distribution> {
        None
    }
    /// Attention weights of every attention layer, named, each `[batch (x channels for
    /// channel-independent models), heads, queries, keys]`.
    fn attention(&self, _x: Tensor<4>, _marks: Option<Marks>) -> Option<Vec<(String, Tensor<4>)>> {
        None
    }
    /// The adjacency a graph model learned (`[nodes, nodes]`).
    fn learned_adjacency(&self) -> Option<Tensor<2>> {
        None
    }
    /// Parameters that train (all of them, except for frozen parts of fine-tuned backbones).
    fn trainable(&self) -> usize {
        self.num_params()
    }
}

/// A model's configuration: what it declares, whether it fits the data, how it is built.
pub trait Architecture: Sized {
    type Module: Forecast;
    fn capabilities(&self) -> Capabilities;
    /// Whether this model can be built for `shape` (with or without a graph); the error says why not.
    fn check(&self, _shape: &Shape, _has_graph: bool) -> Result<(), String> {
        Ok(())
    }
    /// A sensor graph (or, for the convolutional seed models, a grid) is required.
    fn needs_graph(&self) -> bool {
        false
    }
    /// Takes a graph per window ([`Forecast::predict_graph`]) when the data has one per step.
    fn dynamic_graph(&self) -> bool {
        false
    }
    /// Build the module; `adj` is the row-major `[nodes, nodes]` adjacency where the data has one.
    fn build(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<Self::Module, String>;
    /// The configurations the shared conformance test runs (none for models that need weights).
    fn examples() -> Vec<Self>;
}

/// Attention maps of consecutive layers, named `layer1`, `layer2`, ...
pub fn layer_names(maps: Vec<Tensor<4>>) -> Vec<(String, Tensor<4>)> {
    maps.into_iter().enumerate().map(|(i, w)| (format!("layer{}", i + 1), w)).collect()
}

/// Feature 0 of every node: `[b, l, n, f] -> [b, l, n]`.
pub fn values(x: Tensor<4>) -> Tensor<3> {
    let [b, l, n, f] = x.dims();
    if f == 1 { x.reshape([b, l, n]) } else { x.narrow(3, 0, 1).reshape([b, l, n]) }
}

/// Parameters of `m` that receive gradients (frozen ones, `no_grad`, are left out).
pub fn trainable_params<M: burn::module::Module>(m: &M) -> usize {
    struct Count(usize);
    impl burn::module::ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::tensor::Tensor<D>>) {
            if p.is_require_grad() {
                self.0 += p.shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    m.visit(&mut c);
    c.0
}

