//! Helpers shared by strata-train's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use strata_models::ModelConfig;

/// The timestamp of hourly row `t` from 2021-03-01 00:00.
pub fn date(t: usize) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2021, 3, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("a date");
    (start + chrono::Duration::hours(t as i64)).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A temporary folder for one test (`<prefix>-<name>-<pid>`), created.
pub fn dir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every model that declares a covariate kind, small where the default is large, each checked
/// to be among them by name (`want`).
pub fn covariate_models(want: &[&str]) -> Vec<ModelConfig> {
    let models: Vec<ModelConfig> = ModelConfig::all_defaults()
        .into_iter()
        .filter(|m| {
            let k = m.covariates();
            k.past || k.future || k.statics
        })
        .map(|m| match m {
            ModelConfig::Itransformer(c) => ModelConfig::Itransformer(strata_models::ITransformerConfig { d_model: 32, n_heads: 4, d_ff: 64, ..c }),
            // The final layer norm makes TiDE's temporal decoder a constant (tide.rs): without it
            // the covariates reach the forecast, and the guards check they are read where known.
            ModelConfig::Tide(c) => ModelConfig::Tide(strata_models::TiDEConfig { final_norm: false, ..c }),
            other => other,
        })
        .collect();
    let names: Vec<&str> = models.iter().map(|m| m.name()).collect();
    for w in want {
        assert!(names.contains(w), "{w} declares covariates: {names:?}");
    }
    models
}
