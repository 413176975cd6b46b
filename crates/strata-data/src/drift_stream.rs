//! A SYNTHETIC stream with known concept drift, for measuring drift detectors and online
//! updates (`strata synth --drift-stream`). Never report numbers on it as results on real data.
//!
//! `channels` hourly series. Before `abrupt` every channel is a daily cycle (amplitude 1, its
//! own phase) plus a weekly cycle (0.3) plus AR(1) noise (`phi` 0.8, innovation sd `noise`).
//! At row `abrupt` the concept changes at once: each channel's level jumps by `shift` and its
//! daily amplitude doubles. From row `gradual` to `gradual + ramp` the series moves linearly to
//! a third concept: the daily cycle shifted by 6 hours and each channel mixed with the next
//! (0.5 of it). The change points are written beside the series.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::DataError;

/// Generator settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftStreamConfig {
    pub rows: usize,
    pub channels: usize,
    /// Row of the abrupt change.
    pub abrupt: usize,
    /// Level jump at the abrupt change.
    pub shift: f64,
    /// First row of the gradual change, and its length in rows.
    pub gradual: usize,
    pub ramp: usize,
    pub noise: f64,
    pub seed: u64,
}

impl Default for DriftStreamConfig {
    fn default() -> Self {
        DriftStreamConfig { rows: 12_000, channels: 3, abrupt: 6_000, shift: 2.0, gradual: 9_000, ramp: 1_000, noise: 0.3, seed: 2021 }
    }
}

/// The series, `[rows][channels]`.
pub fn generate(cfg: &DriftStreamConfig) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let innovation = Normal::new(0.0, cfg.noise.max(0.0)).expect("finite noise");
    let c = cfg.channels;
    let mut ar = vec![0.0; c];
    let tau = std::f64::consts::TAU;
    (0..cfg.rows)
        .map(|t| {
            for a in ar.iter_mut() {
                *a = 0.8 * *a + innovation.sample(&mut rng);
            }
            let concept = |k: usize, hours_late: f64, amp: f64, level: f64| {
                let phase = k as f64 * 2.0;
                let h = t as f64 - hours_late;
                level + amp * (tau * (h + phase) / 24.0).sin() + 0.3 * (tau * h / 168.0).sin()
            };
            let after_abrupt = t >= cfg.abrupt;
            let w = if t < cfg.gradual { 0.0 } else { ((t - cfg.gradual) as f64 / cfg.ramp.max(1) as f64).min(1.0) };
            let (amp, level) = if after_abrupt { (2.0, cfg.shift) } else { (1.0, 0.0) };
            let second: Vec<f64> = (0..c).map(|k| concept(k, 0.0, amp, level)).collect();
            let third: Vec<f64> = (0..c).map(|k| concept(k, 6.0, amp, level) + 0.5 * concept((k + 1) % c, 6.0, amp, 0.0)).collect();
            (0..c).map(|k| (1.0 - w) * second[k] + w * third[k] + ar[k]).collect()
        })
        .collect()
}

/// Write `drift.csv` (TSLib layout: `date`, `s0..`, the last column `OT`) and `drift.json`
/// (the settings and change points) into `dir`.
pub fn write(cfg: &DriftStreamConfig, dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let rows = generate(cfg);
    let c = cfg.channels;
    let mut csv = String::from("date");
    for k in 0..c {
        csv += &if k + 1 == c { ",OT".to_string() } else { format!(",s{k}") };
    }
    csv.push('\n');
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 6).expect("date").and_hms_opt(0, 0, 0).expect("time");
    for (t, row) in rows.iter().enumerate() {
        csv += &(start + chrono::Duration::hours(t as i64)).format("%Y-%m-%d %H:%M:%S").to_string();
        for v in row {
            csv += &format!(",{v:.6}");
        }
        csv.push('\n');
    }
    let meta = serde_json::json!({
        "synthetic": true,
        "settings": cfg,
        "changes": [{"kind": "abrupt", "row": cfg.abrupt}, {"kind": "gradual", "row": cfg.gradual, "ramp": cfg.ramp}],
    });
    let put = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).map_err(|e| DataError::io(&dir.join(name), e));
    put("drift.csv", csv.as_bytes())?;
    put("drift.json", serde_json::to_string_pretty(&meta).expect("json").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changes_sit_where_the_settings_say() {
        let cfg = DriftStreamConfig { noise: 0.0, ..Default::default() };
        let s = generate(&cfg);
        // Without noise, a day's mean before the abrupt change is the weekly term only (|.| <= 0.3);
        // after it, the level shift (2) dominates.
        let day_mean = |from: usize| s[from..from + 24].iter().map(|r| r[0]).sum::<f64>() / 24.0;
        assert!(day_mean(5_000).abs() <= 0.31);
        assert!((day_mean(6_100) - 2.0).abs() <= 0.31);
        // The gradual change: halfway through the ramp the series is the average of the two
        // concepts, which differ, so it is neither.
        assert_eq!(s.len(), 12_000);
        assert_eq!(generate(&cfg), s, "deterministic");
        assert_ne!(s[9_500][0], s[8_999][0]);
    }
}
