//! How generated windows compare with real ones: per-variable mean and standard deviation,
//! within-window autocorrelation at lags 1..24 (`strata sample`, the VAE's results).

use serde::{Deserialize, Serialize};

/// Lags of the autocorrelation check.
pub const MAX_LAG: usize = 24;

/// Per-variable statistics of a set of windows `[n, seq_len, channels]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub windows: usize,
    /// Mean and (population) standard deviation of every value of each variable.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// `acf[c][k-1]`: lag-k autocorrelation of variable `c`, computed within each window (centred
    /// on the window's mean, normalised by its lag-0 sum of squares, as statsmodels' `acf`) and
    /// averaged over windows.
    pub acf: Vec<Vec<f64>>,
}

/// Statistics of `n` windows stored row-major `[n, len, channels]`.
pub fn window_stats(data: &[f32], len: usize, channels: usize, max_lag: usize) -> WindowStats {
    let n = data.len() / (len * channels);
    let max_lag = max_lag.min(len - 1);
    let mut sum = vec![0.0f64; channels];
    let mut sq = vec![0.0f64; channels];
    let mut acf = vec![vec![0.0f64; max_lag]; channels];
    let mut counted = vec![0usize; channels];
    let mut dev = vec![0.0f64; len];
    for w in 0..n {
        let win = &data[w * len * channels..(w + 1) * len * channels];
        for c in 0..channels {
            let m = (0..len).map(|t| win[t * channels + c] as f64).sum::<f64>() / len as f64;
            for t in 0..len {
                let v = win[t * channels + c] as f64;
                sum[c] += v;
                sq[c] += v * v;
                dev[t] = v - m;
            }
            let c0: f64 = dev.iter().map(|d| d * d).sum();
            if c0 <= 0.0 {
                continue; // a constant window has no autocorrelation
            }
            counted[c] += 1;
            for k in 1..=max_lag {
                acf[c][k - 1] += (0..len - k).map(|t| dev[t] * dev[t + k]).sum::<f64>() / c0;
            }
        }
    }
    let total = (n * len) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / total).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / total - m * m).max(0.0).sqrt())
        .collect();
    for (a, &k) in acf.iter_mut().zip(&counted) {
        a.iter_mut().for_each(|v| *v /= k.max(1) as f64);
    }
    WindowStats {
        windows: n,
        mean,
        std,
        acf,
    }
}

/// How generated windows differ from real ones, per variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// |mean_gen - mean_real| / std_real.
    pub mean_diff: Vec<f64>,
    /// std_gen / std_real.
    pub std_ratio: Vec<f64>,
    /// max over lags 1..24 of |acf_gen - acf_real|.
    pub acf_max_diff: Vec<f64>,
    pub real: WindowStats,
    pub generated: WindowStats,
}

impl Fidelity {
    pub fn new(real: WindowStats, generated: WindowStats) -> Self {
        let c = real.mean.len();
        let mean_diff = (0..c)
            .map(|i| (generated.mean[i] - real.mean[i]).abs() / real.std[i].max(1e-12))
            .collect();
        let std_ratio = (0..c)
            .map(|i| generated.std[i] / real.std[i].max(1e-12))
            .collect();
        let acf_max_diff = (0..c)
            .map(|i| {
                real.acf[i]
                    .iter()
                    .zip(&generated.acf[i])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
            })
            .collect();
        Fidelity {
            mean_diff,
            std_ratio,
            acf_max_diff,
            real,
            generated,
        }
    }

    /// The largest deviation of each kind over the variables: (mean diff, |1 - std ratio|, acf diff).
    pub fn worst(&self) -> (f64, f64, f64) {
        let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        (
            max(&self.mean_diff),
            self.std_ratio
                .iter()
                .map(|r| (1.0 - r).abs())
                .fold(0.0, f64::max),
            max(&self.acf_max_diff),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_a_hand_computed_case() {
        // One window, one variable: 1, 2, 3, 4. Deviations -1.5 -0.5 0.5 1.5, c0 = 5;
        // lag 1: (0.75 - 0.25 + 0.75) / 5 = 0.25; lag 2: (-0.75 - 0.75) / 5 = -0.3.
        let s = window_stats(&[1.0, 2.0, 3.0, 4.0], 4, 1, 2);
        assert!((s.mean[0] - 2.5).abs() < 1e-12);
        assert!((s.std[0] - 1.25f64.sqrt()).abs() < 1e-12);
        assert!(
            (s.acf[0][0] - 0.25).abs() < 1e-12 && (s.acf[0][1] + 0.3).abs() < 1e-12,
            "{:?}",
            s.acf
        );
    }

    #[test]
    fn ar1_autocorrelation_decays_geometrically() {
        // Long windows of an AR(1) with phi = 0.8: acf(k) ~ 0.8^k.
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let normal = rand_distr::StandardNormal;
        let (len, n) = (2000, 20);
        let mut data = Vec::new();
        for _ in 0..n {
            let mut x = 0.0f64;
            for _ in 0..len {
                let e: f64 = normal.sample(&mut rng);
                x = 0.8 * x + e;
                data.push(x as f32);
            }
        }
        let s = window_stats(&data, len, 1, 5);
        for k in 1..=5 {
            assert!(
                (s.acf[0][k - 1] - 0.8f64.powi(k as i32)).abs() < 0.03,
                "lag {k}: {}",
                s.acf[0][k - 1]
            );
        }
        let f = Fidelity::new(s.clone(), s);
        assert_eq!(f.worst(), (0.0, 0.0, 0.0));
    }
}
