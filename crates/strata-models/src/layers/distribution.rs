//! Distribution heads any model can put on its output: Normal, Student-t and a mixture of
//! Normals. A head maps features to raw parameters per forecast point; [`Distribution`] holds the
//! constrained parameters (scales through softplus, degrees of freedom `2 + softplus`, mixture
//! weights through log-softmax) and gives the log density (for the NLL loss, differentiable),
//! seeded samples and means.
//!
//! Parameters are `[points, k]` tensors (`k` = 1, or the mixture's components), one row per
//! forecast point (batch x horizon x channel, flattened).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, softplus};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_distr::Distribution as _;

/// Which distribution a head outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    #[default]
    Normal,
    StudentT,
    /// A mixture of this many Normals.
    Mixture(usize),
}

impl Family {
    /// Raw parameters per forecast point.
    pub fn params(self) -> usize {
        match self {
            Family::Normal => 2,
            Family::StudentT => 3,
            Family::Mixture(k) => 3 * k,
        }
    }
}

/// A linear map from features to the raw parameters of `family` for each of `channels` outputs.
#[derive(Module, Debug)]
pub struct DistributionHead {
    proj: Linear,
    family: usize,
    components: usize,
    channels: usize,
}

impl DistributionHead {
    pub fn new(d_in: usize, family: Family, channels: usize, device: &Device) -> Self {
        let (code, k) = match family {
            Family::Normal => (0, 1),
            Family::StudentT => (1, 1),
            Family::Mixture(k) => (2, k),
        };
        DistributionHead { proj: LinearConfig::new(d_in, channels * family.params()).init(device), family: code, components: k, channels }
    }

    pub fn family(&self) -> Family {
        match self.family {
            0 => Family::Normal,
            1 => Family::StudentT,
            _ => Family::Mixture(self.components),
        }
    }

    /// `x`: `[rows, d_in]` -> the distribution of every `(row, channel)` point, row-major.
    pub fn forward(&self, x: Tensor<2>) -> Distribution {
        let rows = x.dims()[0];
        let p = self.family().params();
        Distribution::from_raw(self.family(), self.proj.forward(x).reshape([rows * self.channels, p]))
    }
}

/// Constrained parameters of one distribution per point.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub family: Family,
    pub loc: Tensor<2>,
    pub scale: Tensor<2>,
    /// Student-t degrees of freedom.
    pub df: Option<Tensor<2>>,
    /// Mixture log-weights (log-softmax of the logits).
    pub log_weights: Option<Tensor<2>>,
}

const MIN_SCALE: f64 = 1e-6;

impl Distribution {
    /// From raw head outputs `[points, family.params()]`.
    pub fn from_raw(family: Family, raw: Tensor<2>) -> Self {
        let col = |i: usize, n: usize| raw.clone().narrow(1, i, n);
        match family {
            Family::Normal => Distribution { family, loc: col(0, 1), scale: softplus(col(1, 1), 1.0) + MIN_SCALE, df: None, log_weights: None },
            Family::StudentT => Distribution { family, loc: col(0, 1), scale: softplus(col(1, 1), 1.0) + MIN_SCALE, df: Some(softplus(col(2, 1), 1.0) + 2.0), log_weights: None },
            Family::Mixture(k) => Distribution { family, loc: col(0, k), scale: softplus(col(k, k), 1.0) + MIN_SCALE, df: None, log_weights: Some(log_softmax(col(2 * k, k), 1)) },
        }
    }

    /// Log density of `y` (`[points]`) under each point's distribution.
    pub fn log_prob(&self, y: Tensor<1>) -> Tensor<1> {
        let y = y.unsqueeze_dim::<2>(1);
        let z = (y - self.loc.clone()) / self.scale.clone();
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let lp = match self.family {
            Family::Normal => z.powi_scalar(2) * -0.5 - self.scale.clone().log() - half_log_2pi,
            Family::StudentT => {
                let nu = self.df.clone().expect("student-t has df");
                let half = (nu.clone() + 1.0) * 0.5;
                lgamma(half.clone()) - lgamma(nu.clone() * 0.5) - (nu.clone() * std::f64::consts::PI).log() * 0.5 - self.scale.clone().log()
                    - half * (z.powi_scalar(2) / nu).log1p()
            }
            Family::Mixture(_) => {
                let comp = z.powi_scalar(2) * -0.5 - self.scale.clone().log() - half_log_2pi + self.log_weights.clone().expect("mixture has weights");
                // log-sum-exp over the components.
                let m = comp.clone().max_dim(1);
                return ((comp - m.clone()).exp().sum_dim(1).log() + m).squeeze_dim(1);
            }
        };
        lp.squeeze_dim(1)
    }

    /// Mean negative log-likelihood of `y` (the training loss).
    pub fn nll(&self, y: Tensor<1>) -> Tensor<1> {
        -self.log_prob(y).mean()
    }

    /// beta-NLL (Seitzer et al., ICLR 2022): each point's NLL weighted by its predicted variance
    /// to the power `beta`, the weight held constant (no gradient through it). `beta = 0` is
    /// [`Distribution::nll`]; at `beta = 1` a Normal's mean gets the gradient of half the squared
    /// error, as a point model's, while the scale still learns the spread.
    pub fn beta_nll(&self, y: Tensor<1>, beta: f64) -> Tensor<1> {
        if beta == 0.0 {
            return self.nll(y);
        }
        let w = self.variance().detach().powf_scalar(beta);
        -(self.log_prob(y) * w).mean()
    }

    /// The variance of every point, `[points]` (Student-t: `scale^2 df / (df - 2)`, `df > 2`).
    pub fn variance(&self) -> Tensor<1> {
        let s2 = self.scale.clone().powi_scalar(2);
        match (&self.df, &self.log_weights) {
            (Some(nu), _) => (s2 * nu.clone() / (nu.clone() - 2.0)).squeeze_dim(1),
            (None, Some(lw)) => {
                let w = lw.clone().exp();
                let mean = (w.clone() * self.loc.clone()).sum_dim(1);
                let second = (w * (s2 + self.loc.clone().powi_scalar(2))).sum_dim(1);
                (second - mean.powi_scalar(2)).squeeze_dim(1)
            }
            (None, None) => s2.squeeze_dim(1),
        }
    }

    /// `n` samples of every point, `[n, points]` row-major, from a seeded generator.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let v = |t: &Tensor<2>| -> Vec<f32> { t.clone().into_data().convert::<f32>().try_into_vec().expect("f32 parameters") };
        let (loc, scale) = (v(&self.loc), v(&self.scale));
        let k = self.loc.dims()[1];
        let points = loc.len() / k;
        let df = self.df.as_ref().map(v);
        let w: Option<Vec<f32>> = self.log_weights.as_ref().map(|l| v(l).into_iter().map(f32::exp).collect());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let std_normal = rand_distr::StandardNormal;
        let mut out = Vec::with_capacity(n * points);
        for _ in 0..n {
            for p in 0..points {
                let c = match &w {
                    Some(w) => {
                        let u: f32 = rand::Rng::random(&mut rng);
                        let mut acc = 0.0;
                        (0..k).find(|&j| {
                            acc += w[p * k + j];
                            u < acc
                        })
                        .unwrap_or(k - 1)
                    }
                    None => 0,
                };
                let e: f64 = match &df {
                    Some(df) => rand_distr::StudentT::new(df[p] as f64).expect("df > 2").sample(&mut rng),
                    None => std_normal.sample(&mut rng),
                };
                out.push(loc[p * k + c] + scale[p * k + c] * e as f32);
            }
        }
        out
    }

    /// The mean of every point, `[points]`.
    pub fn mean(&self) -> Tensor<1> {
        match &self.log_weights {
            Some(lw) => (lw.clone().exp() * self.loc.clone()).sum_dim(1).squeeze_dim(1),
            None => self.loc.clone().squeeze_dim(1),
        }
    }
}

/// `ln Gamma(x)` for `x > 0` as differentiable tensor ops: shift by 6 with the recurrence, then
/// Stirling's series to `1/z^7` (absolute error below 1e-9 for `z >= 6`).
pub fn lgamma(x: Tensor<2>) -> Tensor<2> {
    let mut prod = x.clone();
    for i in 1..6 {
        prod = prod * (x.clone() + i as f64);
    }
    let z = x + 6.0;
    let inv = z.clone().recip();
    let inv2 = inv.clone().powi_scalar(2);
    // 1/(12z) - 1/(360z^3) + 1/(1260z^5) - 1/(1680z^7), in Horner form.
    let series = inv.clone() * (inv2.clone() * (inv2.clone() * (inv2 * (-1.0 / 1680.0) + 1.0 / 1260.0) - 1.0 / 360.0) + 1.0 / 12.0);
    (z.clone() - 0.5) * z.clone().log() - z + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - prod.log()
}
