//! Fine-tuning TinyTimeMixer: `full` (every weight), `linear-probe` (the forecast head), `lora`
//! (one-scale LoRA on every mixer's fc1/fc2, backbone frozen), `prompt` (learned embeddings in
//! place of the oldest patches'), `adalora` (on every mixer's fc1/fc2) and `msft` (the MLP-mixer
//! adaptation, `strata_models::adapters::ttm_msft`). Every method is a [`TtmMsft`] configuration over the
//! loaded backbone, trained by the same loop (`crate::run`).

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use burn::module::Param;
use burn::tensor::{Device, Tensor};
use strata_models::TinyTimeMixer;
use strata_models::adapters::moirai_msft::MsftConfig;
use strata_models::adapters::ttm_msft::TtmMsft;

use crate::run::{FinetuneResults, Tunable};
use crate::{FinetuneConfig, Method};

/// Prompt tokens on TinyTimeMixer when `prompt_tokens` is not set: 2 of its 8 patches.
pub const DEFAULT_PROMPTS: usize = 2;

/// What of TinyTimeMixer a method adds (the backbone's trainable part is [`freeze`]'s).
fn strategy(cfg: &FinetuneConfig) -> MsftConfig {
    match cfg.method {
        Method::Full | Method::LinearProbe => MsftConfig::off(),
        Method::Msft => cfg.msft.clone(),
        Method::Lora => MsftConfig { lora: true, lora_rank: cfg.lora.rank, lora_alpha: cfg.lora.alpha, lora_dropout: cfg.lora.dropout, ..MsftConfig::off() },
        Method::Prompt => MsftConfig { prompt_tokens: cfg.prompt_tokens.unwrap_or(DEFAULT_PROMPTS).max(1), ..MsftConfig::off() },
        Method::Adalora => MsftConfig { adalora: Some(cfg.adalora.clone()), ..MsftConfig::off() },
    }
}

/// What of the backbone trains under each method.
fn freeze(backbone: TinyTimeMixer, method: Method) -> TinyTimeMixer {
    match method {
        Method::Full => backbone,
        Method::LinearProbe => backbone.freeze_for_linear_probe(),
        Method::Msft => backbone.freeze_for_msft(),
        Method::Lora | Method::Prompt | Method::Adalora => burn::module::Module::no_grad(backbone),
    }
}

fn build(cfg: &FinetuneConfig, device: &Device) -> Result<TtmMsft> {
    let msft = strategy(cfg);
    let backbone = TinyTimeMixer::load(&cfg.model_dir(), device).map_err(|e| anyhow!(e))?;
    if msft.prompt_tokens >= backbone.num_patches() {
        bail!("key `prompt_tokens` = {}: TinyTimeMixer reads {} patches and the prompts replace the oldest ones; use fewer", msft.prompt_tokens, backbone.num_patches());
    }
    Ok(TtmMsft::new(freeze(backbone, cfg.method), &msft, device))
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
    fn adalora(&self) -> Option<&strata_models::adapters::adalora::AdaLora> {
        self.ada()
    }
    fn after_step(self, step: usize, total: usize) -> Self {
        self.ada_prune(step, total)
    }
    fn notes(&self) -> Option<String> {
        self.ada().map(|a| format!("AdaLoRA triplets kept per mixer fc1/fc2 matrix (mixer-major): {:?}", a.ranks()))
    }
}

/// Fine-tune (or resume) a TinyTimeMixer run with any method.
pub fn finetune(cfg: &FinetuneConfig, run_dir: &Path, fresh: bool) -> Result<FinetuneResults> {
    if cfg.data.pred_len > 96 {
        bail!("key `data.pred_len`: {} forecasts at most 96 steps", cfg.model_dir().display());
    }
    crate::run::finetune(cfg, run_dir, fresh, |device| build(cfg, device))
}

/// Re-evaluate a TinyTimeMixer fine-tuning run's best checkpoint.
pub fn evaluate(cfg: &FinetuneConfig, run_dir: &Path) -> Result<crate::run::FinetuneEval> {
    crate::run::evaluate(cfg, run_dir, |device| build(cfg, device))
}
