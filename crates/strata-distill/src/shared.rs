//! What the distillation methods share: the distilled set and its file form, the synthetic set
//! as a trainable module, the location-encoder backbone, cluster-subset losses and seeding.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use strata_models::{MTGNN, MTGNNConfig, Shape};

use crate::cluster::subset_weights;
use crate::config::DistillConfig;
use crate::stdata::{Scores, StData};

/// A distilled set: `m` windows over `k` (cluster) locations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Distilled {
    pub method: String,
    /// `[m, l, k, f]` normalised inputs and time features.
    pub x: Vec<f32>,
    /// `[m, h, k]` normalised targets.
    pub y: Vec<f32>,
    pub m: usize,
    pub k: usize,
    pub l: usize,
    pub h: usize,
    pub f: usize,
    /// Locations behind each synthetic location (loss weights).
    pub sizes: Vec<usize>,
    /// Synthetic location of every real location (`usize::MAX`: not represented).
    pub assignment: Vec<usize>,
    /// The real data's target scaler.
    pub mean: f32,
    pub std: f32,
    /// `(outer iteration, mean matching distance)`.
    pub history: Vec<(usize, f64)>,
    /// Validation scores of the kept set (real validation split, all locations).
    pub val: Option<Scores>,
    pub seconds: f64,
}

/// The synthetic inputs and targets as one trainable module.
#[derive(Module, Debug)]
pub(crate) struct SynSet {
    pub(crate) x: Param<Tensor<4>>,
    pub(crate) y: Param<Tensor<3>>,
}

pub(crate) fn idx(v: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [v.len()]), device)
}

/// Weighted MSE of the model on locations `subset` of a window batch; `loc` is the encoder
/// input of every location of the batch.
pub(crate) fn subset_loss(model: &MTGNN, x: Tensor<4>, y: Tensor<3>, loc: Tensor<2>, subset: &[usize], sizes: &[usize]) -> Tensor<1> {
    let device = x.device();
    let i = idx(subset, &device);
    let pred = model.forward_located(x.select(2, i.clone()), loc.select(0, i.clone()));
    let w = subset_weights(sizes, subset);
    let w = Tensor::<3>::from_data(TensorData::new(w, [1, 1, subset.len()]), &device);
    ((pred - y.select(2, i)).powi_scalar(2) * w).mean()
}

/// A tensor's values as a new graph-free tensor (reused across several backward passes, a
/// derived tensor would have its tape consumed by the first).
pub(crate) fn constant(t: Tensor<2>) -> Tensor<2> {
    let device = t.device();
    Tensor::from_data(t.into_data(), &device)
}

/// The model settings with the location encoder on (the distilled set has other locations
/// than the real data, so the model must not have per-location parameters).
pub fn backbone(cfg: &DistillConfig) -> MTGNNConfig {
    MTGNNConfig { location_encoder: true, ..cfg.model.clone() }
}

pub(crate) fn partition(k: usize, parts: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..k).collect();
    order.shuffle(rng);
    let parts = parts.clamp(1, k.max(1));
    (0..parts).map(|p| order.iter().copied().skip(p).step_by(parts).collect()).filter(|s: &Vec<usize>| !s.is_empty()).collect()
}

/// The backbone's shape for windows of `l` -> `h` steps, `f` features, over `k` locations.
pub(crate) fn st_shape(l: usize, h: usize, k: usize, f: usize) -> Shape {
    Shape { seq_len: l, pred_len: h, channels: k, features: f, steps_per_day: 0, tod: false, dow: false, grid: None, marks: 0, covariates: strata_models::CovariateShape { past: 0, future: 0, statics: 0, groups: 0 } }
}

/// `m` random training windows (their first rows), seeded.
pub(crate) fn random_starts(real: &StData, m: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut starts: Vec<usize> = real.splits[0].clone();
    starts.shuffle(rng);
    starts.truncate(m);
    starts
}

impl Distilled {
    /// A set of real windows `starts` at real locations `nodes` (coresets), or its starting
    /// point (time-only distillation: every location).
    pub(crate) fn of_windows(method: &str, real: &StData, starts: &[usize], nodes: &[usize]) -> Distilled {
        let (x, y) = real.gather(starts, nodes);
        let mut assignment = vec![usize::MAX; real.nodes];
        nodes.iter().enumerate().for_each(|(c, &i)| assignment[i] = c);
        Distilled {
            method: method.into(),
            x,
            y,
            m: starts.len(),
            k: nodes.len(),
            l: real.l,
            h: real.h,
            f: real.f,
            sizes: vec![1; nodes.len()],
            assignment,
            mean: real.mean,
            std: real.std,
            history: Vec::new(),
            val: None,
            seconds: 0.0,
        }
    }
}

/// One progress line on stderr per outer iteration (and per expert, per validation): runs take
/// minutes to hours, and a stopped run should show how far it went.
pub(crate) fn progress(method: &str, started: std::time::Instant, what: std::fmt::Arguments) {
    eprintln!("{method} [{:.0}s] {what}", started.elapsed().as_secs_f64());
}

/// Seed the dropout masks (and the device): passes that must see the same masks (the matching
/// gradient's two sides and the gradient they differentiate) start from the same seed.
pub(crate) fn same_masks(seed: u64, device: &Device) {
    strata_models::layers::dropout::seed(seed);
    device.seed(seed);
}

/// The whole training set as a "distilled" set (every window, every location, weight 1): the
/// full-data reference trains through the same code.
pub fn full_set(real: &StData) -> Distilled {
    let all: Vec<usize> = (0..real.nodes).collect();
    let (x, y) = real.gather(&real.splits[0], &all);
    Distilled {
        method: "full".into(),
        x,
        y,
        m: real.splits[0].len(),
        k: real.nodes,
        l: real.l,
        h: real.h,
        f: real.f,
        sizes: vec![1; real.nodes],
        assignment: all,
        mean: real.mean,
        std: real.std,
        history: Vec::new(),
        val: None,
        seconds: 0.0,
    }
}

