//! The vanilla Transformer encoder-decoder for forecasting (Vaswani et al. 2017, as
//! Time-Series-Library's `Transformer`): token embedding (circular conv, kernel 3) + sinusoidal
//! positions + a linear embedding of the calendar features; an encoder over the input window;
//! a decoder fed the last `label_len` input steps followed by zeros for the horizon, with causal
//! self-attention and cross-attention to the encoder. The head is a point projection, or a
//! distribution head ([`crate::layers::distribution`]) whose mean is the point forecast and whose NLL
//! is the training loss.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::layers::distribution::{Distribution, DistributionHead, Family};
use crate::layers::dropout::Dropout;
use crate::kernels::gelu::gelu;
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, values};

/// Transformer hyper-parameters (TSLib defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub n_heads: usize,
    pub e_layers: usize,
    pub d_layers: usize,
    pub d_ff: usize,
    pub dropout: f64,
    /// Input steps repeated at the start of the decoder input.
    pub label_len: usize,
    /// `None`: point forecasts (MSE); else a distribution head trained by NLL.
    pub distribution: Option<Family>,
    /// How the value embedding's conv is initialised (TSLib's by default).
    pub token_init: TokenInit,
}

/// Initialisation of the token (value) embedding's conv, written `token_init = "tslib"` or
/// `"default"` in a run config's `[model]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenInit {
    /// TSLib's `TokenEmbedding`: `kaiming_normal_(mode="fan_in", nonlinearity="leaky_relu")`,
    /// a normal with std `sqrt(2 / (3 c_in))`; the published numbers are this init's.
    #[default]
    Tslib,
    /// burn's (and PyTorch's) default conv init, uniform with std `1 / sqrt(9 c_in)`: on ETTh1
    /// 96 -> 96 strata's Transformer tests 11-20% better with it than TSLib reports (RESULTS.md).
    Default,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig { d_model: 512, n_heads: 8, e_layers: 2, d_layers: 1, d_ff: 2048, dropout: 0.1, label_len: 48, distribution: None, token_init: TokenInit::Tslib }
    }
}

/// Multi-head attention from `q_in` to `kv_in`, optionally causal.
#[derive(Module, Debug)]
pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    dropout: Dropout,
    heads: usize,
}

impl Attention {
    fn new(d: usize, heads: usize, dropout: f64, device: &Device) -> Self {
        let lin = || LinearConfig::new(d, d).init(device);
        Attention { q: lin(), k: lin(), v: lin(), o: lin(), dropout: Dropout::new(dropout), heads }
    }
    /// The attended output and the attention weights `[batch, heads, tq, tk]`.
    fn forward(&self, q_in: Tensor<3>, kv_in: Tensor<3>, causal: bool) -> (Tensor<3>, Tensor<4>) {
        let ([b, tq, d], tk) = (q_in.dims(), kv_in.dims()[1]);
        let dh = d / self.heads;
        let split = |x: Tensor<3>, t: usize| x.reshape([b, t, self.heads, dh]).swap_dims(1, 2);
        let q = split(self.q.forward(q_in), tq);
        let k = split(self.k.forward(kv_in.clone()), tk);
        let v = split(self.v.forward(kv_in), tk);
        let scores = q.matmul(k.transpose()) * (dh as f64).powf(-0.5);
        let mask = causal.then(|| {
            let mask: Vec<bool> = (0..tq).flat_map(|i| (0..tk).map(move |j| j > i)).collect();
            Tensor::<2, Bool>::from_data(TensorData::new(mask, [tq, tk]), &scores.device()).unsqueeze::<4>()
        });
        let weights = crate::kernels::softmax::softmax_last(scores, mask);
        let w = self.dropout.forward(weights.clone());
        (self.o.forward(w.matmul(v).swap_dims(1, 2).reshape([b, tq, d])), weights)
    }
}

/// Value (circular conv) + position (sinusoidal; `max_len` 0 leaves it out, TSLib's
/// `DataEmbedding_wo_pos`) + calendar (linear) embedding. The conv is initialised by `init`
/// ([`TokenInit`]): on ETTh1 96 -> 96 that choice alone moves a PyTorch reference of TSLib's
/// Transformer from 0.73 (default) to 0.83 (TSLib's) test MSE, 3 seeds each (RESULTS.md).
#[derive(Module, Debug)]
pub struct Embedding {
    value: Conv1d,
    time: Option<Linear>,
    position: Option<Tensor<2>>,
    dropout: Dropout,
}

impl Embedding {
    pub fn new(c_in: usize, marks: usize, d: usize, max_len: usize, dropout: f64, init: TokenInit, device: &Device) -> Self {
        let conv = Conv1dConfig::new(c_in, d, 3).with_padding(PaddingConfig1d::Explicit(1, 1)).with_bias(false);
        let conv = match init {
            TokenInit::Tslib => conv.with_initializer(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: false }),
            TokenInit::Default => conv,
        };
        let pe = crate::layers::sinusoid(max_len, d);
        Embedding {
            value: conv.init(device),
            time: (marks > 0).then(|| LinearConfig::new(marks, d).with_bias(false).init(device)),
            position: (max_len > 0).then(|| Tensor::from_data(TensorData::new(pe, [max_len, d]), device)),
            dropout: Dropout::new(dropout),
        }
    }
    /// `x`: `[batch, time, c_in]`, `marks`: `[batch, time, m]` -> `[batch, time, d_model]`.
    pub fn forward(&self, x: Tensor<3>, marks: Option<Tensor<3>>) -> Tensor<3> {
        let [b, t, _] = x.dims();
        // Circular padding: wrap one step from each end, then a valid conv.
        let wrapped = Tensor::cat(vec![x.clone().narrow(1, t - 1, 1), x.clone(), x.narrow(1, 0, 1)], 1);
        let v = self.value.forward(wrapped.swap_dims(1, 2)).swap_dims(1, 2); // [b, t + 2, d]
        let mut e = v.narrow(1, 1, t);
        if let Some(p) = &self.position {
            e = e + p.clone().narrow(0, 0, t).unsqueeze::<3>().expand([b as i64, -1, -1]);
        }
        if let (Some(time), Some(m)) = (&self.time, marks) {
            e = e + time.forward(m);
        }
        self.dropout.forward(e)
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    attn: Attention,
    ff1: Linear,
    ff2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    dropout: Dropout,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let (a, w) = self.attn.forward(x.clone(), x.clone(), false);
        let x = self.norm1.forward(x + self.dropout.forward(a));
        let y = self.dropout.forward(self.ff2.forward(self.dropout.forward(gelu(self.ff1.forward(x.clone())))));
        (self.norm2.forward(x + y), w)
    }
}

#[derive(Module, Debug)]
pub struct DecoderLayer {
    self_attn: Attention,
    cross_attn: Attention,
    ff1: Linear,
    ff2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm3: LayerNorm,
    dropout: Dropout,
}

impl DecoderLayer {
    /// The output and the cross-attention weights `[batch, heads, steps, context steps]`.
    fn forward(&self, x: Tensor<3>, memory: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let x = self.norm1.forward(x.clone() + self.dropout.forward(self.self_attn.forward(x.clone(), x, true).0));
        let (a, w) = self.cross_attn.forward(x.clone(), memory, false);
        let x = self.norm2.forward(x + self.dropout.forward(a));
        let y = self.dropout.forward(self.ff2.forward(self.dropout.forward(gelu(self.ff1.forward(x.clone())))));
        (self.norm3.forward(x + y), w)
    }
}

#[derive(Module, Debug)]
pub struct Transformer {
    enc_embed: Embedding,
    dec_embed: Embedding,
    encoder: Vec<EncoderLayer>,
    enc_norm: LayerNorm,
    decoder: Vec<DecoderLayer>,
    dec_norm: LayerNorm,
    projection: Option<Linear>,
    head: Option<DistributionHead>,
    label_len: usize,
    pred_len: usize,
    channels: usize,
}

impl TransformerConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: true };

    pub fn init(&self, shape: Shape, device: &Device) -> Transformer {
        let (d, c) = (self.d_model, shape.channels);
        let label_len = self.label_len.min(shape.seq_len);
        let max_len = shape.seq_len.max(label_len + shape.pred_len);
        let norm = || LayerNormConfig::new(d).init(device);
        let lin = |a: usize, b: usize| LinearConfig::new(a, b).init(device);
        Transformer {
            enc_embed: Embedding::new(c, shape.marks, d, max_len, self.dropout, self.token_init, device),
            dec_embed: Embedding::new(c, shape.marks, d, max_len, self.dropout, self.token_init, device),
            encoder: (0..self.e_layers)
                .map(|_| EncoderLayer { attn: Attention::new(d, self.n_heads, self.dropout, device), ff1: lin(d, self.d_ff), ff2: lin(self.d_ff, d), norm1: norm(), norm2: norm(), dropout: Dropout::new(self.dropout) })
                .collect(),
            enc_norm: norm(),
            decoder: (0..self.d_layers)
                .map(|_| DecoderLayer {
                    self_attn: Attention::new(d, self.n_heads, self.dropout, device),
                    cross_attn: Attention::new(d, self.n_heads, self.dropout, device),
                    ff1: lin(d, self.d_ff),
                    ff2: lin(self.d_ff, d),
                    norm1: norm(),
                    norm2: norm(),
                    norm3: norm(),
                    dropout: Dropout::new(self.dropout),
                })
                .collect(),
            dec_norm: norm(),
            projection: self.distribution.is_none().then(|| lin(d, c)),
            // One distribution per (step, channel): the head sees the step's features and a
            // channel embedding is not needed as each channel has its own output slice.
            head: self.distribution.map(|f| DistributionHead::new(d, f, c, device)),
            label_len,
            pred_len: shape.pred_len,
            channels: c,
        }
    }
}

impl Transformer {
    /// Decoder features of the horizon `[batch, pred_len, d_model]`.
    fn features(&self, x: Tensor<3>, x_mark: Option<Tensor<3>>, y_mark: Option<Tensor<3>>) -> Tensor<3> {
        self.traced(x, x_mark, y_mark, &mut Vec::new())
    }

    /// Attention weights of every layer: encoder self-attention (`[batch, heads, seq_len,
    /// seq_len]`), then decoder cross-attention (`[batch, heads, label_len + pred_len, seq_len]`).
    pub fn attention(&self, x: Tensor<3>, x_mark: Option<Tensor<3>>, y_mark: Option<Tensor<3>>) -> Vec<(String, Tensor<4>)> {
        let mut maps = Vec::new();
        self.traced(x, x_mark, y_mark, &mut maps);
        maps
    }

    /// [`Self::features`], collecting the attention weights in `maps`.
    fn traced(&self, x: Tensor<3>, x_mark: Option<Tensor<3>>, y_mark: Option<Tensor<3>>, maps: &mut Vec<(String, Tensor<4>)>) -> Tensor<3> {
        let [b, l, c] = x.dims();
        let memory = {
            let mut h = self.enc_embed.forward(x.clone(), x_mark.clone());
            for (i, layer) in self.encoder.iter().enumerate() {
                let (out, w) = layer.forward(h);
                maps.push((format!("encoder{}", i + 1), w));
                h = out;
            }
            self.enc_norm.forward(h)
        };
        let ll = self.label_len;
        let dec_in = Tensor::cat(vec![x.narrow(1, l - ll, ll), Tensor::zeros([b, self.pred_len, c], &memory.device())], 1);
        let dec_mark = match (x_mark, y_mark) {
            (Some(xm), Some(ym)) => Some(Tensor::cat(vec![xm.narrow(1, l - ll, ll), ym], 1)),
            _ => None,
        };
        let mut h = self.dec_embed.forward(dec_in, dec_mark);
        for (i, layer) in self.decoder.iter().enumerate() {
            let (out, w) = layer.forward(h, memory.clone());
            maps.push((format!("decoder{}_cross", i + 1), w));
            h = out;
        }
        self.dec_norm.forward(h).narrow(1, ll, self.pred_len)
    }

    /// Point forecast `[batch, pred_len, channels]` (the distribution's mean with a head).
    pub fn forward(&self, x: Tensor<3>, x_mark: Option<Tensor<3>>, y_mark: Option<Tensor<3>>) -> Tensor<3> {
        let [b, _, _] = x.dims();
        let h = self.features(x, x_mark, y_mark);
        match (&self.projection, &self.head) {
            (Some(p), _) => p.forward(h),
            (None, Some(head)) => {
                let d = h.dims()[2];
                head.forward(h.reshape([b * self.pred_len, d])).mean().reshape([b, self.pred_len, self.channels])
            }
            _ => unreachable!("a projection or a head"),
        }
    }

    pub fn is_probabilistic(&self) -> bool {
        self.head.is_some()
    }

    /// The forecast distribution of every `(batch, step, channel)` point, row-major; `None`
    /// for a point model.
    pub fn distribution(&self, x: Tensor<3>, x_mark: Option<Tensor<3>>, y_mark: Option<Tensor<3>>) -> Option<Distribution> {
        let head = self.head.as_ref()?;
        let [b, _, _] = x.dims();
        let h = self.features(x, x_mark, y_mark);
        let d = h.dims()[2];
        Some(head.forward(h.reshape([b * self.pred_len, d])))
    }
}

impl Architecture for TransformerConfig {
    type Module = Transformer;
    fn capabilities(&self) -> Capabilities {
        Capabilities { probabilistic: self.distribution.is_some(), ..Self::CAPABILITIES }
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<Transformer, String> {
        Ok(self.init(shape, device))
    }
    /// The point head and the Gaussian head.
    fn examples() -> Vec<Self> {
        vec![Self::default(), TransformerConfig { distribution: Some(Family::Normal), ..Default::default() }]
    }
}

impl Forecast for Transformer {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        let (xm, ym) = marks.map_or((None, None), |m| (Some(m.x), Some(m.y)));
        self.forward(values(x), xm, ym)
    }
    fn distribution(&self, x: Tensor<4>, marks: Option<Marks>) -> Option<Distribution> {
        let (xm, ym) = marks.map_or((None, None), |m| (Some(m.x), Some(m.y)));
        Transformer::distribution(self, values(x), xm, ym)
    }
    fn attention(&self, x: Tensor<4>, marks: Option<Marks>) -> Option<Vec<(String, Tensor<4>)>> {
        let (xm, ym) = marks.map_or((None, None), |m| (Some(m.x), Some(m.y)));
        Some(Transformer::attention(self, values(x), xm, ym))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_embedding_init_is_tslibs_kaiming_normal() {
        // TSLib: kaiming_normal_(w, mode="fan_in", nonlinearity="leaky_relu") with a = 0, so
        // gain sqrt(2) and std sqrt(2 / fan_in), fan_in = c_in * kernel 3. burn's default conv
        // init would give std 1 / sqrt(3 * fan_in), less than half of it.
        let (c_in, d) = (7, 1024);
        let want = (2.0 / (c_in * 3) as f64).sqrt();
        let (mean, std, tail) = weight_stats(TokenInit::Tslib, c_in, d, 2.0 * want);
        // 21,504 draws: the sample std's relative error has sd ~ 1 / sqrt(2n) = 0.5%.
        assert!((std / want - 1.0).abs() < 0.03, "std {std}, want {want}");
        assert!(mean.abs() < 4.0 * want / ((d * c_in * 3) as f64).sqrt(), "mean {mean}");
        // A normal, not a uniform: the fraction beyond 2 std is 4.55% (a uniform has none).
        assert!((tail - 0.0455).abs() < 0.01, "tail {tail}");
        assert_eq!(TransformerConfig::default().token_init, TokenInit::Tslib);
    }

    #[test]
    fn default_token_init_is_pytorchs_conv_init() {
        // PyTorch's Conv1d default: kaiming_uniform_(a = sqrt(5)), i.e. uniform on
        // +-1 / sqrt(fan_in), std 1 / sqrt(3 fan_in); nothing beyond the bound.
        let (c_in, d) = (7, 1024);
        let bound = 1.0 / ((c_in * 3) as f64).sqrt();
        let (_, std, beyond) = weight_stats(TokenInit::Default, c_in, d, bound);
        assert!((std / (bound / 3f64.sqrt()) - 1.0).abs() < 0.03, "std {std}");
        assert!(beyond == 0.0 && std > 0.0, "{beyond}");
        let cfg: TransformerConfig = serde_json::from_str(r#"{"token_init": "default"}"#).unwrap();
        assert_eq!(cfg.token_init, TokenInit::Default);
    }

    /// Mean, std and the fraction of magnitudes beyond `threshold` of a fresh embedding's
    /// conv weights.
    fn weight_stats(init: TokenInit, c_in: usize, d: usize, threshold: f64) -> (f64, f64, f64) {
        let e = Embedding::new(c_in, 4, d, 0, 0.0, init, &Device::flex());
        let w: Vec<f32> = e.value.weight.val().into_data().convert::<f32>().try_to_vec().unwrap();
        assert_eq!(w.len(), d * c_in * 3);
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let tail = w.iter().filter(|&&v| (v as f64).abs() > threshold).count() as f64 / n;
        (mean, std, tail)
    }
}
