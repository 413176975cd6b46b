//! STID (Shao et al., "Spatial-Temporal Identity", CIKM 2022), as BasicTS implements it.
//!
//! Each node's input window (all input features, flattened) is embedded by a linear map and
//! concatenated with learned identity embeddings of the node, of the time of day and of the day of
//! week at the last input step; residual MLP layers follow and a linear head outputs the horizon.
//! BasicTS writes the maps as 1x1 convolutions over `[batch, channels, nodes, 1]`; a linear layer
//! over `[batch, nodes, channels]` is the same computation. Needs no graph.
//!
//! Covariates (strata's extension, in the model's own pattern of concatenated embeddings):
//! past-observed ones are further input features of the window; each node's future-known ones
//! over the input and horizon rows are embedded by a linear map (`covariate_dim` wide), and its
//! static ones by another, both concatenated beside the identity embeddings.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor};

use crate::layers::dropout::Dropout;
use crate::api::{Architecture, Capabilities, CovariateKinds, Covariates, Forecast, Marks, Shape, with_past};

/// STID hyper-parameters (BasicTS defaults for METR-LA).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct STIDConfig {
    /// Width of the window embedding.
    pub embed_dim: usize,
    /// Width of the node identity embedding (0 turns it off).
    pub node_dim: usize,
    /// Width of the time-of-day embedding (0 turns it off; needs the time-of-day input).
    pub temp_dim_tid: usize,
    /// Width of the day-of-week embedding (0 turns it off; needs the day-of-week input).
    pub temp_dim_diw: usize,
    /// Residual MLP layers.
    pub num_layer: usize,
    pub dropout: f64,
    /// Width of the future-known and of the static covariate embeddings (each present only
    /// when the data has that kind).
    pub covariate_dim: usize,
}

impl Default for STIDConfig {
    fn default() -> Self {
        STIDConfig { embed_dim: 32, node_dim: 32, temp_dim_tid: 32, temp_dim_diw: 32, num_layer: 3, dropout: 0.15, covariate_dim: 32 }
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc2.forward(self.dropout.forward(relu(self.fc1.forward(x.clone()))));
        h + x
    }
}

#[derive(Module, Debug)]
pub struct STID {
    series_emb: Linear,
    node_emb: Option<Param<Tensor<2>>>,
    tid_emb: Option<Param<Tensor<2>>>,
    diw_emb: Option<Param<Tensor<2>>>,
    future_emb: Option<Linear>,
    static_emb: Option<Linear>,
    encoder: Vec<Mlp>,
    regression: Linear,
    steps_per_day: usize,
    /// Input feature holding the time of day / day of week (`usize::MAX`: absent).
    tod_col: usize,
    dow_col: usize,
}

impl STIDConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, device: &Device) -> STID {
        let (l, h, n, f) = (shape.seq_len, shape.pred_len, shape.channels, shape.input_features());
        let cov = shape.covariates;
        let xavier = Initializer::XavierUniform { gain: 1.0 };
        let tod = self.temp_dim_tid > 0 && shape.time_of_day();
        let dow = self.temp_dim_diw > 0 && shape.day_of_week();
        let hidden = self.embed_dim + if self.node_dim > 0 { self.node_dim } else { 0 } + if tod { self.temp_dim_tid } else { 0 } + if dow { self.temp_dim_diw } else { 0 }
            + self.covariate_dim * ((cov.future > 0) as usize + (cov.statics > 0) as usize);
        STID {
            series_emb: LinearConfig::new(l * f, self.embed_dim).init(device),
            // torch's xavier_uniform_ on [rows, cols]: fan_in = cols, fan_out = rows.
            node_emb: (self.node_dim > 0).then(|| xavier.init_with([n, self.node_dim], Some(self.node_dim), Some(n), device)),
            tid_emb: tod.then(|| xavier.init_with([shape.steps_per_day, self.temp_dim_tid], Some(self.temp_dim_tid), Some(shape.steps_per_day), device)),
            diw_emb: dow.then(|| xavier.init_with([7, self.temp_dim_diw], Some(self.temp_dim_diw), Some(7), device)),
            future_emb: (cov.future > 0).then(|| LinearConfig::new((l + h) * cov.future, self.covariate_dim).init(device)),
            static_emb: (cov.statics > 0).then(|| LinearConfig::new(cov.statics, self.covariate_dim).init(device)),
            encoder: (0..self.num_layer)
                .map(|_| Mlp { fc1: LinearConfig::new(hidden, hidden).init(device), fc2: LinearConfig::new(hidden, hidden).init(device), dropout: Dropout::new(self.dropout) })
                .collect(),
            regression: LinearConfig::new(hidden, h).init(device),
            steps_per_day: shape.steps_per_day,
            tod_col: if shape.time_of_day() { 1 } else { usize::MAX },
            dow_col: if shape.day_of_week() { 1 + shape.time_of_day() as usize } else { usize::MAX },
        }
    }
}

impl STID {
    /// `x`: `[batch, seq_len, nodes, features]` (features: value, time of day, day of week).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        self.forward_covariates(x, Covariates::default())
    }

    /// [`STID::forward`] with covariates: past-observed as further input features, future-known
    /// `[batch, seq_len + pred_len, groups, k]` and static `[groups, s]` embedded per node.
    pub fn forward_covariates(&self, x: Tensor<4>, c: Covariates) -> Tensor<3> {
        let x = with_past(x, c.past);
        let [b, l, n, f] = x.dims();
        let series = x.clone().permute([0, 2, 1, 3]).reshape([b, n, l * f]);
        let mut parts = vec![self.series_emb.forward(series)];
        if let Some(e) = &self.node_emb {
            parts.push(e.val().unsqueeze_dim::<3>(0).expand([b as i64, -1, -1]));
        }
        let last = x.narrow(1, l - 1, 1).reshape([b * n, f]);
        let lookup = |table: &Param<Tensor<2>>, col: usize, size: usize| {
            let idx: Tensor<1, Int> = (last.clone().narrow(1, col, 1).reshape([b * n]) * size as f32).floor().clamp(0.0, size as f32 - 1.0).int();
            table.val().select(0, idx).reshape([b, n, table.dims()[1]])
        };
        if let Some(e) = &self.tid_emb {
            parts.push(lookup(e, self.tod_col, self.steps_per_day));
        }
        if let Some(e) = &self.diw_emb {
            parts.push(lookup(e, self.dow_col, 7));
        }
        if let (Some(e), Some(fut)) = (&self.future_emb, c.future) {
            // [b, L+H, g, k] -> [b, nodes, (L+H) k], a shared group serving every node.
            let [_, t, g, k] = fut.dims();
            let fut = fut.permute([0, 2, 1, 3]).reshape([b, g, t * k]);
            let fut = if g == 1 && n > 1 { fut.repeat_dim(1, n) } else { fut };
            parts.push(e.forward(fut));
        }
        if let (Some(e), Some(st)) = (&self.static_emb, c.statics) {
            let st = e.forward(st).unsqueeze_dim::<3>(0);
            let st = if st.dims()[1] == 1 && n > 1 { st.repeat_dim(1, n) } else { st };
            parts.push(st.repeat_dim(0, b));
        }
        let mut hidden = Tensor::cat(parts, 2);
        for layer in &self.encoder {
            hidden = layer.forward(hidden);
        }
        self.regression.forward(hidden).permute([0, 2, 1])
    }
}

impl Architecture for STIDConfig {
    type Module = STID;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    /// Every kind: past-observed as input features, future-known and static embedded.
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds::ALL
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<STID, String> {
        shape.covariates.check_groups("stid", shape.channels)?;
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for STID {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forward(x)
    }
    fn predict_covariates(&self, x: Tensor<4>, _marks: Option<Marks>, c: Covariates) -> Tensor<3> {
        self.forward_covariates(x, c)
    }
}
