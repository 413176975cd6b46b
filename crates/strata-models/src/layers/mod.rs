//! Layers shared by several models: [`attention`], [`distribution`] heads, seeded
//! [`dropout`], [`revin`] (reversible instance normalisation), the Transformer's sinusoidal
//! position table ([`sinusoid`]).

pub mod attention;
pub mod distribution;
pub mod dropout;
pub mod revin;

/// The feed-forward activation of a Transformer block (TSLib's `--activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Gelu,
    Relu,
}

impl Activation {
    pub fn apply<const D: usize>(self, x: burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D> {
        match self {
            Activation::Gelu => crate::kernels::gelu::gelu(x),
            Activation::Relu => burn::tensor::activation::relu(x),
        }
    }
}

/// The sinusoidal position table of "Attention is all you need", row-major `[len, d]`:
/// `sin(pos / 10000^(i/d))` at even `i`, `cos` at odd `i`.
pub fn sinusoid(len: usize, d: usize) -> Vec<f32> {
    let mut pe = vec![0f32; len * d];
    for pos in 0..len {
        for i in (0..d).step_by(2) {
            let angle = pos as f64 * (-(i as f64) * (10000f64).ln() / d as f64).exp();
            pe[pos * d + i] = angle.sin() as f32;
            if i + 1 < d {
                pe[pos * d + i + 1] = angle.cos() as f32;
            }
        }
    }
    pe
}
