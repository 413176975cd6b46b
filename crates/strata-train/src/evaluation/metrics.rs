//! Point-forecast metrics accumulated over a whole split in f64 (never averaged per batch).

use serde::Serialize;

/// Running sums from which every metric is computed at the end.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    n: u64,
    sse: f64,
    sae: f64,
    sape: f64,
    n_ape: u64,
    sum_y: f64,
    sum_y2: f64,
}

/// Final metrics. MAPE skips targets with |y| < 1e-8 (undefined there); R2 is
/// `1 - SSE / sum (y - mean y)^2` over every target value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Metrics {
    pub mse: f64,
    pub mae: f64,
    pub rmse: f64,
    pub mape: f64,
    pub r2: f64,
    /// Number of target values the metrics cover.
    pub count: u64,
}

impl Accumulator {
    pub fn add(&mut self, pred: &[f32], truth: &[f32]) {
        assert_eq!(pred.len(), truth.len());
        for (&p, &y) in pred.iter().zip(truth) {
            let (p, y) = (p as f64, y as f64);
            let e = p - y;
            self.sse += e * e;
            self.sae += e.abs();
            if y.abs() >= 1e-8 {
                self.sape += (e / y).abs();
                self.n_ape += 1;
            }
            self.sum_y += y;
            self.sum_y2 += y * y;
        }
        self.n += pred.len() as u64;
    }

    /// The sums over every rank of a data-parallel run (each accumulated its share of the
    /// windows): afterwards every rank holds the whole split's sums.
    pub fn reduce(&mut self, world: &crate::engine::parallel::World) {
        if world.size() == 1 {
            return;
        }
        let mut v = [self.n as f64, self.sse, self.sae, self.sape, self.n_ape as f64, self.sum_y, self.sum_y2];
        world.sum_f64(&mut v);
        *self = Accumulator { n: v[0] as u64, sse: v[1], sae: v[2], sape: v[3], n_ape: v[4] as u64, sum_y: v[5], sum_y2: v[6] };
    }

    pub fn finish(&self) -> Metrics {
        let n = self.n.max(1) as f64;
        let mse = self.sse / n;
        let sst = self.sum_y2 - self.sum_y * self.sum_y / n;
        Metrics {
            mse,
            mae: self.sae / n,
            rmse: mse.sqrt(),
            mape: if self.n_ape > 0 { self.sape / self.n_ape as f64 } else { f64::NAN },
            r2: if sst > 0.0 { 1.0 - self.sse / sst } else { f64::NAN },
            count: self.n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        let mut a = Accumulator::default();
        // Two batches; totals: errors 1, -2, 0, 3 on targets 1, 2, 4, 3.
        a.add(&[2.0, 0.0], &[1.0, 2.0]);
        a.add(&[4.0, 6.0], &[4.0, 3.0]);
        let m = a.finish();
        assert_eq!(m.count, 4);
        assert!((m.mse - 14.0 / 4.0).abs() < 1e-12);
        assert!((m.mae - 6.0 / 4.0).abs() < 1e-12);
        assert!((m.rmse - 3.5f64.sqrt()).abs() < 1e-12);
        assert!((m.mape - (1.0 + 1.0 + 0.0 + 1.0) / 4.0).abs() < 1e-12);
        // mean y = 2.5, SST = 2.25 + 0.25 + 2.25 + 0.25 = 5; R2 = 1 - 14/5.
        assert!((m.r2 - (1.0 - 14.0 / 5.0)).abs() < 1e-12);
    }
}
