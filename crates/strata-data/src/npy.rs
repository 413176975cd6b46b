//! NumPy `.npy` and `.npz` arrays (float32/float64/integer, C order) as f32, via `npyz`.

use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, TypeChar};

use crate::DataError;

/// Read a `.npy` file: its shape and values.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode(path, "", &bytes[..])
}

/// Read array `key` of a `.npz` archive (PEMS0x ship their signal as key `data`).
pub fn read_npz(path: &Path, key: &str) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut npz = npyz::npz::NpzArchive::new(std::io::BufReader::new(file)).map_err(|e| DataError::file(path, format!("not an .npz archive: {e}")))?;
    let names: Vec<String> = npz.array_names().map(String::from).collect();
    let arr = npz
        .by_name(key)
        .map_err(|e| DataError::file(path, format!("key `{key}`: {e}")))?
        .ok_or_else(|| DataError::file(path, format!("key `{key}`: not in the archive (it holds {names:?})")))?;
    convert(path, key, arr)
}

fn decode<R: Read>(path: &Path, key: &str, r: R) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let arr = NpyFile::new(r).map_err(|e| DataError::file(path, format!("not a .npy array: {e}")))?;
    convert(path, key, arr)
}

fn convert<R: Read>(path: &Path, key: &str, arr: NpyFile<R>) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let at = if key.is_empty() { String::new() } else { format!("key `{key}`: ") };
    if arr.order() == npyz::Order::Fortran {
        return Err(DataError::file(path, format!("{at}Fortran-ordered arrays are not supported")));
    }
    let shape: Vec<usize> = arr.shape().iter().map(|&d| d as usize).collect();
    let bad = |e: std::io::Error| DataError::file(path, format!("{at}{e}"));
    let values: Vec<f32> = match arr.dtype() {
        DType::Plain(t) => match (t.type_char(), t.size_field()) {
            (TypeChar::Float, 4) => arr.into_vec::<f32>().map_err(bad)?,
            (TypeChar::Float, 8) => arr.into_vec::<f64>().map_err(bad)?.into_iter().map(|v| v as f32).collect(),
            (TypeChar::Int, 8) => arr.into_vec::<i64>().map_err(bad)?.into_iter().map(|v| v as f32).collect(),
            (TypeChar::Int, 4) => arr.into_vec::<i32>().map_err(bad)?.into_iter().map(|v| v as f32).collect(),
            (c, s) => return Err(DataError::file(path, format!("{at}dtype {c:?}{s} is not supported (float32/float64/int32/int64 are)"))),
        },
        other => return Err(DataError::file(path, format!("{at}dtype {other:?} is not supported"))),
    };
    Ok((shape, values))
}
