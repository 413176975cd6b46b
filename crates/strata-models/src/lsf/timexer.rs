//! TimeXer (Wang et al., "TimeXer: Empowering Transformers for Time Series Forecasting with
//! Exogenous Variables", NeurIPS 2024), as Time-Series-Library builds it.
//!
//! Each endogenous series (a forecast channel) is cut into non-overlapping patches, embedded
//! (a bias-free linear map plus sinusoidal positions) and joined by a learnable global token of
//! its own. Each exogenous variable becomes one token: its whole look-back window embedded by a
//! linear map (iTransformer's inverted embedding). An encoder layer runs self-attention over a
//! series' patch tokens and global token, then cross-attention from the global token to the
//! exogenous tokens, then a feed-forward block; a flattening head maps the tokens to the horizon.
//!
//! The exogenous tokens are: the past-observed covariates, the look-back rows of the
//! future-known covariates, and the calendar marks (TSLib's `x_mark_enc`); and, when more than
//! one series is forecast, every series itself (TSLib's multivariate `M` mode). TSLib's `MS`
//! mode (the target forecast from the other columns) is `features = "S"` with the other columns
//! as `data.covariates.past`. Per-series covariates (a long table's) join only their own series'
//! tokens. TimeXer reads covariates over the look-back only, as its paper does.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::api::{Architecture, Capabilities, CovariateKinds, Covariates, Forecast, Marks, Shape, per_channel, values};
use crate::layers::Activation;
use crate::layers::attention::SelfAttention;
use crate::layers::dropout::Dropout;
use crate::layers::revin::standardise as normalise;

/// TimeXer hyper-parameters (TSLib's defaults; its ETTh1 96->96 script sets d_model 256,
/// e_layers 1, batch size 4).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeXerConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub d_ff: usize,
    pub e_layers: usize,
    pub dropout: f64,
    /// Patch length (and stride): `seq_len` must be a multiple of it.
    pub patch_len: usize,
    /// Normalise each variable's window (mean, std) and undo it on the forecast.
    pub use_norm: bool,
    /// The feed-forward activation (TSLib's default `gelu`; neuralforecast's build uses `relu`).
    pub activation: Activation,
}

impl Default for TimeXerConfig {
    fn default() -> Self {
        TimeXerConfig { d_model: 512, n_heads: 8, d_ff: 2048, e_layers: 2, dropout: 0.1, patch_len: 16, use_norm: true, activation: Activation::Gelu }
    }
}

#[derive(Module, Debug)]
pub struct Layer {
    self_attn: SelfAttention,
    cross_attn: SelfAttention,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm3: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    dropout: Dropout,
    /// ReLU in the feed-forward block (else GELU).
    relu: bool,
}

impl Layer {
    /// `x`: `[rows, patches + 1, d]` (the global token last), `exo`: `[rows, tokens, d]`.
    fn forward(&self, x: Tensor<3>, exo: Tensor<3>) -> Tensor<3> {
        let [rows, t, d] = x.dims();
        let x = self.norm1.forward(x.clone() + self.dropout.forward(self.self_attn.forward(x, None).context));
        let global = x.clone().narrow(1, t - 1, 1);
        // The second norm is the global token's only (TSLib's `norm2(x_glb)`); the patch tokens
        // keep the first's.
        let global = self.norm2.forward(global.clone() + self.dropout.forward(self.cross_attn.cross(global, exo)));
        let x = Tensor::cat(vec![x.narrow(1, 0, t - 1), global], 1);
        let act = if self.relu { Activation::Relu } else { Activation::Gelu };
        let y = self.dropout.forward(act.apply(self.ff1.forward(x.clone())));
        let y = self.dropout.forward(self.ff2.forward(y));
        debug_assert_eq!(y.dims(), [rows, t, d]);
        self.norm3.forward(x + y)
    }
}

#[derive(Module, Debug)]
pub struct TimeXer {
    patch_embed: Linear,
    position: Tensor<2>,
    /// One global token per series: `[channels, d_model]`.
    global: Param<Tensor<2>>,
    exo_embed: Linear,
    dropout: Dropout,
    layers: Vec<Layer>,
    norm: LayerNorm,
    head: Linear,
    patch_len: usize,
    pred_len: usize,
    use_norm: bool,
}

impl Architecture for TimeXerConfig {
    type Module = TimeXer;
    fn capabilities(&self) -> Capabilities {
        Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false }
    }
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds { past: true, future: true, statics: false }
    }
    fn check(&self, shape: &Shape, _has_graph: bool) -> Result<(), String> {
        if self.patch_len == 0 || shape.seq_len % self.patch_len != 0 {
            return Err(format!("timexer: seq_len {} is not a multiple of model.patch_len {}", shape.seq_len, self.patch_len));
        }
        shape.covariates.check_groups("timexer", shape.channels)?;
        if self.d_model % self.n_heads != 0 {
            return Err(format!("timexer: d_model {} is not a multiple of n_heads {}", self.d_model, self.n_heads));
        }
        Ok(())
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<TimeXer, String> {
        self.check(&shape, false)?;
        let (d, p) = (self.d_model, shape.seq_len / self.patch_len);
        let attn = || SelfAttention::new(d, self.n_heads, self.dropout, 0.0, device);
        Ok(TimeXer {
            patch_embed: LinearConfig::new(self.patch_len, d).with_bias(false).init(device),
            position: Tensor::from_data(TensorData::new(crate::layers::sinusoid(p, d), [p, d]), device),
            global: Initializer::Normal { mean: 0.0, std: 1.0 }.init([shape.channels, d], device),
            exo_embed: LinearConfig::new(shape.seq_len, d).init(device),
            dropout: Dropout::new(self.dropout),
            layers: (0..self.e_layers)
                .map(|_| Layer {
                    self_attn: attn(),
                    cross_attn: attn(),
                    norm1: LayerNormConfig::new(d).init(device),
                    norm2: LayerNormConfig::new(d).init(device),
                    norm3: LayerNormConfig::new(d).init(device),
                    ff1: LinearConfig::new(d, self.d_ff).init(device),
                    ff2: LinearConfig::new(self.d_ff, d).init(device),
                    dropout: Dropout::new(self.dropout),
                    relu: self.activation == Activation::Relu,
                })
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d * (p + 1), shape.pred_len).init(device),
            patch_len: self.patch_len,
            pred_len: shape.pred_len,
            use_norm: self.use_norm,
        })
    }
    fn examples() -> Vec<Self> {
        vec![TimeXerConfig { d_model: 32, n_heads: 4, d_ff: 64, e_layers: 1, patch_len: 4, ..Self::default() }]
    }
}

impl TimeXer {
    /// `x`: `[batch, seq_len, channels]` -> `[batch, pred_len, channels]`.
    pub fn forward(&self, x: Tensor<3>, marks: Option<Marks>, cov: Covariates) -> Tensor<3> {
        let [b, l, c] = x.dims();
        let (x, stats) = if self.use_norm {
            let (xn, mean, std) = normalise(x);
            (xn, Some((mean, std)))
        } else {
            (x, None)
        };
        let d = self.position.dims()[1];
        let p = l / self.patch_len;
        // Endogenous: patches of every series, then its global token.
        let patches = x.clone().permute([0, 2, 1]).reshape([b * c, p, self.patch_len]);
        let patches = self.patch_embed.forward(patches) + self.position.clone().unsqueeze_dim::<3>(0);
        let global = self.global.val().unsqueeze_dim::<3>(0).repeat_dim(0, b).reshape([b * c, 1, d]);
        let mut h = self.dropout.forward(Tensor::cat(vec![patches, global], 1));
        // Exogenous tokens of every series: `[b * c, tokens, seq_len]`.
        let mut tokens: Vec<Tensor<3>> = Vec::new();
        let norm = |t: Tensor<3>| if self.use_norm { normalise(t).0 } else { t };
        if c > 1 {
            tokens.push(x.clone().permute([0, 2, 1]).unsqueeze_dim::<4>(1).repeat_dim(1, c).reshape([b * c, c, l]));
        }
        for t in [cov.past, cov.future.map(|f| f.narrow(1, 0, l))].into_iter().flatten() {
            tokens.push(norm(per_channel(t, c)).permute([0, 2, 1]));
        }
        if let Some(m) = marks {
            let k = m.x.dims()[2];
            tokens.push(m.x.permute([0, 2, 1]).unsqueeze_dim::<4>(1).repeat_dim(1, c).reshape([b * c, k, l]));
        }
        if tokens.is_empty() {
            // Nothing exogenous at all: the series' own window is its one token.
            tokens.push(x.permute([0, 2, 1]));
        }
        let exo = self.dropout.forward(self.exo_embed.forward(Tensor::cat(tokens, 1)));
        for layer in &self.layers {
            h = layer.forward(h, exo.clone());
        }
        let h = self.norm.forward(h).permute([0, 2, 1]).reshape([b * c, d * (p + 1)]);
        let y = self.dropout.forward(self.head.forward(h)).reshape([b, c, self.pred_len]).permute([0, 2, 1]);
        match stats {
            Some((mean, std)) => y * std + mean,
            None => y,
        }
    }
}

impl Forecast for TimeXer {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        self.forward(values(x), marks, Covariates::default())
    }
    fn predict_covariates(&self, x: Tensor<4>, marks: Option<Marks>, covariates: Covariates) -> Tensor<3> {
        self.forward(values(x), marks, covariates)
    }
}
