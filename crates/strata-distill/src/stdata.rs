//! The spatio-temporal data distillation works on: a normalised input series `[rows, nodes,
//! features]`, a raw target series `[rows, nodes]`, split windows, and batches gathered for any
//! set of windows and locations. Also the location encoder's inputs and the masked metrics.

use burn::tensor::{Device, Tensor, TensorData};
use strata_data::SpatialPrepared;

/// Series and splits, with the scaler of the target.
#[derive(Debug, Clone)]
pub struct StData {
    /// `[rows, nodes, f]`, normalised values then time features.
    pub x: Vec<f32>,
    /// `[rows, nodes]`, original scale (0 = null).
    pub y: Vec<f32>,
    pub rows: usize,
    pub nodes: usize,
    pub f: usize,
    pub l: usize,
    pub h: usize,
    /// First input row of every window of each split.
    pub splits: [Vec<usize>; 3],
    pub mean: f32,
    pub std: f32,
}

impl StData {
    pub fn from_prepared(d: &SpatialPrepared) -> StData {
        let w = [&d.train, &d.val, &d.test];
        let starts = |k: usize| (0..w[k].len()).map(|i| w[k].start + i).collect::<Vec<_>>();
        StData {
            x: d.train.series.data.to_vec(),
            y: d.train.target.data.to_vec(),
            rows: d.rows,
            nodes: d.nodes,
            f: d.in_features,
            l: d.train.seq_len,
            h: d.train.pred_len,
            splits: [starts(0), starts(1), starts(2)],
            mean: d.scaler.mean[0],
            std: d.scaler.std[0],
        }
    }

    /// Rows `[0, end)` hold every training window (inputs and targets).
    pub fn train_rows(&self) -> usize {
        self.splits[0].last().map_or(0, |&s| s + self.l + self.h)
    }

    /// Inputs `[b, l, |nodes|, f]` and normalised targets `[b, h, |nodes|]` of the windows
    /// starting at `starts`, for the locations `nodes`.
    pub fn gather(&self, starts: &[usize], nodes: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let (n, f) = (self.nodes, self.f);
        let mut x = Vec::with_capacity(starts.len() * self.l * nodes.len() * f);
        let mut y = Vec::with_capacity(starts.len() * self.h * nodes.len());
        for &s in starts {
            for r in s..s + self.l {
                for &i in nodes {
                    x.extend_from_slice(&self.x[(r * n + i) * f..(r * n + i + 1) * f]);
                }
            }
            for r in s + self.l..s + self.l + self.h {
                y.extend(nodes.iter().map(|&i| (self.y[r * n + i] - self.mean) / self.std));
            }
        }
        (x, y)
    }

    /// The location encoder's input: every location's mean input window over the training
    /// windows, `[nodes, l * f]` (a window's rows are consecutive, so this is a running mean).
    pub fn location_means(&self) -> Vec<f32> {
        let (n, f, l) = (self.nodes, self.f, self.l);
        let starts = &self.splits[0];
        let mut out = vec![0f64; n * l * f];
        for &s in starts {
            for t in 0..l {
                for i in 0..n {
                    for j in 0..f {
                        out[(i * l + t) * f + j] += self.x[((s + t) * n + i) * f + j] as f64;
                    }
                }
            }
        }
        out.iter().map(|v| (v / starts.len().max(1) as f64) as f32).collect()
    }
}

pub fn tensor4(v: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

pub fn tensor3(v: Vec<f32>, shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

pub fn tensor2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Mean input window of each location of a window batch `x` `[b, l, n, f]` -> `[n, l * f]`
/// (differentiable: the synthetic set's encoder input follows the synthetic data).
pub fn batch_location_means(x: Tensor<4>) -> Tensor<2> {
    let [_, l, n, f] = x.dims();
    x.mean_dim(0).reshape([l, n, f]).permute([1, 0, 2]).reshape([n, l * f])
}

/// Masked errors on the original scale (targets equal to 0 are null), with the relative ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub mae: f64,
    pub rmse: f64,
    /// Relative absolute error `sum |y - p| / sum |y - mean(y)|`.
    pub rae: f64,
    /// Root relative squared error `sqrt(sum (y - p)^2 / sum (y - mean(y))^2)`.
    pub rrse: f64,
    pub points: usize,
}

/// Score forecasts `pred` against `truth` (both original scale, same layout); a truth value
/// counts when it is not the null value (`|y| > NULL_EPS`, as `strata train`'s masked metrics).
pub fn score(pred: &[f32], truth: &[f32]) -> Scores {
    let kept: Vec<(f64, f64)> = pred.iter().zip(truth).filter(|(_, y)| y.abs() > strata_train::tasks::data::NULL_EPS).map(|(p, y)| (*p as f64, *y as f64)).collect();
    let n = kept.len().max(1) as f64;
    let mean = kept.iter().map(|k| k.1).sum::<f64>() / n;
    let (mut ae, mut se, mut ad, mut sd) = (0.0, 0.0, 0.0, 0.0);
    for (p, y) in &kept {
        (ae, se, ad, sd) = (ae + (y - p).abs(), se + (y - p).powi(2), ad + (y - mean).abs(), sd + (y - mean).powi(2));
    }
    Scores { mae: ae / n, rmse: (se / n).sqrt(), rae: ae / ad.max(1e-12), rrse: (se / sd.max(1e-12)).sqrt(), points: kept.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_by_hand_with_the_null_masked() {
        // Truth 1, 3, (0 = null), 5; forecasts 2, 3, 9, 3. Mean of kept truth = 3.
        let s = score(&[2.0, 3.0, 9.0, 3.0], &[1.0, 3.0, 0.0, 5.0]);
        assert_eq!(s.points, 3);
        assert!((s.mae - 1.0).abs() < 1e-12);
        assert!((s.rmse - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.rae - 3.0 / 4.0).abs() < 1e-12);
        assert!((s.rrse - (5.0f64 / 8.0).sqrt()).abs() < 1e-12);
    }
}
