//! Covariates (`[data.covariates]`): columns that are inputs but not forecast, of three kinds
//! (as neuralforecast's `hist_exog`, `futr_exog`, `stat_exog` and darts' past / future
//! covariates):
//!
//! * `past`: observed with the target, known only up to the forecast origin (the load series
//!   of ETT, the measured weather);
//! * `future`: known over the horizon too (holidays, schedules, a weather forecast); the
//!   calendar marks are always future-known and need no naming;
//! * `static`: one value per series or location (coordinates, a category), constant in time.
//!
//! A wide file's covariates are shared by all its series (one group); a long table's or a
//! folder's are per series (`unique_id` or location): one group per series. Text columns
//! encoded one-hot are named by their column (`wd` selects `wd=N`, `wd=NNW`, ...). Each kind
//! is scaled with statistics of the training rows, as the series are.

use crate::DataError;
use crate::scaler::StandardScaler;
use crate::table::Table;
use crate::window::{CovariateNames, CovariateSeries, Series};

/// The `[data.covariates]` table: column names of each kind.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CovariateConfig {
    /// Past-observed covariates: known up to the forecast origin only. `["*"]`: every column
    /// that is not the target nor named in another kind (TSLib's `MS` inputs, as covariates).
    pub past: Vec<String>,
    /// Future-known covariates: known over the horizon (required input when forecasting).
    pub future: Vec<String>,
    /// Static covariates: constant per series / location.
    #[serde(rename = "static")]
    pub statics: Vec<String>,
    /// A table of one row per series or node (an id column: `id`, `sensor_id`, `station`,
    /// `unique_id`, `node`, `location`, or the first) holding the static covariates: every name
    /// in `static` is then read from it (text columns one-hot).
    pub static_file: Option<std::path::PathBuf>,
}

impl CovariateConfig {
    pub fn is_empty(&self) -> bool {
        self.past.is_empty() && self.future.is_empty() && self.statics.is_empty()
    }
    /// The names to take from the data table itself (static ones come from `static_file` when given).
    pub fn in_table(&self) -> CovariateConfig {
        CovariateConfig { statics: if self.static_file.is_some() { vec![] } else { self.statics.clone() }, static_file: None, ..self.clone() }
    }
    fn kinds(&self) -> [(&'static str, &[String]); 3] {
        [("past", &self.past), ("future", &self.future), ("static", &self.statics)]
    }
}

/// Covariates taken out of a table, unscaled: `[rows, groups x width]` per kind.
#[derive(Debug, Clone)]
pub struct Split {
    pub groups: usize,
    pub names: CovariateNames,
    pub past: Vec<f32>,
    pub future: Vec<f32>,
    pub statics: Vec<f32>,
    pub rows: usize,
    /// Every group holds the same columns (a wide table's, repeated for per-node statics).
    pub shared: bool,
}

/// The scalers of each kind, fitted on the training rows (saved with a run, so forecasting
/// scales new covariates alike).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CovariateScalers {
    pub past: Option<StandardScaler>,
    pub future: Option<StandardScaler>,
    #[serde(rename = "static")]
    pub statics: Option<StandardScaler>,
}

/// Whether column `col` is covariate `name` of series `node` ("" for a wide file's columns):
/// `name`, `node:name`, or a one-hot column of it (`name=value`).
fn matches(col: &str, node: &str, name: &str) -> bool {
    let rest = if node.is_empty() { Some(col) } else { col.strip_prefix(node).and_then(|r| r.strip_prefix(':')) };
    rest.is_some_and(|r| r == name || r.strip_prefix(name).is_some_and(|v| v.starts_with('=')))
}

/// The series (groups) of a table's columns: the part before `:` of `node:feature` columns,
/// in order of first appearance; one unnamed group for a wide table.
fn groups_of(table: &Table) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in &table.columns {
        match c.split_once(':') {
            Some((node, _)) if !out.iter().any(|n| n == node) => out.push(node.to_string()),
            _ => {}
        }
    }
    if out.is_empty() || table.columns.iter().any(|c| !c.contains(':')) { vec![String::new()] } else { out }
}

/// `cfg` with a `"*"` entry replaced by every column of series `node` not otherwise named and
/// not the target (one-hot columns by their source column).
fn expand_star(cfg: &CovariateConfig, table: &Table, node: &str, target: Option<&str>) -> Result<CovariateConfig, DataError> {
    let named: Vec<&String> = [&cfg.past, &cfg.future, &cfg.statics].into_iter().flatten().filter(|n| *n != "*").collect();
    let mut rest: Vec<String> = Vec::new();
    for c in &table.columns {
        let base = if node.is_empty() { Some(c.as_str()) } else { c.strip_prefix(node).and_then(|r| r.strip_prefix(':')) };
        let Some(base) = base else { continue };
        let base = base.split_once('=').map_or(base, |(b, _)| b).to_string();
        if Some(base.as_str()) != target && !named.contains(&&base) && !rest.contains(&base) {
            rest.push(base);
        }
    }
    let expand = |list: &Vec<String>, kind: &str| -> Result<Vec<String>, DataError> {
        if !list.iter().any(|n| n == "*") {
            return Ok(list.clone());
        }
        if rest.is_empty() {
            return Err(DataError::Config(format!("data.covariates.{kind} = [\"*\"] found no column besides the target and the named covariates")));
        }
        Ok(list.iter().filter(|n| *n != "*").cloned().chain(rest.iter().cloned()).collect())
    };
    let out = CovariateConfig { past: expand(&cfg.past, "past")?, future: expand(&cfg.future, "future")?, statics: expand(&cfg.statics, "static")?, static_file: None };
    if [&cfg.past, &cfg.future, &cfg.statics].into_iter().filter(|l| l.iter().any(|n| n == "*")).count() > 1 {
        return Err(DataError::Config("data.covariates: \"*\" may stand in one kind only".into()));
    }
    Ok(out)
}

/// Take the covariates of `cfg` out of `table` (which keeps the series to forecast, named by
/// series for a long table). `None` when no covariate is named.
pub fn split(table: &mut Table, cfg: &CovariateConfig, target: Option<&str>) -> Result<Option<Split>, DataError> {
    if cfg.is_empty() {
        return Ok(None);
    }
    let mut seen = std::collections::BTreeMap::new();
    for (kind, names) in cfg.kinds() {
        for n in names {
            if let Some(other) = seen.insert(n.clone(), kind) {
                return Err(DataError::Config(format!("column '{n}' is named in data.covariates.{other} and data.covariates.{kind}: a covariate has one kind")));
            }
            if Some(n.as_str()) == target {
                return Err(DataError::Config(format!("data.covariates.{kind} names the target '{n}': the target is forecast, not a covariate")));
            }
        }
    }
    let groups = groups_of(table);
    let g = groups.len();
    let cfg = &expand_star(cfg, table, &groups[0], target)?;
    // Column indices per kind: for each covariate (expanded one-hot), one column per group.
    let mut taken = vec![false; table.cols()];
    let mut cols: [Vec<Vec<usize>>; 3] = Default::default();
    let mut names: [Vec<String>; 3] = Default::default();
    for (k, (kind, list)) in cfg.kinds().into_iter().enumerate() {
        for name in list {
            let first: Vec<usize> = (0..table.cols()).filter(|&c| matches(&table.columns[c], &groups[0], name)).collect();
            if first.is_empty() {
                let node = if groups[0].is_empty() { String::new() } else { format!(" for series '{}'", groups[0]) };
                return Err(DataError::file(
                    &table.path,
                    format!("data.covariates.{kind} names '{name}', which is not a column{node}; the columns are {:?}", table.columns),
                ));
            }
            for &c0 in &first {
                let suffix = &table.columns[c0][if groups[0].is_empty() { 0 } else { groups[0].len() + 1 }..];
                let mut per_group = Vec::with_capacity(g);
                for node in &groups {
                    let want = if node.is_empty() { suffix.to_string() } else { format!("{node}:{suffix}") };
                    let c = table.columns.iter().position(|x| *x == want).ok_or_else(|| DataError::file(&table.path, format!("series '{node}' has no column '{suffix}' (data.covariates.{kind})")))?;
                    taken[c] = true;
                    per_group.push(c);
                }
                names[k].push(suffix.to_string());
                cols[k].push(per_group);
            }
        }
    }
    let rows = table.rows;
    let gather = |cols: &[Vec<usize>]| -> Vec<f32> {
        let w = cols.len();
        let mut out = vec![0f32; rows * g * w];
        for r in 0..rows {
            let row = table.row(r);
            for gi in 0..g {
                for (j, per_group) in cols.iter().enumerate() {
                    out[(r * g + gi) * w + j] = row[per_group[gi]];
                }
            }
        }
        out
    };
    let (past, future) = (gather(&cols[0]), gather(&cols[1]));
    // Static: the value of each group, constant over the rows.
    let s = cols[2].len();
    let mut statics = vec![0f32; g * s];
    for (j, per_group) in cols[2].iter().enumerate() {
        for (gi, &c) in per_group.iter().enumerate() {
            let first = (0..rows).map(|r| table.row(r)[c]).find(|v| !v.is_nan()).unwrap_or(f32::NAN);
            if let Some(r) = (0..rows).find(|&r| {
                let v = table.row(r)[c];
                !v.is_nan() && v != first
            }) {
                return Err(DataError::file(
                    &table.path,
                    format!("data.covariates.static names '{}', but column '{}' changes over time ({first} in the first row, {} in row {}): a static covariate is constant per series; name it in data.covariates.past or .future", names[2][j], table.columns[c], table.row(r)[c], r + 1),
                ));
            }
            statics[gi * s + j] = first;
        }
    }
    let keep: Vec<usize> = (0..table.cols()).filter(|&c| !taken[c]).collect();
    if keep.is_empty() {
        return Err(DataError::Config("data.covariates names every column: leave the series to forecast out of it".into()));
    }
    let mut rest = table.select(&keep);
    // A long table's remaining columns are `series:target`: name them by series.
    if !groups[0].is_empty() && rest.cols() == g {
        rest.columns = rest.columns.iter().map(|c| c.split_once(':').map_or(c.clone(), |(n, _)| n.to_string())).collect();
    }
    *table = rest;
    let [p, f, st] = names;
    Ok(Some(Split { groups: g, names: CovariateNames { past: p, future: f, statics: st }, past, future, statics, rows, shared: false }))
}

impl Split {
    /// Scale each kind with statistics of rows `[0, train_end)` (statics across series, when
    /// there are several) and share the result with the windows.
    pub fn scale(mut self, train_end: usize, scale: bool) -> (CovariateSeries, Option<CovariateScalers>) {
        let [p, f, s] = [self.names.past.len(), self.names.future.len(), self.names.statics.len()];
        let g = self.groups;
        let fit = |v: &mut Vec<f32>, cols: usize, rows: usize| -> Option<StandardScaler> {
            (cols > 0 && scale).then(|| {
                let sc = StandardScaler::fit(v, cols, rows);
                sc.transform(v);
                sc
            })
        };
        let scalers = CovariateScalers {
            past: fit(&mut self.past, g * p, train_end),
            future: fit(&mut self.future, g * f, train_end),
            statics: if g > 1 { fit(&mut self.statics, s, g) } else { None },
        };
        let series = |data: Vec<f32>, w: usize| (w > 0).then(|| Series { data: data.into(), rows: self.rows, channels: g * w });
        let out = CovariateSeries {
            past: series(self.past, p),
            future: series(self.future, f),
            statics: (s > 0).then_some(self.statics),
            groups: g,
            shared: self.shared,
            names: self.names,
        };
        (out, scale.then_some(scalers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: usize) -> Table {
        let c = columns.len();
        let values = (0..rows * c).map(|i| if columns[i % c].contains("elev") { 7.0 } else { i as f32 }).collect();
        Table { path: "t.csv".into(), columns: columns.iter().map(|s| s.to_string()).collect(), dates: None, values, rows, quality: Default::default() }
    }

    #[test]
    fn wide_columns_become_one_shared_group() {
        let mut t = table(&["load", "wd=N", "wd=S", "OT"], 3);
        let cfg = CovariateConfig { past: vec!["load".into()], future: vec!["wd".into()], statics: vec![], ..Default::default() };
        let s = split(&mut t, &cfg, Some("OT")).unwrap().unwrap();
        assert_eq!(t.columns, ["OT"]);
        assert_eq!(t.values, [3.0, 7.0, 11.0]);
        assert_eq!((s.groups, s.names.past.clone(), s.names.future.clone()), (1, vec!["load".to_string()], vec!["wd=N".to_string(), "wd=S".to_string()]));
        assert_eq!(s.past, [0.0, 4.0, 8.0]);
        assert_eq!(s.future, [1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
    }

    #[test]
    fn star_names_every_other_column() {
        let mut t = table(&["a", "b", "hol", "OT"], 2);
        let cfg = CovariateConfig { past: vec!["*".into()], future: vec!["hol".into()], statics: vec![], ..Default::default() };
        let s = split(&mut t, &cfg, Some("OT")).unwrap().unwrap();
        assert_eq!((s.names.past.clone(), s.names.future.clone(), t.columns.clone()), (vec!["a".to_string(), "b".to_string()], vec!["hol".to_string()], vec!["OT".to_string()]));
    }

    #[test]
    fn long_table_covariates_are_per_series() {
        let mut t = table(&["a:y", "a:temp", "a:elev", "b:y", "b:temp", "b:elev"], 2);
        let cfg = CovariateConfig { past: vec!["temp".into()], future: vec![], statics: vec!["elev".into()], ..Default::default() };
        let s = split(&mut t, &cfg, Some("y")).unwrap().unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.values, [0.0, 3.0, 6.0, 9.0]);
        assert_eq!(s.groups, 2);
        // [rows, groups x 1]: row 0 (a, b), row 1 (a, b).
        assert_eq!(s.past, [1.0, 4.0, 7.0, 10.0]);
        assert_eq!(s.statics, [7.0, 7.0]);
    }

    #[test]
    fn refusals_name_the_column_and_the_fix() {
        let mut t = table(&["load", "OT"], 3);
        let e = split(&mut t, &CovariateConfig { past: vec!["lod".into()], ..Default::default() }, Some("OT")).unwrap_err().to_string();
        assert!(e.contains("'lod'") && e.contains("t.csv") && e.contains("[\"load\", \"OT\"]"), "{e}");
        let e = split(&mut t, &CovariateConfig { statics: vec!["load".into()], ..Default::default() }, Some("OT")).unwrap_err().to_string();
        assert!(e.contains("changes over time") && e.contains("data.covariates.past"), "{e}");
        let e = split(&mut t, &CovariateConfig { past: vec!["OT".into()], ..Default::default() }, Some("OT")).unwrap_err().to_string();
        assert!(e.contains("the target"), "{e}");
        let e = split(&mut t, &CovariateConfig { past: vec!["load".into()], future: vec!["load".into()], ..Default::default() }, Some("OT")).unwrap_err().to_string();
        assert!(e.contains("one kind"), "{e}");
    }

    #[test]
    fn scaling_uses_training_rows_only() {
        let mut t = table(&["load", "OT"], 4);
        let s = split(&mut t, &CovariateConfig { past: vec!["load".into()], ..Default::default() }, Some("OT")).unwrap().unwrap();
        // load = 0, 2, 4, 6; train rows 0..2 -> mean 1, std 1.
        let (c, sc) = s.scale(2, true);
        assert_eq!(&c.past.unwrap().data[..], [-1.0, 1.0, 3.0, 5.0]);
        assert_eq!(sc.unwrap().past.unwrap().mean, [1.0]);
    }
}
