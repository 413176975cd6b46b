//! MOIRAI (Woo et al., ICML 2024): the exact `MoiraiModule` of Salesforce's uni2ts, loading its
//! checkpoints (`config.json` + `model.safetensors`, Hugging Face layout, with or without a
//! `module.` prefix) by name. See `../shared/docs/moirai.md` and docs/models.md.
//!
//! Input is a packed batch of patch tokens: every token carries a patch of up to 128 values
//! (`patch_size` of them used), its sample id (0: padding), variate id, time id, an observed
//! mask and whether it is to be predicted. The module standardises each (sample, variate) by the
//! observed context values (PackedStdScaler, correction 1, `sqrt(var + 1e-5)`), embeds patches
//! with one linear map per patch size, replaces prediction tokens by a learned mask embedding,
//! runs a pre-norm Transformer encoder (RMSNorm; attention with RMS-normalised queries/keys,
//! rotary embedding of time ids on the first half of each head, a learned per-head bias for
//! same / different variate, attention only within a sample; SwiGLU feed-forward), and maps each
//! token to the parameters of a mixture (Student-t, Normal with scale 1e-3, Negative Binomial,
//! Log-Normal) for each of its 128 patch positions.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::{silu, softplus};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use serde::Deserialize;

pub use super::moirai_mixture::{MixtureParams, MoiraiOutput};
pub use super::moirai_packed::{Packed, prediction_counts};

/// `config.json` of a uni2ts `MoiraiModule` (the constructor arguments).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct MoiraiConfig {
    pub d_model: usize,
    pub num_layers: usize,
    pub patch_sizes: Vec<usize>,
    pub max_seq_len: usize,
    #[serde(default)]
    pub attn_dropout_p: f64,
    #[serde(default)]
    pub dropout_p: f64,
    #[serde(default = "yes")]
    pub scaling: bool,
}

fn yes() -> bool {
    true
}

impl MoiraiConfig {
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: MoiraiConfig = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if c.d_model % 64 != 0 || c.patch_sizes.is_empty() {
            return Err(format!("{}: key `d_model`: MOIRAI uses heads of 64, got {}", path.display(), c.d_model));
        }
        Ok(c)
    }
    pub fn heads(&self) -> usize {
        self.d_model / 64
    }
    /// SwiGLU hidden width: `(int(8 d / 3) + 7) // 8 * 8`, as uni2ts computes it.
    pub fn ffn(&self) -> usize {
        ((4 * self.d_model * 2 / 3) + 7) / 8 * 8
    }
    pub fn max_patch(&self) -> usize {
        *self.patch_sizes.iter().max().unwrap()
    }

    pub fn init(&self, device: &Device) -> Moirai {
        let (d, n, p) = (self.d_model, self.patch_sizes.len(), self.max_patch());
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).with_bias(false).init(device);
        let norm = |w: usize| RmsNormConfig::new(w).with_epsilon(1e-5).init(device);
        let multi = |rows: usize, dim: usize| MultiOutSizeLinear {
            weight: Param::from_tensor(uniform([n, rows * dim, d], d, device)),
            bias: Param::from_tensor(uniform([n, rows * dim], d, device)),
            dim,
        };
        let comp = |names: &[&str]| Component {
            df: names.contains(&"df").then(|| multi(p, 1)),
            loc: names.contains(&"loc").then(|| multi(p, 1)),
            scale: names.contains(&"scale").then(|| multi(p, 1)),
            total_count: names.contains(&"total_count").then(|| multi(p, 1)),
            logits: names.contains(&"logits").then(|| multi(p, 1)),
        };
        Moirai {
            mask_encoding: EmbeddingConfig::new(1, d).init(device),
            in_proj: MultiInSizeLinear { weight: Param::from_tensor(uniform([n, d, p], p, device)), bias: Param::from_tensor(uniform([n, d], p, device)) },
            encoder: MoiraiEncoder {
                layers: (0..self.num_layers)
                    .map(|_| EncoderLayer {
                        self_attn: MoiraiAttention {
                            q_proj: lin(d, d),
                            k_proj: lin(d, d),
                            v_proj: lin(d, d),
                            out_proj: lin(d, d),
                            q_norm: norm(64),
                            k_norm: norm(64),
                            var_attn_bias: VarBias { emb: EmbeddingConfig::new(2, self.heads()).init(device) },
                        },
                        ffn: SwiGlu { fc1: lin(d, self.ffn()), fc_gate: lin(d, self.ffn()), fc2: lin(self.ffn(), d) },
                        norm1: norm(d),
                        norm2: norm(d),
                    })
                    .collect(),
                norm: norm(d),
            },
            param_proj: ParamProj {
                proj: MixtureProj {
                    weights_logits: multi(p, 4),
                    components: vec![comp(&["df", "loc", "scale"]), comp(&["loc"]), comp(&["total_count", "logits"]), comp(&["loc", "scale"])],
                },
            },
            patch_sizes: self.patch_sizes.clone(),
            scaling: self.scaling,
        }
    }
}

/// nn.Linear's default init, uniform(+-1/sqrt(fan_in)), for the per-patch-size weights.
fn uniform<const D: usize>(shape: [usize; D], fan_in: usize, device: &Device) -> Tensor<D> {
    let b = 1.0 / (fan_in as f64).sqrt();
    Tensor::random(shape, Distribution::Uniform(-b, b), device)
}

/// One linear map per patch size: `weight [sizes, d, max_patch]` (input columns beyond the
/// token's patch size are masked), `bias [sizes, d]`.
#[derive(Module, Debug)]
pub struct MultiInSizeLinear {
    weight: Param<Tensor<3>>,
    bias: Param<Tensor<2>>,
}

/// One linear map per patch size to `patch * dim` outputs: `weight [sizes, max_patch * dim, d]`
/// (rows beyond `patch * dim` masked; the bias is not).
#[derive(Module, Debug)]
pub struct MultiOutSizeLinear {
    weight: Param<Tensor<3>>,
    bias: Param<Tensor<2>>,
    dim: usize,
}

#[derive(Module, Debug)]
pub struct VarBias {
    emb: Embedding,
}

#[derive(Module, Debug)]
pub struct MoiraiAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    var_attn_bias: VarBias,
}

#[derive(Module, Debug)]
pub struct SwiGlu {
    fc1: Linear,
    fc_gate: Linear,
    fc2: Linear,
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    self_attn: MoiraiAttention,
    ffn: SwiGlu,
    norm1: RmsNorm,
    norm2: RmsNorm,
}

#[derive(Module, Debug)]
pub struct MoiraiEncoder {
    layers: Vec<EncoderLayer>,
    norm: RmsNorm,
}

/// The parameter projections of one mixture component (the fields it has).
#[derive(Module, Debug)]
pub struct Component {
    df: Option<MultiOutSizeLinear>,
    loc: Option<MultiOutSizeLinear>,
    scale: Option<MultiOutSizeLinear>,
    total_count: Option<MultiOutSizeLinear>,
    logits: Option<MultiOutSizeLinear>,
}

#[derive(Module, Debug)]
pub struct MixtureProj {
    weights_logits: MultiOutSizeLinear,
    components: Vec<Component>,
}

#[derive(Module, Debug)]
pub struct ParamProj {
    proj: MixtureProj,
}

#[derive(Module, Debug)]
pub struct Moirai {
    mask_encoding: Embedding,
    in_proj: MultiInSizeLinear,
    encoder: MoiraiEncoder,
    param_proj: ParamProj,
    patch_sizes: Vec<usize>,
    scaling: bool,
}

/// `sum_i onehot_i * (x @ (W_i * mask_i)^T + b_i)`: one linear map per patch size, selected per
/// token. `weight` is `[sizes, out, in]`, `bias` `[sizes, out]`; `mask(i)` is `[out, in]`-broadcastable.
fn per_size_linear(x: Tensor<3>, weight: Tensor<3>, bias: Tensor<2>, onehot: &[Tensor<3>], mask: impl Fn(usize) -> Tensor<2>) -> Tensor<3> {
    let [n, o, i] = weight.dims();
    (0..n)
        .map(|k| {
            let w = weight.clone().narrow(0, k, 1).reshape([o, i]) * mask(k);
            let b = bias.clone().narrow(0, k, 1).reshape([1, 1, o]);
            (x.clone().matmul(w.transpose().unsqueeze_dim(0)) + b) * onehot[k].clone()
        })
        .reduce(|a, b| a + b)
        .expect("at least one patch size")
}

/// A `[rows, cols]` 0/1 mask keeping rows `< keep_rows` and columns `< keep_cols`.
fn keep_mask(rows: usize, cols: usize, keep_rows: usize, keep_cols: usize, device: &Device) -> Tensor<2> {
    let m: Vec<f32> = (0..rows * cols).map(|j| if j / cols < keep_rows && j % cols < keep_cols { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(m, [rows, cols]), device)
}

impl MultiOutSizeLinear {
    /// Rows beyond `patch * dim` masked, the bias not (as uni2ts).
    fn forward(&self, x: Tensor<3>, onehot: &[Tensor<3>], sizes: &[usize]) -> Tensor<3> {
        let device = x.device();
        let rows = self.weight.dims()[1];
        per_size_linear(x, self.weight.val(), self.bias.val(), onehot, |k| keep_mask(rows, 1, sizes[k] * self.dim, 1, &device))
    }

    /// [`Self::forward`] for tokens that all have patch size `size`, the `k`-th.
    fn forward_size(&self, x: Tensor<3>, k: usize, size: usize) -> Tensor<3> {
        let [_, o, i] = self.weight.dims();
        let w = self.weight.val().narrow(0, k, 1).reshape([o, i]) * keep_mask(o, 1, size * self.dim, 1, &x.device());
        x.matmul(w.transpose().unsqueeze_dim(0)) + self.bias.val().narrow(0, k, 1).reshape([1, 1, o])
    }
}

/// Where a fine-tuning method changes the encoder (MSFT's per-scale adapters, per-scale LoRA,
/// cross-scale aggregator and within-scale mask; prompt tokens). [`Plain`] is the backbone.
pub trait EncoderHooks {
    /// After the input projection, before prediction tokens become the mask embedding.
    fn after_in_proj(&self, x: Tensor<3>) -> Tensor<3> {
        x
    }
    /// Added to the q (`which` 0), k (1) or v (2) projection of layer `layer`'s input `x`.
    fn qkv_delta(&self, _layer: usize, _which: usize, _x: &Tensor<3>) -> Option<Tensor<3>> {
        None
    }
    /// Applied to the attention output (after `out_proj`) before the residual.
    fn after_attention(&self, _layer: usize, x: Tensor<3>) -> Tensor<3> {
        x
    }
    /// More query/key pairs to mask, `[b, 1, l, l]` (true = masked).
    fn attention_mask(&self) -> Option<Tensor<4, Bool>> {
        None
    }
}

/// The backbone unchanged.
pub struct Plain;

impl EncoderHooks for Plain {}

/// Which parts of the backbone train (the rest is frozen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    InProj,
    MaskEncoding,
    /// q/k/v projections of every layer.
    Qkv,
    OutProj,
    VarBias,
    Norms,
    Ffn,
    Head,
}

impl Moirai {
    pub fn load(dir: &Path, device: &Device) -> Result<Moirai, String> {
        let cfg = MoiraiConfig::from_file(&dir.join("config.json"))?;
        let mut m = cfg.init(device);
        crate::foundation::weights::load_safetensors(&mut m, &dir.join("model.safetensors"))?;
        Ok(m)
    }

    pub fn max_patch(&self) -> usize {
        *self.patch_sizes.iter().max().unwrap()
    }

    /// Freeze every part of the backbone except `trainable` (their parameters get no gradient).
    pub fn freeze_except(mut self, trainable: &[Part]) -> Self {
        let keep = |p: Part| trainable.contains(&p);
        fn frozen<M: Module>(m: M, keep: bool) -> M {
            if keep { m } else { m.no_grad() }
        }
        self.in_proj = frozen(self.in_proj, keep(Part::InProj));
        self.mask_encoding = frozen(self.mask_encoding, keep(Part::MaskEncoding));
        self.param_proj = frozen(self.param_proj, keep(Part::Head));
        self.encoder.norm = frozen(self.encoder.norm, keep(Part::Norms));
        for l in self.encoder.layers.iter_mut() {
            let a = &mut l.self_attn;
            a.q_proj = frozen(a.q_proj.clone(), keep(Part::Qkv));
            a.k_proj = frozen(a.k_proj.clone(), keep(Part::Qkv));
            a.v_proj = frozen(a.v_proj.clone(), keep(Part::Qkv));
            a.out_proj = frozen(a.out_proj.clone(), keep(Part::OutProj));
            a.var_attn_bias = frozen(a.var_attn_bias.clone(), keep(Part::VarBias));
            a.q_norm = frozen(a.q_norm.clone(), keep(Part::Norms));
            a.k_norm = frozen(a.k_norm.clone(), keep(Part::Norms));
            l.norm1 = frozen(l.norm1.clone(), keep(Part::Norms));
            l.norm2 = frozen(l.norm2.clone(), keep(Part::Norms));
            l.ffn = frozen(l.ffn.clone(), keep(Part::Ffn));
        }
        self
    }

    /// `d_model`.
    pub fn d_model(&self) -> usize {
        self.encoder.norm.gamma.dims()[0]
    }

    pub fn num_layers(&self) -> usize {
        self.encoder.layers.len()
    }

    /// PackedStdScaler: per token, the mean and `sqrt(var + 1e-5)` (correction 1) of the observed
    /// context values of its (sample, variate); padding tokens get 0 and 1.
    fn scaler(&self, p: &Packed) -> (Vec<f32>, Vec<f32>) {
        use std::collections::HashMap;
        let (b, l, m) = (p.batch, p.tokens, p.max_patch);
        let mut loc = vec![0f32; b * l];
        let mut scale = vec![1f32; b * l];
        if !self.scaling {
            return (loc, scale);
        }
        for r in 0..b {
            let used = |t: usize| (0..m).filter(move |&k| p.observed[(r * l + t) * m + k] && !p.prediction[r * l + t]);
            // (count, sum) then the squared deviations, per (sample, variate) group.
            let mut stats: HashMap<(i64, i64), (f64, f64, f64)> = HashMap::new();
            for t in 0..l {
                let e = stats.entry((p.sample_id[r * l + t], p.variate_id[r * l + t])).or_default();
                for k in used(t) {
                    e.0 += 1.0;
                    e.1 += p.target[(r * l + t) * m + k] as f64;
                }
            }
            let mean = |e: &(f64, f64, f64)| if e.0 == 0.0 { e.1 } else { e.1 / e.0 };
            for t in 0..l {
                let e = stats.get_mut(&(p.sample_id[r * l + t], p.variate_id[r * l + t])).expect("group");
                let mu = mean(e);
                for k in used(t) {
                    e.2 += (p.target[(r * l + t) * m + k] as f64 - mu).powi(2);
                }
            }
            for t in 0..l {
                if p.sample_id[r * l + t] == 0 {
                    continue;
                }
                let e = &stats[&(p.sample_id[r * l + t], p.variate_id[r * l + t])];
                let var = if e.0 - 1.0 == 0.0 { e.2 } else { e.2 / (e.0 - 1.0) };
                loc[r * l + t] = mean(e) as f32;
                scale[r * l + t] = (var + 1e-5).sqrt() as f32;
            }
        }
        (loc, scale)
    }

    /// Scale, embed and encode: the encoder output `[b, l, d]`, the scaler's loc and scale
    /// `[b, l, 1]`, and the one-hot patch-size selectors.
    pub fn encode(&self, p: &Packed, device: &Device, hooks: &dyn EncoderHooks) -> (Tensor<3>, Tensor<3>, Tensor<3>, Vec<Tensor<3>>) {
        let (b, l, m) = (p.batch, p.tokens, p.max_patch);
        assert_eq!(m, self.max_patch(), "packed patches must be {} wide", self.max_patch());
        let (loc, scale) = self.scaler(p);
        let loc_t = Tensor::<3>::from_data(TensorData::new(loc, [b, l, 1]), device);
        let scale_t = Tensor::<3>::from_data(TensorData::new(scale, [b, l, 1]), device);
        let target = Tensor::<3>::from_data(TensorData::new(p.target.clone(), [b, l, m]), device);
        let scaled = (target - loc_t.clone()) / scale_t.clone();
        let onehot: Vec<Tensor<3>> = self
            .patch_sizes
            .iter()
            .map(|&ps| Tensor::from_data(TensorData::new(p.patch_size.iter().map(|&s| if s == ps { 1.0f32 } else { 0.0 }).collect::<Vec<_>>(), [b, l, 1]), device))
            .collect();
        // in_proj: one map per patch size, input columns beyond the patch size masked.
        let d = self.in_proj.weight.dims()[1];
        let sizes = &self.patch_sizes;
        let reprs = hooks.after_in_proj(per_size_linear(scaled, self.in_proj.weight.val(), self.in_proj.bias.val(), &onehot, |k| keep_mask(1, m, 1, sizes[k], device)));
        // Prediction tokens become the mask embedding.
        let pred = Tensor::<3>::from_data(TensorData::new(p.prediction.iter().map(|&x| if x { 1.0f32 } else { 0.0 }).collect::<Vec<_>>(), [b, l, 1]), device);
        let mask_emb = self.mask_encoding.weight.val().reshape([1, 1, d]);
        let mut x = reprs * (-pred.clone() + 1.0) + mask_emb * pred;
        let mut attn = AttnInputs::new(p, self.heads(), device);
        if let Some(extra) = hooks.attention_mask() {
            attn.other_sample = attn.other_sample.bool_or(extra);
        }
        for (i, layer) in self.encoder.layers.iter().enumerate() {
            x = x.clone() + hooks.after_attention(i, layer.self_attn.forward(layer.norm1.forward(x.clone()), &attn, i, hooks));
            let h = layer.norm2.forward(x.clone());
            x = x + layer.ffn.fc2.forward(silu(layer.ffn.fc_gate.forward(h.clone())) * layer.ffn.fc1.forward(h));
        }
        let enc = self.encoder.norm.forward(x);
        (enc, loc_t, scale_t, onehot)
    }

    /// The forward pass of uni2ts's `MoiraiModule` up to the distribution's parameters.
    pub fn forward(&self, p: &Packed, device: &Device) -> MoiraiOutput {
        self.forward_with(p, device, &Plain)
    }

    /// [`Self::forward`] with a fine-tuning method's changes to the encoder.
    pub fn forward_with(&self, p: &Packed, device: &Device, hooks: &dyn EncoderHooks) -> MoiraiOutput {
        let (enc, loc, scale, onehot) = self.encode(p, device, hooks);
        let sizes = &self.patch_sizes;
        let params = self.params(enc.clone(), |lin| lin.forward(enc.clone(), &onehot, sizes));
        MoiraiOutput { loc, scale, encoder_output: enc, params }
    }

    /// Masked-prediction negative log-likelihood, as uni2ts pretrains (`PackedNLLLoss`): the mean
    /// over the (sample, variate) groups of the batch of each group's mean `-log p` over its
    /// observed values in prediction tokens.
    pub fn masked_nll(&self, p: &Packed, device: &Device) -> Tensor<1> {
        let counts = prediction_counts(p);
        let groups = counts.len().max(1) as f32;
        let l = p.tokens;
        self.prediction_nll(p, device, &Plain, 1, |i| (0, 1.0 / (counts[&(i / l, p.sample_id[i], p.variate_id[i])] as f32 * groups)))
    }

    /// `-log p` of the observed values of every prediction token `i` (flat `row * tokens +
    /// token`), times `weight(i).1`, summed into bucket `weight(i).0` of `[buckets]`. The
    /// distribution is computed only at prediction tokens, one patch size at a time (the
    /// training cost of the output projections).
    pub fn prediction_nll(&self, p: &Packed, device: &Device, hooks: &dyn EncoderHooks, buckets: usize, weight: impl Fn(usize) -> (usize, f32)) -> Tensor<1> {
        let (b, l, m) = (p.batch, p.tokens, p.max_patch);
        let (enc, loc, scale, _) = self.encode(p, device, hooks);
        let d = enc.dims()[2];
        let enc = enc.reshape([b * l, d]);
        let (loc, scale) = (loc.reshape([b * l, 1]), scale.reshape([b * l, 1]));
        let mut total: Tensor<1> = Tensor::zeros([buckets], device);
        for (k, &ps) in self.patch_sizes.iter().enumerate() {
            let idx: Vec<usize> = (0..b * l).filter(|&i| p.prediction[i] && p.sample_id[i] > 0 && p.patch_size[i] == ps).collect();
            if idx.is_empty() {
                continue;
            }
            let n = idx.len();
            let sel = Tensor::<1, Int>::from_data(TensorData::new(idx.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]), device);
            let e = enc.clone().select(0, sel.clone()).reshape([1, n, d]);
            let params = self.params(e.clone(), |lin| lin.forward_size(e.clone(), k, ps));
            let out = MoiraiOutput { loc: loc.clone().select(0, sel.clone()).reshape([1, n, 1]), scale: scale.clone().select(0, sel).reshape([1, n, 1]), encoder_output: e, params };
            let mut target = vec![0f32; n * m];
            let mut w = vec![0f32; n * m];
            let mut onehot = vec![0f32; n * buckets];
            for (j, &i) in idx.iter().enumerate() {
                let (bucket, wi) = weight(i);
                onehot[j * buckets + bucket] = 1.0;
                for q in 0..m {
                    target[j * m + q] = p.target[i * m + q];
                    if p.observed[i * m + q] {
                        w[j * m + q] = wi;
                    }
                }
            }
            let w = Tensor::<3>::from_data(TensorData::new(w, [1, n, m]), device);
            let lp = out.log_prob(Tensor::from_data(TensorData::new(target, [1, n, m]), device));
            let lp = lp.mask_fill(w.clone().equal_elem(0.0), 0.0);
            let per_token = -(lp * w).sum_dim(2).reshape([1, n]);
            let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, buckets]), device);
            total = total + per_token.matmul(onehot).reshape([buckets]);
        }
        total
    }

    fn heads(&self) -> usize {
        self.encoder.norm.gamma.dims()[0] / 64
    }

    /// The mixture's parameters from the encoder output, each projection applied by `apply`.
    fn params(&self, enc: Tensor<3>, apply: impl Fn(&MultiOutSizeLinear) -> Tensor<3>) -> MixtureParams {
        let [b, l, _] = enc.dims();
        let out = self.max_patch();
        let proj = &self.param_proj.proj;
        // "... (dim out_size) -> ... out_size dim"
        let one = |lin: &Option<MultiOutSizeLinear>| -> Tensor<3> { apply(lin.as_ref().expect("component parameter")) };
        let weights = apply(&proj.weights_logits).reshape([b, l, 4, out]).swap_dims(2, 3);
        let pos = |t: Tensor<3>| softplus(t, 1.0).clamp_min(f32::EPSILON);
        let c = &proj.components;
        MixtureParams {
            weights_logits: weights,
            t_df: softplus(one(&c[0].df), 1.0) + 2.0,
            t_loc: one(&c[0].loc),
            t_scale: pos(one(&c[0].scale)),
            normal_loc: one(&c[1].loc),
            nb_total_count: softplus(one(&c[2].total_count), 1.0),
            nb_logits: one(&c[2].logits),
            lognormal_loc: one(&c[3].loc),
            lognormal_scale: pos(one(&c[3].scale)),
        }
    }
}

/// Per-batch attention inputs: rotary cos/sin of the time ids, the variate bias selector and
/// the same-sample mask.
struct AttnInputs {
    cos: Tensor<4>,
    sin: Tensor<4>,
    same_var: Tensor<4>,
    other_sample: Tensor<4, Bool>,
    heads: usize,
}

impl AttnInputs {
    fn new(p: &Packed, heads: usize, device: &Device) -> Self {
        let (b, l) = (p.batch, p.tokens);
        // RoPE on 32 of each head's 64 dims: theta_i = 10000^(-2i/32), repeated per pair.
        let width = 32;
        let mut cos = Vec::with_capacity(b * l * width);
        let mut sin = Vec::with_capacity(b * l * width);
        for &t in &p.time_id {
            for k in 0..width {
                let theta = 1.0 / 10000f32.powf((2 * (k / 2)) as f32 / width as f32);
                let a = t as f32 * theta;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let mut same_var = Vec::with_capacity(b * l * l);
        let mut other = Vec::with_capacity(b * l * l);
        for r in 0..b {
            for i in 0..l {
                for j in 0..l {
                    same_var.push(if p.variate_id[r * l + i] == p.variate_id[r * l + j] { 1.0f32 } else { 0.0 });
                    other.push(p.sample_id[r * l + i] != p.sample_id[r * l + j]);
                }
            }
        }
        AttnInputs {
            cos: Tensor::from_data(TensorData::new(cos, [b, 1, l, width]), device),
            sin: Tensor::from_data(TensorData::new(sin, [b, 1, l, width]), device),
            same_var: Tensor::from_data(TensorData::new(same_var, [b, 1, l, l]), device),
            other_sample: Tensor::<4, Bool>::from_data(TensorData::new(other, [b, 1, l, l]), device),
            heads,
        }
    }

    /// Rotate the first 32 dims of every head: `cos * x + sin * rot(x)`, rot pairs (a, b) -> (-b, a).
    fn rope(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, l, hd] = x.dims();
        let r = x.clone().narrow(3, 0, 32);
        let rest = x.narrow(3, 32, hd - 32);
        let pairs = r.clone().reshape([b, h, l, 16, 2]);
        let (a, c) = (pairs.clone().narrow(4, 0, 1), pairs.narrow(4, 1, 1));
        let rotated = Tensor::cat(vec![-c, a], 4).reshape([b, h, l, 32]);
        let r = r * self.cos.clone() + rotated * self.sin.clone();
        Tensor::cat(vec![r, rest], 3)
    }
}

impl MoiraiAttention {
    fn forward(&self, x: Tensor<3>, a: &AttnInputs, layer: usize, hooks: &dyn EncoderHooks) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let h = a.heads;
        let split = |t: Tensor<3>| t.reshape([b, l, h, 64]).swap_dims(1, 2);
        let proj = |lin: &Linear, which: usize| {
            let y = lin.forward(x.clone());
            match hooks.qkv_delta(layer, which, &x) {
                Some(delta) => y + delta,
                None => y,
            }
        };
        let q = a.rope(self.q_norm.forward(split(proj(&self.q_proj, 0))));
        let k = a.rope(self.k_norm.forward(split(proj(&self.k_proj, 1))));
        let v = split(proj(&self.v_proj, 2));
        let emb = self.var_attn_bias.emb.weight.val(); // [2, heads]: row 0 other variate, row 1 same
        let other = emb.clone().narrow(0, 0, 1).reshape([1, h, 1, 1]);
        let same = emb.narrow(0, 1, 1).reshape([1, h, 1, 1]);
        let bias = other.clone() + (same - other) * a.same_var.clone();
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / 8.0) + bias;
        let out = crate::kernels::softmax::softmax_last(scores, Some(a.other_sample.clone())).matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        self.out_proj.forward(out)
    }
}

