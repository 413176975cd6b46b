//! Exact GELU, `x * Phi(x)`, computed on the host for CPU tensors.
//!
//! burn-flex evaluates `erf` and `exp` element by element with scalar libm on one thread; on a
//! PatchTST step that was ~24% of the time. Here one multi-threaded pass computes the value
//! `c = gelu(x)` and the derivative `d = Phi(x) + x phi(x)` (erf by Abramowitz-Stegun 7.1.26,
//! |error| < 1.5e-7, sharing one `exp` with the density; `exp` and the loop vectorised,
//! `crate::kernels::fastmath`), and autodiff gets the exact local
//! derivative through `c + d * (x - detach(x))`: its value is `c`, its gradient `d * grad`.
//! Other devices use burn's GELU.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// GELU value and derivative at `x`.
#[inline]
pub fn gelu_and_grad(x: f32) -> (f32, f32) {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let e = crate::kernels::fastmath::exp(-z * z); // exp(-x^2/2)
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf_abs = 1.0 - poly * e;
    let cdf = 0.5 * (1.0 + if x >= 0.0 { erf_abs } else { -erf_abs });
    (x * cdf, cdf + x * FRAC_1_SQRT_2PI * e)
}

#[inline(always)]
fn fill_body(c: &mut [f32], d: Option<&mut [f32]>) {
    match d {
        None => c.iter_mut().for_each(|c| *c = gelu_and_grad(*c).0),
        Some(d) => c.iter_mut().zip(d.iter_mut()).for_each(|(c, d)| (*c, *d) = gelu_and_grad(*c)),
    }
}

/// Replace `c`'s values x by gelu(x) (and write the derivatives to `d`), vectorised with AVX2 +
/// FMA when the CPU has them.
fn fill(c: &mut [f32], d: Option<&mut [f32]>) {
    crate::kernels::fastmath::with_avx2_fma(#[inline(always)] || fill_body(c, d))
}

pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if device.clone().without_autodiff() != Device::flex() {
        return burn::tensor::activation::gelu(x);
    }
    let shape = x.shape();
    // `c` starts as a copy of x and is overwritten with gelu(x) in place.
    let mut c: Vec<f32> = x.clone().into_data().try_into_vec().expect("f32 tensor");
    if !device.is_autodiff() {
        c.par_chunks_mut(1 << 14).for_each(|c| fill(c, None));
        return Tensor::from_data(TensorData::new(c, shape), &device);
    }
    let mut d = vec![0f32; c.len()];
    c.par_chunks_mut(1 << 14).zip(d.par_chunks_mut(1 << 14)).for_each(|(c, d)| fill(c, Some(d)));
    let c = Tensor::<D>::from_data(TensorData::new(c, shape.clone()), &device);
    let d = Tensor::<D>::from_data(TensorData::new(d, shape), &device);
    c + (x.clone() - x.detach()) * d
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn value_and_gradient_match_burns_exact_gelu() {
        let device = Device::flex().autodiff();
        let x0 = Tensor::<2>::random([64, 129], Distribution::Normal(0.0, 3.0), &Device::flex());
        let w = Tensor::<2>::random([64, 129], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: fn(Tensor<2>) -> Tensor<2>| {
            let x = Tensor::<2>::from_data(x0.to_data(), &device).require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            let g: Vec<f32> = x.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
            let y: Vec<f32> = y.into_data().try_into_vec().unwrap();
            (y, g)
        };
        let (y_ref, g_ref) = run(burn::tensor::activation::gelu);
        let (y, g) = run(gelu);
        let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst(&y, &y_ref) < 2e-6, "value {}", worst(&y, &y_ref));
        assert!(worst(&g, &g_ref) < 2e-6, "grad {}", worst(&g, &g_ref));
        // Eval path (no autodiff) gives the same values.
        let y_eval: Vec<f32> = gelu(x0).into_data().try_into_vec().unwrap();
        assert!(worst(&y_eval, &y_ref) < 2e-6);
    }
}
