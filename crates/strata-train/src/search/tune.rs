//! Hyper-parameter search (`strata tune`): random or grid search over `--set`-style keys of a
//! run config, with synchronous successive halving (rungs of `min_epochs * eta^k` epochs, the
//! best `1/eta` of each rung go on), seeded, within an optional time budget. Every trial is a
//! normal run folder; trials are ranked by their best validation loss, never by test metrics,
//! and the best configuration is written back as TOML.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::engine::checkpoint::write_atomic;
use crate::config::RunConfig;
use crate::tasks::forecasting::{TrainOptions, train, train_epochs};

/// The space file: `[search]` settings and a `[space]` table of keys to vary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceFile {
    #[serde(default)]
    pub search: SearchConfig,
    pub space: toml::Table,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// `random` or `grid`.
    pub method: String,
    pub trials: usize,
    pub seed: u64,
    /// Stop starting trials and rungs after this many seconds (trials under way finish).
    pub budget_seconds: Option<f64>,
    /// Successive halving; absent: every trial trains its full epochs.
    pub halving: Option<Halving>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig { method: "random".into(), trials: 20, seed: 2021, budget_seconds: None, halving: None }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halving {
    /// Epochs of the first rung.
    pub min_epochs: usize,
    /// Keep the best 1/eta of each rung; rungs grow by eta.
    pub eta: usize,
}

/// One dimension of the space.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Choice(Vec<toml::Value>),
    Uniform(f64, f64),
    LogUniform(f64, f64),
    Int(i64, i64),
}

impl Dim {
    fn parse(key: &str, v: &toml::Value) -> Result<Dim> {
        let t = v.as_table().ok_or_else(|| anyhow!("space key `{key}`: expected {{ choice = [...] }}, {{ uniform = [lo, hi] }}, {{ log_uniform = [lo, hi] }} or {{ int = [lo, hi] }}"))?;
        if t.len() != 1 {
            bail!("space key `{key}`: exactly one of choice, uniform, log_uniform, int");
        }
        let (kind, arg) = t.iter().next().expect("one entry");
        let list = arg.as_array().ok_or_else(|| anyhow!("space key `{key}`: `{kind}` takes a list"))?;
        let pair = || -> Result<(f64, f64)> {
            let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
            match list.as_slice() {
                [a, b] => match (num(a), num(b)) {
                    (Some(a), Some(b)) if a < b => Ok((a, b)),
                    _ => bail!("space key `{key}`: `{kind}` needs [low, high] numbers with low < high"),
                },
                _ => bail!("space key `{key}`: `{kind}` needs [low, high]"),
            }
        };
        Ok(match kind.as_str() {
            "choice" if !list.is_empty() => Dim::Choice(list.clone()),
            "choice" => bail!("space key `{key}`: empty choice"),
            "uniform" => {
                let (a, b) = pair()?;
                Dim::Uniform(a, b)
            }
            "log_uniform" => match pair()? {
                (a, b) if a > 0.0 => Dim::LogUniform(a, b),
                _ => bail!("space key `{key}`: log_uniform needs a positive low end"),
            },
            "int" => {
                let (a, b) = pair()?;
                Dim::Int(a as i64, b as i64)
            }
            other => bail!("space key `{key}`: unknown kind `{other}` (choice, uniform, log_uniform, int)"),
        })
    }

    fn sample(&self, rng: &mut impl Rng) -> toml::Value {
        match self {
            Dim::Choice(v) => v[rng.random_range(0..v.len())].clone(),
            Dim::Uniform(a, b) => toml::Value::Float(rng.random_range(*a..*b)),
            Dim::LogUniform(a, b) => toml::Value::Float(rng.random_range(a.ln()..b.ln()).exp()),
            Dim::Int(a, b) => toml::Value::Integer(rng.random_range(*a..=*b)),
        }
    }
}

/// The settings of every trial: `trials` random draws, or the grid's combinations (in order,
/// at most `trials`). Grid search takes `choice` and `int` dimensions only.
pub fn draw_trials(space: &[(String, Dim)], search: &SearchConfig) -> Result<Vec<Vec<(String, toml::Value)>>> {
    match search.method.as_str() {
        "random" => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(search.seed);
            Ok((0..search.trials).map(|_| space.iter().map(|(k, d)| (k.clone(), d.sample(&mut rng))).collect()).collect())
        }
        "grid" => {
            let mut axes = Vec::new();
            for (k, d) in space {
                axes.push(match d {
                    Dim::Choice(v) => v.clone(),
                    Dim::Int(a, b) => (*a..=*b).map(toml::Value::Integer).collect(),
                    _ => bail!("space key `{k}`: grid search needs choice or int values"),
                });
            }
            let mut out: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
            for ((k, _), values) in space.iter().zip(&axes) {
                out = out.into_iter().flat_map(|t| values.iter().map(move |v| [t.clone(), vec![(k.clone(), v.clone())]].concat())).collect();
            }
            out.truncate(search.trials);
            Ok(out)
        }
        other => bail!("search.method `{other}`: random or grid"),
    }
}

/// The rungs' epoch counts: `min_epochs * eta^k` below `epochs`, then `epochs`.
pub fn rungs(halving: Option<Halving>, epochs: usize) -> Vec<usize> {
    let Some(h) = halving else { return vec![epochs] };
    let mut r = Vec::new();
    let mut e = h.min_epochs.max(1);
    while e < epochs {
        r.push(e);
        e *= h.eta.max(2);
    }
    r.push(epochs);
    r
}

/// One trial's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub id: usize,
    pub dir: PathBuf,
    pub settings: Vec<(String, String)>,
    /// Epochs trained, and the rung it stopped at (0-based).
    pub epochs: usize,
    pub rung: usize,
    pub best_val: Option<f64>,
    /// `finished`, `stopped` (halved out), `skipped` (budget), `failed: <reason>`.
    pub status: String,
    pub seconds: f64,
}

/// What `tune.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneResults {
    pub search: SearchConfig,
    pub rungs: Vec<usize>,
    /// Trials sorted by validation loss (best first; failed and skipped last).
    pub trials: Vec<Trial>,
    pub best: Option<usize>,
    pub best_config: Option<PathBuf>,
    pub wall_seconds: f64,
}

/// Run the search: base config `config` (+ `sets`), space file `space_path`, trial folders in
/// `out/trial_NNN`; writes `tune.json`, `tune.csv` and `best.toml` in `out`.
pub fn tune(config: &Path, sets: &[String], space_path: &Path, trials: Option<usize>, out: &Path) -> Result<TuneResults> {
    let wall = Instant::now();
    let text = std::fs::read_to_string(space_path).with_context(|| format!("cannot read {}", space_path.display()))?;
    let file: SpaceFile = toml::from_str(&text).map_err(|e| anyhow!("{}: {}", space_path.display(), e.message()))?;
    let mut search = file.search.clone();
    if let Some(n) = trials {
        search.trials = n;
    }
    let space: Vec<(String, Dim)> = file.space.iter().map(|(k, v)| Ok((k.clone(), Dim::parse(k, v)?))).collect::<Result<_>>()?;
    let base = RunConfig::load(config, sets)?;
    let drawn = draw_trials(&space, &search)?;
    // Every trial's config must parse before anything trains.
    let mut cfgs = Vec::new();
    for (i, t) in drawn.iter().enumerate() {
        let mut all: Vec<String> = sets.to_vec();
        all.extend(t.iter().map(|(k, v)| format!("{k}={v}")));
        let mut cfg = RunConfig::load(config, &all).with_context(|| format!("trial {}", i + 1))?;
        cfg.name = Some(format!("trial_{:03}", i + 1));
        cfgs.push(cfg);
    }
    let rungs = rungs(search.halving, base.train.epochs);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut records: Vec<Trial> = drawn
        .iter()
        .enumerate()
        .map(|(i, t)| Trial {
            id: i + 1,
            dir: out.join(format!("trial_{:03}", i + 1)),
            settings: t.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
            epochs: 0,
            rung: 0,
            best_val: None,
            status: "skipped".into(),
            seconds: 0.0,
        })
        .collect();
    let over_budget = || search.budget_seconds.is_some_and(|b| wall.elapsed().as_secs_f64() > b);
    let mut alive: Vec<usize> = (0..cfgs.len()).collect();
    for (k, &epochs) in rungs.iter().enumerate() {
        let last = k + 1 == rungs.len();
        for &i in &alive {
            if over_budget() {
                break;
            }
            let started = Instant::now();
            eprintln!("trial {}/{} rung {} ({epochs} epochs): {}", i + 1, cfgs.len(), k + 1, fmt_settings(&records[i].settings));
            let outcome = if last {
                train(&cfgs[i], &records[i].dir, TrainOptions { fresh: false }).map(|r| (r.training.epochs_run, r.training.history.iter().map(|e| e.val_loss).fold(f64::INFINITY, f64::min)))
            } else {
                train_epochs(&cfgs[i], &records[i].dir, false, epochs).map(|s| (s.epochs_done, s.best_val.unwrap_or(f64::INFINITY)))
            };
            let r = &mut records[i];
            r.seconds += started.elapsed().as_secs_f64();
            r.rung = k;
            match outcome {
                Ok((e, v)) => {
                    (r.epochs, r.best_val, r.status) = (e, Some(v), if last { "finished".into() } else { "paused".into() });
                }
                Err(e) => r.status = format!("failed: {e:#}"),
            }
        }
        if last {
            break;
        }
        // The best 1/eta of this rung go on.
        let eta = search.halving.map_or(1, |h| h.eta.max(2));
        let mut ranked: Vec<usize> = alive.iter().copied().filter(|&i| records[i].status == "paused").collect();
        ranked.sort_by(|&a, &b| records[a].best_val.partial_cmp(&records[b].best_val).unwrap_or(std::cmp::Ordering::Equal));
        let keep = ranked.len().div_ceil(eta);
        for &i in &ranked[keep..] {
            records[i].status = "stopped".into();
        }
        alive = ranked[..keep].to_vec();
    }
    for r in records.iter_mut().filter(|r| r.status == "paused") {
        r.status = "stopped (budget)".into();
    }
    records.sort_by(|a, b| {
        let key = |t: &Trial| (t.best_val.is_none(), t.status != "finished", t.best_val.unwrap_or(f64::INFINITY));
        let (ka, kb) = (key(a), key(b));
        (ka.0, ka.1).cmp(&(kb.0, kb.1)).then(ka.2.partial_cmp(&kb.2).unwrap_or(std::cmp::Ordering::Equal))
    });
    let best = records.first().filter(|t| t.status == "finished").map(|t| t.id);
    let best_config = match best {
        Some(id) => {
            let mut cfg = cfgs[id - 1].clone();
            cfg.name = None;
            let path = out.join("best.toml");
            let header = format!("# strata tune: best of {} trials by validation loss (trial {id}: {})\n", cfgs.len(), fmt_settings(&records[0].settings));
            write_atomic(&path, format!("{header}{}", cfg.to_toml()).as_bytes())?;
            Some(path)
        }
        None => None,
    };
    let results = TuneResults { search, rungs, trials: records, best, best_config, wall_seconds: wall.elapsed().as_secs_f64() };
    crate::engine::record::write_json(&out.join("tune.json"), &results)?;
    write_atomic(&out.join("tune.csv"), csv_table(&results).as_bytes())?;
    Ok(results)
}

pub fn fmt_settings(s: &[(String, String)]) -> String {
    s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn csv_table(r: &TuneResults) -> String {
    let keys: Vec<&str> = r.trials.first().map_or(Vec::new(), |t| t.settings.iter().map(|(k, _)| k.as_str()).collect());
    let mut out = format!("rank,trial,{},epochs,best_val_loss,status,seconds\n", keys.join(","));
    for (i, t) in r.trials.iter().enumerate() {
        let vals: Vec<&str> = t.settings.iter().map(|(_, v)| v.as_str()).collect();
        let status = t.status.replace([',', '\n'], " ");
        out.push_str(&format!("{},{},{},{},{},{status},{:.1}\n", i + 1, t.id, vals.join(","), t.epochs, t.best_val.map_or(String::new(), |v| format!("{v:.6}")), t.seconds));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(text: &str) -> Vec<(String, Dim)> {
        let t: toml::Table = toml::from_str(text).unwrap();
        t.iter().map(|(k, v)| (k.clone(), Dim::parse(k, v).unwrap())).collect()
    }

    #[test]
    fn rungs_grow_by_eta_and_end_at_the_epochs() {
        assert_eq!(rungs(Some(Halving { min_epochs: 1, eta: 3 }), 10), vec![1, 3, 9, 10]);
        assert_eq!(rungs(Some(Halving { min_epochs: 2, eta: 2 }), 8), vec![2, 4, 8]);
        assert_eq!(rungs(None, 10), vec![10]);
    }

    #[test]
    fn grid_is_the_cartesian_product_in_order() {
        let space = dims("\"train.lr\" = { choice = [0.1, 0.01] }\n\"model.individual\" = { choice = [true, false] }\n\"model.moving_avg\" = { int = [3, 4] }");
        let s = SearchConfig { method: "grid".into(), trials: 100, ..Default::default() };
        let g = draw_trials(&space, &s).unwrap();
        assert_eq!(g.len(), 8);
        // Keys are sorted by the TOML table: model.individual, model.moving_avg, train.lr.
        assert_eq!(g[0].iter().map(|(_, v)| v.to_string()).collect::<Vec<_>>(), ["true", "3", "0.1"]);
        assert_eq!(g[1].iter().map(|(_, v)| v.to_string()).collect::<Vec<_>>(), ["true", "3", "0.01"]);
        assert_eq!(g[7].iter().map(|(_, v)| v.to_string()).collect::<Vec<_>>(), ["false", "4", "0.01"]);
        let s = SearchConfig { method: "grid".into(), trials: 3, ..Default::default() };
        assert_eq!(draw_trials(&space, &s).unwrap().len(), 3);
        let e = draw_trials(&dims("lr = { uniform = [0, 1] }"), &s).unwrap_err();
        assert!(e.to_string().contains("grid search needs choice or int"), "{e}");
    }

    #[test]
    fn random_draws_are_seeded_and_in_range() {
        let space = dims("lr = { log_uniform = [1e-4, 1e-2] }\nk = { int = [1, 3] }\nw = { uniform = [0.5, 0.6] }");
        let s = SearchConfig { trials: 200, seed: 7, ..Default::default() };
        let a = draw_trials(&space, &s).unwrap();
        assert_eq!(format!("{a:?}"), format!("{:?}", draw_trials(&space, &s).unwrap()));
        let b = draw_trials(&space, &SearchConfig { seed: 8, ..s.clone() }).unwrap();
        assert_ne!(format!("{a:?}"), format!("{b:?}"));
        let (mut below, mut ks) = (0, [0; 3]);
        for t in &a {
            let lr = t[1].1.as_float().unwrap();
            assert!((1e-4..1e-2).contains(&lr));
            below += (lr < 1e-3) as usize; // log-uniform: half the draws below the geometric midpoint
            ks[(t[0].1.as_integer().unwrap() - 1) as usize] += 1;
            assert!((0.5..0.6).contains(&t[2].1.as_float().unwrap()));
        }
        assert!((70..130).contains(&below), "{below}");
        assert!(ks.iter().all(|&n| n > 40), "{ks:?}");
    }

    #[test]
    fn bad_space_entries_are_named() {
        for (text, want) in [("lr = 3", "expected"), ("lr = { choice = [] }", "empty choice"), ("lr = { uniform = [2, 1] }", "low < high"), ("lr = { normal = [0, 1] }", "unknown kind"), ("lr = { log_uniform = [0, 1] }", "positive")] {
            let t: toml::Table = toml::from_str(text).unwrap();
            let (k, v) = t.iter().next().unwrap();
            let e = Dim::parse(k, v).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("lr"), "{text}: {e}");
        }
    }
}
