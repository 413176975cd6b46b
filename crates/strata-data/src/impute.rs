//! Missing values: detection and filling, reported per column.

use crate::DataError;
use crate::table::Table;

/// How to fill missing cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impute {
    /// Refuse data with missing cells (the error says where they are).
    None,
    /// Carry the last seen value forward (leading gaps take the first value).
    Ffill,
    /// Linear interpolation between the neighbouring values (edges take the nearest value).
    Linear,
    /// The column mean over the training rows.
    Mean,
}

/// How many cells were filled, per column.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImputeReport {
    pub method: Option<Impute>,
    pub filled: Vec<(String, usize)>,
    pub total: usize,
}

/// Fill the NaN cells of `table` in place. `train_rows` bounds the rows the mean is taken over.
pub fn impute(table: &mut Table, method: Impute, train_rows: usize) -> Result<ImputeReport, DataError> {
    let (rows, cols) = (table.rows, table.cols());
    let mut report = ImputeReport { method: Some(method), ..Default::default() };
    for c in 0..cols {
        let col: Vec<f32> = (0..rows).map(|r| table.values[r * cols + c]).collect();
        let missing = col.iter().filter(|v| v.is_nan()).count();
        if missing == 0 {
            continue;
        }
        if missing == rows {
            return Err(DataError::file(&table.path, format!("column '{}' has no values at all", table.columns[c])));
        }
        let filled = match method {
            Impute::None => {
                let first = col.iter().position(|v| v.is_nan()).unwrap();
                return Err(DataError::file(
                    &table.path,
                    format!(
                        "column '{}' has {missing} missing values (first at data row {}); set data.impute to ffill, linear or mean",
                        table.columns[c],
                        first + 1
                    ),
                ));
            }
            Impute::Ffill => ffill(&col),
            Impute::Linear => linear(&col),
            Impute::Mean => {
                let train: Vec<f32> = col[..train_rows.min(rows)].iter().copied().filter(|v| !v.is_nan()).collect();
                let mean = if train.is_empty() {
                    col.iter().filter(|v| !v.is_nan()).sum::<f32>() / (rows - missing) as f32
                } else {
                    train.iter().sum::<f32>() / train.len() as f32
                };
                col.iter().map(|&v| if v.is_nan() { mean } else { v }).collect()
            }
        };
        for (r, v) in filled.into_iter().enumerate() {
            table.values[r * cols + c] = v;
        }
        report.filled.push((table.columns[c].clone(), missing));
        report.total += missing;
    }
    Ok(report)
}

fn ffill(col: &[f32]) -> Vec<f32> {
    let first = col.iter().copied().find(|v| !v.is_nan()).unwrap_or(0.0);
    let mut last = first;
    col.iter()
        .map(|&v| {
            if !v.is_nan() {
                last = v;
            }
            last
        })
        .collect()
}

fn linear(col: &[f32]) -> Vec<f32> {
    let known: Vec<usize> = (0..col.len()).filter(|&i| !col[i].is_nan()).collect();
    let mut out = col.to_vec();
    for (i, v) in out.iter_mut().enumerate() {
        if !v.is_nan() {
            continue;
        }
        let right = known.partition_point(|&k| k < i);
        *v = match (right.checked_sub(1).map(|l| known[l]), known.get(right)) {
            (Some(a), Some(&b)) => col[a] + (col[b] - col[a]) * (i - a) as f32 / (b - a) as f32,
            (Some(a), None) => col[a],
            (None, Some(&b)) => col[b],
            (None, None) => unreachable!("column has at least one value"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(values: Vec<f32>) -> Table {
        Table {
            path: "t.csv".into(),
            columns: vec!["a".into()],
            dates: None,
            rows: values.len(),
            values,
            quality: Default::default(),
        }
    }

    const N: f32 = f32::NAN;

    #[test]
    fn linear_interpolates_and_holds_edges() {
        let mut t = table(vec![N, 1.0, N, N, 4.0, N]);
        let r = impute(&mut t, Impute::Linear, 6).unwrap();
        assert_eq!(t.values, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
        assert_eq!(r.total, 4);
    }

    #[test]
    fn ffill_carries_forward() {
        let mut t = table(vec![N, 1.0, N, 3.0, N]);
        impute(&mut t, Impute::Ffill, 5).unwrap();
        assert_eq!(t.values, [1.0, 1.0, 1.0, 3.0, 3.0]);
    }

    #[test]
    fn mean_uses_train_rows_only() {
        let mut t = table(vec![1.0, 3.0, N, 100.0]);
        impute(&mut t, Impute::Mean, 3).unwrap();
        assert_eq!(t.values[2], 2.0);
    }

    #[test]
    fn none_refuses_and_says_where() {
        let mut t = table(vec![1.0, N, 2.0]);
        let e = impute(&mut t, Impute::None, 3).unwrap_err().to_string();
        assert_eq!(e, "t.csv: column 'a' has 1 missing values (first at data row 2); set data.impute to ffill, linear or mean");
    }
}
