//! Where a run went non-finite (docs/reliability.md): the first parameter whose gradient or
//! value holds NaN or infinity, by module path. The engine asks on a non-finite loss (always),
//! and after every backward pass with `train.detect_anomaly` (PyTorch's `detect_anomaly`: it
//! costs a read of every gradient per step, so it is a setting).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// The module path of each parameter, in visiting order, and the first non-finite one.
struct Find<'a> {
    path: Vec<String>,
    grads: Option<&'a GradientsParams>,
    found: Option<String>,
}

impl ModuleVisitor for Find<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if self.found.is_some() {
            return;
        }
        let t = match self.grads {
            Some(g) => match g.get::<D>(p.id) {
                Some(t) => t,
                None => return,
            },
            None => p.val(),
        };
        let dims = t.dims();
        let v: Vec<f32> = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        let (nan, inf) = (v.iter().filter(|x| x.is_nan()).count(), v.iter().filter(|x| x.is_infinite()).count());
        if nan + inf > 0 {
            let name = if self.path.is_empty() { "(root)".to_string() } else { self.path.join(".") };
            self.found = Some(format!("`{name}` {dims:?}: {nan} NaN and {inf} infinite of {} values", v.len()));
        }
    }
}

/// The first parameter whose gradient in `grads` is not finite.
pub fn nonfinite_gradient<M: Module>(model: &M, grads: &GradientsParams) -> Option<String> {
    let mut f = Find { path: vec![], grads: Some(grads), found: None };
    model.visit(&mut f);
    f.found.map(|s| format!("the gradient of {s}"))
}

/// The first parameter whose value is not finite.
pub fn nonfinite_parameter<M: Module>(model: &M) -> Option<String> {
    let mut f = Find { path: vec![], grads: None, found: None };
    model.visit(&mut f);
    f.found.map(|s| format!("the parameter {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    #[derive(Module, Debug)]
    struct Two {
        first: Linear,
        second: Linear,
    }

    #[test]
    fn a_finite_loss_with_a_nan_gradient_is_found_by_name() {
        let device = crate::device::training_device();
        let mut m = Two { first: LinearConfig::new(1, 1).with_bias(false).init(&device), second: LinearConfig::new(1, 1).with_bias(false).init(&device) };
        m.second.weight = Param::from_tensor(Tensor::from_data(TensorData::new(vec![-1.0f32], [1, 1]), &device));
        // relu(w2 * inf) with w2 < 0 is relu(-inf) = 0: a finite loss; its gradient for w2 is
        // relu'(-inf) * inf = 0 * inf = NaN. `first` only sees the finite input.
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32], [1, 1]), &device);
        let inf = Tensor::<2>::from_data(TensorData::new(vec![f32::INFINITY], [1, 1]), &device);
        let loss = m.first.forward(x).sum() * 0.0 + burn::tensor::activation::relu(m.second.forward(inf)).sum();
        let value: f32 = loss.clone().into_scalar();
        assert!(value.is_finite(), "the loss is finite: {value}");
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let got = nonfinite_gradient(&m, &grads).expect("a NaN gradient");
        assert!(got.contains("`second.weight` [1, 1]: 1 NaN"), "{got}");
        assert_eq!(nonfinite_parameter(&m), None);
    }
}
