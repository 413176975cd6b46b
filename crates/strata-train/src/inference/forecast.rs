//! Forecasting new data with a saved run: the run folder's `schema.json` (model config, shape,
//! columns, frequency, scaler, protocol) makes it self-contained, so neither the training config
//! nor the training data is needed. [`Schema::query`] checks and scales an input table,
//! [`Predictor::predict`] runs one batch of queries; `strata forecast` and `strata serve` both
//! go through these two calls, so they give the same numbers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Tensor, TensorData};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use strata_data::SpatialPrepared;
use strata_data::prepare::Prepared;
use strata_data::scaler::StandardScaler;
use strata_data::{Features, impute::Impute};
use strata_models::{Marks, Model, ModelConfig, Shape};

pub use super::input::InputTable;
use super::covariates::{CovariateSchema, QueryCovariates};

use crate::engine::checkpoint::{load_trained, write_atomic};

pub const SCHEMA_FILE: &str = "schema.json";
const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Quantile levels reported for probabilistic models (from 100 seeded sample paths).
pub const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
const PATHS: usize = 100;

/// What a saved model needs to forecast new data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    pub format: u32,
    pub dataset: String,
    pub data_sha256: String,
    pub model: ModelConfig,
    pub shape: Shape,
    /// Input columns, in the model's order (the target last).
    pub columns: Vec<String>,
    pub target: String,
    pub features: Features,
    /// The columns the model forecasts.
    pub outputs: Vec<String>,
    /// Frequency string of the calendar features (`h`, `15min`, ...).
    pub freq: String,
    /// The training data's time step, seconds.
    pub step_seconds: Option<i64>,
    pub scaler: Option<StandardScaler>,
    /// How missing input cells are filled.
    pub impute: Impute,
    pub protocol: String,
    /// Spatio-temporal (graph) models: their extra inputs; `columns` are then the nodes.
    #[serde(default)]
    pub spatial: Option<SpatialInputs>,
    /// How the training file was read (layout, time, columns, category values), so that new
    /// files of the same layout are read the same way; absent for the benchmark readers.
    #[serde(default)]
    pub read: Option<strata_data::source::ReadSpec>,
    /// Covariates (`data.covariates`): names, scalers and static values; the input holds the
    /// past-observed ones over the context and the future-known ones over the horizon too.
    #[serde(default)]
    pub covariates: Option<CovariateSchema>,
    /// `data.time_features = "calendar"`: the calendar fields' training statistics (absent: the
    /// TSLib features of `freq`).
    #[serde(default)]
    pub calendar: Option<strata_data::timefeat::CalendarScaler>,
}

/// What a spatio-temporal model reads beside the values: time of day and day of week (from the
/// timestamps), and the sensor graph, saved as `graph.npy` in the run folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpatialInputs {
    pub steps_per_day: Option<usize>,
    pub time_of_day: bool,
    pub day_of_week: bool,
    pub graph: bool,
}

pub const GRAPH_FILE: &str = "graph.npy";

impl Schema {
    /// The schema of a long-sequence run trained on `data`.
    pub fn of(model: &ModelConfig, shape: Shape, data: &Prepared, impute: Impute, protocol: String) -> Schema {
        let outputs = data.columns[data.output_channels()].to_vec();
        Schema {
            format: 1,
            dataset: data.dataset.clone(),
            data_sha256: data.sha256.clone(),
            model: model.clone(),
            shape,
            target: data.columns.last().cloned().unwrap_or_default(),
            columns: data.columns.clone(),
            features: data.features,
            outputs,
            freq: data.freq.clone(),
            step_seconds: data.quality.step_seconds,
            scaler: data.scaler.clone(),
            impute,
            protocol,
            spatial: None,
            read: data.source.as_ref().map(|(spec, _)| spec.clone()),
            covariates: CovariateSchema::of(data),
            calendar: data.calendar.clone(),
        }
    }

    /// The schema of a spatio-temporal run: one column per node (named by the signal's ids),
    /// one scaler over all nodes, zeros as the null value.
    pub fn of_spatial(model: &ModelConfig, shape: Shape, d: &SpatialPrepared, protocol: String) -> Schema {
        let columns: Vec<String> = d.ids.clone().unwrap_or_else(|| (0..d.nodes).map(|i| i.to_string()).collect());
        Schema {
            format: 1,
            dataset: d.dataset.clone(),
            data_sha256: d.sha256.clone(),
            model: model.clone(),
            shape,
            target: String::new(),
            outputs: columns.clone(),
            columns,
            features: Features::M,
            freq: d.freq.clone(),
            step_seconds: d.steps_per_day.map(|s| 86400 / s as i64),
            scaler: Some(d.scaler.clone()),
            impute: Impute::None,
            protocol,
            spatial: Some(SpatialInputs { steps_per_day: d.steps_per_day, time_of_day: d.time_of_day, day_of_week: d.day_of_week, graph: d.graph.is_some() }),
            read: d.source.as_ref().map(|(spec, _)| spec.clone()),
            covariates: CovariateSchema::of_spatial(d),
            calendar: None,
        }
    }

    /// Write `schema.json` (and `graph.npy`: the adjacency graph models are built with).
    pub fn write_with_graph(&self, run_dir: &Path, adj: Option<&[f32]>) -> Result<()> {
        if let Some(a) = adj {
            let n = self.columns.len();
            write_atomic(&run_dir.join(GRAPH_FILE), &strata_data::npy::encode_f32(&[n, n], a))?;
        }
        self.write(run_dir)
    }

    /// The scaler column of input column `j` (spatial data has one scaler for every node).
    pub fn scaler_col(&self, j: usize) -> usize {
        if self.spatial.is_some() { 0 } else { j }
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        write_atomic(&run_dir.join(SCHEMA_FILE), serde_json::to_string_pretty(self)?.as_bytes())
    }

    pub fn load(run_dir: &Path) -> Result<Schema> {
        let path = run_dir.join(SCHEMA_FILE);
        if !path.exists() {
            if run_dir.join("config.toml").exists() {
                bail!("{} has no {SCHEMA_FILE} (trained before saved models carried their schema): run `strata eval {}` once to write it", run_dir.display(), run_dir.display());
            }
            bail!("{} is not a run folder (no {SCHEMA_FILE})", run_dir.display());
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de).map_err(|e| anyhow!("{}: key `{}`: {}", path.display(), e.path(), e.inner()))
    }

    /// Read a file (or folder) to forecast from, as the training file was read.
    pub fn read_input(&self, path: &Path) -> Result<InputTable> {
        match &self.read {
            // A spatio-temporal run without covariates reads only the target feature of each node.
            Some(spec) => InputTable::read_as(path, spec, self.spatial.is_some() && self.covariates.is_none()),
            None => InputTable::read(path),
        }
    }

    pub fn output_range(&self) -> std::ops::Range<usize> {
        self.features.outputs(self.columns.len())
    }

    /// Check `input` against the schema and cut, fill and scale the `seq_len` rows that end at
    /// `at` (a timestamp of the input; default its last row).
    pub fn query(&self, input: &InputTable, at: Option<&str>) -> Result<Query> {
        let renamed;
        let input = match &self.covariates {
            Some(cs) if cs.target.is_some() => {
                renamed = {
                    let mut i = input.clone();
                    cs.name_series(&mut i);
                    i
                };
                &renamed
            }
            _ => input,
        };
        let src = &input.source;
        let (seq_len, pred_len) = (self.shape.seq_len, self.shape.pred_len);
        // Columns: by name when the input names them, else by position.
        let index: Vec<usize> = match &input.columns {
            Some(names) => {
                let missing: Vec<&str> = self.columns.iter().filter(|c| !names.contains(c)).map(|s| s.as_str()).collect();
                if !missing.is_empty() {
                    bail!("{src}: missing column(s) {missing:?}; the model reads {:?} (the input has {:?})", self.columns, names);
                }
                self.columns.iter().map(|c| names.iter().position(|n| n == c).expect("checked")).collect()
            }
            None if input.width != self.columns.len() => {
                bail!("{src}: {} columns per row; the model reads {} columns, in this order: {:?}", input.width, self.columns.len(), self.columns)
            }
            None => (0..input.width).collect(),
        };
        let origin = match (at, &input.dates) {
            // Rows past the last observed target carry future-known covariates: the horizon.
            (None, _) if self.covariates.as_ref().is_some_and(|c| !c.names.future.is_empty()) => {
                CovariateSchema::last_observed(input, &index).ok_or_else(|| anyhow!("{src}: no row holds the target"))?
            }
            (None, _) => input.rows.checked_sub(1).ok_or_else(|| anyhow!("{src}: no rows"))?,
            (Some(at), Some(dates)) => {
                let t = strata_data::table::parse_date(at).ok_or_else(|| anyhow!("--at '{at}' is not a timestamp (e.g. 2018-02-20 23:00:00)"))?;
                dates.iter().position(|d| *d == t).ok_or_else(|| {
                    anyhow!("--at {at}: no row of {src} has this timestamp (it runs from {} to {})", fmt_date(dates[0]), fmt_date(*dates.last().expect("rows")))
                })?
            }
            (Some(_), None) => bail!("--at needs timestamps: {src} has no date column"),
        };
        if origin + 1 < seq_len {
            bail!("{src}: the model reads {seq_len} steps up to the forecast origin; the input has {} (rows 1..={})", origin + 1, origin + 1);
        }
        let first = origin + 1 - seq_len;
        let dates = input.dates.as_ref().map(|d| &d[first..=origin]);
        if let (Some(d), Some(step)) = (dates, self.step_seconds) {
            if d.len() >= 2 && (d[1] - d[0]).num_seconds() != step && d.windows(2).all(|w| (w[1] - w[0]).num_seconds() == (d[1] - d[0]).num_seconds()) {
                bail!(
                    "{src}: the input steps every {}; the model was trained on {} data every {} (frequency '{}')",
                    human_step((d[1] - d[0]).num_seconds()),
                    self.dataset,
                    human_step(step),
                    self.freq
                );
            }
            if let Some(i) = (1..d.len()).find(|&i| (d[i] - d[i - 1]).num_seconds() != step) {
                bail!(
                    "{src}: row {} ({}) follows {} after {} instead of {}: the {seq_len} context rows must be regular",
                    first + i + 1,
                    fmt_date(d[i]),
                    fmt_date(d[i - 1]),
                    human_step((d[i] - d[i - 1]).num_seconds()),
                    human_step(step)
                );
            }
        }
        // Calendar features for the models that read them (all or none of a batch has them).
        let uses_marks = self.shape.marks > 0 && self.model.capabilities().exogenous;
        if uses_marks && dates.is_none() {
            bail!("{src}: this {} model reads calendar features; give a table with a date column", self.model.name());
        }
        let c = self.columns.len();
        let mut x: Vec<f32> = (first..=origin).flat_map(|r| index.iter().map(move |&j| (r, j))).map(|(r, j)| input.values[r * input.width + j]).collect();
        let filled = match &self.spatial {
            // Spatio-temporal data: a missing reading is the null value 0, as in training.
            Some(_) => x.iter_mut().filter(|v| v.is_nan()).map(|v| *v = 0.0).count(),
            None => fill_missing(&mut x, c, &self.columns, self.impute, src)?,
        };
        let covariates = self.covariates.as_ref().map(|cs| cs.query(input, first, origin, pred_len)).transpose()?;
        // Truth: the rows after the origin up to the first whose target is empty.
        let observed = |r: usize| index.iter().any(|&j| !input.values[r * input.width + j].is_nan());
        let truth_rows = (origin + 1..input.rows.min(origin + 1 + pred_len)).take_while(|&r| observed(r)).count();
        let truth: Vec<f32> = (origin + 1..origin + 1 + truth_rows).flat_map(|r| index.iter().map(move |&j| (r, j))).map(|(r, j)| input.values[r * input.width + j]).collect();
        if let Some(s) = &self.scaler {
            for (k, v) in x.iter_mut().enumerate() {
                let j = self.scaler_col(k % c);
                *v = (*v - s.mean[j]) / s.std[j];
            }
        }
        if let Some(sp) = &self.spatial {
            x = self.spatial_features(sp, x, dates, src)?;
        }
        let future = dates.and_then(|d| {
            let step = chrono::Duration::seconds(self.step_seconds.unwrap_or_else(|| (d[d.len() - 1] - d[d.len() - 2]).num_seconds()));
            let last = *d.last()?;
            Some((1..=pred_len as i32).map(|k| last + step * k).collect::<Vec<_>>())
        });
        let marks = match (uses_marks, dates, &future) {
            (true, Some(d), Some(f)) => Some(match &self.calendar {
                Some(s) => (s.features(d), s.features(f)),
                None => (strata_data::timefeat::time_features(d, &self.freq), strata_data::timefeat::time_features(f, &self.freq)),
            }),
            _ => None,
        };
        let out = self.output_range();
        let truth = (truth_rows > 0).then(|| truth.chunks(c).map(|row| row[out.clone()].to_vec()).collect());
        Ok(Query { x, marks, covariates, origin: dates.map(|d| fmt_date(*d.last().expect("rows"))), future: future.map(|f| f.into_iter().map(fmt_date).collect()), truth, filled })
    }
}

impl Schema {
    /// `[seq_len, nodes]` scaled values -> `[seq_len, nodes, features]`: the value, then the
    /// time of day (step of the day / steps per day) and the day of the week (Monday 0, / 7)
    /// from the timestamps, as the training data has them.
    fn spatial_features(&self, sp: &SpatialInputs, x: Vec<f32>, dates: Option<&[NaiveDateTime]>, src: &str) -> Result<Vec<f32>> {
        if !(sp.time_of_day || sp.day_of_week) {
            return Ok(x);
        }
        let Some(dates) = dates else { bail!("{src}: this {} model reads the time of day and day of week; give a table with a date column", self.model.name()) };
        let spd = sp.steps_per_day.unwrap_or(1);
        let n = self.columns.len();
        let mut out = Vec::with_capacity(x.len() * self.shape.features);
        for (row, d) in x.chunks(n).zip(dates) {
            let tod = (chrono::Timelike::num_seconds_from_midnight(&d.time()) as usize * spd / 86400) as f32 / spd as f32;
            let dow = chrono::Datelike::weekday(d).num_days_from_monday() as f32 / 7.0;
            for &v in row {
                out.push(v);
                if sp.time_of_day {
                    out.push(tod);
                }
                if sp.day_of_week {
                    out.push(dow);
                }
            }
        }
        Ok(out)
    }
}

/// One checked, scaled model input.
#[derive(Debug, Clone)]
pub struct Query {
    /// `[seq_len, columns]`, scaled.
    x: Vec<f32>,
    /// Calendar features of the context and forecast rows.
    marks: Option<(Vec<f32>, Vec<f32>)>,
    /// Covariates of the context (and, future-known, the forecast) rows, scaled.
    covariates: Option<QueryCovariates>,
    /// The last context timestamp.
    pub origin: Option<String>,
    pub future: Option<Vec<String>>,
    /// Rows of the input after the origin (up to `pred_len`), output columns, original units.
    pub truth: Option<Vec<Vec<f32>>>,
    /// Missing context cells filled.
    pub filled: usize,
}

impl Query {
    /// The context rows of the output columns in the data's units (missing cells filled):
    /// `[seq_len][output column]`.
    pub fn history(&self, schema: &Schema) -> Vec<Vec<f32>> {
        let c = schema.columns.len();
        let out = schema.output_range();
        let f = schema.shape.features;
        self.x
            .chunks(c * f)
            .map(|row| out.clone().map(|j| schema.scaler.as_ref().map_or(row[j * f], |s| row[j * f] * s.std[schema.scaler_col(j)] + s.mean[schema.scaler_col(j)])).collect())
            .collect()
    }
}

/// A forecast in the data's units: `values[step][output column]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Forecast {
    pub columns: Vec<String>,
    /// The forecast origin (the last context timestamp).
    pub origin: Option<String>,
    /// Timestamps of the forecast rows (absent for inputs without dates).
    pub timestamps: Option<Vec<String>>,
    pub values: Vec<Vec<f32>>,
    /// Probabilistic models: `(level, values[step][column])` for [`QUANTILES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<(f64, Vec<Vec<f32>>)>,
}

/// A loaded model: the schema and the best checkpoint.
pub struct Predictor {
    pub schema: Schema,
    pub dir: PathBuf,
    model: Model,
    device: Device,
}

impl Predictor {
    /// The trained model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn load(run_dir: &Path, device: &Device) -> Result<Predictor> {
        Self::load_checkpoint(run_dir, "best.bpk", device)
    }

    /// Load the run with the weights of `checkpoint` (`best.bpk`, `last.bpk`) of its folder.
    pub fn load_checkpoint(run_dir: &Path, checkpoint: &str, device: &Device) -> Result<Predictor> {
        let schema = Schema::load(run_dir)?;
        let adj = match schema.spatial.as_ref().is_some_and(|s| s.graph) {
            true => Some(strata_data::npy::read_npy(&run_dir.join(GRAPH_FILE))?.1),
            false => None,
        };
        let model = schema.model.try_init(schema.shape, adj.as_deref(), device).map_err(anyhow::Error::msg)?;
        let model = load_trained(model, run_dir, &run_dir.join(checkpoint))?;
        Ok(Predictor { schema, dir: run_dir.to_path_buf(), model, device: device.clone() })
    }

    /// Serve these weights from now on (an online update).
    pub fn set_model(&mut self, model: Model) {
        self.model = model;
    }

    /// `model`'s scaled forecast `[b, pred_len, columns]` of `queries` (built on this predictor's
    /// device; an online update passes the model it trains).
    pub fn forward_with(&self, model: &Model, queries: &[Query]) -> Tensor<3> {
        let (x, marks) = self.inputs(queries);
        model.forward_inputs(x, marks, None, self.covariates(queries))
    }

    /// The model's input tensors for a batch of queries.
    fn inputs(&self, queries: &[Query]) -> (Tensor<4>, Option<Marks>) {
        let s = &self.schema;
        let (b, l, h, c) = (queries.len(), s.shape.seq_len, s.shape.pred_len, s.columns.len());
        let x: Vec<f32> = queries.iter().flat_map(|q| q.x.iter().copied()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [b, l, c, s.shape.features]), &self.device);
        let marks = queries[0].marks.as_ref().map(|(xm, _)| {
            let m = xm.len() / l;
            let cat = |f: fn(&(Vec<f32>, Vec<f32>)) -> &Vec<f32>| queries.iter().flat_map(|q| f(q.marks.as_ref().expect("all or none")).iter().copied()).collect::<Vec<f32>>();
            Marks { x: Tensor::from_data(TensorData::new(cat(|p| &p.0), [b, l, m]), &self.device), y: Tensor::from_data(TensorData::new(cat(|p| &p.1), [b, h, m]), &self.device) }
        });
        (x, marks)
    }

    /// The covariates of a batch of queries (a covariate run's).
    fn covariates(&self, queries: &[Query]) -> Option<strata_models::Covariates> {
        let s = &self.schema;
        s.covariates.as_ref().map(|cs| {
            let qs: Vec<&QueryCovariates> = queries.iter().map(|q| q.covariates.as_ref().expect("a covariate run's queries carry covariates")).collect();
            cs.tensors(&qs, s.shape.seq_len, s.shape.pred_len, &self.device)
        })
    }

    /// The attention weights of one query: `(layer name, [rows (channels for channel-independent
    /// models), heads, queries, keys], values)`; `None` for models without attention.
    pub fn attention(&self, query: &Query) -> Option<Vec<(String, [usize; 4], Vec<f32>)>> {
        let (x, marks) = self.inputs(std::slice::from_ref(query));
        let maps = self.model.attention_inputs(x, marks, self.covariates(std::slice::from_ref(query)))?;
        Some(maps.into_iter().map(|(name, w)| (name, w.dims(), w.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32"))).collect())
    }

    /// Forecast every query in one batch.
    pub fn predict(&self, queries: &[Query]) -> Vec<Forecast> {
        let s = &self.schema;
        let (b, h, c) = (queries.len(), s.shape.pred_len, s.columns.len());
        if b == 0 {
            return Vec::new();
        }
        let (x, marks) = self.inputs(queries);
        let out = s.output_range();
        let (point, samples) = if self.model.distribution_head() {
            let d = self.model.distribution(x, marks).expect("probabilistic");
            let mean: Vec<f32> = d.mean().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
            (mean, Some(d.sample(PATHS, 0)))
        } else {
            (self.model.forward_inputs(x, marks, None, self.covariates(queries)).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32"), None)
        };
        let width = point.len() / (b * h);
        debug_assert_eq!(width, c, "models forecast every input channel");
        let unscale = |v: f32, col: usize| s.scaler.as_ref().map_or(v, |sc| v * sc.std[s.scaler_col(col)] + sc.mean[s.scaler_col(col)]);
        let grid = |vals: &[f32], i: usize| -> Vec<Vec<f32>> {
            (0..h).map(|t| out.clone().map(|col| unscale(vals[(i * h + t) * width + col], col)).collect()).collect()
        };
        queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let quantiles = samples.as_ref().map_or(Vec::new(), |smp| {
                    let points = b * h * width;
                    QUANTILES
                        .iter()
                        .map(|&level| {
                            let mut qv = vec![0.0f32; points];
                            for (p, v) in qv.iter_mut().enumerate() {
                                let mut paths: Vec<f32> = (0..PATHS).map(|k| smp[k * points + p]).collect();
                                paths.sort_by(f32::total_cmp);
                                *v = paths[((level * PATHS as f64) as usize).min(PATHS - 1)];
                            }
                            (level, grid(&qv, i))
                        })
                        .collect()
                });
                Forecast { columns: s.outputs.clone(), origin: q.origin.clone(), timestamps: q.future.clone(), values: grid(&point, i), quantiles }
            })
            .collect()
    }
}

/// Fill missing context cells per column with the schema's method; `Impute::None` refuses them.
fn fill_missing(x: &mut [f32], c: usize, names: &[String], method: Impute, src: &str) -> Result<usize> {
    let rows = x.len() / c;
    let mut filled = 0;
    for j in 0..c {
        let col: Vec<f32> = (0..rows).map(|r| x[r * c + j]).collect();
        let missing = col.iter().filter(|v| v.is_nan()).count();
        if missing == 0 {
            continue;
        }
        if missing == rows {
            bail!("{src}: column '{}' has no values in the {rows} context rows", names[j]);
        }
        if method == Impute::None {
            bail!("{src}: column '{}' has {missing} missing cell(s) in the context rows and the model was trained with impute = \"none\"", names[j]);
        }
        let mut t = strata_data::table::Table { path: PathBuf::from(src), columns: vec![names[j].clone()], dates: None, values: col, rows, quality: Default::default() };
        strata_data::impute::impute(&mut t, method, rows)?;
        for r in 0..rows {
            x[r * c + j] = t.values[r];
        }
        filled += missing;
    }
    Ok(filled)
}

pub fn fmt_date(d: NaiveDateTime) -> String {
    d.format(DATE_FORMAT).to_string()
}

fn human_step(s: i64) -> String {
    match s {
        s if s % 86400 == 0 => format!("{} day(s)", s / 86400),
        s if s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Write forecasts as CSV: a `date` (or `step`) column, then each output column, then
/// `<column>_q<level>` for each quantile.
pub fn write_csv(f: &Forecast, path: &Path) -> Result<()> {
    let mut out = String::new();
    let mut header = vec![if f.timestamps.is_some() { "date".to_string() } else { "step".to_string() }];
    header.extend(f.columns.iter().cloned());
    for (level, _) in &f.quantiles {
        header.extend(f.columns.iter().map(|c| format!("{c}_q{level}")));
    }
    out.push_str(&header.join(","));
    out.push('\n');
    for (t, row) in f.values.iter().enumerate() {
        let mut cells = vec![f.timestamps.as_ref().map_or((t + 1).to_string(), |ts| ts[t].clone())];
        cells.extend(row.iter().map(|v| v.to_string()));
        for (_, q) in &f.quantiles {
            cells.extend(q[t].iter().map(|v| v.to_string()));
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

/// MSE and MAE of a forecast against the truth rows it overlaps, on the original scale and on
/// the scaled data (the protocol's metric).
pub fn score(f: &Forecast, truth: &[Vec<f32>], schema: &Schema) -> (f64, f64, f64, f64) {
    let out = schema.output_range();
    let (mut se, mut ae, mut sse, mut sae, mut n) = (0.0, 0.0, 0.0, 0.0, 0usize);
    for (p, y) in f.values.iter().zip(truth) {
        for (k, (a, b)) in p.iter().zip(y).enumerate() {
            let d = (*a - *b) as f64;
            let std = schema.scaler.as_ref().map_or(1.0, |s| s.std[schema.scaler_col(out.start + k)] as f64);
            (se, ae, sse, sae, n) = (se + d * d, ae + d.abs(), sse + (d / std).powi(2), sae + (d / std).abs(), n + 1);
        }
    }
    let n = n.max(1) as f64;
    (se / n, ae / n, sse / n, sae / n)
}
