//! MOIRAI's output: the mixture (Student-t, Normal, Negative Binomial, Log-Normal) of every
//! token's patch positions, its mean, log-density and seeded samples.

use burn::tensor::Tensor;
use burn::tensor::activation::{softmax, softplus};

/// The mixture's parameters for every `(batch, token, patch position)`, after the domain maps
/// and before the affine transform by `loc`/`scale`.
#[derive(Debug)]
pub struct MixtureParams {
    /// `[b, tokens, patch, 4]`: Student-t, Normal(scale 1e-3), Negative Binomial, Log-Normal.
    pub weights_logits: Tensor<4>,
    pub t_df: Tensor<3>,
    pub t_loc: Tensor<3>,
    pub t_scale: Tensor<3>,
    pub normal_loc: Tensor<3>,
    pub nb_total_count: Tensor<3>,
    pub nb_logits: Tensor<3>,
    pub lognormal_loc: Tensor<3>,
    pub lognormal_scale: Tensor<3>,
}

/// Everything the forward pass produces.
#[derive(Debug)]
pub struct MoiraiOutput {
    /// `[b, tokens, 1]`.
    pub loc: Tensor<3>,
    pub scale: Tensor<3>,
    /// `[b, tokens, d_model]`.
    pub encoder_output: Tensor<3>,
    pub params: MixtureParams,
}

fn lgamma3(x: Tensor<3>) -> Tensor<3> {
    let [b, l, p] = x.dims();
    crate::layers::distribution::lgamma(x.reshape([b * l, p])).reshape([b, l, p])
}

fn log_sigmoid(x: Tensor<3>) -> Tensor<3> {
    -softplus(-x, 1.0)
}

impl MoiraiOutput {
    /// `n` seeded draws from the predictive distribution of every `(batch, token, position)`:
    /// a component by the softmax weights, then Student-t `loc + scale t_df`, Normal(loc, 1e-3),
    /// Negative Binomial as Poisson(Gamma(r, e^logits)) (uni2ts's sampler), or Log-Normal;
    /// scaled back by loc/scale. Returned row-major `[n, batch, tokens, patch]`.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let all: Vec<usize> = (0..self.params.t_df.dims().iter().product()).collect();
        self.sample_at(n, seed, &all)
    }

    /// [`Self::sample`] at the flat `(batch, token, position)` indices `at` only: `[n, at.len()]`.
    pub fn sample_at(&self, n: usize, seed: u64, at: &[usize]) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        use rand_distr::Distribution as _;
        let host = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().expect("f32");
        let p = &self.params;
        let w = softmax(p.weights_logits.clone(), 3).into_data().try_to_vec::<f32>().expect("f32");
        let (df, tl, ts) = (host(p.t_df.clone()), host(p.t_loc.clone()), host(p.t_scale.clone()));
        let nl = host(p.normal_loc.clone());
        let (nr, nlog) = (host(p.nb_total_count.clone()), host(p.nb_logits.clone()));
        let (ll, ls) = (host(p.lognormal_loc.clone()), host(p.lognormal_scale.clone()));
        let [_, _, q] = p.t_df.dims();
        let (loc, scale) = (host(self.loc.clone()), host(self.scale.clone()));
        let points = at.len();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![0f32; n * points];
        for s in 0..n {
            for (j, &i) in at.iter().enumerate() {
                let u: f32 = rng.random();
                let ws = &w[i * 4..i * 4 + 4];
                let k = if u < ws[0] { 0 } else if u < ws[0] + ws[1] { 1 } else if u < ws[0] + ws[1] + ws[2] { 2 } else { 3 };
                let x = match k {
                    0 => tl[i] + ts[i] * rand_distr::StudentT::new(df[i]).map_or(0.0, |d| d.sample(&mut rng)),
                    1 => nl[i] + 1e-3 * rand_distr::Normal::new(0.0f32, 1.0).unwrap().sample(&mut rng),
                    2 => {
                        let lambda = rand_distr::Gamma::new(nr[i].max(1e-6), nlog[i].exp()).map_or(0.0, |g| g.sample(&mut rng));
                        if lambda > 0.0 && lambda.is_finite() { rand_distr::Poisson::new(lambda).map_or(0.0, |d| d.sample(&mut rng)) } else { 0.0 }
                    }
                    _ => rand_distr::LogNormal::new(ll[i], ls[i]).map_or(0.0, |d| d.sample(&mut rng)),
                };
                let token = i / q;
                out[s * points + j] = x * scale[token] + loc[token];
            }
        }
        out
    }

    /// The predictive mean of every `(batch, token, patch position)`: the mixture of the
    /// components' means (Student-t: loc; Normal: loc; Negative Binomial: `r e^logits`;
    /// Log-Normal: `exp(loc + s^2 / 2)`), weighted by the softmax weights, scaled back.
    pub fn mean(&self) -> Tensor<3> {
        let p = &self.params;
        let [b, l, q, _] = p.weights_logits.dims();
        let w = softmax(p.weights_logits.clone(), 3);
        let nb = p.nb_total_count.clone() * p.nb_logits.clone().exp();
        let ln = (p.lognormal_loc.clone() + p.lognormal_scale.clone().powf_scalar(2.0) * 0.5).exp();
        let means = Tensor::stack::<4>(vec![p.t_loc.clone(), p.normal_loc.clone(), nb, ln], 3);
        (w * means).sum_dim(3).reshape([b, l, q]) * self.scale.clone() + self.loc.clone()
    }

    /// `log p(target)` for every `(batch, token, patch position)`, as uni2ts evaluates its
    /// `AffineTransformed(Mixture)`: the value is standardised by the token's loc/scale, each
    /// component scores it where it is in the component's support (uni2ts's Negative Binomial:
    /// >= 0, continuous through lgamma; Log-Normal: > 0; else -inf), the components are combined by logsumexp with the
    /// log-softmax weights, and `log(scale)` is subtracted.
    pub fn log_prob(&self, target: Tensor<3>) -> Tensor<3> {
        let p = &self.params;
        let x = (target - self.loc.clone()) / self.scale.clone();
        let ln2pi = (2.0 * std::f64::consts::PI).ln();
        // Student-t.
        let df = p.t_df.clone();
        let y = (x.clone() - p.t_loc.clone()) / p.t_scale.clone();
        let z = p.t_scale.clone().log() + df.clone().log() * 0.5 + 0.5 * std::f64::consts::PI.ln() + lgamma3(df.clone() * 0.5) - lgamma3((df.clone() + 1.0) * 0.5);
        let t = -((df.clone() + 1.0) * 0.5) * (y.powf_scalar(2.0) / df + 1.0).log() - z;
        // Normal with fixed scale 1e-3.
        let sigma = 1e-3f64;
        let n = -(x.clone() - p.normal_loc.clone()).powf_scalar(2.0) / (2.0 * sigma * sigma) - sigma.ln() - 0.5 * ln2pi;
        // Negative Binomial on x >= 0 (uni2ts's support is `nonnegative`, not integers).
        let nonneg = x.clone().greater_equal_elem(0.0);
        let xn = x.clone().mask_fill(nonneg.clone().bool_not(), 0.0);
        let r = p.nb_total_count.clone();
        let lbeta = lgamma3(xn.clone() + 1.0) + lgamma3(r.clone()) - lgamma3(xn.clone() + 1.0 + r.clone());
        let nb = r.clone() * log_sigmoid(-p.nb_logits.clone()) + log_sigmoid(p.nb_logits.clone()) * xn.clone() - (lbeta + (r + xn).log());
        let nb = nb.mask_fill(nonneg.bool_not(), f32::NEG_INFINITY);
        // Log-Normal on > 0.
        let pos = x.clone().greater_elem(0.0);
        let xl = x.clone().mask_fill(pos.clone().bool_not(), 1.0).log();
        let s = p.lognormal_scale.clone();
        let ln = -(xl.clone() - p.lognormal_loc.clone()).powf_scalar(2.0) / (s.clone().powf_scalar(2.0) * 2.0) - s.log() - 0.5 * ln2pi - xl;
        let ln = ln.mask_fill(pos.bool_not(), f32::NEG_INFINITY);
        // logsumexp over components of log_softmax(weights) + component log-probability.
        let [b, l, q, _] = p.weights_logits.dims();
        let lw = burn::tensor::activation::log_softmax(p.weights_logits.clone(), 3);
        let comps = Tensor::stack::<4>(vec![t, n, nb, ln], 3);
        let joint = lw + comps;
        let max = joint.clone().max_dim(3);
        let max = max.clone().mask_fill(max.clone().equal_elem(f32::NEG_INFINITY), 0.0);
        let lse = (joint - max.clone()).exp().sum_dim(3).log() + max;
        lse.reshape([b, l, q]) - self.scale.clone().log()
    }
}
