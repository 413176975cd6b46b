//! Stride-1 sliding windows over one split, and batching without copying the series.
//!
//! The scaled series is stored once, row-major `[rows, channels]`, behind an `Arc`. A window's
//! input `x` is the contiguous row range `[i, i+seq_len)` and its target `y` the next `pred_len`
//! rows, so filling a batch is one `memcpy` per window into a reused buffer.

use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;

/// A scaled multivariate series shared by the three splits.
#[derive(Debug, Clone)]
pub struct Series {
    pub data: Arc<[f32]>,
    pub rows: usize,
    pub channels: usize,
}

/// The windows of one split: row range `[start, end)` of `series`.
///
/// Inputs come from `series` and targets from `target`, two views of the same rows: the same
/// series for long-sequence forecasting; for spatio-temporal data the inputs are the scaled
/// signal with time features (`[rows, nodes * features]`) and the targets the raw signal
/// (`[rows, nodes]`), since the field computes its metrics on the original scale.
#[derive(Debug, Clone)]
pub struct Windows {
    pub series: Series,
    pub target: Series,
    /// Calendar features of every row (`[rows, marks]`), where the data has timestamps.
    pub marks: Option<Series>,
    /// Past-observed, future-known and static covariates (`data.covariates`), shared by the splits.
    pub covariates: Option<Arc<CovariateSeries>>,
    pub start: usize,
    pub end: usize,
    pub seq_len: usize,
    pub pred_len: usize,
    /// Rows between consecutive windows: 1, or e.g. the horizon for GluonTS's rolling test windows.
    pub stride: usize,
}

/// One batch, row-major: `x` is `[batch, seq_len, channels]`, `y` is `[batch, pred_len, channels]`.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub size: usize,
    /// Index of each window within its split.
    pub index: Vec<usize>,
    /// Calendar features of the input rows `[batch, seq_len, marks]` and of the target rows
    /// `[batch, pred_len, marks]` (empty when the data has none).
    pub x_mark: Vec<f32>,
    pub y_mark: Vec<f32>,
    /// Past-observed covariates of the input rows only, `[batch, seq_len, groups x past]`.
    pub past: Vec<f32>,
    /// Future-known covariates of the input and horizon rows, `[batch, seq_len + pred_len, groups x future]`.
    pub future: Vec<f32>,
}

/// The covariates of every row, scaled, beside the series: each kind is its own row-major
/// table, and a window reads from each only the rows that kind is known for.
#[derive(Debug, Clone)]
pub struct CovariateSeries {
    /// `[rows, groups x past]` (group-major), or `None` without past-observed covariates.
    pub past: Option<Series>,
    /// `[rows, groups x future]`.
    pub future: Option<Series>,
    /// `[groups, statics]`.
    pub statics: Option<Vec<f32>>,
    /// 1 (shared by every series) or the number of series / nodes.
    pub groups: usize,
    /// The groups hold the same past / future columns (a wide table's, repeated for every node
    /// because the static covariates are per node).
    pub shared: bool,
    pub names: CovariateNames,
}

/// The column names of each kind, in the order the models see them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CovariateNames {
    pub past: Vec<String>,
    pub future: Vec<String>,
    #[serde(rename = "static")]
    pub statics: Vec<String>,
}

impl CovariateSeries {
    /// Widths of each kind per group.
    pub fn widths(&self) -> [usize; 3] {
        [self.names.past.len(), self.names.future.len(), self.names.statics.len()]
    }
}

impl Windows {
    /// Number of complete windows (stride 1). Zero when the split is too short.
    pub fn len(&self) -> usize {
        let span = self.end - self.start;
        if span < self.seq_len + self.pred_len { 0 } else { (span - self.seq_len - self.pred_len) / self.stride.max(1) + 1 }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn channels(&self) -> usize {
        self.series.channels
    }
    /// Input rows of window `i`, `[seq_len * channels]`.
    pub fn x(&self, i: usize) -> &[f32] {
        let c = self.series.channels;
        let r = self.start + i * self.stride;
        &self.series.data[r * c..(r + self.seq_len) * c]
    }
    /// Target rows of window `i`, `[pred_len * target channels]`.
    pub fn y(&self, i: usize) -> &[f32] {
        let c = self.target.channels;
        let r = self.start + i * self.stride + self.seq_len;
        &self.target.data[r * c..(r + self.pred_len) * c]
    }
    /// Number of calendar features per row (0 without timestamps).
    pub fn mark_width(&self) -> usize {
        self.marks.as_ref().map_or(0, |m| m.channels)
    }

    /// The covariates' widths `[past, future, statics, groups]` (all zero without covariates).
    pub fn covariate_widths(&self) -> [usize; 4] {
        match &self.covariates {
            None => [0; 4],
            Some(c) => {
                let [past, future, statics] = c.widths();
                [past, future, statics, c.groups]
            }
        }
    }

    /// Fill `batch` with the windows `idx`, reusing its buffers.
    pub fn fill(&self, idx: &[usize], batch: &mut Batch) {
        batch.x.clear();
        batch.y.clear();
        batch.index.clear();
        batch.x_mark.clear();
        batch.y_mark.clear();
        batch.past.clear();
        batch.future.clear();
        for &i in idx {
            if let Some(c) = &self.covariates {
                let r = self.start + i * self.stride;
                // Past-observed: the input rows and not one row more (the leakage tests hold
                // this line to it); future-known: input and horizon rows.
                if let Some(p) = &c.past {
                    batch.past.extend_from_slice(&p.data[r * p.channels..(r + self.seq_len) * p.channels]);
                }
                if let Some(f) = &c.future {
                    batch.future.extend_from_slice(&f.data[r * f.channels..(r + self.seq_len + self.pred_len) * f.channels]);
                }
            }
            batch.x.extend_from_slice(self.x(i));
            batch.y.extend_from_slice(self.y(i));
            if let Some(m) = &self.marks {
                let (w, r) = (m.channels, self.start + i * self.stride);
                batch.x_mark.extend_from_slice(&m.data[r * w..(r + self.seq_len) * w]);
                batch.y_mark.extend_from_slice(&m.data[(r + self.seq_len) * w..(r + self.seq_len + self.pred_len) * w]);
            }
        }
        batch.index.extend_from_slice(idx);
        batch.size = idx.len();
    }
}

/// The order in which one epoch visits the windows: shuffled by a seeded ChaCha8 generator
/// (so a seed reproduces the epoch on any platform), or in time order for evaluation.
/// The last batch may be smaller: nothing is dropped.
pub fn epoch_order(n: usize, shuffle_seed: Option<u64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(seed) = shuffle_seed {
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Windows {
        // 10 rows x 2 channels: value = 10*row + channel.
        let data: Vec<f32> = (0..10).flat_map(|r| [10.0 * r as f32, 10.0 * r as f32 + 1.0]).collect();
        let series = Series { data: data.into(), rows: 10, channels: 2 };
        Windows { target: series.clone(), series, marks: None, covariates: None, start: 2, end: 10, seq_len: 3, pred_len: 2, stride: 1 }
    }

    #[test]
    fn counts_every_complete_window() {
        // rows 2..10 = 8 rows; windows of 5 rows: 4.
        assert_eq!(windows().len(), 4);
    }

    #[test]
    fn strided_windows() {
        // Rows 2..10 with windows of 3 + 2 rows every 2 rows: starts 2 and 4 (6 would end at 11).
        let w = Windows { stride: 2, ..windows() };
        assert_eq!(w.len(), 2);
        assert_eq!(w.x(1), [40.0, 41.0, 50.0, 51.0, 60.0, 61.0]);
        assert_eq!(w.y(1), [70.0, 71.0, 80.0, 81.0]);
    }

    #[test]
    fn window_contents_are_the_right_rows() {
        let w = windows();
        assert_eq!(w.x(0), [20.0, 21.0, 30.0, 31.0, 40.0, 41.0]);
        assert_eq!(w.y(3), [80.0, 81.0, 90.0, 91.0]);
        let mut b = Batch::default();
        w.fill(&[3, 0], &mut b);
        assert_eq!(b.size, 2);
        assert_eq!(&b.x[..6], [50.0, 51.0, 60.0, 61.0, 70.0, 71.0]);
        assert_eq!(&b.y[4..], [50.0, 51.0, 60.0, 61.0]);
    }

    #[test]
    fn shuffle_is_seeded_and_a_permutation() {
        let a = epoch_order(100, Some(7));
        assert_eq!(a, epoch_order(100, Some(7)));
        assert_ne!(a, epoch_order(100, Some(8)));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_eq!(epoch_order(3, None), [0, 1, 2]);
    }
}
