//! AdaLoRA (Zhang et al., ICLR 2023) on the q/k/v projections of MOIRAI: every adapted matrix
//! gets `W + (alpha / r) P diag(E) Q` with `P [d, r]`, `Q [r, d]` (N(0, 0.02^2)) and the
//! singular values `E` (zero), an orthogonality penalty `||P^T P - I||^2 + ||Q Q^T - I||^2`,
//! and a rank budget re-allocated during training: each triplet `(P[:, k], E[k], Q[k, :])` is
//! scored by the smoothed sensitivity `s(w) = EMA(|w grad|) * EMA(|I - EMA(I)|)` of its
//! singular value plus the mean over its P column and Q row, and every `delta_t` steps all but
//! the `b(t)` best triplets of the model have their singular value set to zero. The budget
//! starts at `init_rank` per matrix, stays there for `t_init` steps, falls cubically to
//! `target_rank` per matrix until `t_final` steps before the end, then stays.

use serde::{Deserialize, Serialize};

/// AdaLoRA's settings (the paper's GLUE defaults scaled to a short run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaLoraConfig {
    pub init_rank: usize,
    /// Average rank per matrix at the end.
    pub target_rank: usize,
    pub alpha: f64,
    /// Steps before pruning starts / steps at the end with the final budget.
    pub t_init: usize,
    pub t_final: usize,
    /// Steps between budget re-allocations.
    pub delta_t: usize,
    pub beta1: f64,
    pub beta2: f64,
    /// Weight of the orthogonality penalty.
    pub ortho: f64,
}

impl Default for AdaLoraConfig {
    fn default() -> Self {
        AdaLoraConfig { init_rank: 12, target_rank: 8, alpha: 32.0, t_init: 20, t_final: 20, delta_t: 10, beta1: 0.85, beta2: 0.85, ortho: 0.1 }
    }
}

/// The budget (triplets kept over `matrices` matrices) at `step` of `total`.
pub fn budget(cfg: &AdaLoraConfig, matrices: usize, step: usize, total: usize) -> usize {
    let (b0, bt) = (cfg.init_rank * matrices, cfg.target_rank.min(cfg.init_rank) * matrices);
    let end = total.saturating_sub(cfg.t_final);
    if step < cfg.t_init || end <= cfg.t_init {
        return if step < cfg.t_init { b0 } else { bt };
    }
    if step >= end {
        return bt;
    }
    let progress = (step - cfg.t_init) as f64 / (end - cfg.t_init) as f64;
    bt + ((b0 - bt) as f64 * (1.0 - progress).powi(3)).round() as usize
}

/// Smoothed sensitivity of one parameter tensor.
#[derive(Debug, Clone, Default)]
pub struct Sensitivity {
    ema: Vec<f32>,
    unc: Vec<f32>,
}

impl Sensitivity {
    /// Update with values `w` and gradients `g`; returns the scores `ema * unc`.
    pub fn update(&mut self, w: &[f32], g: &[f32], beta1: f64, beta2: f64) -> Vec<f32> {
        if self.ema.len() != w.len() {
            self.ema = vec![0.0; w.len()];
            self.unc = vec![0.0; w.len()];
        }
        let (b1, b2) = (beta1 as f32, beta2 as f32);
        for i in 0..w.len() {
            let imp = (w[i] * g[i]).abs();
            self.ema[i] = b1 * self.ema[i] + (1.0 - b1) * imp;
            self.unc[i] = b2 * self.unc[i] + (1.0 - b2) * (imp - self.ema[i]).abs();
        }
        self.ema.iter().zip(&self.unc).map(|(a, b)| a * b).collect()
    }
}

/// Triplet scores of one stack of matrices: `e [m, r]`, `p [m, d, r]`, `q [m, r, d]` scores ->
/// `[m, r]`: `s(E[k]) + mean_j s(P[j, k]) + mean_j s(Q[k, j])`.
pub fn triplet_scores(e: &[f32], p: &[f32], q: &[f32], m: usize, d: usize, r: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * r];
    for w in 0..m {
        for k in 0..r {
            let sp: f32 = (0..d).map(|j| p[(w * d + j) * r + k]).sum::<f32>() / d as f32;
            let sq: f32 = (0..d).map(|j| q[(w * r + k) * d + j]).sum::<f32>() / d as f32;
            out[w * r + k] = e[w * r + k] + sp + sq;
        }
    }
    out
}

/// Keep the `keep` highest scores: a 0/1 mask of the same length (ties keep the earlier).
pub fn top_mask(scores: &[f32], keep: usize) -> Vec<f32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut mask = vec![0f32; scores.len()];
    for &i in order.iter().take(keep) {
        mask[i] = 1.0;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_schedule_by_hand() {
        let c = AdaLoraConfig { init_rank: 12, target_rank: 8, t_init: 10, t_final: 10, ..Default::default() };
        // 2 matrices: 24 -> 16 over steps 10..90 of 100, cubic.
        assert_eq!(budget(&c, 2, 0, 100), 24);
        assert_eq!(budget(&c, 2, 9, 100), 24);
        assert_eq!(budget(&c, 2, 10, 100), 24);
        assert_eq!(budget(&c, 2, 50, 100), 17); // 16 + 8 * 0.5^3 = 17
        assert_eq!(budget(&c, 2, 90, 100), 16);
        assert_eq!(budget(&c, 2, 99, 100), 16);
    }

    #[test]
    fn sensitivity_and_triplets_by_hand() {
        let mut s = Sensitivity::default();
        // |w g| = [2, 0]; ema = 0.15 * I; unc = 0.15 * |I - ema|.
        let out = s.update(&[1.0, 3.0], &[2.0, 0.0], 0.85, 0.85);
        let ema = 0.15f32 * 2.0;
        let unc = 0.15 * (2.0 - ema);
        assert!((out[0] - ema * unc).abs() < 1e-7 && out[1] == 0.0);
        // One matrix, d = 2, r = 2: E scores [1, 0], P column means [0.5, 2], Q row means [0, 1].
        let t = triplet_scores(&[1.0, 0.0], &[1.0, 4.0, 0.0, 0.0], &[0.0, 0.0, 1.0, 1.0], 1, 2, 2);
        assert_eq!(t, [1.5, 3.0]);
        assert_eq!(top_mask(&[0.2, 0.9, 0.5, 0.1], 2), [0.0, 1.0, 1.0, 0.0]);
    }
}
