//! iTransformer (Liu et al., ICLR 2024), as Time-Series-Library and the authors' code build it:
//! each variate's whole window is one token (a linear embedding of its `seq_len` values, after
//! per-variate normalisation); calendar features join as extra tokens; a Transformer encoder
//! (post-norm, GELU feed-forward) attends across variates; a linear head maps each token to the
//! horizon, and the forecast is de-normalised. Covariates join as more variate tokens, as the
//! paper treats exogenous series: the past-observed ones and the look-back rows of the
//! future-known ones, each normalised over its window like the series.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::layers::attention::SelfAttention;
use crate::layers::dropout::Dropout;
use crate::kernels::gelu::gelu;
use crate::api::{Architecture, Capabilities, CovariateKinds, Covariates, Forecast, Marks, Shape, values};

/// iTransformer hyper-parameters (TSLib defaults; the ETTh1 script sets d_model = d_ff = 128).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ITransformerConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub d_ff: usize,
    pub e_layers: usize,
    pub dropout: f64,
    /// Normalise each variate's window (mean, std) and undo it on the forecast.
    pub use_norm: bool,
    /// Add the calendar features as tokens (TSLib passes `x_mark_enc`).
    pub use_marks: bool,
}

impl Default for ITransformerConfig {
    fn default() -> Self {
        ITransformerConfig { d_model: 512, n_heads: 8, d_ff: 2048, e_layers: 2, dropout: 0.1, use_norm: true, use_marks: true }
    }
}

#[derive(Module, Debug)]
pub struct Layer {
    attn: SelfAttention,
    norm1: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    norm2: LayerNorm,
    dropout: Dropout,
}

impl Layer {
    fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let a = self.attn.forward(x.clone(), None);
        let x = self.norm1.forward(x + self.dropout.forward(a.context));
        let y = self.dropout.forward(gelu(self.ff1.forward(x.clone())));
        let y = self.dropout.forward(self.ff2.forward(y));
        (self.norm2.forward(x + y), a.weights)
    }
}

#[derive(Module, Debug)]
pub struct ITransformer {
    embed: Linear,
    dropout: Dropout,
    layers: Vec<Layer>,
    norm: LayerNorm,
    head: Linear,
    use_norm: bool,
    use_marks: bool,
}

impl ITransformerConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: true };

    pub fn init(&self, shape: Shape, device: &Device) -> ITransformer {
        let d = self.d_model;
        ITransformer {
            embed: LinearConfig::new(shape.seq_len, d).init(device),
            dropout: Dropout::new(self.dropout),
            layers: (0..self.e_layers)
                .map(|_| Layer {
                    attn: SelfAttention::new(d, self.n_heads, self.dropout, 0.0, device),
                    norm1: LayerNormConfig::new(d).init(device),
                    ff1: LinearConfig::new(d, self.d_ff).init(device),
                    ff2: LinearConfig::new(self.d_ff, d).init(device),
                    norm2: LayerNormConfig::new(d).init(device),
                    dropout: Dropout::new(self.dropout),
                })
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, shape.pred_len).init(device),
            use_norm: self.use_norm,
            use_marks: self.use_marks,
        }
    }
}

impl ITransformer {
    /// `x`: `[batch, seq_len, variates]`, `marks`: `[batch, seq_len, m]` -> `[batch, pred_len, variates]`.
    pub fn forward(&self, x: Tensor<3>, marks: Option<Tensor<3>>) -> Tensor<3> {
        self.forward_with_attention(x, marks, None).0
    }

    /// The covariates as variate tokens `[batch, seq_len, k]`: every group's past-observed
    /// covariates, then the look-back rows of its future-known ones; `None` without any.
    fn covariate_tokens(cov: Covariates, seq_len: usize) -> Option<Tensor<3>> {
        let flat = |t: Tensor<4>| {
            let [b, l, g, k] = t.dims();
            t.reshape([b, l, g * k])
        };
        let parts: Vec<Tensor<3>> = [cov.past, cov.future.map(|f| f.narrow(1, 0, seq_len))].into_iter().flatten().map(flat).collect();
        (!parts.is_empty()).then(|| Tensor::cat(parts, 2))
    }

    /// Forecast and every layer's attention weights between variate tokens (`[batch, heads,
    /// tokens, tokens]`: the series, then the covariates, then the calendar features).
    pub fn forward_with_attention(&self, x: Tensor<3>, marks: Option<Tensor<3>>, covariates: Option<Tensor<3>>) -> (Tensor<3>, Vec<Tensor<4>>) {
        let [_, _, n] = x.dims();
        // Covariate tokens follow the series (normalised alike); the head reads the first `n`.
        let x = match covariates {
            Some(c) => Tensor::cat(vec![x, c], 2),
            None => x,
        };
        let (x, stats) = if self.use_norm {
            let mean = x.clone().mean_dim(1);
            let centred = x - mean.clone();
            let std = (centred.clone().powi_scalar(2).mean_dim(1) + 1e-5).sqrt();
            (centred / std.clone(), Some((mean, std)))
        } else {
            (x, None)
        };
        let tokens = match marks.filter(|_| self.use_marks) {
            Some(m) => Tensor::cat(vec![x, m], 2),
            None => x,
        };
        let mut h = self.dropout.forward(self.embed.forward(tokens.permute([0, 2, 1])));
        let mut maps = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (out, w) = layer.forward(h);
            maps.push(w);
            h = out;
        }
        let y = self.head.forward(self.norm.forward(h)).permute([0, 2, 1]).narrow(2, 0, n);
        let y = match stats {
            Some((mean, std)) => y * std.narrow(2, 0, n) + mean.narrow(2, 0, n),
            None => y,
        };
        (y, maps)
    }
}

impl Architecture for ITransformerConfig {
    type Module = ITransformer;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds { past: true, future: true, statics: false }
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<ITransformer, String> {
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for ITransformer {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        self.forward(values(x), marks.map(|m| m.x))
    }
    fn attention(&self, x: Tensor<4>, marks: Option<Marks>) -> Option<Vec<(String, Tensor<4>)>> {
        Some(crate::api::layer_names(self.forward_with_attention(values(x), marks.map(|m| m.x), None).1))
    }
    fn attention_covariates(&self, x: Tensor<4>, marks: Option<Marks>, covariates: Covariates) -> Option<Vec<(String, Tensor<4>)>> {
        let l = x.dims()[1];
        Some(crate::api::layer_names(self.forward_with_attention(values(x), marks.map(|m| m.x), Self::covariate_tokens(covariates, l)).1))
    }
    fn predict_covariates(&self, x: Tensor<4>, marks: Option<Marks>, covariates: Covariates) -> Tensor<3> {
        let l = x.dims()[1];
        self.forward_with_attention(values(x), marks.map(|m| m.x), Self::covariate_tokens(covariates, l)).0
    }
}
