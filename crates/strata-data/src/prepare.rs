//! The whole data pipeline of one run: read, impute, select features, scale, split, window.

use std::path::PathBuf;

use crate::covariates::{CovariateConfig, CovariateScalers};
use crate::graph::EdgeWeights;
use crate::source::coords::GraphFrom;
use crate::source::{Align, Duplicates, Encoding, Layout, ReadReport, ReadSpec, TimeSpec};
use crate::impute::{Impute, ImputeReport, impute};
use crate::registry::{Borders, SplitRule, lookup};
use crate::scaler::StandardScaler;
use crate::table::{Quality, read_table};
use crate::window::{Series, Windows};
use crate::{DataError, data_root};

/// Which variables go in and come out (TSLib's `--features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Features {
    /// All variables in, all variables out.
    #[default]
    M,
    /// The target alone in and out.
    S,
    /// All variables in, the target (last channel) out.
    MS,
}

impl Features {
    /// The output channels among `channels` inputs: all for M and S, the last (target) for MS.
    pub fn outputs(self, channels: usize) -> std::ops::Range<usize> {
        match self {
            Features::MS => channels - 1..channels,
            _ => 0..channels,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Features::M => "M",
            Features::S => "S",
            Features::MS => "MS",
        }
    }
}

/// The `[data]` section of a run configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// A registry name (`etth1`, `etth2`, `ettm1`, `ettm2`, `weather`, `exchange`, `ili`) or `custom`.
    pub dataset: String,
    /// File to read: required for `custom`; for registry datasets, overrides `$STRATA_DATA/<file>`.
    pub path: Option<PathBuf>,
    /// Target column (default: the registry's, `OT`).
    pub target: Option<String>,
    pub features: Features,
    /// Input length (look-back window).
    pub seq_len: usize,
    /// Forecast horizon.
    pub pred_len: usize,
    /// Missing-value filling applied before scaling.
    pub impute: Impute,
    /// Standardise with statistics of the training rows (the LSF protocol); false keeps raw values.
    pub scale: bool,
    // --- spatio-temporal datasets only (see `spatial`) ---
    /// Graph file: edge list CSV, dense CSV matrix, `.npy`, DCRNN `.pkl` or PyGT `.json`.
    pub graph: Option<PathBuf>,
    /// Sensor-id file fixing the node order of an edge list whose endpoints are sensor ids.
    pub graph_ids: Option<PathBuf>,
    /// How edge-list distances become weights.
    pub graph_weights: EdgeWeights,
    /// Add the reverse of every listed edge.
    pub graph_symmetric: bool,
    /// Expected node count (checked against the signal and the graph).
    pub nodes: Option<usize>,
    /// Array name inside an `.npz` signal.
    pub npz_key: String,
    /// Train/val/test shares, in time order: of the windows for spatio-temporal data (default:
    /// the registry's, 7:1:2); of the rows for long-sequence data (`int(a n)` training rows,
    /// `int(c n)` test rows at the end, the rest validation, as TSLib's and FSNet's loaders).
    pub split: Option<[f64; 3]>,
    /// Long-sequence data: the first `[train, val, test]` rows of the file as the three splits,
    /// later rows unused (FSNet's online protocol on ETT: `[2880, 720, 10800]`).
    pub split_rows: Option<[usize; 3]>,
    /// Long-sequence data: the last `test_size` rows are the test split and the `val_size`
    /// before them validation (both in time steps, as neuralforecast's `val_size` /
    /// `test_size`), instead of the dataset's split rule. Give both or neither.
    pub val_size: Option<usize>,
    pub test_size: Option<usize>,
    /// Long-sequence data: the calendar features models read: `timef` (TSLib's, default) or
    /// `calendar` (TS2Vec's and FSNet's: seven raw fields standardised on the training rows).
    pub time_features: crate::timefeat::TimeFeatures,
    /// Add the time of day as an input feature (default: yes where the step is under a day).
    pub time_of_day: Option<bool>,
    /// Add the day of week as an input feature (default: as `time_of_day`).
    pub day_of_week: Option<bool>,
    /// Steps per day, for time features of a `spatial` dataset.
    pub steps_per_day: Option<usize>,
    /// The nodes form a `[height, width]` grid (row-major), for grid models such as ConvLSTM.
    pub grid: Option<[usize; 2]>,
    // --- files from the wild (docs/data.md, "Bring your own data") ---
    /// `wide`, `long` or `folder` (default: `folder` for a folder, `long` when the file has
    /// `unique_id` and `ds` columns or `data.id_column` is set, else `wide`).
    pub layout: Option<Layout>,
    /// The time column, or the columns of its parts (`["year", "month", "day", "hour"]`).
    /// Default: a column named date / datetime / timestamp / time / ds, or year/month/day[/hour].
    pub time: Option<TimeSpec>,
    /// chrono strftime layout of the time column (`"%d.%m.%Y %H:%M"`).
    pub time_format: Option<String>,
    /// Keep only these value columns (the target is always kept).
    pub columns: Option<Vec<String>>,
    /// Leave these columns out.
    pub drop: Vec<String>,
    /// Encode text columns as inputs: `onehot` or `codes` (default: refuse them).
    pub categorical: Option<Encoding>,
    /// Long tables: the series id column (default `unique_id`; its target default is `y`).
    pub id_column: Option<String>,
    /// Keep only these series / locations, in this order.
    pub ids: Option<Vec<String>>,
    /// Rows repeating a time: `first`, `last` or `mean` (default: refuse).
    pub duplicates: Option<Duplicates>,
    /// Series of different spans: `union` (missing cells imputed) or `intersection`.
    pub align: Align,
    /// Folders: the column naming each file's location (default: station / location / site / sensor).
    pub location_column: Option<String>,
    /// A node coordinates file (id, latitude/longitude or x/y) to build the graph from.
    pub coordinates: Option<PathBuf>,
    /// Or the two columns of a folder's files / a long table holding each node's coordinates
    /// (`["latitude", "longitude"]`: great-circle distances; other names: Euclidean).
    pub coordinate_columns: Option<Vec<String>>,
    /// How coordinates become a graph: `gaussian` (DCRNN's kernel, default) or `knn`.
    pub graph_from: Option<GraphFrom>,
    /// Neighbours per node for `graph_from = "knn"`.
    pub graph_k: usize,
    /// A graph per time step (PyGT's England COVID, Twitter tennis): `mean` gives the models
    /// its time average (default: refused, saying so).
    pub dynamic_graph: Option<DynamicGraph>,
    /// Columns that are inputs but not forecast: `past`, `future` and `static` (docs/covariates.md).
    pub covariates: CovariateConfig,
}

/// What to do with a graph per time step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicGraph {
    /// The time-averaged adjacency.
    Mean,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "etth1".into(),
            path: None,
            target: None,
            features: Features::M,
            seq_len: 96,
            pred_len: 96,
            impute: Impute::Linear,
            scale: true,
            graph: None,
            graph_ids: None,
            graph_weights: EdgeWeights::Gaussian,
            graph_symmetric: false,
            nodes: None,
            npz_key: "data".into(),
            split: None,
            split_rows: None,
            val_size: None,
            test_size: None,
            time_features: Default::default(),
            time_of_day: None,
            day_of_week: None,
            steps_per_day: None,
            grid: None,
            layout: None,
            time: None,
            time_format: None,
            columns: None,
            drop: Vec::new(),
            categorical: None,
            id_column: None,
            ids: None,
            duplicates: None,
            align: Align::Union,
            location_column: None,
            coordinates: None,
            coordinate_columns: None,
            graph_from: None,
            graph_k: 8,
            dynamic_graph: None,
            covariates: CovariateConfig::default(),
        }
    }
}

/// Everything a run needs from its data.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dataset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub freq: String,
    pub columns: Vec<String>,
    pub features: Features,
    pub rows: usize,
    pub borders: Borders,
    pub scaler: Option<StandardScaler>,
    pub impute: ImputeReport,
    pub quality: Quality,
    pub train: Windows,
    pub val: Windows,
    pub test: Windows,
    /// GluonTS protocol: the test windows are the dataset's rolling windows, scored on the
    /// original scale with the whole history as the seasonal-error reference.
    pub rolling: bool,
    /// How a file from the wild was read (its settings, category values included, and what
    /// reading did); `None` for the TSLib table reader.
    pub source: Option<(ReadSpec, ReadReport)>,
    /// The covariates' scalers (fitted on the training rows), where the data has covariates;
    /// their names are in the windows (`train.covariates`).
    pub covariate_scalers: Option<CovariateScalers>,
    /// `data.time_features = "calendar"`: the calendar fields' training statistics.
    pub calendar: Option<crate::timefeat::CalendarScaler>,
}

impl Prepared {
    /// Channels the model reads.
    pub fn channels(&self) -> usize {
        self.columns.len()
    }
    /// Channels the loss and metrics use: all for M and S, the last (target) for MS.
    pub fn output_channels(&self) -> std::ops::Range<usize> {
        self.features.outputs(self.channels())
    }
}

impl DataConfig {
    /// The reading settings (`data.layout`, `data.time`, ...) of this config.
    pub fn read_spec(&self) -> ReadSpec {
        ReadSpec {
            layout: self.layout,
            time: self.time.clone(),
            time_format: self.time_format.clone(),
            columns: self.columns.clone(),
            drop: self.drop.clone(),
            categorical: self.categorical,
            id_column: self.id_column.clone(),
            ids: self.ids.clone(),
            duplicates: self.duplicates,
            align: self.align,
            location_column: self.location_column.clone(),
            coordinate_columns: self.coordinate_columns.clone(),
            target: self.target.clone(),
            categories: Default::default(),
            covariates: {
                let c = self.covariates.in_table();
                [c.past, c.future, c.statics].into_iter().flatten().filter(|n| n != "*").collect()
            },
        }
    }

    /// Whether this names a spatio-temporal dataset (a registered one, or `spatial` for your own).
    pub fn is_spatial(&self) -> bool {
        self.dataset.eq_ignore_ascii_case("spatial") || crate::spatial::spatial_lookup(&self.dataset).is_some()
    }
}

pub fn prepare(cfg: &DataConfig) -> Result<Prepared, DataError> {
    let st_only = [
        ("graph", cfg.graph.is_some()),
        ("graph_ids", cfg.graph_ids.is_some()),
        ("nodes", cfg.nodes.is_some()),
        ("time_of_day", cfg.time_of_day.is_some()),
        ("day_of_week", cfg.day_of_week.is_some()),
        ("steps_per_day", cfg.steps_per_day.is_some()),
        ("grid", cfg.grid.is_some()),
        ("coordinates", cfg.coordinates.is_some()),
        ("coordinate_columns", cfg.coordinate_columns.is_some()),
        ("graph_from", cfg.graph_from.is_some()),
        ("dynamic_graph", cfg.dynamic_graph.is_some()),
    ];
    if let Some(file) = crate::gluonts::gluon_lookup(&cfg.dataset) {
        if !cfg.covariates.is_empty() {
            return Err(DataError::Config(format!("data.covariates: {} is read as aligned target series without covariate columns; covariates come from a wide file, a long table or a folder (data.dataset = \"custom\")", cfg.dataset)));
        }
        return prepare_gluon(cfg, file);
    }
    if let Some((key, _)) = st_only.iter().find(|(_, set)| *set) {
        return Err(DataError::Config(format!("key `data.{key}`: only spatio-temporal datasets take it, and `{}` is a long-sequence dataset", cfg.dataset)));
    }
    let (path, split, freq, default_target) = if cfg.dataset.eq_ignore_ascii_case("custom") {
        let path = cfg.path.clone().ok_or_else(|| DataError::Config("data.dataset = \"custom\" needs data.path".into()))?;
        (path, SplitRule::Ratio712, "h".to_string(), "OT")
    } else {
        let spec = lookup(&cfg.dataset)?;
        let path = cfg.path.clone().unwrap_or_else(|| data_root().join(spec.file));
        (path, spec.split, spec.freq.to_string(), spec.target)
    };
    if cfg.seq_len == 0 || cfg.pred_len == 0 {
        return Err(DataError::Config("data.seq_len and data.pred_len must be positive".into()));
    }
    if !path.exists() {
        return Err(DataError::not_found(&path));
    }
    let split = match (cfg.val_size, cfg.test_size, cfg.split, cfg.split_rows) {
        (None, None, None, None) => split,
        (Some(val), Some(test), None, None) => SplitRule::Sizes { val, test },
        (None, None, Some([a, b, c]), None) => {
            if !(a > 0.0 && b > 0.0 && c > 0.0 && ((a + b + c) - 1.0).abs() < 1e-6) {
                return Err(DataError::Config(format!("data.split = [{a}, {b}, {c}]: give three positive shares (train, val, test) that sum to 1")));
            }
            SplitRule::Shares { train: a, test: c }
        }
        (None, None, None, Some([train, val, test])) => {
            if train == 0 || val == 0 || test == 0 {
                return Err(DataError::Config(format!("data.split_rows = [{train}, {val}, {test}]: every split needs rows")));
            }
            SplitRule::Rows { train, val, test }
        }
        (None, None, ..) => return Err(DataError::Config("data.split and data.split_rows both cut the rows: give one".into())),
        (Some(_), Some(_), ..) => return Err(DataError::Config("data.val_size / data.test_size and data.split / data.split_rows all cut the rows: give one of them".into())),
        _ => return Err(DataError::Config("data.val_size and data.test_size go together: give both (time steps) or neither (the dataset's split)".into())),
    };
    let target = cfg.target.as_deref().unwrap_or(default_target);
    let spec = cfg.read_spec();
    let mut source = None;
    let custom = cfg.dataset.eq_ignore_ascii_case("custom");
    let mut table = if custom || crate::source::needs_source(&path, &spec) {
        let frame = crate::source::read_frame(&path, &spec)?;
        source = Some((ReadSpec { categories: frame.categories.clone(), ..spec }, frame.report.clone()));
        frame.into_table()
    } else {
        read_table(&path, Some(target))?
    };
    let borders = split.borders(table.rows, cfg.seq_len)?;
    let impute_report = impute(&mut table, cfg.impute, borders.train.1)?;
    refuse_infinite(&table)?;
    let months = source.as_ref().and_then(|(_, r): &(ReadSpec, ReadReport)| r.step_months).map(|_| "m".to_string());
    let freq = if cfg.dataset.eq_ignore_ascii_case("custom") { months.or_else(|| custom_freq(&table.quality)).unwrap_or(freq) } else { freq };
    let covariates = crate::covariates::split(&mut table, &cfg.covariates.in_table(), Some(target))?;
    if covariates.is_some() && cfg.features == Features::MS {
        return Err(DataError::Config(
            "data.features = \"MS\" feeds every column in as a series; with data.covariates, set data.features = \"S\" (the target, with the covariates beside it) or \"M\" (every column not named a covariate)".into(),
        ));
    }
    if cfg.features == Features::S {
        table = table.select(&[table.cols() - 1]);
    }
    let covariates = crate::spatial_covariates::add_static_file(covariates, &cfg.covariates, table.rows, table.cols(), Some(&table.columns))?;
    let (covariates, covariate_scalers) = match covariates {
        Some(c) => {
            let (series, scalers) = c.scale(borders.train.1, cfg.scale);
            (Some(std::sync::Arc::new(series)), scalers)
        }
        None => (None, None),
    };
    let scaler = cfg.scale.then(|| StandardScaler::fit(&table.values, table.cols(), borders.train.1));
    if let Some(s) = &scaler {
        s.transform(&mut table.values);
    }
    let (marks, calendar) = marks(table.dates.as_deref(), &freq, cfg.time_features, borders.train.1);
    let series = Series { data: table.values.into(), rows: table.rows, channels: table.columns.len() };
    let windows = |(start, end): (usize, usize)| Windows { series: series.clone(), target: series.clone(), marks: marks.clone(), covariates: covariates.clone(), start, end, seq_len: cfg.seq_len, pred_len: cfg.pred_len, stride: 1 };
    let (train, val, test) = (windows(borders.train), windows(borders.val), windows(borders.test));
    for (name, w) in [("train", &train), ("val", &val), ("test", &test)] {
        if w.is_empty() {
            return Err(DataError::Config(format!(
                "the {name} split (rows {}..{}) is too short for seq_len {} + pred_len {}",
                w.start, w.end, cfg.seq_len, cfg.pred_len
            )));
        }
    }
    Ok(Prepared {
        dataset: cfg.dataset.to_ascii_lowercase(),
        sha256: crate::sha256_path(&path)?,
        path,
        freq,
        columns: table.columns,
        features: cfg.features,
        rows: table.rows,
        borders,
        scaler,
        impute: impute_report,
        quality: table.quality,
        train,
        val,
        test,
        rolling: false,
        source,
        covariate_scalers,
        calendar,
    })
}

/// A frequency string from the usual time step (used for custom files).
fn custom_freq(q: &Quality) -> Option<String> {
    let s = q.step_seconds?;
    Some(match s {
        s if s % 604800 == 0 => "w".into(),
        s if s % 86400 == 0 => "d".into(),
        s if s % 3600 == 0 => "h".into(),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    })
}

/// A GluonTS dataset whose series are aligned (same start, same length) as one multivariate
/// series: train on the train split (its last `windows x prediction_length` rows kept for
/// validation, as rolling windows), test on exactly the rolling windows of the test split.
pub fn prepare_gluon(cfg: &DataConfig, file: &str) -> Result<Prepared, DataError> {
    use crate::gluonts::{read_gluonts, timestamps};
    let path = cfg.path.clone().unwrap_or_else(|| data_root().join(file));
    if !path.exists() {
        return Err(DataError::not_found(&path));
    }
    let ds = read_gluonts(&path, None)?;
    let h = ds.prediction_length;
    if cfg.pred_len != h {
        return Err(DataError::Config(format!("key `data.pred_len`: {} forecasts {h} steps (its test windows), not {}", cfg.dataset, cfg.pred_len)));
    }
    let c = ds.train.len();
    let t_train = ds.train[0].target.len();
    if ds.train.iter().any(|e| e.start != ds.train[0].start || e.target.len() != t_train) {
        return Err(DataError::file(&path, "the train series differ in start or length; strata reads a GluonTS dataset as one aligned multivariate series"));
    }
    let windows = ds.rolling_windows()?;
    // The longest test entry of each series holds the whole history.
    let mut full: Vec<&[f32]> = vec![&[]; c];
    for w in &windows {
        let t = &ds.test[w.entry].target;
        if t.len() > full[w.series].len() {
            full[w.series] = t;
        }
    }
    let rows = full[0].len();
    if full.iter().any(|f| f.len() != rows) {
        return Err(DataError::file(&path, "the test series differ in length"));
    }
    let per_series = windows.len() / c;
    if rows != t_train + per_series * h {
        return Err(DataError::file(&path, format!("test windows do not tile the {} rows after the train split in steps of {h}", rows - t_train)));
    }
    let l = cfg.seq_len;
    let val_rows = per_series * h;
    if t_train < val_rows + l + h {
        return Err(DataError::Config(format!("the train split ({t_train} rows) is too short for seq_len {l}")));
    }
    let mut values = vec![0f32; rows * c];
    for (s, f) in full.iter().enumerate() {
        for (r, v) in f.iter().enumerate() {
            values[r * c + s] = *v;
        }
    }
    let columns: Vec<String> = ds.train.iter().enumerate().map(|(i, e)| e.item_id.clone().unwrap_or_else(|| format!("series{i}"))).collect();
    let dates = timestamps(&ds.train[0].start, &ds.freq, rows);
    let mut table = crate::table::Table { path: path.clone(), columns, dates, values, rows, quality: Default::default() };
    let train_end = t_train - val_rows;
    let impute_report = impute(&mut table, cfg.impute, train_end)?;
    refuse_infinite(&table)?;
    let scaler = cfg.scale.then(|| StandardScaler::fit(&table.values, c, train_end));
    if let Some(s) = &scaler {
        s.transform(&mut table.values);
    }
    let (marks, calendar) = marks(table.dates.as_deref(), &ds.freq, cfg.time_features, train_end);
    let series = Series { data: table.values.into(), rows, channels: c };
    let w = |start: usize, end: usize, stride: usize| Windows { series: series.clone(), target: series.clone(), marks: marks.clone(), covariates: None, start, end, seq_len: l, pred_len: h, stride };
    let borders = Borders { train: (0, train_end), val: (train_end - l, t_train), test: (t_train - l, rows) };
    Ok(Prepared {
        dataset: cfg.dataset.to_ascii_lowercase(),
        sha256: crate::sha256_path(&path)?,
        path,
        freq: ds.freq.clone(),
        columns: table.columns,
        features: Features::M,
        rows,
        borders,
        scaler,
        impute: impute_report,
        quality: table.quality,
        train: w(0, train_end, 1),
        val: w(train_end - l, t_train, h),
        test: w(t_train - l, rows, h),
        rolling: true,
        source: None,
        covariate_scalers: None,
        calendar,
    })
}

/// The calendar features of every row (`data.time_features`), and the calendar fields'
/// statistics over the first `train_end` rows where they are standardised.
fn marks(dates: Option<&[chrono::NaiveDateTime]>, freq: &str, kind: crate::timefeat::TimeFeatures, train_end: usize) -> (Option<Series>, Option<crate::timefeat::CalendarScaler>) {
    use crate::timefeat::{CALENDAR_NAMES, CalendarScaler, TimeFeatures, feature_names, time_features};
    let Some(d) = dates else { return (None, None) };
    match kind {
        TimeFeatures::Timef => (Some(Series { data: time_features(d, freq).into(), rows: d.len(), channels: feature_names(freq).len() }), None),
        TimeFeatures::Calendar => {
            let s = CalendarScaler::fit(&d[..train_end.min(d.len())]);
            (Some(Series { data: s.features(d).into(), rows: d.len(), channels: CALENDAR_NAMES.len() }), Some(s))
        }
    }
}

/// An infinite cell (`inf`, `1e309`) would make the column's scaler and every window non-finite:
/// refused, naming the row and the column (missing cells are the imputer's).
fn refuse_infinite(table: &crate::table::Table) -> Result<(), DataError> {
    let cols = table.cols();
    match table.values.iter().position(|v| v.is_infinite()) {
        Some(k) => Err(DataError::file(
            &table.path,
            format!("data row {} (after the header), column '{}' holds {}: an infinite value; fix the cell or leave it empty (missing, filled by data.impute)", k / cols + 1, table.columns[k % cols], table.values[k]),
        )),
        None => Ok(()),
    }
}
