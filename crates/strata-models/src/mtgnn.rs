//! MTGNN (Wu et al., "Connecting the Dots", KDD 2020), as the authors' code and BasicTS build it:
//! a graph learner (two node embeddings, `relu(tanh(a (M1 M2^T - M2 M1^T)))` kept at the top-k
//! entries of each row), dilated inception temporal convolutions (kernels 2, 3, 6, 7) with a
//! tanh/sigmoid gate, mix-hop propagation over the learned graph and its transpose, skip
//! connections and layer norm over `[channels, nodes, time]`. A given graph, if any, is not used:
//! MTGNN learns its own (`buildA_true`). Tensors are `[batch, channels, nodes, time]`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Device, Tensor, TensorData};

use crate::dropout::Dropout;
use crate::{Capabilities, Shape};

/// MTGNN hyper-parameters (the paper's / BasicTS defaults for METR-LA).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MTGNNConfig {
    /// Mix-hop propagation depth.
    pub gcn_depth: usize,
    /// Neighbours kept per node in the learned graph (top-k).
    pub subgraph_size: usize,
    pub node_dim: usize,
    pub conv_channels: usize,
    pub residual_channels: usize,
    pub skip_channels: usize,
    pub end_channels: usize,
    pub layers: usize,
    /// Retained share of the input in each propagation step.
    pub propalpha: f64,
    /// Saturation of the graph learner.
    pub tanhalpha: f64,
    pub dropout: f64,
}

impl Default for MTGNNConfig {
    fn default() -> Self {
        MTGNNConfig {
            gcn_depth: 2,
            subgraph_size: 20,
            node_dim: 40,
            conv_channels: 32,
            residual_channels: 32,
            skip_channels: 64,
            end_channels: 128,
            layers: 3,
            propalpha: 0.05,
            tanhalpha: 3.0,
            dropout: 0.3,
        }
    }
}

const KERNELS: [usize; 4] = [2, 3, 6, 7];

/// Four dilated convolutions of kernels 2, 3, 6, 7 side by side, cut to the shortest output.
#[derive(Module, Debug)]
pub struct Inception {
    convs: Vec<Conv2d>,
}

impl Inception {
    fn new(c_in: usize, c_out: usize, dilation: usize, device: &Device) -> Self {
        let each = c_out / KERNELS.len();
        Inception { convs: KERNELS.iter().map(|&k| Conv2dConfig::new([c_in, each], [1, k]).with_dilation([1, dilation]).init(device)).collect() }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let outs: Vec<Tensor<4>> = self.convs.iter().map(|c| c.forward(x.clone())).collect();
        let t = outs.last().expect("four kernels").dims()[3];
        Tensor::cat(outs.into_iter().map(|o| { let ot = o.dims()[3]; o.narrow(3, ot - t, t) }).collect(), 1)
    }
}

/// Mix-hop propagation: `h_k = a x + (1 - a) A_norm h_{k-1}`, then a 1x1 conv over `[h_0..h_K]`.
#[derive(Module, Debug)]
pub struct MixProp {
    mlp: Conv2d,
    depth: usize,
    alpha: f64,
}

impl MixProp {
    fn forward(&self, x: Tensor<4>, adj: Tensor<2>) -> Tensor<4> {
        let n = adj.dims()[0];
        let a = adj + Tensor::eye(n, &x.device());
        let d = a.clone().sum_dim(1);
        // Row-normalised; propagation is h[v] <- sum_w a[v, w] h[w], i.e. h @ a^T on the node axis.
        let a_t = (a / d).transpose();
        let [b, c, _, t] = x.dims();
        let rows = |h: Tensor<4>| h.permute([0, 1, 3, 2]).reshape([b * c * t, n]);
        let back = |r: Tensor<2>| r.reshape([b, c, t, n]).permute([0, 1, 3, 2]);
        let mut h = x.clone();
        let mut out = vec![h.clone()];
        for _ in 0..self.depth {
            h = x.clone() * self.alpha + back(rows(h).matmul(a_t.clone())) * (1.0 - self.alpha);
            out.push(h.clone());
        }
        self.mlp.forward(Tensor::cat(out, 1))
    }
}

#[derive(Module, Debug)]
pub struct MTLayer {
    filter: Inception,
    gate: Inception,
    skip: Conv2d,
    gconv1: MixProp,
    gconv2: MixProp,
    norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct MTGNN {
    emb1: Param<Tensor<2>>,
    emb2: Param<Tensor<2>>,
    lin1: Linear,
    lin2: Linear,
    start: Conv2d,
    skip0: Conv2d,
    layers: Vec<MTLayer>,
    skip_end: Conv2d,
    end1: Conv2d,
    end2: Conv2d,
    dropout: Dropout,
    receptive_field: usize,
    subgraph_size: usize,
    tanhalpha: f64,
}

impl MTGNNConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    /// Input steps the stack sees (shorter inputs are zero-padded on the left).
    pub fn receptive_field(&self) -> usize {
        self.layers * (KERNELS[3] - 1) + 1
    }

    pub fn init(&self, shape: Shape, device: &Device) -> MTGNN {
        let n = shape.channels;
        let rf = self.receptive_field();
        let t_total = shape.seq_len.max(rf);
        let (r, c, s, e) = (self.residual_channels, self.conv_channels, self.skip_channels, self.end_channels);
        let conv = |a: usize, b: usize, k: usize| Conv2dConfig::new([a, b], [1, k]).init(device);
        let mut t = t_total;
        let mut layers = Vec::new();
        for _ in 0..self.layers {
            t -= KERNELS[3] - 1;
            let mix = || MixProp { mlp: conv((self.gcn_depth + 1) * c, r, 1), depth: self.gcn_depth, alpha: self.propalpha };
            layers.push(MTLayer {
                filter: Inception::new(r, c, 1, device),
                gate: Inception::new(r, c, 1, device),
                skip: conv(c, s, t),
                gconv1: mix(),
                gconv2: mix(),
                norm: LayerNormConfig::new(r * n * t).init(device),
            });
        }
        let normal = Initializer::Normal { mean: 0.0, std: 1.0 };
        MTGNN {
            emb1: normal.init([n, self.node_dim], device),
            emb2: normal.init([n, self.node_dim], device),
            lin1: LinearConfig::new(self.node_dim, self.node_dim).init(device),
            lin2: LinearConfig::new(self.node_dim, self.node_dim).init(device),
            start: conv(shape.features, r, 1),
            skip0: conv(shape.features, s, t_total),
            layers,
            skip_end: conv(r, s, t),
            end1: conv(s, e, 1),
            end2: conv(e, shape.pred_len, 1),
            dropout: Dropout::new(self.dropout),
            receptive_field: rf,
            subgraph_size: self.subgraph_size.min(n),
            tanhalpha: self.tanhalpha,
        }
    }
}

impl MTGNN {
    /// The learned adjacency `[n, n]`, each row kept at its `subgraph_size` largest entries.
    pub fn learned_graph(&self) -> Tensor<2> {
        let a = self.tanhalpha as f32;
        let m1 = tanh(self.lin1.forward(self.emb1.val()) * a);
        let m2 = tanh(self.lin2.forward(self.emb2.val()) * a);
        let score = m1.clone().matmul(m2.clone().transpose()) - m2.matmul(m1.transpose());
        let adj = relu(tanh(score * a));
        // The top-k mask is a constant of the step (as the reference's scatter of topk indices).
        let n = adj.dims()[0];
        let values: Vec<f32> = adj.clone().into_data().convert::<f32>().try_into_vec().expect("f32 graph");
        let mut mask = vec![0f32; n * n];
        let mut order: Vec<usize> = Vec::with_capacity(n);
        for i in 0..n {
            let row = &values[i * n..(i + 1) * n];
            order.clear();
            order.extend(0..n);
            // Ties (many exact zeros) break by index, where the reference adds 0.01 x uniform noise.
            order.sort_by(|&x, &y| row[y].total_cmp(&row[x]).then(x.cmp(&y)));
            for &j in &order[..self.subgraph_size] {
                mask[i * n + j] = 1.0;
            }
        }
        adj * Tensor::from_data(TensorData::new(mask, [n, n]), &self.emb1.device())
    }

    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let mut x = x.permute([0, 3, 2, 1]); // [b, f, n, l]
        let [b, f, n, l] = x.dims();
        if l < self.receptive_field {
            x = Tensor::cat(vec![Tensor::zeros([b, f, n, self.receptive_field - l], &x.device()), x], 3);
        }
        let adj = self.learned_graph();
        let mut skip = self.skip0.forward(self.dropout.forward(x.clone()));
        let mut h = self.start.forward(x);
        for layer in &self.layers {
            let residual = h.clone();
            let g = tanh(layer.filter.forward(h.clone())) * sigmoid(layer.gate.forward(h));
            let g = self.dropout.forward(g);
            skip = layer.skip.forward(g.clone()) + skip;
            let t = g.dims()[3];
            let y = layer.gconv1.forward(g.clone(), adj.clone()) + layer.gconv2.forward(g, adj.clone().transpose());
            let rt = residual.dims()[3];
            let y = y + residual.narrow(3, rt - t, t);
            let [_, c, _, _] = y.dims();
            h = layer.norm.forward(y.reshape([b, c * n * t])).reshape([b, c, n, t]);
        }
        let skip = self.skip_end.forward(h) + skip;
        let y = self.end2.forward(relu(self.end1.forward(relu(skip)))); // [b, pred_len, n, 1]
        let hz = y.dims()[1];
        y.reshape([b, hz, n])
    }
}
