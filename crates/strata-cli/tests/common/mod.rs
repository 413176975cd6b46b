//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `strata` binary with the data root set.
pub fn strata() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env("STRATA_DATA", data_root());
    c
}

/// `$STRATA_DATA`, else the `shared/data` folder beside the repository.
pub fn data_root() -> PathBuf {
    std::env::var_os("STRATA_DATA").map(Into::into).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// A fresh temporary folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `config` as `<dir>/<name>.toml`, train it into `<dir>/<name>` and return that run folder.
pub fn train(dir: &Path, name: &str, config: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let run = dir.join(name);
    let out = strata().args(["train", "--config"]).arg(&cfg).arg("--out").arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run
}

/// `<dir>/two.csv`: 600 hourly rows of a sine (`a`) and a trending cosine (`OT`), small enough
/// for fine-tuning tests on the tiny MOIRAI fixture.
pub fn two_series_csv(dir: &Path) -> PathBuf {
    let csv = dir.join("two.csv");
    let mut text = String::from("date,a,OT\n");
    for i in 0..600 {
        let t = i as f64;
        text += &format!("2020-01-{:02} {:02}:00:00,{:.4},{:.4}\n", 1 + i / 24, i % 24, (t * 0.26).sin() * 3.0 + 10.0, (t * 0.13).cos() + 0.01 * t);
    }
    std::fs::write(&csv, text).unwrap();
    csv
}

/// A small seeded generator (xorshift64) for reproducible test campaigns (kill times, bodies).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `strata synth` into `<dir>/synth`: a synthetic sensor graph of `nodes` nodes, 4 days of
/// hourly steps, seed 3. Returns the folder.
pub fn synth_graph(dir: &Path, nodes: usize) -> PathBuf {
    let data = dir.join("synth");
    let out = strata().args(["synth", "--nodes", &nodes.to_string(), "--days", "4", "--steps-per-day", "24", "--seed", "3", "--out"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SYNTHETIC"));
    data
}

/// The `--set` overrides of a small, quick distillation of a [`synth_graph`] folder (a quarter
/// of the locations, a fifth of the windows, two outer and inner iterations, a small MTGNN).
pub fn small_distill_sets(data: &Path) -> Vec<String> {
    vec![
        "data.dataset=\"spatial\"".to_string(),
        format!("data.path=\"{}\"", data.join("signal.npy").display()),
        format!("data.graph=\"{}\"", data.join("graph.csv").display()),
        "data.graph_weights=\"raw\"".into(),
        "data.graph_symmetric=true".into(),
        "data.steps_per_day=24".into(),
        "distill.outer=2".into(),
        "distill.inner=2".into(),
        "distill.subsets=2".into(),
        "distill.batch=8".into(),
        "distill.model_epochs=1".into(),
        "distill.eval_every=1".into(),
        "distill.eval_epochs=2".into(),
        "distill.temporal=0.2".into(),
        "distill.spatial=0.25".into(),
        "distill.model.layers=2".into(),
        "distill.model.conv_channels=8".into(),
        "distill.model.residual_channels=8".into(),
        "distill.model.skip_channels=8".into(),
        "distill.model.end_channels=16".into(),
    ]
}
