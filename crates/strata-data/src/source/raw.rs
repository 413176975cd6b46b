//! A table as its file holds it: named columns, each numeric, text or time, before any setting
//! of the run is applied. Read from CSV / `.csv.gz` / `.tsv` (delimiter sniffed), Parquet, or
//! Arrow IPC (Feather v2) files.

use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::NaiveDateTime;

use crate::DataError;
use crate::table::{is_missing, read_bytes};

/// One column's cells.
#[derive(Debug, Clone, PartialEq)]
pub enum Cells {
    /// Numbers; missing cells are NaN.
    Num(Vec<f64>),
    /// Text (a column with a cell that is not a number); missing cells are `None`.
    Text(Vec<Option<String>>),
    /// Timestamps (Parquet / Arrow time types); missing cells are `None`.
    Time(Vec<Option<NaiveDateTime>>),
}

impl Cells {
    pub fn len(&self) -> usize {
        match self {
            Cells::Num(v) => v.len(),
            Cells::Text(v) => v.len(),
            Cells::Time(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell at `row` as text, for messages and for parsing dates.
    pub fn text(&self, row: usize) -> Option<String> {
        match self {
            Cells::Num(v) => v[row].is_finite().then(|| fmt_number(v[row])),
            Cells::Text(v) => v[row].clone(),
            Cells::Time(v) => v[row].map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Cells::Num(_) => "number",
            Cells::Text(_) => "text",
            Cells::Time(_) => "time",
        }
    }
}

fn fmt_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// A table of typed columns.
#[derive(Debug, Clone)]
pub struct RawTable {
    pub path: PathBuf,
    pub names: Vec<String>,
    pub cells: Vec<Cells>,
    pub rows: usize,
    /// The line (1-based) of each row in a text file; `None` for Parquet / Arrow (rows are
    /// then named by their 1-based index).
    pub lines: Option<Vec<u64>>,
}

impl RawTable {
    /// Where row `r` is, as messages say it: `line 12` or `row 11`.
    pub fn place(&self, r: usize) -> String {
        match &self.lines {
            Some(l) => format!("line {}", l[r]),
            None => format!("row {}", r + 1),
        }
    }
    /// A [`DataError`] at row `r`, column `c`.
    pub fn error_at(&self, r: usize, c: usize, msg: impl Into<String>) -> DataError {
        let column = format!("{} ({})", c + 1, self.names[c]);
        match &self.lines {
            Some(l) => DataError::At { path: self.path.clone(), line: l[r], column, msg: msg.into() },
            None => DataError::file(&self.path, format!("row {}, column {column}: {}", r + 1, msg.into())),
        }
    }
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name).or_else(|| self.names.iter().position(|n| n.eq_ignore_ascii_case(name)))
    }
    /// The column called `name`, or an error that lists the columns there are.
    pub fn require(&self, name: &str, key: &str) -> Result<usize, DataError> {
        self.position(name).ok_or_else(|| DataError::file(&self.path, format!("column '{name}' (from {key}) is not in the file; its columns are {:?}", self.names)))
    }
}

/// Which reader a file needs, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Csv,
    Parquet,
    Arrow,
}

pub fn file_kind(path: &Path) -> FileKind {
    let name = path.file_name().map(|s| s.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if name.ends_with(".parquet") || name.ends_with(".pq") {
        FileKind::Parquet
    } else if name.ends_with(".arrow") || name.ends_with(".feather") || name.ends_with(".ipc") {
        FileKind::Arrow
    } else {
        FileKind::Csv
    }
}

/// Read any supported table file.
pub fn read_raw(path: &Path) -> Result<RawTable, DataError> {
    if !path.exists() {
        return Err(DataError::not_found(path));
    }
    match file_kind(path) {
        FileKind::Csv => parse_csv(path, &read_bytes(path)?),
        FileKind::Parquet => read_parquet(path),
        FileKind::Arrow => read_arrow(path),
    }
}

/// The delimiter of a text table: the one of `, ; \t |` that the header line holds most often.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    [b',', b';', b'\t', b'|'].into_iter().max_by_key(|d| (header.iter().filter(|&b| b == d).count(), *d == b',')).unwrap_or(b',')
}

/// Parse a text table: a header line, then rows; a column whose every present cell is a number
/// is numeric, any other is text.
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<RawTable, DataError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).delimiter(sniff_delimiter(bytes)).from_reader(bytes);
    let names: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| DataError::file(path, format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| crate::table::decode_header(h).trim_matches('"').to_string())
        .collect();
    if names.is_empty() || names.iter().all(|h| h.is_empty()) {
        return Err(DataError::file(path, "the file is empty (no header line)"));
    }
    let width = names.len();
    let mut text: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
    let mut lines = Vec::new();
    crate::table::for_each_record(path, bytes, &mut rdr, width, |line, record| {
        for (c, cell) in record.iter().enumerate() {
            let s = String::from_utf8_lossy(cell);
            let s = s.trim();
            text[c].push((!is_missing(s)).then(|| s.to_string()));
        }
        lines.push(line);
        Ok(())
    })?;
    if lines.is_empty() {
        return Err(DataError::file(path, "the file has a header but no data rows"));
    }
    let cells = text
        .into_iter()
        .map(|col| {
            let nums: Option<Vec<f64>> = col.iter().map(|c| c.as_deref().map_or(Some(f64::NAN), |s| s.parse::<f64>().ok())).collect();
            match nums {
                Some(v) => Cells::Num(v),
                None => Cells::Text(col),
            }
        })
        .collect();
    Ok(RawTable { path: path.to_path_buf(), names, cells, rows: lines.len(), lines: Some(lines) })
}

/// Parse a table held in memory (a request body); `name` stands for the file in messages.
pub fn parse_bytes(name: &Path, bytes: &[u8], kind: FileKind) -> Result<RawTable, DataError> {
    match kind {
        FileKind::Csv => parse_csv(name, bytes),
        FileKind::Parquet => parquet_from(name, bytes::Bytes::copy_from_slice(bytes)),
        FileKind::Arrow => arrow_from(name, std::io::Cursor::new(bytes)),
    }
}

fn read_parquet(path: &Path) -> Result<RawTable, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    parquet_from(path, file)
}

/// Run a third-party decoder that may panic on a corrupt file (the arrow and parquet crates
/// do on some: docs/reliability.md) and turn a panic into an error naming the file.
fn guarded(path: &Path, what: &str, decode: impl FnOnce() -> Result<RawTable, DataError>) -> Result<RawTable, DataError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|p| {
        let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        Err(DataError::file(path, format!("not a readable {what} file: its decoder failed ({why}); the file is corrupt or truncated")))
    })
}

fn parquet_from<R: parquet::file::reader::ChunkReader + 'static>(path: &Path, file: R) -> Result<RawTable, DataError> {
    guarded(path, "Parquet", || parquet_unguarded(path, file))
}

fn parquet_unguarded<R: parquet::file::reader::ChunkReader + 'static>(path: &Path, file: R) -> Result<RawTable, DataError> {
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| DataError::file(path, format!("not a readable Parquet file: {e}")))?;
    let reader = builder.build().map_err(|e| DataError::file(path, format!("cannot read the Parquet file: {e}")))?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| DataError::file(path, format!("cannot read the Parquet file: {e}")))?;
    from_batches(path, batches, None)
}

fn read_arrow(path: &Path) -> Result<RawTable, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    arrow_from(path, std::io::BufReader::new(file))
}

fn arrow_from<R: std::io::Read + std::io::Seek>(path: &Path, file: R) -> Result<RawTable, DataError> {
    guarded(path, "Arrow IPC", || arrow_unguarded(path, file))
}

/// The blocks an Arrow IPC file's footer lists must lie inside the file: the reader allocates
/// each block's claimed length before reading it (a 3 KB file claiming 256 MB allocates 256 MB).
fn check_arrow_blocks<R: std::io::Read + std::io::Seek>(path: &Path, file: &mut R) -> Result<(), DataError> {
    use std::io::SeekFrom;
    let bad = |msg: String| DataError::file(path, format!("not a readable Arrow IPC file: {msg}"));
    let io = |e: std::io::Error| DataError::io(path, e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len < 10 {
        return Err(bad(format!("{len} bytes is too short for an Arrow file")));
    }
    let mut tail = [0u8; 10];
    file.seek(SeekFrom::End(-10)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    let footer_len = arrow_ipc::reader::read_footer_length(tail).map_err(|e| bad(e.to_string()))? as u64;
    if footer_len + 10 > len {
        return Err(bad(format!("its footer claims {footer_len} bytes of a {len}-byte file")));
    }
    let mut footer = vec![0u8; footer_len as usize];
    file.seek(SeekFrom::End(-10 - footer_len as i64)).map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    let footer = arrow_ipc::root_as_footer(&footer).map_err(|e| bad(format!("its footer: {e}")))?;
    for block in footer.recordBatches().into_iter().chain(footer.dictionaries()).flatten() {
        let end = (block.offset() as i128) + block.metaDataLength() as i128 + block.bodyLength() as i128;
        if block.offset() < 0 || block.metaDataLength() < 0 || block.bodyLength() < 0 || end > len as i128 {
            return Err(bad(format!("a block claims bytes {}..{end} of a {len}-byte file", block.offset())));
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(())
}

fn arrow_unguarded<R: std::io::Read + std::io::Seek>(path: &Path, mut file: R) -> Result<RawTable, DataError> {
    check_arrow_blocks(path, &mut file)?;
    let reader = arrow_ipc::reader::FileReader::try_new(file, None)
        .map_err(|e| DataError::file(path, format!("not a readable Arrow IPC (Feather v2) file: {e}")))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| DataError::file(path, format!("cannot read the Arrow file: {e}")))?;
    from_batches(path, batches, Some(schema))
}

/// Arrow record batches -> typed columns.
fn from_batches(path: &Path, batches: Vec<RecordBatch>, schema: Option<arrow_schema::SchemaRef>) -> Result<RawTable, DataError> {
    let schema = match (schema, batches.first()) {
        (Some(s), _) => s,
        (None, Some(b)) => b.schema(),
        (None, None) => return Err(DataError::file(path, "the file has no rows")),
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Err(DataError::file(path, "the file has no rows"));
    }
    let mut names = Vec::new();
    let mut cells = Vec::new();
    for (c, field) in schema.fields().iter().enumerate() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
        let col = arrow_column(path, field.name(), field.data_type(), &parts)?;
        names.push(field.name().clone());
        cells.push(col);
    }
    Ok(RawTable { path: path.to_path_buf(), names, cells, rows, lines: None })
}

fn arrow_column(path: &Path, name: &str, dtype: &DataType, parts: &[&dyn Array]) -> Result<Cells, DataError> {
    let cast = |to: &DataType, a: &dyn Array| {
        arrow_cast::cast(a, to).map_err(|e| DataError::file(path, format!("column '{name}': cannot read {dtype} values: {e}")))
    };
    match dtype {
        d if d.is_numeric() || matches!(d, DataType::Boolean) => {
            let mut out = Vec::new();
            for a in parts {
                let f = cast(&DataType::Float64, *a)?;
                let f = f.as_any().downcast_ref::<arrow_array::Float64Array>().expect("cast to Float64");
                out.extend((0..f.len()).map(|i| if f.is_null(i) { f64::NAN } else { f.value(i) }));
            }
            Ok(Cells::Num(out))
        }
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let mut out = Vec::new();
            for a in parts {
                let t = cast(&DataType::Timestamp(TimeUnit::Microsecond, None), *a)?;
                let t = t.as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().expect("cast to timestamps");
                out.extend((0..t.len()).map(|i| if t.is_null(i) { None } else { chrono::DateTime::from_timestamp_micros(t.value(i)).map(|d| d.naive_utc()) }));
            }
            Ok(Cells::Time(out))
        }
        _ => {
            let mut out = Vec::new();
            for a in parts {
                let s = cast(&DataType::Utf8, *a)?;
                let s = s.as_any().downcast_ref::<arrow_array::StringArray>().expect("cast to Utf8");
                out.extend((0..s.len()).map(|i| (!s.is_null(i)).then(|| s.value(i).to_string())));
            }
            Ok(Cells::Text(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_are_typed() {
        let t = parse_csv(Path::new("m.csv"), b"No,wd,PM2.5\n1,NNW,3\n2,,NA\n3,E,4.5\n").unwrap();
        assert_eq!(t.names, ["No", "wd", "PM2.5"]);
        assert_eq!(t.cells[0], Cells::Num(vec![1.0, 2.0, 3.0]));
        assert_eq!(t.cells[1], Cells::Text(vec![Some("NNW".into()), None, Some("E".into())]));
        match &t.cells[2] {
            Cells::Num(v) => assert!(v[0] == 3.0 && v[1].is_nan() && v[2] == 4.5),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.lines.as_deref(), Some(&[2, 3, 4][..]));
    }

    #[test]
    fn semicolon_and_tab_delimiters_are_sniffed() {
        let t = parse_csv(Path::new("m.csv"), b"a;b\n1;2\n").unwrap();
        assert_eq!(t.names, ["a", "b"]);
        let t = parse_csv(Path::new("m.tsv"), b"a\tb\tc\n1\t2\t3\n").unwrap();
        assert_eq!(t.cells.len(), 3);
    }
}
