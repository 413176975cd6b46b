//! Run configuration: one TOML file with `[data]`, `[model]`, `[train]` and `[eval]` tables,
//! plus `--set key=value` overrides. Unknown keys and bad values are errors naming the key.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use strata_data::DataConfig;
use strata_models::ModelConfig;

use crate::engine::schedule::{Rate, Schedule};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Run name; the default output folder is `runs/<name>`.
    #[serde(default)]
    pub name: Option<String>,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    /// `strata online`: the stream walk after the warm-up (docs/online.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<crate::online::settings::OnlineConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8); `weight_decay` is L2 on the gradient.
    Adam,
    /// AdamW; `weight_decay` is decoupled.
    Adamw,
    /// Plain stochastic gradient descent (no momentum): `w -= lr * grad`; `weight_decay` is L2
    /// on the gradient. The optimiser whose federated average is exactly a centralised step.
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    Mse,
    Mae,
}

/// The `[train]` table. Defaults follow Time-Series-Library's `run.py`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Batch size for validation and test (every window is evaluated whatever its value).
    pub eval_batch_size: usize,
    pub lr: f64,
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Share of the steps spent warming up, for `onecycle`.
    pub pct_start: f64,
    /// Epochs at which `multistep` multiplies the rate by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    /// Early stopping: epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    pub loss: Loss,
    /// Distribution heads: train on beta-NLL (each point's NLL weighted by its predicted variance
    /// to this power, held constant; 0 = plain NLL, 1 = the mean learns as under MSE).
    pub nll_beta: f64,
    pub seed: u64,
    /// Stop each training epoch after this many steps (quick checks; not for results).
    pub max_steps_per_epoch: Option<usize>,
    /// FedProx's `mu`: add `mu/2 * ||w - w0||^2` (w0: the weights this training session started
    /// from, e.g. a federated round's global model) to every step's loss; 0 adds nothing.
    pub proximal_mu: f64,
    /// Check every gradient after each backward pass and stop at the first non-finite one,
    /// naming the parameter, the step and its windows (PyTorch's `detect_anomaly`; costs a read
    /// of the gradients per step). A non-finite loss is always diagnosed.
    pub detect_anomaly: bool,
}

impl TrainConfig {
    /// The learning rate of this table's schedule over a run.
    pub fn rate(&self) -> Rate {
        Rate::Epochs { schedule: self.schedule, lr: self.lr, epochs: self.epochs, pct_start: self.pct_start, milestones: self.milestones.clone(), gamma: self.gamma }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            eval_batch_size: 256,
            lr: 1e-4,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            schedule: Schedule::Type1,
            pct_start: 0.3,
            milestones: vec![],
            gamma: 0.5,
            patience: 3,
            grad_clip: None,
            loss: Loss::Mse,
            nll_beta: 0.0,
            seed: 2021,
            max_steps_per_epoch: None,
            proximal_mu: 0.0,
            detect_anomaly: false,
        }
    }
}

/// The `[eval]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Also report metrics on the original (unscaled) values.
    pub inverse: bool,
}

impl RunConfig {
    /// Read a TOML file and apply `key=value` overrides (dotted keys, TOML values; a value that
    /// is not valid TOML is taken as a string).
    pub fn load(path: &Path, overrides: &[String]) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        Self::from_table(table).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> Result<RunConfig> {
        Self::from_table(toml::from_str(text)?)
    }

    fn from_table(table: toml::Table) -> Result<RunConfig> {
        let cfg: RunConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            anyhow!("key `{path}`: {}", inner.lines().next().unwrap_or_default())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        // `train.epochs = 0` is allowed: the run folder then holds the seeded initial model.
        let checks: [(&str, bool); 7] = [
            ("train.proximal_mu", t.proximal_mu >= 0.0 && t.proximal_mu.is_finite()),
            ("train.batch_size", t.batch_size > 0),
            ("train.eval_batch_size", t.eval_batch_size > 0),
            ("train.lr", t.lr > 0.0 && t.lr.is_finite()),
            ("train.pct_start", t.pct_start > 0.0 && t.pct_start < 1.0),
            ("train.nll_beta", (0.0..=1.0).contains(&t.nll_beta)),
            ("data.seq_len", self.data.seq_len > 0 && self.data.pred_len > 0),
        ];
        for (key, ok) in checks {
            if !ok {
                bail!("key `{key}`: value out of range");
            }
        }
        let probabilistic = self.model.capabilities().probabilistic;
        if t.nll_beta != 0.0 && !probabilistic {
            bail!("key `train.nll_beta`: only a model with a distribution head trains on an NLL; this model has a point head (set model.distribution to give it one)");
        }
        if t.loss != Loss::Mse && probabilistic {
            bail!("key `train.loss`: a model with a distribution head trains on its NLL (train.nll_beta tunes it), so `{:?}` would be ignored; train.loss applies to point heads", t.loss);
        }
        if let Some(o) = &self.online {
            o.validate()?;
        }
        if let Some(c) = t.grad_clip {
            if !(c > 0.0) {
                bail!("key `train.grad_clip`: must be positive, got {c}");
            }
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }
}

/// Apply one `a.b.c=value` override to a TOML table.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<()> {
    let (key, raw) = spec.split_once('=').ok_or_else(|| anyhow!("override `{spec}` is not key=value"))?;
    let key = key.trim();
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {}", raw.trim())) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.trim().to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            bail!("override `{spec}`: empty key segment");
        }
        if i + 1 == parts.len() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let next = cur.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        cur = next
            .as_table_mut()
            .ok_or_else(|| anyhow!("override `{spec}`: `{}` is not a table", parts[..=i].join(".")))?;
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[data]
dataset = "etth1"
seq_len = 336
pred_len = 96
[model]
name = "dlinear"
moving_avg = 25
[train]
lr = 0.005
"#;

    #[test]
    fn parses_and_defaults() {
        let c = RunConfig::from_toml_str(BASE).unwrap();
        assert_eq!(c.data.seq_len, 336);
        assert_eq!(c.train.lr, 0.005);
        assert_eq!(c.train.batch_size, 32);
        assert_eq!(c.model.name(), "dlinear");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = RunConfig::from_toml_str(&BASE.replace("lr = 0.005", "lr = 0.005\nlearning_rate = 1")).unwrap_err();
        assert!(e.to_string().contains("learning_rate"), "{e}");
        let e = RunConfig::from_toml_str(&BASE.replace("moving_avg = 25", "moving_avg = 25\nkernel = 3")).unwrap_err();
        assert!(e.to_string().contains("kernel"), "{e}");
        let e = RunConfig::from_toml_str(&BASE.replace("\"dlinear\"", "\"dlinearx\"")).unwrap_err();
        assert!(e.to_string().contains("dlinearx"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = RunConfig::from_toml_str(&BASE.replace("seq_len = 336", "seq_len = \"long\"")).unwrap_err();
        assert!(e.to_string().starts_with("key `data.seq_len`"), "{e}");
        let e = RunConfig::from_toml_str(&BASE.replace("lr = 0.005", "lr = -1.0")).unwrap_err();
        assert!(e.to_string().contains("train.lr"), "{e}");
        let e = RunConfig::from_toml_str(&BASE.replace("lr = 0.005", "lr = 0.005\nnll_beta = 1.5")).unwrap_err();
        assert!(e.to_string().contains("train.nll_beta"), "{e}");
        // DLinear has a point head: beta-NLL would be silently ignored, so it is refused.
        let e = RunConfig::from_toml_str(&BASE.replace("lr = 0.005", "lr = 0.005\nnll_beta = 1.0")).unwrap_err();
        assert!(e.to_string().contains("train.nll_beta") && e.to_string().contains("point head"), "{e}");
        // A distribution head trains on its NLL: an MAE loss would be silently ignored, so it is refused.
        let normal = BASE.replace("\"dlinear\"", "\"transformer\"\ndistribution = \"normal\"").replace("moving_avg = 25\n", "");
        RunConfig::from_toml_str(&normal).unwrap();
        let e = RunConfig::from_toml_str(&normal.replace("lr = 0.005", "lr = 0.005\nloss = \"mae\"")).unwrap_err();
        assert!(e.to_string().contains("train.loss") && e.to_string().contains("distribution head"), "{e}");
    }

    #[test]
    fn overrides_apply_with_types() {
        let mut t: toml::Table = toml::from_str(BASE).unwrap();
        apply_override(&mut t, "train.lr=1e-3").unwrap();
        apply_override(&mut t, "data.dataset=ettm1").unwrap();
        apply_override(&mut t, "model.individual=true").unwrap();
        let c = RunConfig::from_table(t).unwrap();
        assert_eq!(c.train.lr, 1e-3);
        assert_eq!(c.data.dataset, "ettm1");
        let ModelConfig::Dlinear(d) = c.model else { panic!() };
        assert!(d.individual);
        let mut t: toml::Table = toml::from_str(BASE).unwrap();
        assert!(apply_override(&mut t, "train.lr.x=1").is_err());
        assert!(apply_override(&mut t, "nokey").is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let c = RunConfig::from_toml_str(BASE).unwrap();
        assert_eq!(RunConfig::from_toml_str(&c.to_toml()).unwrap(), c);
    }
}
