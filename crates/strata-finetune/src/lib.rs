//! strata-finetune: fine-tune a foundation model for a downstream dataset (`strata finetune`).
//!
//! Methods, each a strategy over the same backbone with an explicit frozen/trainable split:
//! `full` (everything), `linear-probe` (the distribution / forecast head only), `lora` (LoRA
//! on q/k/v, backbone frozen), `prompt` (learned prefix tokens, backbone frozen), `adalora`
//! (rank budget re-allocated by SVD-style importance), `msft` (multi-scale fine-tuning,
//! `../shared/docs/msft.md`).
//! MOIRAI checkpoints (a `config.json` with `patch_sizes`) and TinyTimeMixer take every method,
//! all trained by one loop (`run.rs`; `ttm.rs`: LoRA and AdaLoRA on the mixers' fc1/fc2, prompts
//! in place of the oldest patches). See docs/finetune.md.

pub mod moirai;
pub mod run;
pub mod ttm;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use strata_data::prepare::DataConfig;
use strata_models::adapters::moirai_msft::MsftConfig;

/// A fine-tuning method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Full,
    LinearProbe,
    Prompt,
    Lora,
    Adalora,
    Msft,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "full" => Method::Full,
            "linear-probe" => Method::LinearProbe,
            "prompt" => Method::Prompt,
            "lora" => Method::Lora,
            "adalora" => Method::Adalora,
            "msft" => Method::Msft,
            other => bail!("--method {other}: expected one of full, linear-probe, prompt, lora, adalora, msft"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Full => "full",
            Method::LinearProbe => "linear-probe",
            Method::Prompt => "prompt",
            Method::Lora => "lora",
            Method::Adalora => "adalora",
            Method::Msft => "msft",
        }
    }
}

/// LoRA on q/k/v (the MSFT paper's baseline setting: r 16, alpha 32).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    /// Dropout on the LoRA path's input during training (the paper's baseline: 0.05).
    pub dropout: f64,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings { rank: 16, alpha: 32.0, dropout: 0.05 }
    }
}

/// Optimiser and stopping (MSFT's: AdamW (0.9, 0.98), eps 1e-6, weight decay 0.1, constant
/// rate, clipping 1.0, early stopping on validation NLL with patience 3, stride-1 windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneTrain {
    pub epochs: usize,
    /// Windows per step (each channel of a window is one series).
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub lr: f64,
    /// Learning rate of MSFT's scale weights (their own parameter group).
    pub scale_lr: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub patience: usize,
    pub seed: u64,
    /// Stop each epoch after this many steps (CPU budgets; recorded in the results).
    pub max_steps_per_epoch: Option<usize>,
    /// Validate on every k-th validation window (1: all).
    pub val_every: usize,
    /// Sample paths per forecast (MSE on their mean, MAE on their median).
    pub paths: usize,
}

impl Default for FinetuneTrain {
    fn default() -> Self {
        FinetuneTrain {
            epochs: 10,
            batch_size: 32,
            eval_batch_size: 64,
            lr: 5e-6,
            scale_lr: 1e-2,
            weight_decay: 0.1,
            grad_clip: 1.0,
            patience: 3,
            seed: 2021,
            max_steps_per_epoch: None,
            val_every: 1,
            paths: 100,
        }
    }
}

/// A fine-tuning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    pub name: String,
    pub method: Method,
    /// Checkpoint folder (`config.json` + `model.safetensors`); a relative path that does not
    /// exist is looked up under the data root (`ttm-r2`).
    pub model: PathBuf,
    pub data: DataConfig,
    /// MOIRAI: the patch size of every scale.
    #[serde(default = "default_patch")]
    pub patch_size: usize,
    #[serde(default)]
    pub msft: MsftConfig,
    #[serde(default)]
    pub lora: LoraSettings,
    #[serde(default)]
    pub adalora: strata_models::adapters::adalora::AdaLoraConfig,
    /// Prompt tuning: learned prefix tokens per series (unset: 16 on MOIRAI, 2 of
    /// TinyTimeMixer's 8 patches).
    #[serde(default)]
    pub prompt_tokens: Option<usize>,
    #[serde(default)]
    pub train: FinetuneTrain,
}

fn default_patch() -> usize {
    32
}

impl FinetuneConfig {
    /// The defaults for `method` on `model` and `dataset` (context 512, horizon 96).
    pub fn new(method: Method, model: PathBuf, dataset: &str) -> Self {
        FinetuneConfig {
            name: format!("{}_{}_{}", dataset, model.file_name().map_or("model".into(), |s| s.to_string_lossy().into_owned()), method.name()),
            method,
            model,
            data: DataConfig { dataset: dataset.to_string(), seq_len: 512, pred_len: 96, ..DataConfig::default() },
            patch_size: default_patch(),
            msft: MsftConfig::default(),
            lora: LoraSettings::default(),
            adalora: Default::default(),
            prompt_tokens: None,
            train: FinetuneTrain::default(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }

    pub fn from_toml(text: &str) -> Result<Self> {
        // Run folders written before `[msft]` lost `prompt_tokens` hold its default, 0: drop it
        // so they still resume and evaluate (any other value is an error naming the key).
        let mut table: toml::Table = toml::from_str(text)?;
        if let Some(msft) = table.get_mut("msft").and_then(|m| m.as_table_mut())
            && msft.get("prompt_tokens").and_then(|v| v.as_integer()) == Some(0)
        {
            msft.remove("prompt_tokens");
            return Ok(table.try_into()?);
        }
        // Parsed from the text, so errors keep their line and column.
        Ok(toml::from_str(text)?)
    }

    /// The checkpoint folder, resolved under the data root when relative and absent here.
    pub fn model_dir(&self) -> PathBuf {
        resolve(&self.model)
    }
}

fn resolve(p: &Path) -> PathBuf {
    if p.is_relative() && !p.exists() { strata_data::data_root().join(p) } else { p.to_path_buf() }
}

/// Whether `dir` holds a MOIRAI checkpoint.
pub fn is_moirai(dir: &Path) -> bool {
    strata_train::inference::zero_shot::is_moirai(dir)
}

/// A fine-tuning run folder's config, with `data.*` overrides, if `dir` holds one.
pub fn run_config(dir: &Path, overrides: &[(String, String)]) -> Option<Result<FinetuneConfig>> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    let mut table: toml::Table = toml::from_str(&text).ok()?;
    if !table.contains_key("method") {
        return None;
    }
    for (k, v) in overrides {
        let Some(key) = k.strip_prefix("data.") else {
            return Some(Err(anyhow::anyhow!("--set {k}: only data.* settings can change when evaluating a fine-tuned model")));
        };
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("x = {v}")).ok().and_then(|t| t.get("x").cloned()).unwrap_or_else(|| v.clone().into());
        if let Some(d) = table.get_mut("data").and_then(|d| d.as_table_mut()) {
            d.insert(key.to_string(), value);
        }
    }
    Some(toml::to_string(&table).map_err(Into::into).and_then(|t| FinetuneConfig::from_toml(&t)))
}

/// `strata eval` on a fine-tuning run folder.
pub fn evaluate(dir: &Path, cfg: &FinetuneConfig) -> Result<run::FinetuneEval> {
    if is_moirai(&cfg.model_dir()) { moirai::evaluate(cfg, dir) } else { ttm::evaluate(cfg, dir) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msft_table_holds_only_msfts_settings() {
        let cfg = FinetuneConfig::new(Method::Msft, PathBuf::from("ttm-r2"), "ettm1");
        let text = cfg.to_toml();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut keys: Vec<&str> = table["msft"].as_table().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["adapters", "aggregator", "lora", "lora_alpha", "lora_dropout", "lora_rank", "scales", "weighted", "within_scale"]);
        assert_eq!(FinetuneConfig::from_toml(&text).unwrap(), cfg);
        // Prompts and AdaLoRA belong to their methods' top-level keys.
        let bad = [("prompt_tokens", text.replace("[msft]\n", "[msft]\nprompt_tokens = 4\n")), ("adalora", format!("{text}\n[msft.adalora]\ninit_rank = 4\n"))];
        for (key, bad) in bad {
            let err = FinetuneConfig::from_toml(&bad).unwrap_err().to_string();
            assert!(err.contains(&format!("unknown field `{key}`")), "{key}: {err}");
        }
        // The default that older run folders hold is read as before.
        assert_eq!(FinetuneConfig::from_toml(&text.replace("[msft]\n", "[msft]\nprompt_tokens = 0\n")).unwrap(), cfg);
        let prompt = FinetuneConfig::from_toml(&format!("prompt_tokens = 4\n{text}")).unwrap();
        assert_eq!(prompt.prompt_tokens, Some(4));
        assert_eq!(prompt.msft.prompt_tokens, 0);
    }
}
