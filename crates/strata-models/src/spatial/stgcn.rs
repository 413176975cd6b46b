//! STGCN (Yu et al., "Spatio-Temporal Graph Convolutional Networks", IJCAI 2018), in the layout
//! of the PyTorch implementation BasicTS uses (hazdzz/STGCN): two ST-Conv blocks, each a gated
//! temporal convolution, a Chebyshev graph convolution with a residual, a ReLU temporal
//! convolution, layer norm over `[nodes, channels]` and dropout; then an output block that
//! collapses the remaining steps and maps to the horizon. Tensors are `[batch, channels, time, nodes]`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use crate::layers::dropout::Dropout;
use crate::spatial::graph_ops::{scaled_laplacian, scaled_laplacian_batch, tensor, transpose};
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, CovariateKinds, Covariates, with_past};

/// STGCN hyper-parameters (BasicTS defaults: Ks 3, Kt 3, blocks [[F], [64, 16, 64], [64, 16, 64], [128, 128], [H]]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct STGCNConfig {
    /// Chebyshev order of the graph convolution.
    pub ks: usize,
    /// Temporal kernel size.
    pub kt: usize,
    /// Channels of each ST-Conv block: temporal out, graph out, temporal out.
    pub blocks: Vec<[usize; 3]>,
    /// Hidden widths of the output block.
    pub output: [usize; 2],
    pub dropout: f64,
}

impl Default for STGCNConfig {
    fn default() -> Self {
        STGCNConfig { ks: 3, kt: 3, blocks: vec![[64, 16, 64], [64, 16, 64]], output: [128, 128], dropout: 0.5 }
    }
}

/// Match channel counts for a residual: 1x1 conv to fewer channels, zero padding to more.
#[derive(Module, Debug)]
pub struct Align {
    conv: Option<Conv2d>,
    c_in: usize,
    c_out: usize,
}

impl Align {
    fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Align { conv: (c_in > c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)), c_in, c_out }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.conv {
            Some(c) => c.forward(x),
            None if self.c_in < self.c_out => {
                let [b, _, t, n] = x.dims();
                let zeros = Tensor::zeros([b, self.c_out - self.c_in, t, n], &x.device());
                Tensor::cat(vec![x, zeros], 1)
            }
            None => x,
        }
    }
}

/// Causal temporal convolution (kernel `[kt, 1]`), gated (GLU) or ReLU, with a residual.
#[derive(Module, Debug)]
pub struct TemporalConv {
    align: Align,
    conv: Conv2d,
    kt: usize,
    c_out: usize,
    glu: bool,
}

impl TemporalConv {
    fn new(kt: usize, c_in: usize, c_out: usize, glu: bool, device: &Device) -> Self {
        let width = if glu { 2 * c_out } else { c_out };
        TemporalConv { align: Align::new(c_in, c_out, device), conv: Conv2dConfig::new([c_in, width], [kt, 1]).init(device), kt, c_out, glu }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let t = x.dims()[2];
        let x_in = self.align.forward(x.clone()).narrow(2, self.kt - 1, t + 1 - self.kt);
        let y = self.conv.forward(x);
        if self.glu {
            let p = y.clone().narrow(1, 0, self.c_out);
            let q = y.narrow(1, self.c_out, self.c_out);
            (p + x_in) * sigmoid(q)
        } else {
            relu(y + x_in)
        }
    }
}

/// Chebyshev graph convolution of order `ks` with a residual.
#[derive(Module, Debug)]
pub struct ChebConv {
    align: Align,
    weight: Param<Tensor<3>>,
    bias: Param<Tensor<1>>,
    /// The transposed scaled Laplacian (a constant).
    gso_t: Tensor<2>,
}

impl ChebConv {
    fn new(ks: usize, c_in: usize, c_out: usize, gso: &[f32], n: usize, device: &Device) -> Self {
        let fan = (c_out * ks) as f64;
        let bound = 1.0 / fan.sqrt();
        ChebConv {
            align: Align::new(c_in, c_out, device),
            weight: Initializer::KaimingUniform { gain: 1.0 / 3f64.sqrt(), fan_out_only: false }.init_with([ks, c_out, c_out], Some(c_out * ks), Some(c_out), device),
            bias: Initializer::Uniform { min: -bound, max: bound }.init([c_out], device),
            gso_t: tensor(transpose(gso, n), n, device),
        }
    }
    /// `gso_t`: each sample's transposed scaled Laplacian `[b, n, n]` (dynamic graphs), else
    /// the static one.
    fn forward(&self, x: Tensor<4>, gso_t: Option<&Tensor<3>>) -> Tensor<4> {
        let x = self.align.forward(x);
        let [b, c, t, n] = x.dims();
        let [ks, _, c_out] = self.weight.dims();
        // [b, c, t, n] -> rows of nodes [b*c*t, n]; T_k(L) x by the Chebyshev recurrence.
        let x0 = x.clone().reshape([b * c * t, n]);
        let apply = |h: Tensor<2>| match gso_t {
            Some(g) => h.reshape([b, c * t, n]).matmul(g.clone()).reshape([b * c * t, n]),
            None => h.matmul(self.gso_t.clone()),
        };
        let mut terms = vec![x0.clone()];
        if ks > 1 {
            terms.push(apply(x0.clone()));
        }
        for k in 2..ks {
            let next = apply(terms[k - 1].clone()) * 2.0 - terms[k - 2].clone();
            terms.push(next);
        }
        // Mix channels: sum_k T_k x W_k, as [b, t, n, ks*c] @ [ks*c, c_out].
        let stacked = Tensor::stack::<3>(terms, 0).reshape([ks, b, c, t, n]).permute([1, 3, 4, 0, 2]).reshape([b * t * n, ks * c]);
        let w = self.weight.val().reshape([ks * c, c_out]);
        let y = (stacked.matmul(w) + self.bias.val().unsqueeze_dim(0)).reshape([b, t, n, c_out]).permute([0, 3, 1, 2]);
        y + x
    }
}

/// Layer norm over `[nodes, channels]` jointly, as `nn.LayerNorm([n, c])` on `[b, t, n, c]`.
fn node_channel_norm(ln: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    let [b, c, t, n] = x.dims();
    let y = ln.forward(x.permute([0, 2, 3, 1]).reshape([b, t, n * c]));
    y.reshape([b, t, n, c]).permute([0, 3, 1, 2])
}

#[derive(Module, Debug)]
pub struct STConvBlock {
    temporal1: TemporalConv,
    graph: ChebConv,
    temporal2: TemporalConv,
    norm: LayerNorm,
    dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct STGCN {
    blocks: Vec<STConvBlock>,
    out_temporal: TemporalConv,
    out_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl STGCNConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> STGCN {
        let n = shape.channels;
        let gso = match adj {
            Some(a) => scaled_laplacian(a, n),
            None => panic!("stgcn needs a graph (data.graph)"),
        };
        let mut c = shape.input_features();
        let mut blocks = Vec::new();
        for ch in &self.blocks {
            blocks.push(STConvBlock {
                temporal1: TemporalConv::new(self.kt, c, ch[0], true, device),
                graph: ChebConv::new(self.ks, ch[0], ch[1], &gso, n, device),
                temporal2: TemporalConv::new(self.kt, ch[1], ch[2], false, device),
                norm: LayerNormConfig::new(n * ch[2]).init(device),
                dropout: Dropout::new(self.dropout),
            });
            c = ch[2];
        }
        let ko = self.remaining_steps(shape.seq_len);
        STGCN {
            blocks,
            out_temporal: TemporalConv::new(ko, c, self.output[0], true, device),
            out_norm: LayerNormConfig::new(n * self.output[0]).init(device),
            fc1: LinearConfig::new(self.output[0], self.output[1]).init(device),
            fc2: LinearConfig::new(self.output[1], shape.pred_len).init(device),
        }
    }

    /// Steps left after the ST-Conv blocks (each removes `2 (kt - 1)`); must be at least 1.
    pub fn remaining_steps(&self, seq_len: usize) -> usize {
        seq_len.saturating_sub(2 * (self.kt - 1) * self.blocks.len())
    }
}

impl STGCN {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        self.forward_with(x, None)
    }

    /// [`STGCN::forward`] with a graph per sample (`[batch, nodes, nodes]` adjacencies).
    pub fn forward_with(&self, x: Tensor<4>, graph: Option<Tensor<3>>) -> Tensor<3> {
        // The scaled Laplacian is symmetric: its transpose is itself.
        let gso_t = graph.map(scaled_laplacian_batch);
        let mut h = x.permute([0, 3, 1, 2]);
        for blk in &self.blocks {
            h = blk.temporal1.forward(h);
            h = relu(blk.graph.forward(h, gso_t.as_ref()));
            h = blk.temporal2.forward(h);
            h = blk.dropout.forward(node_channel_norm(&blk.norm, h));
        }
        let h = node_channel_norm(&self.out_norm, self.out_temporal.forward(h)); // [b, c, 1, n]
        let [b, c, _, n] = h.dims();
        let h = h.reshape([b, c, n]).permute([0, 2, 1]);
        let y = self.fc2.forward(relu(self.fc1.forward(h))); // [b, n, pred_len]
        y.permute([0, 2, 1])
    }
}

impl Architecture for STGCNConfig {
    type Module = STGCN;
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
    fn dynamic_graph(&self) -> bool {
        true
    }
    fn check(&self, shape: &Shape, has_graph: bool) -> Result<(), String> {
        if self.remaining_steps(shape.seq_len) == 0 {
            return Err(format!("stgcn: seq_len {} is too short for {} blocks of kernel {} (each removes {} steps)", shape.seq_len, self.blocks.len(), self.kt, 2 * (self.kt - 1)));
        }
        if !has_graph {
            return Err("stgcn needs a graph: set data.graph or use a dataset that has one".into());
        }
        Ok(())
    }
    fn build(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<STGCN, String> {
        Ok(self.init(shape, adj, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for STGCN {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forward(x)
    }
    fn predict_covariates(&self, x: Tensor<4>, _marks: Option<Marks>, c: Covariates) -> Tensor<3> {
        self.forward(with_past(x, c.past))
    }
    fn predict_graph(&self, x: Tensor<4>, _marks: Option<Marks>, graph: Tensor<3>) -> Tensor<3> {
        self.forward_with(x, Some(graph))
    }
}
