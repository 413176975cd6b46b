//! Runs from Python: train, continue, evaluate, forecast, and the weights as NumPy arrays.
//! A run is its folder (as for the CLI); these functions take its path.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use strata_train::RunConfig;
use strata_train::inference::forecast::{InputTable, Predictor};
use strata_train::inference::weights::{NamedArray, get_weights as weights_of, set_weights as put_weights, write_run_model};
use strata_train::tasks::forecasting::{TrainOptions, continue_training, default_run_dir, train as train_run};

use crate::long_call;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(fit_more, m)?)?;
    m.add_function(wrap_pyfunction!(online, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add_function(wrap_pyfunction!(get_weights, m)?)?;
    m.add_function(wrap_pyfunction!(set_weights, m)?)?;
    m.add_function(wrap_pyfunction!(datasets, m)?)?;
    Ok(())
}

/// The run configuration from a TOML file or from a JSON object (a Python dict), with
/// `key=value` overrides applied; and the run folder (`out`, else `runs/<name>`).
fn configure(path: Option<&str>, json: Option<&str>, overrides: &[String], out: Option<&str>) -> Result<(RunConfig, PathBuf)> {
    let cfg = match (path, json) {
        (Some(p), None) => RunConfig::load(Path::new(p), overrides)?,
        (None, Some(j)) => {
            let value: serde_json::Value = serde_json::from_str(j).context("config")?;
            let mut table = match toml::Value::try_from(value).map_err(|e| anyhow!("config: {e}"))? {
                toml::Value::Table(t) => t,
                _ => bail!("config: expected a dict of sections ([data], [model], [train], ...)"),
            };
            for o in overrides {
                strata_train::config::apply_override(&mut table, o)?;
            }
            RunConfig::from_toml_str(&toml::to_string(&table)?).context("config")?
        }
        _ => bail!("config: give a TOML path or a dict"),
    };
    let dir = match (out, path) {
        (Some(o), _) => PathBuf::from(o),
        (None, Some(p)) => default_run_dir(&cfg, Path::new(p)),
        (None, None) => PathBuf::from("runs").join(cfg.name.clone().unwrap_or_else(|| "run".into())),
    };
    Ok((cfg, dir))
}

/// Train (or resume) a forecasting run; returns `(run folder, results.json text)`.
#[pyfunction]
#[pyo3(signature = (config_path=None, config_json=None, overrides=Vec::new(), out=None, fresh=false))]
fn train(py: Python<'_>, config_path: Option<String>, config_json: Option<String>, overrides: Vec<String>, out: Option<String>, fresh: bool) -> PyResult<(String, String)> {
    long_call(py, || {
        let (cfg, dir) = configure(config_path.as_deref(), config_json.as_deref(), &overrides, out.as_deref())?;
        let r = train_run(&cfg, &dir, TrainOptions { fresh })?;
        Ok((dir.display().to_string(), serde_json::to_string(&r)?))
    })
}

/// Walk a config's stream online (`strata online`); returns the run folder and online.json's
/// text.
#[pyfunction]
#[pyo3(signature = (config_path=None, config_json=None, overrides=Vec::new(), out=None, fresh=false))]
fn online(py: Python<'_>, config_path: Option<String>, config_json: Option<String>, overrides: Vec<String>, out: Option<String>, fresh: bool) -> PyResult<(String, String)> {
    long_call(py, || {
        let (cfg, dir) = configure(config_path.as_deref(), config_json.as_deref(), &overrides, out.as_deref())?;
        if cfg.online.is_none() {
            bail!("no [online] table: add one (e.g. {{\"online\": {{\"strategy\": \"ogd\"}}}}) or overrides={{\"online.strategy\": \"ogd\"}}");
        }
        let r = strata_train::online::run_online(&cfg, &dir, fresh)?;
        Ok((dir.display().to_string(), serde_json::to_string(&r)?))
    })
}

/// Train a run `epochs` more epochs from its last checkpoint (with FedProx's `proximal_mu` if
/// given); returns results.json's text.
#[pyfunction]
#[pyo3(signature = (run_dir, epochs, proximal_mu=None))]
fn fit_more(py: Python<'_>, run_dir: String, epochs: usize, proximal_mu: Option<f64>) -> PyResult<String> {
    long_call(py, || Ok(serde_json::to_string(&continue_training(Path::new(&run_dir), epochs, proximal_mu)?)?))
}

/// Score a run's best checkpoint on its data again; returns the results as JSON text.
#[pyfunction]
fn evaluate(py: Python<'_>, run_dir: String) -> PyResult<String> {
    long_call(py, || Ok(serde_json::to_string(&strata_train::evaluation::run::evaluate_run(Path::new(&run_dir), &[])?)?))
}

/// Forecast from a table `values[rows, columns]` (float32; NaN = missing) with optional column
/// names and timestamps (seconds since 1970, UTC); `at` picks the forecast origin as the CLI's
/// `--at`. Returns `{model, columns, origin, timestamps, values [h, c], quantiles [(level, [h, c])]}`.
#[pyfunction]
#[pyo3(signature = (run_dir, values, columns=None, times=None, at=None))]
fn predict<'py>(py: Python<'py>, run_dir: String, values: PyReadonlyArray2<'py, f32>, columns: Option<Vec<String>>, times: Option<Vec<i64>>, at: Option<String>) -> PyResult<Bound<'py, PyDict>> {
    let (rows, width) = (values.shape()[0], values.shape()[1]);
    let cells: Vec<f32> = values.as_array().iter().copied().collect();
    let (forecast, model) = long_call(py, move || {
        if columns.as_ref().is_some_and(|c| c.len() != width) {
            bail!("input: {} column names for {width} columns of values", columns.as_ref().map_or(0, Vec::len));
        }
        let dates = match times {
            Some(t) if t.len() != rows => bail!("input: {} timestamps for {rows} rows of values", t.len()),
            Some(t) => Some(t.iter().map(|&s| chrono::DateTime::from_timestamp(s, 0).map(|d| d.naive_utc()).ok_or_else(|| anyhow!("input: timestamp {s} is out of range"))).collect::<Result<Vec<_>>>()?),
            None => None,
        };
        let table = InputTable { source: "input".into(), columns, dates, values: cells, rows, width };
        let p = Predictor::load(Path::new(&run_dir), &strata_train::device::compute_device())?;
        let q = p.schema.query(&table, at.as_deref())?;
        Ok((p.predict(std::slice::from_ref(&q)).remove(0), p.schema.model.name().to_string()))
    })?;
    let grid = |g: &[Vec<f32>]| -> PyResult<Bound<'py, PyAny>> {
        let (h, c) = (g.len(), g.first().map_or(0, Vec::len));
        Ok(PyArray1::from_vec(py, g.concat()).reshape([h, c])?.into_any())
    };
    let out = PyDict::new(py);
    out.set_item("model", model)?;
    out.set_item("columns", &forecast.columns)?;
    out.set_item("origin", &forecast.origin)?;
    out.set_item("timestamps", &forecast.timestamps)?;
    out.set_item("values", grid(&forecast.values)?)?;
    let quantiles = PyList::empty(py);
    for (level, g) in &forecast.quantiles {
        quantiles.append((*level, grid(g)?))?;
    }
    out.set_item("quantiles", quantiles)?;
    Ok(out)
}

/// A checkpoint's tensors (`best`: the best validation loss, what `predict` uses; `last`: the
/// last epoch's) by burn parameter path (buffers such as BatchNorm's running statistics
/// included), as float32 arrays of their shapes.
#[pyfunction]
#[pyo3(signature = (run_dir, checkpoint="best"))]
fn get_weights<'py>(py: Python<'py>, run_dir: String, checkpoint: &str) -> PyResult<Bound<'py, PyDict>> {
    let file = match checkpoint {
        "best" | "last" => format!("{checkpoint}.bpk"),
        other => return Err(crate::StrataError::new_err(format!("checkpoint '{other}': expected 'best' or 'last'"))),
    };
    let arrays = long_call(py, move || {
        weights_of(Predictor::load_checkpoint(Path::new(&run_dir), &file, &strata_train::device::compute_device())?.model())
    })?;
    let out = PyDict::new(py);
    for a in arrays {
        out.set_item(&a.name, PyArray1::from_vec(py, a.values).reshape(a.shape)?)?;
    }
    Ok(out)
}

/// Replace the run's model with `weights` (name -> float32 array): it becomes the best
/// checkpoint and the point training continues from. `strict` refuses missing or unknown names;
/// a wrong shape is always refused. Returns `(set, missing, unexpected)`.
#[pyfunction]
#[pyo3(signature = (run_dir, weights, strict=true))]
fn set_weights(py: Python<'_>, run_dir: String, weights: Vec<(String, PyReadonlyArrayDyn<'_, f32>)>, strict: bool) -> PyResult<(usize, Vec<String>, Vec<String>)> {
    let arrays: Vec<NamedArray> = weights.iter().map(|(name, a)| NamedArray { name: name.clone(), shape: a.shape().to_vec(), values: a.as_array().iter().copied().collect() }).collect();
    long_call(py, move || {
        let dir = Path::new(&run_dir);
        let p = Predictor::load(dir, &strata_train::device::compute_device())?;
        let (model, report) = put_weights(p.model().clone(), arrays, strict)?;
        write_run_model(dir, &model)?;
        Ok((report.set, report.missing, report.unexpected))
    })
}

/// The datasets strata knows, with where they are looked for and whether they are there.
#[pyfunction]
fn datasets() -> PyResult<String> {
    let root = strata_data::data_root();
    let mut rows = Vec::new();
    for d in strata_data::registry::DATASETS {
        rows.push(serde_json::json!({"name": d.name, "kind": "long-sequence", "file": root.join(d.file), "freq": d.freq, "on_disk": root.join(d.file).exists()}));
    }
    for (name, file) in strata_data::gluonts::GLUON {
        rows.push(serde_json::json!({"name": name, "kind": "gluonts", "file": root.join(file), "freq": null, "on_disk": root.join(file).exists()}));
    }
    for d in strata_data::spatial::SPATIAL {
        let on_disk = root.join(d.signal).exists() && d.graph.is_none_or(|g| root.join(g).exists());
        rows.push(serde_json::json!({"name": d.name, "kind": "spatio-temporal", "file": root.join(d.signal), "freq": d.freq, "on_disk": on_disk}));
    }
    Ok(serde_json::to_string(&rows).expect("json"))
}
