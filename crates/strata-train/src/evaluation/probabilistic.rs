//! Probabilistic evaluation of a model with a distribution head on every test window: 100 seeded
//! sample paths per window, scored per (window, channel) series with the GluonTS item metrics
//! and aggregated as GluonTS does (CRPS in both forms, MSIS at alpha 0.05, coverage).

use burn::tensor::{Device, Tensor, TensorData};
use strata_data::scaler::StandardScaler;
use strata_data::window::{Batch, Windows, epoch_order};
use strata_models::Model;

use crate::evaluation::prob_metrics::{AggregateMetrics, ItemMetrics, aggregate, item_metrics};
use crate::tasks::data::marks_of;

pub const QUANTILES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// GluonTS's `get_seasonality` for a frequency string (`h` -> 24, `15min` -> 4, `b` -> 5, ...).
pub fn seasonality(freq: &str) -> usize {
    let digits: String = freq.chars().take_while(|c| c.is_ascii_digit()).collect();
    let k: usize = digits.parse().unwrap_or(1).max(1);
    let unit = freq[digits.len()..].to_ascii_lowercase();
    let base = match unit.as_str() {
        "h" => 24,
        "min" | "t" => 60,
        "s" => 60,
        "b" => 5,
        "m" | "ms" => 12,
        "q" => 4,
        _ => 1,
    };
    if base % k == 0 { base / k } else { 1 }
}

/// Score `samples` sample paths of every window of `windows`, every channel. With a `scaler`,
/// paths, targets and history are put back on the original scale (GluonTS scores raw values);
/// `full_history` takes the seasonal error over every row before the target (GluonTS), else
/// over the input window.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_probabilistic(
    model: &Model,
    windows: &Windows,
    batch_size: usize,
    device: &Device,
    samples: usize,
    seed: u64,
    season: usize,
    scaler: Option<&StandardScaler>,
    full_history: bool,
) -> Option<AggregateMetrics> {
    let (l, h, c) = (windows.seq_len, windows.pred_len, windows.channels());
    let un = |v: f32, ch: usize| scaler.map_or(v, |s| v * s.std[ch] + s.mean[ch]);
    let data = &windows.series.data;
    let mut items: Vec<ItemMetrics> = Vec::new();
    let mut batch = Batch::default();
    for (k, idx) in epoch_order(windows.len(), None).chunks(batch_size).enumerate() {
        windows.fill(idx, &mut batch);
        let b = batch.size;
        let x_rows = batch.x.clone();
        let x = Tensor::<4>::from_data(TensorData::new(std::mem::take(&mut batch.x), [b, l, c, 1]), device);
        let marks = marks_of(&mut batch, l, h, device);
        let dist = model.distribution(x, marks)?;
        let paths = dist.sample(samples, seed.wrapping_add(k as u64)); // [samples, b*h*c]
        let points = b * h * c;
        for j in 0..b {
            for ch in 0..c {
                let past: Vec<f32> = if full_history {
                    let end = windows.start + idx[j] * windows.stride + l;
                    (0..end).map(|r| un(data[r * c + ch], ch)).collect()
                } else {
                    (0..l).map(|t| un(x_rows[(j * l + t) * c + ch], ch)).collect()
                };
                let target: Vec<f32> = (0..h).map(|t| un(batch.y[(j * h + t) * c + ch], ch)).collect();
                let mut s = vec![0f32; samples * h];
                for n in 0..samples {
                    for t in 0..h {
                        s[n * h + t] = un(paths[n * points + (j * h + t) * c + ch], ch);
                    }
                }
                items.push(item_metrics(&past, &target, &s, &QUANTILES, season, 0.05));
            }
        }
    }
    Some(aggregate(&items, &QUANTILES))
}

/// Mean negative log-likelihood of every target value of `windows` (the validation loss of a
/// probabilistic model: early stopping then watches the whole distribution, not only its mean).
pub fn validation_nll(model: &Model, windows: &Windows, batch_size: usize, device: &Device) -> f64 {
    let (l, h, c) = (windows.seq_len, windows.pred_len, windows.channels());
    let (mut sum, mut count) = (0f64, 0usize);
    let mut batch = Batch::default();
    for idx in epoch_order(windows.len(), None).chunks(batch_size) {
        windows.fill(idx, &mut batch);
        let b = batch.size;
        let x = Tensor::<4>::from_data(TensorData::new(std::mem::take(&mut batch.x), [b, l, c, 1]), device);
        let y = Tensor::<1>::from_data(TensorData::new(std::mem::take(&mut batch.y), [b * h * c]), device);
        let marks = marks_of(&mut batch, l, h, device);
        let dist = model.distribution(x, marks).expect("a probabilistic model has a distribution");
        let nll: f32 = dist.nll(y).into_scalar();
        sum += nll as f64 * (b * h * c) as f64;
        count += b * h * c;
    }
    sum / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn seasonality_as_gluonts() {
        use super::seasonality;
        assert_eq!([seasonality("h"), seasonality("15min"), seasonality("10min"), seasonality("B"), seasonality("d")], [24, 4, 6, 5, 1]);
    }
}
