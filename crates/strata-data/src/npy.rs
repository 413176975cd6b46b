//! NumPy `.npy` and `.npz` arrays (float32/float64/integer, C order) as f32, via `npyz`.

use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, TypeChar};

use crate::DataError;

/// A little-endian float32 C-order `.npy` file of `shape`.
pub fn encode_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if shape.len() == 1 { format!("{},", dims[0]) } else { dims.join(", ") };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file written by hand from the format's specification (version 1.0).
    fn npy_bytes(descr: &str, shape: &[usize], payload: &[u8]) -> Vec<u8> {
        let dims = shape.iter().map(|d| format!("{d},")).collect::<String>();
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn npy_and_npz_signals() {
        let dir = std::env::temp_dir().join(format!("strata-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // [T=2, N=3, C=2] float64, as PEMS0x's `data`.
        let vals: Vec<f64> = (0..12).map(|v| v as f64 * 0.5).collect();
        let payload: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = npy_bytes("<f8", &[2, 3, 2], &payload);
        let p = dir.join("s.npy");
        std::fs::write(&p, &bytes).unwrap();
        let (shape, v) = read_npy(&p).unwrap();
        assert_eq!(shape, [2, 3, 2]);
        assert_eq!(v[11], 5.5);
        let z = dir.join("s.npz");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&z).unwrap());
        w.start_file("data.npy", zip::write::FileOptions::default()).unwrap();
        std::io::Write::write_all(&mut w, &bytes).unwrap();
        w.finish().unwrap();
        let s = crate::spatial::read_signal(&z, "data").unwrap();
        assert_eq!((s.t, s.n, s.c), (2, 3, 2));
        assert_eq!(s.values, vals.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let e = read_npz(&z, "x").unwrap_err().to_string();
        assert!(e.contains("key `x`: not in the archive") && e.contains("\"data\""), "{e}");
    }
}
