//! MTGNN (Wu et al., "Connecting the Dots", KDD 2020), as the authors' code and BasicTS build it:
//! a graph learner (two node embeddings, `relu(tanh(a (M1 M2^T - M2 M1^T)))` kept at the top-k
//! entries of each row), dilated inception temporal convolutions (kernels 2, 3, 6, 7) with a
//! tanh/sigmoid gate, mix-hop propagation over the learned graph and its transpose, skip
//! connections and layer norm over `[channels, nodes, time]`. MTGNN learns its own graph
//! (`buildA_true`); with `prior = true` a given graph is a prior beside it: every layer adds a
//! mix-hop propagation over that graph and its transpose, and a graph per time step (dynamic
//! graphs) gives each window its own prior. Tensors are `[batch, channels, nodes, time]`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Device, Tensor, TensorData};

use crate::layers::dropout::Dropout;
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, CovariateKinds, Covariates, with_past};

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
    /// STemDist's variant: no per-node parameters. The node embeddings are replaced by two
    /// location encoders run on each location's mean input window, and the layer norm is per
    /// location; one model then forecasts any set of locations ([`MTGNN::forward_located`]).
    pub location_encoder: bool,
    /// Location encoder width and output rank (STemDist: 32 and 10).
    pub encoder_hidden: usize,
    pub encoder_rank: usize,
    /// Propagate over the data's graph too, beside the learned one (needs a graph; takes a
    /// graph per window when the data has one per step).
    pub prior: bool,
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
            location_encoder: false,
            encoder_hidden: 32,
            encoder_rank: 10,
            prior: false,
        }
    }
}

/// STemDist's location encoder: `Linear -> ReLU -> one-head self-attention across locations
/// -> residual + LayerNorm -> Linear` from a location's mean input window to `rank` numbers.
#[derive(Module, Debug)]
pub struct LocationEncoder {
    input: Linear,
    query: Linear,
    key: Linear,
    value: Linear,
    norm: LayerNorm,
    output: Linear,
}

impl LocationEncoder {
    pub fn new(d_in: usize, hidden: usize, rank: usize, device: &Device) -> Self {
        let lin = |a: usize, b: usize| LinearConfig::new(a, b).init(device);
        LocationEncoder { input: lin(d_in, hidden), query: lin(hidden, hidden), key: lin(hidden, hidden), value: lin(hidden, hidden), norm: LayerNormConfig::new(hidden).init(device), output: lin(hidden, rank) }
    }

    /// `[locations, d_in]` -> `[locations, rank]`.
    pub fn forward(&self, loc: Tensor<2>) -> Tensor<2> {
        let h = relu(self.input.forward(loc));
        let d = h.dims()[1] as f64;
        let scores = self.query.forward(h.clone()).matmul(self.key.forward(h.clone()).transpose()) / d.sqrt();
        let att = crate::kernels::softmax::softmax(scores, 1).matmul(self.value.forward(h.clone()));
        self.output.forward(self.norm.forward(h + att))
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
    /// `h_k = a x + (1 - a) step(h_{k-1})` for `depth` steps, then the 1x1 conv over `[h_0..h_K]`.
    fn mix(&self, x: Tensor<4>, step: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        let mut out = vec![h.clone()];
        for _ in 0..self.depth {
            h = x.clone() * self.alpha + step(h) * (1.0 - self.alpha);
            out.push(h.clone());
        }
        self.mlp.forward(Tensor::cat(out, 1))
    }

    /// The same propagation with one adjacency per sample (`[b, n, n]`).
    fn forward_batched(&self, x: Tensor<4>, adj: Tensor<3>) -> Tensor<4> {
        let [b, c, n, t] = x.dims();
        let a = adj + Tensor::<2>::eye(n, &x.device()).unsqueeze_dim::<3>(0);
        let d = a.clone().sum_dim(2);
        let a_t = (a / d).swap_dims(1, 2);
        self.mix(x, |h| h.permute([0, 1, 3, 2]).reshape([b, c * t, n]).matmul(a_t.clone()).reshape([b, c, t, n]).permute([0, 1, 3, 2]))
    }

    fn forward(&self, x: Tensor<4>, adj: Tensor<2>) -> Tensor<4> {
        let n = adj.dims()[0];
        let a = adj + Tensor::eye(n, &x.device());
        let d = a.clone().sum_dim(1);
        // Row-normalised; propagation is h[v] <- sum_w a[v, w] h[w], i.e. h @ a^T on the node axis.
        let a_t = (a / d).transpose();
        let [b, c, _, t] = x.dims();
        self.mix(x, |h| h.permute([0, 1, 3, 2]).reshape([b * c * t, n]).matmul(a_t.clone()).reshape([b, c, t, n]).permute([0, 1, 3, 2]))
    }
}

#[derive(Module, Debug)]
pub struct MTLayer {
    filter: Inception,
    gate: Inception,
    skip: Conv2d,
    gconv1: MixProp,
    gconv2: MixProp,
    /// Over the prior graph and its transpose (`prior = true`).
    gconv3: Option<MixProp>,
    gconv4: Option<MixProp>,
    norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct MTGNN {
    /// Per-node embeddings (MTGNN), or
    emb1: Option<Param<Tensor<2>>>,
    emb2: Option<Param<Tensor<2>>>,
    /// two location encoders (STemDist).
    enc1: Option<LocationEncoder>,
    enc2: Option<LocationEncoder>,
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
    /// The data's graph (a constant), with `prior = true`.
    prior: Option<Tensor<2>>,
}

impl MTGNNConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    /// Input steps the stack sees (shorter inputs are zero-padded on the left).
    pub fn receptive_field(&self) -> usize {
        self.layers * (KERNELS[3] - 1) + 1
    }

    /// `adj`: the data's graph, used when `prior` is set.
    pub fn init(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> MTGNN {
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
                gconv3: self.prior.then(mix),
                gconv4: self.prior.then(mix),
                // Over [channels, nodes, time], or per location over [channels, time].
                norm: LayerNormConfig::new(if self.location_encoder { r * t } else { r * n * t }).init(device),
            });
        }
        let normal = Initializer::Normal { mean: 0.0, std: 1.0 };
        let le = self.location_encoder;
        let dim = if le { self.encoder_rank } else { self.node_dim };
        let enc = || le.then(|| LocationEncoder::new(shape.seq_len * shape.input_features(), self.encoder_hidden, self.encoder_rank, device));
        let emb = || (!le).then(|| normal.init([n, self.node_dim], device));
        MTGNN {
            emb1: emb(),
            emb2: emb(),
            enc1: enc(),
            enc2: enc(),
            lin1: LinearConfig::new(dim, dim).init(device),
            lin2: LinearConfig::new(dim, dim).init(device),
            start: conv(shape.input_features(), r, 1),
            skip0: conv(shape.input_features(), s, t_total),
            layers,
            skip_end: conv(r, s, t),
            end1: conv(s, e, 1),
            end2: conv(e, shape.pred_len, 1),
            dropout: Dropout::new(self.dropout),
            receptive_field: rf,
            subgraph_size: self.subgraph_size.min(n),
            tanhalpha: self.tanhalpha,
            prior: adj.filter(|_| self.prior).map(|a| Tensor::from_data(TensorData::new(a.to_vec(), [n, n]), device)),
        }
    }
}

impl MTGNN {
    /// The learned adjacency `[n, n]`, each row kept at its `subgraph_size` largest entries.
    /// Location-encoder models take the locations' mean input windows `loc` (`[n, seq_len *
    /// features]`); embedding models ignore it.
    pub fn learned_graph(&self) -> Tensor<2> {
        self.graph(None)
    }

    fn graph(&self, loc: Option<Tensor<2>>) -> Tensor<2> {
        let a = self.tanhalpha as f32;
        let (e1, e2) = match (&self.emb1, &self.emb2, &self.enc1, &self.enc2, loc) {
            (Some(e1), Some(e2), ..) => (e1.val(), e2.val()),
            (_, _, Some(a), Some(b), Some(loc)) => (a.forward(loc.clone()), b.forward(loc)),
            _ => panic!("a location-encoder MTGNN needs the locations' mean windows (forward_located)"),
        };
        let m1 = tanh(self.lin1.forward(e1) * a);
        let m2 = tanh(self.lin2.forward(e2) * a);
        let score = m1.clone().matmul(m2.clone().transpose()) - m2.matmul(m1.transpose());
        let adj = relu(tanh(score * a));
        // The top-k mask is a constant of the step (as the reference's scatter of topk indices).
        let n = adj.dims()[0];
        let values: Vec<f32> = adj.clone().into_data().convert::<f32>().try_into_vec().expect("f32 graph");
        let k = self.subgraph_size.min(n);
        let mut mask = vec![0f32; n * n];
        let mut order: Vec<usize> = Vec::with_capacity(n);
        for i in 0..n {
            let row = &values[i * n..(i + 1) * n];
            order.clear();
            order.extend(0..n);
            // Ties (many exact zeros) break by index, where the reference adds 0.01 x uniform noise.
            order.sort_by(|&x, &y| row[y].total_cmp(&row[x]).then(x.cmp(&y)));
            for &j in &order[..k] {
                mask[i * n + j] = 1.0;
            }
        }
        let device = adj.device();
        adj * Tensor::from_data(TensorData::new(mask, [n, n]), &device)
    }

    /// Whether this is STemDist's location-encoder variant.
    pub fn has_location_encoder(&self) -> bool {
        self.enc1.is_some()
    }

    /// `x`: `[batch, seq_len, nodes, features]` -> `[batch, pred_len, nodes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        self.forward_with(x, None)
    }

    /// The location-encoder variant's forecast of any set of locations: `loc` is each location's
    /// mean input window over the training windows, `[nodes, seq_len * features]`.
    pub fn forward_located(&self, x: Tensor<4>, loc: Tensor<2>) -> Tensor<3> {
        self.forward_with(x, Some(loc))
    }

    /// The location-encoder variant's last hidden features (after the first end convolution
    /// and its ReLU), `[batch, end_channels, nodes]`: the embedding distribution matching (DM)
    /// compares.
    pub fn embed_located(&self, x: Tensor<4>, loc: Tensor<2>) -> Tensor<3> {
        let e = self.hidden(x, Some(loc), None);
        let [b, c, n, _] = e.dims();
        e.reshape([b, c, n])
    }

    fn forward_with(&self, x: Tensor<4>, loc: Option<Tensor<2>>) -> Tensor<3> {
        self.forward_prior(x, loc, None)
    }

    /// With each window's prior graph (`[b, n, n]`) in place of the static one.
    fn forward_prior(&self, x: Tensor<4>, loc: Option<Tensor<2>>, graph: Option<Tensor<3>>) -> Tensor<3> {
        let y = self.end2.forward(self.hidden(x, loc, graph)); // [b, pred_len, n, 1]
        let [b, hz, n, _] = y.dims();
        y.reshape([b, hz, n])
    }

    fn hidden(&self, x: Tensor<4>, loc: Option<Tensor<2>>, graph: Option<Tensor<3>>) -> Tensor<4> {
        let per_location = self.has_location_encoder();
        let adj = self.graph(loc);
        let mut x = x.permute([0, 3, 2, 1]); // [b, f, n, l]
        let [b, f, n, l] = x.dims();
        if l < self.receptive_field {
            x = Tensor::cat(vec![Tensor::zeros([b, f, n, self.receptive_field - l], &x.device()), x], 3);
        }
        let mut skip = self.skip0.forward(self.dropout.forward(x.clone()));
        let mut h = self.start.forward(x);
        for layer in &self.layers {
            let residual = h.clone();
            let g = tanh(layer.filter.forward(h.clone())) * sigmoid(layer.gate.forward(h));
            let g = self.dropout.forward(g);
            skip = layer.skip.forward(g.clone()) + skip;
            let t = g.dims()[3];
            let mut y = layer.gconv1.forward(g.clone(), adj.clone()) + layer.gconv2.forward(g.clone(), adj.clone().transpose());
            if let (Some(g3), Some(g4)) = (&layer.gconv3, &layer.gconv4) {
                y = y + match (&graph, &self.prior) {
                    (Some(w), _) => g3.forward_batched(g.clone(), w.clone()) + g4.forward_batched(g, w.clone().swap_dims(1, 2)),
                    (None, Some(p)) => g3.forward(g.clone(), p.clone()) + g4.forward(g, p.clone().transpose()),
                    (None, None) => panic!("mtgnn with prior = true needs a graph"),
                };
            }
            let rt = residual.dims()[3];
            let y = y + residual.narrow(3, rt - t, t);
            let [_, c, _, _] = y.dims();
            h = if per_location {
                layer.norm.forward(y.permute([0, 2, 1, 3]).reshape([b, n, c * t])).reshape([b, n, c, t]).permute([0, 2, 1, 3])
            } else {
                layer.norm.forward(y.reshape([b, c * n * t])).reshape([b, c, n, t])
            };
        }
        let skip = self.skip_end.forward(h) + skip;
        relu(self.end1.forward(relu(skip)))
    }
}

impl Architecture for MTGNNConfig {
    type Module = MTGNN;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    /// Past-observed covariates, as further input features of every node.
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds::PAST
    }
    fn needs_graph(&self) -> bool {
        self.prior
    }
    fn dynamic_graph(&self) -> bool {
        self.prior
    }
    fn check(&self, _shape: &Shape, has_graph: bool) -> Result<(), String> {
        if self.prior && !has_graph {
            return Err("mtgnn with model.prior = true propagates over the data's graph too: set data.graph (or data.coordinates), or leave prior off to learn the graph alone".into());
        }
        if self.location_encoder {
            return Err("mtgnn with location_encoder = true is STemDist's backbone: it forecasts from each location's mean window and trains through `strata distill`".into());
        }
        Ok(())
    }
    fn build(&self, shape: Shape, adj: Option<&[f32]>, device: &Device) -> Result<MTGNN, String> {
        Ok(self.init(shape, adj, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for MTGNN {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forward(x)
    }
    fn predict_covariates(&self, x: Tensor<4>, _marks: Option<Marks>, c: Covariates) -> Tensor<3> {
        self.forward(with_past(x, c.past))
    }
    fn predict_graph(&self, x: Tensor<4>, _marks: Option<Marks>, graph: Tensor<3>) -> Tensor<3> {
        self.forward_prior(x, None, Some(graph))
    }
    fn learned_adjacency(&self) -> Option<Tensor<2>> {
        Some(self.learned_graph())
    }
}
