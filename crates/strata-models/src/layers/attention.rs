//! Multi-head self-attention that returns its weights and, optionally, adds the previous layer's
//! pre-softmax scores (PatchTST's residual attention, from RealFormer).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};

use crate::layers::dropout::Dropout;
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub attn_dropout: Dropout,
    pub proj_dropout: Dropout,
    pub n_heads: usize,
    pub d_head: usize,
}

/// The result of one attention call.
pub struct AttentionOut {
    /// `[batch, tokens, d_model]`.
    pub context: Tensor<3>,
    /// Pre-softmax scores `[batch, heads, tokens, tokens]` (for residual attention).
    pub scores: Tensor<4>,
    /// Attention weights `[batch, heads, tokens, tokens]`.
    pub weights: Tensor<4>,
}

impl SelfAttention {
    pub fn new(d_model: usize, n_heads: usize, attn_dropout: f64, proj_dropout: f64, device: &Device) -> Self {
        assert!(d_model % n_heads == 0, "d_model {d_model} is not a multiple of n_heads {n_heads}");
        let lin = || LinearConfig::new(d_model, d_model).init(device);
        SelfAttention {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            attn_dropout: Dropout::new(attn_dropout),
            proj_dropout: Dropout::new(proj_dropout),
            n_heads,
            d_head: d_model / n_heads,
        }
    }

    /// Cross-attention: `queries` `[batch, q, d_model]` attend to `keys` `[batch, k, d_model]`
    /// (which are also the values) -> `[batch, q, d_model]`.
    pub fn cross(&self, queries: Tensor<3>, keys: Tensor<3>) -> Tensor<3> {
        let ([b, tq, d], [_, tk, _]) = (queries.dims(), keys.dims());
        let heads = |y: Tensor<3>, t: usize| y.reshape([b, t, self.n_heads, self.d_head]).swap_dims(1, 2);
        let q = heads(self.query.forward(queries), tq);
        let k = heads(self.key.forward(keys.clone()), tk);
        let v = heads(self.value.forward(keys), tk);
        let scores = q.matmul(k.transpose()).mul_scalar((self.d_head as f64).powf(-0.5));
        let weights = crate::kernels::softmax::softmax_last(scores, None);
        let context = self.attn_dropout.forward(weights).matmul(v).swap_dims(1, 2).reshape([b, tq, d]);
        self.proj_dropout.forward(self.output.forward(context))
    }

    pub fn forward(&self, x: Tensor<3>, prev_scores: Option<Tensor<4>>) -> AttentionOut {
        let [b, t, d] = x.dims();
        let heads = |y: Tensor<3>| y.reshape([b, t, self.n_heads, self.d_head]).swap_dims(1, 2);
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x));
        let mut scores = q.matmul(k.transpose()).mul_scalar((self.d_head as f64).powf(-0.5));
        if let Some(prev) = prev_scores {
            scores = scores + prev;
        }
        let weights = crate::kernels::softmax::softmax_last(scores.clone(), None);
        let context = self.attn_dropout.forward(weights.clone()).matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        let context = self.proj_dropout.forward(self.output.forward(context));
        AttentionOut { context, scores, weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// With one key the softmax weight is 1 whatever the query: the result is the output map of
    /// that key's value, `W_o (W_v k + b_v) + b_o`; with the key repeated, the same.
    #[test]
    fn cross_attention_to_one_key_is_its_projected_value() {
        let device = Device::flex();
        let att = SelfAttention::new(8, 2, 0.0, 0.0, &device);
        let q = Tensor::<3>::random([3, 2, 8], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<3>::random([3, 1, 8], Distribution::Normal(0.0, 1.0), &device);
        let want = att.output.forward(att.value.forward(k.clone())).repeat_dim(1, 2);
        let got = att.cross(q.clone(), k.clone());
        let diff: f32 = (got - want.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
        let got = att.cross(q, k.repeat_dim(1, 4));
        let diff: f32 = (got - want).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
