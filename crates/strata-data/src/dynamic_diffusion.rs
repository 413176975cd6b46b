//! A synthetic process whose diffusion follows a changing graph, for testing models that take a
//! graph per window. SYNTHETIC: never report numbers on it as results on real data.
//!
//! Time is cut into blocks of `block` steps; in each block every node `i` sends its value to one
//! node `pi(i)` (a random permutation, drawn per block, the graph of that block's steps with
//! weight 1 on `i -> pi(i)`). The signal follows `x_{t+1}[pi(i)] = rho x_t[i] + e`, `e` Gaussian
//! noise of std `noise`, from a standard normal `x_0`: a value travels along the current graph, so a model that knows each
//! window's graph can route it, while the time-averaged graph (nearly uniform) cannot.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::pygt::Edges;

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffusionConfig {
    pub nodes: usize,
    pub steps: usize,
    /// Steps per graph.
    pub block: usize,
    pub rho: f32,
    pub noise: f32,
    pub seed: u64,
}

impl Default for DiffusionConfig {
    fn default() -> Self {
        DiffusionConfig { nodes: 6, steps: 900, block: 30, rho: 0.95, noise: 1.0, seed: 7 }
    }
}

/// The signal `[steps, nodes]` and the graph of every step.
pub fn generate(cfg: &DiffusionConfig) -> (Vec<f32>, Vec<Edges>) {
    let n = cfg.nodes;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let normal = Normal::new(0.0f32, cfg.noise).expect("noise std is finite");
    let mut x = vec![0f32; cfg.steps * n];
    let start = Normal::new(0.0f32, 1.0).expect("unit normal");
    for v in &mut x[..n] {
        *v = start.sample(&mut rng);
    }
    let mut graphs = Vec::with_capacity(cfg.steps);
    let mut perm: Vec<usize> = (0..n).collect();
    for t in 0..cfg.steps {
        if t % cfg.block == 0 {
            perm.shuffle(&mut rng);
        }
        graphs.push((0..n).map(|i| (i, perm[i], 1.0)).collect());
        if t + 1 < cfg.steps {
            for i in 0..n {
                x[(t + 1) * n + perm[i]] = cfg.rho * x[t * n + i] + normal.sample(&mut rng);
            }
        }
    }
    (x, graphs)
}

/// The process as a PyTorch Geometric Temporal JSON in the England-COVID layout (`y`,
/// `edge_mapping`), the layout strata reads dynamic graphs from.
pub fn to_pygt_json(cfg: &DiffusionConfig) -> serde_json::Value {
    let (x, graphs) = generate(cfg);
    let y: Vec<&[f32]> = x.chunks(cfg.nodes).collect();
    let index: serde_json::Map<String, serde_json::Value> = graphs.iter().enumerate().map(|(t, e)| (t.to_string(), serde_json::json!(e.iter().map(|&(i, j, _)| [i, j]).collect::<Vec<_>>()))).collect();
    let weight: serde_json::Map<String, serde_json::Value> = graphs.iter().enumerate().map(|(t, e)| (t.to_string(), serde_json::json!(e.iter().map(|&(_, _, w)| w).collect::<Vec<_>>()))).collect();
    serde_json::json!({"time_periods": cfg.steps, "y": y, "edge_mapping": {"edge_index": index, "edge_weight": weight}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_travel_along_the_current_graph() {
        // Without noise, every value moves to the node the current graph points at, times rho.
        let cfg = DiffusionConfig { noise: 0.0, ..Default::default() };
        let (x, graphs) = generate(&cfg);
        let n = cfg.nodes;
        for t in [0, 29, 30, 100] {
            for &(i, j, _) in &graphs[t] {
                assert_eq!(x[(t + 1) * n + j], cfg.rho * x[t * n + i]);
            }
        }
        assert!(x[..n].iter().all(|v| *v != 0.0));
        assert_eq!(graphs.len(), cfg.steps);
        assert_eq!(graphs[0], graphs[29]);
        assert_ne!(graphs[29], graphs[30]);
    }
}
