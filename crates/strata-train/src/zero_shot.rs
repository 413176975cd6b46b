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
use crate::record::{git_revision, write_json};
use crate::trainer::{DataRecord, data_record_lsf};

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
    pub test_windows: usize,
    pub device: String,
    pub git_revision: String,
    /// Forecasting every test window (batching included), seconds.
    pub forecast_seconds: f64,
    /// Everything: loading the weights and the data, forecasting, metrics.
    pub wall_seconds: f64,
}

/// Evaluate the checkpoint folder `model_dir` (TTM `config.json` + `model.safetensors`) on the
/// test split of `data` (its `seq_len` is replaced by the model's context, `pred_len` by
/// `horizon`, which must not exceed the model's).
pub fn zero_shot(model_dir: &Path, data: &DataConfig, horizon: usize, batch_size: usize) -> Result<ZeroShotResults> {
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
    let forecast_seconds = started.elapsed().as_secs_f64();
    let n = (test.len() * horizon * c).max(1) as f64;
    Ok(ZeroShotResults {
        model: model_dir.to_path_buf(),
        model_sha256: strata_data::sha256_file(&model_dir.join("model.safetensors"))?,
        context_length: l,
        horizon,
        data: data_record_lsf(&prepared),
        protocol: format!(
            "zero-shot: {} test rows {:?}, context {l}, horizon {horizon}, stride-1 windows ({}), scaled by the training rows' mean/std; MSE/MAE on scaled data over every window, step and channel",
            prepared.dataset,
            prepared.borders.test,
            test.len()
        ),
        mse: sq / n,
        mae: ab / n,
        test_windows: test.len(),
        device: device_name(&device),
        git_revision: git_revision(),
        forecast_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}

/// Write the results as JSON.
pub fn write(results: &ZeroShotResults, path: &Path) -> Result<()> {
    write_json(path, results)
}
