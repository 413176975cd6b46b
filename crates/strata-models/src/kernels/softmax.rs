//! Softmax over any dimension on CPU, with a fused, vectorised forward.
//!
//! Under autodiff burn decomposes softmax into max / sub / exp / sum / div, evaluates `exp` with
//! scalar libm on one thread, and evaluates it again in the backward pass (its `exp` node
//! recomputes the output). Here one multi-threaded host pass with a vectorised `exp`
//! (`crate::kernels::fastmath`) computes `s = softmax(x)` once, outside the graph, and autodiff gets the exact local Jacobian
//! `ds_i/dx_k = s_i (delta_ik - s_k)` through
//! `s + s * u - s * sum(s * u)` with `u = x - detach(x)`: its value is `s` (u is zero) and its
//! gradient is `s * (g - sum(g * s))`, softmax's. No transcendental function is evaluated in the
//! backward pass. Masked positions (`mask` true) get weight 0 and gradient 0, as with
//! `mask_fill(-inf)` before burn's softmax; `u` is taken from the unmasked input so that no
//! infinity enters the graph. Without autodiff the same host pass is the whole op (burn-flex's
//! fused softmax calls scalar `expf`). Other devices use burn's softmax. A dimension other than the
//! last is softmaxed in place down its stride (no transpose).

use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Softmax over the last dimension of `x`; `mask` (broadcast to `x`'s shape) marks entries to
/// leave out (weight 0).
pub fn softmax_last<const D: usize>(x: Tensor<D>, mask: Option<Tensor<D, Bool>>) -> Tensor<D> {
    fused(x, D - 1, mask)
}

/// Softmax over dimension `dim` of `x`, as `burn::tensor::activation::softmax(x, dim)`.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    fused(x, dim, None)
}

fn fused<const D: usize>(x: Tensor<D>, dim: usize, mask: Option<Tensor<D, Bool>>) -> Tensor<D> {
    let device = x.device();
    let masked = |t: Tensor<D>| match mask {
        Some(m) => {
            let shape = t.shape();
            t.mask_fill(m.expand(shape), f32::NEG_INFINITY)
        }
        None => t,
    };
    if device.clone().without_autodiff() != Device::flex() || x.shape().num_elements() == 0 {
        return burn::tensor::activation::softmax(masked(x), dim);
    }
    if !device.is_autodiff() {
        return host_softmax(masked(x), dim);
    }
    let s = host_softmax(masked(x.clone().without_autodiff()), dim);
    let su = (x.clone() - x.detach()) * s.clone();
    su.clone() - su.sum_dim(dim) * s.clone() + s
}

/// Softmax over `dim` on the host ([`crate::kernels::fastmath::softmax_strided_par`]).
fn host_softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let (shape, device) = (x.shape(), x.device());
    let dims = x.dims();
    let inner: usize = dims[dim + 1..].iter().product();
    let mut values: Vec<f32> = x.into_data().try_into_vec().expect("f32 tensor");
    crate::kernels::fastmath::softmax_strided_par(&mut values, dims[dim], inner);
    Tensor::from_data(TensorData::new(values, shape), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    /// Softmax over `dim` of `x0` (ours when `fused`, else burn's) and the gradient of `sum(y * w)`.
    fn run(x0: &Tensor<4>, w: &Tensor<4>, mask: Option<Tensor<4, Bool>>, fused: bool, dim: usize) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(x0.to_data(), &device).require_grad();
        let y = if fused {
            super::fused(x.clone(), dim, mask)
        } else {
            let xm = match mask {
                Some(m) => x.clone().mask_fill(m.expand(x.shape()), f32::NEG_INFINITY),
                None => x.clone(),
            };
            burn::tensor::activation::softmax(xm, dim)
        };
        let grads = (y.clone() * w.clone()).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        (y.into_data().try_into_vec().unwrap(), g)
    }

    fn worst(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
    }

    #[test]
    fn value_and_gradient_match_burns_softmax() {
        let flex = Device::flex();
        let x0 = Tensor::<4>::random([3, 2, 5, 37], Distribution::Normal(0.0, 4.0), &flex);
        let w = Tensor::<4>::random([3, 2, 5, 37], Distribution::Normal(0.0, 1.0), &flex.clone().autodiff());
        let (y_ref, g_ref) = run(&x0, &w, None, false, 3);
        let (y, g) = run(&x0, &w, None, true, 3);
        assert!(worst(&y, &y_ref) < 1e-6, "value {}", worst(&y, &y_ref));
        // f32 rounding of a 37-term sum: relative to the largest gradient (the draw is not
        // seeded, and an absolute 1e-6 failed on a draw whose gradients reach several units).
        let scale = g_ref.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert!(worst(&g, &g_ref) < 1e-6 * scale, "grad {} (largest {scale})", worst(&g, &g_ref));
        // Rows sum to one.
        for row in y.chunks(37) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn a_causal_mask_gives_zero_weight_and_zero_gradient() {
        let flex = Device::flex();
        let t = 6;
        let x0 = Tensor::<4>::random([2, 3, t, t], Distribution::Normal(0.0, 2.0), &flex);
        let w = Tensor::<4>::random([2, 3, t, t], Distribution::Normal(0.0, 1.0), &flex.clone().autodiff());
        let causal: Vec<bool> = (0..t).flat_map(|i| (0..t).map(move |j| j > i)).collect();
        let mask = || Tensor::<2, Bool>::from_data(TensorData::new(causal.clone(), [t, t]), &flex.clone().autodiff()).unsqueeze::<4>();
        let (y_ref, g_ref) = run(&x0, &w, Some(mask()), false, 3);
        let (y, g) = run(&x0, &w, Some(mask()), true, 3);
        assert!(y.iter().chain(&g).all(|v| v.is_finite()));
        assert!(worst(&y, &y_ref) < 1e-6, "value {}", worst(&y, &y_ref));
        assert!(worst(&g, &g_ref) < 1e-6, "grad {}", worst(&g, &g_ref));
        // Entry (i, j) with j > i: weight and gradient exactly zero.
        for (k, (&v, &d)) in y.iter().zip(&g).enumerate() {
            let (i, j) = ((k / t) % t, k % t);
            if j > i {
                assert_eq!((v, d), (0.0, 0.0), "entry {k}");
            }
        }
        // Without autodiff, the same values.
        let y_eval: Vec<f32> = softmax_last(x0, Some(mask().inner())).into_data().try_into_vec().unwrap();
        assert!(worst(&y_eval, &y_ref) < 1e-6);
    }

    #[test]
    fn any_dimension_matches_burns_softmax() {
        let flex = Device::flex();
        let x0 = Tensor::<4>::random([3, 2, 9, 13], Distribution::Normal(0.0, 4.0), &flex);
        let w = Tensor::<4>::random([3, 2, 9, 13], Distribution::Normal(0.0, 1.0), &flex.clone().autodiff());
        for dim in 0..4 {
            let ((y, g), (y_ref, g_ref)) = (run(&x0, &w, None, true, dim), run(&x0, &w, None, false, dim));
            assert!(worst(&y, &y_ref) < 1e-6, "dim {dim}: value {}", worst(&y, &y_ref));
            assert!(worst(&g, &g_ref) < 1e-6, "dim {dim}: grad {}", worst(&g, &g_ref));
            let y_eval: Vec<f32> = softmax(x0.clone(), dim).into_data().try_into_vec().unwrap();
            assert!(worst(&y_eval, &y_ref) < 1e-6, "dim {dim}: eval");
        }
    }
}
