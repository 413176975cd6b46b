//! `strata pretrain`: train a MOIRAI-architecture model from scratch on a corpus of the datasets
//! in the data root, as uni2ts pretrains (`MoiraiPretrain`): each training sample is one
//! dataset's multivariate series with a random subset of its variates (`SampleDimension`), a
//! random patch size allowed for its frequency (`GetPatchSize`, uni2ts's default ranges), a
//! random crop of whole patches (`PatchCrop`), random variate ids, and the last 15-50% of its
//! patches to predict (`MaskedPrediction`); samples are packed into rows of `max_length` tokens
//! and the loss is the masked-prediction NLL of the mixture (`PackedNLLLoss`). Only the training
//! rows of every corpus dataset are used; `leave_out` keeps datasets out entirely so that they
//! can be used for zero-shot tests. The model is exported as `config.json` + `model.safetensors`
//! in uni2ts's layout (`<run>/model`), which `strata zero-shot` loads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::tensor::Device;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use strata_data::prepare::{DataConfig, prepare};
use strata_data::{data_root, spatial};
use strata_models::foundation::moirai::Packed;
use strata_models::{Moirai, MoiraiConfig};

pub use super::pretrain_config::{CorpusConfig, PretrainConfig, PretrainSettings};
use crate::config::Optimizer;
use crate::device::{device_name, training_device};
use crate::engine::checkpoint::{EpochLog, load_module, write_atomic};
use crate::engine::record::{git_revision, write_json};
use crate::engine::schedule::Rate;
use crate::engine::{Batches, Group, Job, OptimizerSpec, Plan, Run, Step, StepLoss, Store, fit};

/// One corpus series: `[t, n]` row-major values of `n` variates.
#[derive(Debug, Clone)]
pub struct CorpusSeries {
    pub freq: String,
    pub t: usize,
    pub n: usize,
    pub values: Vec<f32>,
}

/// Where a corpus dataset came from (recorded in the results).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorpusFile {
    pub dataset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub freq: String,
    pub variates: usize,
    pub train_rows: usize,
    pub val_rows: usize,
}

/// The training and validation rows of each corpus dataset.
pub fn load_corpus(names: &[String]) -> Result<(Vec<CorpusSeries>, Vec<CorpusSeries>, Vec<CorpusFile>)> {
    let (mut train, mut val, mut files) = (vec![], vec![], vec![]);
    for name in names {
        let (path, freq, values, t, n, train_end, val_end) = if let Some(spec) = spatial::spatial_lookup(name) {
            let path = data_root().join(spec.signal);
            let s = spatial::read_signal(&path, "data")?;
            let values: Vec<f32> = (0..s.t * s.n).map(|i| s.values[i * s.c]).collect();
            let [a, b, _] = spatial::split_windows(s.t, spec.split);
            (path, spec.freq.to_string(), values, s.t, s.n, a, a + b)
        } else {
            let p = prepare(&DataConfig { dataset: name.clone(), seq_len: 1, pred_len: 1, scale: false, ..DataConfig::default() })?;
            let series = &p.train.series;
            (p.path.clone(), p.freq.clone(), series.data.to_vec(), series.rows, series.channels, p.borders.train.1, p.borders.val.1)
        };
        let rows = |a: usize, b: usize| CorpusSeries { freq: freq.clone(), t: b - a, n, values: values[a * n..b * n].to_vec() };
        train.push(rows(0, train_end));
        val.push(rows(train_end, val_end.min(t)));
        files.push(CorpusFile { dataset: name.clone(), sha256: strata_data::sha256_file(&path)?, path, freq: freq.clone(), variates: n, train_rows: train_end, val_rows: val_end.min(t) - train_end });
    }
    Ok((train, val, files))
}

/// uni2ts's `DefaultPatchSizeConstraints`: the patch sizes allowed for a frequency.
pub fn patch_range(freq: &str) -> (usize, usize) {
    let unit = freq.trim_start_matches(|c: char| c.is_ascii_digit()).to_ascii_lowercase();
    match unit.as_str() {
        "s" => (64, 128),
        "min" | "t" => (32, 128),
        "h" => (32, 64),
        "d" | "b" | "w" => (16, 32),
        "m" | "ms" => (8, 32),
        _ => (1, 8), // quarterly, yearly
    }
}

/// One training sample, before packing: `vars x patches` tokens of `patch` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub patch: usize,
    pub vars: usize,
    pub patches: usize,
    /// `[vars, patches * patch]` values.
    pub values: Vec<f32>,
    pub variate_ids: Vec<i64>,
    /// Trailing patches to predict.
    pub predict: usize,
}

/// Draw one sample from `s` (uni2ts's SampleDimension, GetPatchSize, PatchCrop, AddVariateIndex
/// and MaskedPrediction), or `None` where the series is too short for any allowed patch size.
pub fn draw_sample(s: &CorpusSeries, sizes: &[usize], t: &PretrainSettings, rng: &mut impl Rng) -> Option<Sample> {
    let (lo, hi) = patch_range(&s.freq);
    let candidates: Vec<usize> = sizes.iter().copied().filter(|&p| p >= lo && p <= hi && p <= s.t / t.min_patches).collect();
    let &patch = candidates.choose(rng)?;
    // SampleDimension: a uniform number of variates in a random order, capped so that every
    // variate still gets `min_patches` patches in a row.
    let cap = s.n.min(t.max_dim).min(t.max_length / t.min_patches).max(1);
    let vars = rng.random_range(1..=cap);
    let mut order: Vec<usize> = (0..s.n).collect();
    order.shuffle(rng);
    order.truncate(vars);
    // PatchCrop: offset by [0, t % patch], then a random run of whole patches.
    let offset = rng.random_range(0..=s.t % patch);
    let total = (s.t - offset) / patch;
    let most = (t.max_length / vars).min(total);
    if most < t.min_patches {
        return None;
    }
    let patches = rng.random_range(t.min_patches..=most);
    let first = offset + rng.random_range(0..=total - patches) * patch;
    let len = patches * patch;
    let mut values = Vec::with_capacity(vars * len);
    for &v in &order {
        values.extend((first..first + len).map(|r| s.values[r * s.n + v]));
    }
    // AddVariateIndex(randomize): distinct random ids out of max_dim.
    let mut ids: Vec<i64> = (0..t.max_dim.max(vars) as i64).collect();
    ids.shuffle(rng);
    ids.truncate(vars);
    let ratio = rng.random_range(t.min_mask_ratio..=t.max_mask_ratio);
    let predict = ((patches as f64 * ratio).round() as usize).clamp(1, patches - 1);
    Some(Sample { patch, vars, patches, values, variate_ids: ids, predict })
}

/// Pack samples into `rows` rows of `length` tokens, first fit; a sample that fits in no row
/// is left out. Tokens of a sample are variate-major; time ids count its patches; padding has
/// sample id 0.
pub fn pack(samples: &[Sample], rows: usize, length: usize, max_patch: usize) -> Packed {
    let tokens = rows * length;
    let mut p = Packed {
        batch: rows,
        tokens: length,
        max_patch,
        target: vec![0.0; tokens * max_patch],
        observed: vec![false; tokens * max_patch],
        sample_id: vec![0; tokens],
        time_id: vec![0; tokens],
        variate_id: vec![0; tokens],
        prediction: vec![false; tokens],
        patch_size: vec![max_patch; tokens],
    };
    let mut used = vec![0usize; rows];
    let mut next_id = vec![1i64; rows];
    for s in samples {
        let need = s.vars * s.patches;
        let Some(r) = (0..rows).find(|&r| used[r] + need <= length) else { continue };
        for v in 0..s.vars {
            for k in 0..s.patches {
                let tok = r * length + used[r] + v * s.patches + k;
                (p.sample_id[tok], p.time_id[tok], p.variate_id[tok]) = (next_id[r], k as i64, s.variate_ids[v]);
                p.prediction[tok] = k >= s.patches - s.predict;
                p.patch_size[tok] = s.patch;
                for q in 0..s.patch {
                    let x = s.values[v * s.patches * s.patch + k * s.patch + q];
                    p.target[tok * max_patch + q] = if x.is_finite() { x } else { 0.0 };
                    p.observed[tok * max_patch + q] = x.is_finite();
                }
            }
        }
        used[r] += need;
        next_id[r] += 1;
    }
    p
}

/// One packed batch: datasets drawn with probability proportional to the square root of their
/// size (values), samples drawn until three in a row fit nowhere.
pub fn draw_batch(corpus: &[CorpusSeries], sizes: &[usize], t: &PretrainSettings, seed: u64) -> Packed {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights: Vec<f64> = corpus.iter().map(|s| ((s.t * s.n) as f64).sqrt()).collect();
    let total: f64 = weights.iter().sum();
    let (mut samples, mut room, mut misses) = (vec![], t.batch_size * t.max_length, 0);
    while misses < 3 && room > 0 {
        let mut u = rng.random_range(0.0..total);
        let k = weights.iter().position(|w| {
            u -= w;
            u < 0.0
        });
        let Some(s) = draw_sample(&corpus[k.unwrap_or(corpus.len() - 1)], sizes, t, &mut rng) else {
            misses += 1;
            continue;
        };
        let need = s.vars * s.patches;
        if need > room {
            misses += 1;
            continue;
        }
        room -= need;
        samples.push(s);
    }
    pack(&samples, t.batch_size, t.max_length, *sizes.iter().max().expect("patch sizes"))
}

/// Linear warm-up to `lr`, then cosine decay to 0 at `steps` (the engine's
/// [`Rate::WarmupCosine`]).
pub fn pretrain_lr(t: &PretrainSettings, step: usize) -> f64 {
    Rate::WarmupCosine { lr: t.lr, warmup: t.warmup_steps, steps: t.steps }.at(0, step, t.steps)
}

/// What `strata pretrain` records in `<run>/results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainResults {
    pub config: PretrainConfig,
    pub corpus: Vec<CorpusFile>,
    pub parameters: usize,
    pub steps: usize,
    pub best_val_nll: Option<f64>,
    pub best_step: Option<usize>,
    /// One line per round of `checkpoint_every` steps (`epoch` numbers the rounds).
    pub history: Vec<EpochLog>,
    /// The exported checkpoint (the best by validation NLL): `config.json` + `model.safetensors`.
    pub model_dir: PathBuf,
    pub device: String,
    pub git_revision: String,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    /// The processes it trained on.
    #[serde(default)]
    pub parallel: Option<crate::engine::record::ParallelRecord>,
}

/// MOIRAI pretraining as an engine task: a round is `checkpoint_every` steps.
struct Pretraining<'a> {
    cfg: &'a PretrainConfig,
    names: &'a [String],
    train: &'a [CorpusSeries],
    val_set: Vec<Packed>,
}

impl Job for Pretraining<'_> {
    type Model = Moirai;

    fn seed(&self) -> u64 {
        self.cfg.train.seed
    }

    fn plan(&self) -> Plan {
        let t = &self.cfg.train;
        Plan {
            rounds: t.steps.div_ceil(t.checkpoint_every),
            steps_per_round: t.checkpoint_every,
            total_steps: t.steps,
            patience: usize::MAX,
            batches: Batches::Drawn,
            unit: "round",
            activity: "pretraining",
        }
    }

    fn build(&mut self, device: &Device) -> Result<Moirai> {
        Ok(self.cfg.model.init(device))
    }

    fn groups(&self) -> Vec<Group> {
        let t = &self.cfg.train;
        let spec = OptimizerSpec {
            kind: Optimizer::Adamw,
            betas: Some((t.beta1 as f32, t.beta2 as f32)),
            epsilon: Some(1e-8),
            weight_decay: Some(t.weight_decay as f32),
            grad_clip: (t.grad_clip > 0.0).then_some(t.grad_clip as f32),
        };
        vec![Group::new(&spec, Rate::WarmupCosine { lr: t.lr, warmup: t.warmup_steps, steps: t.steps }, "optimizer.bpk")]
    }

    fn describe(&self, model: &Moirai, device: &Device) -> String {
        let (cfg, t) = (self.cfg, &self.cfg.train);
        format!(
            "pretraining MOIRAI (d_model {}, {} layers, patch sizes {:?}): {} parameters on {} ({}), {} steps of {} x {} tokens, {}",
            cfg.model.d_model,
            cfg.model.num_layers,
            cfg.model.patch_sizes,
            model.num_params(),
            self.names.join(", "),
            if cfg.corpus.leave_out.is_empty() { "nothing left out".to_string() } else { format!("left out: {}", cfg.corpus.leave_out.join(", ")) },
            t.steps,
            t.batch_size,
            t.max_length,
            device_name(device)
        )
    }

    fn loss(&mut self, model: &Moirai, step: &Step, device: &Device) -> Result<StepLoss> {
        let t = &self.cfg.train;
        let batch = draw_batch(self.train, &self.cfg.model.patch_sizes, t, t.seed.wrapping_mul(1_000_003).wrapping_add(step.global as u64));
        let world = crate::engine::parallel::world();
        if world.size() == 1 {
            return Ok(StepLoss::of(model.masked_nll(&batch, device)));
        }
        // Data parallelism: every rank draws the same packed batch and takes its rows. The loss
        // is a mean over (row, sample, variate) groups, so a rank counts with its groups; a rank
        // without rows runs the whole batch with weight 0.
        let rows = world.shard(&(0..batch.batch).collect::<Vec<_>>());
        let (own, weight) = match rows.is_empty() {
            true => (batch, 0.0),
            false => {
                let own = batch.rows(&rows);
                let groups = strata_models::foundation::moirai::prediction_counts(&own).len() as f64;
                (own, groups)
            }
        };
        Ok(StepLoss { weight: Some(weight), ..StepLoss::of(model.masked_nll(&own, device)) })
    }

    fn validate(&mut self, model: &Moirai, _round: usize, device: &Device) -> Option<f64> {
        Some(val_nll(model, &self.val_set, device))
    }

    fn divergence_hint(&self) -> &'static str {
        "lower train.lr"
    }

    fn report(&self, _plan: &Plan, log: &EpochLog, _improved: bool) -> Option<String> {
        let step = ((log.epoch - 1) * self.cfg.train.checkpoint_every + log.steps).min(self.cfg.train.steps);
        Some(format!("step {step:>6}/{} train nll {:.4} val nll {:.4} lr {:.2e} {:.2}s/step", self.cfg.train.steps, log.train_loss, log.val_loss, log.lr, log.seconds / log.steps.max(1) as f64))
    }
}

fn val_nll(model: &Moirai, val: &[Packed], device: &Device) -> f64 {
    let total: f64 = val.iter().map(|p| model.masked_nll(p, device).into_scalar::<f32>() as f64).sum();
    total / val.len().max(1) as f64
}

/// Pretrain (or resume) the run `cfg` in `run_dir`.
pub fn pretrain(cfg: &PretrainConfig, run_dir: &Path, fresh: bool) -> Result<PretrainResults> {
    let wall = Instant::now();
    let names = cfg.corpus_names();
    if names.is_empty() {
        bail!("key `corpus`: every dataset is left out");
    }
    let (train, val, files) = load_corpus(&names)?;
    let mut run = Run::open(run_dir, fresh, cfg, &cfg.to_toml(), |text| PretrainConfig::from_table(toml::from_str(text)?))?;
    let t = &cfg.train;
    let val_set: Vec<Packed> = (0..t.val_batches).map(|k| draw_batch(&val, &cfg.model.patch_sizes, t, t.seed ^ 0x5eed_0000 ^ k as u64)).collect();
    let device = training_device();
    fit(&mut Pretraining { cfg, names: &names, train: &train, val_set }, Store::Folder(&mut run), &device, usize::MAX)?;
    run.finish()?;
    let eval_device = device.clone().without_autodiff();
    let best = load_module(cfg.model.init(&eval_device), &run.paths.best)?;
    let model_dir = run_dir.join("model");
    let root = crate::engine::parallel::world().is_root();
    if root {
        export(&best, &cfg.model, &model_dir)?;
    }
    let state = &run.state;
    let results = PretrainResults {
        config: cfg.clone(),
        corpus: files,
        parameters: best.num_params(),
        steps: state.global_step,
        best_val_nll: state.best_val,
        best_step: state.best_epoch.map(|e| (e * t.checkpoint_every).min(t.steps)),
        history: state.history.clone(),
        model_dir,
        device: device_name(&device),
        git_revision: git_revision(),
        train_seconds: state.train_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
        parallel: Some(crate::engine::record::ParallelRecord::now()),
    };
    if root {
        write_json(&run.paths.results_json, &results)?;
    }
    Ok(results)
}

/// Write `model` as a uni2ts checkpoint folder: `config.json` + `model.safetensors`.
pub fn export(model: &Moirai, cfg: &MoiraiConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join("config.json"), serde_json::to_string_pretty(cfg)?.as_bytes())?;
    strata_models::foundation::weights::save_safetensors(model, &dir.join("model.safetensors")).map_err(|e| anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(t: usize, n: usize, freq: &str) -> CorpusSeries {
        CorpusSeries { freq: freq.into(), t, n, values: (0..t * n).map(|i| i as f32).collect() }
    }

    #[test]
    fn patch_sizes_follow_uni2ts_frequency_ranges() {
        assert_eq!(patch_range("h"), (32, 64));
        assert_eq!(patch_range("15min"), (32, 128));
        assert_eq!(patch_range("5min"), (32, 128));
        assert_eq!(patch_range("d"), (16, 32));
        assert_eq!(patch_range("w"), (16, 32));
        assert_eq!(patch_range("10s"), (64, 128));
    }

    #[test]
    fn samples_are_crops_of_whole_patches_with_a_masked_tail() {
        let s = series(1000, 5, "h");
        let t = PretrainSettings { max_length: 64, ..Default::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen_sizes = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let x = draw_sample(&s, &[8, 16, 32, 64, 128], &t, &mut rng).unwrap();
            seen_sizes.insert(x.patch);
            assert!(x.vars >= 1 && x.vars <= 5 && x.patches >= 2 && x.vars * x.patches <= 64, "{x:?}");
            // 15..50% of the patches, rounded, at least one and never all.
            let lo = ((x.patches as f64 * 0.15).round() as usize).clamp(1, x.patches - 1);
            let hi = ((x.patches as f64 * 0.5).round() as usize).clamp(1, x.patches - 1);
            assert!(x.predict >= lo && x.predict <= hi, "{x:?}");
            // Each variate is a contiguous run of one column: value = row * n + column.
            let len = x.patches * x.patch;
            for v in 0..x.vars {
                let run = &x.values[v * len..(v + 1) * len];
                assert!(run.windows(2).all(|w| w[1] - w[0] == 5.0));
            }
            let mut ids = x.variate_ids.clone();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), x.vars);
        }
        // Hourly data: patch sizes 32 and 64 only.
        assert_eq!(seen_sizes.into_iter().collect::<Vec<_>>(), [32, 64]);
        // Too short for two patches of 32: no sample.
        assert!(draw_sample(&series(63, 1, "h"), &[8, 16, 32, 64, 128], &t, &mut rng).is_none());
    }

    #[test]
    fn packing_by_hand() {
        // Sample A: 2 variates x 3 patches of 2 (last patch predicted); sample B: 1 x 2 patches
        // of 4 (last predicted). Rows of 8 tokens: A takes row 0 tokens 0..6, B does not fit
        // there (2 left, needs 2: it does) -> tokens 6..8; C (1 x 3) goes to row 1.
        let a = Sample { patch: 2, vars: 2, patches: 3, values: (0..12).map(|v| v as f32).collect(), variate_ids: vec![7, 3], predict: 1 };
        let b = Sample { patch: 4, vars: 1, patches: 2, values: vec![1.0, 2.0, f32::NAN, 4.0, 5.0, 6.0, 7.0, 8.0], variate_ids: vec![0], predict: 1 };
        let c = Sample { patch: 2, vars: 1, patches: 3, values: vec![0.0; 6], variate_ids: vec![1], predict: 2 };
        let p = pack(&[a, b, c], 2, 8, 4);
        assert_eq!(p.sample_id, [1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(p.variate_id, [7, 7, 7, 3, 3, 3, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(p.time_id, [0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0]);
        let pred: Vec<bool> = [0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0].iter().map(|&x| x == 1).collect();
        assert_eq!(p.prediction, pred);
        assert_eq!(p.patch_size[..11], [2, 2, 2, 2, 2, 2, 4, 4, 2, 2, 2]);
        // Token 4 = variate 1 (values 6..12), patch 1: [8, 9], the rest unobserved.
        assert_eq!(p.target[4 * 4..5 * 4], [8.0, 9.0, 0.0, 0.0]);
        assert_eq!(p.observed[4 * 4..5 * 4], [true, true, false, false]);
        // The NaN of B is unobserved and stored as 0.
        assert_eq!(p.target[6 * 4..7 * 4], [1.0, 2.0, 0.0, 4.0]);
        assert_eq!(p.observed[6 * 4..7 * 4], [true, true, false, true]);
    }

    #[test]
    fn warm_up_then_cosine() {
        let t = PretrainSettings { steps: 110, warmup_steps: 10, lr: 1.0, ..Default::default() };
        assert!((pretrain_lr(&t, 0) - 0.1).abs() < 1e-12);
        assert!((pretrain_lr(&t, 9) - 1.0).abs() < 1e-12);
        assert!((pretrain_lr(&t, 10) - 1.0).abs() < 1e-12);
        assert!((pretrain_lr(&t, 60) - 0.5).abs() < 1e-12);
        assert!(pretrain_lr(&t, 109) < 1e-3);
    }
}
