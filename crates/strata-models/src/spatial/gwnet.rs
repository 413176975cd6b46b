//! Graph WaveNet (Wu et al., IJCAI 2019), as the authors' code and BasicTS build it: gated
//! dilated causal convolutions (kernel 2, dilations 1, 2 per block), skip connections, and after
//! each layer a diffusion convolution of order 2 over the forward and backward transition
//! matrices plus a self-adaptive adjacency `softmax(relu(E1 E2))` learned from node embeddings.
//! Tensors are `[batch, channels, nodes, time]`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use crate::layers::dropout::Dropout;
use crate::spatial::graph_ops::{tensor, transition, transition_batch, transpose};
use crate::kernels::softmax::softmax;
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, CovariateKinds, Covariates, with_past};

/// Graph WaveNet hyper-parameters (the paper's / BasicTS defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GWNetConfig {
    pub residual_channels: usize,
    pub dilation_channels: usize,
    pub skip_channels: usize,
    pub end_channels: usize,
    pub kernel_size: usize,
    pub blocks: usize,
    pub layers: usize,
    pub dropout: f64,
    /// Learn the self-adaptive adjacency.
    pub adaptive: bool,
    /// Width of the node embeddings behind the adaptive adjacency.
    pub embed_dim: usize,
    /// Diffusion steps.
    pub order: usize,
}

impl Default for GWNetConfig {
    fn default() -> Self {
        GWNetConfig {
            residual_channels: 32,
            dilation_channels: 32,
            skip_channels: 256,
            end_channels: 512,
            kernel_size: 2,
            blocks: 4,
            layers: 2,
            dropout: 0.3,
            adaptive: true,
            embed_dim: 10,
            order: 2,
        }
    }
}

#[derive(Module, Debug)]
pub struct GWLayer {
    filter: Conv2d,
    gate: Conv2d,
    skip: Conv2d,
    mlp: Conv2d,
    bn: BatchNorm,
}

#[derive(Module, Debug)]
pub struct GWNet {
    start: Conv2d,
    layers: Vec<GWLayer>,
    end1: Conv2d,
    end2: Conv2d,
    dropout: Dropout,
    nodevec1: Option<Param<Tensor<2>>>,
    nodevec2: Option<Param<Tensor<2>>>,
    /// Fixed supports: forward and backward transition matrices (constants).
    supports: Vec<Tensor<2>>,
    receptive_field: usize,
    order: usize,
}

impl GWNetConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn receptive_field(&self) -> usize {
        let per_block: usize = (0..self.layers).map(|i| (self.kernel_size - 1) << i).sum();
        1 + self.blocks * per_block
    }

    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> GWNet {
        let n = shape.channels;
        let supports: Vec<Tensor<2>> = match adj {
            Some(a) => vec![tensor(transition(a, n), n, device), tensor(transition(&transpose(a, n), n), n, device)],
            None => vec![],
        };
        assert!(self.adaptive || !supports.is_empty(), "gwnet needs a graph (data.graph) or model.adaptive = true");
        let support_len = supports.len() + self.adaptive as usize;
        let (r, d, s, e) = (self.residual_channels, self.dilation_channels, self.skip_channels, self.end_channels);
        let conv1 = |a: usize, b: usize| Conv2dConfig::new([a, b], [1, 1]).init(device);
        let mut layers = Vec::new();
        for _ in 0..self.blocks {
            for i in 0..self.layers {
                let dil = 1 << i;
                let dconv = || Conv2dConfig::new([r, d], [1, self.kernel_size]).with_dilation([1, dil]).init(device);
                layers.push(GWLayer {
                    filter: dconv(),
                    gate: dconv(),
                    skip: conv1(d, s),
                    mlp: conv1((self.order * support_len + 1) * d, r),
                    bn: BatchNormConfig::new(r).init(device),
                });
            }
        }
        let normal = Initializer::Normal { mean: 0.0, std: 1.0 };
        GWNet {
            start: conv1(shape.input_features(), r),
            layers,
            end1: conv1(s, e),
            end2: conv1(e, shape.pred_len),
            dropout: Dropout::new(self.dropout),
            nodevec1: self.adaptive.then(|| normal.init([n, self.embed_dim], device)),
            nodevec2: self.adaptive.then(|| normal.init([self.embed_dim, n], device)),
            supports,
            receptive_field: self.receptive_field(),
            order: self.order,
        }
    }
}

/// `einsum('ncvl,vw->ncwl', x, a)`: out[.., w, ..] = sum_v a[v, w] x[.., v, ..].
/// A support: one matrix for every sample, or one per sample (dynamic graphs).
#[derive(Clone)]
enum Support {
    Shared(Tensor<2>),
    PerSample(Tensor<3>),
}

fn nconv(x: Tensor<4>, a: &Support) -> Tensor<4> {
    let [b, c, v, l] = x.dims();
    let rows = x.permute([0, 1, 3, 2]);
    match a {
        Support::Shared(a) => rows.reshape([b * c * l, v]).matmul(a.clone()).reshape([b, c, l, v]).permute([0, 1, 3, 2]),
        Support::PerSample(a) => rows.reshape([b, c * l, v]).matmul(a.clone()).reshape([b, c, l, v]).permute([0, 1, 3, 2]),
    }
}

impl GWNet {
    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`.
    /// The self-adaptive adjacency `softmax(relu(E1 E2))` (rows sum to 1), if learned.
    pub fn adaptive_adjacency(&self) -> Option<Tensor<2>> {
        let (e1, e2) = (self.nodevec1.as_ref()?, self.nodevec2.as_ref()?);
        Some(softmax(relu(e1.val().matmul(e2.val())), 1))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        self.forward_with(x, None)
    }

    /// [`GWNet::forward`] with a graph per sample (`[batch, nodes, nodes]` adjacencies): its
    /// forward and backward transition matrices replace the static supports.
    pub fn forward_with(&self, x: Tensor<4>, graph: Option<Tensor<3>>) -> Tensor<3> {
        let mut supports: Vec<Support> = match graph {
            Some(g) => vec![Support::PerSample(transition_batch(g.clone())), Support::PerSample(transition_batch(g.swap_dims(1, 2)))],
            None => self.supports.iter().cloned().map(Support::Shared).collect(),
        };
        supports.extend(self.adaptive_adjacency().map(Support::Shared));
        let mut x = x.permute([0, 3, 2, 1]); // [b, f, n, l]
        let [b, f, n, l] = x.dims();
        if l < self.receptive_field {
            let pad = Tensor::zeros([b, f, n, self.receptive_field - l], &x.device());
            x = Tensor::cat(vec![pad, x], 3);
        }
        let mut x = self.start.forward(x);
        let mut skip: Option<Tensor<4>> = None;
        for layer in &self.layers {
            let residual = x.clone();
            let h = tanh(layer.filter.forward(residual.clone())) * sigmoid(layer.gate.forward(residual.clone()));
            let s = layer.skip.forward(h.clone());
            let t = s.dims()[3];
            skip = Some(match skip {
                Some(prev) => {
                    let pt = prev.dims()[3];
                    s + prev.narrow(3, pt - t, t)
                }
                None => s,
            });
            let mut out = vec![h.clone()];
            for a in &supports {
                let mut x1 = nconv(h.clone(), a);
                out.push(x1.clone());
                for _ in 1..self.order {
                    x1 = nconv(x1, a);
                    out.push(x1.clone());
                }
            }
            let g = self.dropout.forward(layer.mlp.forward(Tensor::cat(out, 1)));
            let rt = residual.dims()[3];
            x = layer.bn.forward(g + residual.narrow(3, rt - t, t));
        }
        let skip = skip.expect("at least one layer");
        let y = self.end2.forward(relu(self.end1.forward(relu(skip)))); // [b, pred_len, n, t]
        let [_, h, _, t] = y.dims();
        y.narrow(3, t - 1, 1).reshape([b, h, n])
    }
}

impl Architecture for GWNetConfig {
    type Module = GWNet;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    /// Past-observed covariates, as further input features of every node.
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds::PAST
    }
    fn dynamic_graph(&self) -> bool {
        true
    }
    fn check(&self, _shape: &Shape, has_graph: bool) -> Result<(), String> {
        if !has_graph && !self.adaptive {
            return Err("gwnet without a graph needs model.adaptive = true".into());
        }
        Ok(())
    }
    fn build(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<GWNet, String> {
        Ok(self.init(shape, adj, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for GWNet {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forward(x)
    }
    fn predict_covariates(&self, x: Tensor<4>, _marks: Option<Marks>, c: Covariates) -> Tensor<3> {
        self.forward(with_past(x, c.past))
    }
    fn predict_graph(&self, x: Tensor<4>, _marks: Option<Marks>, graph: Tensor<3>) -> Tensor<3> {
        self.forward_with(x, Some(graph))
    }
    fn learned_adjacency(&self) -> Option<Tensor<2>> {
        self.adaptive_adjacency()
    }
}
