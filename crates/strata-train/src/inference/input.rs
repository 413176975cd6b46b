//! The tables forecasts are made from: a benchmark-layout file, a NumPy array, a file (or
//! folder) read with the run's saved reading settings, or a request body.

use std::path::Path;

use anyhow::{Result, bail};
use chrono::NaiveDateTime;
use strata_data::source::{Frame, ReadSpec, read_frame};

/// A table to forecast from: values row-major `[rows, width]`, with column names and
/// timestamps where the source has them.
#[derive(Debug, Clone)]
pub struct InputTable {
    /// Where it came from, for messages (a file path, `request`).
    pub source: String,
    pub columns: Option<Vec<String>>,
    pub dates: Option<Vec<NaiveDateTime>>,
    pub values: Vec<f32>,
    pub rows: usize,
    pub width: usize,
}

impl InputTable {
    /// Read a `.csv`, `.csv.gz` (a `date` column, then named variables) or `.npy` (`[rows,
    /// columns]` in the model's column order, no timestamps).
    pub fn read(path: &Path) -> Result<InputTable> {
        let source = path.display().to_string();
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".npy") {
            let (shape, values) = strata_data::npy::read_npy(path)?;
            let (rows, width) = match shape[..] {
                [r, w] => (r, w),
                [r] => (r, 1),
                _ => bail!("{source}: array of shape {shape:?}; expected [rows, columns]"),
            };
            return Ok(InputTable { source, columns: None, dates: None, values, rows, width });
        }
        let t = strata_data::table::read_table(path, None)?;
        Ok(InputTable { source, width: t.cols(), columns: Some(t.columns), dates: t.dates, values: t.values, rows: t.rows })
    }
}

impl InputTable {
    /// Read `path` with a run's reading settings (`schema.read`). A spatio-temporal model reads
    /// its nodes' target values: the columns are then the nodes.
    pub fn read_as(path: &Path, spec: &ReadSpec, spatial: bool) -> Result<InputTable> {
        Ok(InputTable::from_frame(path.display().to_string(), read_frame(path, spec)?, spatial))
    }

    /// A frame as a table (see [`InputTable::read_as`]; `spatial`: keep only the first feature,
    /// the target, of each node of a long table).
    pub fn from_frame(source: String, frame: Frame, spatial: bool) -> InputTable {
        let one_node = frame.nodes.len() == 1 && frame.nodes[0].is_empty();
        if spatial && !one_node && frame.features.len() > 1 {
            let c = frame.features.len();
            let values = frame.values.chunks(c).map(|cell| cell[0]).collect();
            let width = frame.nodes.len();
            return InputTable { source, columns: Some(frame.nodes), dates: frame.dates, values, rows: frame.rows, width };
        }
        let t = frame.into_table();
        InputTable { source, width: t.cols(), columns: Some(t.columns), dates: t.dates, values: t.values, rows: t.rows }
    }
}
