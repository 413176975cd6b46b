//! Files from the wild: how a table, a long table or a folder of per-location files becomes one
//! regular time axis of numbers, with settings alone (docs/data.md, "Bring your own data").
//!
//! * [`raw`]: CSV / TSV / `.gz`, Parquet and Arrow IPC files as typed columns;
//! * [`wide`]: the time (one column, with a format, or assembled from parts), kept and dropped
//!   columns, the index column, text columns encoded (one-hot or codes) or refused;
//! * [`align`]: a regular time grid: sorted, duplicates refused or merged, gaps inserted as
//!   missing cells and counted;
//! * [`long`]: `unique_id, ds, y` tables pivoted to one column (or node) per series;
//! * [`folder`]: one file per location -> one spatio-temporal dataset;
//! * [`coords`]: a graph from coordinates (Gaussian kernel of distances, or k nearest).

pub mod align;
pub mod coords;
pub mod folder;
pub mod inspect;
pub mod long;
pub mod raw;

/// The columns of `data.coordinate_columns` in `raw`, and each node's (constant) values: `rows`
/// are the rows of each node, `nodes` their names.
pub(crate) fn node_statics(raw: &raw::RawTable, spec: &ReadSpec, nodes: &[String], rows: &[Vec<usize>]) -> Result<BTreeMap<String, Vec<f64>>, DataError> {
    let mut out = BTreeMap::new();
    let Some(cols) = &spec.coordinate_columns else { return Ok(out) };
    if cols.len() != 2 {
        return Err(DataError::Config(format!("data.coordinate_columns = {cols:?}: give two columns (latitude and longitude, or x and y)")));
    }
    for name in cols {
        let c = raw.require(name, "data.coordinate_columns")?;
        let raw::Cells::Num(v) = &raw.cells[c] else { return Err(DataError::file(&raw.path, format!("column '{name}' (from data.coordinate_columns) must hold numbers"))) };
        let mut per_node = Vec::with_capacity(nodes.len());
        for (node, rs) in nodes.iter().zip(rows) {
            let first = v[rs[0]];
            if let Some(&r) = rs.iter().find(|&&r| v[r] != first) {
                return Err(raw.error_at(r, c, format!("node '{node}' has the coordinate {} here and {first} on {}: a node's coordinates must not change", v[r], raw.place(rs[0]))));
            }
            per_node.push(first);
        }
        out.insert(name.clone(), per_node);
    }
    Ok(out)
}
pub mod wide;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

use crate::DataError;

/// How a file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One row per time step, one column per variable.
    Wide,
    /// One row per (series, time): an id column, a time column, a value column (neuralforecast,
    /// statsforecast, GluonTS's pandas datasets, darts).
    Long,
    /// A folder of files with the same columns, one per location (node).
    Folder,
}

/// Where the timestamps come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum TimeSpec {
    /// One column (parsed with `data.time_format` when given).
    Column(String),
    /// Columns holding year, month, day, hour, minute, second, in that order (a prefix of it).
    Parts(Vec<String>),
}

/// How text columns become numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One 0/1 input per value seen in the training file (`wd=NNW`, ...); a missing cell is all 0.
    Onehot,
    /// One input holding the value's index in the sorted values (a missing cell is missing).
    Codes,
}

/// What to do with rows that repeat a timestamp (of one series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    First,
    Last,
    Mean,
}

/// How series of different spans share one time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    /// From the earliest start to the latest end; cells a series lacks are missing (imputed).
    #[default]
    Union,
    /// Only the span every series covers.
    Intersection,
}

/// The reading settings of a run (the `data.*` keys that say how to read a file), saved in the
/// run's schema so that forecasting reads new files of the same layout the same way.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ReadSpec {
    pub layout: Option<Layout>,
    pub time: Option<TimeSpec>,
    pub time_format: Option<String>,
    /// Keep only these value columns (the target is always kept).
    pub columns: Option<Vec<String>>,
    pub drop: Vec<String>,
    pub categorical: Option<Encoding>,
    /// Long tables: the series id column (default `unique_id`).
    pub id_column: Option<String>,
    /// Keep only these series (long tables) or locations (folders), in this order.
    pub ids: Option<Vec<String>>,
    pub duplicates: Option<Duplicates>,
    pub align: Align,
    /// Folders: the column naming the location (checked to hold one value per file).
    pub location_column: Option<String>,
    /// Folders and long tables: the two columns holding each node's coordinates (latitude and
    /// longitude, or x and y), constant per node; read as static values, not as inputs.
    pub coordinate_columns: Option<Vec<String>>,
    /// The target column (long tables: default `y`).
    pub target: Option<String>,
    /// The text values of each encoded column, in code order (fixed by the training file).
    pub categories: BTreeMap<String, Vec<String>>,
    /// Columns read as covariates (`data.covariates`): kept by a long table's reader, which
    /// otherwise reads the target and `data.columns` only.
    pub covariates: Vec<String>,
}

/// What reading did to the file, for the run's record and `strata inspect`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReadReport {
    pub layout: String,
    /// Where the timestamps came from (a column, parts, or none).
    pub time_from: Option<String>,
    pub step_seconds: Option<i64>,
    pub step_months: Option<u32>,
    pub first: Option<String>,
    pub last: Option<String>,
    /// An index column detected and left out.
    pub index_column: Option<String>,
    pub dropped: Vec<String>,
    /// Encoded text columns and their number of values.
    pub encoded: Vec<(String, usize)>,
    /// Rows whose timestamps were missing, inserted as missing cells, per series.
    pub gaps: Vec<(String, usize)>,
    /// Rows merged because they repeated a timestamp, per series.
    pub duplicates: Vec<(String, usize)>,
    /// Rows cut to the span every series covers (`data.align = "intersection"`), per series.
    pub cut: Vec<(String, usize)>,
    /// Rows that were out of time order (sorted).
    pub sorted: bool,
}

/// A file read onto one regular time axis: `values[t][node][feature]`.
#[derive(Debug, Clone)]
pub struct Frame {
    pub path: PathBuf,
    pub dates: Option<Vec<NaiveDateTime>>,
    pub rows: usize,
    /// Series or locations (one unnamed node for a wide table).
    pub nodes: Vec<String>,
    /// Value columns of each node (the target first for long tables and folders).
    pub features: Vec<String>,
    pub values: Vec<f32>,
    /// The text values of each encoded column (saved with the run).
    pub categories: BTreeMap<String, Vec<String>>,
    /// Per node, the values of `data.coordinate_columns` (constant in every row of a node).
    pub statics: BTreeMap<String, Vec<f64>>,
    pub report: ReadReport,
}

impl Frame {
    /// Missing cells (NaN).
    pub fn missing(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }
    /// Column names of the flat `[rows, nodes x features]` table: the features of a single
    /// unnamed node, the nodes when there is one feature, else `node:feature`.
    pub fn column_names(&self) -> Vec<String> {
        if self.nodes.len() == 1 && self.nodes[0].is_empty() {
            return self.features.clone();
        }
        if self.features.len() == 1 {
            return self.nodes.clone();
        }
        self.nodes.iter().flat_map(|n| self.features.iter().map(move |f| format!("{n}:{f}"))).collect()
    }
    /// The flat table, named by [`Frame::column_names`].
    pub fn into_table(self) -> crate::table::Table {
        let columns = self.column_names();
        let quality = crate::table::Quality { step_seconds: self.report.step_seconds, missing_cells: self.missing(), ..Default::default() };
        crate::table::Table { path: self.path, columns, dates: self.dates, values: self.values, rows: self.rows, quality }
    }
}

/// Whether `path` needs these readers rather than the benchmark readers: a folder, Parquet,
/// Arrow, a long table (`unique_id` and `ds` in the header), or any reading setting given.
pub fn needs_source(path: &Path, spec: &ReadSpec) -> bool {
    path.is_dir() || raw::file_kind(path) != raw::FileKind::Csv || *spec != ReadSpec { target: spec.target.clone(), categories: spec.categories.clone(), covariates: spec.covariates.clone(), ..Default::default() } || is_long_header(path)
}

/// Whether a text table's header names `unique_id` and `ds`.
fn is_long_header(path: &Path) -> bool {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else { return false };
    let mut head = vec![0u8; 4096];
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let got = if gz { flate2::read::GzDecoder::new(file).read(&mut head) } else { std::io::BufReader::new(file).read(&mut head) };
    let Ok(got) = got else { return false };
    let line = String::from_utf8_lossy(&head[..got]).lines().next().unwrap_or("").to_ascii_lowercase();
    let cells: Vec<&str> = line.split([',', ';', '\t', '|']).map(|c| c.trim().trim_matches('"')).collect();
    cells.contains(&"unique_id") && cells.contains(&"ds")
}

/// Read a table held in memory (a request body) as `spec` says: a wide or long table.
pub fn read_frame_bytes(name: &Path, bytes: &[u8], kind: raw::FileKind, spec: &ReadSpec) -> Result<Frame, DataError> {
    let raw = raw::parse_bytes(name, bytes, kind)?;
    from_raw(raw, spec)
}

fn from_raw(raw: raw::RawTable, spec: &ReadSpec) -> Result<Frame, DataError> {
    let long = match spec.layout {
        Some(Layout::Long) => true,
        Some(_) => false,
        None => spec.id_column.is_some() || (raw.position("unique_id").is_some() && raw.position("ds").is_some()),
    };
    if long { long::read_long(raw, spec) } else { wide::read_wide(raw, spec) }
}

/// Read `path` (file or folder) as `spec` says.
pub fn read_frame(path: &Path, spec: &ReadSpec) -> Result<Frame, DataError> {
    if !path.exists() {
        return Err(DataError::not_found(path));
    }
    let layout = match spec.layout {
        Some(l) => l,
        None if path.is_dir() => Layout::Folder,
        None => return from_raw(raw::read_raw(path)?, spec),
    };
    match layout {
        Layout::Folder => folder::read_folder(path, spec),
        _ if path.is_dir() => Err(DataError::file(path, format!("is a folder; data.layout = \"{}\" reads one file (use \"folder\" for a folder of per-location files)", if layout == Layout::Long { "long" } else { "wide" }))),
        Layout::Long => long::read_long(raw::read_raw(path)?, spec),
        Layout::Wide => wide::read_wide(raw::read_raw(path)?, spec),
    }
}
