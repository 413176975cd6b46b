//! Zero-shot evaluation of a pretrained foundation model (TinyTimeMixer) on a dataset's standard
//! test split: the model's context length as input, every stride-1 test window, the data scaled
//! by the training rows' statistics (as TSLib and granite-tsfm's benchmarks do), MSE/MAE over
//! every (window, step, channel).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use strata_data::prepare::{DataConfig, prepare};
use strata_data::window::Batch;
use strata_models::TinyTimeMixer;

use crate::device::{compute_device, device_name};
use crate::engine::record::{git_revision, write_json};
use crate::tasks::data::{DataRecord, data_record_lsf};

/// What `strata zero-shot` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZeroShotResults {
    pub model: PathBuf,
    pub model_sha256: String,
    pub context_length: usize,
    pub horizon: usize,
    pub data: DataRecord,
    pub protocol: String,
    pub mse: f64,
    pub mae: f64,
    /// MOIRAI: CRPS (both forms), MSIS, coverage from 100 seeded sample paths per window and
    /// channel, on the scaled data (GluonTS item metrics; seasonal error over the context).
    #[serde(default)]
    pub probabilistic: Option<crate::evaluation::prob_metrics::AggregateMetrics>,
    pub test_windows: usize,
    pub device: String,
    pub git_revision: String,
    /// Forecasting every test window (batching included), seconds.
    pub forecast_seconds: f64,
    /// Everything: loading the weights and the data, forecasting, metrics.
    pub wall_seconds: f64,
}

/// MOIRAI settings for zero-shot forecasting (TinyTimeMixer fixes its own context).
#[derive(Debug, Clone, Copy)]
pub struct MoiraiWindow {
    pub context: usize,
    pub patch_size: usize,
}

/// Whether a checkpoint folder holds a MOIRAI module (its config has `patch_sizes`).
pub fn is_moirai(model_dir: &Path) -> bool {
    std::fs::read_to_string(model_dir.join("config.json")).is_ok_and(|t| t.contains("\"patch_sizes\""))
}

/// Evaluate the checkpoint folder `model_dir` (TTM or MOIRAI `config.json` +
/// `model.safetensors`) on the test split of `data`. TinyTimeMixer: its own context, `horizon`
/// at most its own. MOIRAI: `moirai.context` steps packed in patches of `moirai.patch_size`,
/// point forecast = the predictive mean.
pub fn zero_shot(model_dir: &Path, data: &DataConfig, horizon: usize, batch_size: usize, moirai: MoiraiWindow) -> Result<ZeroShotResults> {
    if is_moirai(model_dir) {
        return zero_shot_moirai(model_dir, data, horizon, batch_size, moirai);
    }
    let wall = Instant::now();
    let device = compute_device();
    let model = TinyTimeMixer::load(model_dir, &device).map_err(|e| anyhow!(e))?;
    if horizon == 0 || horizon > model.horizon() {
        bail!("--horizon {horizon}: {} forecasts 1..={} steps", model_dir.display(), model.horizon());
    }
    let cfg = DataConfig { seq_len: model.context_length(), pred_len: horizon, ..data.clone() };
    let prepared = prepare(&cfg)?;
    let test = &prepared.test;
    let (c, l) = (test.channels(), test.seq_len);
    let (mut sq, mut ab, mut batch) = (0f64, 0f64, Batch::default());
    let all: Vec<usize> = (0..test.len()).collect();
    let started = Instant::now();
    for idx in all.chunks(batch_size.max(1)) {
        test.fill(idx, &mut batch);
        let x = Tensor::<3>::from_data(TensorData::new(batch.x.clone(), [idx.len(), l, c]), &device);
        let p = model.forecast(x).narrow(1, 0, horizon).into_data().try_to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?;
        for (a, b) in p.iter().zip(&batch.y) {
            let d = (*a - *b) as f64;
            sq += d * d;
            ab += d.abs();
        }
    }
    let protocol = format!(
        "zero-shot: {} test rows {:?}, context {l}, horizon {horizon}, stride-1 windows ({}), scaled by the training rows' mean/std; MSE/MAE on scaled data over every window, step and channel",
        prepared.dataset,
        prepared.borders.test,
        test.len()
    );
    let errors = Errors { sq, ab, forecast_seconds: started.elapsed().as_secs_f64() };
    results(model_dir, &prepared, l, horizon, protocol, errors, None, &device, wall)
}

/// Summed squared and absolute errors over every (window, step, channel), and the time taken.
struct Errors {
    sq: f64,
    ab: f64,
    forecast_seconds: f64,
}

#[allow(clippy::too_many_arguments)]
fn results(model_dir: &Path, prepared: &strata_data::prepare::Prepared, context: usize, horizon: usize, protocol: String, e: Errors, probabilistic: Option<crate::evaluation::prob_metrics::AggregateMetrics>, device: &burn::tensor::Device, wall: Instant) -> Result<ZeroShotResults> {
    let n = (prepared.test.len() * horizon * prepared.test.channels()).max(1) as f64;
    Ok(ZeroShotResults {
        model: model_dir.to_path_buf(),
        model_sha256: strata_data::sha256_file(&model_dir.join("model.safetensors"))?,
        context_length: context,
        horizon,
        data: data_record_lsf(prepared),
        protocol,
        mse: e.sq / n,
        mae: e.ab / n,
        probabilistic,
        test_windows: prepared.test.len(),
        device: device_name(device),
        git_revision: git_revision(),
        forecast_seconds: e.forecast_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}

/// Write the results as JSON.
pub fn write(results: &ZeroShotResults, path: &Path) -> Result<()> {
    write_json(path, results)
}

fn zero_shot_moirai(model_dir: &Path, data: &DataConfig, horizon: usize, batch_size: usize, w: MoiraiWindow) -> Result<ZeroShotResults> {
    let wall = Instant::now();
    let device = compute_device();
    let model = strata_models::Moirai::load(model_dir, &device).map_err(|e| anyhow!(e))?;
    let cfg = strata_models::MoiraiConfig::from_file(&model_dir.join("config.json")).map_err(|e| anyhow!(e))?;
    if !cfg.patch_sizes.contains(&w.patch_size) {
        bail!("--patch-size {}: {} has patch sizes {:?}", w.patch_size, model_dir.display(), cfg.patch_sizes);
    }
    let tokens = w.context.div_ceil(w.patch_size) + horizon.div_ceil(w.patch_size);
    if horizon == 0 || tokens > cfg.max_seq_len {
        bail!("--context {} / --horizon {horizon} in patches of {} make {tokens} tokens per variate; {} takes at most {}", w.context, w.patch_size, model_dir.display(), cfg.max_seq_len);
    }
    let prepared = prepare(&DataConfig { seq_len: w.context, pred_len: horizon, ..data.clone() })?;
    let test = &prepared.test;
    let c = test.channels();
    let (mut sq, mut ab, mut batch) = (0f64, 0f64, Batch::default());
    let all: Vec<usize> = (0..test.len()).collect();
    let started = Instant::now();
    let season = crate::evaluation::probabilistic::seasonality(&prepared.freq);
    let mut items = Vec::new();
    const PATHS: usize = 100;
    for (k, idx) in all.chunks(batch_size.max(1)).enumerate() {
        test.fill(idx, &mut batch);
        let observed = vec![true; w.context * c];
        let rows = (0..idx.len())
            .map(|i| strata_models::foundation::moirai::Packed::window(&batch.x[i * w.context * c..(i + 1) * w.context * c], &observed, c, horizon, w.patch_size, cfg.max_patch()))
            .collect();
        let packed = strata_models::foundation::moirai::Packed::stack(rows);
        let out = model.forward(&packed, &device);
        let at = packed.horizon_indices(c, horizon);
        let paths = out.sample_at(PATHS, 2021 + k as u64, &at); // [paths, batch * horizon * c]
        let points = at.len();
        // Point forecasts as MOIRAI reports them: MSE of the paths' mean, MAE of their median
        // (the mixture's analytic mean is swayed by rarely drawn components with large means).
        let mut col = vec![0f32; PATHS];
        for (i, y) in batch.y.iter().enumerate() {
            for (p, v) in col.iter_mut().enumerate() {
                *v = paths[p * points + i];
            }
            let mean = col.iter().sum::<f32>() / PATHS as f32;
            col.sort_by(|a, b| a.total_cmp(b));
            let median = 0.5 * (col[PATHS / 2 - 1] + col[PATHS / 2]);
            sq += ((mean - *y) as f64).powi(2);
            ab += ((median - *y) as f64).abs();
        }
        for (j, _) in idx.iter().enumerate() {
            for ch in 0..c {
                let past: Vec<f32> = (0..w.context).map(|t| batch.x[(j * w.context + t) * c + ch]).collect();
                let target: Vec<f32> = (0..horizon).map(|t| batch.y[(j * horizon + t) * c + ch]).collect();
                let mut s = vec![0f32; PATHS * horizon];
                for p in 0..PATHS {
                    for t in 0..horizon {
                        s[p * horizon + t] = paths[p * points + (j * horizon + t) * c + ch];
                    }
                }
                items.push(crate::evaluation::prob_metrics::item_metrics(&past, &target, &s, &crate::evaluation::probabilistic::QUANTILES, season, 0.05));
            }
        }
    }
    let protocol = format!(
        "zero-shot MOIRAI: {} test rows {:?}, context {} in patches of {}, horizon {horizon}, stride-1 windows ({}), every channel a variate of one sample, scaled by the training rows' mean/std; 100 seeded sample paths: MSE of their mean, MAE of their median, CRPS/MSIS, on scaled data",
        prepared.dataset, prepared.borders.test, w.context, w.patch_size, test.len()
    );
    let errors = Errors { sq, ab, forecast_seconds: started.elapsed().as_secs_f64() };
    let probabilistic = Some(crate::evaluation::prob_metrics::aggregate(&items, &crate::evaluation::probabilistic::QUANTILES));
    results(model_dir, &prepared, w.context, horizon, protocol, errors, probabilistic, &device, wall)
}
