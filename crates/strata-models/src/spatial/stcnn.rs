//! ST-CNN, the seed system's spatio-temporal model: at every input step a spatial convolution
//! (a `k x k` convolution over a grid, or a graph convolution over a sensor graph) embeds the
//! nodes; an LSTM shared by all nodes then reads each node's embedded sequence, and a linear head
//! maps its last state to the horizon.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Lstm, LstmConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::spatial::graph_ops::graph_or_grid;
use crate::spatial::spatial_mix::SpatialMix;
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, CovariateKinds, Covariates, with_past};

/// ST-CNN hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct STCNNConfig {
    /// Channels of the spatial convolution.
    pub conv_channels: usize,
    /// Kernel size of the grid convolution.
    pub kernel: usize,
    /// Hidden size of the LSTM.
    pub hidden: usize,
}

impl Default for STCNNConfig {
    fn default() -> Self {
        STCNNConfig { conv_channels: 32, kernel: 3, hidden: 64 }
    }
}

#[derive(Module, Debug)]
pub struct STCNN {
    spatial: SpatialMix,
    lstm: Lstm,
    head: Linear,
}

impl STCNNConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> STCNN {
        STCNN {
            spatial: SpatialMix::new(shape.input_features(), self.conv_channels, self.kernel, shape.grid, adj, shape.channels, device),
            lstm: LstmConfig::new(self.conv_channels, self.hidden, true).init(device),
            head: LinearConfig::new(self.hidden, shape.pred_len).init(device),
        }
    }
}

impl STCNN {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, l, n, f] = x.dims();
        let z = relu(self.spatial.forward(x.reshape([b * l, n, f]))); // [b*l, n, c]
        let c = z.dims()[2];
        let seq = z.reshape([b, l, n, c]).permute([0, 2, 1, 3]).reshape([b * n, l, c]);
        let (_, state) = self.lstm.forward(seq, None);
        let y = self.head.forward(state.hidden); // [b*n, pred_len]
        let h = y.dims()[1];
        y.reshape([b, n, h]).permute([0, 2, 1])
    }
}

impl Architecture for STCNNConfig {
    type Module = STCNN;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    /// Past-observed covariates, as further input features of every node.
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds::PAST
    }
    fn needs_graph(&self) -> bool {
        true
    }
    fn check(&self, shape: &Shape, has_graph: bool) -> Result<(), String> {
        graph_or_grid("stcnn", shape, has_graph)
    }
    fn build(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<STCNN, String> {
        Ok(self.init(shape, adj, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for STCNN {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forward(x)
    }
    fn predict_covariates(&self, x: Tensor<4>, _marks: Option<Marks>, c: Covariates) -> Tensor<3> {
        self.forward(with_past(x, c.past))
    }
}
