//! PatchTST (Nie et al., "A Time Series is Worth 64 Words", ICLR 2023), supervised variant.
//!
//! Each channel is forecast independently: RevIN, the series cut into overlapping patches (the
//! end padded by repeating the last value `stride` times), a linear patch embedding plus a learned
//! position embedding, a Transformer encoder with BatchNorm and residual attention, and a flatten
//! head mapping `d_model * patches` to `pred_len`.

use burn::module::{Initializer, Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};

use crate::layers::dropout::Dropout;
use burn::tensor::{Device, Tensor};

use crate::layers::attention::SelfAttention;
use crate::layers::revin::RevIN;
use crate::api::{Architecture, Capabilities, Forecast, Forecaster, Marks, Shape, values};

/// PatchTST hyper-parameters. Defaults are the paper's ETTh1 script (PatchTST/42).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatchTSTConfig {
    pub patch_len: usize,
    pub stride: usize,
    /// Pad the end of the series with `stride` copies of its last value (one more patch).
    pub padding_end: bool,
    pub d_model: usize,
    pub n_heads: usize,
    pub d_ff: usize,
    pub e_layers: usize,
    /// Dropout in the encoder (after position embedding, attention output, FFN).
    pub dropout: f64,
    /// Dropout on the attention weights.
    pub attn_dropout: f64,
    /// Dropout after the flatten head.
    pub head_dropout: f64,
    /// Add the previous layer's attention scores (RealFormer), as the reference does.
    pub res_attention: bool,
    pub revin: bool,
    pub affine: bool,
    pub subtract_last: bool,
}

impl Default for PatchTSTConfig {
    fn default() -> Self {
        PatchTSTConfig {
            patch_len: 16,
            stride: 8,
            padding_end: true,
            d_model: 16,
            n_heads: 4,
            d_ff: 128,
            e_layers: 3,
            dropout: 0.3,
            attn_dropout: 0.0,
            head_dropout: 0.0,
            res_attention: true,
            revin: true,
            affine: true,
            subtract_last: false,
        }
    }
}

impl PatchTSTConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: false, probabilistic: false, exogenous: false, attention: true };

    /// Number of patches for an input of `seq_len` steps.
    pub fn patches(&self, seq_len: usize) -> usize {
        (seq_len.saturating_sub(self.patch_len)) / self.stride + 1 + usize::from(self.padding_end)
    }

    pub fn init(&self, shape: Shape, device: &Device) -> PatchTST {
        assert!(shape.seq_len >= self.patch_len, "patchtst: seq_len {} < patch_len {}", shape.seq_len, self.patch_len);
        let n = self.patches(shape.seq_len);
        let layers = (0..self.e_layers)
            .map(|_| EncoderLayer {
                attention: SelfAttention::new(self.d_model, self.n_heads, self.attn_dropout, self.dropout, device),
                dropout_attn: Dropout::new(self.dropout),
                norm_attn: BatchNormConfig::new(self.d_model).init(device),
                ff_in: LinearConfig::new(self.d_model, self.d_ff).init(device),
                ff_out: LinearConfig::new(self.d_ff, self.d_model).init(device),
                ff_dropout: Dropout::new(self.dropout),
                dropout_ffn: Dropout::new(self.dropout),
                norm_ffn: BatchNormConfig::new(self.d_model).init(device),
            })
            .collect();
        PatchTST {
            revin: self.revin.then(|| RevIN::new(shape.channels, self.affine, self.subtract_last, device)),
            patch_embed: LinearConfig::new(self.patch_len, self.d_model).init(device),
            position: Initializer::Uniform { min: -0.02, max: 0.02 }.init([n, self.d_model], device),
            dropout: Dropout::new(self.dropout),
            layers,
            head: LinearConfig::new(self.d_model * n, shape.pred_len).init(device),
            head_dropout: Dropout::new(self.head_dropout),
            patch_len: self.patch_len,
            stride: self.stride,
            padding_end: self.padding_end,
            res_attention: self.res_attention,
        }
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub attention: SelfAttention,
    pub dropout_attn: Dropout,
    pub norm_attn: BatchNorm,
    pub ff_in: Linear,
    pub ff_out: Linear,
    pub ff_dropout: Dropout,
    pub dropout_ffn: Dropout,
    pub norm_ffn: BatchNorm,
}

/// BatchNorm over the feature axis of `[batch, tokens, features]`.
fn batch_norm(norm: &BatchNorm, x: Tensor<3>) -> Tensor<3> {
    norm.forward(x.swap_dims(1, 2)).swap_dims(1, 2)
}

impl EncoderLayer {
    /// Post-norm layer; returns the output, the attention scores and the attention weights.
    fn forward(&self, x: Tensor<3>, prev: Option<Tensor<4>>) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let att = self.attention.forward(x.clone(), prev);
        let x = batch_norm(&self.norm_attn, x + self.dropout_attn.forward(att.context));
        let ff = self.ff_out.forward(self.ff_dropout.forward(crate::kernels::gelu::gelu(self.ff_in.forward(x.clone()))));
        let x = batch_norm(&self.norm_ffn, x + self.dropout_ffn.forward(ff));
        (x, att.scores, att.weights)
    }
}

#[derive(Module, Debug)]
pub struct PatchTST {
    pub revin: Option<RevIN>,
    pub patch_embed: Linear,
    pub position: Param<Tensor<2>>,
    pub dropout: Dropout,
    pub layers: Vec<EncoderLayer>,
    pub head: Linear,
    pub head_dropout: Dropout,
    pub patch_len: usize,
    pub stride: usize,
    pub padding_end: bool,
    pub res_attention: bool,
}

impl PatchTST {
    /// Forecast and the attention weights of every layer (`[batch*channels, heads, patches, patches]`).
    pub fn forward_with_attention(&self, x: Tensor<3>) -> (Tensor<3>, Vec<Tensor<4>>) {
        let [b, l, c] = x.dims();
        let (x, stats) = match &self.revin {
            Some(r) => {
                let (y, s) = r.norm(x);
                (y, Some(s))
            }
            None => (x, None),
        };
        let mut x = x.swap_dims(1, 2); // [b, c, l]
        if self.padding_end {
            let last = x.clone().narrow(2, l - 1, 1).repeat_dim(2, self.stride);
            x = Tensor::cat(vec![x, last], 2);
        }
        let patches: Tensor<4> = x.unfold(2, self.patch_len, self.stride); // [b, c, n, p]
        let n = patches.dims()[2];
        let d = self.position.dims()[1];
        let z = self.patch_embed.forward(patches).reshape([b * c, n, d]);
        let mut z = self.dropout.forward(z + self.position.val().unsqueeze::<3>());
        let mut prev = None;
        let mut weights = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (out, scores, w) = layer.forward(z, prev);
            z = out;
            prev = self.res_attention.then_some(scores);
            weights.push(w);
        }
        // [b*c, n, d] -> [b, c, d, n] -> [b, c, d*n] (the reference flattens d_model-major).
        let z = z.reshape([b, c, n, d]).swap_dims(2, 3).reshape([b, c, d * n]);
        let y = self.head_dropout.forward(self.head.forward(z)).swap_dims(1, 2); // [b, h, c]
        let y = match (&self.revin, &stats) {
            (Some(r), Some(s)) => r.denorm(y, s),
            _ => y,
        };
        (y, weights)
    }
}

impl Forecaster for PatchTST {
    fn forecast(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_with_attention(x).0
    }
}

impl Architecture for PatchTSTConfig {
    type Module = PatchTST;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<PatchTST, String> {
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for PatchTST {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forecast(values(x))
    }
    fn predict_channels(&self, x: Tensor<3>) -> Tensor<3> {
        self.forecast(x)
    }
    fn attention(&self, x: Tensor<4>, _marks: Option<Marks>) -> Option<Vec<(String, Tensor<4>)>> {
        Some(crate::api::layer_names(self.forward_with_attention(values(x)).1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_count_matches_the_paper() {
        // 336 steps, patch 16, stride 8, end padding: 42 patches (PatchTST/42).
        assert_eq!(PatchTSTConfig::default().patches(336), 42);
        assert_eq!(PatchTSTConfig { padding_end: false, ..Default::default() }.patches(512), 63);
    }

    #[test]
    fn shapes_and_revin_invariance() {
        let device = Device::flex();
        let shape = Shape::lsf(32, 8, 3);
        let m = PatchTSTConfig { d_model: 8, n_heads: 2, d_ff: 16, e_layers: 2, ..Default::default() }.init(shape, &device).valid();
        let x = Tensor::<3>::random([2, 32, 3], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let (y, att) = m.forward_with_attention(x.clone());
        assert_eq!(y.dims(), [2, 8, 3]);
        assert_eq!(att.len(), 2);
        assert_eq!(att[0].dims(), [6, 2, 4, 4]);
        // Attention rows are distributions.
        let sums: Vec<f32> = att[0].clone().sum_dim(3).into_data().try_to_vec().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
        // RevIN: shifting and scaling the input shifts and scales the forecast (eval mode).
        let y2 = m.forecast(x.mul_scalar(3.0).add_scalar(5.0));
        let want = y.mul_scalar(3.0).add_scalar(5.0);
        let diff: f32 = (y2 - want).abs().max().into_scalar();
        assert!(diff < 1e-3, "{diff}");
    }
}
