//! The backbone-independent parts of MSFT (multi-scale fine-tuning, Qiao et al., NeurIPS 2025;
//! `../shared/docs/msft.md`): down-sampling a window into scales, the token layout of the
//! scales, the within-scale attention mask, the cross-scale aggregator's alignment maps, and the
//! upsample-and-mix of per-scale forecasts at inference.
//!
//! A window is `context` (length L) and `horizon` (length H) values with NaN where missing.
//! Scale 0 is the window itself; scale i halves scale i-1 by a NaN-aware mean over pairs, the
//! context left-padded (NaN) to an even length and the horizon right-padded, so
//! `L_i = ceil(L_{i-1} / 2)` and `H_i = ceil(H_{i-1} / 2)`. Every scale is then patched in
//! patches of P: `ceil(L_i / P)` context tokens (left-padded) and `ceil(H_i / P)` prediction
//! tokens (right-padded). Tokens are laid out scale by scale, each scale's context tokens then
//! its prediction tokens.

/// A `Linear(d, d)` initialised to the identity (MSFT's per-scale input adapters).
pub fn identity_linear(d: usize, device: &burn::tensor::Device) -> burn::nn::Linear {
    use burn::module::Param;
    use burn::tensor::{Tensor, TensorData};
    let mut lin = burn::nn::LinearConfig::new(d, d).init(device);
    let eye: Vec<f32> = (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect();
    lin.weight = Param::from_tensor(Tensor::from_data(TensorData::new(eye, [d, d]), device));
    lin.bias = Some(Param::from_tensor(Tensor::zeros([d], device)));
    lin
}

/// Mean of the observed (non-NaN) values of each pair; NaN where neither is observed.
fn pair_means(x: &[f32]) -> Vec<f32> {
    x.chunks(2)
        .map(|c| {
            let obs: Vec<f32> = c.iter().copied().filter(|v| !v.is_nan()).collect();
            if obs.is_empty() { f32::NAN } else { obs.iter().sum::<f32>() / obs.len() as f32 }
        })
        .collect()
}

/// One down-sampling step: the context left-padded with NaN to an even length, the horizon
/// right-padded, each halved by a NaN-aware mean (a pair is observed if either value is).
pub fn downsample(context: &[f32], horizon: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut c = Vec::with_capacity(context.len() + 1);
    if context.len() % 2 == 1 {
        c.push(f32::NAN);
    }
    c.extend_from_slice(context);
    let mut h = horizon.to_vec();
    if h.len() % 2 == 1 {
        h.push(f32::NAN);
    }
    (pair_means(&c), pair_means(&h))
}

/// Scale 0 (the window) and `k` down-sampled scales: `(context_i, horizon_i)`.
pub fn scales(context: &[f32], horizon: &[f32], k: usize) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mut out = vec![(context.to_vec(), horizon.to_vec())];
    for _ in 0..k {
        let (c, h) = out.last().expect("scale 0");
        let next = downsample(c, h);
        out.push(next);
    }
    out
}

/// Token counts of every scale for context `l`, horizon `h`, patch `p`, `k` extra scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleLayout {
    /// `(context tokens, prediction tokens)` of each scale.
    pub tokens: Vec<(usize, usize)>,
    /// `(L_i, H_i)`: steps of each scale.
    pub steps: Vec<(usize, usize)>,
    pub patch: usize,
    /// Tokens before the scales (prompt tokens), attending and attended across scales.
    pub prefix: usize,
}

impl ScaleLayout {
    pub fn new(l: usize, h: usize, p: usize, k: usize) -> Self {
        let mut steps = vec![(l, h)];
        for _ in 0..k {
            let (a, b) = *steps.last().expect("scale 0");
            steps.push((a.div_ceil(2), b.div_ceil(2)));
        }
        let tokens = steps.iter().map(|&(a, b)| (a.div_ceil(p), b.div_ceil(p))).collect();
        ScaleLayout { tokens, steps, patch: p, prefix: 0 }
    }

    /// The same layout after `n` prefix tokens.
    pub fn with_prefix(mut self, n: usize) -> Self {
        self.prefix = n;
        self
    }

    pub fn scales(&self) -> usize {
        self.tokens.len()
    }

    /// All tokens: the prefix and every scale's.
    pub fn total(&self) -> usize {
        self.prefix + self.tokens.iter().map(|(c, p)| c + p).sum::<usize>()
    }

    /// First token of scale `i`.
    pub fn start(&self, i: usize) -> usize {
        self.prefix + self.tokens[..i].iter().map(|(c, p)| c + p).sum::<usize>()
    }

    /// The scale of every token (`usize::MAX` for the prefix).
    pub fn scale_of_tokens(&self) -> Vec<usize> {
        let scales = self.tokens.iter().enumerate().flat_map(|(i, (c, p))| std::iter::repeat_n(i, c + p));
        std::iter::repeat_n(usize::MAX, self.prefix).chain(scales).collect()
    }

    /// `[total, total]`, true where query and key are in different scales (masked); prefix
    /// tokens are not masked.
    pub fn within_scale_mask(&self) -> Vec<bool> {
        let s = self.scale_of_tokens();
        s.iter().flat_map(|&a| s.iter().map(move |&b| a != b && a != usize::MAX && b != usize::MAX)).collect()
    }

    /// The cross-scale alignment between scale `i` (fine) and `i + 1` (coarse): pairs
    /// `(fine token, coarse token)`, absolute token indices. Context and prediction ranges are
    /// aligned separately: a coarse token covers two fine tokens; where the fine range has
    /// `2n - 1` tokens the missing one is the padding, before the first context token and after
    /// the last prediction token.
    pub fn alignment(&self, i: usize) -> Vec<(usize, usize)> {
        let (fs, cs) = (self.start(i), self.start(i + 1));
        let ((fc, fp), (cc, _)) = (self.tokens[i], self.tokens[i + 1]);
        let mut out = Vec::with_capacity(fc + fp);
        let off = 2 * cc - fc; // 1 when the fine context lacks its first (padding) slot
        for j in 0..fc {
            out.push((fs + j, cs + (j + off) / 2));
        }
        for j in 0..fp {
            out.push((fs + fc + j, cs + cc + j / 2));
        }
        out
    }

    /// The aggregator as `[total, total]` row-major maps for level `i` (fine scale `i`, coarse
    /// `i + 1`): coarse-to-fine `fine += coarse` (repeat-interleave), fine-to-coarse `coarse +=
    /// (fine_a + fine_b) / 2` (average pooling of two, the padding slot counting as zero).
    pub fn aggregator_maps(&self, i: usize) -> (Vec<f32>, Vec<f32>) {
        let t = self.total();
        let (mut c2f, mut f2c) = (vec![0f32; t * t], vec![0f32; t * t]);
        for (f, c) in self.alignment(i) {
            c2f[f * t + c] = 1.0;
            f2c[c * t + f] = 0.5;
        }
        (c2f, f2c)
    }
}

/// The scale-mixing logits: the learned weights, or zeros (equal weights, no gradient) when
/// weighting is off.
pub fn mix_logits(w: &burn::module::Param<burn::tensor::Tensor<1>>, weighted: bool) -> burn::tensor::Tensor<1> {
    if weighted { w.val() } else { w.val().zeros_like().detach() }
}

/// Softmax of the scale weights.
pub fn softmax(w: &[f32]) -> Vec<f32> {
    let m = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = w.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Inference: `paths[i]` holds scale i's sample paths `[n, >= H_i]` (row length `len_i`);
/// each path is cut to `H_i`, upsampled by repeating every step `2^i` times, truncated to `h`,
/// and the scales are mixed path by path with `softmax(w)`. Returns `[n, h]`.
pub fn upsample_mix(paths: &[(Vec<f32>, usize)], n: usize, h: usize, w: &[f32]) -> Vec<f32> {
    let sw = softmax(w);
    let mut out = vec![0f32; n * h];
    let mut hi = h;
    for (i, (p, len)) in paths.iter().enumerate() {
        let factor = 1usize << i;
        for s in 0..n {
            for t in 0..h {
                let src = t / factor;
                debug_assert!(src < hi.min(*len));
                out[s * h + t] += sw[i] * p[s * len + src];
            }
        }
        hi = hi.div_ceil(2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_pads_context_left_and_horizon_right() {
        let nan = f32::NAN;
        // Context of 5 with a missing value, left-padded: [NaN, 1 | 2, 3 | NaN, 5] -> 1, 2.5, 5.
        let (c, h) = downsample(&[1.0, 2.0, 3.0, nan, 5.0], &[6.0, 8.0, 10.0]);
        assert_eq!(c, [1.0, 2.5, 5.0]);
        // Horizon of 3 right-padded: [6, 8 | 10, NaN] -> 7, 10.
        assert_eq!(h, [7.0, 10.0]);
        let (c, _) = downsample(&[nan, nan, 1.0, 3.0], &[]);
        assert!(c[0].is_nan() && c[1] == 2.0);
        let s = scales(&[1.0; 37], &[2.0; 10], 3);
        let lens: Vec<(usize, usize)> = s.iter().map(|(c, h)| (c.len(), h.len())).collect();
        assert_eq!(lens, [(37, 10), (19, 5), (10, 3), (5, 2)]);
        assert_eq!(lens, ScaleLayout::new(37, 10, 4, 3).steps);
    }

    #[test]
    fn layout_of_the_spec_example() {
        // L = 5000, P = 64, H = 96: 81 + 41 + 21 + 11 = 154 tokens.
        let l = ScaleLayout::new(5000, 96, 64, 3);
        assert_eq!(l.tokens, [(79, 2), (40, 1), (20, 1), (10, 1)]);
        assert_eq!(l.total(), 154);
        assert_eq!((l.start(1), l.start(2), l.start(3)), (81, 122, 143));
    }

    #[test]
    fn within_scale_mask_is_block_diagonal() {
        // Tokens: scale 0 = 2 + 1, scale 1 = 1 + 1.
        let l = ScaleLayout::new(8, 3, 4, 1);
        assert_eq!(l.tokens, [(2, 1), (1, 1)]);
        let m = l.within_scale_mask();
        let row = |i: usize| m[i * 5..(i + 1) * 5].iter().map(|&x| x as u8).collect::<Vec<_>>();
        assert_eq!(row(0), [0, 0, 0, 1, 1]);
        assert_eq!(row(2), [0, 0, 0, 1, 1]);
        assert_eq!(row(3), [1, 1, 1, 0, 0]);
        assert_eq!(row(4), [1, 1, 1, 0, 0]);
        // Two prompt tokens in front: unmasked both ways, the scales shifted by two.
        let p = l.with_prefix(2);
        assert_eq!((p.total(), p.start(0), p.start(1)), (7, 2, 5));
        let m = p.within_scale_mask();
        let row = |i: usize| m[i * 7..(i + 1) * 7].iter().map(|&x| x as u8).collect::<Vec<_>>();
        assert_eq!(row(0), [0; 7]);
        assert_eq!(row(2), [0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(row(6), [0, 0, 1, 1, 1, 0, 0]);
    }

    #[test]
    fn aggregator_alignment_even_and_odd() {
        // Even: fine context 4 tokens -> coarse 2; fine prediction 2 -> coarse 1.
        let even = ScaleLayout::new(16, 8, 4, 1);
        assert_eq!(even.tokens, [(4, 2), (2, 1)]);
        assert_eq!(even.alignment(0), [(0, 6), (1, 6), (2, 7), (3, 7), (4, 8), (5, 8)]);
        // Odd: fine context 3 tokens -> coarse 2, the first coarse token covers the padding
        // slot and fine token 0; fine prediction 3 -> coarse 2, the last covers fine token 5
        // and the padding slot after it.
        let odd = ScaleLayout::new(12, 12, 4, 1);
        assert_eq!(odd.tokens, [(3, 3), (2, 2)]);
        assert_eq!(odd.alignment(0), [(0, 6), (1, 7), (2, 7), (3, 8), (4, 8), (5, 9)]);
        let (c2f, f2c) = odd.aggregator_maps(0);
        let t = odd.total();
        // Fine token 0 receives coarse token 6; coarse 6 gets half of fine 0 (padding = 0).
        assert_eq!(c2f[t + 7], 1.0);
        assert_eq!(c2f[6], 1.0);
        assert_eq!(f2c[6 * t..7 * t].iter().sum::<f32>(), 0.5);
        assert_eq!(f2c[7 * t + 1] + f2c[7 * t + 2], 1.0);
        assert_eq!(f2c[9 * t + 5], 0.5);
    }

    #[test]
    fn upsample_and_mix_by_hand() {
        // Two paths, h = 5; scale 0 = [1..5] and [0; 5]; scale 1 (H_1 = 3) = [10, 20, 30] and
        // [2, 4, 6]; weights equal -> mean of scale 0 and scale 1 repeated twice.
        let s0 = (vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0], 5);
        let s1 = (vec![10.0, 20.0, 30.0, 2.0, 4.0, 6.0], 3);
        let out = upsample_mix(&[s0.clone(), s1.clone()], 2, 5, &[0.0, 0.0]);
        assert_eq!(out, [5.5, 6.0, 11.5, 12.0, 17.5, 1.0, 1.0, 2.0, 2.0, 3.0]);
        // A dominant weight on scale 0 returns scale 0.
        let out = upsample_mix(&[s0, s1], 2, 5, &[30.0, 0.0]);
        assert!((out[4] - 5.0).abs() < 1e-6 && out[5].abs() < 1e-6);
    }
}
