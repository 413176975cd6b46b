//! strata-models: forecasting models on burn tensors.
//!
//! burn 0.22 erases the backend behind a runtime [`burn::tensor::Device`] (Flex on CPU, CUDA
//! behind a feature), so a model is written once and runs wherever its device says. Every model
//! maps an input window `[batch, seq_len, nodes, features]` to a forecast
//! `[batch, pred_len, nodes]` ([`Model::forward`]); for long-sequence data the "nodes" are the
//! channels and there is one feature, and [`Forecaster`] takes `[batch, seq_len, channels]`
//! directly. Every model is one file with a documented config struct (the published defaults)
//! that implements [`api::Architecture`], and a module that implements [`api::Forecast`].
//!
//! The folders: [`lsf`] long-sequence models, [`spatial`] spatio-temporal (graph and grid)
//! models, [`foundation`] pretrained foundation models, [`generative`] generative models,
//! [`adapters`] fine-tuning adapters (LoRA, AdaLoRA, prompts, MSFT), [`layers`] shared layers,
//! [`kernels`] CPU kernels. A new model is its file plus one line in the list below.

#[macro_use]
mod registry;

pub mod adapters;
pub mod api;
pub mod generative;
pub mod kernels;
pub mod layers;

pub use api::{Architecture, Capabilities, CovariateKinds, CovariateShape, Covariates, Forecast, Forecaster, Marks, Shape, trainable_params};
pub use foundation::moirai::{Moirai, MoiraiConfig};
pub use foundation::ttm::TTMConfig;
pub use generative::vae::{VAE, VAEConfig};

models! {
    /// Long-sequence forecasting models (TSLib's benchmark models).
    pub mod lsf {
        dlinear: "dlinear" Dlinear(DLinearConfig) => DLinear(DLinear) | "DLinear";
        patchtst: "patchtst" Patchtst(PatchTSTConfig) => PatchTST(PatchTST) | "PatchTST";
        transformer: "transformer" Transformer(TransformerConfig) => Transformer(Transformer) | "Transformer";
        itransformer: "itransformer" Itransformer(ITransformerConfig) => ITransformer(ITransformer) | "iTransformer";
        timemixer: "timemixer" Timemixer(TimeMixerConfig) => TimeMixer(TimeMixer) | "TimeMixer";
        tide: "tide" Tide(TiDEConfig) => TiDE(TiDE) | "TiDE";
        timexer: "timexer" Timexer(TimeXerConfig) => TimeXer(TimeXer) | "TimeXer";
        tcn: "tcn" Tcn(TCNConfig) => TCN(TCN) | "TCN" | "onlinetcn";
        fsnet: "fsnet" Fsnet(FSNetConfig) => FSNet(FSNet) | "FSNet";
    }
    /// Spatio-temporal models on sensor graphs and grids, and their graph operations.
    pub mod spatial(graph_ops, spatial_mix) {
        stid: "stid" Stid(STIDConfig) => STID(STID) | "STID";
        stgcn: "stgcn" Stgcn(STGCNConfig) => STGCN(STGCN) | "STGCN";
        gwnet: "gwnet" Gwnet(GWNetConfig) => GWNet(GWNet) | "GWNet" | "graphwavenet";
        mtgnn: "mtgnn" Mtgnn(MTGNNConfig) => MTGNN(MTGNN) | "MTGNN";
        stcnn: "stcnn" Stcnn(STCNNConfig) => STCNN(STCNN) | "STCNN" | "st-cnn";
        convlstm: "convlstm" Convlstm(ConvLSTMConfig) => ConvLSTM(ConvLSTM) | "ConvLSTM" | "strnn";
    }
    /// Pretrained foundation models (MOIRAI, TinyTimeMixer) and their checkpoint weights.
    pub mod foundation(moirai, moirai_mixture, moirai_packed, weights) {
        ttm: "ttm" Ttm(TTMRunConfig) => TTM(TinyTimeMixer) | "TTM" | "tinytimemixer";
    }
}

impl Model {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`. Channel-independent
    /// long-sequence models read feature 0 of every node as a series.
    pub fn forward(&self, x: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<3> {
        self.forward_marked(x, None)
    }

    /// Whether the model outputs a distribution (see [`Self::distribution`]).
    pub fn distribution_head(&self) -> bool {
        matches!(self, Model::Transformer(m) if m.is_probabilistic())
    }
}

impl ModelConfig {
    /// Build the model; `adj` is the row-major `[nodes, nodes]` adjacency where the data has one.
    /// Call [`Self::check`] first: a graph model without its graph panics here, and a model that
    /// loads weights panics where they cannot be read ([`Self::try_init`] returns the error).
    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &burn::tensor::Device) -> Model {
        self.try_init(shape, adj, device).unwrap_or_else(|e| panic!("{e} (call try_init)"))
    }

    /// Parameters that train (all of them, except for frozen parts of fine-tuned backbones).
    pub fn trainable_params(model: &Model) -> usize {
        model.trainable()
    }
}
