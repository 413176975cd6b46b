//! Evaluation of a model on every window of a split.

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};
use strata_data::scaler::StandardScaler;
use strata_data::window::{Batch, Windows, epoch_order};
use strata_models::Model;

use crate::evaluation::metrics::{Accumulator, Metrics};

/// Metrics on the scaled data, and on the original scale when a scaler is given.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub scaled: Metrics,
    pub original: Option<Metrics>,
    /// Scaled metrics over the windows the papers' code evaluated: `drop_last=True` with batch
    /// size `b` keeps the first `(n / b) * b` windows in time order.
    pub drop_last: Option<Metrics>,
    pub windows: usize,
}

/// Forecast every window of `windows` (in time order, no window dropped) and accumulate
/// metrics over the channels `out`. `model` should be in validation mode.
pub fn evaluate(
    model: &Model,
    windows: &Windows,
    out: Range<usize>,
    batch_size: usize,
    device: &Device,
    scaler: Option<&StandardScaler>,
    drop_last_batch: Option<usize>,
) -> Evaluation {
    let (l, c) = (windows.seq_len, windows.channels());
    let mut acc = Accumulator::default();
    let mut acc_orig = Accumulator::default();
    let mut acc_drop = Accumulator::default();
    let kept = drop_last_batch.map(|b| windows.len() / b * b);
    let per_window = windows.pred_len * out.len();
    let mut batch = Batch::default();
    let order = epoch_order(windows.len(), None);
    let out_cols: Vec<usize> = out.clone().collect();
    // A data-parallel run splits the batches across its ranks and adds up their sums.
    let world = crate::engine::parallel::world();
    for (_, idx) in order.chunks(batch_size).enumerate().filter(|(k, _)| k % world.size() == world.rank()) {
        windows.fill(idx, &mut batch);
        let b = batch.size;
        let x = Tensor::<4>::from_data(TensorData::new(std::mem::take(&mut batch.x), [b, l, c, 1]), device);
        let marks = crate::tasks::data::marks_of(&mut batch, l, windows.pred_len, device);
        let covariates = crate::tasks::data::covariates_of(windows, &mut batch, device);
        let pred = model.forward_inputs(x, marks, None, covariates).narrow(2, out.start, out.len());
        let pred: Vec<f32> = pred.into_data().try_into_vec().expect("f32 forecast");
        let truth: Vec<f32> = if out.len() == c {
            std::mem::take(&mut batch.y)
        } else {
            batch.y.chunks_exact(c).flat_map(|row| row[out.clone()].to_vec()).collect()
        };
        acc.add(&pred, &truth);
        if let Some(kept) = kept {
            for k in (0..idx.len()).filter(|&k| idx[k] < kept) {
                acc_drop.add(&pred[k * per_window..(k + 1) * per_window], &truth[k * per_window..(k + 1) * per_window]);
            }
        }
        if let Some(s) = scaler {
            let (mut p, mut t) = (pred, truth);
            s.inverse_columns(&mut p, &out_cols);
            s.inverse_columns(&mut t, &out_cols);
            acc_orig.add(&p, &t);
        }
    }
    for a in [&mut acc, &mut acc_orig, &mut acc_drop] {
        a.reduce(world);
    }
    Evaluation {
        scaled: acc.finish(),
        original: scaler.map(|_| acc_orig.finish()),
        drop_last: kept.map(|_| acc_drop.finish()),
        windows: windows.len(),
    }
}
