//! Fine-tuning TinyTimeMixer with `lora` (one-scale LoRA on every mixer's fc1/fc2, backbone
//! frozen) and `msft` (the MLP-mixer adaptation, `strata_models::ttm_msft`); `full` and
//! `linear-probe` go through the forecasting trainer (`ttm_run_config`).

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use burn::module::Param;
use burn::tensor::{Device, Tensor};
use strata_models::TinyTimeMixer;
use strata_models::moirai_msft::MsftConfig;
use strata_models::ttm_msft::TtmMsft;

use crate::run::{FinetuneResults, Tunable};
use crate::{FinetuneConfig, Method};

fn build(cfg: &FinetuneConfig, device: &Device) -> Result<TtmMsft> {
    let backbone = TinyTimeMixer::load(&cfg.model_dir(), device).map_err(|e| anyhow!(e))?;
    Ok(match cfg.method {
        Method::Msft => TtmMsft::new(backbone.freeze_for_msft(), &cfg.msft, device),
        Method::Lora => TtmMsft::new(burn::module::Module::no_grad(backbone), &MsftConfig { lora: true, lora_rank: cfg.lora.rank, lora_alpha: cfg.lora.alpha, ..MsftConfig::off() }, device),
        m => bail!("--method {}: TinyTimeMixer takes full, linear-probe, lora and msft so far", m.name()),
    })
}

impl Tunable for TtmMsft {
    fn history(&self, _cfg: &FinetuneConfig) -> usize {
        TtmMsft::history(self)
    }
    fn loss(&self, context: &[f32], target: &[f32], rows: usize, _cfg: &FinetuneConfig, device: &Device) -> Tensor<1> {
        TtmMsft::loss(self, context, target, rows, device)
    }
    fn point(&self, context: &[f32], rows: usize, h: usize, _cfg: &FinetuneConfig, _seed: u64, device: &Device) -> (Vec<f32>, Vec<f32>) {
        let f = self.forecast(context, rows, h, device);
        (f.clone(), f)
    }
    fn scale_weights(&self) -> &Param<Tensor<1>> {
        &self.scale_weights
    }
    fn mix(&self) -> Vec<f32> {
        self.mix_weights()
    }
    fn describe(&self, _cfg: &FinetuneConfig) -> String {
        format!("{} scale(s) of 512 steps (the window reads {}), MSE and MAE of the mixed point forecast", self.scales(), TtmMsft::history(self))
    }
}

/// Fine-tune (or resume) a TinyTimeMixer run with `lora` or `msft`.
pub fn finetune(cfg: &FinetuneConfig, run_dir: &Path, fresh: bool) -> Result<FinetuneResults> {
    if cfg.data.pred_len > 96 {
        bail!("key `data.pred_len`: {} forecasts at most 96 steps", cfg.model_dir().display());
    }
    crate::run::finetune(cfg, run_dir, fresh, |device| build(cfg, device))
}

/// Re-evaluate a TinyTimeMixer `lora` / `msft` run's best checkpoint.
pub fn evaluate(cfg: &FinetuneConfig, run_dir: &Path) -> Result<crate::run::FinetuneEval> {
    crate::run::evaluate(cfg, run_dir, |device| build(cfg, device))
}
