//! Dropout with a fast host-side mask on CPU.
//!
//! burn's dropout draws each element through a generic ChaCha-backed sampler; on the CPU that
//! was ~20% of a PatchTST training step. Here the mask comes from a counter-based generator
//! (SplitMix64 of seed, call number and element index): reproducible from the seed, one hash
//! per element. On other devices burn's own dropout runs unchanged.

use std::cell::Cell;

use burn::module::Module;
use burn::nn::DropoutConfig;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

// Per thread: a seeded run repeats its masks whatever other threads (parallel tests, a server)
// draw meanwhile.
thread_local! {
    static SEED: Cell<u64> = const { Cell::new(0x5eed) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Set the seed of every dropout mask this thread draws from now on (and restart its call
/// counter).
pub fn seed(seed: u64) {
    SEED.set(seed);
    CALLS.set(0);
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` mask values: `1/keep` with probability `keep`, else 0.
pub fn mask(n: usize, keep: f64, stream: u64) -> Vec<f32> {
    let threshold = (keep * 4294967296.0) as u64; // compare 32-bit uniforms
    let scale = (1.0 / keep) as f32;
    let base = splitmix64(stream);
    let mut out = vec![0f32; n.div_ceil(2) * 2];
    // Element 2i and 2i+1 come from hash i: the mask does not depend on the chunking.
    const CHUNK: usize = 1 << 14;
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
        for (j, pair) in chunk.chunks_exact_mut(2).enumerate() {
            let i = (c * CHUNK / 2 + j) as u64;
            let r = splitmix64(base ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d));
            pair[0] = if (r & 0xffff_ffff) < threshold { scale } else { 0.0 };
            pair[1] = if (r >> 32) < threshold { scale } else { 0.0 };
        }
    });
    out.truncate(n);
    out
}

#[derive(Module, Debug)]
pub struct Dropout {
    pub inner: burn::nn::Dropout,
}

impl Dropout {
    pub fn new(prob: f64) -> Self {
        Dropout { inner: DropoutConfig::new(prob).init() }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if !self.inner.training.is_enabled() || !device.is_autodiff() || self.inner.prob == 0.0 {
            return x;
        }
        if device.clone().without_autodiff() != Device::flex() {
            return self.inner.forward(x);
        }
        let shape = x.shape();
        let calls = CALLS.replace(CALLS.get() + 1);
        let stream = SEED.get() ^ calls.wrapping_mul(0x9e37_79b9);
        let m = mask(shape.num_elements(), 1.0 - self.inner.prob, stream);
        x * Tensor::<D>::from_data(TensorData::new(m, shape), &device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_the_right_share_and_scales() {
        let m = mask(200_001, 0.7, 42);
        assert_eq!(m.len(), 200_001);
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.7).abs() < 0.005, "{kept}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        // Expected value is preserved.
        let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
        assert!((mean - 1.0).abs() < 0.01);
        assert_eq!(m, mask(200_001, 0.7, 42));
        assert_ne!(m, mask(200_001, 0.7, 43));
    }

    #[test]
    fn identity_in_eval_and_without_autodiff() {
        let d = Dropout::new(0.5);
        let x = Tensor::<2>::ones([4, 4], &Device::flex());
        assert_eq!(d.forward(x.clone()).into_data(), x.clone().into_data());
        let xa = Tensor::<2>::ones([4, 4], &Device::flex().autodiff());
        let v = d.valid();
        assert_eq!(v.forward(xa).into_data(), x.into_data());
    }
}
