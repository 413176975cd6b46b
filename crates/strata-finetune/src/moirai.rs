//! Fine-tuning MOIRAI checkpoints: every method is an [`MsftMoirai`] configuration over the
//! loaded backbone with an explicit trainable set.

use std::path::Path;

use anyhow::{Result, anyhow};
use burn::module::Param;
use burn::tensor::{Device, Tensor};
use strata_models::Moirai;
use strata_models::foundation::moirai::Part;
use strata_models::adapters::moirai_msft::{MsftConfig, MsftMoirai, path_mean, path_median};

use crate::run::{FinetuneResults, Tunable};
use crate::{FinetuneConfig, Method};

/// Prompt tokens on MOIRAI when `prompt_tokens` is not set.
pub const DEFAULT_PROMPTS: usize = 16;

/// The MSFT parts a method uses, and what of the backbone trains.
fn strategy(cfg: &FinetuneConfig) -> Result<(MsftConfig, Vec<Part>)> {
    use Part::*;
    let all = vec![InProj, MaskEncoding, Qkv, OutProj, VarBias, Norms, Ffn, Head];
    Ok(match cfg.method {
        Method::Full => (MsftConfig::off(), all),
        Method::LinearProbe => (MsftConfig::off(), vec![Head]),
        Method::Lora => (MsftConfig { lora: true, lora_rank: cfg.lora.rank, lora_alpha: cfg.lora.alpha, lora_dropout: cfg.lora.dropout, ..MsftConfig::off() }, vec![]),
        Method::Prompt => (MsftConfig { prompt_tokens: cfg.prompt_tokens.unwrap_or(DEFAULT_PROMPTS).max(1), ..MsftConfig::off() }, vec![]),
        Method::Adalora => (MsftConfig { adalora: Some(cfg.adalora.clone()), ..MsftConfig::off() }, vec![]),
        Method::Msft => (cfg.msft.clone(), MsftConfig::BACKBONE_TRAINABLE.to_vec()),
    })
}

fn build(cfg: &FinetuneConfig, device: &Device) -> Result<MsftMoirai> {
    let (msft, trainable) = strategy(cfg)?;
    let backbone = Moirai::load(&cfg.model_dir(), device).map_err(|e| anyhow!(e))?.freeze_except(&trainable);
    Ok(MsftMoirai::new(backbone, &msft, device))
}

impl Tunable for MsftMoirai {
    fn history(&self, cfg: &FinetuneConfig) -> usize {
        cfg.data.seq_len
    }
    fn loss(&self, context: &[f32], target: &[f32], rows: usize, cfg: &FinetuneConfig, device: &Device) -> Tensor<1> {
        MsftMoirai::loss(self, context, target, rows, cfg.patch_size, device)
    }
    fn point(&self, context: &[f32], rows: usize, h: usize, cfg: &FinetuneConfig, seed: u64, device: &Device) -> (Vec<f32>, Vec<f32>) {
        let n = cfg.train.paths.max(1);
        let paths = self.forecast_paths(context, rows, h, cfg.patch_size, n, seed, device);
        (path_mean(&paths, rows, n, h), path_median(&paths, rows, n, h))
    }
    fn scale_weights(&self) -> &Param<Tensor<1>> {
        &self.scale_weights
    }
    fn mix(&self) -> Vec<f32> {
        self.mix_weights().into_data().try_to_vec::<f32>().expect("f32")
    }
    fn describe(&self, cfg: &FinetuneConfig) -> String {
        format!("patch {}, MSE of the mean and MAE of the median of {} sample paths", cfg.patch_size, cfg.train.paths)
    }
    fn adalora(&self) -> Option<&strata_models::adapters::adalora::AdaLora> {
        self.ada()
    }
    fn after_step(self, step: usize, total: usize) -> Self {
        self.ada_prune(step, total)
    }
    fn notes(&self) -> Option<String> {
        self.ada().map(|a| format!("AdaLoRA triplets kept per q/k/v matrix (layer-major): {:?}", a.ranks()))
    }
}

/// Fine-tune (or resume) a MOIRAI run.
pub fn finetune(cfg: &FinetuneConfig, run_dir: &Path, fresh: bool) -> Result<FinetuneResults> {
    strategy(cfg)?;
    crate::run::finetune(cfg, run_dir, fresh, |device| build(cfg, device))
}

/// Re-evaluate a MOIRAI fine-tuning run's best checkpoint.
pub fn evaluate(cfg: &FinetuneConfig, run_dir: &Path) -> Result<crate::run::FinetuneEval> {
    crate::run::evaluate(cfg, run_dir, |device| build(cfg, device))
}
