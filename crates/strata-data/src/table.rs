//! Reader for TSLib-layout tables: a `date` column, then one column per variable, target last.
//!
//! Accepts `.csv` and `.csv.gz`, LF or CRLF line endings, UTF-8 or Latin-1 header bytes.
//! Empty cells and `NaN`/`NA`/`null` are missing values (kept as NaN for [`crate::impute`]);
//! anything else that is not a number is an error naming file, line and column.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

use crate::DataError;

/// A numeric table read from disk, values row-major `[rows, columns]`.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    /// Variable names in storage order (target last when a target was given).
    pub columns: Vec<String>,
    /// One timestamp per row when the file has a `date` column.
    pub dates: Option<Vec<NaiveDateTime>>,
    pub values: Vec<f32>,
    pub rows: usize,
    pub quality: Quality,
}

/// What the reader noticed about the time axis and the cells.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Quality {
    /// The most common step between consecutive timestamps, in seconds.
    pub step_seconds: Option<i64>,
    /// Lines (1-based) whose timestamp equals the previous row's.
    pub duplicate_timestamp_lines: Vec<u64>,
    /// Lines (1-based) where the step differs from the usual one (gaps or going backwards).
    pub irregular_step_lines: Vec<u64>,
    /// Number of missing cells (empty, NaN, NA, null).
    pub missing_cells: usize,
}

impl Table {
    pub fn cols(&self) -> usize {
        self.columns.len()
    }
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols()..(r + 1) * self.cols()]
    }
    /// Keep only the given columns (by index), in that order.
    pub fn select(&self, keep: &[usize]) -> Table {
        let mut values = Vec::with_capacity(self.rows * keep.len());
        for r in 0..self.rows {
            let row = self.row(r);
            values.extend(keep.iter().map(|&c| row[c]));
        }
        Table {
            path: self.path.clone(),
            columns: keep.iter().map(|&c| self.columns[c].clone()).collect(),
            dates: self.dates.clone(),
            values,
            rows: self.rows,
            quality: self.quality.clone(),
        }
    }
}

/// The most bytes a compressed input may expand to (`STRATA_MAX_INPUT_BYTES`, default 16 GiB):
/// beyond it a file is refused as it is read, before it fills memory (a gzip bomb).
pub fn max_input_bytes() -> u64 {
    std::env::var("STRATA_MAX_INPUT_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(16 << 30)
}

/// Read a whole file, transparently gunzipping `*.gz` (up to [`max_input_bytes`]).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let cap = max_input_bytes();
        let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(cap as usize));
        flate2::read::GzDecoder::new(&raw[..])
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| DataError::file(path, format!("not a valid gzip file: {e}")))?;
        if out.len() as u64 > cap {
            return Err(DataError::file(path, format!("decompresses to more than {cap} bytes (from {} compressed): refused as a likely gzip bomb; raise STRATA_MAX_INPUT_BYTES if the file is genuine", raw.len())));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Header bytes as text: UTF-8 when valid, else Latin-1 (every byte is one code point).
pub(crate) fn decode_header(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.trim().to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect::<String>().trim().to_string(),
    }
}

const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
];

/// Parse a timestamp in any of the layouts the public datasets use.
pub fn parse_date(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

pub(crate) fn is_missing(cell: &str) -> bool {
    matches!(cell, "" | "NaN" | "nan" | "NAN" | "NA" | "N/A" | "null" | "NULL" | "None")
}

/// Read a TSLib-layout table. When `target` is given it must exist and is moved last.
pub fn read_table(path: &Path, target: Option<&str>) -> Result<Table, DataError> {
    let bytes = read_bytes(path)?;
    parse_table(path, &bytes, target)
}

/// Parse table bytes (already decompressed); `path` is used in messages only.
pub fn parse_table(path: &Path, bytes: &[u8], target: Option<&str>) -> Result<Table, DataError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let header: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| DataError::file(path, format!("cannot read the header line: {e}")))?
        .iter()
        .map(decode_header)
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(DataError::file(path, "the file is empty (no header line)"));
    }
    let date_col = header.iter().position(|h| h.eq_ignore_ascii_case("date"));
    let var_cols: Vec<usize> = (0..header.len()).filter(|&c| Some(c) != date_col).collect();
    // Storage order: every variable but the target, then the target (TSLib's reordering).
    let order: Vec<usize> = match target {
        Some(t) => {
            let Some(tc) = var_cols.iter().copied().find(|&c| header[c] == t) else {
                let names: Vec<&str> = var_cols.iter().map(|&c| header[c].as_str()).collect();
                return Err(DataError::At {
                    path: path.to_path_buf(),
                    line: 1,
                    column: format!("'{t}'"),
                    msg: format!("target column not found in the header; columns are {names:?}"),
                });
            };
            var_cols.iter().copied().filter(|&c| c != tc).chain([tc]).collect()
        }
        None => var_cols.clone(),
    };
    let mut values = Vec::new();
    let mut dates = date_col.map(|_| Vec::new());
    let mut quality = Quality::default();
    let mut lines = Vec::new();
    for_each_record(path, bytes, &mut rdr, header.len(), |line, record| {
        if let (Some(dc), Some(ds)) = (date_col, dates.as_mut()) {
            let cell = String::from_utf8_lossy(&record[dc]);
            let d = parse_date(&cell).ok_or_else(|| DataError::At {
                path: path.to_path_buf(),
                line,
                column: format!("{} ({})", dc + 1, header[dc]),
                msg: format!("cannot parse '{cell}' as a timestamp"),
            })?;
            ds.push(d);
        }
        for &c in &order {
            let raw = &record[c];
            let cell = std::str::from_utf8(raw).unwrap_or("\u{fffd}").trim();
            let v = if is_missing(cell) {
                quality.missing_cells += 1;
                f32::NAN
            } else {
                cell.parse::<f32>().map_err(|_| DataError::At {
                    path: path.to_path_buf(),
                    line,
                    column: format!("{} ({})", c + 1, header[c]),
                    msg: format!("cannot parse '{}' as a number", String::from_utf8_lossy(raw)),
                })?
            };
            values.push(v);
        }
        lines.push(line);
        Ok(())
    })?;
    let rows = lines.len();
    if rows == 0 {
        return Err(DataError::file(path, "the file has a header but no data rows"));
    }
    if let Some(ds) = &dates {
        check_time_axis(ds, &lines, &mut quality);
    }
    Ok(Table {
        path: path.to_path_buf(),
        columns: order.iter().map(|&c| header[c].clone()).collect(),
        dates,
        values,
        rows,
        quality,
    })
}

/// Call `f(line, record)` for every data record of a text table (blank lines skipped), with its
/// line (1-based, as an editor shows it); a malformed or ragged record is an error at its line.
pub(crate) fn for_each_record<R: std::io::Read>(
    path: &Path,
    bytes: &[u8],
    rdr: &mut csv::Reader<R>,
    width: usize,
    mut f: impl FnMut(u64, &csv::ByteRecord) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut record = csv::ByteRecord::new();
    // csv's own line counter is off by one after a CRLF header; count newlines before each
    // record's byte offset instead.
    let mut counter = LineCounter::default();
    loop {
        let more = rdr.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| counter.line_at(bytes, p.byte())).unwrap_or(0);
            DataError::At { path: path.to_path_buf(), line, column: "-".into(), msg: e.to_string() }
        })?;
        if !more {
            return Ok(());
        }
        let line = record.position().map(|p| counter.line_at(bytes, p.byte())).unwrap_or(0);
        if record.len() == 1 && record[0].is_empty() {
            continue; // blank line
        }
        if record.len() != width {
            return Err(DataError::At {
                path: path.to_path_buf(),
                line,
                column: format!("{}", record.len().min(width) + 1),
                msg: format!("ragged row: {} fields, the header has {width}", record.len()),
            });
        }
        f(line, &record)?;
    }
}

/// Line numbers (1-based) of byte offsets visited in increasing order.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: u64,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], offset: u64) -> u64 {
        let mut offset = (offset as usize).min(bytes.len());
        // After a CRLF, csv reports the record as starting at the '\n': skip line ends.
        while offset < bytes.len() && matches!(bytes[offset], b'\r' | b'\n') {
            offset += 1;
        }
        if offset >= self.offset {
            self.newlines += bytes[self.offset..offset].iter().filter(|&&b| b == b'\n').count() as u64;
            self.offset = offset;
        }
        self.newlines + 1
    }
}

/// Finds the usual step, duplicated timestamps and irregular steps.
fn check_time_axis(dates: &[NaiveDateTime], lines: &[u64], q: &mut Quality) {
    let mut counts = std::collections::HashMap::<i64, usize>::new();
    for w in dates.windows(2) {
        *counts.entry((w[1] - w[0]).num_seconds()).or_default() += 1;
    }
    let step = counts.into_iter().filter(|(s, _)| *s > 0).max_by_key(|&(s, n)| (n, -s)).map(|(s, _)| s);
    q.step_seconds = step;
    for (i, w) in dates.windows(2).enumerate() {
        let d = (w[1] - w[0]).num_seconds();
        if d == 0 {
            q.duplicate_timestamp_lines.push(lines[i + 1]);
        } else if Some(d) != step {
            q.irregular_step_lines.push(lines[i + 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, target: Option<&str>) -> Result<Table, DataError> {
        parse_table(Path::new("mem.csv"), s.as_bytes(), target)
    }

    #[test]
    fn reorders_target_last_and_reads_values() {
        let t = parse("date,OT,a,b\n2020-01-01 00:00:00,1,2,3\n2020-01-01 01:00:00,4,5,6\n", Some("OT")).unwrap();
        assert_eq!(t.columns, ["a", "b", "OT"]);
        assert_eq!(t.values, [2.0, 3.0, 1.0, 5.0, 6.0, 4.0]);
        assert_eq!(t.quality.step_seconds, Some(3600));
    }

    #[test]
    fn crlf_latin1_header_duplicate_and_gap() {
        let mut bytes = b"date,SWDR (W/m\xb2),OT\r\n".to_vec();
        bytes.extend_from_slice(b"2020-01-01 00:00:00,1,2\r\n2020-01-01 00:10:00,1,2\r\n");
        bytes.extend_from_slice(b"2020-01-01 00:10:00,1,2\r\n2020-01-01 00:50:00,1,2\r\n2020-01-01 01:00:00,1,2\r\n");
        let t = parse_table(Path::new("w.csv"), &bytes, Some("OT")).unwrap();
        assert_eq!(t.columns[0], "SWDR (W/m\u{b2})");
        assert_eq!(t.rows, 5);
        assert_eq!(t.quality.step_seconds, Some(600));
        assert_eq!(t.quality.duplicate_timestamp_lines, [4]);
        assert_eq!(t.quality.irregular_step_lines, [5]);
    }

    #[test]
    fn ragged_row_names_file_line_and_column() {
        let e = parse("date,a,OT\n2020-01-01,1,2\n2020-01-02,1\n", Some("OT")).unwrap_err().to_string();
        assert!(e.starts_with("mem.csv:3: column 3"), "{e}");
        assert!(e.contains("ragged row: 2 fields, the header has 3"), "{e}");
    }

    #[test]
    fn non_numeric_cell_names_file_line_and_column() {
        let e = parse("date,a,OT\n2020-01-01,1,2\n2020-01-02,x1,2\n", Some("OT")).unwrap_err().to_string();
        assert_eq!(e, "mem.csv:3: column 2 (a): cannot parse 'x1' as a number");
    }

    #[test]
    fn missing_target_names_the_column() {
        let e = parse("date,a,b\n2020-01-01,1,2\n", Some("OT")).unwrap_err().to_string();
        assert!(e.starts_with("mem.csv:1: column 'OT': target column not found"), "{e}");
    }

    #[test]
    fn missing_cells_become_nan() {
        let t = parse("date,a,OT\n2020-01-01,,2\n2020-01-02,NaN,3\n", Some("OT")).unwrap();
        assert!(t.values[0].is_nan() && t.values[2].is_nan());
        assert_eq!(t.quality.missing_cells, 2);
    }

    #[test]
    fn parses_exchange_rate_dates() {
        let d = parse_date("1990/1/2 0:00").unwrap();
        assert_eq!(d.to_string(), "1990-01-02 00:00:00");
    }
}
