//! strata-models: forecasting models on burn tensors.
//!
//! burn 0.22 erases the backend behind a runtime [`burn::tensor::Device`] (Flex on CPU, CUDA
//! behind a feature), so a model is written once and runs wherever its device says. Every model
//! maps an input window `[batch, seq_len, nodes, features]` to a forecast
//! `[batch, pred_len, nodes]` ([`Model::forward`]); for long-sequence data the "nodes" are the
//! channels and there is one feature, and [`Forecaster`] takes `[batch, seq_len, channels]`
//! directly. Every model has a documented config struct with the published defaults and is
//! reachable through [`ModelConfig`] / [`Model`] by name; graph models get the adjacency at init.

pub mod attention;
pub mod convlstm;
pub mod distribution;
pub mod dlinear;
pub mod dropout;
pub mod gelu;
pub mod fastmath;
pub mod softmax;
pub mod graph_ops;
pub mod gwnet;
pub mod itransformer;
pub mod adalora;
pub mod moirai;
pub mod moirai_msft;
pub mod msft;
pub mod ttm_msft;
pub mod mtgnn;
pub mod patchtst;
pub mod revin;
pub mod spatial_mix;
pub mod stcnn;
pub mod stgcn;
pub mod stid;
pub mod timemixer;
pub mod transformer;
pub mod ttm;
pub mod vae;
pub mod weights;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use convlstm::{ConvLSTM, ConvLSTMConfig};
pub use dlinear::{DLinear, DLinearConfig};
pub use gwnet::{GWNet, GWNetConfig};
pub use itransformer::{ITransformer, ITransformerConfig};
pub use moirai::{Moirai, MoiraiConfig};
pub use mtgnn::{MTGNN, MTGNNConfig};
pub use patchtst::{PatchTST, PatchTSTConfig};
pub use stcnn::{STCNN, STCNNConfig};
pub use stgcn::{STGCN, STGCNConfig};
pub use stid::{STID, STIDConfig};
pub use timemixer::{TimeMixer, TimeMixerConfig};
pub use transformer::{Transformer, TransformerConfig};
pub use ttm::{TTMConfig, TinyTimeMixer};
pub use vae::{VAE, VAEConfig};

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

/// Any model's configuration, chosen by `name` in the `[model]` table of a run config.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum ModelConfig {
    #[serde(alias = "DLinear")]
    Dlinear(DLinearConfig),
    #[serde(alias = "PatchTST")]
    Patchtst(PatchTSTConfig),
    #[serde(alias = "Transformer")]
    Transformer(TransformerConfig),
    #[serde(alias = "TimeMixer")]
    Timemixer(TimeMixerConfig),
    #[serde(alias = "iTransformer")]
    Itransformer(ITransformerConfig),
    #[serde(alias = "STID")]
    Stid(STIDConfig),
    #[serde(alias = "STGCN")]
    Stgcn(STGCNConfig),
    #[serde(alias = "GWNet", alias = "graphwavenet")]
    Gwnet(GWNetConfig),
    #[serde(alias = "MTGNN")]
    Mtgnn(MTGNNConfig),
    #[serde(alias = "STCNN", alias = "st-cnn")]
    Stcnn(STCNNConfig),
    #[serde(alias = "ConvLSTM", alias = "strnn")]
    Convlstm(ConvLSTMConfig),
    /// A pretrained TinyTimeMixer checkpoint, fine-tuned.
    #[serde(alias = "TTM", alias = "tinytimemixer")]
    Ttm(ttm::TTMRunConfig),
}

impl ModelConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Dlinear(_) => "dlinear",
            ModelConfig::Patchtst(_) => "patchtst",
            ModelConfig::Transformer(_) => "transformer",
            ModelConfig::Timemixer(_) => "timemixer",
            ModelConfig::Itransformer(_) => "itransformer",
            ModelConfig::Stid(_) => "stid",
            ModelConfig::Stgcn(_) => "stgcn",
            ModelConfig::Gwnet(_) => "gwnet",
            ModelConfig::Mtgnn(_) => "mtgnn",
            ModelConfig::Stcnn(_) => "stcnn",
            ModelConfig::Convlstm(_) => "convlstm",
            ModelConfig::Ttm(_) => "ttm",
        }
    }
    /// One default configuration of every model (the conformance test runs them all).
    pub fn all_defaults() -> Vec<ModelConfig> {
        vec![
            ModelConfig::Dlinear(DLinearConfig::default()),
            ModelConfig::Patchtst(PatchTSTConfig::default()),
            ModelConfig::Transformer(TransformerConfig::default()),
            ModelConfig::Transformer(TransformerConfig { distribution: Some(distribution::Family::Normal), ..Default::default() }),
            ModelConfig::Itransformer(ITransformerConfig::default()),
            ModelConfig::Timemixer(TimeMixerConfig::default()),
            ModelConfig::Stid(STIDConfig::default()),
            ModelConfig::Stgcn(STGCNConfig::default()),
            ModelConfig::Gwnet(GWNetConfig::default()),
            ModelConfig::Mtgnn(MTGNNConfig::default()),
            ModelConfig::Stcnn(STCNNConfig::default()),
            ModelConfig::Convlstm(ConvLSTMConfig::default()),
        ]
    }

    pub fn capabilities(&self) -> Capabilities {
        match self {
            ModelConfig::Dlinear(_) => DLinearConfig::CAPABILITIES,
            ModelConfig::Patchtst(_) => PatchTSTConfig::CAPABILITIES,
            ModelConfig::Transformer(c) => Capabilities { probabilistic: c.distribution.is_some(), ..TransformerConfig::CAPABILITIES },
            ModelConfig::Itransformer(_) => ITransformerConfig::CAPABILITIES,
            ModelConfig::Timemixer(_) => TimeMixerConfig::CAPABILITIES,
            ModelConfig::Stid(_) => STIDConfig::CAPABILITIES,
            ModelConfig::Stgcn(_) => STGCNConfig::CAPABILITIES,
            ModelConfig::Gwnet(_) => GWNetConfig::CAPABILITIES,
            ModelConfig::Mtgnn(_) => MTGNNConfig::CAPABILITIES,
            ModelConfig::Stcnn(_) => STCNNConfig::CAPABILITIES,
            ModelConfig::Convlstm(_) => ConvLSTMConfig::CAPABILITIES,
            ModelConfig::Ttm(_) => Capabilities { cross_channel: false, probabilistic: false, exogenous: false, attention: false },
        }
    }

    /// Graph models: a sensor graph (or, for the convolutional seed models, a grid) is required.
    pub fn needs_graph(&self) -> bool {
        matches!(self, ModelConfig::Stgcn(_) | ModelConfig::Stcnn(_) | ModelConfig::Convlstm(_))
    }

    /// Whether this model can be built for `shape` (with or without a graph); the error says why not.
    pub fn check(&self, shape: &Shape, has_graph: bool) -> Result<(), String> {
        match self {
            ModelConfig::Stgcn(c) if c.remaining_steps(shape.seq_len) == 0 => {
                return Err(format!("stgcn: seq_len {} is too short for {} blocks of kernel {} (each removes {} steps)", shape.seq_len, c.blocks.len(), c.kt, 2 * (c.kt - 1)));
            }
            ModelConfig::Stgcn(_) if !has_graph => return Err("stgcn needs a graph: set data.graph or use a dataset that has one".into()),
            ModelConfig::Gwnet(c) if !has_graph && !c.adaptive => return Err("gwnet without a graph needs model.adaptive = true".into()),
            ModelConfig::Stcnn(_) | ModelConfig::Convlstm(_) if !has_graph && shape.grid.is_none() => {
                return Err(format!("{} needs a graph (data.graph) or a grid (data.grid)", self.name()));
            }
            ModelConfig::Mtgnn(c) if c.location_encoder => {
                return Err("mtgnn with location_encoder = true is STemDist's backbone: it forecasts from each location's mean window and trains through `strata distill`".into());
            }
            ModelConfig::Ttm(_) if shape.features != 1 || shape.grid.is_some() => return Err("ttm forecasts long-sequence data (one feature per channel)".into()),
            ModelConfig::Ttm(c) => {
                let dir = c.resolve();
                let cfg = TTMConfig::from_file(&dir.join("config.json"))?;
                if shape.seq_len != cfg.context_length || shape.pred_len > cfg.horizon() {
                    return Err(format!("ttm: {} takes {} steps and forecasts up to {}; set data.seq_len = {} and data.pred_len <= {}", dir.display(), cfg.context_length, cfg.horizon(), cfg.context_length, cfg.horizon()));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// [`Self::init`] for models that load weights from disk (TinyTimeMixer), with the error.
    pub fn try_init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<Model, String> {
        match self {
            ModelConfig::Ttm(c) => Ok(Model::TTM(c.try_init(shape.seq_len, shape.pred_len, device)?)),
            other => Ok(other.init(shape, adj, device)),
        }
    }

    /// Parameters that train (all of them, except for frozen parts of fine-tuned backbones).
    pub fn trainable_params(model: &Model) -> usize {
        match model {
            Model::TTM(m) => trainable_params(m),
            other => other.num_params(),
        }
    }

    /// Build the model; `adj` is the row-major `[nodes, nodes]` adjacency where the data has one.
    /// Call [`Self::check`] first: a graph model without its graph panics here.
    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Model {
        match self {
            ModelConfig::Dlinear(c) => Model::DLinear(c.init(shape, device)),
            ModelConfig::Patchtst(c) => Model::PatchTST(c.init(shape, device)),
            ModelConfig::Transformer(c) => Model::Transformer(c.init(shape, device)),
            ModelConfig::Itransformer(c) => Model::ITransformer(c.init(shape, device)),
            ModelConfig::Timemixer(c) => Model::TimeMixer(c.init(shape, device)),
            ModelConfig::Stid(c) => Model::STID(c.init(shape, device)),
            ModelConfig::Stgcn(c) => Model::STGCN(c.init(shape, adj, device)),
            ModelConfig::Gwnet(c) => Model::GWNet(c.init(shape, adj, device)),
            ModelConfig::Mtgnn(c) => Model::MTGNN(c.init(shape, device)),
            ModelConfig::Stcnn(c) => Model::STCNN(c.init(shape, adj, device)),
            ModelConfig::Convlstm(c) => Model::ConvLSTM(c.init(shape, adj, device)),
            ModelConfig::Ttm(c) => Model::TTM(c.try_init(shape.seq_len, shape.pred_len, device).unwrap_or_else(|e| panic!("{e} (call try_init)"))),
        }
    }
}

/// Any model, as one module type the trainer and checkpoints handle.
#[derive(Module, Debug)]
pub enum Model {
    DLinear(DLinear),
    PatchTST(PatchTST),
    Transformer(Transformer),
    ITransformer(ITransformer),
    TimeMixer(TimeMixer),
    STID(STID),
    STGCN(STGCN),
    GWNet(GWNet),
    MTGNN(MTGNN),
    STCNN(STCNN),
    ConvLSTM(ConvLSTM),
    TTM(TinyTimeMixer),
}

impl Model {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`. Channel-independent
    /// long-sequence models read feature 0 of every node as a series.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        self.forward_marked(x, None)
    }

    /// [`Self::forward`] with the calendar features of the input and target rows, for models
    /// that use them; the others ignore them.
    pub fn forward_marked(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        let (xm, ym) = marks.map_or((None, None), |m| (Some(m.x), Some(m.y)));
        match self {
            Model::DLinear(m) => m.forecast(values(x)),
            Model::PatchTST(m) => m.forecast(values(x)),
            Model::Transformer(m) => m.forward(values(x), xm, ym),
            Model::ITransformer(m) => m.forward(values(x), xm),
            Model::TimeMixer(m) => m.forward(values(x), xm),
            Model::STID(m) => m.forward(x),
            Model::STGCN(m) => m.forward(x),
            Model::GWNet(m) => m.forward(x),
            Model::MTGNN(m) => m.forward(x),
            Model::STCNN(m) => m.forward(x),
            Model::ConvLSTM(m) => m.forward(x),
            Model::TTM(m) => m.forecast(values(x)),
        }
    }
}

/// Calendar features of a batch: input rows `[batch, seq_len, m]`, target rows `[batch, pred_len, m]`.
#[derive(Debug, Clone)]
pub struct Marks {
    pub x: Tensor<3>,
    pub y: Tensor<3>,
}

impl Model {
    /// Whether the model outputs a distribution (see [`Self::distribution`]).
    pub fn distribution_head(&self) -> bool {
        matches!(self, Model::Transformer(m) if m.is_probabilistic())
    }

    /// The forecast distribution of every `(batch, step, node)` point, for probabilistic models.
    pub fn distribution(&self, x: Tensor<4>, marks: Option<Marks>) -> Option<distribution::Distribution> {
        let (xm, ym) = marks.map_or((None, None), |m| (Some(m.x), Some(m.y)));
        match self {
            Model::Transformer(m) => m.distribution(values(x), xm, ym),
            _ => None,
        }
    }
}

impl Model {
    /// Attention weights of every attention layer, named (`layer1`, `encoder1`,
    /// `decoder1_cross`), each `[batch (x channels for channel-independent models), heads,
    /// queries, keys]`; `None` for models without attention.
    pub fn attention(&self, x: Tensor<4>, marks: Option<Marks>) -> Option<Vec<(String, Tensor<4>)>> {
        let (xm, ym) = marks.map_or((None, None), |m| (Some(m.x), Some(m.y)));
        let layers = |v: Vec<Tensor<4>>| v.into_iter().enumerate().map(|(i, w)| (format!("layer{}", i + 1), w)).collect();
        match self {
            Model::PatchTST(m) => Some(layers(m.forward_with_attention(values(x)).1)),
            Model::ITransformer(m) => Some(layers(m.forward_with_attention(values(x), xm).1)),
            Model::Transformer(m) => Some(m.attention(values(x), xm, ym)),
            _ => None,
        }
    }

    /// The adjacency a graph model learned (`[nodes, nodes]`): MTGNN's top-k graph, Graph
    /// WaveNet's self-adaptive one; `None` for other models.
    pub fn learned_adjacency(&self) -> Option<Tensor<2>> {
        match self {
            Model::MTGNN(m) => Some(m.learned_graph()),
            Model::GWNet(m) => m.adaptive_adjacency(),
            _ => None,
        }
    }
}

/// Feature 0 of every node: `[b, l, n, f] -> [b, l, n]`.
fn values(x: Tensor<4>) -> Tensor<3> {
    let [b, l, n, f] = x.dims();
    if f == 1 { x.reshape([b, l, n]) } else { x.narrow(3, 0, 1).reshape([b, l, n]) }
}

impl Forecaster for Model {
    fn forecast(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Model::DLinear(m) => m.forecast(x),
            Model::PatchTST(m) => m.forecast(x),
            other => other.forward(x.unsqueeze_dim(3)),
        }
    }
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

#[cfg(test)]
mod attention_tests {
    use super::*;
    use burn::tensor::Distribution as Init;

    /// Attention maps come from the same pass as the forecast: every row is a distribution over
    /// the keys, and the shapes follow each model's tokens.
    #[test]
    fn attention_maps_are_row_stochastic_with_the_models_token_shapes() {
        let device = Device::flex();
        let shape = Shape { marks: 4, ..Shape::lsf(32, 8, 3) };
        let x = Tensor::<4>::random([2, 32, 3, 1], Init::Normal(0.0, 1.0), &device);
        let marks = || Some(Marks { x: Tensor::zeros([2, 32, 4], &device), y: Tensor::zeros([2, 8, 4], &device) });
        let cases: Vec<(ModelConfig, Vec<[usize; 4]>)> = vec![
            // PatchTST: channels folded into the batch, 32 steps -> 3 patches of 16 stride 8 (+ end pad).
            (ModelConfig::Patchtst(PatchTSTConfig { e_layers: 2, n_heads: 4, ..Default::default() }), vec![[6, 4, 4, 4]; 2]),
            // iTransformer: 3 variate tokens + 4 calendar tokens.
            (ModelConfig::Itransformer(ITransformerConfig { e_layers: 1, n_heads: 8, ..Default::default() }), vec![[2, 8, 7, 7]]),
            // Transformer: encoder self-attention over 32 steps, decoder (16 label + 8 horizon steps) cross-attention.
            (ModelConfig::Transformer(TransformerConfig { e_layers: 1, d_layers: 1, n_heads: 8, label_len: 16, ..Default::default() }), vec![[2, 8, 32, 32], [2, 8, 16 + 8, 32]]),
        ];
        for (cfg, shapes) in cases {
            let m = cfg.init(shape, None, &device).valid();
            let maps = m.attention(x.clone(), marks()).expect("an attention model");
            let got: Vec<[usize; 4]> = maps.iter().map(|(_, w)| w.dims()).collect();
            assert_eq!(got, shapes, "{}", cfg.name());
            for (name, w) in maps {
                let sums: Vec<f32> = w.sum_dim(3).into_data().convert::<f32>().try_into_vec().unwrap();
                assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "{} {name}", cfg.name());
            }
        }
        assert!(ModelConfig::Dlinear(DLinearConfig::default()).init(shape, None, &device).attention(x, None).is_none());
    }

    /// STemDist's MTGNN has no per-node parameter: one model forecasts any number of
    /// locations, and permuting the locations permutes the forecast (every graph entry kept:
    /// the top-k choice among saturated, equal scores follows the node index).
    #[test]
    fn location_encoder_mtgnn_is_location_agnostic() {
        let device = Device::flex();
        let cfg = MTGNNConfig { location_encoder: true, subgraph_size: 30, conv_channels: 8, residual_channels: 8, skip_channels: 16, end_channels: 16, ..Default::default() };
        // Built for 30 nodes so that top-k (k = min(30, nodes at init)) keeps every entry at 10 and 23.
        let m = cfg.init(Shape { features: 2, ..Shape::lsf(12, 6, 30) }, &device);
        for n in [10, 23] {
            // A fixed input (the global RNG is shared by parallel tests): smooth, distinct per location.
            let vals: Vec<f32> = (0..3 * 12 * n * 2).map(|i| ((i as f32) * 0.37).sin() + 0.1 * ((i * 7 % 13) as f32 - 6.0)).collect();
            let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(vals, [3, 12, n, 2]), &device);
            let loc = x.clone().mean_dim(0).reshape([12, n, 2]).permute([1, 0, 2]).reshape([n, 24]);
            let y = m.forward_located(x.clone(), loc.clone());
            assert_eq!(y.dims(), [3, 6, n]);
            let perm: Vec<i64> = (0..n as i64).rev().collect();
            let idx = Tensor::<1, burn::tensor::Int>::from_data(burn::tensor::TensorData::new(perm, [n]), &device);
            let yp = m.forward_located(x.select(2, idx.clone()), loc.select(0, idx.clone()));
            let scale: f32 = y.clone().abs().max().into_scalar();
            let diff: f32 = (yp - y.select(2, idx)).abs().max().into_scalar();
            // Summation order changes with the permutation: equal up to float rounding.
            assert!(diff <= 1e-5 * scale.max(1.0), "n {n}: {diff} (output scale {scale})");
        }
        assert!(ModelConfig::Mtgnn(cfg).check(&Shape::lsf(12, 6, 10), false).is_err());
    }

    #[test]
    fn graph_models_expose_the_adjacency_they_learn() {
        let device = Device::flex();
        let shape = Shape { features: 1, ..Shape::lsf(12, 12, 10) };
        let rows = |t: Tensor<2>| -> Vec<Vec<f32>> {
            let [n, _] = t.dims();
            t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap().chunks(n).map(|r| r.to_vec()).collect()
        };
        // Graph WaveNet: softmax rows.
        let g = ModelConfig::Gwnet(GWNetConfig::default()).init(shape, None, &device).learned_adjacency().unwrap();
        assert_eq!(g.dims(), [10, 10]);
        assert!(rows(g).iter().all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
        // MTGNN: at most top-k non-negative entries per row.
        let k = MTGNNConfig { subgraph_size: 4, ..Default::default() }.subgraph_size;
        let m = ModelConfig::Mtgnn(MTGNNConfig { subgraph_size: 4, ..Default::default() }).init(shape, None, &device).learned_adjacency().unwrap();
        for r in rows(m) {
            assert!(r.iter().all(|v| *v >= 0.0));
            assert!(r.iter().filter(|v| **v > 0.0).count() <= k);
        }
        assert!(ModelConfig::Stid(STIDConfig::default()).init(shape, None, &device).learned_adjacency().is_none());
    }
}
