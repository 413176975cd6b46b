//! What the trainer needs from the data, for both lanes: long-sequence forecasting (LSF, scaled
//! metrics, all or the target channel) and spatio-temporal forecasting (graph data, masked
//! losses and metrics on the original scale).

use std::ops::Range;

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use strata_models::Model;
use burn::tensor::{Device, Tensor, TensorData};
use strata_data::prepare::{Prepared, prepare};
use strata_data::window::{Batch, Windows};
use strata_data::{DataConfig, SpatialPrepared, prepare_spatial};
use strata_models::{Marks, Shape};

use crate::config::{Loss, RunConfig};

/// Targets at or below this magnitude are the null value (missing) in spatio-temporal data.
pub const NULL_EPS: f32 = 5e-5;

pub enum Task {
    Lsf(Prepared),
    Spatial(SpatialPrepared),
}

impl Task {
    pub fn load(cfg: &DataConfig) -> Result<Task> {
        Ok(if cfg.is_spatial() { Task::Spatial(prepare_spatial(cfg)?) } else { Task::Lsf(prepare(cfg)?) })
    }

    pub fn shape(&self) -> Shape {
        match self {
            Task::Lsf(d) => Shape { marks: d.train.mark_width(), covariates: covariate_shape(&d.train), ..Shape::lsf(d.train.seq_len, d.train.pred_len, d.channels()) },
            Task::Spatial(d) => Shape {
                seq_len: d.train.seq_len,
                pred_len: d.train.pred_len,
                channels: d.nodes,
                features: d.in_features,
                steps_per_day: d.steps_per_day.unwrap_or(0),
                tod: d.time_of_day,
                dow: d.day_of_week,
                grid: d.grid,
                marks: 0,
                covariates: covariate_shape(&d.train),
            },
        }
    }

    pub fn adjacency(&self) -> Option<&[f32]> {
        match self {
            Task::Lsf(_) => None,
            Task::Spatial(d) => d.graph.as_ref().map(|g| g.adj.as_slice()),
        }
    }

    pub fn splits(&self) -> [&Windows; 3] {
        match self {
            Task::Lsf(d) => [&d.train, &d.val, &d.test],
            Task::Spatial(d) => [&d.train, &d.val, &d.test],
        }
    }

    pub fn dataset(&self) -> &str {
        match self {
            Task::Lsf(d) => &d.dataset,
            Task::Spatial(d) => &d.dataset,
        }
    }

    /// Forecast channels the loss and metrics use (LSF `MS` keeps only the target).
    pub fn output(&self) -> Range<usize> {
        match self {
            Task::Lsf(d) => d.output_channels(),
            Task::Spatial(d) => 0..d.nodes,
        }
    }

    /// The input tensor `[b, seq_len, nodes, features]` of a filled batch (takes its buffer).
    pub fn input(&self, batch: &mut Batch, device: &Device) -> Tensor<4> {
        let s = self.shape();
        Tensor::from_data(TensorData::new(std::mem::take(&mut batch.x), [batch.size, s.seq_len, s.channels, s.features]), device)
    }

    /// The calendar features of the batch's input and target rows, where the data has them.
    /// Each window's graph `[b, nodes, nodes]` when the data has a graph per step (the mean
    /// adjacency over the window's input steps); `None` otherwise. `windows` is the split the
    /// batch was filled from.
    pub fn graphs(&self, windows: &Windows, batch: &Batch, device: &Device) -> Option<Tensor<3>> {
        let Task::Spatial(d) = self else { return None };
        window_graphs(d, windows, batch, device)
    }

    /// The covariates of a batch filled from the training split's data (any split: they share it).
    pub fn covariates(&self, batch: &mut Batch, device: &Device) -> Option<strata_models::Covariates> {
        covariates_of(self.splits()[0], batch, device)
    }

    pub fn marks(&self, batch: &mut Batch, device: &Device) -> Option<Marks> {
        let w = self.splits()[0];
        marks_of(batch, w.seq_len, w.pred_len, device)
    }

    /// The target tensor `[b, pred_len, target channels]` of a filled batch (takes its buffer).
    pub fn target(&self, batch: &mut Batch, device: &Device) -> Tensor<3> {
        let [w, ..] = self.splits();
        let (h, c) = (w.pred_len, w.target.channels);
        Tensor::from_data(TensorData::new(std::mem::take(&mut batch.y), [batch.size, h, c]), device)
    }

    /// The target points the masked spatio-temporal loss keeps (not the null value) among the
    /// output channels of `truth`.
    pub fn kept_points(&self, truth: &Tensor<3>) -> f64 {
        let out = self.output();
        let kept: f32 = truth.clone().narrow(2, out.start, out.len()).abs().greater_elem(NULL_EPS).float().sum().into_scalar();
        kept as f64
    }

    /// The training loss of a forecast `[b, pred_len, nodes]` against the batch targets.
    pub fn loss(&self, loss: Loss, pred: Tensor<3>, truth: Tensor<3>) -> Tensor<1> {
        let out = self.output();
        let pred = pred.narrow(2, out.start, out.len());
        let truth = truth.narrow(2, out.start, out.len());
        match self {
            Task::Lsf(_) => {
                let diff = pred - truth;
                match loss {
                    Loss::Mse => diff.powi_scalar(2).mean(),
                    Loss::Mae => diff.abs().mean(),
                }
            }
            Task::Spatial(d) => {
                // BasicTS: forecast back on the original scale, error masked where the target is
                // the null value, the mask rescaled to mean 1.
                let pred = pred * d.scaler.std[0] + d.scaler.mean[0];
                let mask = truth.clone().abs().greater_elem(NULL_EPS).float();
                let diff = pred - truth;
                let err = match loss {
                    Loss::Mse => diff.powi_scalar(2),
                    Loss::Mae => diff.abs(),
                };
                let kept = mask.clone().sum();
                (err * mask).sum() / kept.clamp_min(1.0)
            }
        }
    }
}

impl Task {
    /// The first non-finite value among the inputs and targets of training windows `batch`:
    /// which window, which data row (1-based, as the data was read) and which column.
    pub fn nonfinite_input(&self, batch: &[usize]) -> Option<String> {
        let w = self.splits()[0];
        let names: Vec<String> = match self {
            Task::Lsf(d) => d.columns.clone(),
            Task::Spatial(d) => d.ids.clone().unwrap_or_else(|| (0..d.nodes).map(|i| format!("node {i}")).collect()),
        };
        let features = w.series.channels / names.len().max(1);
        for &i in batch {
            let first = w.start + i * w.stride;
            let parts: [(&[f32], usize, usize, &str); 2] = [(w.x(i), first, w.series.channels, "input"), (w.y(i), first + w.seq_len, w.target.channels, "target")];
            for (values, row0, width, what) in parts {
                if let Some(k) = values.iter().position(|v| !v.is_finite()) {
                    let (row, col) = (row0 + k / width, k % width);
                    let name = names.get(col / if what == "input" { features.max(1) } else { 1 }).cloned().unwrap_or_else(|| col.to_string());
                    return Some(format!("training window {i} holds {} in its {what} at data row {} (column '{name}'): the data has a missing or non-finite cell there; set data.impute, or clean the file", values[k], row + 1));
                }
            }
            if let Some(c) = &w.covariates {
                for (series, len, kind) in [(&c.past, w.seq_len, "past-observed"), (&c.future, w.seq_len + w.pred_len, "future-known")] {
                    let Some(s) = series else { continue };
                    let cells = &s.data[first * s.channels..(first + len) * s.channels];
                    if let Some(k) = cells.iter().position(|v| !v.is_finite()) {
                        return Some(format!("training window {i} holds {} in a {kind} covariate at data row {}", cells[k], first + k / s.channels + 1));
                    }
                }
            }
        }
        None
    }
}

/// The covariate widths of a split's windows, as the models see them.
pub fn covariate_shape(w: &Windows) -> strata_models::CovariateShape {
    let [past, future, statics, groups] = w.covariate_widths();
    strata_models::CovariateShape { past, future, statics, groups }
}

/// The covariates of a filled batch (takes its buffers); `None` when the data has none.
pub fn covariates_of(windows: &Windows, batch: &mut Batch, device: &Device) -> Option<strata_models::Covariates> {
    let c = windows.covariates.as_ref()?;
    let (past, future) = (std::mem::take(&mut batch.past), std::mem::take(&mut batch.future));
    Some(strata_models::Covariates::from_rows(covariate_shape(windows), past, future, c.statics.clone(), [batch.size, windows.seq_len, windows.pred_len], device))
}

/// The calendar features of a filled batch (takes its buffers), if any.
pub fn marks_of(batch: &mut Batch, seq_len: usize, pred_len: usize, device: &Device) -> Option<Marks> {
    if batch.x_mark.is_empty() {
        return None;
    }
    let (b, m) = (batch.size, batch.x_mark.len() / (batch.size * seq_len));
    Some(Marks {
        x: Tensor::from_data(TensorData::new(std::mem::take(&mut batch.x_mark), [b, seq_len, m]), device),
        y: Tensor::from_data(TensorData::new(std::mem::take(&mut batch.y_mark), [b, pred_len, m]), device),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataRecord {
    pub dataset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub rows: usize,
    pub columns: Vec<String>,
    pub features: String,
    pub borders: [(usize, usize); 3],
    pub windows: [usize; 3],
    pub cells_imputed: usize,
    pub duplicate_timestamps: usize,
    pub irregular_steps: usize,
    /// Spatio-temporal data: the graph file and its SHA-256, the node count.
    #[serde(default)]
    pub graph: Option<PathBuf>,
    #[serde(default)]
    pub graph_sha256: Option<String>,
    #[serde(default)]
    pub nodes: Option<usize>,
    /// What reading a file from the wild did (time source, step, gaps, duplicates, encoded
    /// columns, index column, columns left out); absent for the benchmark readers.
    #[serde(default)]
    pub read: Option<strata_data::source::ReadReport>,
}

impl Task {
    /// What the results record of the data.
    pub fn record(&self) -> DataRecord {
    match self {
        Task::Lsf(d) => data_record_lsf(d),
        Task::Spatial(d) => DataRecord {
            dataset: d.dataset.clone(),
            path: d.path.clone(),
            sha256: d.sha256.clone(),
            rows: d.rows,
            columns: d.ids.clone().unwrap_or_default(),
            features: "ST".into(),
            borders: d.borders,
            windows: [d.train.len(), d.val.len(), d.test.len()],
            cells_imputed: 0,
            duplicate_timestamps: 0,
            irregular_steps: 0,
            graph: d.graph.as_ref().map(|g| g.path.clone()),
            graph_sha256: d.graph_sha256.clone(),
            nodes: Some(d.nodes),
            read: d.source.as_ref().map(|(_, r)| r.clone()),
        },
    }
}
}

/// The data record of long-sequence data.
pub fn data_record_lsf(d: &Prepared) -> DataRecord {
    DataRecord {
        graph: None,
        graph_sha256: None,
        nodes: None,
        dataset: d.dataset.clone(),
        path: d.path.clone(),
        sha256: d.sha256.clone(),
        rows: d.rows,
        columns: d.columns.clone(),
        features: d.features.name().into(),
        borders: [d.borders.train, d.borders.val, d.borders.test],
        windows: [d.train.len(), d.val.len(), d.test.len()],
        cells_imputed: d.impute.total,
        duplicate_timestamps: d.quality.duplicate_timestamp_lines.len(),
        irregular_steps: d.quality.irregular_step_lines.len(),
        read: d.source.as_ref().map(|(_, r)| r.clone()),
    }
}

/// The graphs of a batch's windows (see [`Task::graphs`]).
pub fn window_graphs(d: &strata_data::SpatialPrepared, windows: &Windows, batch: &Batch, device: &Device) -> Option<Tensor<3>> {
    let g = d.dynamic.as_ref()?;
    let n = g.n;
    let mut out = Vec::with_capacity(batch.size * n * n);
    for &i in &batch.index {
        out.extend(g.window(windows.start + i * windows.stride, windows.seq_len));
    }
    Some(Tensor::from_data(TensorData::new(out, [batch.size, n, n]), device))
}

/// Build the model of `cfg` for the data of `task`, or say why it cannot be built.
pub fn build_model(cfg: &RunConfig, task: &Task, device: &Device) -> Result<Model> {
    if let Task::Spatial(d) = task
        && let Some(g) = &d.dynamic
        && cfg.model.needs_graph()
        && !cfg.model.dynamic_graph()
    {
        anyhow::bail!(
            "{} does not take a graph per window, and {} has a graph per time step ({} steps): set data.dynamic_graph = \"mean\" to give it the time-averaged graph, or use stgcn or gwnet, which take each window's graph",
            cfg.model.name(),
            d.graph.as_ref().map_or_else(|| d.path.display().to_string(), |gr| gr.path.display().to_string()),
            g.steps.len()
        );
    }
    let shape = task.shape();
    cfg.model.covariates().refuse(cfg.model.name(), &shape.covariates).map_err(anyhow::Error::msg)?;
    cfg.model.check(&shape, task.adjacency().is_some()).map_err(anyhow::Error::msg)?;
    cfg.model.try_init(shape, task.adjacency(), device).map_err(anyhow::Error::msg)
}

