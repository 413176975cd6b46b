//! `strata`: train, evaluate and inspect forecasting models from the command line.

/// mimalloc keeps freed tensor buffers for reuse; glibc's malloc returned large ones to the OS
/// and every op paid page faults to get them back (~30% of a PatchTST inference batch).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's option setter (linked with the allocator).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Never give freed memory back to the OS: by default mimalloc purges it after 10 ms and the
/// next tensor of that size pays for zeroed pages again (up to half a PatchTST step).
pub fn keep_freed_memory() {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15; // same index in mimalloc v2 and v3
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

mod plot;
mod print;

use print::{datasets, print_fidelity, print_table, print_vae};

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use strata_train::RunConfig;
use strata_train::tasks::vae as generative;
use strata_train::evaluation::run::evaluate_run;
use strata_train::tasks::forecasting::{TrainOptions, default_run_dir, train};

#[derive(Parser)]
#[command(name = "strata", version, about = "Spatio-temporal and time-series forecasting")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A config-driven run: its TOML, overrides, folder and whether to start over.
#[derive(clap::Args)]
struct RunArgs {
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    opts: RunOpts,
}

/// What every config-driven run takes beside its config.
#[derive(clap::Args)]
struct RunOpts {
    /// Override a config value: `--set train.lr=1e-3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run folder (default: runs/<config name>; with --distilled, <distilled folder>/train).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Discard checkpoints in the run folder and start over.
    #[arg(long)]
    fresh: bool,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// A TOML run config.
    #[arg(long, required_unless_present = "distilled")]
    config: Option<PathBuf>,
    #[command(flatten)]
    opts: RunOpts,
    /// Train on a distilled folder (`strata distill`) instead: a location-encoder MTGNN,
    /// selected on the real validation split; it forecasts every real location.
    #[arg(long, conflicts_with_all = ["config", "set", "fresh"])]
    distilled: Option<PathBuf>,
    /// Epochs on the distilled set.
    #[arg(long, default_value_t = 100, requires = "distilled")]
    epochs: usize,
    #[arg(long, default_value_t = 2021, requires = "distilled")]
    seed: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a TOML run config (resumes an interrupted run in the same folder), or
    /// on a distilled folder (--distilled).
    Train(TrainArgs),
    /// Re-evaluate the best checkpoint of a run folder on its test split (writes eval.json).
    Eval {
        run_dir: PathBuf,
        /// Evaluate on other data: `--set data.path=other.csv` (data.* and eval.* keys only).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Draw windows from a trained VAE run and write them in the data's units (.npy or .csv).
    Sample {
        run_dir: PathBuf,
        /// Number of windows.
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 2021)]
        seed: u64,
        /// Add the learned observation noise (default: the run's model.sample_noise).
        #[arg(long)]
        noise: Option<bool>,
        /// Output file (default: <run_dir>/samples.npy).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Evaluate a pretrained TinyTimeMixer or MOIRAI checkpoint folder (config.json +
    /// model.safetensors) on a dataset's test split without training.
    ZeroShot {
        /// Checkpoint folder (e.g. $STRATA_DATA/ttm-r2).
        #[arg(long)]
        model: PathBuf,
        /// A registry dataset (etth1, ettm2, weather, ...).
        #[arg(long)]
        dataset: String,
        /// Forecast length (at most the model's).
        #[arg(long, default_value_t = 96)]
        horizon: usize,
        /// Your own CSV instead of the registry's file.
        #[arg(long)]
        path: Option<PathBuf>,
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// MOIRAI only: context steps.
        #[arg(long, default_value_t = 512)]
        context: usize,
        /// MOIRAI only: patch size (one of the checkpoint's).
        #[arg(long, default_value_t = 64)]
        patch_size: usize,
        /// Write the results as JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Pretrain a MOIRAI-architecture model from scratch on a corpus of the datasets in the data
    /// root (uni2ts's masked-prediction recipe); exports `<run>/model` for `strata zero-shot`.
    Pretrain(RunArgs),
    /// Fine-tune a foundation model checkpoint on a dataset: full, linear-probe, prompt, lora,
    /// msft (MOIRAI) or full, linear-probe, lora, msft (TinyTimeMixer). Settings from --config
    /// and --set.
    Finetune {
        #[arg(long)]
        method: Option<String>,
        /// Checkpoint folder (config.json + model.safetensors), e.g. $STRATA_DATA/ttm-r2.
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        dataset: Option<String>,
        /// A fine-tuning TOML (configs/*_finetune.toml); the flags above override it.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Forecast new data with a trained run folder: writes the next pred_len steps (and
    /// quantiles for probabilistic models) as CSV, in the data's units.
    Forecast {
        /// A run folder (holds schema.json and best.bpk).
        #[arg(long)]
        model: PathBuf,
        /// The history to forecast from: .csv / .csv.gz (a date column, named variables) or .npy
        /// ([rows, columns] in the model's column order).
        #[arg(long)]
        input: PathBuf,
        /// Forecast origin: the timestamp of the last context row (default: the input's last row).
        #[arg(long)]
        at: Option<String>,
        /// Output CSV (default: forecast.csv).
        #[arg(long, default_value = "forecast.csv")]
        out: PathBuf,
    },
    /// Serve forecasts over HTTP: `POST /v1/models/{name}/forecast`, `GET /v1/models`,
    /// `GET /health` (docs/serve.md).
    Serve {
        /// A run folder to serve, as `name=<dir>` or `<dir>` (named after the folder); repeatable.
        #[arg(long = "model", required = true)]
        models: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Largest request body, bytes.
        #[arg(long, default_value_t = 4 << 20)]
        max_body: usize,
        /// Requests in flight at once (more get 503).
        #[arg(long, default_value_t = 256)]
        max_concurrency: usize,
        /// Most requests forecast together in one model call.
        #[arg(long, default_value_t = 64)]
        max_batch: usize,
    },
    /// Plot a run: training curves, and forecast vs truth for chosen series and origins of an
    /// input table (with the 10-90% band for probabilistic models).
    Plot {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        input: Option<PathBuf>,
        /// Forecast origins (timestamps of the input; repeatable; default its last row).
        #[arg(long)]
        at: Vec<String>,
        /// Columns to draw (repeatable; default the target).
        #[arg(long)]
        series: Vec<String>,
        #[arg(long, default_value = "plots")]
        out: PathBuf,
        /// png or svg.
        #[arg(long, default_value = "png")]
        format: String,
    },
    /// Attention heat-maps (every layer and head) of an attention model for one input window;
    /// for graph models (mtgnn, gwnet; no --input), the learned adjacency.
    Explain {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long)]
        at: Option<String>,
        /// The series whose attention to show, for channel-independent models (default the target).
        #[arg(long)]
        series: Option<String>,
        #[arg(long, default_value = "explain")]
        out: PathBuf,
        #[arg(long, default_value = "png")]
        format: String,
    },
    /// Hyper-parameter search: random or grid search with successive halving over a run
    /// config; ranks trials by validation loss and writes the best config as TOML.
    Tune {
        #[arg(long)]
        config: PathBuf,
        /// The search space TOML (`[search]`, `[space]`; docs/tune.md).
        #[arg(long)]
        space: PathBuf,
        /// Number of trials (overrides search.trials).
        #[arg(long)]
        trials: Option<usize>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (default: runs/tune_<config stem>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generate a SYNTHETIC spatio-temporal dataset (graph + diffusion + daily/weekly cycles,
    /// deterministic by seed) for scale tests: writes signal.npy, graph.csv, synthetic.json.
    Synth {
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        #[arg(long, default_value_t = 7)]
        days: usize,
        #[arg(long, default_value_t = 288)]
        steps_per_day: usize,
        #[arg(long, default_value_t = 2021)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Distil a spatio-temporal dataset (STemDist or a baseline) into a folder of x.npy, y.npy
    /// and distilled.json (docs/distill.md).
    Distill {
        /// A TOML with [data] and [distill] tables.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        dataset: Option<String>,
        /// stemdist, random, kcenter, herding, dc, dm, mtt or condtsf.
        #[arg(long)]
        method: Option<String>,
        /// Override a setting: `--set distill.outer=20` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train a fresh model on a distilled folder (or on the full data with --full DATASET),
    /// select on the real validation split, report the real test split, time and peak memory.
    DistillEval {
        dir: Option<PathBuf>,
        /// Train on the full training data of this spatio-temporal dataset instead.
        #[arg(long)]
        full: Option<String>,
        #[arg(long, default_value_t = 100)]
        epochs: usize,
        #[arg(long, default_value_t = 2021)]
        seed: u64,
        /// Output JSON (default: <dir>/eval_s<seed>.json, or full_eval_s<seed>.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the dataset registry and what was found on disk.
    Datasets,
    /// Train DLinear on ETTh1 (96 -> 96) and print the test metrics.
    Quickstart {
        #[arg(long, default_value = "runs/quickstart")]
        out: PathBuf,
    },
}

fn main() {
    keep_freed_memory();
    // Under mpirun/srun (with the `mpi` feature): join the ranks; finalised when `_mpi` drops.
    let _mpi = strata_train::engine::parallel::init();
    let world = strata_train::engine::parallel::world();
    if !world.is_root() {
        quiet_stdout();
    }
    if let Err(e) = run(Cli::parse()) {
        if world.size() > 1 {
            // The other ranks may wait in a collective for this one: end them all.
            // One write, so that the ranks' lines do not interleave.
            use std::io::Write;
            let _ = std::io::stderr().write_all(format!("error (rank {} of {}): {e:#}\n", world.rank(), world.size()).as_bytes());
            world.abort(1);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

unsafe extern "C" {
    fn dup2(old: std::ffi::c_int, new: std::ffi::c_int) -> std::ffi::c_int;
}

/// Ranks other than 0 of a data-parallel run print nothing on stdout (rank 0 prints the
/// results); their errors still reach stderr.
fn quiet_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: replaces file descriptor 1 before anything is written to it.
        unsafe { dup2(null.as_raw_fd(), 1) };
    }
}

fn run(cli: Cli) -> Result<()> {
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
            let q = p.schema.query(&strata_train::inference::forecast::InputTable::read(&input)?, at.as_deref())?;
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
            let cfg = strata_serve::ServeConfig { models, addr, max_body, max_concurrency, max_batch };
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
        Command::Synth { nodes, days, steps_per_day, seed, out } => {
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
        Command::Quickstart { out } => {
            let cfg = RunConfig::from_toml_str(QUICKSTART)?;
            let r = train(&cfg, &out, TrainOptions { fresh: true })?;
            print_table(&r, &out);
        }
    }
    Ok(())
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

