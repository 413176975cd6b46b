//! AdaLoRA (Zhang et al., ICLR 2023) on any list of matrices (MOIRAI's q/k/v, TinyTimeMixer's
//! mixer fc1/fc2): every adapted matrix `W [d_in, d_out]` gets `W + (alpha / r) P diag(E) Q` with
//! `P [d_in, r]`, `Q [r, d_out]` (N(0, 0.02^2)) and the
//! singular values `E` (zero), an orthogonality penalty `||P^T P - I||^2 + ||Q Q^T - I||^2`,
//! and a rank budget re-allocated during training: each triplet `(P[:, k], E[k], Q[k, :])` is
//! scored by the smoothed sensitivity `s(w) = EMA(|w grad|) * EMA(|I - EMA(I)|)` of its
//! singular value plus the mean over its P column and Q row, and every `delta_t` steps all but
//! the `b(t)` best triplets of the model have their singular value set to zero. The budget
//! starts at `init_rank` per matrix, stays there for `t_init` steps, falls cubically to
//! `target_rank` per matrix until `t_final` steps before the end, then stays.

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// Triplet scores of one matrix: `e [r]`, `p [d_in, r]`, `q [r, d_out]` scores -> `[r]`:
/// `s(E[k]) + mean_j s(P[j, k]) + mean_j s(Q[k, j])`.
pub fn triplet_scores(e: &[f32], p: &[f32], q: &[f32], d_in: usize, d_out: usize, r: usize) -> Vec<f32> {
    (0..r)
        .map(|k| {
            let sp: f32 = (0..d_in).map(|j| p[j * r + k]).sum::<f32>() / d_in as f32;
            let sq: f32 = (0..d_out).map(|j| q[k * d_out + j]).sum::<f32>() / d_out as f32;
            e[k] + sp + sq
        })
        .collect()
}

/// One adapted matrix `[d_in, d_out]`: the update `(alpha / r) P diag(E) Q`.
#[derive(Module, Debug)]
pub struct AdaMatrix {
    p: Param<Tensor<2>>,
    e: Param<Tensor<1>>,
    q: Param<Tensor<2>>,
}

/// AdaLoRA's running state: the importance scores and the last allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AdaState {
    cfg: AdaLoraConfig,
    /// Per matrix: sensitivities of P, E, Q.
    sens: Vec<[Sensitivity; 3]>,
    /// Latest triplet scores, `[matrices * r]`.
    scores: Vec<f32>,
    /// Triplets kept per matrix at the last re-allocation.
    ranks: Vec<usize>,
}

/// AdaLoRA over a list of matrices (any shapes): the factors, the orthogonality penalty, the
/// importance scores and the budget re-allocation. Backbones ask it for each matrix's update
/// ([`AdaLora::delta`] as a weight, or [`AdaLora::apply`] to an input).
#[derive(Module, Debug)]
pub struct AdaLora {
    mats: Vec<AdaMatrix>,
    /// Settings and scores (shared by clones of the module; not a parameter).
    #[module(skip)]
    state: Arc<Mutex<AdaState>>,
}

impl AdaLora {
    /// Factors for matrices of `shapes` (`(d_in, d_out)`): `P, Q ~ N(0, 0.02^2)`, `E = 0` (the
    /// model starts as the backbone).
    pub fn new(shapes: &[(usize, usize)], cfg: &AdaLoraConfig, device: &Device) -> Self {
        let r = cfg.init_rank.max(1);
        let mats = shapes
            .iter()
            .map(|&(i, o)| AdaMatrix {
                p: Param::from_tensor(Tensor::random([i, r], Distribution::Normal(0.0, 0.02), device)),
                e: Param::from_tensor(Tensor::zeros([r], device)),
                q: Param::from_tensor(Tensor::random([r, o], Distribution::Normal(0.0, 0.02), device)),
            })
            .collect();
        let state = AdaState { cfg: cfg.clone(), sens: vec![Default::default(); shapes.len()], scores: vec![], ranks: vec![r; shapes.len()] };
        AdaLora { mats, state: Arc::new(Mutex::new(state)) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AdaState> {
        self.state.lock().expect("adalora state")
    }

    fn scale(&self) -> f64 {
        let st = self.state();
        st.cfg.alpha / st.cfg.init_rank.max(1) as f64
    }

    /// Matrix `i`'s update `[d_in, d_out]`.
    pub fn delta(&self, i: usize) -> Tensor<2> {
        let m = &self.mats[i];
        (m.p.val() * m.e.val().unsqueeze_dim::<2>(0)).matmul(m.q.val()) * self.scale()
    }

    /// Matrix `i`'s update applied to `x [b, t, d_in]` -> `[b, t, d_out]` (no `[d_in, d_out]`
    /// product formed).
    pub fn apply(&self, i: usize, x: Tensor<3>) -> Tensor<3> {
        let m = &self.mats[i];
        let [d, r] = m.p.dims();
        let pe = (m.p.val() * m.e.val().unsqueeze_dim::<2>(0)).reshape([1, d, r]);
        let [_, o] = m.q.dims();
        x.matmul(pe).matmul(m.q.val().reshape([1, r, o])) * self.scale()
    }

    /// The orthogonality penalty `ortho * sum_i (||P_i^T P_i - I||^2 + ||Q_i Q_i^T - I||^2)`
    /// (added to the training loss only).
    pub fn penalty(&self) -> Tensor<1> {
        let w = self.state().cfg.ortho;
        let mut total: Option<Tensor<1>> = None;
        for m in &self.mats {
            let (p, q) = (m.p.val(), m.q.val());
            let [_, r] = p.dims();
            let eye = Tensor::<2>::from_data(TensorData::new((0..r * r).map(|i| if i / r == i % r { 1.0f32 } else { 0.0 }).collect::<Vec<_>>(), [r, r]), &p.device());
            let pp = p.clone().transpose().matmul(p) - eye.clone();
            let qq = q.clone().matmul(q.transpose()) - eye;
            let term = (pp.powf_scalar(2.0).sum() + qq.powf_scalar(2.0).sum()) * w;
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total.expect("AdaLoRA over at least one matrix")
    }

    /// Update the importance scores from this step's gradients (a step without gradients for
    /// the factors leaves them as they were).
    pub fn observe(&self, grads: &GradientsParams) {
        let host = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
        let host1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32");
        let mut st = self.state();
        let (b1, b2) = (st.cfg.beta1, st.cfg.beta2);
        let mut scores = Vec::new();
        for (i, m) in self.mats.iter().enumerate() {
            let (Some(gp), Some(ge), Some(gq)) = (grads.get::<2>(m.p.id), grads.get::<1>(m.e.id), grads.get::<2>(m.q.id)) else { return };
            let ([d_in, r], [_, d_out]) = (m.p.dims(), m.q.dims());
            let sp = st.sens[i][0].update(&host(m.p.val()), &host(gp), b1, b2);
            let se = st.sens[i][1].update(&host1(m.e.val()), &host1(ge), b1, b2);
            let sq = st.sens[i][2].update(&host(m.q.val()), &host(gq), b1, b2);
            scores.extend(triplet_scores(&se, &sp, &sq, d_in, d_out, r));
        }
        st.scores = scores;
    }

    /// After optimiser step `step` of `total`: every `delta_t` steps from `t_init` on, keep the
    /// budget's best triplets over all matrices (the others' singular values become zero).
    pub fn prune(mut self, step: usize, total: usize) -> Self {
        let state = self.state.clone();
        let mut st = state.lock().expect("adalora state");
        if step < st.cfg.t_init || step % st.cfg.delta_t.max(1) != 0 || st.scores.is_empty() {
            return self;
        }
        let keep = budget(&st.cfg, self.mats.len(), step, total);
        let mask = top_mask(&st.scores, keep);
        let r = st.cfg.init_rank.max(1);
        st.ranks = mask.chunks(r).map(|c| c.iter().filter(|&&v| v > 0.0).count()).collect();
        for (m, keep) in self.mats.iter_mut().zip(mask.chunks(r)) {
            let k = Tensor::<1>::from_data(TensorData::new(keep.to_vec(), [r]), &m.e.device());
            m.e = m.e.clone().map(|e| (e * k).detach().require_grad());
        }
        self
    }

    /// Triplets kept per matrix at the last re-allocation.
    pub fn ranks(&self) -> Vec<usize> {
        self.state().ranks.clone()
    }

    /// The running state (importance moving averages, scores, ranks) as JSON, to checkpoint
    /// beside the parameters: a resumed run continues the same averages.
    pub fn state_json(&self) -> String {
        serde_json::to_string(&*self.state()).expect("AdaLoRA state serialises")
    }

    /// Restore [`Self::state_json`]'s output; an error if it does not belong to this model (its
    /// matrix count or settings differ).
    pub fn restore_state(&self, json: &str) -> Result<(), String> {
        let saved: AdaState = serde_json::from_str(json).map_err(|e| format!("AdaLoRA state: {e}"))?;
        let mut st = self.state();
        if saved.cfg != st.cfg || saved.sens.len() != self.mats.len() {
            return Err(format!("AdaLoRA state of {} matrices with {:?}; this model has {} matrices with {:?}", saved.sens.len(), saved.cfg, self.mats.len(), st.cfg));
        }
        *st = saved;
        Ok(())
    }
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
        let t = triplet_scores(&[1.0, 0.0], &[1.0, 4.0, 0.0, 0.0], &[0.0, 0.0, 1.0, 1.0], 2, 2, 2);
        assert_eq!(t, [1.5, 3.0]);
        // Rectangular: d_in 1, d_out 3, r 2: P scores [2, 4], Q rows [0, 0, 3] and [3, 3, 3].
        let t = triplet_scores(&[0.0, 1.0], &[2.0, 4.0], &[0.0, 0.0, 3.0, 3.0, 3.0, 3.0], 1, 3, 2);
        assert_eq!(t, [3.0, 8.0]);
        assert_eq!(top_mask(&[0.2, 0.9, 0.5, 0.1], 2), [0.0, 1.0, 1.0, 0.0]);
    }

    /// The running state round-trips through JSON (a resumed run continues the same averages)
    /// and refuses a model it does not belong to; E = 0 makes the update zero at first.
    #[test]
    fn state_round_trips_and_is_checked() {
        let device = Device::flex().autodiff();
        let cfg = AdaLoraConfig { init_rank: 3, ..Default::default() };
        let bank = AdaLora::new(&[(4, 5), (5, 2)], &cfg, &device);
        let zero: f32 = bank.delta(1).abs().sum().into_scalar();
        assert_eq!(zero, 0.0);
        let x = Tensor::<3>::ones([1, 2, 4], &device);
        let loss = bank.apply(0, x).sum() + bank.delta(1).powf_scalar(2.0).sum() + bank.penalty();
        let grads = GradientsParams::from_grads(loss.backward(), &bank);
        bank.observe(&grads);
        let json = bank.state_json();
        assert!(!bank.state().scores.is_empty());
        let other = AdaLora::new(&[(4, 5), (5, 2)], &cfg, &device);
        assert_ne!(other.state_json(), json);
        other.restore_state(&json).unwrap();
        assert_eq!(other.state_json(), json);
        let smaller = AdaLora::new(&[(4, 5)], &cfg, &device);
        assert!(smaller.restore_state(&json).unwrap_err().contains("2 matrices"));
    }
}
