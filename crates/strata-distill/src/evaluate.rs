//! Scoring a distilled set: a fresh location-encoder MTGNN trained on it by the training engine
//! (in memory, the best validation MAE kept), forecasts at every real location, masked errors.

use anyhow::Result;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use strata_models::MTGNN;
use strata_train::engine::checkpoint::TrainState;
use strata_train::engine::schedule::Rate;
use strata_train::engine::{Batches, Group, Job, OptimizerSpec, Plan, Step, StepLoss, Store, fit};

use crate::config::DistillConfig;
use crate::shared::{Distilled, backbone, constant, idx, partition, st_shape, subset_loss};
use crate::stdata::{Scores, StData, batch_location_means, score, tensor2, tensor3, tensor4};

/// Training on a distilled set as an engine task: each window batch is split into random
/// subsets of the synthetic locations, one optimiser step per subset (weighted MSE, Adam).
struct DistilledTraining<'a> {
    d: &'a Distilled,
    real: &'a StData,
    cfg: &'a DistillConfig,
    epochs: usize,
    check_every: usize,
    seed: u64,
    rng: ChaCha8Rng,
    /// The set's inputs, targets and location-encoder inputs on the training device.
    tensors: Option<(Tensor<4>, Tensor<3>, Tensor<2>)>,
    real_loc: Tensor<2>,
    /// This round's steps: (windows, locations).
    steps: Vec<(Vec<usize>, Vec<usize>)>,
    best: Option<Scores>,
}

impl DistilledTraining<'_> {
    fn subsets(&self) -> usize {
        if self.d.k == 0 { 0 } else { self.cfg.subsets.clamp(1, self.d.k) }
    }
}

impl Job for DistilledTraining<'_> {
    type Model = MTGNN;

    fn seed(&self) -> u64 {
        self.seed
    }

    fn plan(&self) -> Plan {
        let steps = self.d.m.div_ceil(self.cfg.batch.max(1)) * self.subsets();
        Plan {
            rounds: self.epochs,
            steps_per_round: steps,
            total_steps: steps * self.epochs,
            patience: usize::MAX,
            batches: Batches::Drawn,
            unit: "epoch",
            activity: "training on the distilled set",
        }
    }

    fn build(&mut self, device: &Device) -> Result<MTGNN> {
        let d = self.d;
        let model = backbone(self.cfg).init(st_shape(d.l, d.h, d.k, d.f), None, device);
        let x = tensor4(d.x.clone(), [d.m, d.l, d.k, d.f], device);
        let y = tensor3(d.y.clone(), [d.m, d.h, d.k], device);
        let loc = constant(batch_location_means(x.clone()));
        self.tensors = Some((x, y, loc));
        Ok(model)
    }

    fn groups(&self) -> Vec<Group> {
        vec![Group::new(&OptimizerSpec::adam(), Rate::Constant(self.cfg.lr_model), "optimizer.bpk")]
    }

    fn describe(&self, _model: &MTGNN, _device: &Device) -> String {
        String::new()
    }

    fn begin_round(&mut self, _round: usize, _device: &Device) {
        let mut order: Vec<usize> = (0..self.d.m).collect();
        order.shuffle(&mut self.rng);
        self.steps.clear();
        for chunk in order.chunks(self.cfg.batch) {
            for subset in partition(self.d.k, self.cfg.subsets, &mut self.rng) {
                self.steps.push((chunk.to_vec(), subset));
            }
        }
    }

    fn loss(&mut self, model: &MTGNN, step: &Step, device: &Device) -> Result<StepLoss> {
        let (x, y, loc) = self.tensors.as_ref().expect("built");
        let (chunk, subset) = &self.steps[step.index];
        // Data parallelism: each rank takes its share of the step's windows (a mean over
        // windows: it counts with their number; none: the whole chunk with weight 0).
        let world = strata_train::engine::parallel::world();
        let own = world.shard(chunk);
        let (windows, weight) = match (world.size(), own.is_empty()) {
            (1, _) => (chunk.clone(), None),
            (_, true) => (chunk.clone(), Some(0.0)),
            (_, false) => (own.clone(), Some(own.len() as f64)),
        };
        let b = idx(&windows, device);
        let (xb, yb) = (x.clone().select(0, b.clone()), y.clone().select(0, b));
        Ok(StepLoss { weight, ..StepLoss::of(subset_loss(model, xb, yb, loc.clone(), subset, &self.d.sizes)) })
    }

    fn split_grads(&self, model: &MTGNN, grads: Gradients) -> Vec<GradientsParams> {
        vec![GradientsParams::from_grads(grads, model)]
    }

    fn validate(&mut self, model: &MTGNN, round: usize, _device: &Device) -> Option<f64> {
        if !((round + 1) % self.check_every.max(1) == 0 || round + 1 == self.epochs) {
            return None;
        }
        let s = evaluate(model, self.real, &self.real_loc, 1, self.cfg.eval_chunk);
        if self.best.is_none_or(|b| s.mae < b.mae) {
            self.best = Some(s);
        }
        Some(s.mae)
    }

    fn report(&self, _plan: &Plan, _log: &strata_train::engine::checkpoint::EpochLog, _improved: bool) -> Option<String> {
        None
    }
}

/// Train a fresh location-encoder MTGNN on a distilled set (subset by subset, weighted MSE,
/// Adam) for `epochs`, keeping the model with the best validation MAE on the real data
/// (checked every `check_every` epochs). Returns the model and its validation scores.
pub fn train_on(d: &Distilled, real: &StData, cfg: &DistillConfig, epochs: usize, check_every: usize, seed: u64, device: &Device) -> (MTGNN, Scores) {
    let real_loc = tensor2(real.location_means(), [real.nodes, real.l * real.f], &device.clone().without_autodiff());
    let mut job = DistilledTraining { d, real, cfg, epochs, check_every, seed, rng: ChaCha8Rng::seed_from_u64(seed), tensors: None, real_loc, steps: vec![], best: None };
    let mut state = TrainState::default();
    let fitted = fit(&mut job, Store::Memory(&mut state), device, epochs).expect("training on a distilled set has no failing step");
    (fitted.best.expect("at least one epoch"), job.best.expect("validated at the last epoch"))
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

