//! GluonTS datasets: `metadata.json` plus `train/*.json` and `test/*.json` in JSON-lines (one
//! series per line: `start`, `target`, optional `item_id` / `feat_static_cat`), read from a
//! folder or straight from the `.tar.gz` GluonTS downloads.
//!
//! The test split defines the evaluation: every test entry is one rolling window whose last
//! `prediction_length` values are forecast from everything before them
//! ([`GluonDataset::rolling_windows`]).

use std::io::Read;
use std::path::Path;

use crate::DataError;

/// One series.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub start: String,
    pub target: Vec<f32>,
    pub item_id: Option<String>,
    pub feat_static_cat: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct GluonDataset {
    pub freq: String,
    pub prediction_length: usize,
    pub train: Vec<Entry>,
    pub test: Vec<Entry>,
}

/// One evaluation window: forecast `test[entry].target[history..history + horizon]` from
/// `test[entry].target[..history]`; `series` is the train series it extends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingWindow {
    pub entry: usize,
    pub series: usize,
    pub history: usize,
    pub horizon: usize,
}

impl GluonDataset {
    /// The test split's windows. A test entry belongs to the train series whose target it
    /// extends (same start, train target a prefix of it).
    pub fn rolling_windows(&self) -> Result<Vec<RollingWindow>, DataError> {
        let h = self.prediction_length;
        self.test
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let series = self
                    .train
                    .iter()
                    .position(|t| t.start == e.start && t.target.len() <= e.target.len() && e.target[..t.target.len()] == t.target[..])
                    .ok_or_else(|| DataError::Config(format!("test entry {i} (start {}, {} values) extends no train series", e.start, e.target.len())))?;
                if e.target.len() < h + 1 {
                    return Err(DataError::Config(format!("test entry {i} has {} values, fewer than prediction_length {h} + 1", e.target.len())));
                }
                Ok(RollingWindow { entry: i, series, history: e.target.len() - h, horizon: h })
            })
            .collect()
    }
}

/// Read a GluonTS dataset from a folder or a `.tar.gz` archive of one. `prediction_length`
/// overrides the metadata (which older archives, such as `exchange_rate_nips`, lack; then the
/// step between consecutive rolling test windows of a series is used).
pub fn read_gluonts(path: &Path, prediction_length: Option<usize>) -> Result<GluonDataset, DataError> {
    let files = if path.is_dir() { read_dir_files(path)? } else { read_tar_gz(path)? };
    let mut meta: Option<serde_json::Value> = None;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (name, text) in &files {
        let where_ = format!("{}!{name}", path.display());
        if name.ends_with("metadata.json") {
            meta = Some(serde_json::from_str(text).map_err(|e| DataError::file(Path::new(&where_), format!("invalid JSON: {e}")))?);
        } else if name.contains("train/") && is_json(name) {
            train.extend(parse_lines(&where_, text)?);
        } else if name.contains("test/") && is_json(name) {
            test.extend(parse_lines(&where_, text)?);
        }
    }
    let meta = meta.ok_or_else(|| DataError::file(path, "no metadata.json in the dataset"))?;
    let freq = meta.get("freq").or_else(|| meta.get("time_granularity")).and_then(|f| f.as_str()).unwrap_or("?").to_string();
    if train.is_empty() || test.is_empty() {
        return Err(DataError::file(path, format!("expected train/ and test/ JSON-lines files, found {} train and {} test series", train.len(), test.len())));
    }
    let prediction_length = match prediction_length.or_else(|| meta.get("prediction_length").and_then(|p| p.as_u64()).map(|p| p as usize)) {
        Some(p) => p,
        None => infer_prediction_length(&test).ok_or_else(|| DataError::file(path, "metadata.json has no prediction_length and the test windows do not show one; set it"))?,
    };
    Ok(GluonDataset { freq, prediction_length, train, test })
}

fn is_json(name: &str) -> bool {
    name.ends_with(".json") || name.ends_with(".jsonl")
}

/// The smallest positive length difference between test entries with the same start.
fn infer_prediction_length(test: &[Entry]) -> Option<usize> {
    let mut lens: Vec<(&str, usize)> = test.iter().map(|e| (e.start.as_str(), e.target.len())).collect();
    lens.sort();
    lens.windows(2).filter(|w| w[0].0 == w[1].0 && w[1].1 > w[0].1).map(|w| w[1].1 - w[0].1).min()
}

fn parse_lines(where_: &str, text: &str) -> Result<Vec<Entry>, DataError> {
    let at = |line: usize, msg: String| DataError::At { path: where_.into(), line: line as u64, column: "-".into(), msg };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(i + 1, format!("invalid JSON: {e}")))?;
        let start = v.get("start").and_then(|s| s.as_str()).ok_or_else(|| at(i + 1, "key `start`: missing".into()))?.to_string();
        let target = v
            .get("target")
            .and_then(|t| t.as_array())
            .ok_or_else(|| at(i + 1, "key `target`: missing".into()))?
            .iter()
            .enumerate()
            .map(|(k, x)| match x {
                serde_json::Value::Null => Ok(f32::NAN),
                serde_json::Value::String(s) if s.eq_ignore_ascii_case("nan") => Ok(f32::NAN),
                x => x.as_f64().map(|f| f as f32).ok_or_else(|| at(i + 1, format!("key `target[{k}]`: not a number: {x}"))),
            })
            .collect::<Result<Vec<f32>, _>>()?;
        let item_id = v.get("item_id").map(|s| s.as_str().map(String::from).unwrap_or_else(|| s.to_string()));
        let feat_static_cat = v.get("feat_static_cat").and_then(|c| c.as_array()).map(|c| c.iter().filter_map(|x| x.as_i64()).collect()).unwrap_or_default();
        out.push(Entry { start, target, item_id, feat_static_cat });
    }
    Ok(out)
}

fn read_dir_files(dir: &Path) -> Result<Vec<(String, String)>, DataError> {
    let mut out = Vec::new();
    for sub in ["", "metadata", "train", "test"] {
        let d = dir.join(sub);
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() {
                let text = std::fs::read_to_string(&p).map_err(|err| DataError::io(&p, err))?;
                let rel = if sub.is_empty() { p.file_name().unwrap().to_string_lossy().into_owned() } else { format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()) };
                out.push((rel, text));
            }
        }
    }
    Ok(out)
}

fn read_tar_gz(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| DataError::io(path, e))? {
        let mut entry = entry.map_err(|e| DataError::io(path, e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(|e| DataError::io(path, e))?.to_string_lossy().into_owned();
        if !name.ends_with(".json") && !name.ends_with(".jsonl") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(|e| DataError::file(path, format!("{name}: {e}")))?;
        out.push((name, text));
    }
    Ok(out)
}

/// GluonTS datasets in the registry: name and archive under the data root.
pub const GLUON: &[(&str, &str)] = &[("exchange_rate_nips", "gluonts_exchange_rate_nips/exchange_rate_nips.tar.gz")];

pub fn gluon_lookup(name: &str) -> Option<&'static str> {
    GLUON.iter().find(|(n, _)| n.eq_ignore_ascii_case(name) || n.replace('_', "-").eq_ignore_ascii_case(name)).map(|(_, f)| *f)
}

/// Timestamps from `start` (`YYYY-MM-DD[ HH:MM:SS]`) at frequency `freq` (`B`, `D`, `H`, `W`).
pub fn timestamps(start: &str, freq: &str, n: usize) -> Option<Vec<chrono::NaiveDateTime>> {
    use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
    let t0 = NaiveDateTime::parse_from_str(start, "%Y-%m-%d %H:%M:%S").ok().or_else(|| NaiveDate::parse_from_str(start, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0))?;
    let mut out = Vec::with_capacity(n);
    let mut t = t0;
    let step = match freq.to_ascii_uppercase().as_str() {
        "B" | "D" => Duration::days(1),
        "H" => Duration::hours(1),
        "W" => Duration::weeks(1),
        _ => return None,
    };
    let business = freq.eq_ignore_ascii_case("B");
    while out.len() < n {
        if !(business && matches!(t.weekday(), Weekday::Sat | Weekday::Sun)) {
            out.push(t);
        }
        t += step;
    }
    Some(out)
}
