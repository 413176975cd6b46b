//! What each subcommand does.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use strata_train::RunConfig;
use strata_train::evaluation::run::evaluate_run;
use strata_train::tasks::forecasting::{TrainOptions, default_run_dir, train};
use strata_train::tasks::vae as generative;

use crate::cli::{Cli, Command, RunArgs, RunOpts, TrainArgs};
use crate::plot;
use crate::print::{datasets, print_fidelity, print_table, print_vae};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(TrainArgs { distilled: Some(dir), opts: RunOpts { out, .. }, epochs, seed, .. }) => {
            let out = out.unwrap_or_else(|| dir.join("train"));
            let device = strata_train::device::training_device();
            let r = strata_distill::run::train_distilled(&dir, &out, epochs, seed, &device)?;
            let (e, t) = (&r.eval, &r.eval.test);
            println!(
                "trained on {} ({} windows x {} locations, {} epochs) in {:.1}s; test on all {} real locations ({} windows): MAE {:.4} RMSE {:.4} RAE {:.4} RRSE {:.4}; peak {:.0} MB -> {}",
                e.source, e.windows, e.locations, e.epochs, e.train_seconds, r.real_locations, r.test_windows, t.mae, t.rmse, t.rae, t.rrse, e.peak_rss_mb, out.display()
            );
        }
        Command::Train(TrainArgs { config, opts: RunOpts { set, out, fresh }, .. }) => {
            let config = config.expect("clap requires --config without --distilled");
            let table = generative::load_table(&config, &set)?;
            if generative::is_vae_table(&table) {
                let cfg = generative::VaeRunConfig::from_table(table).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
                let stem = cfg.name.clone().unwrap_or_else(|| config.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned()));
                let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(stem));
                let r = generative::train_vae(&cfg, &dir, TrainOptions { fresh })?;
                print_vae(&r, &dir);
                return Ok(());
            }
            let cfg = RunConfig::load(&config, &set)?;
            let dir = out.unwrap_or_else(|| default_run_dir(&cfg, &config));
            let r = train(&cfg, &dir, TrainOptions { fresh })?;
            print_table(&r, &dir);
        }
        Command::Online(RunArgs { config, opts: RunOpts { set, out, fresh } }) => {
            let cfg = RunConfig::load(&config, &set)?;
            if cfg.online.is_none() {
                anyhow::bail!("{}: no [online] table: add one (e.g. `[online]` with `strategy = \"ogd\"`) or --set online.strategy=ogd", config.display());
            }
            let dir = out.unwrap_or_else(|| default_run_dir(&cfg, &config));
            let r = strata_train::online::run_online(&cfg, &dir, fresh)?;
            println!(
                "online {} on {} ({} steps, {} reveal): cumulative MSE {:.4} MAE {:.4}; warm-up test MSE {}; {} drift(s){}; {} re-training(s); {:.2} ms/step; {}",
                cfg.online.as_ref().map_or("", |o| o.strategy.name()),
                r.data.dataset,
                r.steps,
                format!("{:?}", cfg.online.as_ref().map(|o| o.reveal).unwrap_or(strata_train::online::Reveal::Immediate)).to_lowercase(),
                r.mse,
                r.mae,
                r.warmup_test_mse.map_or("-".into(), |m| format!("{m:.4}")),
                r.drift_steps.len(),
                if r.drift_steps.is_empty() { String::new() } else { format!(" at steps {:?}", &r.drift_steps[..r.drift_steps.len().min(10)]) },
                r.retrain_steps.len(),
                1e3 * r.seconds_per_step,
                dir.join("online").join("online.json").display()
            );
        }
        Command::Eval { run_dir, set } => {
            let pairs: Vec<(String, String)> = set.iter().filter_map(|o| o.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect();
            if let Some(cfg) = strata_finetune::run_config(&run_dir, &pairs) {
                let cfg = cfg?;
                let e = strata_finetune::evaluate(&run_dir, &cfg)?;
                println!("{} ({}) on {}: test MSE {:.4}  MAE {:.4}  ({} windows, {:.1}s); {}", run_dir.display(), cfg.method.name(), e.data.dataset, e.test_mse, e.test_mae, e.test_windows, e.wall_seconds, run_dir.join("eval.json").display());
                return Ok(());
            }
            let r = evaluate_run(&run_dir, &set)?;
            print_table(&r, &run_dir);
        }
        Command::Forecast { model, input, at, out } => {
            let device = strata_train::device::compute_device();
            let p = strata_train::inference::forecast::Predictor::load(&model, &device)?;
            let q = p.schema.query(&p.schema.read_input(&input)?, at.as_deref())?;
            let f = p.predict(std::slice::from_ref(&q)).remove(0);
            strata_train::inference::forecast::write_csv(&f, &out)?;
            let origin = f.origin.as_deref().map_or(String::new(), |o| format!(" after {o}"));
            println!("{} ({}): {} steps of {:?}{origin} -> {}", model.display(), p.schema.model.name(), f.values.len(), f.columns, out.display());
            if q.filled > 0 {
                println!("filled {} missing context cells ({:?})", q.filled, p.schema.impute);
            }
            if let Some(truth) = &q.truth {
                let (mse, mae, smse, smae) = strata_train::inference::forecast::score(&f, truth, &p.schema);
                println!("the input holds {} of the forecast steps: MSE {mse:.4} MAE {mae:.4} (data units); scaled MSE {smse:.4} MAE {smae:.4}", truth.len());
            }
        }
        Command::Serve { models, addr, max_body, max_concurrency, max_batch } => {
            let models = models
                .iter()
                .map(|m| match m.split_once('=') {
                    Some((name, dir)) => (name.to_string(), PathBuf::from(dir)),
                    None => (PathBuf::from(m).file_name().map_or(m.clone(), |n| n.to_string_lossy().into_owned()), PathBuf::from(m)),
                })
                .collect();
            let cfg = strata_serve::ServeConfig { models, addr, max_body, max_concurrency, max_batch, ..Default::default() };
            let names: Vec<String> = cfg.models.iter().map(|(n, _)| n.clone()).collect();
            tokio::runtime::Runtime::new()?.block_on(strata_serve::serve(cfg, |a| eprintln!("serving {names:?} on http://{a} (POST /v1/models/{{name}}/forecast, GET /v1/models, GET /health)")))?;
        }
        Command::Plot { model, input, at, series, out, format } => {
            let written = plot::plot(&plot::PlotArgs { run: &model, input: input.as_deref(), at: &at, series: &series, out: &out, format: &format })?;
            written.iter().for_each(|p| println!("{}", p.display()));
        }
        Command::Explain { model, input, at, series, out, format } => {
            let written = plot::explain(&model, input.as_deref(), at.as_deref(), series.as_deref(), &out, &format)?;
            written.iter().for_each(|p| println!("{}", p.display()));
        }
        Command::Tune { config, space, trials, set, out } => {
            let stem = config.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(format!("tune_{stem}")));
            let r = strata_train::search::tune::tune(&config, &set, &space, trials, &out)?;
            println!("| rank | trial | settings | epochs | best val loss | status |");
            println!("|---|---|---|---|---|---|");
            for (i, t) in r.trials.iter().enumerate() {
                let val = t.best_val.map_or("-".into(), |v| format!("{v:.5}"));
                println!("| {} | {} | {} | {} | {val} | {} |", i + 1, t.id, strata_train::search::tune::fmt_settings(&t.settings), t.epochs, t.status);
            }
            println!("rungs (epochs): {:?}; {:.0}s", r.rungs, r.wall_seconds);
            match &r.best_config {
                Some(p) => println!("best: trial {} -> {} (train it: strata train --config {})", r.best.unwrap_or(0), p.display(), p.display()),
                None => println!("no trial finished"),
            }
        }
        Command::Synth { seed, dynamic_graph: true, out, .. } => {
            let cfg = strata_data::dynamic_diffusion::DiffusionConfig { seed, ..Default::default() };
            std::fs::create_dir_all(&out)?;
            let path = out.join("diffusion.json");
            strata_train::engine::checkpoint::write_atomic(&path, strata_data::dynamic_diffusion::to_pygt_json(&cfg).to_string().as_bytes())?;
            println!("SYNTHETIC: {} nodes x {} steps, a graph per step redrawn every {} steps (seed {seed}) -> {}", cfg.nodes, cfg.steps, cfg.block, path.display());
            println!("train on it: [data] dataset = \"spatial\", path = graph = \"{}\" (a graph per window; data.dynamic_graph = \"mean\" for the time average)", path.display());
        }
        Command::Synth { seed, out, drift_stream: true, .. } => {
            let cfg = strata_data::drift_stream::DriftStreamConfig { seed, ..Default::default() };
            strata_data::drift_stream::write(&cfg, &out)?;
            println!(
                "SYNTHETIC: {} hourly rows x {} series, abrupt change at row {}, gradual over rows {}..{} (seed {seed}) -> {}/drift.csv, drift.json",
                cfg.rows, cfg.channels, cfg.abrupt, cfg.gradual, cfg.gradual + cfg.ramp, out.display()
            );
        }
        Command::Synth { nodes, days, steps_per_day, seed, out, .. } => {
            let cfg = strata_data::synthetic::SyntheticConfig { nodes, days, steps_per_day, seed, ..Default::default() };
            let data = strata_data::synthetic::generate(&cfg);
            data.write(&out)?;
            println!("SYNTHETIC: {nodes} locations x {} steps ({days} days of {steps_per_day}), {} edges -> {}", data.steps, data.edges.len(), out.display());
            println!(
                "train on it: [data] dataset = \"spatial\", path = \"{0}/signal.npy\", graph = \"{0}/graph.csv\", graph_weights = \"raw\", graph_symmetric = true, steps_per_day = {steps_per_day}",
                out.display()
            );
        }
        Command::Distill { config, dataset, method, set, out } => {
            let mut table: toml::Table = match &config {
                Some(p) => toml::from_str(&std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                None => toml::Table::new(),
            };
            let mut sets: Vec<String> = Vec::new();
            if let Some(d) = dataset {
                sets.push(format!("data.dataset=\"{d}\""));
            }
            if let Some(m) = method {
                sets.push(format!("distill.method=\"{m}\""));
            }
            sets.extend(set);
            for s in &sets {
                strata_train::config::apply_override(&mut table, s)?;
            }
            let data = table.entry("data").or_insert_with(|| toml::Value::Table(Default::default()));
            if let Some(d) = data.as_table_mut() {
                d.entry("seq_len").or_insert(toml::Value::Integer(12));
                d.entry("pred_len").or_insert(toml::Value::Integer(12));
            }
            let run: strata_distill::run::DistillRun = table.try_into().map_err(|e: toml::de::Error| anyhow::anyhow!("distill settings: {}", e.message()))?;
            let device = strata_train::device::training_device();
            let r = strata_distill::run::run_distill(&run, &out, &device)?;
            println!(
                "{} on {}: {} of {} windows x {} of {} locations (ratio {:.4}) in {:.1}s, peak {:.0} MB -> {}",
                run.distill.method, r.dataset, r.m, r.real_windows, r.k, r.real_locations, r.ratio, r.distill_seconds, r.peak_rss_mb, out.display()
            );
            if let Some(v) = r.val {
                println!("kept set: validation MAE {:.4} RMSE {:.4} RAE {:.4} RRSE {:.4}", v.mae, v.rmse, v.rae, v.rrse);
            }
        }
        Command::DistillEval { dir, full, epochs, seed, out } => {
            let device = strata_train::device::training_device();
            let data = full.map(|d| strata_data::DataConfig { dataset: d, seq_len: 12, pred_len: 12, ..Default::default() });
            let r = strata_distill::run::run_eval(dir.as_deref(), data.as_ref(), epochs, seed, &device)?;
            let path = strata_distill::run::eval_path(dir.as_deref(), out.as_deref(), seed);
            std::fs::write(&path, serde_json::to_string_pretty(&r)?)?;
            println!(
                "{} ({} windows x {} locations): test MAE {:.4} RMSE {:.4} RAE {:.4} RRSE {:.4}; training {:.1}s, peak {:.0} MB -> {}",
                r.source, r.windows, r.locations, r.test.mae, r.test.rmse, r.test.rae, r.test.rrse, r.train_seconds, r.peak_rss_mb, path.display()
            );
        }
        Command::Sample { run_dir, n, seed, noise, out } => {
            let out = out.unwrap_or_else(|| run_dir.join("samples.npy"));
            let r = generative::sample_run(&run_dir, n, seed, noise, &out)?;
            println!("wrote {} windows of {} steps x {} variables to {} (and {})", r.windows, r.seq_len, r.columns.len(), r.output.display(), r.output.with_extension("json").display());
            print_fidelity(&r.fidelity, &r.columns);
        }
        Command::ZeroShot { model, dataset, horizon, path, batch_size, context, patch_size, out } => {
            let data = strata_data::DataConfig { dataset, path, ..Default::default() };
            let moirai = strata_train::inference::zero_shot::MoiraiWindow { context, patch_size };
            let r = strata_train::inference::zero_shot::zero_shot(&model, &data, horizon, batch_size, moirai)?;
            println!("{}", r.protocol);
            println!("{} on {}: MSE {:.4}  MAE {:.4}  ({} windows, {:.1}s)", model.display(), r.data.dataset, r.mse, r.mae, r.test_windows, r.wall_seconds);
            if let Some(p) = &r.probabilistic {
                println!(
                    "probabilistic (100 paths): CRPS {:.4} (normalised {:.4})  CRPS as mean weighted quantile loss {:.4}  MSIS {:.4}  coverage 50/90/95% {:.3} / {:.3} / {:.3}",
                    p.crps, p.crps_normalised, p.mean_wquantile_loss, p.msis, p.interval_coverage[0], p.interval_coverage[1], p.interval_coverage[2]
                );
            }
            if let Some(out) = out {
                strata_train::inference::zero_shot::write(&r, &out)?;
            }
        }
        Command::Pretrain(RunArgs { config, opts: RunOpts { set, out, fresh } }) => {
            let table = generative::load_table(&config, &set)?;
            let cfg = strata_train::tasks::pretrain::PretrainConfig::from_table(table).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
            let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            let r = strata_train::tasks::pretrain::pretrain(&cfg, &dir, fresh)?;
            println!(
                "pretrained {} parameters for {} steps in {:.0}s; best validation NLL {:.4} at step {}; checkpoint: {} (strata zero-shot --model {})",
                r.parameters,
                r.steps,
                r.train_seconds,
                r.best_val_nll.unwrap_or(f64::NAN),
                r.best_step.unwrap_or(0),
                r.model_dir.display(),
                r.model_dir.display()
            );
            println!("results: {}", dir.join("results.json").display());
        }
        Command::Finetune { method, model, dataset, config, opts } => finetune(method, model, dataset, config, opts)?,
        Command::Datasets => datasets(),
        Command::Inspect { path, config, set } => print!("{}", inspect(&path, config.as_deref(), &set)?),
        Command::Quickstart { out } => {
            let cfg = RunConfig::from_toml_str(QUICKSTART)?;
            let r = train(&cfg, &out, TrainOptions { fresh: true })?;
            print_table(&r, &out);
        }
    }
    Ok(())
}

/// `strata inspect`: the `[data]` settings of `config` (if any) with `set` applied.
pub fn inspect(path: &std::path::Path, config: Option<&std::path::Path>, set: &[String]) -> Result<String> {
    let mut table: toml::Table = match config {
        Some(c) => toml::from_str(&std::fs::read_to_string(c).with_context(|| format!("cannot read {}", c.display()))?).map_err(|e| anyhow!("{}: {e}", c.display()))?,
        None => toml::Table::new(),
    };
    let mut data = match table.remove("data") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    for s in set {
        let s = s.strip_prefix("data.").unwrap_or(s);
        strata_train::config::apply_override(&mut data, s)?;
    }
    data.entry("dataset").or_insert_with(|| toml::Value::String("custom".into()));
    let cfg: strata_data::DataConfig = serde_path_to_error::deserialize(toml::Value::Table(data)).map_err(|e| anyhow!("key `data.{}`: {}", e.path(), e.inner()))?;
    Ok(strata_data::source::inspect::inspect(path, &cfg)?)
}

fn finetune(method: Option<String>, model: Option<PathBuf>, dataset: Option<String>, config: Option<PathBuf>, opts: RunOpts) -> Result<()> {
    let RunOpts { set, out, fresh } = opts;
    use strata_finetune::{FinetuneConfig, Method};
    let mut table: toml::Table = match &config {
        Some(path) => generative::load_table(path, &[])?,
        None => {
            let (Some(m), Some(model), Some(ds)) = (&method, &model, &dataset) else {
                anyhow::bail!("strata finetune needs --method, --model and --dataset (or --config)");
            };
            toml::from_str(&FinetuneConfig::new(Method::parse(m)?, model.clone(), ds).to_toml())?
        }
    };
    if let Some(m) = &method {
        table.insert("method".into(), Method::parse(m)?.name().into());
    }
    if let Some(m) = &model {
        table.insert("model".into(), m.display().to_string().into());
    }
    if let Some(d) = &dataset {
        let data = table.entry("data").or_insert_with(|| toml::Table::new().into());
        if let Some(t) = data.as_table_mut() {
            t.insert("dataset".into(), d.clone().into());
        }
    }
    for o in &set {
        strata_train::config::apply_override(&mut table, o)?;
    }
    let cfg = FinetuneConfig::from_toml(&toml::to_string(&table)?).map_err(|e| anyhow::anyhow!("fine-tuning config: {e}"))?;
    let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
    let r = if strata_finetune::is_moirai(&cfg.model_dir()) { strata_finetune::moirai::finetune(&cfg, &dir, fresh)? } else { strata_finetune::ttm::finetune(&cfg, &dir, fresh)? };
    println!("{}", r.protocol);
    println!(
        "{} on {}: test MSE {:.4}  MAE {:.4}  val loss {:.4}; {} of {} parameters trained ({:.2}%), {:.3}s/step, best epoch {}/{}",
        cfg.method.name(),
        r.data.dataset,
        r.test_mse,
        r.test_mae,
        r.val_loss,
        r.trainable,
        r.parameters,
        100.0 * r.trainable_share,
        r.seconds_per_step,
        r.best_epoch.unwrap_or(0),
        r.epochs_run
    );
    if r.scale_weights.len() > 1 {
        println!("scale weights (softmax): {:?}", r.scale_weights);
    }
    println!("results: {}", dir.join("results.json").display());
    Ok(())
}

const QUICKSTART: &str = r#"
name = "quickstart"
[data]
dataset = "etth1"
seq_len = 96
pred_len = 96
[model]
name = "dlinear"
[train]
epochs = 10
batch_size = 32
lr = 0.005
patience = 3
"#;

