//! A synthetic spatio-temporal dataset, deterministic by seed, for testing scale (up to tens of
//! thousands of locations) where no real set of that size is at hand. SYNTHETIC: never report
//! numbers on it as results on real data.
//!
//! * Locations: uniform in the unit square; each is linked to its `neighbours` nearest ones
//!   (both directions), the edge list carrying the distance.
//! * Signal (a traffic-speed-like value per location and step): a base level, minus a daily
//!   profile (morning and evening peaks, each location with its own amplitude and a shift of up
//!   to +-30 min; weekends at 30%), plus a disturbance that diffuses over the graph
//!   (`z_t = rho P z_{t-1} + incidents + noise`, `P` the row-normalised Gaussian-kernel
//!   adjacency), plus observation noise; clipped at 0.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::DataError;

/// Generator settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    pub nodes: usize,
    pub days: usize,
    pub steps_per_day: usize,
    /// Nearest neighbours each location links to.
    pub neighbours: usize,
    /// Day of week of the first step (Monday = 0).
    pub start_weekday: usize,
    /// Persistence of the diffusing disturbance per step.
    pub rho: f32,
    /// Chance per location and step that an incident starts.
    pub incident_rate: f32,
    /// Observation noise standard deviation.
    pub noise: f32,
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig { nodes: 1000, days: 7, steps_per_day: 288, neighbours: 8, start_weekday: 0, rho: 0.9, incident_rate: 0.002, noise: 1.0, seed: 2021 }
    }
}

/// The generated data.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub config: SyntheticConfig,
    /// Row-major `[steps, nodes]`.
    pub signal: Vec<f32>,
    pub steps: usize,
    /// Undirected edges `(i, j, distance)` with `i < j`.
    pub edges: Vec<(usize, usize, f32)>,
}

/// The `k` nearest other points of every point, by a uniform grid search (exact).
pub fn nearest(points: &[(f32, f32)], k: usize) -> Vec<Vec<(usize, f32)>> {
    let n = points.len();
    let k = k.min(n.saturating_sub(1));
    let g = ((n as f64 / 2.0).sqrt().ceil() as usize).max(1);
    let cell = |v: f32| ((v * g as f32) as usize).min(g - 1);
    let mut buckets = vec![Vec::new(); g * g];
    for (i, &(x, y)) in points.iter().enumerate() {
        buckets[cell(y) * g + cell(x)].push(i);
    }
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            let (cx, cy) = (cell(x) as i64, cell(y) as i64);
            let mut found: Vec<(usize, f32)> = Vec::new();
            let mut r = 0i64;
            loop {
                // Cells on the ring at Chebyshev distance r.
                for gy in cy - r..=cy + r {
                    for gx in cx - r..=cx + r {
                        if (gy - cy).abs() != r && (gx - cx).abs() != r || gx < 0 || gy < 0 || gx >= g as i64 || gy >= g as i64 {
                            continue;
                        }
                        for &j in &buckets[gy as usize * g + gx as usize] {
                            if j != i {
                                let (dx, dy) = (points[j].0 - x, points[j].1 - y);
                                found.push((j, (dx * dx + dy * dy).sqrt()));
                            }
                        }
                    }
                }
                found.sort_by(|a, b| a.1.total_cmp(&b.1));
                // Everything within r cells of the point's cell is searched: a kth distance at most
                // r / g is final.
                if found.len() >= k && (k == 0 || found[k - 1].1 <= r as f32 / g as f32) || r as usize > g {
                    found.truncate(k);
                    break found;
                }
                r += 1;
            }
        })
        .collect()
}

/// Edge weights `exp(-(d / sigma)^2)`, sigma the mean edge distance (all in (0, 1]).
pub fn kernel(edges: &[(usize, usize, f32)]) -> Vec<f32> {
    let sigma = (edges.iter().map(|e| e.2 as f64).sum::<f64>() / edges.len().max(1) as f64).max(1e-6) as f32;
    edges.iter().map(|e| (-(e.2 / sigma).powi(2)).exp()).collect()
}

/// Generate the dataset of `cfg`.
pub fn generate(cfg: &SyntheticConfig) -> Synthetic {
    let (n, spd) = (cfg.nodes, cfg.steps_per_day.max(1));
    let steps = cfg.days * spd;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let points: Vec<(f32, f32)> = (0..n).map(|_| (rng.random::<f32>(), rng.random::<f32>())).collect();
    let knn = nearest(&points, cfg.neighbours);
    let mut edges: Vec<(usize, usize, f32)> = knn.iter().enumerate().flat_map(|(i, nb)| nb.iter().map(move |&(j, d)| (i.min(j), i.max(j), d))).collect();
    edges.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    edges.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    // Row-normalised Gaussian kernel over the undirected edges.
    let mut rows: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    for (&(i, j, _), w) in edges.iter().zip(kernel(&edges)) {
        rows[i].push((j, w));
        rows[j].push((i, w));
    }
    for r in rows.iter_mut() {
        let s: f32 = r.iter().map(|e| e.1).sum();
        r.iter_mut().for_each(|e| e.1 /= s.max(1e-12));
    }
    let base: Vec<f32> = (0..n).map(|_| rng.random_range(45.0..70.0)).collect();
    let amp: Vec<f32> = (0..n).map(|_| rng.random_range(5.0..25.0)).collect();
    let shift: Vec<f32> = (0..n).map(|_| rng.random_range(-0.5..0.5)).collect();
    let noise = Normal::new(0.0f32, cfg.noise.max(0.0)).expect("finite noise");
    let shock = Normal::new(-12.0f32, 4.0).expect("valid");
    let mut z = vec![0f32; n];
    let mut next = vec![0f32; n];
    let mut signal = Vec::with_capacity(steps * n);
    for t in 0..steps {
        let day = t / spd;
        let hour = (t % spd) as f32 * 24.0 / spd as f32;
        let weekend = matches!((day + cfg.start_weekday) % 7, 5 | 6);
        let week = if weekend { 0.3 } else { 1.0 };
        for i in 0..n {
            let diffused: f32 = rows[i].iter().map(|&(j, w)| w * z[j]).sum();
            let incident = if rng.random::<f32>() < cfg.incident_rate { shock.sample(&mut rng) } else { 0.0 };
            next[i] = cfg.rho * (0.5 * z[i] + 0.5 * diffused) + incident;
        }
        std::mem::swap(&mut z, &mut next);
        for i in 0..n {
            let h = hour - shift[i];
            let daily = (-((h - 8.0) / 1.2).powi(2)).exp() + 0.8 * (-((h - 17.5) / 1.5).powi(2)).exp();
            signal.push((base[i] - amp[i] * daily * week + z[i] + noise.sample(&mut rng)).max(0.0));
        }
    }
    Synthetic { config: cfg.clone(), signal, steps, edges }
}

impl Synthetic {
    /// Write `signal.npy` (`[steps, nodes]` float32), `graph.csv` (`from,to,weight`: the
    /// kernel weight, each edge once: read it with `data.graph_weights = "raw"` and
    /// `data.graph_symmetric = true`) and `synthetic.json` (the settings and a SYNTHETIC
    /// notice) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let put = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).map_err(|e| DataError::io(&dir.join(name), e));
        put("signal.npy", &crate::npy::encode_f32(&[self.steps, self.config.nodes], &self.signal))?;
        let mut csv = String::from("from,to,weight\n");
        for (&(i, j, _), w) in self.edges.iter().zip(kernel(&self.edges)) {
            csv.push_str(&format!("{i},{j},{w}\n"));
        }
        put("graph.csv", csv.as_bytes())?;
        let about = serde_json::json!({
            "synthetic": true,
            "notice": "SYNTHETIC data from strata's generator (strata synth): for scale tests only, never to be reported as results on real data",
            "config": self.config,
            "steps": self.steps,
            "edges": self.edges.len(),
        });
        put("synthetic.json", serde_json::to_string_pretty(&about).expect("json").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_neighbours_match_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pts: Vec<(f32, f32)> = (0..500).map(|_| (rng.random(), rng.random())).collect();
        let fast = nearest(&pts, 6);
        for (i, p) in pts.iter().enumerate() {
            let mut all: Vec<(usize, f32)> = pts.iter().enumerate().filter(|(j, _)| *j != i).map(|(j, q)| (j, ((q.0 - p.0).powi(2) + (q.1 - p.1).powi(2)).sqrt())).collect();
            all.sort_by(|a, b| a.1.total_cmp(&b.1));
            let want: Vec<f32> = all[..6].iter().map(|e| e.1).collect();
            let got: Vec<f32> = fast[i].iter().map(|e| e.1).collect();
            assert_eq!(got, want, "point {i}");
        }
    }

    #[test]
    fn written_files_train_as_a_spatial_dataset() {
        let dir = std::env::temp_dir().join(format!("strata-synth-{}", std::process::id()));
        let data = generate(&SyntheticConfig { nodes: 120, days: 3, steps_per_day: 48, ..Default::default() });
        data.write(&dir).unwrap();
        let cfg = crate::DataConfig {
            dataset: "spatial".into(),
            path: Some(dir.join("signal.npy")),
            graph: Some(dir.join("graph.csv")),
            graph_symmetric: true,
            graph_weights: crate::graph::EdgeWeights::Raw,
            steps_per_day: Some(48),
            seq_len: 12,
            pred_len: 12,
            ..Default::default()
        };
        let d = crate::prepare_spatial(&cfg).unwrap();
        assert_eq!((d.nodes, d.rows, d.in_features), (120, 144, 3));
        let g = d.graph.unwrap();
        for i in 0..120 {
            assert!((0..120).any(|j| g.adj[i * 120 + j] > 0.0), "node {i} has no edge");
            for j in 0..120 {
                assert_eq!(g.adj[i * 120 + j], g.adj[j * 120 + i]);
            }
        }
        let about: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("synthetic.json")).unwrap()).unwrap();
        assert_eq!(about["synthetic"], true);
    }

    #[test]
    fn deterministic_by_seed_with_daily_weekly_and_spatial_structure() {
        let cfg = SyntheticConfig { nodes: 300, days: 7, steps_per_day: 96, ..Default::default() };
        let a = generate(&cfg);
        assert_eq!(a.signal, generate(&cfg).signal);
        assert_ne!(a.signal, generate(&SyntheticConfig { seed: 7, ..cfg.clone() }).signal);
        assert_eq!(a.signal.len(), 7 * 96 * 300);
        assert!(a.signal.iter().all(|v| v.is_finite() && *v >= 0.0));
        let n = 300;
        let mean_at = |day: usize, step: usize| (0..n).map(|i| a.signal[(day * 96 + step) * n + i]).sum::<f32>() / n as f32;
        // Monday 08:00 (step 32) is slower than Monday 03:00 (step 12) by about the mean amplitude;
        // Saturday's morning peak is much weaker.
        let weekday_dip = mean_at(0, 12) - mean_at(0, 32);
        let weekend_dip = mean_at(5, 12) - mean_at(5, 32);
        assert!(weekday_dip > 8.0, "{weekday_dip}");
        assert!(weekend_dip < 0.5 * weekday_dip, "{weekend_dip} vs {weekday_dip}");
        // The disturbance diffuses: neighbours' residuals (value minus the location's value a
        // day later at the same time, which removes the cycle) correlate more than random pairs.
        let resid = |i: usize, t: usize| a.signal[t * n + i] - a.signal[(t + 96) * n + i];
        let corr = |pairs: &[(usize, usize)]| {
            let (mut sxy, mut sxx, mut syy) = (0f64, 0f64, 0f64);
            for &(i, j) in pairs {
                // Monday..Wednesday against the next day: weekdays only, no weekly difference.
                for t in 0..96 * 3 {
                    let (x, y) = (resid(i, t) as f64, resid(j, t) as f64);
                    (sxy, sxx, syy) = (sxy + x * y, sxx + x * x, syy + y * y);
                }
            }
            sxy / (sxx * syy).sqrt()
        };
        let linked: Vec<(usize, usize)> = a.edges.iter().map(|e| (e.0, e.1)).take(400).collect();
        let random: Vec<(usize, usize)> = (0..400).map(|k| (k % n, (k * 97 + 13) % n)).filter(|(i, j)| i != j).collect();
        let (cl, cr) = (corr(&linked), corr(&random));
        assert!(cl > cr + 0.05, "linked {cl} vs random {cr}");
    }
}
