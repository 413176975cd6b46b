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
    /// Covariates passed beside the input ([`Covariates`]): how many of each kind.
    #[serde(default)]
    pub covariates: CovariateShape,
}

/// How many covariates of each kind the data carries, and whether they are per series (or
/// location) or shared by all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CovariateShape {
    /// Past-observed covariates (known up to the forecast origin only).
    pub past: usize,
    /// Future-known covariates (known over the input and the horizon), besides the calendar marks.
    pub future: usize,
    /// Static covariates (one value per series or location).
    pub statics: usize,
    /// 1: shared by every series (a wide file's columns); `channels`: one set per series / node.
    pub groups: usize,
}

impl CovariateShape {
    pub fn is_empty(&self) -> bool {
        self.past + self.future + self.statics == 0
    }

    /// Covariates a model reading `channels` series can take: one set shared by all series, or
    /// one per series.
    pub fn check_groups(&self, model: &str, channels: usize) -> Result<(), String> {
        let g = self.groups;
        if !self.is_empty() && g != 1 && g != channels {
            return Err(format!("{model}: covariates come in {g} groups for {channels} series; give one set shared by all series, or one per series"));
        }
        Ok(())
    }
}

/// The kinds of covariates a model takes (neuralforecast's `EXOGENOUS_HIST`, `EXOGENOUS_FUTR`,
/// `EXOGENOUS_STAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CovariateKinds {
    pub past: bool,
    pub future: bool,
    pub statics: bool,
}

impl CovariateKinds {
    pub const NONE: CovariateKinds = CovariateKinds { past: false, future: false, statics: false };
    pub const ALL: CovariateKinds = CovariateKinds { past: true, future: true, statics: true };
    /// Past-observed covariates only (the spatio-temporal models: as input features, [`with_past`]).
    pub const PAST: CovariateKinds = CovariateKinds { past: true, future: false, statics: false };

    /// Why `model` cannot take the covariates of `shape`, naming the kind and the config key.
    pub fn refuse(&self, model: &str, shape: &CovariateShape) -> Result<(), String> {
        let given = [(shape.past, self.past, "past-observed", "past"), (shape.future, self.future, "future-known", "future"), (shape.statics, self.statics, "static", "static")];
        for (n, takes, kind, key) in given {
            if n > 0 && !takes {
                let who: Vec<&str> = crate::ModelConfig::all_defaults().iter().filter(|c| c.covariates().takes(key)).map(|c| c.name()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
                return Err(format!(
                    "{model} does not take {kind} covariates, and data.covariates.{key} names {n} column(s): remove data.covariates.{key}, or use a model that takes them ({})",
                    who.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn takes(&self, key: &str) -> bool {
        match key {
            "past" => self.past,
            "future" => self.future,
            _ => self.statics,
        }
    }
}

/// The covariates of a batch. The group axis is 1 for covariates shared by every series, or
/// the series / nodes. Each kind covers only the rows it is known for: past-observed ones the
/// input rows, future-known ones the input and horizon rows.
#[derive(Debug, Clone, Default)]
pub struct Covariates {
    /// `[batch, seq_len, groups, past]`.
    pub past: Option<Tensor<4>>,
    /// `[batch, seq_len + pred_len, groups, future]`.
    pub future: Option<Tensor<4>>,
    /// `[groups, statics]`.
    pub statics: Option<Tensor<2>>,
}

impl Shape {
    /// A long-sequence shape: `channels` series, one feature each.
    pub const fn lsf(seq_len: usize, pred_len: usize, channels: usize) -> Self {
        Shape { seq_len, pred_len, channels, features: 1, steps_per_day: 0, tod: false, dow: false, grid: None, marks: 0, covariates: CovariateShape { past: 0, future: 0, statics: 0, groups: 0 } }
    }
    pub fn time_of_day(&self) -> bool {
        self.tod
    }
    /// Input features per node of the spatio-temporal models, which read past-observed
    /// covariates as further input features ([`with_past`]).
    pub fn input_features(&self) -> usize {
        self.features + self.covariates.past
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
    /// [`Forecast::predict`] with the batch's covariates. Only models whose
    /// [`Architecture::covariates`] declares a kind override it; the training task refuses to
    /// give covariates to the others.
    fn predict_covariates(&self, x: Tensor<4>, marks: Option<Marks>, _covariates: Covariates) -> Tensor<3> {
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
    /// [`Forecast::attention`] with the batch's covariates, for models that attend to them
    /// (iTransformer's covariate tokens).
    fn attention_covariates(&self, x: Tensor<4>, marks: Option<Marks>, _covariates: Covariates) -> Option<Vec<(String, Tensor<4>)>> {
        self.attention(x, marks)
    }
    /// The adjacency a graph model learned (`[nodes, nodes]`).
    fn learned_adjacency(&self) -> Option<Tensor<2>> {
        None
    }
    /// Parameters that train (all of them, except for frozen parts of fine-tuned backbones).
    fn trainable(&self) -> usize {
        self.num_params()
    }
    /// A training step's gradients, for a model that learns from them outside the optimiser
    /// (FSNet's gradient averages); `online` after the warm-up. Called by the training tasks
    /// before the optimiser steps.
    fn observe_gradients(&self, _grads: &burn::optim::GradientsParams, _online: bool) {}
    /// State outside the parameters that checkpoints keep (JSON; FSNet's averages and memory).
    fn extra_state(&self) -> Option<String> {
        None
    }
    fn restore_extra_state(&self, _json: &str) -> Result<(), String> {
        Ok(())
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
    /// The covariate kinds [`Forecast::predict_covariates`] uses (none by default).
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds::NONE
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


impl Covariates {
    /// A batch's covariates from row-major buffers: `past` `[batch, seq_len, groups, past]`,
    /// `future` `[batch, seq_len + pred_len, groups, future]`, `statics` `[groups, statics]`
    /// (each absent when its width in `shape` is 0).
    pub fn from_rows(shape: CovariateShape, past: Vec<f32>, future: Vec<f32>, statics: Option<Vec<f32>>, [batch, seq_len, pred_len]: [usize; 3], device: &Device) -> Covariates {
        use burn::tensor::TensorData;
        let g = shape.groups;
        Covariates {
            past: (shape.past > 0).then(|| Tensor::from_data(TensorData::new(past, [batch, seq_len, g, shape.past]), device)),
            future: (shape.future > 0).then(|| Tensor::from_data(TensorData::new(future, [batch, seq_len + pred_len, g, shape.future]), device)),
            statics: statics.filter(|_| shape.statics > 0).map(|v| Tensor::from_data(TensorData::new(v, [g, shape.statics]), device)),
        }
    }
}

/// `[batch, time, groups, k]` -> `[batch x channels, time, k]` (row `b * channels + c`, as a
/// channel-independent model lays out its series); a shared group (1) serves every channel.
pub fn per_channel(t: Tensor<4>, channels: usize) -> Tensor<3> {
    let [b, len, g, k] = t.dims();
    let t = t.permute([0, 2, 1, 3]);
    let t = if g == 1 && channels > 1 { t.repeat_dim(1, channels) } else { t };
    t.reshape([b * channels, len, k])
}

/// The input `[batch, seq_len, nodes, features]` with the past-observed covariates
/// `[batch, seq_len, groups, past]` appended as further features of each node (a shared group
/// serves every node): how the spatio-temporal models, whose inputs are feature channels per
/// node (Graph WaveNet's and STGCN's `in_dim`, STID's flattened window), take them.
pub fn with_past(x: Tensor<4>, past: Option<Tensor<4>>) -> Tensor<4> {
    let Some(p) = past else { return x };
    let n = x.dims()[2];
    let p = if p.dims()[2] == 1 && n > 1 { p.repeat_dim(2, n) } else { p };
    Tensor::cat(vec![x, p], 3)
}

/// Static covariates `[groups, s]` -> `[batch x channels, s]` (row `b * channels + c`).
pub fn statics_per_channel(s: Tensor<2>, batch: usize, channels: usize) -> Tensor<2> {
    let [g, k] = s.dims();
    let s = s.unsqueeze_dim::<3>(0);
    let s = if g == 1 && channels > 1 { s.repeat_dim(1, channels) } else { s };
    s.repeat_dim(0, batch).reshape([batch * channels, k])
}
