//! Coreset baselines: real training windows, chosen rather than learned.
//!
//! * `random`: random windows x random locations (both dimensions, `temporal` and `spatial`).
//! * `kcenter`: greedy farthest-first traversal over windows (Sener & Savarese): each new
//!   window is the one farthest from every window chosen so far.
//! * `herding`: Welling's herding over windows: each new window brings the mean of the chosen
//!   set closest to the mean of all training windows.
//!
//! k-center and herding compress time only: they keep `temporal x spatial` of the windows at
//! every location. A window's feature is its whole normalised series (inputs and targets, every
//! location), Euclidean.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::stdata::StData;
use crate::config::DistillConfig;
use crate::shared::{Distilled, random_starts};

/// The coreset of `cfg.method` (`random`, `kcenter` or `herding`).
pub fn select(real: &StData, cfg: &DistillConfig) -> Distilled {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n = real.nodes;
    let all: Vec<usize> = (0..n).collect();
    match cfg.method.as_str() {
        "random" => {
            let m = ((cfg.temporal * real.splits[0].len() as f64).round() as usize).max(1);
            let starts = random_starts(real, m, &mut rng);
            let k = ((cfg.spatial * n as f64).round() as usize).clamp(1, n);
            let mut nodes = all;
            nodes.shuffle(&mut rng);
            nodes.truncate(k);
            nodes.sort();
            Distilled::of_windows("random", real, &starts, &nodes)
        }
        method => {
            let m = cfg.time_only_windows(real.splits[0].len()).min(real.splits[0].len());
            let feats = window_features(real);
            let picked = match method {
                "kcenter" => kcenter(&feats, m, rng.random_range(0..real.splits[0].len())),
                _ => herding(&feats, m),
            };
            let starts: Vec<usize> = picked.iter().map(|&i| real.splits[0][i]).collect();
            Distilled::of_windows(method, real, &starts, &all)
        }
    }
}

/// Each training window's normalised target feature over its `l + h` rows at every location.
fn window_features(real: &StData) -> Vec<Vec<f32>> {
    let (n, f, len) = (real.nodes, real.f, real.l + real.h);
    real.splits[0].par_iter().map(|&s| (s..s + len).flat_map(|r| (0..n).map(move |i| real.x[(r * n + i) * f])).collect()).collect()
}

fn dist2(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum()
}

/// Greedy k-center: start at `first`, then repeatedly the point farthest from the chosen ones.
pub fn kcenter(points: &[Vec<f32>], m: usize, first: usize) -> Vec<usize> {
    let mut picked = vec![first];
    let mut nearest: Vec<f64> = points.par_iter().map(|p| dist2(p, &points[first])).collect();
    while picked.len() < m.min(points.len()) {
        let next = (0..points.len()).max_by(|&a, &b| nearest[a].total_cmp(&nearest[b]).then(b.cmp(&a))).expect("points");
        picked.push(next);
        let d: Vec<f64> = points.par_iter().map(|p| dist2(p, &points[next])).collect();
        nearest.iter_mut().zip(d).for_each(|(a, b)| *a = a.min(b));
    }
    picked
}

/// Herding: repeatedly the unchosen point that brings the chosen set's mean closest to the
/// mean of all points.
pub fn herding(points: &[Vec<f32>], m: usize) -> Vec<usize> {
    let d = points.first().map_or(0, Vec::len);
    let mut mean = vec![0f64; d];
    for p in points {
        mean.iter_mut().zip(p).for_each(|(a, &v)| *a += v as f64 / points.len() as f64);
    }
    let mut sum = vec![0f64; d];
    let mut picked: Vec<usize> = Vec::new();
    let mut used = vec![false; points.len()];
    while picked.len() < m.min(points.len()) {
        let c = (picked.len() + 1) as f64;
        let cost = |p: &Vec<f32>| -> f64 { mean.iter().zip(&sum).zip(p).map(|((mu, s), &v)| (mu - (s + v as f64) / c).powi(2)).sum() };
        let costs: Vec<f64> = points.par_iter().map(cost).collect();
        let next = (0..points.len()).filter(|&i| !used[i]).min_by(|&a, &b| costs[a].total_cmp(&costs[b]).then(a.cmp(&b))).expect("points");
        used[next] = true;
        picked.push(next);
        sum.iter_mut().zip(&points[next]).for_each(|(a, &v)| *a += v as f64);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(f32, f32)]) -> Vec<Vec<f32>> {
        v.iter().map(|&(a, b)| vec![a, b]).collect()
    }

    /// By hand: from (0,0) the farthest is (10,0) (squared 100); then the nearest-centre
    /// distances are 1, 89, 2 for (1,0), (5,8), (9,1): (5,8) is next.
    #[test]
    fn kcenter_by_hand() {
        let p = pts(&[(0.0, 0.0), (1.0, 0.0), (10.0, 0.0), (5.0, 8.0), (9.0, 1.0)]);
        assert_eq!(kcenter(&p, 3, 0), vec![0, 2, 3]);
        assert_eq!(kcenter(&p, 1, 4), vec![4]);
    }

    /// By hand: the mean of 1, 2, 6, 7 is 4; the closest single point is 2 (|2-4| = 2, tie with
    /// 6 broken by index); then (2 + x)/2 closest to 4: x = 6 (mean 4 exactly).
    #[test]
    fn herding_by_hand() {
        let p: Vec<Vec<f32>> = [1.0, 2.0, 6.0, 7.0].iter().map(|&v| vec![v]).collect();
        assert_eq!(herding(&p, 2), vec![1, 2]);
        // Never picks a point twice.
        let h = herding(&p, 4);
        let mut s = h.clone();
        s.sort();
        assert_eq!(s, vec![0, 1, 2, 3]);
    }
}
