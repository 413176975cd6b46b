//! STemDist (`../shared/docs/stemdist.md`): cluster the locations, initialise a synthetic set
//! from random windows of the clustered data, and learn its inputs AND targets by gradient
//! matching on a location-encoder MTGNN, one random subset of clusters at a time; the random
//! baseline (random windows x random locations) shares the file format and the evaluation.

use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use strata_models::{MTGNN, MTGNNConfig, Shape};

use crate::cluster::{aggregate, kmeans, subset_weights};
use crate::matching::{SynGrad, distance, hessian_vector, param_grads};
use crate::stdata::{StData, Scores, batch_location_means, score, tensor2, tensor3, tensor4};

/// Distillation settings (defaults: the paper's main setting, 10% x 10%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    /// One of [`METHODS`].
    pub method: String,
    /// Share of training windows kept (srr).
    pub temporal: f64,
    /// Share of locations kept (nrr).
    pub spatial: f64,
    /// Outer iterations (a fresh model each).
    pub outer: usize,
    /// Distillation steps per outer iteration.
    pub inner: usize,
    /// Random cluster subsets per step (K).
    pub subsets: usize,
    /// Real windows per step.
    pub batch: usize,
    pub lr_data: f64,
    pub lr_model: f64,
    /// Model training epochs on the synthetic set after each distillation step.
    pub model_epochs: usize,
    /// Validate the synthetic set every this many outer iterations (keep the best).
    pub eval_every: usize,
    /// Epochs of the evaluation model (validation of S, and `evaluate`).
    pub eval_epochs: usize,
    pub kmeans_iters: usize,
    /// Locations per forward pass when scoring on the real data (0: all at once); for very
    /// large graphs, see [`forecast`].
    pub eval_chunk: usize,
    pub seed: u64,
    pub model: MTGNNConfig,
    /// Trajectory matching (MTT, and CondTSF's trajectory part).
    pub mtt: MttConfig,
    /// CondTSF's value term, on top of `mtt`.
    pub condtsf: CondTsfConfig,
}

/// Trajectory matching settings (defaults: MTT's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MttConfig {
    /// Expert trajectories trained on the real data (paper: 20).
    pub experts: usize,
    /// Epochs per expert, parameters recorded after each (paper: 15).
    pub expert_epochs: usize,
    /// Batches per expert epoch (0: every training window once).
    pub expert_batches: usize,
    /// The experts' SGD learning rate.
    pub expert_lr: f64,
    /// Student steps on the synthetic set per iteration (N).
    pub syn_steps: usize,
    /// Expert epochs the student must cover (M).
    pub expert_span: usize,
    /// Latest expert epoch a student starts from (T+).
    pub max_start_epoch: usize,
    /// Initial (learned) student learning rate, and the learning rate of that rate.
    pub syn_lr: f64,
    pub lr_lr: f64,
    /// Synthetic windows per student step (0: all).
    pub syn_batch: usize,
    /// Expert buffer file (`.npy`, `[experts, expert_epochs + 1, parameters]`): read when it
    /// exists, written after training the experts otherwise.
    pub buffer: Option<std::path::PathBuf>,
}

/// CondTSF's value term (method `condtsf`, on top of MTT): every `every` iterations
/// `y <- (1 - beta) y + beta f(x)` with `f` a DLinear expert trained `epochs` on the real data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CondTsfConfig {
    pub every: usize,
    pub beta: f64,
    pub epochs: usize,
}

impl Default for CondTsfConfig {
    fn default() -> Self {
        CondTsfConfig { every: 3, beta: 0.01, epochs: 10 }
    }
}

impl Default for MttConfig {
    fn default() -> Self {
        MttConfig {
            experts: 20,
            expert_epochs: 15,
            expert_batches: 0,
            expert_lr: 1e-2,
            syn_steps: 20,
            expert_span: 2,
            max_start_epoch: 10,
            syn_lr: 1e-2,
            lr_lr: 1e-5,
            syn_batch: 0,
            buffer: None,
        }
    }
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            method: "stemdist".into(),
            temporal: 0.1,
            spatial: 0.1,
            outer: 100,
            inner: 20,
            subsets: 4,
            batch: 64,
            lr_data: 1e-2,
            lr_model: 1e-3,
            model_epochs: 10,
            eval_every: 5,
            eval_epochs: 100,
            kmeans_iters: 50,
            eval_chunk: 0,
            seed: 2021,
            model: MTGNNConfig { location_encoder: true, ..Default::default() },
            mtt: MttConfig::default(),
            condtsf: CondTsfConfig::default(),
        }
    }
}

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
    Shape { seq_len: l, pred_len: h, channels: k, features: f, steps_per_day: 0, tod: false, dow: false, grid: None, marks: 0 }
}

/// Train a fresh location-encoder MTGNN on a distilled set (subset by subset, weighted MSE,
/// Adam) for `epochs`, keeping the model with the best validation MAE on the real data
/// (checked every `check_every` epochs). Returns the model and its validation scores.
pub fn train_on(d: &Distilled, real: &StData, cfg: &DistillConfig, epochs: usize, check_every: usize, seed: u64, device: &Device) -> (MTGNN, Scores) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    device.seed(seed);
    let mut model = backbone(cfg).init(st_shape(d.l, d.h, d.k, d.f), device);
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let x = tensor4(d.x.clone(), [d.m, d.l, d.k, d.f], device);
    let y = tensor3(d.y.clone(), [d.m, d.h, d.k], device);
    let loc = constant(batch_location_means(x.clone()));
    let real_loc = tensor2(real.location_means(), [real.nodes, real.l * real.f], &device.clone().without_autodiff());
    let mut best: Option<(MTGNN, Scores)> = None;
    for epoch in 0..epochs {
        let mut order: Vec<usize> = (0..d.m).collect();
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch) {
            let b = idx(chunk, device);
            let (xb, yb) = (x.clone().select(0, b.clone()), y.clone().select(0, b));
            for subset in partition(d.k, cfg.subsets, &mut rng) {
                let loss = subset_loss(&model, xb.clone(), yb.clone(), loc.clone(), &subset, &d.sizes);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(cfg.lr_model, model, grads);
            }
        }
        if (epoch + 1) % check_every.max(1) == 0 || epoch + 1 == epochs {
            let s = evaluate(&model.valid(), real, &real_loc, 1, cfg.eval_chunk);
            if best.as_ref().is_none_or(|(_, b)| s.mae < b.mae) {
                best = Some((model.clone(), s));
            }
        }
    }
    best.expect("at least one epoch")
}

/// Forecasts of every window of split `split` (1 validation, 2 test) at every real location,
/// original scale, `[windows, h, n]` flat. With `chunk > 0` the locations are forecast in
/// groups of at most `chunk` (a fixed random partition; each group's graph links its own
/// members), which bounds the `n x n` graph and attention of very large location sets.
pub fn forecast(model: &MTGNN, real: &StData, loc: &Tensor<2>, split: usize, chunk: usize) -> Vec<f32> {
    let device = loc.device();
    let (n, h) = (real.nodes, real.h);
    let groups: Vec<Vec<usize>> = if chunk == 0 || chunk >= n {
        vec![(0..n).collect()]
    } else {
        partition(n, n.div_ceil(chunk), &mut ChaCha8Rng::seed_from_u64(0))
    };
    let mut pred = Vec::new();
    for starts in real.splits[split].chunks(64) {
        let mut out = vec![0f32; starts.len() * h * n];
        for g in &groups {
            let (x, _) = real.gather(starts, g);
            let gl = if groups.len() == 1 { loc.clone() } else { loc.clone().select(0, idx(g, &device)) };
            let p = model.forward_located(tensor4(x, [starts.len(), real.l, g.len(), real.f], &device), gl);
            let p: Vec<f32> = p.into_data().convert::<f32>().try_into_vec().expect("f32");
            for (j, v) in p.iter().enumerate() {
                let (bt, c) = (j / g.len(), j % g.len());
                out[bt * n + g[c]] = v * real.std + real.mean;
            }
        }
        pred.extend(out);
    }
    pred
}

/// Forecast every window of split `split` at every real location (in groups of `chunk`, see
/// [`forecast`]) and score on the original scale.
pub fn evaluate(model: &MTGNN, real: &StData, loc: &Tensor<2>, split: usize, chunk: usize) -> Scores {
    score_forecast(real, split, &forecast(model, real, loc, split, chunk))
}

/// Score `pred` (laid out as [`forecast`] returns it) against split `split`, original scale.
pub fn score_forecast(real: &StData, split: usize, pred: &[f32]) -> Scores {
    let all: Vec<usize> = (0..real.nodes).collect();
    let truth: Vec<f32> = real.splits[split].chunks(64).flat_map(|c| real.gather(c, &all).1).map(|v| v * real.std + real.mean).collect();
    score(pred, &truth)
}

/// Every method `strata distill --method` takes.
pub const METHODS: [&str; 8] = ["stemdist", "random", "kcenter", "herding", "dc", "dm", "mtt", "condtsf"];

impl DistillConfig {
    /// Windows kept by a method that compresses time only (k-center, herding, DC, DM, MTT,
    /// CondTSF keep every location): the total ratio `temporal x spatial` of the windows.
    pub fn time_only_windows(&self, real_windows: usize) -> usize {
        ((self.temporal * self.spatial * real_windows as f64).round() as usize).max(1)
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if !METHODS.contains(&self.method.as_str()) {
            anyhow::bail!("distill.method = \"{}\": unknown; one of {}", self.method, METHODS.join(", "));
        }
        for (key, v) in [("distill.temporal", self.temporal), ("distill.spatial", self.spatial)] {
            if !(v > 0.0 && v <= 1.0) {
                anyhow::bail!("{key} = {v}: a share in (0, 1]");
            }
        }
        if self.mtt.expert_span == 0 || self.mtt.experts == 0 || self.mtt.expert_epochs < self.mtt.expert_span {
            anyhow::bail!("distill.mtt: need experts >= 1 and expert_epochs >= expert_span >= 1");
        }
        Ok(())
    }
}

/// Distil `real` (its training windows) with `cfg.method`.
pub fn distill(real: &StData, cfg: &DistillConfig, device: &Device) -> anyhow::Result<Distilled> {
    cfg.check()?;
    let started = Instant::now();
    let mut out = match cfg.method.as_str() {
        "random" | "kcenter" | "herding" => crate::coreset::select(real, cfg),
        "stemdist" => gradient_matching(real, cfg, true, device),
        "dc" => gradient_matching(real, cfg, false, device),
        "dm" => crate::dm::distribution_matching(real, cfg, device),
        "mtt" | "condtsf" => crate::mtt::trajectory_matching(real, cfg, device)?,
        _ => unreachable!("checked"),
    };
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
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

/// Validate a candidate set every `eval_every` outer iterations (a fresh model trained on it,
/// scored on the real validation split) and keep the best.
pub(crate) fn keep_best(best: &mut Option<Distilled>, mut cand: Distilled, real: &StData, cfg: &DistillConfig, it: usize, device: &Device) {
    let (_, val) = train_on(&cand, real, cfg, cfg.eval_epochs.min(50), 10, cfg.seed.wrapping_add(1000 + it as u64), device);
    cand.val = Some(val);
    let better = best.as_ref().is_none_or(|b| b.val.is_none_or(|bv| val.mae < bv.mae));
    eprintln!("  candidate after outer {}: validation MAE {:.4}{}", it + 1, val.mae, if better { " (kept)" } else { "" });
    if better {
        *best = Some(cand);
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
    strata_models::dropout::seed(seed);
    device.seed(seed);
}

/// Gradient matching: STemDist (`clustered`: k-means locations, K random subsets per step)
/// or DC (every real location, one subset, time-only ratio).
fn gradient_matching(real: &StData, cfg: &DistillConfig, clustered: bool, device: &Device) -> Distilled {
    let started = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (n, f, l, h) = (real.nodes, real.f, real.l, real.h);
    let (m, k) = match clustered {
        true => (((cfg.temporal * real.splits[0].len() as f64).round() as usize).max(1), ((cfg.spatial * n as f64).round() as usize).clamp(1, n)),
        false => (cfg.time_only_windows(real.splits[0].len()), n),
    };
    let starts = random_starts(real, m, &mut rng);
    let subsets = if clustered { cfg.subsets } else { 1 };
    // 1. Location clustering on each location's normalised training rows (the flattened
    //    stride-1 windows repeat each row up to l times: the same geometry, l times smaller).
    let (sizes, assignment, clustered_data) = if clustered {
        let rows = real.train_rows();
        // Features equal at every location (time of day, day of week) move no distance: left
        // out, the clustering is the same and cheaper.
        let varying: Vec<usize> = (0..f).filter(|&j| (0..rows).any(|r| (1..n).any(|i| real.x[(r * n + i) * f + j] != real.x[r * n * f + j]))).collect();
        let fv = varying.len().max(1);
        let feats: Vec<f32> = (0..n).flat_map(|i| (0..rows).flat_map(move |r| (0..fv).map(move |j| (r, i, j)))).map(|(r, i, j)| varying.get(j).map_or(0.0, |&j| real.x[(r * n + i) * f + j])).collect();
        let clusters = kmeans(&feats, rows * fv, k, cfg.kmeans_iters, cfg.seed);
        progress(&cfg.method, started, format_args!("{n} locations clustered into {k}"));
        let data = StData { x: aggregate(&real.x, n, f, &clusters), y: aggregate(&real.y, n, 1, &clusters), nodes: k, rows: real.rows, f, l, h, splits: real.splits.clone(), mean: real.mean, std: real.std };
        (clusters.sizes, clusters.assignment, Some(data))
    } else {
        (vec![1; n], (0..n).collect(), None)
    };
    let data = clustered_data.as_ref().unwrap_or(real);
    // 2. The synthetic set starts as random windows of the (clustered) data.
    let all: Vec<usize> = (0..k).collect();
    let (sx, sy) = data.gather(&starts, &all);
    let mut syn = SynSet { x: Param::from_tensor(tensor4(sx, [m, l, k, f], device)), y: Param::from_tensor(tensor3(sy, [m, h, k], device)) };
    let mut syn_optim: ModuleOptimizer = AdamConfig::new().init();
    let real_loc = tensor2(data.location_means(), [k, l * f], device);
    let shape = st_shape(l, h, k, f);
    let mut history = Vec::new();
    let snapshot = |syn: &SynSet, history: &[(usize, f64)]| Distilled {
        method: cfg.method.clone(),
        x: syn.x.val().into_data().convert::<f32>().try_into_vec().expect("f32"),
        y: syn.y.val().into_data().convert::<f32>().try_into_vec().expect("f32"),
        m,
        k,
        l,
        h,
        f,
        sizes: sizes.clone(),
        assignment: assignment.clone(),
        mean: real.mean,
        std: real.std,
        history: history.to_vec(),
        val: None,
        seconds: 0.0,
    };
    let mut best: Option<Distilled> = None;
    for it in 0..cfg.outer {
        device.seed(cfg.seed.wrapping_add(1 + it as u64));
        let mut model = backbone(cfg).init(shape, device);
        let mut model_optim: ModuleOptimizer = AdamConfig::new().init();
        let mut dist_sum = 0.0;
        let mut dist_n = 0;
        for step in 0..cfg.inner {
            let batch: Vec<usize> = (0..cfg.batch.min(data.splits[0].len())).map(|_| data.splits[0][rng.random_range(0..data.splits[0].len())]).collect();
            let (xr, yr) = data.gather(&batch, &all);
            let xr = tensor4(xr, [batch.len(), l, k, f], device);
            let yr = tensor3(yr, [batch.len(), h, k], device);
            for subset in partition(k, subsets, &mut rng) {
                let g_real = param_grads(&model, &subset_loss(&model, xr.clone(), yr.clone(), real_loc.clone(), &subset, &sizes).backward());
                let (sxv, syv) = (syn.x.val().detach(), syn.y.val().detach());
                // The synthetic gradient and both sides of its derivative see the same masks.
                let masks: u64 = rng.random();
                same_masks(masks, device);
                let g_syn = param_grads(&model, &subset_loss(&model, sxv.clone(), syv.clone(), batch_location_means(sxv.clone()), &subset, &sizes).backward());
                let (d, v) = distance(&g_real, &g_syn);
                dist_sum += d;
                dist_n += 1;
                // Fresh leaves for each side (a leaf's tape is consumed by its backward).
                let sx_data = sxv.to_data();
                let sy_data = syv.to_data();
                let hv = hessian_vector(&model, &v, |mm| {
                    same_masks(masks, device);
                    let x = Tensor::<4>::from_data(sx_data.clone(), device).require_grad();
                    let y = Tensor::<3>::from_data(sy_data.clone(), device).require_grad();
                    let loss = subset_loss(mm, x.clone(), y.clone(), batch_location_means(x.clone()), &subset, &sizes);
                    (loss, vec![SynGrad::R4(x), SynGrad::R3(y)])
                });
                let mut grads = GradientsParams::new();
                grads.register(syn.x.id, tensor4(hv[0].clone(), [m, l, k, f], device));
                grads.register(syn.y.id, tensor3(hv[1].clone(), [m, h, k], device));
                syn = syn_optim.step(cfg.lr_data, syn, grads);
            }
            if step + 1 == cfg.inner {
                break;
            }
            // Train the model on the (detached) synthetic set, subset by subset.
            let (sx, sy) = (syn.x.val().detach(), syn.y.val().detach());
            let sloc = constant(batch_location_means(sx.clone()));
            for _ in 0..cfg.model_epochs {
                for subset in partition(k, subsets, &mut rng) {
                    let loss = subset_loss(&model, sx.clone(), sy.clone(), sloc.clone(), &subset, &sizes);
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = model_optim.step(cfg.lr_model, model, grads);
                }
            }
        }
        history.push((it + 1, dist_sum / dist_n.max(1) as f64));
        progress(&cfg.method, started, format_args!("outer {}/{}: mean matching distance {:.4}", it + 1, cfg.outer, history[it].1));
        if (it + 1) % cfg.eval_every.max(1) == 0 || it + 1 == cfg.outer {
            keep_best(&mut best, snapshot(&syn, &history), real, cfg, it, device);
        }
    }
    let mut out = best.unwrap_or_else(|| snapshot(&syn, &history));
    out.history = history;
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::{small_data, tiny};

    #[test]
    fn stemdist_compresses_time_and_space_and_keeps_the_best_validated_set() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let d = distill(&real, &tiny(), &device).unwrap();
        let m = (0.2 * real.splits[0].len() as f64).round() as usize;
        assert_eq!((d.m, d.k, d.l, d.h, d.f), (m, 6, 12, 12, 3));
        assert_eq!(d.x.len(), m * 12 * 6 * 3);
        assert_eq!(d.y.len(), m * 12 * 6);
        assert_eq!(d.sizes.iter().sum::<usize>(), 24);
        assert!(d.assignment.iter().all(|&c| c < 6));
        assert_eq!(d.history.len(), 2);
        assert!(d.history.iter().all(|(_, dist)| dist.is_finite() && *dist > 0.0));
        assert!(d.val.is_some_and(|v| v.mae.is_finite() && v.points > 0));
        // A model trained on the distilled set forecasts every real location.
        let (model, val) = train_on(&d, &real, &tiny(), 2, 1, 5, &device);
        let loc = tensor2(real.location_means(), [real.nodes, 12 * 3], &Device::flex());
        let test = evaluate(&model.valid(), &real, &loc, 2, 0);
        assert_eq!(test.points > 0, true);
        assert!(val.rrse.is_finite() && test.rrse.is_finite());
    }

    #[test]
    fn random_baseline_keeps_real_windows_of_random_locations() {
        let real = small_data();
        let d = distill(&real, &DistillConfig { method: "random".into(), ..tiny() }, &Device::flex().autodiff()).unwrap();
        assert_eq!(d.k, 6);
        let kept: Vec<usize> = (0..24).filter(|&i| d.assignment[i] != usize::MAX).collect();
        assert_eq!(kept.len(), 6);
        // Each synthetic window is a real window of those locations: its first input row equals
        // some training row of the real series.
        let row0: Vec<f32> = (0..6).flat_map(|c| d.x[c * 3..c * 3 + 3].to_vec()).collect();
        let found = (0..real.train_rows()).any(|r| kept.iter().enumerate().all(|(c, &i)| real.x[(r * 24 + i) * 3..(r * 24 + i) * 3 + 3] == row0[c * 3..c * 3 + 3]));
        assert!(found);
        let full = full_set(&real);
        assert_eq!((full.m, full.k), (real.splits[0].len(), 24));
    }

    /// Every method runs through one command on tiny data: two-dimensional methods keep
    /// `temporal` of the windows at `spatial` of the locations, time-only ones `temporal x
    /// spatial` of the windows at every location; learned sets differ from their start.
    #[test]
    fn every_method_distils_to_its_shape() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let windows = real.splits[0].len();
        for method in METHODS {
            let cfg = DistillConfig { method: method.into(), outer: 1, inner: 2, ..tiny() };
            let d = distill(&real, &cfg, &device).unwrap_or_else(|e| panic!("{method}: {e}"));
            let (m, k) = match method {
                "stemdist" | "random" => (((0.2 * windows as f64).round()) as usize, 6),
                _ => (((0.05 * windows as f64).round()) as usize, 24),
            };
            assert_eq!((d.m, d.k), (m, k), "{method}");
            assert_eq!((d.x.len(), d.y.len()), (m * 12 * k * 3, m * 12 * k), "{method}");
            assert!(d.x.iter().chain(&d.y).all(|v| v.is_finite()), "{method}");
            assert_eq!(d.sizes.iter().sum::<usize>(), if method == "random" { 6 } else { 24 }, "{method}");
            if ["stemdist", "dc", "dm", "mtt", "condtsf"].contains(&method) {
                assert_eq!(d.history.len(), 1, "{method}");
                assert!(d.history[0].1.is_finite() && d.val.is_some(), "{method}");
            }
        }
        let bad = DistillConfig { method: "frepo".into(), ..tiny() };
        let err = distill(&real, &bad, &device).unwrap_err().to_string();
        assert!(err.contains("frepo") && err.contains("kcenter"), "{err}");
    }

    /// The same dropout seed gives the same masks (the matching gradient's two sides rely on
    /// it), and another seed other masks.
    #[test]
    fn same_masks_repeat_dropout() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let model = backbone(&tiny()).init(st_shape(12, 12, 24, 3), &device);
        let all: Vec<usize> = (0..24).collect();
        let (x, _) = real.gather(&real.splits[0][..4], &all);
        let x = tensor4(x, [4, 12, 24, 3], &device);
        let loc = batch_location_means(x.clone());
        let run = |seed| {
            same_masks(seed, &device);
            model.forward_located(x.clone(), loc.clone()).into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
        };
        assert!(run(5) == run(5), "same seed, other masks");
        assert!(run(5) != run(6), "other seed, same masks");
    }

    /// Scoring in location groups: a group as large as the graph is the plain forecast; smaller
    /// groups still forecast every location (each once, finite), the same way every time.
    #[test]
    fn chunked_forecasts_cover_every_location() {
        let real = small_data();
        let device = Device::flex();
        device.seed(4);
        let model = backbone(&tiny()).init(st_shape(12, 12, 24, 3), &device);
        let loc = tensor2(real.location_means(), [24, 36], &device);
        let whole = forecast(&model, &real, &loc, 2, 0);
        assert_eq!(whole.len(), real.splits[2].len() * 12 * 24);
        assert_eq!(forecast(&model, &real, &loc, 2, 24), whole);
        let parts = forecast(&model, &real, &loc, 2, 7);
        assert_eq!(parts.len(), whole.len());
        assert!(parts.iter().all(|v| v.is_finite() && *v != 0.0));
        assert_ne!(parts, whole, "groups of 7 see other graphs");
        assert_eq!(forecast(&model, &real, &loc, 2, 7), parts);
    }
}
