//! Graph operators the graph models share, computed once on the host in f64 from a dense
//! row-major adjacency `adj[i * n + j]` and stored as constant tensors.

use burn::tensor::{Device, Tensor, TensorData};

use crate::api::Shape;

/// Kipf & Welling's renormalised adjacency `D^-1/2 (A + I) D^-1/2` of the symmetrised graph
/// `max(A, A^T)`.
pub fn gcn_norm(adj: &[f32], n: usize) -> Vec<f32> {
    let mut a = symmetrise(adj, n);
    for i in 0..n {
        a[i * n + i] += 1.0;
    }
    sym_normalise(&a, n).into_iter().map(|v| v as f32).collect()
}

/// The scaled Laplacian `2 L / lambda_max - I` with `L = I - D^-1/2 W D^-1/2`, `W = max(A, A^T)`
/// (STGCN's Chebyshev graph shift operator). `lambda_max` comes from power iteration.
pub fn scaled_laplacian(adj: &[f32], n: usize) -> Vec<f32> {
    let w = symmetrise(adj, n);
    let norm = sym_normalise(&w, n);
    let mut l: Vec<f64> = norm.iter().map(|v| -v).collect();
    for i in 0..n {
        l[i * n + i] += 1.0;
    }
    let lambda = largest_eigenvalue(&l, n).max(1e-6);
    let mut out: Vec<f32> = l.iter().map(|v| (2.0 * v / lambda) as f32).collect();
    for i in 0..n {
        out[i * n + i] -= 1.0;
    }
    out
}

/// The random-walk transition matrix `D^-1 A` (rows sum to 1; empty rows stay 0).
pub fn transition(adj: &[f32], n: usize) -> Vec<f32> {
    let mut p = adj.to_vec();
    for row in p.chunks_exact_mut(n) {
        let d: f64 = row.iter().map(|&v| v as f64).sum();
        if d > 0.0 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / d) as f32);
        }
    }
    p
}

pub fn transpose(a: &[f32], n: usize) -> Vec<f32> {
    let mut t = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    t
}

pub fn tensor(a: Vec<f32>, n: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(a, [n, n]), device)
}

fn symmetrise(adj: &[f32], n: usize) -> Vec<f64> {
    let mut w = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            w[i * n + j] = adj[i * n + j].max(adj[j * n + i]) as f64;
        }
    }
    w
}

fn sym_normalise(w: &[f64], n: usize) -> Vec<f64> {
    let d: Vec<f64> = w.chunks_exact(n).map(|r| r.iter().sum::<f64>()).map(|s| if s > 0.0 { 1.0 / s.sqrt() } else { 0.0 }).collect();
    let mut out = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = d[i] * w[i * n + j] * d[j];
        }
    }
    out
}

/// Largest eigenvalue of a symmetric positive semi-definite matrix, by power iteration.
fn largest_eigenvalue(m: &[f64], n: usize) -> f64 {
    let mut v: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
    let mut lambda = 0.0;
    for _ in 0..500 {
        let mut w = vec![0f64; n];
        for i in 0..n {
            w[i] = (0..n).map(|j| m[i * n + j] * v[j]).sum();
        }
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        let next = norm / v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = w.into_iter().map(|x| x / norm).collect();
        if (next - lambda).abs() < 1e-10 {
            return next;
        }
        lambda = next;
    }
    lambda
}

/// `x @ op^T` over the node axis: `x` is `[rows, n]`, the result `out[r, i] = sum_j op[i, j] x[r, j]`.
pub fn propagate(x: Tensor<2>, op_t: &Tensor<2>) -> Tensor<2> {
    x.matmul(op_t.clone())
}

/// The seed models (ST-CNN, ConvLSTM) convolve over a sensor graph or a grid: one must be given.
pub fn graph_or_grid(model: &str, shape: &Shape, has_graph: bool) -> Result<(), String> {
    if !has_graph && shape.grid.is_none() {
        return Err(format!("{model} needs a graph (data.graph) or a grid (data.grid)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_graph_by_hand() {
        // Path 0 - 1 - 2: degrees 1, 2, 1; L's eigenvalues are 0, 1, 2, so lambda_max = 2 and the
        // scaled Laplacian is L - I.
        let a = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let s = scaled_laplacian(&a, 3);
        let r = 1.0 / 2f32.sqrt();
        let want = [0.0, -r, 0.0, -r, 0.0, -r, 0.0, -r, 0.0];
        for (x, y) in s.iter().zip(want) {
            assert!((x - y).abs() < 1e-5, "{s:?}");
        }
        // Transition rows sum to one.
        assert_eq!(transition(&a, 3), [0.0, 1.0, 0.0, 0.5, 0.0, 0.5, 0.0, 1.0, 0.0]);
        // GCN: A + I has degrees 2, 3, 2; entry (0, 1) = 1 / sqrt(2 * 3).
        let g = gcn_norm(&a, 3);
        assert!((g[1] - 1.0 / 6f32.sqrt()).abs() < 1e-6 && (g[0] - 0.5).abs() < 1e-6);
    }
}

// --- Graphs per sample (dynamic graphs: one `[n, n]` adjacency per window), as tensors. ---

/// Row-normalised transition matrices `D^-1 A` of `[b, n, n]` adjacencies (empty rows stay 0),
/// as [`transition`] does for one.
pub fn transition_batch(a: Tensor<3>) -> Tensor<3> {
    let d = a.clone().sum_dim(2);
    let inv = d.clone().clamp_min(1e-12).recip() * d.greater_elem(0.0).float();
    a * inv
}

/// The scaled Laplacians `2 L / lambda_max - I` (`L = I - D^-1/2 W D^-1/2`, `W` the symmetrised
/// adjacency) of `[b, n, n]` adjacencies, as [`scaled_laplacian`] does for one; `lambda_max` by
/// 100 steps of batched power iteration.
pub fn scaled_laplacian_batch(a: Tensor<3>) -> Tensor<3> {
    let [b, n, _] = a.dims();
    let device = a.device();
    let w = a.clone().max_pair(a.swap_dims(1, 2));
    let d = w.clone().sum_dim(2); // [b, n, 1]
    let dinv = d.clone().clamp_min(1e-12).sqrt().recip() * d.greater_elem(0.0).float();
    let norm = dinv.clone() * w * dinv.swap_dims(1, 2);
    let eye = Tensor::<2>::eye(n, &device).unsqueeze_dim::<3>(0).repeat_dim(0, b);
    let l = eye.clone() - norm;
    let start: Vec<f32> = (0..b).flat_map(|_| (0..n).map(|i| 1.0 + (i % 7) as f32 * 0.1)).collect();
    let mut v = Tensor::<3>::from_data(TensorData::new(start, [b, n, 1]), &device);
    let mut lambda = Tensor::<3>::ones([b, 1, 1], &device);
    for _ in 0..100 {
        let wv = l.clone().matmul(v.clone());
        let norm_wv = wv.clone().powi_scalar(2).sum_dim(1).sqrt(); // [b, 1, 1]
        let norm_v = v.clone().powi_scalar(2).sum_dim(1).sqrt();
        lambda = norm_wv.clone() / norm_v.clamp_min(1e-12);
        v = wv / norm_wv.clamp_min(1e-12);
    }
    l * (lambda.clamp_min(1e-6).recip() * 2.0) - eye
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn per_sample_operators_match_the_single_graph_ones() {
        let device = Device::default();
        let n = 4;
        let a1 = [0.0, 2.0, 0.0, 1.0, 1.0, 0.0, 3.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 2.0, 0.0f32];
        let a2 = [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0f32];
        let batch = Tensor::<3>::from_data(TensorData::new([a1, a2].concat(), [2, n, n]), &device);
        let got_t: Vec<f32> = transition_batch(batch.clone()).into_data().try_into_vec().unwrap();
        let got_l: Vec<f32> = scaled_laplacian_batch(batch).into_data().try_into_vec().unwrap();
        let want_t = [transition(&a1, n), transition(&a2, n)].concat();
        let want_l = [scaled_laplacian(&a1, n), scaled_laplacian(&a2, n)].concat();
        for (g, w) in got_t.iter().zip(&want_t) {
            assert!((g - w).abs() < 1e-6, "{got_t:?} vs {want_t:?}");
        }
        for (g, w) in got_l.iter().zip(&want_l) {
            assert!((g - w).abs() < 1e-4, "{got_l:?} vs {want_l:?}");
        }
    }
}
