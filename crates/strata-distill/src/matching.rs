//! Gradient matching (DC, STemDist): the layer-wise cosine distance between the gradients a
//! model gets from real and from synthetic data, and its gradient with respect to the
//! synthetic data.
//!
//! burn 0.22 has no double backward, so `dD/dS` uses the identity
//! `dD/dS = grad_S [v . grad_theta L(theta, S)]` with `v = dD/dg_syn` (closed form below) and
//! central differences in parameter space, as DARTS does:
//! `(grad_S L(theta + eps v, S) - grad_S L(theta - eps v, S)) / (2 eps)`, two first-order
//! backward passes (error O(eps^2)).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Gradients, Tensor, TensorData};

/// Gradients of a module's matrix and kernel parameters (vectors such as biases and norms are
/// left out, as the reference does), flat, in visit order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamGrads {
    pub tensors: Vec<ParamGrad>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamGrad {
    pub id: ParamId,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl ParamGrad {
    /// `(rows, row length, stride between a row's elements, stride between rows)`: rows are the
    /// output units: the columns of a burn `Linear` weight (`[in, out]`), the first axis of a
    /// convolution kernel (`[out, in, ...]`).
    fn rows(&self) -> (usize, usize, usize, usize) {
        match self.shape[..] {
            [i, o] => (o, i, o, 1),
            _ => {
                let out = self.shape[0];
                let rest = self.values.len() / out.max(1);
                (out, rest, 1, rest)
            }
        }
    }
}

struct Collect<'a> {
    grads: &'a Gradients,
    out: Vec<ParamGrad>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if D < 2 || !p.is_require_grad() {
            return;
        }
        let shape = p.shape().dims::<D>().to_vec();
        let values = match p.val().grad(self.grads) {
            Some(g) => g.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 gradients"),
            None => vec![0.0; shape.iter().product()],
        };
        self.out.push(ParamGrad { id: p.id, shape, values });
    }
}

/// The gradients of `module`'s parameters in `grads` (from `loss.backward()`).
pub fn param_grads<M: Module>(module: &M, grads: &Gradients) -> ParamGrads {
    let mut c = Collect { grads, out: Vec::new() };
    module.visit(&mut c);
    ParamGrads { tensors: c.out }
}

const EPS: f32 = 1e-6;

/// `sum over tensors, over output rows of (1 - cos(real_row, syn_row))`, and its gradient with
/// respect to `syn` (same layout).
pub fn distance(real: &ParamGrads, syn: &ParamGrads) -> (f64, ParamGrads) {
    let mut total = 0.0;
    let mut grad = syn.clone();
    for ((r, s), g) in real.tensors.iter().zip(&syn.tensors).zip(grad.tensors.iter_mut()) {
        debug_assert_eq!(r.shape, s.shape);
        let (rows, len, step, row_stride) = s.rows();
        for row in 0..rows {
            let idx = |k: usize| row * row_stride + k * step;
            let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
            for k in 0..len {
                let (a, b) = (r.values[idx(k)] as f64, s.values[idx(k)] as f64);
                (ab, aa, bb) = (ab + a * b, aa + a * a, bb + b * b);
            }
            let (na, nb) = (aa.sqrt(), bb.sqrt());
            let denom = na * nb + EPS as f64;
            total += 1.0 - ab / denom;
            // d/db (-a.b / (|a||b| + e)) = -a / den + (a.b) |a| b / (|b| den^2)
            for k in 0..len {
                let (a, b) = (r.values[idx(k)] as f64, s.values[idx(k)] as f64);
                let d = -a / denom + if nb > 0.0 { ab * na * b / (nb * denom * denom) } else { 0.0 };
                g.values[idx(k)] = d as f32;
            }
        }
    }
    (total, grad)
}

/// The squared norm of a gradient set.
pub fn norm2(g: &ParamGrads) -> f64 {
    g.tensors.iter().flat_map(|t| t.values.iter()).map(|&v| (v as f64).powi(2)).sum()
}

/// `module` with `eps * dir` added to the parameters `dir` names.
pub fn shifted<M: Module>(module: M, dir: &ParamGrads, eps: f32) -> M {
    struct Shift<'a> {
        dir: &'a ParamGrads,
        eps: f32,
    }
    impl ModuleMapper for Shift<'_> {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(d) = self.dir.tensors.iter().find(|t| t.id == p.id) else { return p };
            let (eps, values, shape) = (self.eps, d.values.clone(), d.shape.clone());
            p.map(move |t| {
                let device = t.device();
                let delta = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
                t + delta * eps
            })
        }
    }
    module.map(&mut Shift { dir, eps })
}

/// `grad_S [v . grad_theta L(theta, S)]` by central differences: `loss` evaluates the synthetic
/// loss of a model at the synthetic tensors (which require gradients); returns the gradient of
/// each synthetic tensor as flat values.
pub fn hessian_vector<M: Module + Clone>(model: &M, v: &ParamGrads, mut loss: impl FnMut(&M) -> (Tensor<1>, Vec<SynGrad>)) -> Vec<Vec<f32>> {
    let scale = 0.01 / norm2(v).sqrt().max(1e-12) as f32;
    let mut side = |sign: f32| {
        let m = shifted(model.clone(), v, sign * scale);
        let (l, inputs) = loss(&m);
        let grads = l.backward();
        inputs.iter().map(|g| g.read(&grads)).collect::<Vec<Vec<f32>>>()
    };
    let (plus, minus) = (side(1.0), side(-1.0));
    plus.iter().zip(&minus).map(|(p, m)| p.iter().zip(m).map(|(a, b)| (a - b) / (2.0 * scale)).collect()).collect()
}

/// Every float parameter's values in visit order, all ranks: the flat parameter vector that
/// trajectory matching (MTT) follows. Two models of one architecture list them alike.
pub fn param_values<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Read(Vec<Vec<f32>>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 parameters"));
        }
    }
    let mut r = Read(Vec::new());
    module.visit(&mut r);
    r.0
}

/// The gradients of every float parameter (zeros where a parameter got none), in the order of
/// [`param_values`].
pub fn all_grads<M: Module>(module: &M, grads: &Gradients) -> Vec<Vec<f32>> {
    struct Read<'a>(&'a Gradients, Vec<Vec<f32>>);
    impl ModuleVisitor for Read<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = p.val().grad(self.0).map(|g| g.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 gradients"));
            self.1.push(g.unwrap_or_else(|| vec![0.0; p.shape().num_elements()]));
        }
    }
    let mut r = Read(grads, Vec::new());
    module.visit(&mut r);
    r.1
}

/// `module` with its float parameters replaced by `values` (order of [`param_values`]), as
/// fresh leaves that keep each parameter's require-grad setting.
pub fn with_values<M: Module>(module: M, values: &[Vec<f32>]) -> M {
    struct Set<'a>(&'a [Vec<f32>], usize);
    impl ModuleMapper for Set<'_> {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let v = self.0[self.1].clone();
            self.1 += 1;
            let require = p.is_require_grad();
            p.map(move |t| {
                let shape = t.shape();
                assert_eq!(shape.num_elements(), v.len(), "parameter vector of another architecture");
                Tensor::<D>::from_data(TensorData::new(v, shape), &t.device()).set_require_grad(require)
            })
        }
    }
    let n = values.len();
    let mut s = Set(values, 0);
    let out = module.map(&mut s);
    assert_eq!(s.1, n, "parameter vector of another architecture");
    out
}

/// A synthetic tensor whose gradient is wanted (any rank).
pub enum SynGrad {
    R3(Tensor<3>),
    R4(Tensor<4>),
}

impl SynGrad {
    fn read(&self, grads: &Gradients) -> Vec<f32> {
        let flat = |d: TensorData| d.convert::<f32>().try_into_vec::<f32>().expect("f32");
        match self {
            SynGrad::R3(t) => t.grad(grads).map(|g| flat(g.into_data())).unwrap_or_else(|| vec![0.0; t.shape().num_elements()]),
            SynGrad::R4(t) => t.grad(grads).map(|g| flat(g.into_data())).unwrap_or_else(|| vec![0.0; t.shape().num_elements()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Distribution};

    fn cos_dist(a: &[f64], b: &[f64]) -> f64 {
        let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        1.0 - ab / (na * nb + EPS as f64)
    }

    /// The distance by hand on a 2 x 3 Linear weight (rows = the 3 output columns), and its
    /// gradient against finite differences.
    #[test]
    fn distance_and_its_gradient_by_hand() {
        let id = ParamId::new();
        let real = ParamGrads { tensors: vec![ParamGrad { id, shape: vec![2, 3], values: vec![1.0, 0.0, 2.0, 0.0, 1.0, -1.0] }] };
        let syn = ParamGrads { tensors: vec![ParamGrad { id, shape: vec![2, 3], values: vec![1.0, 1.0, -1.0, 2.0, 0.0, 3.0] }] };
        // Columns of real: (1,0), (0,1), (2,-1); of syn: (1,2), (1,0), (-1,3).
        let want = cos_dist(&[1.0, 0.0], &[1.0, 2.0]) + cos_dist(&[0.0, 1.0], &[1.0, 0.0]) + cos_dist(&[2.0, -1.0], &[-1.0, 3.0]);
        let (d, g) = distance(&real, &syn);
        assert!((d - want).abs() < 1e-9, "{d} vs {want}");
        for k in 0..6 {
            let h = 1e-3;
            let mut p = syn.clone();
            p.tensors[0].values[k] += h;
            let mut m = syn.clone();
            m.tensors[0].values[k] -= h;
            let fd = (distance(&real, &p).0 - distance(&real, &m).0) / (2.0 * h as f64);
            assert!((fd - g.tensors[0].values[k] as f64).abs() < 1e-3, "element {k}: {fd} vs {}", g.tensors[0].values[k]);
        }
    }

    /// dD/dS through the Hessian-vector identity equals the directional derivative of D itself
    /// (each D evaluation a plain first-order gradient) on a small two-layer model.
    #[test]
    fn matching_gradient_equals_finite_differences_of_the_distance() {
        #[derive(Module, Debug)]
        struct Net {
            a: Linear,
            b: Linear,
        }
        let device = Device::flex().autodiff();
        device.seed(3);
        let net = Net { a: LinearConfig::new(4, 5).init(&device), b: LinearConfig::new(5, 2).init(&device) };
        let forward = |m: &Net, x: Tensor<2>| m.b.forward(burn::tensor::activation::tanh(m.a.forward(x)));
        let mse = |p: Tensor<2>, y: Tensor<2>| (p - y).powi_scalar(2).mean();
        let xr = Tensor::<2>::random([16, 4], Distribution::Normal(0.0, 1.0), &device);
        let yr = Tensor::<2>::random([16, 2], Distribution::Normal(0.0, 1.0), &device);
        let real = param_grads(&net, &mse(forward(&net, xr), yr).backward());
        let xs: Vec<f32> = Tensor::<2>::random([3, 4], Distribution::Normal(0.0, 1.0), &device).into_data().try_into_vec().unwrap();
        let ys: Vec<f32> = Tensor::<2>::random([3, 2], Distribution::Normal(0.0, 1.0), &device).into_data().try_into_vec().unwrap();
        let dist_at = |xs: &[f32], ys: &[f32]| {
            let x = Tensor::<2>::from_data(TensorData::new(xs.to_vec(), [3, 4]), &device);
            let y = Tensor::<2>::from_data(TensorData::new(ys.to_vec(), [3, 2]), &device);
            distance(&real, &param_grads(&net, &mse(forward(&net, x), y).backward()))
        };
        let (_, v) = dist_at(&xs, &ys);
        let hv = hessian_vector(&net, &v, |m| {
            let x = Tensor::<4>::from_data(TensorData::new(xs.clone(), [3, 4, 1, 1]), &device).require_grad();
            let y = Tensor::<3>::from_data(TensorData::new(ys.clone(), [3, 2, 1]), &device).require_grad();
            let l = mse(forward(m, x.clone().reshape([3, 4])), y.clone().reshape([3, 2]));
            (l, vec![SynGrad::R4(x), SynGrad::R3(y)])
        });
        let (gx, gy) = (&hv[0], &hv[1]);
        // Directional derivative along a fixed direction u of both x and y.
        let ux: Vec<f32> = (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) / 2.0).collect();
        let uy: Vec<f32> = (0..6).map(|i| ((i * 3 % 4) as f32 - 1.5) / 1.5).collect();
        let h = 1e-2f32;
        let step = |s: f32| {
            let x: Vec<f32> = xs.iter().zip(&ux).map(|(a, u)| a + s * h * u).collect();
            let y: Vec<f32> = ys.iter().zip(&uy).map(|(a, u)| a + s * h * u).collect();
            dist_at(&x, &y).0
        };
        let fd = (step(1.0) - step(-1.0)) / (2.0 * h as f64);
        let analytic: f64 = gx.iter().zip(&ux).chain(gy.iter().zip(&uy)).map(|(g, u)| (*g as f64) * (*u as f64)).sum();
        assert!((fd - analytic).abs() < 2e-2 * fd.abs().max(0.1), "finite differences {fd} vs matching gradient {analytic}");
        assert!(analytic.abs() > 1e-3, "a non-trivial direction");
    }
}
