//! MSFT on MOIRAI (`../shared/docs/msft.md`): a frozen MOIRAI backbone with per-scale input
//! adapters (identity-initialised `Linear(d, d)` after the input projection), per-scale LoRA on
//! the q/k/v projections of every layer (`A ~ N(0, 0.01^2)`, `B = 0`, scaled by alpha / r), a
//! within-scale attention mask, a cross-scale aggregator after every attention output
//! projection (coarse-to-fine and fine-to-coarse branches from the same input, averaged, the
//! affine maps zero-initialised), and a learned softmax weighting of the per-scale losses and
//! forecasts. Every part can be switched off (`MsftConfig`) for ablations; with `scales = 0`
//! and everything off it is the plain backbone, which the other fine-tuning methods use.
//!
//! A batch is univariate windows (one row per window and channel) of the same context length
//! L and horizon H; scale i is variate i of the row's one sample, its time ids counting its own
//! patches (see [`crate::adapters::msft`]).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Bool, Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::foundation::moirai::{EncoderHooks, Moirai, Packed, Part};
use crate::adapters::msft::{ScaleLayout, scales};

/// The MSFT parts and their settings (the reference: 3 new scales, LoRA r 16, alpha 16): the
/// `[msft]` table of a fine-tuning config. MSFT's per-scale LoRA has its own `lora_*` settings
/// (alpha 16, no dropout) beside the `lora` method's `[lora]` (alpha 32, dropout 0.05), as the
/// paper sets them apart; prompts and AdaLoRA are the other methods' and are not read here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsftConfig {
    /// Down-sampled scales added to the original (K).
    pub scales: usize,
    pub lora_rank: usize,
    pub lora_alpha: f64,
    /// Dropout on the LoRA (and AdaLoRA) path's input during training (the LoRA baseline: 0.05).
    pub lora_dropout: f64,
    /// Per-scale input adapters.
    pub adapters: bool,
    /// Per-scale LoRA on q/k/v.
    pub lora: bool,
    /// Attention only within a scale.
    pub within_scale: bool,
    /// The cross-scale aggregator.
    pub aggregator: bool,
    /// Learned softmax weights of the scales (off: equal weights).
    pub weighted: bool,
    /// Learned prompt tokens in front of every series (prompt tuning; 0: none). Set by the
    /// `prompt` method from the top-level `prompt_tokens`, never a `[msft]` key.
    #[serde(skip)]
    pub prompt_tokens: usize,
    /// AdaLoRA on q/k/v (the `adalora` method, from the top-level `[adalora]`; `None`: off).
    /// Never a `[msft]` key.
    #[serde(skip)]
    pub adalora: Option<crate::adapters::adalora::AdaLoraConfig>,
}

impl Default for MsftConfig {
    fn default() -> Self {
        MsftConfig { scales: 3, lora_rank: 16, lora_alpha: 16.0, lora_dropout: 0.0, adapters: true, lora: true, within_scale: true, aggregator: true, weighted: true, prompt_tokens: 0, adalora: None }
    }
}

impl MsftConfig {
    /// The plain backbone on the original scale (what full, linear-probe and LoRA fine-tune).
    pub fn off() -> Self {
        MsftConfig { scales: 0, adapters: false, lora: false, within_scale: false, aggregator: false, weighted: false, ..Default::default() }
    }

    /// What MSFT trains of the backbone: norms, mask embedding, attention output projection,
    /// variate bias and head (input projection, q/k/v and FFN frozen).
    pub const BACKBONE_TRAINABLE: [Part; 5] = [Part::Norms, Part::MaskEncoding, Part::OutProj, Part::VarBias, Part::Head];
}

#[derive(Module, Debug)]
pub struct MsftMoirai {
    pub backbone: Moirai,
    /// One per scale.
    adapters: Vec<Linear>,
    /// Per layer: `[3 (q, k, v), scales, d, r]` and `[3, scales, r, d]`.
    lora_a: Vec<Param<Tensor<4>>>,
    lora_b: Vec<Param<Tensor<4>>>,
    /// Per layer: `[4 (gamma c2f, beta c2f, gamma f2c, beta f2c), K, d]`.
    aggregator: Vec<Param<Tensor<3>>>,
    /// `[scales]`, initialised to ones.
    pub scale_weights: Param<Tensor<1>>,
    /// `[prompt tokens, d]`, replacing the prefix tokens' embeddings (N(0, 0.02^2) init).
    prompts: Option<Param<Tensor<2>>>,
    /// AdaLoRA on q/k/v, matrix `layer * 3 + (0 q, 1 k, 2 v)` (`None` when off).
    ada: Option<crate::adapters::adalora::AdaLora>,
    lora_scale: f64,
    lora_dropout: crate::layers::dropout::Dropout,
    use_adapters: bool,
    use_lora: bool,
    within_scale: bool,
    use_aggregator: bool,
    weighted: bool,
}

impl MsftMoirai {
    /// Wrap `backbone` (its trainable set is the caller's choice, see [`Moirai::freeze_except`]).
    pub fn new(backbone: Moirai, cfg: &MsftConfig, device: &Device) -> Self {
        let (d, s, layers, r) = (backbone.d_model(), cfg.scales + 1, backbone.num_layers(), cfg.lora_rank.max(1));
        let on = |b: bool, n: usize| if b { n } else { 0 };
        MsftMoirai {
            adapters: (0..on(cfg.adapters, s)).map(|_| crate::adapters::msft::identity_linear(d, device)).collect(),
            lora_a: (0..on(cfg.lora, layers)).map(|_| Param::from_tensor(Tensor::random([3, s, d, r], Distribution::Normal(0.0, 0.01), device))).collect(),
            lora_b: (0..on(cfg.lora, layers)).map(|_| Param::from_tensor(Tensor::zeros([3, s, r, d], device))).collect(),
            aggregator: (0..on(cfg.aggregator && cfg.scales > 0, layers)).map(|_| Param::from_tensor(Tensor::zeros([4, cfg.scales, d], device))).collect(),
            scale_weights: Param::from_tensor(Tensor::ones([s], device)).set_require_grad(cfg.weighted),
            ada: cfg.adalora.as_ref().map(|a| crate::adapters::adalora::AdaLora::new(&vec![(d, d); layers * 3], a, device)),
            prompts: (cfg.prompt_tokens > 0).then(|| Param::from_tensor(Tensor::random([cfg.prompt_tokens, d], Distribution::Normal(0.0, 0.02), device))),
            lora_scale: cfg.lora_alpha / r as f64,
            lora_dropout: crate::layers::dropout::Dropout::new(cfg.lora_dropout),
            use_adapters: cfg.adapters,
            use_lora: cfg.lora,
            within_scale: cfg.within_scale,
            use_aggregator: cfg.aggregator && cfg.scales > 0,
            weighted: cfg.weighted,
            backbone,
        }
    }

    pub fn scales(&self) -> usize {
        self.scale_weights.dims()[0]
    }

    fn prefix(&self) -> usize {
        self.prompts.as_ref().map_or(0, |p| p.dims()[0])
    }

    /// The token layout of a window of context `l` and horizon `h`.
    pub fn layout(&self, l: usize, h: usize, patch: usize) -> ScaleLayout {
        ScaleLayout::new(l, h, patch, self.scales() - 1).with_prefix(self.prefix())
    }

    /// Softmax of the scale weights (equal weights when weighting is off).
    pub fn mix_weights(&self) -> Tensor<1> {
        burn::tensor::activation::softmax(crate::adapters::msft::mix_logits(&self.scale_weights, self.weighted), 0)
    }

    /// The host copy of [`Self::mix_weights`]'s logits.
    pub fn mix_logits(&self) -> Vec<f32> {
        crate::adapters::msft::mix_logits(&self.scale_weights, self.weighted).into_data().try_to_vec::<f32>().expect("f32")
    }

    /// Loss for a batch of `[rows, L]` contexts and `[rows, H]` targets: sum over scales of the
    /// mixture weight times the scale's NLL (mean over rows of each row's mean NLL over its
    /// observed horizon values).
    pub fn loss(&self, context: &[f32], target: &[f32], rows: usize, patch: usize, device: &Device) -> Tensor<1> {
        let (l, h) = (context.len() / rows, target.len() / rows);
        let layout = self.layout(l, h, patch);
        let p = self.pack(context, target, rows, &layout);
        let counts = crate::foundation::moirai::prediction_counts(&p);
        let scale_of = layout.scale_of_tokens();
        let t = layout.total();
        let hooks = self.hooks(&layout, rows, device);
        let per_scale = self.backbone.prediction_nll(&p, device, &hooks, self.scales(), |i| {
            let c = counts[&(i / t, 1, scale_of[i % t] as i64)] as f32;
            (scale_of[i % t], 1.0 / (c * rows as f32))
        });
        (per_scale * self.mix_weights()).sum()
    }

    /// AdaLoRA: every `delta_t` steps from `t_init` on, keep the budget's best triplets.
    pub fn ada_prune(mut self, step: usize, total: usize) -> Self {
        self.ada = self.ada.map(|a| a.prune(step, total));
        self
    }

    /// AdaLoRA itself (`None` when off).
    pub fn ada(&self) -> Option<&crate::adapters::adalora::AdaLora> {
        self.ada.as_ref()
    }


    /// Pack `rows` univariate windows into rows of all scales' tokens.
    pub fn pack(&self, context: &[f32], target: &[f32], rows: usize, layout: &ScaleLayout) -> Packed {
        let (l, h) = (context.len() / rows, target.len() / rows);
        let (t, m, p) = (layout.total(), self.backbone.max_patch(), layout.patch);
        let mut out = Packed {
            batch: rows,
            tokens: t,
            max_patch: m,
            target: vec![0.0; rows * t * m],
            observed: vec![false; rows * t * m],
            sample_id: vec![1; rows * t],
            time_id: vec![0; rows * t],
            variate_id: vec![0; rows * t],
            prediction: vec![false; rows * t],
            patch_size: vec![p; rows * t],
        };
        for r in 0..rows {
            for k in 0..layout.prefix {
                // Prompt tokens: their own variate id, never observed nor predicted.
                (out.variate_id[r * t + k], out.time_id[r * t + k]) = (layout.scales() as i64, k as i64);
            }
            let all = scales(&context[r * l..(r + 1) * l], &target[r * h..(r + 1) * h], layout.scales() - 1);
            for (i, (c, f)) in all.iter().enumerate() {
                let (ct, pt) = layout.tokens[i];
                let pad = ct * p - c.len();
                let start = r * t + layout.start(i);
                for tok in 0..ct + pt {
                    let at = start + tok;
                    out.variate_id[at] = i as i64;
                    out.time_id[at] = tok as i64;
                    out.prediction[at] = tok >= ct;
                    for q in 0..p {
                        let v = if tok < ct { (tok * p + q).checked_sub(pad).map(|s| c[s]) } else { f.get((tok - ct) * p + q).copied() };
                        if let Some(v) = v.filter(|v| !v.is_nan()) {
                            out.target[at * m + q] = v;
                            out.observed[at * m + q] = true;
                        }
                    }
                }
            }
        }
        out
    }

    fn hooks(&self, layout: &ScaleLayout, rows: usize, device: &Device) -> MsftHooks<'_> {
        let t = layout.total();
        let ranges: Vec<(usize, usize)> = (0..layout.scales()).map(|i| (layout.start(i), layout.tokens[i].0 + layout.tokens[i].1)).collect();
        let maps = |i: usize| {
            let (c2f, f2c) = layout.aggregator_maps(i);
            (Tensor::<2>::from_data(TensorData::new(c2f, [t, t]), device), Tensor::<2>::from_data(TensorData::new(f2c, [t, t]), device))
        };
        MsftHooks {
            m: self,
            prefix: layout.prefix,
            ranges,
            maps: if self.use_aggregator { (0..layout.scales() - 1).map(maps).collect() } else { vec![] },
            mask: self.within_scale.then(|| Tensor::<4, Bool>::from_data(TensorData::new(layout.within_scale_mask(), [1, 1, t, t]), device).expand([rows, 1, t, t])),
        }
    }

    /// Forecast `[rows, H]` from `[rows, L]` contexts: `paths` seeded sample paths per scale,
    /// each cut to its scale's horizon, upsampled and mixed with the scale weights. Returns the
    /// mixed paths `[rows, paths, H]`.
    pub fn forecast_paths(&self, context: &[f32], rows: usize, h: usize, patch: usize, paths: usize, seed: u64, device: &Device) -> Vec<f32> {
        let l = context.len() / rows;
        let layout = self.layout(l, h, patch);
        let p = self.pack(context, &vec![f32::NAN; rows * h], rows, &layout);
        let out = self.backbone.forward_with(&p, device, &self.hooks(&layout, rows, device));
        let (t, m) = (layout.total(), p.max_patch);
        let w = self.mix_logits();
        // Every (row, scale) horizon position, drawn in one call: `[paths, positions]`.
        let mut at = Vec::new();
        let mut offsets = Vec::new();
        for r in 0..rows {
            for i in 0..layout.scales() {
                let (ct, hi) = (layout.tokens[i].0, layout.steps[i].1);
                offsets.push(at.len());
                at.extend((0..hi).map(|s| (r * t + layout.start(i) + ct + s / patch) * m + s % patch));
            }
        }
        let draws = out.sample_at(paths, seed, &at);
        let points = at.len();
        let mut mixed = vec![0f32; rows * paths * h];
        for r in 0..rows {
            let per_scale: Vec<(Vec<f32>, usize)> = (0..layout.scales())
                .map(|i| {
                    let (off, hi) = (offsets[r * layout.scales() + i], layout.steps[i].1);
                    ((0..paths).flat_map(|s| draws[s * points + off..s * points + off + hi].iter().copied()).collect(), hi)
                })
                .collect();
            let rows_out = crate::adapters::msft::upsample_mix(&per_scale, paths, h, &w);
            mixed[r * paths * h..(r + 1) * paths * h].copy_from_slice(&rows_out);
        }
        mixed
    }

    /// The backbone's predictive mean at scale 0's horizon, `[rows, H]` (MSFT's scale-0 output).
    pub fn scale0_mean(&self, context: &[f32], rows: usize, h: usize, patch: usize, device: &Device) -> Vec<f32> {
        let l = context.len() / rows;
        let layout = self.layout(l, h, patch);
        let p = self.pack(context, &vec![f32::NAN; rows * h], rows, &layout);
        let mean = self.backbone.forward_with(&p, device, &self.hooks(&layout, rows, device)).mean().into_data().try_to_vec::<f32>().expect("f32");
        let (t, m, ct) = (layout.total(), p.max_patch, layout.tokens[0].0);
        (0..rows).flat_map(|r| (0..h).map(move |s| (r, s))).map(|(r, s)| mean[(r * t + ct + s / patch) * m + s % patch]).collect()
    }
}

/// MSFT's changes to the encoder for one batch layout.
struct MsftHooks<'a> {
    m: &'a MsftMoirai,
    prefix: usize,
    /// `(first token, tokens)` of every scale.
    ranges: Vec<(usize, usize)>,
    /// Per aggregator level: coarse-to-fine and fine-to-coarse maps `[t, t]`.
    maps: Vec<(Tensor<2>, Tensor<2>)>,
    mask: Option<Tensor<4, Bool>>,
}

impl MsftHooks<'_> {
    /// `f(scale, tokens of that scale)` for every scale, concatenated back on the token axis
    /// after the prefix tokens mapped by `prefix`.
    fn per_scale(&self, x: &Tensor<3>, prefix: impl Fn(Tensor<3>) -> Tensor<3>, f: impl Fn(usize, Tensor<3>) -> Tensor<3>) -> Tensor<3> {
        let head = (self.prefix > 0).then(|| prefix(x.clone().narrow(1, 0, self.prefix)));
        Tensor::cat(head.into_iter().chain(self.ranges.iter().enumerate().map(|(i, &(s, n))| f(i, x.clone().narrow(1, s, n)))).collect(), 1)
    }
}

impl EncoderHooks for MsftHooks<'_> {
    fn after_in_proj(&self, x: Tensor<3>) -> Tensor<3> {
        let x = if self.m.use_adapters { self.per_scale(&x, |p| p, |i, xi| self.m.adapters[i].forward(xi)) } else { x };
        match &self.m.prompts {
            Some(p) => {
                let [b, t, d] = x.dims();
                let n = self.prefix;
                Tensor::cat(vec![p.val().unsqueeze_dim::<3>(0).expand([b, n, d]), x.narrow(1, n, t - n)], 1)
            }
            None => x,
        }
    }

    fn qkv_delta(&self, layer: usize, which: usize, x: &Tensor<3>) -> Option<Tensor<3>> {
        let ada = self.m.ada.as_ref().map(|a| a.apply(layer * 3 + which, self.m.lora_dropout.forward(x.clone())));
        if !self.m.use_lora {
            return ada;
        }
        let (a, b) = (self.m.lora_a[layer].val(), self.m.lora_b[layer].val());
        let [_, _, d, r] = a.dims();
        Some(self.per_scale(x, |p| p.zeros_like(), |i, xi| {
            let ai = a.clone().narrow(0, which, 1).narrow(1, i, 1).reshape([1, d, r]);
            let bi = b.clone().narrow(0, which, 1).narrow(1, i, 1).reshape([1, r, d]);
            self.m.lora_dropout.forward(xi).matmul(ai).matmul(bi) * self.m.lora_scale
        }))
        .map(|delta| match ada {
            Some(a) => delta + a,
            None => delta,
        })
    }

    fn after_attention(&self, layer: usize, x: Tensor<3>) -> Tensor<3> {
        if self.maps.is_empty() {
            return x;
        }
        let p = self.m.aggregator[layer].val();
        let [_, k, d] = p.dims();
        let row = |j: usize, level: usize| p.clone().narrow(0, j, 1).narrow(1, level, 1).reshape([1, 1, d]);
        let mut delta = x.zeros_like();
        for (level, (c2f, f2c)) in self.maps.iter().enumerate().take(k) {
            let phi_c = x.clone() * row(0, level) + row(1, level);
            let phi_f = x.clone() * row(2, level) + row(3, level);
            delta = delta + c2f.clone().unsqueeze_dim(0).matmul(phi_c) + f2c.clone().unsqueeze_dim(0).matmul(phi_f);
        }
        x + delta * 0.5
    }

    fn attention_mask(&self) -> Option<Tensor<4, Bool>> {
        self.mask.clone()
    }
}

/// Median of each `[rows, paths, h]` step over the paths, `[rows, h]`.
pub fn path_median(paths: &[f32], rows: usize, n: usize, h: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * h);
    for r in 0..rows {
        for t in 0..h {
            let mut v: Vec<f32> = (0..n).map(|s| paths[(r * n + s) * h + t]).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            out.push(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) });
        }
    }
    out
}

/// Mean of each step over the paths, `[rows, h]`.
pub fn path_mean(paths: &[f32], rows: usize, n: usize, h: usize) -> Vec<f32> {
    (0..rows).flat_map(|r| (0..h).map(move |t| (0..n).map(|s| paths[(r * n + s) * h + t]).sum::<f32>() / n as f32)).collect()
}
