//! The settings of `strata pretrain`: the MOIRAI module to build, the corpus, and uni2ts's
//! pretraining recipe.

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use strata_data::{registry, spatial};
use strata_models::MoiraiConfig;

/// A pretraining run: `[model]` is the `MoiraiModule` config, `[corpus]` what to train on,
/// `[train]` how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub name: String,
    pub model: MoiraiConfig,
    #[serde(default)]
    pub corpus: CorpusConfig,
    #[serde(default)]
    pub train: PretrainSettings,
}

/// The corpus: registry datasets (long-sequence and spatio-temporal), training rows only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorpusConfig {
    /// Datasets to train on (default: every registered one that is on disk).
    pub datasets: Vec<String>,
    /// Datasets never read (held out for zero-shot evaluation).
    pub leave_out: Vec<String>,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        CorpusConfig { datasets: all_datasets(), leave_out: vec![] }
    }
}

/// uni2ts's pretraining settings (its `moirai_small` defaults where they fit a CPU run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainSettings {
    pub steps: usize,
    /// Packed rows per step.
    pub batch_size: usize,
    /// Tokens per packed row (at most the model's `max_seq_len`).
    pub max_length: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Linear warm-up steps, then cosine decay to 0.
    pub warmup_steps: usize,
    pub grad_clip: f64,
    /// Fewest patches per variate in a sample.
    pub min_patches: usize,
    pub min_mask_ratio: f64,
    pub max_mask_ratio: f64,
    /// Most variates per sample.
    pub max_dim: usize,
    pub seed: u64,
    /// Steps between checkpoints (and validation).
    pub checkpoint_every: usize,
    /// Validation batches drawn (seeded, fixed) from the corpus's validation rows.
    pub val_batches: usize,
}

impl Default for PretrainSettings {
    fn default() -> Self {
        PretrainSettings {
            steps: 2000,
            batch_size: 8,
            max_length: 512,
            lr: 1e-3,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.98,
            warmup_steps: 200,
            grad_clip: 1.0,
            min_patches: 2,
            min_mask_ratio: 0.15,
            max_mask_ratio: 0.5,
            max_dim: 128,
            seed: 2024,
            checkpoint_every: 100,
            val_batches: 4,
        }
    }
}

fn all_datasets() -> Vec<String> {
    registry::DATASETS.iter().map(|d| d.name.to_string()).chain(spatial::SPATIAL.iter().map(|s| s.name.to_string())).collect()
}

impl PretrainConfig {
    pub fn from_table(table: toml::Table) -> Result<Self> {
        let c: PretrainConfig = table.try_into().map_err(|e: toml::de::Error| anyhow!("{e}"))?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<()> {
        let t = &self.train;
        let known = all_datasets();
        for name in self.corpus.datasets.iter().chain(&self.corpus.leave_out) {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                bail!("key `corpus`: unknown dataset `{name}` (known: {})", known.join(", "));
            }
        }
        if self.model.d_model % 64 != 0 {
            bail!("key `model.d_model`: MOIRAI uses heads of 64, got {}", self.model.d_model);
        }
        if t.max_length == 0 || t.max_length > self.model.max_seq_len {
            bail!("key `train.max_length`: {} must be in 1..={} (model.max_seq_len)", t.max_length, self.model.max_seq_len);
        }
        if t.steps == 0 || t.batch_size == 0 || t.checkpoint_every == 0 || !(t.lr > 0.0) || t.min_patches == 0 || t.max_dim == 0 {
            bail!("key `train`: steps, batch_size, checkpoint_every, lr, min_patches and max_dim must be positive");
        }
        if !(0.0 < t.min_mask_ratio && t.min_mask_ratio <= t.max_mask_ratio && t.max_mask_ratio < 1.0) {
            bail!("key `train`: need 0 < min_mask_ratio <= max_mask_ratio < 1, got {} and {}", t.min_mask_ratio, t.max_mask_ratio);
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }

    /// The datasets actually read: `datasets` minus `leave_out`.
    pub fn corpus_names(&self) -> Vec<String> {
        let out = |n: &String| self.corpus.leave_out.iter().any(|l| l.eq_ignore_ascii_case(n));
        self.corpus.datasets.iter().filter(|n| !out(n)).map(|n| n.to_ascii_lowercase()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_datasets_and_bad_settings_are_named() {
        let mut table: toml::Table = toml::from_str("name = \"x\"\n[model]\nd_model = 64\nnum_layers = 1\npatch_sizes = [8]\nmax_seq_len = 512\n").unwrap();
        assert!(PretrainConfig::from_table(table.clone()).is_ok());
        table.insert("corpus".into(), toml::from_str::<toml::Value>("leave_out = [\"ettx9\"]").unwrap());
        let e = PretrainConfig::from_table(table).unwrap_err().to_string();
        assert!(e.contains("unknown dataset `ettx9`"), "{e}");
        let e = PretrainConfig::from_table(toml::from_str("name = \"x\"\n[model]\nd_model = 64\nnum_layers = 1\npatch_sizes = [8]\nmax_seq_len = 512\n[train]\nmax_length = 513\n").unwrap()).unwrap_err().to_string();
        assert!(e.contains("train.max_length"), "{e}");
    }
}
