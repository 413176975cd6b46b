//! Covariates when forecasting new data: a run trained with `data.covariates` saves their
//! names, scalers and static values in its schema; a query reads the past-observed covariates
//! over the context rows and the future-known ones over the context and the horizon rows, which
//! the input must therefore hold (rows after the origin with the future-known columns filled
//! and the target empty). Missing ones are a clear error, never a silent zero.

use anyhow::{Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use strata_data::covariates::CovariateScalers;
use strata_data::prepare::Prepared;
use strata_data::source::ReadSpec;
use strata_data::window::Windows;
use strata_data::SpatialPrepared;
use strata_data::scaler::StandardScaler;
use strata_data::window::CovariateNames;

use super::input::InputTable;

/// What a run saved of its covariates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CovariateSchema {
    pub names: CovariateNames,
    /// 1 (shared by every series) or one group per series, named by `series`.
    pub groups: usize,
    /// The series of a long table / folder (each group's name); empty for a wide file.
    #[serde(default)]
    pub series: Vec<String>,
    /// A long table's target column (inputs name it `series:target`).
    #[serde(default)]
    pub target: Option<String>,
    pub scalers: Option<CovariateScalers>,
    /// The scaled static values `[groups, statics]` the model was trained with.
    #[serde(default)]
    pub statics: Vec<f32>,
}

/// A query's covariates, scaled: `past` `[seq_len, groups x past]`, `future`
/// `[seq_len + pred_len, groups x future]`.
#[derive(Debug, Clone, Default)]
pub struct QueryCovariates {
    pub past: Vec<f32>,
    pub future: Vec<f32>,
}

impl CovariateSchema {
    /// The covariates of a run's prepared data (`None` without covariates).
    pub fn of(data: &Prepared) -> Option<CovariateSchema> {
        Self::of_windows(&data.train, &data.columns, data.source.as_ref().map(|(s, _)| s), data.covariate_scalers.clone())
    }

    /// The covariates of a spatio-temporal run (`None` without covariates).
    pub fn of_spatial(d: &SpatialPrepared) -> Option<CovariateSchema> {
        let ids: Vec<String> = d.ids.clone().unwrap_or_else(|| (0..d.nodes).map(|i| i.to_string()).collect());
        Self::of_windows(&d.train, &ids, d.source.as_ref().map(|(s, _)| s), d.covariate_scalers.clone())
    }

    /// `series`: the data's series (or nodes), which name a long table's per-series columns.
    fn of_windows(train: &Windows, series: &[String], read: Option<&ReadSpec>, scalers: Option<CovariateScalers>) -> Option<CovariateSchema> {
        let c = train.covariates.as_ref()?;
        // Per-series columns (`series:name`) unless every group holds the same shared column.
        let long = c.groups > 1 && !c.shared;
        Some(CovariateSchema {
            names: c.names.clone(),
            groups: c.groups,
            series: if long { series.to_vec() } else { Vec::new() },
            target: long.then(|| read.and_then(|s| s.target.clone()).unwrap_or_else(|| "y".into())),
            scalers,
            statics: c.statics.clone().unwrap_or_default(),
        })
    }

    /// The input's column of each covariate of a kind, for every group.
    fn columns(&self, input: &InputTable, names: &[String], kind: &str) -> Result<Vec<usize>> {
        let have = input.columns.as_ref().ok_or_else(|| anyhow::anyhow!("{}: this model reads covariates by name; give a table with a header", input.source))?;
        let mut out = Vec::new();
        let mut missing = Vec::new();
        let groups: Vec<String> = if self.series.is_empty() { vec![String::new()] } else { self.series.clone() };
        for g in &groups {
            for n in names {
                let want = if g.is_empty() { n.clone() } else { format!("{g}:{n}") };
                match have.iter().position(|h| *h == want) {
                    Some(i) => out.push(i),
                    None => missing.push(want),
                }
            }
        }
        if !missing.is_empty() {
            bail!("{}: missing {kind} covariate column(s) {missing:?}; the model was trained with data.covariates = {:?} (the input has {have:?})", input.source, self.names);
        }
        Ok(out)
    }

    /// A long table's target columns are named `series:target` in the input: name them by series.
    pub fn name_series(&self, input: &mut InputTable) {
        if let (Some(t), Some(cols)) = (&self.target, input.columns.as_mut()) {
            for c in cols.iter_mut() {
                if let Some(series) = c.strip_suffix(&format!(":{t}")) {
                    *c = series.to_string();
                }
            }
        }
    }

    /// The last row at or before which the target holds values: the default forecast origin of
    /// an input whose rows go on into the horizon with only future-known covariates.
    pub fn last_observed(input: &InputTable, target_columns: &[usize]) -> Option<usize> {
        (0..input.rows).rev().find(|&r| target_columns.iter().any(|&j| !input.values[r * input.width + j].is_nan()))
    }

    /// Read and scale the covariates of the context rows `first..=origin` (past-observed) and
    /// of `first..=origin + pred_len` (future-known).
    pub fn query(&self, input: &InputTable, first: usize, origin: usize, pred_len: usize) -> Result<QueryCovariates> {
        let src = &input.source;
        let take = |cols: &[usize], rows: std::ops::Range<usize>, kind: &str, scaler: Option<&StandardScaler>| -> Result<Vec<f32>> {
            let mut out = Vec::with_capacity(rows.len() * cols.len());
            for r in rows {
                for (k, &j) in cols.iter().enumerate() {
                    let v = input.values[r * input.width + j];
                    if v.is_nan() {
                        let name = input.columns.as_ref().map_or(String::new(), |c| c[j].clone());
                        bail!("{src}: row {} has no value in column '{name}', a {kind} covariate the model reads there; fill it in", r + 1);
                    }
                    out.push(scaler.map_or(v, |s| (v - s.mean[k]) / s.std[k]));
                }
            }
            Ok(out)
        };
        let sc = self.scalers.as_ref();
        let past = if self.names.past.is_empty() {
            Vec::new()
        } else {
            take(&self.columns(input, &self.names.past, "past-observed")?, first..origin + 1, "past-observed", sc.and_then(|s| s.past.as_ref()))?
        };
        let future = if self.names.future.is_empty() {
            Vec::new()
        } else {
            let cols = self.columns(input, &self.names.future, "future-known")?;
            let end = origin + 1 + pred_len;
            if end > input.rows {
                bail!(
                    "{src}: the model reads the future-known covariate(s) {:?} over the {pred_len} steps after the forecast origin (rows {}..={end}); the input ends at row {}: add those rows with {:?} filled in (the target left empty)",
                    self.names.future,
                    origin + 2,
                    input.rows,
                    self.names.future
                );
            }
            take(&cols, first..end, "future-known", sc.and_then(|s| s.future.as_ref()))?
        };
        // Shared columns serving every group (a wide table's, with per-node statics): repeated.
        let g = if self.series.is_empty() { self.groups } else { 1 };
        let repeat = |v: Vec<f32>, w: usize| if g > 1 && w > 0 { v.chunks_exact(w).flat_map(|row| std::iter::repeat_n(row, g).flatten().copied()).collect() } else { v };
        Ok(QueryCovariates { past: repeat(past, self.names.past.len()), future: repeat(future, self.names.future.len()) })
    }

    /// The model's covariates for a batch of queries.
    pub fn tensors(&self, queries: &[&QueryCovariates], seq_len: usize, pred_len: usize, device: &Device) -> strata_models::Covariates {
        let [past, future, statics] = [self.names.past.len(), self.names.future.len(), self.names.statics.len()];
        let shape = strata_models::CovariateShape { past, future, statics, groups: self.groups };
        let cat = |get: fn(&QueryCovariates) -> &Vec<f32>| queries.iter().flat_map(|q| get(q).iter().copied()).collect::<Vec<f32>>();
        strata_models::Covariates::from_rows(shape, cat(|q| &q.past), cat(|q| &q.future), Some(self.statics.clone()), [queries.len(), seq_len, pred_len], device)
    }
}
