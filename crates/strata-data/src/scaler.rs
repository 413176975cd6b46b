//! Per-variable standardisation fitted on the training rows only (sklearn's StandardScaler:
//! population standard deviation; a constant column keeps scale 1).

/// Mean and standard deviation of each variable.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StandardScaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl StandardScaler {
    /// Fit on rows `[0, rows)` of a row-major `[_, cols]` buffer, accumulating in f64.
    pub fn fit(values: &[f32], cols: usize, rows: usize) -> Self {
        let mut sum = vec![0f64; cols];
        let mut sq = vec![0f64; cols];
        for row in values[..rows * cols].chunks_exact(cols) {
            for c in 0..cols {
                let v = row[c] as f64;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
        let n = rows as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = (0..cols)
            .map(|c| {
                let var = (sq[c] / n - mean[c] * mean[c]).max(0.0);
                let s = var.sqrt();
                if s < 1e-12 { 1.0 } else { s as f32 }
            })
            .collect();
        StandardScaler { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    pub fn transform(&self, values: &mut [f32]) {
        let cols = self.mean.len();
        for row in values.chunks_exact_mut(cols) {
            for c in 0..cols {
                row[c] = (row[c] - self.mean[c]) / self.std[c];
            }
        }
    }

    /// Undo [`Self::transform`] on a row-major `[_, cols]` buffer whose columns are `cols_idx`.
    pub fn inverse_columns(&self, values: &mut [f32], cols_idx: &[usize]) {
        for row in values.chunks_exact_mut(cols_idx.len()) {
            for (j, &c) in cols_idx.iter().enumerate() {
                row[j] = row[j] * self.std[c] + self.mean[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_population_std() {
        // column 0: 1,2,3 -> mean 2, std sqrt(2/3); column 1 constant -> std 1.
        let v = [1.0, 5.0, 2.0, 5.0, 3.0, 5.0, 100.0, 100.0];
        let s = StandardScaler::fit(&v, 2, 3);
        assert_eq!(s.mean, [2.0, 5.0]);
        assert!((s.std[0] - (2.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(s.std[1], 1.0);
        let mut w = v.to_vec();
        s.transform(&mut w);
        assert!((w[0] + 1.224_744_9).abs() < 1e-5);
        let mut back = w[..2].to_vec();
        s.inverse_columns(&mut back, &[0, 1]);
        assert!((back[0] - 1.0).abs() < 1e-6 && (back[1] - 5.0).abs() < 1e-6);
    }
}
