//! ConvLSTM (Shi et al., NeurIPS 2015), the seed system's ST-RNN: an LSTM whose gates are
//! computed by a spatial convolution of `[input, hidden]` (a `k x k` convolution over a grid of
//! nodes, as the paper does for radar maps; a graph convolution over a sensor graph), so every
//! node keeps its own state and exchanges it with its neighbours at every step. A linear head
//! maps the last hidden state of each node to the horizon.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use crate::spatial::graph_ops::graph_or_grid;
use crate::spatial::spatial_mix::SpatialMix;
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, CovariateKinds, Covariates, with_past};

/// ConvLSTM hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvLSTMConfig {
    /// Hidden channels of each layer.
    pub hidden: usize,
    /// Stacked ConvLSTM layers.
    pub layers: usize,
    /// Kernel size of the grid convolution.
    pub kernel: usize,
}

impl Default for ConvLSTMConfig {
    fn default() -> Self {
        ConvLSTMConfig { hidden: 32, layers: 2, kernel: 3 }
    }
}

#[derive(Module, Debug)]
pub struct ConvLSTMCell {
    gates: SpatialMix,
    hidden: usize,
}

impl ConvLSTMCell {
    fn step(&self, x: Tensor<3>, h: Tensor<3>, c: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let g = self.gates.forward(Tensor::cat(vec![x, h], 2));
        let k = self.hidden;
        let i = sigmoid(g.clone().narrow(2, 0, k));
        let f = sigmoid(g.clone().narrow(2, k, k));
        let o = sigmoid(g.clone().narrow(2, 2 * k, k));
        let u = tanh(g.narrow(2, 3 * k, k));
        let c = f * c + i * u;
        (o * tanh(c.clone()), c)
    }
}

#[derive(Module, Debug)]
pub struct ConvLSTM {
    cells: Vec<ConvLSTMCell>,
    head: Linear,
}

impl ConvLSTMConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> ConvLSTM {
        let cells = (0..self.layers)
            .map(|i| {
                let c_in = if i == 0 { shape.input_features() } else { self.hidden };
                ConvLSTMCell { gates: SpatialMix::new(c_in + self.hidden, 4 * self.hidden, self.kernel, shape.grid, adj, shape.channels, device), hidden: self.hidden }
            })
            .collect();
        ConvLSTM { cells, head: LinearConfig::new(self.hidden, shape.pred_len).init(device) }
    }
}

impl ConvLSTM {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, l, n, f] = x.dims();
        let device = x.device();
        let mut state: Vec<(Tensor<3>, Tensor<3>)> = self.cells.iter().map(|c| (Tensor::zeros([b, n, c.hidden], &device), Tensor::zeros([b, n, c.hidden], &device))).collect();
        for t in 0..l {
            let mut input = x.clone().narrow(1, t, 1).reshape([b, n, f]);
            for (cell, s) in self.cells.iter().zip(state.iter_mut()) {
                let (h, c) = cell.step(input, s.0.clone(), s.1.clone());
                *s = (h.clone(), c);
                input = h;
            }
        }
        let h = state.pop().expect("at least one layer").0;
        self.head.forward(h).permute([0, 2, 1])
    }
}

impl Architecture for ConvLSTMConfig {
    type Module = ConvLSTM;
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
        graph_or_grid("convlstm", shape, has_graph)
    }
    fn build(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<ConvLSTM, String> {
        Ok(self.init(shape, adj, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for ConvLSTM {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forward(x)
    }
    fn predict_covariates(&self, x: Tensor<4>, _marks: Option<Marks>, c: Covariates) -> Tensor<3> {
        self.forward(with_past(x, c.past))
    }
}
