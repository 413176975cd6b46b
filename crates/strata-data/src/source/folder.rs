//! A folder of per-location files with the same columns -> one spatio-temporal dataset: nodes
//! are the files (named by their location column, else the file name), in sorted order or the
//! order `data.ids` gives; each file on a regular grid, then all on one grid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{Cells, RawTable, read_raw};
use super::wide::{parse_columns, places};
use super::{Frame, ReadSpec, align};
use crate::DataError;

const LOCATION_NAMES: &[&str] = &["station", "location", "site", "sensor"];
const DATA_EXTENSIONS: &[&str] = &[".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".pq", ".arrow", ".feather"];

/// The data files of a folder, sorted by name.
pub fn data_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let p = e.map_err(|e| DataError::io(dir, e))?.path();
        let name = p.file_name().map(|s| s.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if p.is_file() && !name.starts_with('.') && DATA_EXTENSIONS.iter().any(|x| name.ends_with(x)) {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::file(dir, format!("the folder holds no data files ({})", DATA_EXTENSIONS.join(", "))));
    }
    Ok(files)
}

fn stem(p: &Path) -> String {
    let name = p.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    DATA_EXTENSIONS.iter().find(|x| lower.ends_with(*x)).map_or(name.clone(), |x| name[..name.len() - x.len()].to_string())
}

/// The location a file holds: its location column's one value, else its name.
fn location(raw: &RawTable, col: Option<usize>) -> Result<String, DataError> {
    let Some(c) = col else { return Ok(stem(&raw.path)) };
    let first = raw.cells[c].text(0).ok_or_else(|| raw.error_at(0, c, "the location is missing"))?;
    for r in 1..raw.rows {
        let v = raw.cells[c].text(r);
        if v.as_deref() != Some(first.as_str()) {
            return Err(raw.error_at(r, c, format!("the location column holds '{}' here and '{first}' on {}: one file must hold one location", v.unwrap_or_default(), raw.place(0))));
        }
    }
    Ok(first)
}

/// Read every file of `dir` as one location.
pub fn read_folder(dir: &Path, spec: &ReadSpec) -> Result<Frame, DataError> {
    let files = data_files(dir)?;
    let raws: Vec<RawTable> = files.iter().map(|f| read_raw(f)).collect::<Result<_, _>>()?;
    let loc_col = |raw: &RawTable| -> Result<Option<usize>, DataError> {
        match &spec.location_column {
            Some(name) => raw.require(name, "data.location_column").map(Some),
            None => Ok(raw.names.iter().position(|n| LOCATION_NAMES.contains(&n.to_ascii_lowercase().as_str())).filter(|&c| matches!(raw.cells[c], Cells::Text(_)))),
        }
    };
    // One set of category values over every file, so that each file encodes them alike.
    let mut spec = spec.clone();
    if spec.categorical.is_some() {
        let mut levels: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for raw in &raws {
            let skip = loc_col(raw)?;
            for (c, cells) in raw.cells.iter().enumerate() {
                if let (Cells::Text(v), false) = (cells, Some(c) == skip) {
                    levels.entry(raw.names[c].clone()).or_default().extend(v.iter().flatten().cloned());
                }
            }
        }
        for (name, mut l) in levels {
            l.sort();
            l.dedup();
            spec.categories.entry(name).or_insert(l);
        }
    }
    let mut names: Vec<String> = Vec::new();
    let mut parsed = Vec::new();
    let mut parsed_names: Option<Vec<String>> = None;
    let mut report = super::ReadReport { layout: "folder".into(), ..Default::default() };
    let mut categories = BTreeMap::new();
    let mut statics: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for raw in &raws {
        let lc = loc_col(raw)?;
        let id = location(raw, lc)?;
        if let Some(k) = names.iter().position(|n| *n == id) {
            return Err(DataError::file(&raw.path, format!("holds location '{id}', as {} does: each location must have one file", files[k].display())));
        }
        let mut reserved: Vec<usize> = lc.into_iter().collect();
        for name in spec.coordinate_columns.iter().flatten() {
            reserved.push(raw.require(name, "data.coordinate_columns")?);
        }
        let p = parse_columns(raw, &spec, &reserved, spec.target.as_deref())?;
        for (name, v) in super::node_statics(raw, &spec, std::slice::from_ref(&id), &[(0..raw.rows).collect()])? {
            statics.entry(name).or_insert_with(Vec::new).extend(v);
        }
        match &parsed_names {
            None => parsed_names = Some(p.names.clone()),
            Some(first) if *first != p.names => {
                return Err(DataError::file(&raw.path, format!("its value columns {:?} differ from {:?} in {}: every file of the folder needs the same columns (or set data.columns)", p.names, first, files[0].display())));
            }
            _ => {}
        }
        if p.dates.is_none() {
            return Err(DataError::file(&raw.path, format!("no time column among {:?}: the files of a folder are aligned by time; name it with data.time", raw.names)));
        };
        if report.time_from.is_none() {
            report.time_from = p.report.time_from.clone();
            report.index_column = p.report.index_column.clone();
            report.dropped = p.report.dropped.clone();
            report.encoded = p.report.encoded.clone();
        }
        categories.extend(p.categories.clone());
        names.push(id);
        parsed.push(p);
    }
    let all_dates: Vec<Vec<_>> = parsed.iter().map(|p| p.dates.clone().unwrap_or_default()).collect();
    let step = align::common_step(dir, &names, &all_dates)?;
    let mut parts = Vec::with_capacity(parsed.len());
    for ((raw, p), id) in raws.iter().zip(&parsed).zip(&names) {
        let dates = p.dates.as_ref().expect("checked");
        parts.push(align::regularize(&raw.path, id, dates, &p.values, p.names.len(), &places(raw), spec.duplicates, step)?);
    }
    let mut features = parsed_names.expect("one file at least");
    // Target first (the spatio-temporal models read channel 0).
    let w = features.len();
    let order = order_ids(&names, spec.ids.as_deref(), dir)?;
    let parts: Vec<align::Regular> = order.iter().map(|&k| parts[k].clone()).collect();
    let ids: Vec<String> = order.iter().map(|&k| names[k].clone()).collect();
    let statics: BTreeMap<String, Vec<f64>> = statics.into_iter().map(|(k, v)| (k, order.iter().map(|&i| v[i]).collect())).collect();
    let mut joined = align::join(dir, &ids, &parts, w, spec.align)?;
    if spec.target.is_some() {
        features.rotate_right(1);
        for cell in joined.values.chunks_mut(w) {
            cell.rotate_right(1);
        }
    }
    align::record(&mut report, &ids, &parts, &joined);
    Ok(Frame { path: dir.to_path_buf(), rows: joined.dates.len(), dates: Some(joined.dates), nodes: ids, features, values: joined.values, categories, statics, report })
}

/// Indices of `names` in the order `data.ids` gives, else sorted.
fn order_ids(names: &[String], wanted: Option<&[String]>, dir: &Path) -> Result<Vec<usize>, DataError> {
    let ids = super::long::order_ids(names.to_vec(), wanted, "location", dir)?;
    Ok(ids.iter().map(|id| names.iter().position(|n| n == id).expect("checked")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-folder-{}-{}", std::process::id(), files.len() * 1000 + files[0].1.len()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn stations_become_nodes_on_one_grid() {
        let dir = folder(&[
            ("PRSA_b.csv", "No,year,month,day,hour,PM2.5,wd,station\n1,2013,3,1,0,4,N,Beta\n2,2013,3,1,1,5,S,Beta\n"),
            ("PRSA_a.csv", "No,year,month,day,hour,PM2.5,wd,station\n1,2013,3,1,0,7,E,Alpha\n2,2013,3,1,2,9,E,Alpha\n"),
        ]);
        let spec = ReadSpec { target: Some("PM2.5".into()), categorical: Some(super::super::Encoding::Codes), ..Default::default() };
        let f = read_folder(&dir, &spec).unwrap();
        assert_eq!(f.nodes, ["Alpha", "Beta"]);
        assert_eq!(f.features, ["PM2.5", "wd"]);
        assert_eq!(f.rows, 3);
        // Codes over both files' values: E=0, N=1, S=2.
        assert_eq!(&f.values[..4], &[7.0, 0.0, 4.0, 1.0]);
        assert!(f.values[4].is_nan() && f.values[5].is_nan());
        assert_eq!(&f.values[6..8], &[5.0, 2.0]);
        assert_eq!(f.report.gaps, [("Alpha".to_string(), 1), ("Beta".to_string(), 1)]);
    }

    #[test]
    fn coordinate_columns_are_static_values_per_location() {
        let dir = folder(&[
            ("b.csv", "date,v,lat,lon\n2020-01-01,1,40.2,116.2\n2020-01-02,2,40.2,116.2\n"),
            ("a.csv", "date,v,lat,lon\n2020-01-01,3,39.9,116.4\n2020-01-02,4,39.9,116.4\n"),
        ]);
        let spec = ReadSpec { coordinate_columns: Some(vec!["lat".into(), "lon".into()]), ..Default::default() };
        let f = read_folder(&dir, &spec).unwrap();
        assert_eq!(f.nodes, ["a", "b"]);
        assert_eq!(f.features, ["v"]);
        assert_eq!(f.statics["lat"], [39.9, 40.2]);
        assert_eq!(f.statics["lon"], [116.4, 116.2]);
        std::fs::write(dir.join("a.csv"), "date,v,lat,lon\n2020-01-01,3,39.9,116.4\n2020-01-02,4,39.8,116.4\n").unwrap();
        let e = read_folder(&dir, &spec).unwrap_err().to_string();
        assert!(e.ends_with("a.csv:3: column 3 (lat): node 'a' has the coordinate 39.8 here and 39.9 on line 2: a node's coordinates must not change"), "{e}");
    }

    #[test]
    fn a_file_with_two_locations_is_refused() {
        let dir = folder(&[("x.csv", "date,v,station\n2020-01-01,1,A\n2020-01-02,2,B\n")]);
        let e = read_folder(&dir, &ReadSpec::default()).unwrap_err().to_string();
        assert!(e.ends_with("x.csv:3: column 3 (station): the location column holds 'B' here and 'A' on line 2: one file must hold one location"), "{e}");
    }
}
