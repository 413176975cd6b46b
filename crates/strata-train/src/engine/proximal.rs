//! FedProx's proximal term (Li et al., MLSys 2020): `mu/2 * ||w - w0||^2` added to every step's
//! loss, with `w0` the weights a fit started from (in federated training, the global model the
//! site received). `train.proximal_mu = 0` (the default) adds nothing.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The trainable weights a fit started from, detached and flattened, in visiting order.
pub struct Anchor {
    weights: Vec<Tensor<1>>,
    mu: f64,
}

struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        if t.is_require_grad() {
            // A new leaf from the values (not `detach`, which keeps a tie to the step's graph).
            let n = t.shape().num_elements();
            let device = t.device();
            let values = t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 weights");
            self.0.push(Tensor::<1>::from_data(burn::tensor::TensorData::new(values, [n]), &device));
        }
    }
}

struct Distance<'a> {
    anchor: &'a [Tensor<1>],
    next: usize,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for Distance<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        if !t.is_require_grad() {
            return;
        }
        let n = t.shape().num_elements();
        let d = (t.reshape([n]) - self.anchor[self.next].clone()).powi_scalar(2).sum();
        self.next += 1;
        self.sum = Some(match self.sum.take() {
            Some(s) => s + d,
            None => d,
        });
    }
}

impl Anchor {
    /// Remember `model`'s trainable weights; `None` when `mu` is 0.
    pub fn of<M: Module>(model: &M, mu: f64) -> Option<Anchor> {
        if mu <= 0.0 {
            return None;
        }
        let mut c = Collect(Vec::new());
        model.visit(&mut c);
        Some(Anchor { weights: c.0, mu })
    }

    /// `mu/2 * ||w - w0||^2` for `model`'s current weights (a scalar with gradients).
    pub fn penalty<M: Module>(&self, model: &M) -> Option<Tensor<1>> {
        let mut d = Distance { anchor: &self.weights, next: 0, sum: None };
        model.visit(&mut d);
        d.sum.map(|s| s * (self.mu / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    #[test]
    fn the_penalty_is_half_mu_times_the_squared_distance_and_its_gradient_mu_times_it() {
        let device = crate::device::training_device();
        let lin: Linear = LinearConfig::new(2, 1).init(&device);
        let anchor = Anchor::of(&lin, 0.5).unwrap();
        assert!(anchor.penalty(&lin).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap()[0].abs() < 1e-12);
        // Move the weight by (1, -2) and the bias by 3: ||d||^2 = 14, the penalty 0.25 * 14 = 3.5.
        let w = lin.weight.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let b = lin.bias.as_ref().unwrap().val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let moved = Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(vec![w[0] + 1.0, w[1] - 2.0], [2, 1]), &device)),
            bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(vec![b[0] + 3.0], [1]), &device))),
        };
        let p = anchor.penalty(&moved).unwrap();
        assert!((p.clone().into_data().convert::<f32>().try_into_vec::<f32>().unwrap()[0] - 3.5).abs() < 1e-5);
        let grads = p.backward();
        let g = moved.weight.grad(&grads).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert!((g[0] - 0.5).abs() < 1e-5 && (g[1] + 1.0).abs() < 1e-5, "mu * d = (0.5, -1): {g:?}");
        assert!(Anchor::of(&lin, 0.0).is_none());
    }
}
