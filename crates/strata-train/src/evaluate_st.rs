//! Spatio-temporal evaluation: every window, forecasts back on the original scale, masked
//! MAE / RMSE / MAPE (null value 0) per horizon step, accumulated as sums over the whole split
//! (protocols.md: never an average of per-batch values).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use strata_data::SpatialPrepared;
use strata_data::window::{Batch, Windows, epoch_order};
use strata_models::Model;

use crate::metrics::{Accumulator, Metrics};
use crate::task::NULL_EPS;

/// Masked metrics of one horizon step (or of all steps: `horizon` 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MaskedMetrics {
    pub horizon: usize,
    pub mae: f64,
    pub rmse: f64,
    pub mape: f64,
    /// Target values that were not the null value.
    pub count: u64,
}

/// Sums for masked metrics: a value counts when `|y| > 5e-5`.
#[derive(Debug, Clone, Default)]
pub struct MaskedAccumulator {
    n: u64,
    sae: f64,
    sse: f64,
    sape: f64,
}

impl MaskedAccumulator {
    pub fn add(&mut self, pred: f32, y: f32) {
        if y.abs() <= NULL_EPS {
            return;
        }
        let e = (pred - y) as f64;
        self.n += 1;
        self.sae += e.abs();
        self.sse += e * e;
        self.sape += (e / y as f64).abs();
    }
    pub fn merge(&mut self, o: &MaskedAccumulator) {
        self.n += o.n;
        self.sae += o.sae;
        self.sse += o.sse;
        self.sape += o.sape;
    }
    pub fn finish(&self, horizon: usize) -> MaskedMetrics {
        let n = self.n.max(1) as f64;
        MaskedMetrics { horizon, mae: self.sae / n, rmse: (self.sse / n).sqrt(), mape: self.sape / n, count: self.n }
    }
}

/// What a spatio-temporal evaluation reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpatialEvaluation {
    /// Horizons 3, 6, 12 (those within pred_len), 1-based steps.
    pub horizons: Vec<MaskedMetrics>,
    /// All steps together.
    pub average: MaskedMetrics,
    /// Unmasked metrics on the original scale (every target value).
    pub unmasked: Metrics,
    pub windows: usize,
}

/// Forecast every window of `windows` and score on the original scale.
pub fn evaluate_spatial(model: &Model, data: &SpatialPrepared, windows: &Windows, batch_size: usize, device: &Device) -> SpatialEvaluation {
    let (h, n, f) = (windows.pred_len, data.nodes, data.in_features);
    let (mean, std) = (data.scaler.mean[0], data.scaler.std[0]);
    let mut per_step = vec![MaskedAccumulator::default(); h];
    let mut unmasked = Accumulator::default();
    let mut batch = Batch::default();
    for idx in epoch_order(windows.len(), None).chunks(batch_size) {
        windows.fill(idx, &mut batch);
        let b = batch.size;
        let x = burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(std::mem::take(&mut batch.x), [b, windows.seq_len, n, f]), device);
        let mut pred: Vec<f32> = model.forward(x).into_data().try_into_vec().expect("f32 forecast");
        pred.iter_mut().for_each(|p| *p = *p * std + mean);
        for (k, (p, y)) in pred.iter().zip(&batch.y).enumerate() {
            per_step[(k / n) % h].add(*p, *y);
        }
        unmasked.add(&pred, &batch.y);
    }
    let mut all = MaskedAccumulator::default();
    per_step.iter().for_each(|a| all.merge(a));
    SpatialEvaluation {
        horizons: [3, 6, 12].into_iter().filter(|&s| s <= h).map(|s| per_step[s - 1].finish(s)).collect(),
        average: all.finish(0),
        unmasked: unmasked.finish(),
        windows: windows.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_metrics_by_hand() {
        // Targets 2, 0 (null), 4; forecasts 3, 9, 2: errors 1 and -2 count, the null one does not.
        let mut a = MaskedAccumulator::default();
        for (p, y) in [(3.0, 2.0), (9.0, 0.0), (2.0, 4.0)] {
            a.add(p, y);
        }
        let m = a.finish(0);
        assert_eq!(m.count, 2);
        assert!((m.mae - 1.5).abs() < 1e-12);
        assert!((m.rmse - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((m.mape - (0.5 + 0.5) / 2.0).abs() < 1e-12);
    }
}
