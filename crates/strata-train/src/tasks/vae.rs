//! The series VAE: training on the windows of a long-sequence dataset's training split, sampling
//! new windows, and checking that generated windows look like the data (per-variable mean and
//! standard deviation, within-window autocorrelation at lags 1..24).
//!
//! A run config with `[model] name = "vae"` is a VAE run: `strata train` trains it (same run
//! folder, atomic checkpoints, resume and early stopping on the validation loss as forecasting
//! runs) and `strata sample <run>` writes generated windows in the data's original units.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use strata_data::DataConfig;
use strata_data::prepare::{Prepared, prepare};
use strata_data::window::{Batch, Windows};
use strata_models::{VAE, VAEConfig};

use crate::config::{TrainConfig, apply_override};
pub use crate::evaluation::fidelity::{Fidelity, MAX_LAG, WindowStats, window_stats};
use crate::device::{compute_device, device_name, training_device};
use crate::engine::checkpoint::{EpochLog, load_module, write_atomic};
use crate::engine::record::{TrainingRecord, created_unix, git_revision, write_json};
use crate::engine::{Group, Job, OptimizerSpec, Plan, Run, RunPaths, Step, StepLoss, Store, fit};
use crate::tasks::data::{DataRecord, data_record_lsf};
use crate::tasks::forecasting::TrainOptions;

/// `[model]` of a VAE run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum VaeModel {
    Vae(VAEConfig),
}

/// A VAE run config: `[data]` (windows of `seq_len` steps; `pred_len` only has to fit the
/// splits), `[model] name = "vae"`, `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeRunConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub data: DataConfig,
    pub model: VaeModel,
    #[serde(default)]
    pub train: TrainConfig,
}

impl VaeRunConfig {
    pub fn vae(&self) -> &VAEConfig {
        let VaeModel::Vae(c) = &self.model;
        c
    }

    pub fn from_table(table: toml::Table) -> Result<Self> {
        let cfg: VaeRunConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = e.path().to_string();
                anyhow!(
                    "key `{path}`: {}",
                    e.into_inner()
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                )
            })?;
        if cfg.data.is_spatial() {
            bail!("key `data`: the VAE trains on long-sequence data (no graph or grid)");
        }
        if cfg.vae().hidden.is_empty() || cfg.vae().latent_dim == 0 {
            bail!("key `model`: the VAE needs latent_dim > 0 and at least one hidden layer");
        }
        let t = &cfg.train;
        if t.epochs == 0 || t.batch_size == 0 || !(t.lr > 0.0) || cfg.data.seq_len < 2 {
            bail!(
                "key `train`/`data.seq_len`: epochs, batch_size and lr must be positive and seq_len at least 2"
            );
        }
        if t.nll_beta != 0.0 {
            bail!("key `train.nll_beta`: the VAE trains on its ELBO (model.beta weighs the KL term), not on beta-NLL");
        }
        if t.loss != crate::config::Loss::Mse {
            bail!("key `train.loss`: the VAE trains on its ELBO (model.beta weighs the KL term), so `{:?}` would be ignored", t.loss);
        }
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }
}

/// Whether a config table describes a VAE run (`[model] name = "vae"`).
pub fn is_vae_table(table: &toml::Table) -> bool {
    table
        .get("model")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("vae"))
}

/// Read a config file's table with `--set` overrides applied.
pub fn load_table(path: &Path, overrides: &[String]) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    Ok(table)
}

/// Losses of the VAE on one split (per window, on the scaled data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VaeScores {
    /// Negative ELBO (reconstruction NLL + KL), per window.
    pub neg_elbo: f64,
    pub kl: f64,
    /// MSE of the reconstruction through the latent mean, per value.
    pub recon_mse: f64,
}

/// `results.json` of a VAE run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaeResults {
    pub strata_version: String,
    pub git_revision: String,
    pub created_unix: u64,
    pub device: String,
    pub protocol: String,
    pub config: VaeRunConfig,
    pub data: DataRecord,
    pub parameters: usize,
    pub seed: u64,
    pub training: TrainingRecord,
    pub val: VaeScores,
    pub test: VaeScores,
    /// 1000 windows drawn from the prior (seeded with the run's seed) against the training windows.
    pub fidelity: Fidelity,
    pub wall_seconds: f64,
}

/// The data of a VAE run: the splits' windows of `seq_len` steps (no forecast target).
pub fn vae_data(cfg: &DataConfig) -> Result<Prepared> {
    let mut data = prepare(cfg)?;
    for w in [&mut data.train, &mut data.val, &mut data.test] {
        w.pred_len = 0;
    }
    Ok(data)
}

fn window_tensor(w: &Windows, idx: &[usize], batch: &mut Batch, device: &Device) -> Tensor<3> {
    w.fill(idx, batch);
    Tensor::from_data(
        TensorData::new(batch.x.clone(), [batch.size, w.seq_len, w.channels()]),
        device,
    )
}

/// Scores of `vae` on every window of `w`, with one seeded latent draw per window.
fn score(vae: &VAE, w: &Windows, batch_size: usize, beta: f64, device: &Device) -> VaeScores {
    let mut s = VaeScores::default();
    let mut batch = Batch::default();
    let order: Vec<usize> = (0..w.len()).collect();
    for idx in order.chunks(batch_size) {
        let x = window_tensor(w, idx, &mut batch, device);
        let out = vae.forward(x.clone());
        let (nll, kl) = vae.loss_terms(x.clone(), &out);
        let (nll, kl) = (
            nll.into_scalar::<f32>() as f64,
            kl.into_scalar::<f32>() as f64,
        );
        let b = idx.len() as f64;
        s.neg_elbo += (nll + beta * kl) * b;
        s.kl += kl * b;
        // Reconstruction through the latent mean (the encoder already ran in `forward`).
        let n = x.dims().iter().product::<usize>() as f64;
        s.recon_mse += ((vae.decode(out.z_mean) - x)
            .powf_scalar(2.0)
            .sum()
            .into_scalar::<f32>() as f64)
            / n
            * b;
    }
    let n = w.len().max(1) as f64;
    VaeScores {
        neg_elbo: s.neg_elbo / n,
        kl: s.kl / n,
        recon_mse: s.recon_mse / n,
    }
}

/// Every training window of `w`, row-major `[n, seq_len, channels]`.
pub fn all_windows(w: &Windows) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len() * w.seq_len * w.channels());
    (0..w.len()).for_each(|i| out.extend_from_slice(w.x(i)));
    out
}

/// Draw `n` windows (scaled units) from a trained VAE, seeded.
pub fn draw(vae: &VAE, n: usize, noise: bool, seed: u64, device: &Device) -> Vec<f32> {
    device.seed(seed);
    let mut out = Vec::new();
    for start in (0..n).step_by(256) {
        let t = vae.sample((n - start).min(256), noise, device);
        out.extend(t.into_data().try_into_vec::<f32>().expect("f32 samples"));
    }
    out
}

/// The VAE as an engine task: the negative ELBO of each batch of windows.
struct VaeTraining<'a> {
    cfg: &'a VaeRunConfig,
    data: &'a Prepared,
    batch: Batch,
}

impl Job for VaeTraining<'_> {
    type Model = VAE;

    fn seed(&self) -> u64 {
        self.cfg.train.seed
    }

    fn plan(&self) -> Plan {
        let t = &self.cfg.train;
        Plan::epochs(t.epochs, self.data.train.len(), t.batch_size, t.max_steps_per_epoch, t.patience, t.seed)
    }

    fn build(&mut self, device: &Device) -> Result<VAE> {
        Ok(self.cfg.vae().init(self.data.train.seq_len, self.data.train.channels(), device))
    }

    fn groups(&self) -> Vec<Group> {
        vec![Group::new(&OptimizerSpec::of_train(&self.cfg.train), self.cfg.train.rate(), "optimizer.bpk")]
    }

    fn describe(&self, vae: &VAE, device: &Device) -> String {
        let data = self.data;
        format!(
            "vae on {} (windows of {} steps, {} channels, latent {}): {} parameters, {} training windows, {}",
            data.dataset,
            data.train.seq_len,
            data.train.channels(),
            self.cfg.vae().latent_dim,
            vae.num_params(),
            data.train.len(),
            device_name(device)
        )
    }

    fn begin_round(&mut self, round: usize, device: &Device) {
        device.seed(self.cfg.train.seed.wrapping_add(1 + round as u64));
    }

    fn loss(&mut self, vae: &VAE, step: &Step, device: &Device) -> Result<StepLoss> {
        let x = window_tensor(&self.data.train, step.batch, &mut self.batch, device);
        let out = vae.forward(x.clone());
        let (nll, kl) = vae.loss_terms(x, &out);
        Ok(StepLoss::of(nll + kl * self.cfg.vae().beta))
    }

    fn validate(&mut self, vae: &VAE, _round: usize, device: &Device) -> Option<f64> {
        device.seed(self.cfg.train.seed);
        Some(score(vae, &self.data.val, self.cfg.train.eval_batch_size, self.cfg.vae().beta, device).neg_elbo)
    }

    fn divergence_hint(&self) -> &'static str {
        "lower train.lr"
    }

    fn report(&self, plan: &Plan, log: &EpochLog, improved: bool) -> Option<String> {
        Some(format!("epoch {:>3}/{} train -elbo {:.2} val {:.2} lr {:.3e} {:.1}s{}", log.epoch, plan.rounds, log.train_loss, log.val_loss, log.lr, log.seconds, if improved { " *" } else { "" }))
    }
}

/// Train (or resume) the VAE run `cfg` in `run_dir`.
pub fn train_vae(cfg: &VaeRunConfig, run_dir: &Path, opts: TrainOptions) -> Result<VaeResults> {
    let wall = Instant::now();
    let data = vae_data(&cfg.data)?;
    let mut run = Run::open(run_dir, opts.fresh, cfg, &cfg.to_toml(), |text| VaeRunConfig::from_table(toml::from_str(text)?))?;
    let (t, vc) = (&cfg.train, cfg.vae());
    let (len, channels) = (data.train.seq_len, data.train.channels());
    let device = training_device();
    fit(&mut VaeTraining { cfg, data: &data, batch: Batch::default() }, Store::Folder(&mut run), &device, usize::MAX)?;
    run.finish()?;
    let (paths, state, resumed_at) = (&run.paths, &run.state, run.resumed_at);
    let eval_device = device.clone().without_autodiff();

    let best = load_module(vc.init(len, channels, &eval_device), &paths.best)?;
    eval_device.seed(t.seed);
    let (val, test) = (
        score(&best, &data.val, t.eval_batch_size, vc.beta, &eval_device),
        score(&best, &data.test, t.eval_batch_size, vc.beta, &eval_device),
    );
    let real = window_stats(&all_windows(&data.train), len, channels, MAX_LAG);
    let generated = window_stats(
        &draw(&best, 1000, vc.sample_noise, t.seed, &eval_device),
        len,
        channels,
        MAX_LAG,
    );
    let results = VaeResults {
        strata_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: git_revision(),
        created_unix: created_unix(),
        device: device_name(&eval_device),
        protocol: format!(
            "VAE: {} windows of {len} steps from train rows {:?} (validation {:?}, test {:?}), scaler fitted on train rows; losses per window on scaled data; fidelity of 1000 prior samples against every training window",
            data.dataset, data.borders.train, data.borders.val, data.borders.test
        ),
        config: cfg.clone(),
        data: data_record_lsf(&data),
        parameters: best.num_params(),
        seed: t.seed,
        training: TrainingRecord::new(state, resumed_at),
        val,
        test,
        fidelity: Fidelity::new(real, generated),
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    if crate::engine::parallel::world().is_root() {
        write_json(&paths.results_json, &results)?;
    }
    Ok(results)
}

/// What `strata sample` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleReport {
    pub run: PathBuf,
    pub output: PathBuf,
    pub windows: usize,
    pub seq_len: usize,
    pub columns: Vec<String>,
    pub seed: u64,
    pub noise: bool,
    /// Generated windows against the training windows (scaled units).
    pub fidelity: Fidelity,
    pub git_revision: String,
}

/// Draw `n` windows from the VAE of `run_dir` and write them in the data's original units to
/// `out` (`.npy`: `[n, seq_len, channels]` float32; `.csv`: one row per window step, columns
/// `window,step,<variables>`); `sample.json` beside them records the fidelity check.
pub fn sample_run(
    run_dir: &Path,
    n: usize,
    seed: u64,
    noise: Option<bool>,
    out: &Path,
) -> Result<SampleReport> {
    let paths = RunPaths::new(run_dir);
    let table: toml::Table =
        toml::from_str(&std::fs::read_to_string(&paths.config).with_context(|| {
            format!("{} is not a run folder (no config.toml)", run_dir.display())
        })?)?;
    if !is_vae_table(&table) {
        bail!(
            "{} holds a forecasting model; `strata sample` draws from a VAE run",
            run_dir.display()
        );
    }
    let cfg = VaeRunConfig::from_table(table)?;
    if !paths.best.exists() {
        bail!("{} has no best.bpk: train it first", run_dir.display());
    }
    if n == 0 {
        bail!("--n must be positive");
    }
    let data = vae_data(&cfg.data)?;
    let (len, channels) = (data.train.seq_len, data.train.channels());
    let device = compute_device();
    let vae = load_module(cfg.vae().init(len, channels, &device), &paths.best)?;
    let noise = noise.unwrap_or(cfg.vae().sample_noise);
    let mut scaled = draw(&vae, n, noise, seed, &device);
    let fidelity = Fidelity::new(
        window_stats(&all_windows(&data.train), len, channels, MAX_LAG),
        window_stats(&scaled, len, channels, MAX_LAG),
    );
    if let Some(scaler) = &data.scaler {
        if scaler.mean.len() != channels {
            bail!(
                "{}: sampling in original units needs data.features = \"M\" (the scaler covers {} columns, the windows {channels})",
                run_dir.display(),
                scaler.mean.len()
            );
        }
        scaler.inverse_columns(&mut scaled, &(0..channels).collect::<Vec<_>>());
    }
    let bytes = match out.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy_bytes(&scaled, &[n as u64, len as u64, channels as u64])?,
        Some("csv") => csv_bytes(&scaled, len, &data.columns),
        _ => bail!("{}: write samples to a .npy or .csv file", out.display()),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    write_atomic(out, &bytes)?;
    let report = SampleReport {
        run: run_dir.into(),
        output: out.into(),
        windows: n,
        seq_len: len,
        columns: data.columns.clone(),
        seed,
        noise,
        fidelity,
        git_revision: git_revision(),
    };
    write_json(&out.with_extension("json"), &report)?;
    Ok(report)
}

fn npy_bytes(values: &[f32], shape: &[u64]) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut bytes)
        .begin_nd()?;
    w.extend(values.iter().copied())?;
    w.finish()?;
    Ok(bytes)
}

fn csv_bytes(values: &[f32], len: usize, columns: &[String]) -> Vec<u8> {
    let c = columns.len();
    let mut s = format!("window,step,{}\n", columns.join(","));
    for (r, row) in values.chunks(c).enumerate() {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        s.push_str(&format!("{},{},{}\n", r / len, r % len, cells.join(",")));
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_losses_are_refused_naming_the_key() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/etth1_vae.toml");
        let table: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(VaeRunConfig::from_table(table.clone()).is_ok());
        for (set, key) in [("train.nll_beta=1.0", "train.nll_beta"), ("train.loss=mae", "train.loss")] {
            let mut t = table.clone();
            crate::config::apply_override(&mut t, set).unwrap();
            let e = VaeRunConfig::from_table(t).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
