//! Spatio-temporal evaluation: every window, forecasts back on the original scale, masked
//! MAE / RMSE / MAPE (null value 0) per horizon step, accumulated as sums over the whole split
//! (protocols.md: never an average of per-batch values).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use strata_data::SpatialPrepared;
use strata_data::window::{Batch, Windows, epoch_order};
use strata_models::Model;

use crate::evaluation::metrics::{Accumulator, Metrics};
use crate::tasks::data::NULL_EPS;

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
    /// The sums over every rank of a data-parallel run.
    pub fn reduce(&mut self, world: &crate::engine::parallel::World) {
        if world.size() == 1 {
            return;
        }
        let mut v = [self.n as f64, self.sae, self.sse, self.sape];
        world.sum_f64(&mut v);
        *self = MaskedAccumulator { n: v[0] as u64, sae: v[1], sse: v[2], sape: v[3] };
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
    // A data-parallel run splits the batches across its ranks and adds up their sums.
    let world = crate::engine::parallel::world();
    for (_, idx) in epoch_order(windows.len(), None).chunks(batch_size).enumerate().filter(|(k, _)| k % world.size() == world.rank()) {
        windows.fill(idx, &mut batch);
        let b = batch.size;
        let x = burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(std::mem::take(&mut batch.x), [b, windows.seq_len, n, f]), device);
        let graphs = crate::tasks::data::window_graphs(data, windows, &batch, device);
        let covariates = crate::tasks::data::covariates_of(windows, &mut batch, device);
        let mut pred: Vec<f32> = model.forward_inputs(x, None, graphs, covariates).into_data().try_into_vec().expect("f32 forecast");
        pred.iter_mut().for_each(|p| *p = *p * std + mean);
        for (k, (p, y)) in pred.iter().zip(&batch.y).enumerate() {
            per_step[(k / n) % h].add(*p, *y);
        }
        unmasked.add(&pred, &batch.y);
    }
    per_step.iter_mut().for_each(|a| a.reduce(world));
    unmasked.reduce(world);
    report(&per_step, &unmasked, windows.len())
}

/// Horizons 3/6/12 (those within the horizon), all steps together, and the unmasked metrics.
fn report(per_step: &[MaskedAccumulator], unmasked: &Accumulator, windows: usize) -> SpatialEvaluation {
    let mut all = MaskedAccumulator::default();
    per_step.iter().for_each(|a| all.merge(a));
    SpatialEvaluation {
        horizons: [3, 6, 12].into_iter().filter(|&s| s <= per_step.len()).map(|s| per_step[s - 1].finish(s)).collect(),
        average: all.finish(0),
        unmasked: unmasked.finish(),
        windows,
    }
}

/// The two reference forecasts every spatio-temporal table shows beside a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    /// Repeat the last input value of each node over the horizon.
    pub last_value: SpatialEvaluation,
    /// Each node's mean over the training input rows at the same time of day (its mean over all
    /// of them when the data has no daily cycle); null values are left out of the mean.
    pub historical_average: SpatialEvaluation,
}

/// Score the last-value and historical-average forecasts on `windows`.
pub fn evaluate_baselines(data: &SpatialPrepared, windows: &Windows) -> Baselines {
    let (h, l, n) = (windows.pred_len, windows.seq_len, data.nodes);
    let spd = data.steps_per_day.unwrap_or(1).max(1);
    let target = &windows.target.data;
    // The rows the training inputs cover (as the z-score): no validation target leaks in.
    let train_rows = data.train.len() - 1 + l;
    let mut sum = vec![0f64; spd * n];
    let mut cnt = vec![0u64; spd * n];
    for r in 0..train_rows {
        for j in 0..n {
            let v = target[r * n + j];
            if v.abs() > NULL_EPS {
                sum[(r % spd) * n + j] += v as f64;
                cnt[(r % spd) * n + j] += 1;
            }
        }
    }
    let ha: Vec<f32> = sum.iter().zip(&cnt).map(|(s, &c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 }).collect();
    let score = |forecast: &dyn Fn(usize, usize, usize) -> f32| {
        let mut per_step = vec![MaskedAccumulator::default(); h];
        let mut unmasked = Accumulator::default();
        for i in 0..windows.len() {
            let start = windows.start + i * windows.stride;
            let y = windows.y(i);
            let mut p = vec![0f32; h * n];
            for s in 0..h {
                for j in 0..n {
                    p[s * n + j] = forecast(start, s, j);
                    per_step[s].add(p[s * n + j], y[s * n + j]);
                }
            }
            unmasked.add(&p, y);
        }
        report(&per_step, &unmasked, windows.len())
    };
    Baselines {
        last_value: score(&|start, _, j| target[(start + l - 1) * n + j]),
        historical_average: score(&|start, s, j| ha[((start + l + s) % spd) * n + j]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_by_hand() {
        use strata_data::window::Series;
        // One node, 2 steps per day, values 1 2 1 2 ... (10 rows); windows 2 -> 1, split 6/1/1.
        let vals: Vec<f32> = (0..10).map(|r| 1.0 + (r % 2) as f32).collect();
        let s = Series { data: vals.clone().into(), rows: 10, channels: 1 };
        let w = |start, count: usize| Windows { series: s.clone(), target: s.clone(), marks: None, covariates: None, start, end: start + count - 1 + 3, seq_len: 2, pred_len: 1, stride: 1 };
        let data = SpatialPrepared {
            dataset: "t".into(),
            path: "t".into(),
            sha256: String::new(),
            graph: None,
            graph_sha256: None,
            freq: "h".into(),
            rows: 10,
            nodes: 1,
            in_features: 1,
            ids: None,
            steps_per_day: Some(2),
            time_of_day: false,
            day_of_week: false,
            grid: None,
            scaler: strata_data::scaler::StandardScaler { mean: vec![0.0], std: vec![1.0] },
            missing: 0,
            zeros: 0,
            split: [0.75, 0.125, 0.125],
            borders: [(0, 8), (6, 9), (7, 10)],
            train: w(0, 6),
            val: w(6, 1),
            test: w(7, 1),
            source: None,
            dynamic: None,
            covariate_scalers: None,
        };
        let b = evaluate_baselines(&data, &data.test);
        // Test window: inputs rows 7, 8 (values 2, 1), target row 9 (value 2). Last value 1
        // misses by 1; the historical average of the odd training rows (1, 3, 5) is exactly 2.
        assert_eq!(b.last_value.average.mae, 1.0);
        assert_eq!(b.historical_average.average.mae, 0.0);
    }

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
