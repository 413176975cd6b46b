//! Spatio-temporal signals `[time, nodes, features]` and the field's protocol (BasicTS / DCRNN):
//! 12 steps in, 12 out, windows split 7:1:2 (or 6:2:2) in time order, one z-score over all nodes
//! of the training rows, optional time-of-day / day-of-week inputs, targets kept on the original
//! scale so that metrics (masked, null value 0) are computed there.
//!
//! Signal readers, chosen by extension:
//! * CSV / `.csv.gz` matrix: header row = node ids, one row per time step, one column per node
//!   (a leading date column is skipped) (`los-loop/los_speed.csv`);
//! * `.npy` `[T, N]` or `[T, N, C]`; `.npz` with key `data` (as PEMS0x ship it);
//! * PyTorch-Geometric-Temporal JSON: node-link `nodes[i].y` (`montevideo_bus.json`) or `FX`
//!   `[T][N]` (`chickenpox.json`).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::DataError;

/// A signal `[t, n, c]`, row-major.
#[derive(Debug, Clone)]
pub struct Signal {
    pub t: usize,
    pub n: usize,
    pub c: usize,
    pub values: Vec<f32>,
    /// Node ids in column order, where the file names them.
    pub ids: Option<Vec<String>>,
    /// Cells that were missing (empty, NaN) and are stored as 0, the field's null value.
    pub missing: usize,
}


/// Read a signal file (see the module docs for the formats). `key` picks the `.npz` array.
pub fn read_signal(path: &Path, key: &str) -> Result<Signal, DataError> {
    if !path.exists() {
        return Err(DataError::not_found(path));
    }
    let name = path.file_name().map(|s| s.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let (shape, values, ids) = if name.ends_with(".npy") {
        let (s, v) = crate::npy::read_npy(path)?;
        (s, v, None)
    } else if name.ends_with(".npz") {
        let (s, v) = crate::npy::read_npz(path, key)?;
        (s, v, None)
    } else if name.ends_with(".json") {
        read_pygt_signal(path)?
    } else {
        read_csv_signal(path)?
    };
    let (t, n, c) = match shape[..] {
        [t, n] => (t, n, 1),
        [t, n, c] => (t, n, c),
        _ => return Err(DataError::file(path, format!("a signal must be [time, nodes] or [time, nodes, features], this one has shape {shape:?}"))),
    };
    let mut values = values;
    let mut missing = 0;
    for v in values.iter_mut().filter(|v| !v.is_finite()) {
        *v = 0.0;
        missing += 1;
    }
    Ok(Signal { t, n, c, values, ids, missing })
}

type Read3 = (Vec<usize>, Vec<f32>, Option<Vec<String>>);

fn read_csv_signal(path: &Path) -> Result<Read3, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut text = String::new();
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let res = if gz { flate2::read::GzDecoder::new(file).read_to_string(&mut text) } else { std::io::BufReader::new(file).read_to_string(&mut text) };
    res.map_err(|e| DataError::io(path, e))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| DataError::file(path, "empty file"))?;
    let mut ids: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
    let first = ids.first().map(|s| s.to_ascii_lowercase()).unwrap_or_default();
    let skip_date = matches!(first.as_str(), "date" | "time" | "timestamp" | "datetime" | "");
    if skip_date {
        ids.remove(0);
    }
    let n = ids.len();
    let mut values = Vec::new();
    let mut t = 0;
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let cells = if skip_date { &cells[1.min(cells.len())..] } else { &cells[..] };
        if cells.len() != n {
            return Err(DataError::At { path: path.to_path_buf(), line: i as u64 + 1, column: (cells.len() + skip_date as usize).to_string(), msg: format!("row has {} values, the header names {n} nodes", cells.len()) });
        }
        for (c, cell) in cells.iter().enumerate() {
            let v = if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                f32::NAN
            } else {
                cell.parse::<f32>().map_err(|_| DataError::At { path: path.to_path_buf(), line: i as u64 + 1, column: format!("{} ({})", c + 1 + skip_date as usize, ids[c]), msg: format!("not a number: {cell:?}") })?
            };
            values.push(v);
        }
        t += 1;
    }
    Ok((vec![t, n], values, Some(ids)))
}

fn read_pygt_signal(path: &Path) -> Result<Read3, DataError> {
    let d = crate::pygt::read_pygt(path)?;
    let shape = if d.c == 1 { vec![d.t, d.n] } else { vec![d.t, d.n, d.c] };
    Ok((shape, d.values, d.ids))
}


/// A registered spatio-temporal dataset.
#[derive(Debug, Clone, Copy)]
pub struct SpatialSpec {
    pub name: &'static str,
    /// Signal file under the data root.
    pub signal: &'static str,
    /// Graph file under the data root.
    pub graph: Option<&'static str>,
    pub freq: &'static str,
    /// Steps per day (time-of-day input); `None` for weekly or coarser data.
    pub steps_per_day: Option<usize>,
    /// Day of week of the first step (Monday = 0), where known.
    pub start_weekday: usize,
    pub split: [f64; 3],
    pub note: &'static str,
}

/// The spatio-temporal registry.
pub const SPATIAL: &[SpatialSpec] = &[
    SpatialSpec {
        name: "los-loop",
        signal: "los-loop/los_speed.csv",
        graph: Some("los-loop/los_adj.csv"),
        freq: "5min",
        steps_per_day: Some(288),
        // T-GCN's 7-day METR-LA subset; assumed to start at 2012-03-01 00:00 (a Thursday).
        start_weekday: 3,
        split: [0.7, 0.1, 0.2],
        note: "207 sensors, 7 days of speeds, T-GCN",
    },
    SpatialSpec {
        name: "montevideo-bus",
        signal: "pygt/montevideo_bus.json",
        graph: Some("pygt/montevideo_bus.json"),
        freq: "h",
        steps_per_day: Some(24),
        // October 2020; 2020-10-01 was a Thursday.
        start_weekday: 3,
        split: [0.7, 0.1, 0.2],
        note: "675 bus stops, 744 hours of inflow, PyGT",
    },
    SpatialSpec {
        name: "chickenpox",
        signal: "pygt/chickenpox.json",
        graph: Some("pygt/chickenpox.json"),
        freq: "w",
        steps_per_day: None,
        start_weekday: 0,
        split: [0.7, 0.1, 0.2],
        note: "20 counties, 521 weeks (standardised), PyGT",
    },
];

pub fn spatial_lookup(name: &str) -> Option<&'static SpatialSpec> {
    SPATIAL.iter().find(|s| s.name.eq_ignore_ascii_case(name) || s.name.replace('-', "_").eq_ignore_ascii_case(name))
}

/// Number of train/val/test windows for `windows` windows split by `ratio` in time order
/// (BasicTS: train and val rounded, test takes the rest).
pub fn split_windows(windows: usize, ratio: [f64; 3]) -> [usize; 3] {
    let total: f64 = ratio.iter().sum();
    let train = (windows as f64 * ratio[0] / total).round() as usize;
    let val = (windows as f64 * ratio[1] / total).round() as usize;
    [train, val, windows.saturating_sub(train + val)]
}

/// Where a spatio-temporal dataset's files are, after the registry and the config are combined.
#[derive(Debug, Clone)]
pub struct SpatialSource {
    pub signal: PathBuf,
    pub graph: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_split_in_time_order() {
        // 100 windows 7:1:2 -> 70 / 10 / 20; 6:2:2 of 33 -> 20 / 7 / 6.
        assert_eq!(split_windows(100, [0.7, 0.1, 0.2]), [70, 10, 20]);
        assert_eq!(split_windows(33, [6.0, 2.0, 2.0]), [20, 7, 6]);
    }

    #[test]
    fn csv_signal_with_header_and_date() {
        let dir = std::env::temp_dir().join(format!("strata-signal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.csv");
        std::fs::write(&p, "date,a,b\n2020-01-01,1,2\n2020-01-02,,4\n").unwrap();
        let s = read_signal(&p, "data").unwrap();
        assert_eq!((s.t, s.n, s.c, s.missing), (2, 2, 1, 1));
        assert_eq!(s.values, [1.0, 2.0, 0.0, 4.0]);
        assert_eq!(s.ids.unwrap(), ["a", "b"]);
        std::fs::write(&p, "a,b\n1,2\n3,x\n").unwrap();
        let e = read_signal(&p, "data").unwrap_err().to_string();
        assert!(e.ends_with("s.csv:3: column 2 (b): not a number: \"x\""), "{e}");
    }
}
