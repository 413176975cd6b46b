//! Long tables (`unique_id, ds, y` and more columns: neuralforecast, statsforecast, GluonTS's
//! pandas datasets, darts): one series per id, each put on a regular grid, then all on one grid
//! (`data.align`), so the ids become the channels of a long-sequence dataset or the nodes of a
//! spatio-temporal one.

use std::collections::{BTreeMap, HashMap};

use super::raw::{Cells, RawTable};
use super::wide::parse_columns;
use super::{Frame, ReadSpec, align};
use crate::DataError;

/// Ids in a stated order: `data.ids` when given, else sorted (numerically when every id is a
/// number).
pub fn order_ids(found: Vec<String>, wanted: Option<&[String]>, what: &str, path: &std::path::Path) -> Result<Vec<String>, DataError> {
    match wanted {
        Some(w) => {
            if let Some(missing) = w.iter().find(|id| !found.contains(id)) {
                let shown: Vec<&String> = found.iter().take(20).collect();
                return Err(DataError::file(path, format!("data.ids names {what} '{missing}', which is not there; found {shown:?}{}", if found.len() > 20 { " ..." } else { "" })));
            }
            Ok(w.to_vec())
        }
        None => {
            let mut ids = found;
            if ids.iter().all(|s| s.parse::<f64>().is_ok()) {
                ids.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
            } else {
                ids.sort();
            }
            Ok(ids)
        }
    }
}

/// Read a long table. Value columns: the target (`data.target`, default `y`) first, then the
/// columns `data.columns` and `data.covariates` name.
pub fn read_long(raw: RawTable, spec: &ReadSpec) -> Result<Frame, DataError> {
    let id_name = spec.id_column.as_deref().unwrap_or("unique_id");
    let id_col = raw.require(id_name, "data.id_column (default unique_id)")?;
    let target = spec.target.as_deref().unwrap_or("y");
    let mut columns = spec.columns.clone().unwrap_or_default();
    columns.extend(spec.covariates.iter().filter(|c| !columns.contains(c)).cloned().collect::<Vec<_>>());
    let narrow = ReadSpec { columns: Some(columns), ..spec.clone() };
    let mut reserved = vec![id_col];
    for name in spec.coordinate_columns.iter().flatten() {
        reserved.push(raw.require(name, "data.coordinate_columns")?);
    }
    let mut p = parse_columns(&raw, &narrow, &reserved, Some(target))?;
    let Some(dates) = p.dates.take() else {
        return Err(DataError::file(&raw.path, format!("a long table needs a time column; found none among {:?}: name it with data.time (default ds)", raw.names)));
    };
    // Target first.
    let w = p.names.len();
    p.names.rotate_right(1);
    for row in p.values.chunks_mut(w) {
        row.rotate_right(1);
    }
    let mut rows_of: HashMap<String, Vec<usize>> = HashMap::new();
    let mut found = Vec::new();
    for r in 0..raw.rows {
        let id = match &raw.cells[id_col] {
            Cells::Time(_) => None,
            c => c.text(r),
        };
        let Some(id) = id else { return Err(raw.error_at(r, id_col, "the series id is missing")) };
        rows_of.entry(id.clone()).or_insert_with(|| {
            found.push(id.clone());
            Vec::new()
        }).push(r);
    }
    let ids = order_ids(found, spec.ids.as_deref(), "series", &raw.path)?;
    let per_id: Vec<Vec<_>> = ids.iter().map(|id| rows_of[id].iter().map(|&r| dates[r]).collect()).collect();
    let step = align::common_step(&raw.path, &ids, &per_id)?;
    let mut parts = Vec::with_capacity(ids.len());
    for id in &ids {
        let rows = &rows_of[id];
        let d: Vec<_> = rows.iter().map(|&r| dates[r]).collect();
        let v: Vec<f32> = rows.iter().flat_map(|&r| p.values[r * w..(r + 1) * w].iter().copied()).collect();
        let places: Vec<String> = rows.iter().map(|&r| raw.place(r)).collect();
        parts.push(align::regularize(&raw.path, id, &d, &v, w, &places, spec.duplicates, step)?);
    }
    let joined = align::join(&raw.path, &ids, &parts, w, spec.align)?;
    let mut report = p.report;
    report.layout = "long".into();
    align::record(&mut report, &ids, &parts, &joined);
    let rows: Vec<Vec<usize>> = ids.iter().map(|id| rows_of[id].clone()).collect();
    let statics: BTreeMap<String, Vec<f64>> = super::node_statics(&raw, spec, &ids, &rows)?;
    Ok(Frame { path: raw.path, rows: joined.dates.len(), dates: Some(joined.dates), nodes: ids, features: p.names, values: joined.values, categories: p.categories, statics, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::raw::parse_csv;
    use std::path::Path;

    #[test]
    fn series_of_different_spans_with_a_gap() {
        let text = "unique_id,ds,y,temp\nB,2020-01-01 01:00,5,1\nA,2020-01-01 00:00,1,0\nA,2020-01-01 01:00,2,0\nA,2020-01-01 03:00,4,0\nB,2020-01-01 02:00,6,1\n";
        let raw = parse_csv(Path::new("l.csv"), text.as_bytes()).unwrap();
        let f = read_long(raw.clone(), &ReadSpec::default()).unwrap();
        assert_eq!(f.nodes, ["A", "B"]);
        assert_eq!(f.features, ["y"]);
        assert_eq!(f.rows, 4);
        let nan = f32::NAN;
        let want = [1.0, nan, 2.0, 5.0, nan, 6.0, 4.0, nan];
        assert!(f.values.iter().zip(want).all(|(a, b)| a == &b || (a.is_nan() && b.is_nan())), "{:?}", f.values);
        assert_eq!(f.report.gaps, [("A".to_string(), 1), ("B".to_string(), 2)]);
        let f = read_long(raw, &ReadSpec { columns: Some(vec!["temp".into()]), align: crate::source::Align::Intersection, ..Default::default() }).unwrap();
        assert_eq!(f.features, ["y", "temp"]);
        assert_eq!(f.rows, 2);
        assert_eq!(f.column_names(), ["A:y", "A:temp", "B:y", "B:temp"]);
    }

    #[test]
    fn refusals_name_the_series_and_the_fix() {
        let raw = parse_csv(Path::new("l.csv"), b"unique_id,ds,y\nA,2020-01-01 00:00,1\nA,2020-01-01 00:00,2\n").unwrap();
        let e = read_long(raw, &ReadSpec::default()).unwrap_err().to_string();
        assert!(e.starts_with("l.csv: series 'A': line 2 and line 3 both have the time 2020-01-01 00:00:00; set data.duplicates"), "{e}");
        let raw = parse_csv(Path::new("l.csv"), b"id,t,v\nA,2020-01-01,1\n").unwrap();
        let e = read_long(raw, &ReadSpec::default()).unwrap_err().to_string();
        assert_eq!(e, "l.csv: column 'unique_id' (from data.id_column (default unique_id)) is not in the file; its columns are [\"id\", \"t\", \"v\"]");
        let raw = parse_csv(Path::new("l.csv"), b"unique_id,ds,y\nA,2020-01-01,1\n").unwrap();
        let e = read_long(raw, &ReadSpec { ids: Some(vec!["Z".into()]), ..Default::default() }).unwrap_err().to_string();
        assert_eq!(e, "l.csv: data.ids names series 'Z', which is not there; found [\"A\"]");
    }
}
