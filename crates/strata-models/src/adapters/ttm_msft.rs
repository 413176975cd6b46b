//! MSFT on TinyTimeMixer: the adaptation `../shared/docs/msft.md` describes for MLP-mixer
//! backbones (see docs/finetune.md).
//!
//! TinyTimeMixer reads a fixed context (512 steps, 8 patches) and its patch mixers are MLPs
//! over exactly that many patches, so a scale cannot be a shorter sequence. Scale i is instead
//! the last `512 * 2^i` steps down-sampled i times (the same NaN-aware pair means): the same 8
//! patches, each covering `2^i` times the time. The window therefore reads `512 * 2^K` steps of
//! history. Each scale runs as its own sequence (the within-scale constraint holds by
//! construction) with its own identity-initialised adapter after the frozen patch embedding and
//! its own LoRA on fc1/fc2 of every mixer (patch and feature mixers, encoder and decoder). After
//! every encoder block a cross-scale aggregator aligns scale i's 8 patches with the last 4 of
//! scale i+1 (one coarse patch spans two fine ones): coarse-to-fine adds `phi(coarse[4 + j/2])`
//! to fine patch j, fine-to-coarse adds the mean of `phi` of fine patches 2c and 2c+1 to coarse
//! patch 4 + c, both from the same input and averaged, `phi` zero-initialised. TinyTimeMixer is
//! a point forecaster: the loss is `sum_i softmax(w)_i MSE_i` on each scale's down-sampled
//! horizon (its first `H_i` forecast steps), and the forecast mixes the per-scale point
//! forecasts, cut to `H_i` and upsampled, with `softmax(w)`.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::adapters::moirai_msft::MsftConfig;
use crate::adapters::msft::{downsample, upsample_mix};
use crate::foundation::ttm::{TinyTimeMixer, TtmHooks};

#[derive(Module, Debug)]
pub struct TtmLora {
    /// `[scales, in, r]`, `[scales, r, hidden]` for fc1; `[scales, hidden, r]`, `[scales, r, in]` for fc2.
    a1: Param<Tensor<3>>,
    b1: Param<Tensor<3>>,
    a2: Param<Tensor<3>>,
    b2: Param<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct TtmMsft {
    pub backbone: TinyTimeMixer,
    adapters: Vec<Linear>,
    /// One per mixer (empty without LoRA).
    lora: Vec<TtmLora>,
    /// Per encoder block: `[4 (gamma c2f, beta c2f, gamma f2c, beta f2c), K, d]`.
    aggregator: Vec<Param<Tensor<3>>>,
    pub scale_weights: Param<Tensor<1>>,
    /// Prompt tuning: `[prompt tokens, d]` learned patch embeddings that replace the oldest
    /// patches' embeddings (`None`: off).
    prompts: Option<Param<Tensor<2>>>,
    /// AdaLoRA on fc1 and fc2 of every mixer, matrix `mixer * 2 + (0 fc1, 1 fc2)` (`None`: off).
    ada: Option<crate::adapters::adalora::AdaLora>,
    lora_scale: f64,
    /// LoRA dropout (on the LoRA / AdaLoRA path's input, training only).
    lora_dropout: crate::layers::dropout::Dropout,
    weighted: bool,
}

impl TtmMsft {
    /// Wrap `backbone` (freeze it first: [`TinyTimeMixer::freeze_for_msft`]). `cfg.within_scale`
    /// holds by construction. `prompt_tokens` learned embeddings (`N(0, 0.02^2)`) replace the
    /// embeddings of the oldest patches after the patch embedding (the patch mixers read a fixed
    /// number of patches, so prompts cannot be prepended; fewer than the patches); `adalora`
    /// adapts fc1/fc2 of every mixer.
    pub fn new(backbone: TinyTimeMixer, cfg: &MsftConfig, device: &Device) -> Self {
        let (d, s, r) = (backbone.d_model(), cfg.scales + 1, cfg.lora_rank.max(1));
        assert!(cfg.prompt_tokens < backbone.num_patches(), "TinyTimeMixer reads {} patches: prompt_tokens must be fewer", backbone.num_patches());
        let shapes: Vec<(usize, usize)> = (0..backbone.mixer_count()).flat_map(|id| {
            let (i, h) = backbone.mixer_shape(id);
            [(i, h), (h, i)]
        }).collect();
        let a = |rows: usize| Param::from_tensor(Tensor::random([s, rows, r], Distribution::Normal(0.0, 0.01), device));
        let b = |cols: usize| Param::from_tensor(Tensor::zeros([s, r, cols], device));
        let lora = if cfg.lora {
            (0..backbone.mixer_count())
                .map(|id| {
                    let (i, h) = backbone.mixer_shape(id);
                    TtmLora { a1: a(i), b1: b(h), a2: a(h), b2: b(i) }
                })
                .collect()
        } else {
            vec![]
        };
        let blocks = backbone.encoder_blocks();
        TtmMsft {
            adapters: if cfg.adapters { (0..s).map(|_| crate::adapters::msft::identity_linear(d, device)).collect() } else { vec![] },
            lora,
            aggregator: if cfg.aggregator && cfg.scales > 0 { (0..blocks).map(|_| Param::from_tensor(Tensor::zeros([4, cfg.scales, d], device))).collect() } else { vec![] },
            scale_weights: Param::from_tensor(Tensor::ones([s], device)).set_require_grad(cfg.weighted),
            prompts: (cfg.prompt_tokens > 0).then(|| Param::from_tensor(Tensor::random([cfg.prompt_tokens, d], Distribution::Normal(0.0, 0.02), device))),
            ada: cfg.adalora.as_ref().map(|a| crate::adapters::adalora::AdaLora::new(&shapes, a, device)),
            lora_scale: cfg.lora_alpha / r as f64,
            lora_dropout: crate::layers::dropout::Dropout::new(cfg.lora_dropout),
            weighted: cfg.weighted,
            backbone,
        }
    }

    pub fn scales(&self) -> usize {
        self.scale_weights.dims()[0]
    }

    /// Context steps a window needs: `context_length * 2^K`.
    pub fn history(&self) -> usize {
        self.backbone.context_length() << (self.scales() - 1)
    }

    fn mix_weight_tensor(&self) -> Tensor<1> {
        burn::tensor::activation::softmax(crate::adapters::msft::mix_logits(&self.scale_weights, self.weighted), 0)
    }

    /// Softmax of the scale weights as used for mixing.
    pub fn mix_weights(&self) -> Vec<f32> {
        crate::adapters::msft::softmax(&self.mix_logits())
    }

    fn mix_logits(&self) -> Vec<f32> {
        crate::adapters::msft::mix_logits(&self.scale_weights, self.weighted).into_data().try_to_vec::<f32>().expect("f32")
    }

    /// Scale i of `rows` univariate contexts `[rows, history]`: the last `context * 2^i` steps,
    /// down-sampled i times -> `[rows, context]`.
    fn scale_input(&self, context: &[f32], rows: usize, i: usize) -> Vec<f32> {
        let n = context.len() / rows;
        let (c, take) = (self.backbone.context_length(), self.backbone.context_length() << i);
        let mut out = Vec::with_capacity(rows * c);
        for r in 0..rows {
            let mut x = context[r * n + n - take..(r + 1) * n].to_vec();
            for _ in 0..i {
                x = downsample(&x, &[]).0;
            }
            out.extend(x);
        }
        out
    }

    /// Per-scale forecasts `[rows, horizon]` (each scale on its own time axis).
    fn scale_forecasts(&self, context: &[f32], rows: usize, device: &Device) -> Vec<Tensor<3>> {
        let s = self.scales();
        let c = self.backbone.context_length();
        let hooks: Vec<ScaleHooks> = (0..s).map(|i| ScaleHooks { m: self, scale: i }).collect();
        let mut states: Vec<(Tensor<4>, Tensor<3>, Tensor<3>)> = (0..s)
            .map(|i| {
                let x = Tensor::<3>::from_data(TensorData::new(self.scale_input(context, rows, i), [rows, c, 1]), device);
                self.backbone.embed(x, &hooks[i])
            })
            .collect();
        for k in 0..self.backbone.encoder_blocks() {
            let hs: Vec<Tensor<4>> = states.iter().enumerate().map(|(i, st)| self.backbone.encoder_block(k, st.0.clone(), &hooks[i])).collect();
            let hs = self.aggregate(k, hs, device);
            for (st, h) in states.iter_mut().zip(hs) {
                st.0 = h;
            }
        }
        states.into_iter().enumerate().map(|(i, (h, loc, scale))| self.backbone.decode(h, loc, scale, &hooks[i])).collect()
    }

    /// The cross-scale aggregator after encoder block `k` (a no-op when off).
    fn aggregate(&self, k: usize, hs: Vec<Tensor<4>>, device: &Device) -> Vec<Tensor<4>> {
        if self.aggregator.is_empty() {
            return hs;
        }
        let p = self.aggregator[k].val();
        let [_, _, d] = p.dims();
        let n = self.backbone.num_patches();
        let (c2f, f2c) = patch_maps(n);
        let c2f = Tensor::<2>::from_data(TensorData::new(c2f, [n, n]), device).reshape([1, 1, n, n]);
        let f2c = Tensor::<2>::from_data(TensorData::new(f2c, [n, n]), device).reshape([1, 1, n, n]);
        let row = |j: usize, level: usize| p.clone().narrow(0, j, 1).narrow(1, level, 1).reshape([1, 1, 1, d]);
        let mut delta: Vec<Tensor<4>> = hs.iter().map(|h| h.zeros_like()).collect();
        for level in 0..hs.len() - 1 {
            let (fine, coarse) = (&hs[level], &hs[level + 1]);
            delta[level] = delta[level].clone() + c2f.clone().matmul(coarse.clone() * row(0, level) + row(1, level));
            delta[level + 1] = delta[level + 1].clone() + f2c.clone().matmul(fine.clone() * row(2, level) + row(3, level));
        }
        hs.into_iter().zip(delta).map(|(h, dl)| h + dl * 0.5).collect()
    }

    /// `sum_i softmax(w)_i MSE_i`: scale i's first `H_i` forecast steps against the horizon
    /// down-sampled i times. `context` `[rows, history]`, `target` `[rows, H]`.
    pub fn loss(&self, context: &[f32], target: &[f32], rows: usize, device: &Device) -> Tensor<1> {
        let h = target.len() / rows;
        let preds = self.scale_forecasts(context, rows, device);
        let mut per_scale = Vec::with_capacity(preds.len());
        for (i, y) in preds.into_iter().enumerate() {
            let mut truth = Vec::new();
            for r in 0..rows {
                let mut t = target[r * h..(r + 1) * h].to_vec();
                for _ in 0..i {
                    t = downsample(&[], &t).1;
                }
                truth.extend(t);
            }
            let hi = truth.len() / rows;
            let truth = Tensor::<3>::from_data(TensorData::new(truth, [rows, hi, 1]), device);
            per_scale.push((y.narrow(1, 0, hi) - truth).powf_scalar(2.0).mean().reshape([1]));
        }
        (Tensor::cat(per_scale, 0) * self.mix_weight_tensor()).sum()
    }

    /// Mixed point forecasts `[rows, h]`.
    pub fn forecast(&self, context: &[f32], rows: usize, h: usize, device: &Device) -> Vec<f32> {
        let preds = self.scale_forecasts(context, rows, device);
        let host: Vec<Vec<f32>> = preds.into_iter().map(|y| y.into_data().try_to_vec::<f32>().expect("f32")).collect();
        let len = self.backbone.horizon();
        let w = self.mix_logits();
        (0..rows)
            .flat_map(|r| {
                let per: Vec<(Vec<f32>, usize)> = host.iter().map(|y| (y[r * len..(r + 1) * len].to_vec(), len)).collect();
                upsample_mix(&per, 1, h, &w)
            })
            .collect()
    }

    /// AdaLoRA: the orthogonality penalty, the importance scores, the budget, the ranks kept.
    pub fn ada(&self) -> Option<&crate::adapters::adalora::AdaLora> {
        self.ada.as_ref()
    }

    /// AdaLoRA's budget re-allocation after optimiser step `step` of `total` (a no-op when off).
    pub fn ada_prune(mut self, step: usize, total: usize) -> Self {
        self.ada = self.ada.map(|a| a.prune(step, total));
        self
    }

    /// Scale 0's forecast `[rows, H]` (the backbone's at initialisation).
    pub fn scale0(&self, context: &[f32], rows: usize, device: &Device) -> Vec<f32> {
        self.scale_forecasts(context, rows, device).swap_remove(0).into_data().try_to_vec::<f32>().expect("f32")
    }
}

/// The aggregator's alignment of `n` fine patches with the last `n / 2` coarse ones, as
/// `[n, n]` row-major maps: coarse-to-fine (`fine j <- coarse n/2 + j/2`) and fine-to-coarse
/// (`coarse n/2 + c <- (fine 2c + fine 2c+1) / 2`).
pub fn patch_maps(n: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut c2f, mut f2c) = (vec![0f32; n * n], vec![0f32; n * n]);
    for j in 0..n {
        let c = n / 2 + j / 2;
        c2f[j * n + c] = 1.0;
        f2c[c * n + j] = 0.5;
    }
    (c2f, f2c)
}

struct ScaleHooks<'a> {
    m: &'a TtmMsft,
    scale: usize,
}

impl TtmHooks for ScaleHooks<'_> {
    fn after_patcher(&self, h: Tensor<4>) -> Tensor<4> {
        let h = match self.m.adapters.get(self.scale) {
            Some(a) => a.forward(h),
            None => h,
        };
        match &self.m.prompts {
            Some(p) => {
                let ([b, c, n, d], [k, _]) = (h.dims(), p.dims());
                Tensor::cat(vec![p.val().reshape([1, 1, k, d]).expand([b, c, k, d]), h.narrow(2, k, n - k)], 2)
            }
            None => h,
        }
    }

    fn delta_dropout(&self) -> Option<&crate::layers::dropout::Dropout> {
        (self.m.lora_dropout.inner.prob > 0.0).then_some(&self.m.lora_dropout)
    }

    fn weight_delta(&self, mixer: usize, which: usize) -> Option<Tensor<2>> {
        let ada = self.m.ada.as_ref().map(|a| a.delta(mixer * 2 + which));
        let Some(l) = self.m.lora.get(mixer) else { return ada };
        let (a, b) = if which == 0 { (&l.a1, &l.b1) } else { (&l.a2, &l.b2) };
        let (a, b) = (a.val(), b.val());
        let ([_, i, r], [_, _, o]) = (a.dims(), b.dims());
        let ai = a.narrow(0, self.scale, 1).reshape([i, r]);
        let bi = b.narrow(0, self.scale, 1).reshape([r, o]);
        let lora = ai.matmul(bi) * self.m.lora_scale;
        Some(match ada {
            Some(d) => lora + d,
            None => lora,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_alignment_by_hand() {
        // 8 fine patches <-> coarse patches 4..7, two fine per coarse.
        let (c2f, f2c) = patch_maps(8);
        let coarse_of: Vec<usize> = (0..8).map(|j| (0..8).find(|&c| c2f[j * 8 + c] == 1.0).unwrap()).collect();
        assert_eq!(coarse_of, [4, 4, 5, 5, 6, 6, 7, 7]);
        assert_eq!(&f2c[5 * 8..6 * 8], &[0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        assert!(f2c[..4 * 8].iter().all(|&v| v == 0.0), "the first coarse patches span time before the fine scale");
    }
}
