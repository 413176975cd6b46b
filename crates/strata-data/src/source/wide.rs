//! A wide table from the wild -> numbers on a regular time axis: the time from one column (with
//! an optional format) or from parts, an index column detected, columns kept or dropped, text
//! columns encoded (one-hot or codes, the values saved) or refused with the settings that fix it.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};

use super::raw::{Cells, RawTable};
use super::{Encoding, Frame, ReadReport, ReadSpec, TimeSpec, align};
use crate::DataError;

/// The columns of a table as numbers, before any time alignment.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub dates: Option<Vec<NaiveDateTime>>,
    /// Value columns, `[rows, names.len()]`.
    pub names: Vec<String>,
    pub values: Vec<f32>,
    pub categories: BTreeMap<String, Vec<String>>,
    pub report: ReadReport,
}

const TIME_NAMES: &[&str] = &["date", "datetime", "timestamp", "time", "ds"];
const INDEX_NAMES: &[&str] = &["", "no", "index", "unnamed: 0", "idx"];
const PART_NAMES: &[&str] = &["year", "month", "day", "hour", "minute", "second"];

/// Which columns hold the time, and how to call it in the report.
fn time_columns(raw: &RawTable, spec: &ReadSpec) -> Result<Option<(Vec<usize>, String, bool)>, DataError> {
    match &spec.time {
        Some(TimeSpec::Column(name)) => Ok(Some((vec![raw.require(name, "data.time")?], name.clone(), false))),
        Some(TimeSpec::Parts(parts)) => {
            if parts.is_empty() || parts.len() > 6 {
                return Err(DataError::Config(format!("data.time = {parts:?}: give 1 to 6 columns for year, month, day, hour, minute, second (in that order)")));
            }
            let cols = parts.iter().map(|p| raw.require(p, "data.time")).collect::<Result<Vec<_>, _>>()?;
            Ok(Some((cols, parts.join("/"), true)))
        }
        None => {
            if let Some(c) = raw.cells.iter().position(|c| matches!(c, Cells::Time(_))) {
                return Ok(Some((vec![c], raw.names[c].clone(), false)));
            }
            if let Some(c) = raw.names.iter().position(|n| TIME_NAMES.contains(&n.to_ascii_lowercase().as_str())) {
                return Ok(Some((vec![c], raw.names[c].clone(), false)));
            }
            // year / month / day [/ hour [/ minute]] columns, as sensor exports have them.
            let parts: Vec<usize> = PART_NAMES.iter().map_while(|p| raw.names.iter().position(|n| n.eq_ignore_ascii_case(p))).collect();
            if parts.len() >= 3 && parts.iter().all(|&c| matches!(raw.cells[c], Cells::Num(_))) {
                let label = parts.iter().map(|&c| raw.names[c].as_str()).collect::<Vec<_>>().join("/");
                return Ok(Some((parts, label, true)));
            }
            Ok(None)
        }
    }
}

fn time_hint() -> &'static str {
    "set data.time_format (chrono's strftime, e.g. \"%d.%m.%Y %H:%M\"), or name the column with data.time"
}

/// Parse the time of every row.
fn parse_times(raw: &RawTable, cols: &[usize], parts: bool, format: Option<&str>) -> Result<Vec<NaiveDateTime>, DataError> {
    let mut out = Vec::with_capacity(raw.rows);
    if parts {
        // Parts: year, month, day, hour, minute, second.
        for r in 0..raw.rows {
            let mut v = [0i64, 1, 1, 0, 0, 0];
            for (k, &c) in cols.iter().enumerate() {
                let Cells::Num(x) = &raw.cells[c] else { return Err(raw.error_at(r, c, format!("a time part ({}) must be a whole number; the column holds text", PART_NAMES[k]))) };
                if !x[r].is_finite() || x[r].fract() != 0.0 {
                    return Err(raw.error_at(r, c, format!("the {} is missing or not a whole number ({})", PART_NAMES[k], x[r])));
                }
                v[k] = x[r] as i64;
            }
            let d = NaiveDate::from_ymd_opt(v[0] as i32, v[1] as u32, v[2] as u32).and_then(|d| d.and_hms_opt(v[3] as u32, v[4] as u32, v[5] as u32));
            out.push(d.ok_or_else(|| raw.error_at(r, cols[0], format!("{}-{:02}-{:02} {:02}:{:02}:{:02} is not a valid time", v[0], v[1], v[2], v[3], v[4], v[5])))?);
        }
        return Ok(out);
    }
    let c = cols[0];
    for r in 0..raw.rows {
        let d = match (&raw.cells[c], format) {
            (Cells::Time(v), _) => v[r],
            (cells, fmt) => {
                let Some(s) = cells.text(r) else { return Err(raw.error_at(r, c, "the time is missing; every row needs one (remove the row)")) };
                let parsed = match fmt {
                    Some(f) => NaiveDateTime::parse_from_str(&s, f).ok().or_else(|| NaiveDate::parse_from_str(&s, f).ok().and_then(|d| d.and_hms_opt(0, 0, 0))),
                    None => crate::table::parse_date(&s),
                };
                let Some(d) = parsed else {
                    let how = fmt.map_or_else(|| "in any of the usual layouts".to_string(), |f| format!("with data.time_format = {f:?}"));
                    return Err(raw.error_at(r, c, format!("cannot read '{s}' as a time {how}; {}", time_hint())));
                };
                Some(d)
            }
        };
        out.push(d.ok_or_else(|| raw.error_at(r, c, "the time is missing; every row needs one (remove the row)"))?);
    }
    Ok(out)
}

/// A numeric column counting rows (whole numbers rising from 0 or 1, with jumps where rows
/// were removed), named like an index (`No`, `index`, `Unnamed: 0`, an empty name).
fn is_index(raw: &RawTable, c: usize) -> bool {
    let Cells::Num(v) = &raw.cells[c] else { return false };
    INDEX_NAMES.contains(&raw.names[c].to_ascii_lowercase().as_str()) && !v.is_empty() && (v[0] == 0.0 || v[0] == 1.0) && v.iter().all(|x| x.fract() == 0.0) && v.windows(2).all(|w| w[1] > w[0])
}

/// The columns of `raw` as numbers. `reserved` columns (a series id, a location) are read by
/// the caller; `target` is kept whatever `data.columns` says and must be numeric.
pub fn parse_columns(raw: &RawTable, spec: &ReadSpec, reserved: &[usize], target: Option<&str>) -> Result<Parsed, DataError> {
    let mut report = ReadReport::default();
    let time = time_columns(raw, spec)?;
    let dates = match &time {
        Some((cols, label, parts)) => {
            report.time_from = Some(label.clone());
            Some(parse_times(raw, cols, *parts, spec.time_format.as_deref())?)
        }
        None => None,
    };
    let time_cols: Vec<usize> = time.map(|t| t.0).unwrap_or_default();
    for d in &spec.drop {
        raw.require(d, "data.drop")?;
    }
    let target_col = target.map(|t| raw.require(t, "data.target")).transpose()?;
    if let Some(keep) = &spec.columns {
        for k in keep {
            raw.require(k, "data.columns")?;
        }
    }
    let mut cols = Vec::new();
    for c in 0..raw.names.len() {
        let name = &raw.names[c];
        if reserved.contains(&c) || time_cols.contains(&c) {
            continue;
        }
        if Some(c) != target_col {
            if spec.drop.iter().any(|d| raw.position(d) == Some(c)) {
                report.dropped.push(name.clone());
                continue;
            }
            if let Some(keep) = &spec.columns
                && !keep.iter().any(|k| raw.position(k) == Some(c))
            {
                report.dropped.push(name.clone());
                continue;
            }
            if spec.columns.is_none() && is_index(raw, c) {
                report.index_column = Some(name.clone());
                continue;
            }
        }
        cols.push(c);
    }
    // The target goes last, as the long-sequence protocol stores it.
    if let Some(t) = target_col {
        cols.retain(|&c| c != t);
        cols.push(t);
    }
    let mut names = Vec::new();
    let mut columns: Vec<Vec<f32>> = Vec::new();
    let mut categories = BTreeMap::new();
    for &c in &cols {
        match &raw.cells[c] {
            Cells::Num(v) => {
                names.push(raw.names[c].clone());
                columns.push(v.iter().map(|&x| x as f32).collect());
            }
            Cells::Time(_) => {
                return Err(DataError::file(&raw.path, format!("column {} ({}) holds times; name the time column with data.time, or leave this one out with data.drop = [{:?}]", c + 1, raw.names[c], raw.names[c])));
            }
            Cells::Text(v) => {
                let name = &raw.names[c];
                // A numeric column with a stray word: name that cell, not the column.
                let bad = v.iter().position(|s| s.as_deref().is_some_and(|s| s.parse::<f64>().is_err())).unwrap_or(0);
                let numbers = v.iter().flatten().filter(|s| s.parse::<f64>().is_ok()).count();
                if numbers > 0 {
                    return Err(raw.error_at(
                        bad,
                        c,
                        format!("cannot parse '{}' as a number; the column's other cells are numbers: correct the cell, or empty it to make it a missing value", v[bad].as_deref().unwrap_or_default()),
                    ));
                }
                let first = bad;
                let example = v[first].clone().unwrap_or_default();
                if Some(c) == target_col {
                    return Err(raw.error_at(first, c, format!("the target holds text ('{example}'); the target must be numeric")));
                }
                let Some(how) = spec.categorical else {
                    return Err(raw.error_at(
                        first,
                        c,
                        format!("cannot parse '{example}' as a number: a text column; set data.categorical = \"onehot\" (or \"codes\") to encode text columns as inputs, or data.drop = [{name:?}] to leave it out"),
                    ));
                };
                let levels = match spec.categories.get(name) {
                    Some(saved) => saved.clone(),
                    None => {
                        let mut l: Vec<String> = v.iter().flatten().cloned().collect();
                        l.sort();
                        l.dedup();
                        l
                    }
                };
                let code = |r: usize| -> Result<Option<usize>, DataError> {
                    match &v[r] {
                        None => Ok(None),
                        Some(s) => levels.iter().position(|l| l == s).map(Some).ok_or_else(|| raw.error_at(r, c, format!("'{s}' is not one of the values the model was trained with: {levels:?}"))),
                    }
                };
                match how {
                    Encoding::Codes => {
                        names.push(name.clone());
                        columns.push((0..raw.rows).map(|r| code(r).map(|k| k.map_or(f32::NAN, |k| k as f32))).collect::<Result<_, _>>()?);
                    }
                    Encoding::Onehot => {
                        let codes: Vec<Option<usize>> = (0..raw.rows).map(code).collect::<Result<_, _>>()?;
                        for (k, l) in levels.iter().enumerate() {
                            names.push(format!("{name}={l}"));
                            columns.push(codes.iter().map(|&x| if x == Some(k) { 1.0 } else { 0.0 }).collect());
                        }
                    }
                }
                report.encoded.push((name.clone(), levels.len()));
                categories.insert(name.clone(), levels);
            }
        }
    }
    if names.is_empty() {
        return Err(DataError::file(&raw.path, format!("no value columns are left to read (columns {:?}; dropped {:?})", raw.names, report.dropped)));
    }
    let w = names.len();
    let mut values = vec![0f32; raw.rows * w];
    for (j, col) in columns.iter().enumerate() {
        for (r, &x) in col.iter().enumerate() {
            values[r * w + j] = x;
        }
    }
    Ok(Parsed { dates, names, values, categories, report })
}

/// Where each row is, for messages.
pub fn places(raw: &RawTable) -> Vec<String> {
    (0..raw.rows).map(|r| raw.place(r)).collect()
}

/// Read a wide table: one series, its columns as features, on a regular time axis.
/// Without `data.target`, a column named `OT` is the target (the TSLib convention).
pub fn read_wide(raw: RawTable, spec: &ReadSpec) -> Result<Frame, DataError> {
    let target = spec.target.clone().or_else(|| raw.names.iter().find(|n| *n == "OT").cloned());
    let p = parse_columns(&raw, spec, &[], target.as_deref())?;
    let mut report = p.report;
    report.layout = "wide".into();
    let w = p.names.len();
    let (dates, values, rows) = match p.dates {
        Some(d) => {
            let reg = align::regularize(&raw.path, "", &d, &p.values, w, &places(&raw), spec.duplicates, None)?;
            report.gaps = vec![(String::new(), reg.gaps)];
            report.duplicates = vec![(String::new(), reg.duplicates)];
            report.sorted = reg.sorted;
            align::set_step(&mut report, reg.step, &reg.dates);
            let rows = reg.dates.len();
            (Some(reg.dates), reg.values, rows)
        }
        None => (None, p.values, raw.rows),
    };
    Ok(Frame { path: raw.path, dates, rows, nodes: vec![String::new()], features: p.names, values, categories: p.categories, statics: BTreeMap::new(), report })
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::raw::parse_csv;
    use std::path::Path;

    const EXPORT: &str = "No,year,month,day,hour,PM2.5,TEMP,wd,station\n\
1,2013,3,1,0,4,-0.7,NNW,Aotizhongxin\n\
2,2013,3,1,1,8,-1.1,N,Aotizhongxin\n\
3,2013,3,1,3,NA,-1.4,,Aotizhongxin\n";

    #[test]
    fn a_sensor_export_is_refused_with_both_fixes() {
        let raw = parse_csv(Path::new("a.csv"), EXPORT.as_bytes()).unwrap();
        let e = read_wide(raw, &ReadSpec { target: Some("PM2.5".into()), ..Default::default() }).unwrap_err().to_string();
        assert_eq!(e, "a.csv:2: column 8 (wd): cannot parse 'NNW' as a number: a text column; set data.categorical = \"onehot\" (or \"codes\") to encode text columns as inputs, or data.drop = [\"wd\"] to leave it out");
    }

    #[test]
    fn a_sensor_export_reads_with_settings() {
        let raw = parse_csv(Path::new("a.csv"), EXPORT.as_bytes()).unwrap();
        let spec = ReadSpec { target: Some("PM2.5".into()), categorical: Some(Encoding::Onehot), drop: vec!["station".into()], ..Default::default() };
        let f = read_wide(raw, &spec).unwrap();
        assert_eq!(f.report.time_from.as_deref(), Some("year/month/day/hour"));
        assert_eq!(f.report.index_column.as_deref(), Some("No"));
        assert_eq!(f.features, ["TEMP", "wd=N", "wd=NNW", "PM2.5"]);
        // 00:00, 01:00, (02:00 missing), 03:00.
        assert_eq!(f.rows, 4);
        assert_eq!(f.report.gaps, [(String::new(), 1)]);
        assert_eq!(&f.values[..8], &[-0.7, 0.0, 1.0, 4.0, -1.1, 1.0, 0.0, 8.0]);
        assert!(f.values[8..12].iter().all(|v| v.is_nan()));
        // Row 4: wd missing -> all zeros; PM2.5 missing -> NaN.
        assert_eq!(&f.values[12..15], &[-1.4, 0.0, 0.0]);
        assert!(f.values[15].is_nan());
        assert_eq!(f.categories["wd"], ["N", "NNW"]);
    }

    #[test]
    fn codes_and_a_saved_mapping() {
        let raw = parse_csv(Path::new("a.csv"), EXPORT.as_bytes()).unwrap();
        let mut spec = ReadSpec { target: Some("PM2.5".into()), categorical: Some(Encoding::Codes), columns: Some(vec!["wd".into()]), ..Default::default() };
        spec.categories.insert("wd".into(), vec!["NNW".into(), "N".into()]);
        let f = read_wide(raw.clone(), &spec).unwrap();
        assert_eq!(f.features, ["wd", "PM2.5"]);
        assert_eq!(&f.values[..4], &[0.0, 4.0, 1.0, 8.0]);
        spec.categories.insert("wd".into(), vec!["S".into()]);
        let e = read_wide(raw, &spec).unwrap_err().to_string();
        assert_eq!(e, "a.csv:2: column 8 (wd): 'NNW' is not one of the values the model was trained with: [\"S\"]");
    }

    #[test]
    fn time_with_a_format_and_its_errors() {
        let raw = parse_csv(Path::new("b.csv"), b"when;x\n01.03.2020 10:00;1\n01.03.2020 11:00;2\n").unwrap();
        let spec = ReadSpec { time: Some(TimeSpec::Column("when".into())), time_format: Some("%d.%m.%Y %H:%M".into()), ..Default::default() };
        let f = read_wide(raw.clone(), &spec).unwrap();
        assert_eq!(f.report.step_seconds, Some(3600));
        assert_eq!(f.dates.unwrap()[0].to_string(), "2020-03-01 10:00:00");
        let e = read_wide(raw, &ReadSpec { time: Some(TimeSpec::Column("when".into())), ..Default::default() }).unwrap_err().to_string();
        assert!(e.starts_with("b.csv:2: column 1 (when): cannot read '01.03.2020 10:00' as a time in any of the usual layouts; set data.time_format"), "{e}");
        let raw = parse_csv(Path::new("b.csv"), b"x\n1\n").unwrap();
        let e = read_wide(raw, &ReadSpec { drop: vec!["y".into()], ..Default::default() }).unwrap_err().to_string();
        assert_eq!(e, "b.csv: column 'y' (from data.drop) is not in the file; its columns are [\"x\"]");
    }
}
