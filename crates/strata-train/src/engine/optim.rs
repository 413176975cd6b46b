//! Optimisers and parameter groups: what a training task asks for, built into burn's
//! `ModuleOptimizer` (Adam or AdamW with optional weight decay and gradient-norm clipping).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use super::schedule::Rate;
use crate::config::{Optimizer, TrainConfig};

/// An optimiser's settings; `None` keeps burn's default.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerSpec {
    pub kind: Optimizer,
    pub betas: Option<(f32, f32)>,
    pub epsilon: Option<f32>,
    /// Adam: L2 weight decay added to the gradient; AdamW: decoupled weight decay.
    pub weight_decay: Option<f32>,
    /// Clip the gradient's global norm to this value.
    pub grad_clip: Option<f32>,
}

impl OptimizerSpec {
    /// burn's Adam with its defaults (betas 0.9/0.999, epsilon 1e-5, no decay, no clipping).
    pub fn adam() -> Self {
        OptimizerSpec { kind: Optimizer::Adam, betas: None, epsilon: None, weight_decay: None, grad_clip: None }
    }

    /// The optimiser of a `[train]` table: Adam (weight decay only when positive) or AdamW,
    /// epsilon 1e-8, clipping at `grad_clip`.
    pub fn of_train(t: &TrainConfig) -> Self {
        let weight_decay = match t.optimizer {
            Optimizer::Adam | Optimizer::Sgd => (t.weight_decay > 0.0).then_some(t.weight_decay as f32),
            Optimizer::Adamw => Some(t.weight_decay as f32),
        };
        OptimizerSpec { kind: t.optimizer, betas: None, epsilon: Some(1e-8), weight_decay, grad_clip: t.grad_clip.map(|c| c as f32) }
    }

    pub fn build(&self) -> ModuleOptimizer {
        let clip = self.grad_clip.map(GradientClippingConfig::Norm);
        match self.kind {
            Optimizer::Adam => {
                let mut c = AdamConfig::new().with_grad_clipping(clip).with_weight_decay(self.weight_decay.map(WeightDecayConfig::new));
                if let Some((b1, b2)) = self.betas {
                    c = c.with_beta_1(b1).with_beta_2(b2);
                }
                if let Some(e) = self.epsilon {
                    c = c.with_epsilon(e);
                }
                c.init()
            }
            Optimizer::Adamw => {
                let mut c = AdamWConfig::new().with_grad_clipping(clip);
                if let Some((b1, b2)) = self.betas {
                    c = c.with_beta_1(b1).with_beta_2(b2);
                }
                if let Some(e) = self.epsilon {
                    c = c.with_epsilon(e);
                }
                if let Some(w) = self.weight_decay {
                    c = c.with_weight_decay(w);
                }
                c.init()
            }
            Optimizer::Sgd => SgdConfig::new().with_gradient_clipping(clip).with_weight_decay(self.weight_decay.map(WeightDecayConfig::new)).init(),
        }
    }
}

/// The optimiser of a `[train]` table (see [`OptimizerSpec::of_train`]).
pub fn build_optimizer(t: &TrainConfig) -> ModuleOptimizer {
    OptimizerSpec::of_train(t).build()
}

/// A group of parameters with its own optimiser (and state) and learning rate. A task's first
/// group takes every parameter no later group claims ([`super::Job::split_grads`]).
pub struct Group {
    pub optim: ModuleOptimizer,
    pub rate: Rate,
    /// The file of its optimiser state in the run folder (the first group's is `optimizer.bpk`).
    pub file: &'static str,
}

impl Group {
    pub fn new(spec: &OptimizerSpec, rate: Rate, file: &'static str) -> Self {
        Group { optim: spec.build(), rate, file }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_tables_map_to_the_optimisers_they_name() {
        let t = TrainConfig { weight_decay: 0.0, ..Default::default() };
        let s = OptimizerSpec::of_train(&TrainConfig { optimizer: Optimizer::Adam, ..t.clone() });
        assert_eq!((s.weight_decay, s.epsilon), (None, Some(1e-8)), "Adam without decay adds no L2 term");
        let s = OptimizerSpec::of_train(&TrainConfig { optimizer: Optimizer::Adamw, ..t });
        // AdamW's default decay is 1e-4: a table's 0 must reach burn as 0, not as the default.
        assert_eq!(s.weight_decay, Some(0.0));
    }

    #[test]
    fn sgd_is_a_plain_gradient_step() {
        use burn::module::Module;
        use burn::nn::{Linear, LinearConfig};
        use burn::optim::GradientsParams;
        use burn::tensor::{Tensor, TensorData};
        let device = crate::device::training_device();
        let lin: Linear = LinearConfig::new(2, 1).with_bias(false).init(&device);
        let w0: Vec<f32> = lin.weight.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        // loss = x . w with x = (1, 3): the gradient is x, so w1 = w0 - lr * x (lr 0.5).
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 3.0], [1, 2]), &device);
        let grads = GradientsParams::from_grads(lin.forward(x).sum().backward(), &lin);
        let t = TrainConfig { optimizer: Optimizer::Sgd, weight_decay: 0.0, ..Default::default() };
        let lin = build_optimizer(&t).step(0.5, lin, grads);
        let w1: Vec<f32> = lin.weight.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert!((w1[0] - (w0[0] - 0.5)).abs() < 1e-6 && (w1[1] - (w0[1] - 1.5)).abs() < 1e-6, "{w0:?} -> {w1:?}");
        let _ = lin.num_params();
    }
}
