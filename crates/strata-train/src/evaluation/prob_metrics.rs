//! Metrics of probabilistic (sample) forecasts, defined as GluonTS's `Evaluator` and
//! properscoring define them (protocols.md, probabilistic section). Inputs are f32 (what models
//! produce); every sum is in f64.
//!
//! Per series ([`item_metrics`]): MSE of the sample mean; absolute error, MASE, MAPE and sMAPE of
//! the median; MSIS of the `alpha/2`, `1 - alpha/2` quantiles; quantile losses and coverages;
//! CRPS in its sample (energy) form. Over series ([`aggregate`]): GluonTS's aggregation,
//! including `mean_wQuantileLoss`, the quantile-loss form of CRPS. The q-quantile of S samples is
//! GluonTS's: the order statistic at `round((S - 1) q)`, ties rounded to even as numpy does.

use serde::{Deserialize, Serialize};

/// GluonTS's `SampleForecast.quantile`: the order statistic at `round((n - 1) q)` (ties to even)
/// of an ascending slice.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let idx = ((sorted.len() - 1) as f64 * q).round_ties_even() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// CRPS of an ensemble against one observation, in the energy form
/// `E|X - y| - 0.5 E|X - X'|` over all ordered pairs (properscoring's `crps_ensemble`).
/// `sorted` must be ascending.
pub fn crps_ensemble(sorted: &[f64], y: f64) -> f64 {
    let n = sorted.len() as f64;
    let spread_to_y = sorted.iter().map(|x| (x - y).abs()).sum::<f64>() / n;
    // sum_{i,j} |x_i - x_j| = 2 sum_i (2i - n + 1) x_(i) for ascending x.
    let pairs: f64 = sorted.iter().enumerate().map(|(i, x)| (2.0 * i as f64 - n + 1.0) * x).sum::<f64>() * 2.0;
    spread_to_y - 0.5 * pairs / (n * n)
}

/// GluonTS's seasonal error: mean `|y_t - y_{t-m}|` over the history (`m` = 1 when the history is
/// not longer than `m`).
pub fn seasonal_error(past: &[f32], m: usize) -> f64 {
    let m = if m < past.len() { m } else { 1 };
    let n = past.len().saturating_sub(m);
    if n == 0 {
        return f64::NAN;
    }
    (0..n).map(|t| (past[t + m] as f64 - past[t] as f64).abs()).sum::<f64>() / n as f64
}

/// Metrics of one series' forecast (GluonTS item metrics, plus the sample-form CRPS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemMetrics {
    pub mse: f64,
    pub abs_error: f64,
    pub abs_target_sum: f64,
    pub abs_target_mean: f64,
    pub seasonal_error: f64,
    pub mase: f64,
    /// Mean of `|y - median| / |y|` over the non-zero targets.
    pub mape: f64,
    pub smape: f64,
    pub msis: f64,
    pub nd: f64,
    pub quantile_loss: Vec<f64>,
    pub coverage: Vec<f64>,
    /// Mean over the horizon of the sample-form CRPS.
    pub crps: f64,
    /// Share of targets inside the central 50%, 90% and 95% intervals of the samples.
    pub interval_coverage: [f64; 3],
    pub points: usize,
}

/// Central intervals reported as coverage: 50%, 90%, 95%.
pub const INTERVALS: [f64; 3] = [0.5, 0.9, 0.95];

/// `samples` is `[num_samples, horizon]` row-major; `quantiles` e.g. 0.1..0.9; `alpha` 0.05.
pub fn item_metrics(past: &[f32], target: &[f32], samples: &[f32], quantiles: &[f64], season: usize, alpha: f64) -> ItemMetrics {
    let h = target.len();
    let s = samples.len() / h;
    assert_eq!(s * h, samples.len(), "samples must be [num_samples, horizon]");
    // Per step: the sorted samples.
    let sorted: Vec<Vec<f64>> = (0..h)
        .map(|t| {
            let mut v: Vec<f64> = (0..s).map(|k| samples[k * h + t] as f64).collect();
            v.sort_by(f64::total_cmp);
            v
        })
        .collect();
    let y: Vec<f64> = target.iter().map(|&v| v as f64).collect();
    let q_at = |q: f64| -> Vec<f64> { sorted.iter().map(|v| quantile_sorted(v, q)).collect() };
    let mean: Vec<f64> = sorted.iter().map(|v| v.iter().sum::<f64>() / s as f64).collect();
    let median = q_at(0.5);
    let n = h as f64;
    let se = seasonal_error(past, season);
    let abs_error: f64 = y.iter().zip(&median).map(|(a, b)| (a - b).abs()).sum();
    let abs_target_sum: f64 = y.iter().map(|v| v.abs()).sum();
    let nonzero: Vec<usize> = (0..h).filter(|&t| y[t] != 0.0).collect();
    let (lo, hi) = (q_at(alpha / 2.0), q_at(1.0 - alpha / 2.0));
    let msis_num = (0..h)
        .map(|t| {
            let (l, u, v) = (lo[t], hi[t], y[t]);
            u - l + if v < l { 2.0 / alpha * (l - v) } else { 0.0 } + if v > u { 2.0 / alpha * (v - u) } else { 0.0 }
        })
        .sum::<f64>()
        / n;
    let mut quantile_loss = Vec::with_capacity(quantiles.len());
    let mut coverage = Vec::with_capacity(quantiles.len());
    for &q in quantiles {
        let f = q_at(q);
        quantile_loss.push(2.0 * (0..h).map(|t| ((f[t] - y[t]) * (if y[t] <= f[t] { 1.0 } else { 0.0 } - q)).abs()).sum::<f64>());
        coverage.push((0..h).filter(|&t| y[t] <= f[t]).count() as f64 / n);
    }
    ItemMetrics {
        mse: y.iter().zip(&mean).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n,
        abs_error,
        abs_target_sum,
        abs_target_mean: abs_target_sum / n,
        seasonal_error: se,
        mase: abs_error / n / se,
        mape: if nonzero.is_empty() { f64::NAN } else { nonzero.iter().map(|&t| ((y[t] - median[t]) / y[t]).abs()).sum::<f64>() / nonzero.len() as f64 },
        smape: 2.0 * (0..h).map(|t| (y[t] - median[t]).abs() / (y[t].abs() + median[t].abs())).sum::<f64>() / n,
        msis: msis_num / se,
        nd: abs_error / abs_target_sum,
        quantile_loss,
        coverage,
        crps: (0..h).map(|t| crps_ensemble(&sorted[t], y[t])).sum::<f64>() / n,
        interval_coverage: INTERVALS.map(|level| {
            let (l, u) = (q_at((1.0 - level) / 2.0), q_at((1.0 + level) / 2.0));
            (0..h).filter(|&t| l[t] <= y[t] && y[t] <= u[t]).count() as f64 / n
        }),
        points: h,
    }
}

/// Metrics over many series, aggregated as GluonTS's `Evaluator` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateMetrics {
    pub mse: f64,
    pub rmse: f64,
    pub nrmse: f64,
    pub nd: f64,
    pub mase: f64,
    pub mape: f64,
    pub smape: f64,
    pub msis: f64,
    /// CRPS, quantile-loss form: mean over quantiles of `sum QL_q / sum |y|` (GluonTS's
    /// `mean_wQuantileLoss`).
    pub mean_wquantile_loss: f64,
    pub wquantile_loss: Vec<f64>,
    pub coverage: Vec<f64>,
    /// Mean absolute difference between coverage and nominal level.
    pub mae_coverage: f64,
    /// CRPS, sample (energy) form, averaged over every forecast point.
    pub crps: f64,
    /// Normalised sample-form CRPS: the sum of the point CRPS over the sum of `|y|`.
    pub crps_normalised: f64,
    /// Mean share of targets inside the central 50%, 90%, 95% intervals.
    pub interval_coverage: [f64; 3],
    pub quantiles: Vec<f64>,
    pub series: usize,
}

pub fn aggregate(items: &[ItemMetrics], quantiles: &[f64]) -> AggregateMetrics {
    let k = items.len().max(1) as f64;
    let mean = |f: &dyn Fn(&ItemMetrics) -> f64| items.iter().map(f).sum::<f64>() / k;
    let sum = |f: &dyn Fn(&ItemMetrics) -> f64| items.iter().map(f).sum::<f64>();
    let mse = mean(&|m| m.mse);
    let abs_target_sum = sum(&|m| m.abs_target_sum);
    let wql: Vec<f64> = (0..quantiles.len()).map(|i| sum(&|m| m.quantile_loss[i]) / abs_target_sum).collect();
    let coverage: Vec<f64> = (0..quantiles.len()).map(|i| mean(&|m| m.coverage[i])).collect();
    let crps_sum = sum(&|m| m.crps * m.points as f64);
    let points = items.iter().map(|m| m.points).sum::<usize>().max(1) as f64;
    AggregateMetrics {
        mse,
        rmse: mse.sqrt(),
        nrmse: mse.sqrt() / mean(&|m| m.abs_target_mean),
        nd: sum(&|m| m.abs_error) / abs_target_sum,
        mase: mean(&|m| m.mase),
        mape: mean(&|m| m.mape),
        smape: mean(&|m| m.smape),
        msis: mean(&|m| m.msis),
        mean_wquantile_loss: wql.iter().sum::<f64>() / wql.len().max(1) as f64,
        mae_coverage: coverage.iter().zip(quantiles).map(|(c, q)| (c - q).abs()).sum::<f64>() / quantiles.len().max(1) as f64,
        wquantile_loss: wql,
        coverage,
        crps: crps_sum / points,
        crps_normalised: crps_sum / abs_target_sum,
        interval_coverage: [0, 1, 2].map(|i| mean(&|m| m.interval_coverage[i])),
        quantiles: quantiles.to_vec(),
        series: items.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_cases() {
        // GluonTS on 4 sorted samples: q 0.5 -> index round(1.5) = 2 (ties to even), 0.25 ->
        // round(0.75) = 1, 0.9 -> round(2.7) = 3; 0.5 of 3 samples -> index 1.
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile_sorted(&v, 0.5), 4.0);
        assert_eq!(quantile_sorted(&v, 0.25), 2.0);
        assert_eq!(quantile_sorted(&v, 0.9), 8.0);
        assert_eq!(quantile_sorted(&v[..3], 0.5), 2.0);
        // Ensemble {0, 2}, y = 1: E|X - y| = 1, E|X - X'| = (0 + 2 + 2 + 0) / 4 = 1 -> CRPS 0.5.
        assert_eq!(crps_ensemble(&[0.0, 2.0], 1.0), 0.5);
        // A single member is the absolute error.
        assert_eq!(crps_ensemble(&[3.0], 1.0), 2.0);
        // Seasonal error with m = 2 of 1, 2, 4, 8: mean(|4-1|, |8-2|) = 4.5; m >= len -> m = 1.
        assert_eq!(seasonal_error(&[1.0, 2.0, 4.0, 8.0], 2), 4.5);
        assert_eq!(seasonal_error(&[1.0, 3.0], 5), 2.0);
    }
}
