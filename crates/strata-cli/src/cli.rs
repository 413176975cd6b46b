//! The command line: every subcommand and its flags (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "strata", version, about = "Spatio-temporal and time-series forecasting")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// A config-driven run: its TOML, overrides, folder and whether to start over.
#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[command(flatten)]
    pub opts: RunOpts,
}

/// What every config-driven run takes beside its config.
#[derive(clap::Args)]
pub struct RunOpts {
    /// Override a config value: `--set train.lr=1e-3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run folder (default: runs/<config name>; with --distilled, <distilled folder>/train).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Discard checkpoints in the run folder and start over.
    #[arg(long)]
    pub fresh: bool,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// A TOML run config.
    #[arg(long, required_unless_present = "distilled")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub opts: RunOpts,
    /// Train on a distilled folder (`strata distill`) instead: a location-encoder MTGNN,
    /// selected on the real validation split; it forecasts every real location.
    #[arg(long, conflicts_with_all = ["config", "set", "fresh"])]
    pub distilled: Option<PathBuf>,
    /// Epochs on the distilled set.
    #[arg(long, default_value_t = 100, requires = "distilled")]
    pub epochs: usize,
    #[arg(long, default_value_t = 2021, requires = "distilled")]
    pub seed: u64,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model from a TOML run config (resumes an interrupted run in the same folder), or
    /// on a distilled folder (--distilled).
    Train(TrainArgs),
    /// Online forecasting: train (or load, online.from) a model on the training split, then walk
    /// the test split in time order, forecasting, revealing the truth and updating by the
    /// `[online]` strategy (none, ogd, er, derpp, retrain) with an optional drift detector;
    /// writes <run>/online/online.json and online_curve.csv. Resumes an interrupted walk.
    Online(RunArgs),
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
        /// The history to forecast from: .csv / .csv.gz (a date column, named variables), .npy
        /// ([rows, columns] in the model's column order), or a file / folder of the training
        /// data's layout (CSV, Parquet, Arrow; read with the run's saved reading settings).
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
        /// Instead: the process whose diffusion follows a graph redrawn every 30 steps (6 nodes,
        /// 900 steps; `strata_data::dynamic_diffusion`), as PyG-Temporal JSON with a graph per step.
        #[arg(long)]
        dynamic_graph: bool,
        /// Instead: hourly series with an abrupt change at row 6,000 and a gradual one over rows
        /// 9,000-10,000 (12,000 rows, 3 series; `strata_data::drift_stream`): drift.csv +
        /// drift.json (the change points), for `strata online` with a drift detector.
        #[arg(long)]
        drift_stream: bool,
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
    /// Show what strata would read from a data file or folder with the given settings (columns
    /// and their types, the time axis, gaps, duplicates, text values, nodes, the graph) and the
    /// first problem it would refuse, without training anything.
    Inspect {
        /// A data file (CSV/TSV/.gz, Parquet, Arrow IPC, PyGT JSON, .npy/.npz) or a folder of
        /// per-location files.
        path: PathBuf,
        /// Take the `[data]` settings of a run config.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A data setting, `key=value` in TOML (`time=["year","month","day","hour"]`,
        /// `categorical="onehot"`); the `data.` prefix is optional.
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Train DLinear on ETTh1 (96 -> 96) and print the test metrics.
    Quickstart {
        #[arg(long, default_value = "runs/quickstart")]
        out: PathBuf,
    },
}

