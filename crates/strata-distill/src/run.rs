//! `strata distill` and `strata distill-eval`: distil a spatio-temporal dataset into a folder
//! (`x.npy`, `y.npy`, `distilled.json`), and train a fresh model on such a folder (or on the
//! full data) to score it on the real test split, with wall time and peak memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use strata_data::DataConfig;
use strata_train::engine::checkpoint::write_atomic;

use crate::stdata::{Scores, StData, tensor2};
use crate::config::DistillConfig;
use crate::evaluate::{forecast, score_forecast, train_on};
use crate::method::distill;
use crate::shared::{Distilled, full_set};

/// A distillation run: the data and the method's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillRun {
    pub data: DataConfig,
    #[serde(default)]
    pub distill: DistillConfig,
}

/// What `distilled.json` records beside the arrays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistilledRecord {
    pub run: DistillRun,
    pub dataset: String,
    pub data_sha256: String,
    pub real_windows: usize,
    pub real_locations: usize,
    pub m: usize,
    pub k: usize,
    pub l: usize,
    pub h: usize,
    pub f: usize,
    /// Total ratio (windows x locations kept).
    pub ratio: f64,
    pub sizes: Vec<usize>,
    pub assignment: Vec<Option<usize>>,
    pub mean: f32,
    pub std: f32,
    pub history: Vec<(usize, f64)>,
    pub val: Option<Scores>,
    pub distill_seconds: f64,
    pub peak_rss_mb: f64,
}

/// Peak resident memory of this process so far, MB (`VmHWM`; 0 where /proc is missing).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn load_real(data: &DataConfig) -> anyhow::Result<(StData, strata_data::SpatialPrepared)> {
    let d = strata_data::prepare_spatial(data)?;
    Ok((StData::from_prepared(&d), d))
}

/// Distil and write the folder `out`.
pub fn run_distill(run: &DistillRun, out: &Path, device: &Device) -> anyhow::Result<DistilledRecord> {
    let (real, d) = load_real(&run.data)?;
    let started = Instant::now();
    let set = distill(&real, &run.distill, device)?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(out)?;
    write_atomic(&out.join("x.npy"), &strata_data::npy::encode_f32(&[set.m, set.l, set.k, set.f], &set.x))?;
    write_atomic(&out.join("y.npy"), &strata_data::npy::encode_f32(&[set.m, set.h, set.k], &set.y))?;
    let record = DistilledRecord {
        run: run.clone(),
        dataset: d.dataset.clone(),
        data_sha256: d.sha256.clone(),
        real_windows: real.splits[0].len(),
        real_locations: real.nodes,
        m: set.m,
        k: set.k,
        l: set.l,
        h: set.h,
        f: set.f,
        ratio: (set.m * set.k) as f64 / (real.splits[0].len() * real.nodes) as f64,
        sizes: set.sizes.clone(),
        assignment: set.assignment.iter().map(|&a| (a != usize::MAX).then_some(a)).collect(),
        mean: set.mean,
        std: set.std,
        history: set.history.clone(),
        val: set.val,
        distill_seconds: seconds,
        peak_rss_mb: peak_rss_mb(),
    };
    write_atomic(&out.join("distilled.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    Ok(record)
}

/// Read a distilled folder back.
pub fn read_distilled(dir: &Path) -> anyhow::Result<(DistilledRecord, Distilled)> {
    let path = dir.join("distilled.json");
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e} (not a distilled folder)", path.display()))?;
    let r: DistilledRecord = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (xs, x) = strata_data::npy::read_npy(&dir.join("x.npy"))?;
    let (ys, y) = strata_data::npy::read_npy(&dir.join("y.npy"))?;
    if xs != [r.m, r.l, r.k, r.f] || ys != [r.m, r.h, r.k] {
        anyhow::bail!("{}: x.npy {xs:?} / y.npy {ys:?} do not match distilled.json ([{}, {}, {}, {}] / [{}, {}, {}])", dir.display(), r.m, r.l, r.k, r.f, r.m, r.h, r.k);
    }
    let set = Distilled {
        method: r.run.distill.method.clone(),
        x,
        y,
        m: r.m,
        k: r.k,
        l: r.l,
        h: r.h,
        f: r.f,
        sizes: r.sizes.clone(),
        assignment: r.assignment.iter().map(|a| a.unwrap_or(usize::MAX)).collect(),
        mean: r.mean,
        std: r.std,
        history: r.history.clone(),
        val: r.val,
        seconds: r.distill_seconds,
    };
    Ok((r, set))
}

/// What `distill-eval` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalRecord {
    pub source: String,
    pub method: String,
    pub dataset: String,
    pub windows: usize,
    pub locations: usize,
    pub epochs: usize,
    pub seed: u64,
    pub val: Scores,
    pub test: Scores,
    pub train_seconds: f64,
    pub peak_rss_mb: f64,
}

/// A model trained on a distilled folder (or the full data), with what scoring it needs.
pub struct Fitted {
    pub record: EvalRecord,
    pub model: strata_models::MTGNN,
    pub config: DistillConfig,
    pub data: DataConfig,
    pub data_sha256: String,
    pub real: StData,
    /// The encoder input of every real location, `[n, l * f]`.
    pub locations: Vec<f32>,
    /// Every test window at every real location, original units, `[windows, h, n]`.
    pub test_forecast: Vec<f32>,
}

/// Train a fresh model on the distilled folder `dir` (or, with `full`, on the full training
/// data of `data`), select on the real validation split, score on the real test split.
pub fn fit(dir: Option<&Path>, full: Option<&DataConfig>, epochs: usize, seed: u64, device: &Device) -> anyhow::Result<Fitted> {
    let (data, set, cfg, source) = match (dir, full) {
        (Some(dir), _) => {
            let (r, set) = read_distilled(dir)?;
            (r.run.data.clone(), Some(set), r.run.distill.clone(), dir.display().to_string())
        }
        (None, Some(data)) => (data.clone(), None, DistillConfig::default(), "full training data".to_string()),
        (None, None) => anyhow::bail!("give a distilled folder or --full"),
    };
    let (real, d) = load_real(&data)?;
    let set = set.unwrap_or_else(|| full_set(&real));
    let started = Instant::now();
    let (model, val) = train_on(&set, &real, &cfg, epochs, 5, seed, device);
    let train_seconds = started.elapsed().as_secs_f64();
    let model = model.valid();
    let locations = real.location_means();
    let loc = tensor2(locations.clone(), [real.nodes, real.l * real.f], &device.clone().without_autodiff());
    let test_forecast = forecast(&model, &real, &loc, 2, cfg.eval_chunk);
    let test = score_forecast(&real, 2, &test_forecast);
    let record = EvalRecord { source, method: set.method.clone(), dataset: d.dataset.clone(), windows: set.m, locations: set.k, epochs, seed, val, test, train_seconds, peak_rss_mb: peak_rss_mb() };
    Ok(Fitted { record, model, config: cfg, data, data_sha256: d.sha256, real, locations, test_forecast })
}

/// [`fit`]'s record alone (`strata distill-eval`).
pub fn run_eval(dir: Option<&Path>, full: Option<&DataConfig>, epochs: usize, seed: u64, device: &Device) -> anyhow::Result<EvalRecord> {
    Ok(fit(dir, full, epochs, seed, device)?.record)
}

/// What `strata train --distilled` writes as `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedRecord {
    #[serde(flatten)]
    pub eval: EvalRecord,
    pub data: DataConfig,
    pub model: strata_models::MTGNNConfig,
    pub data_sha256: String,
    pub git_revision: String,
    pub real_locations: usize,
    pub test_windows: usize,
    pub wall_seconds: f64,
}

/// `strata train --distilled DIR --out RUN`: train on the distilled folder and write a run
/// folder: `model.bpk` (a location-encoder MTGNN), `locations.npy` (its encoder input for every
/// real location, `[n, l * f]`), `test_forecast.npy` (every test window at every real location,
/// original units, `[windows, h, n]`) and `results.json`.
pub fn train_distilled(dir: &Path, out: &Path, epochs: usize, seed: u64, device: &Device) -> anyhow::Result<TrainedRecord> {
    let started = Instant::now();
    let fitted = fit(Some(dir), None, epochs, seed, device)?;
    let real = &fitted.real;
    std::fs::create_dir_all(out)?;
    strata_train::engine::checkpoint::save_module(&fitted.model, &out.join("model.bpk"))?;
    let (n, lf) = (real.nodes, real.l * real.f);
    write_atomic(&out.join("locations.npy"), &strata_data::npy::encode_f32(&[n, lf], &fitted.locations))?;
    let windows = real.splits[2].len();
    write_atomic(&out.join("test_forecast.npy"), &strata_data::npy::encode_f32(&[windows, real.h, n], &fitted.test_forecast))?;
    let record = TrainedRecord {
        eval: fitted.record,
        data: fitted.data,
        model: crate::shared::backbone(&fitted.config),
        data_sha256: fitted.data_sha256,
        git_revision: strata_train::engine::record::git_revision(),
        real_locations: n,
        test_windows: windows,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_atomic(&out.join("results.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    Ok(record)
}

/// Where `distill-eval` writes its record.
pub fn eval_path(dir: Option<&Path>, out: Option<&Path>, seed: u64) -> PathBuf {
    match (out, dir) {
        (Some(o), _) => o.to_path_buf(),
        (None, Some(d)) => d.join(format!("eval_s{seed}.json")),
        (None, None) => PathBuf::from(format!("full_eval_s{seed}.json")),
    }
}
