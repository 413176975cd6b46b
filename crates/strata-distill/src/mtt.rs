//! MTT (trajectory matching, Cazenavette et al.) and CondTSF (Ding et al.: MTT plus a value
//! term from a DLinear expert). Time only: every location, `temporal x spatial` of the windows.
//!
//! Experts train on the real data with plain SGD and record their parameters after every
//! epoch. Each iteration a student starts at a random expert's epoch `t` (`t <= T+`), takes `N`
//! SGD steps on the synthetic set with a learned rate `alpha`, and the loss is
//! `|theta_N - theta*_{t+M}|^2 / |theta*_t - theta*_{t+M}|^2`.
//!
//! burn 0.22 has no double backward, so the gradient through the unrolled student is the
//! adjoint recursion, backwards over the steps with `lambda_N = dLoss/dtheta_N`:
//! `dLoss/dS += -alpha grad_S [lambda . g_i(theta_i, S)]`, `dLoss/dalpha += -g_i . lambda`,
//! `lambda <- lambda - alpha H_i lambda`; both second-order terms come from one pair of
//! first-order passes at `theta_i +- eps lambda` (central differences, as in `matching`).
//! The student's dropout masks are fixed per step so that the pair sees the same network.

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use strata_models::{DLinearConfig, Forecaster, MTGNN, Shape};

use crate::matching::{all_grads, param_values, with_values};
use crate::stdata::{StData, batch_location_means, tensor2, tensor3, tensor4};
use crate::config::DistillConfig;
use crate::evaluate::keep_best;
use crate::shared::{Distilled, SynSet, backbone, progress, random_starts, same_masks, st_shape};

type Params = Vec<Vec<f32>>;

fn dot(a: &Params, b: &Params) -> f64 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y)).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// `a + s * b`.
fn axpy(a: &Params, s: f32, b: &Params) -> Params {
    a.iter().zip(b).map(|(x, y)| x.iter().zip(y).map(|(x, y)| x + s * y).collect()).collect()
}

fn mse(model: &MTGNN, x: Tensor<4>, y: Tensor<3>, loc: Tensor<2>) -> Tensor<1> {
    (model.forward_located(x, loc) - y).powi_scalar(2).mean()
}

/// Expert trajectories: `[expert][epoch 0..=E][parameter tensor]`, read from `cfg.mtt.buffer`
/// when it exists, else trained (and written there).
pub fn experts(real: &StData, cfg: &DistillConfig, device: &Device) -> anyhow::Result<Vec<Vec<Params>>> {
    let c = &cfg.mtt;
    let (n, f, l, h) = (real.nodes, real.f, real.l, real.h);
    let template = backbone(cfg).init(st_shape(l, h, n, f), None, device);
    let sizes: Vec<usize> = param_values(&template).iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    let split = |flat: &[f32]| -> Params {
        let mut at = 0;
        sizes.iter().map(|&s| {
            at += s;
            flat[at - s..at].to_vec()
        }).collect()
    };
    if let Some(path) = c.buffer.as_ref().filter(|p| p.exists()) {
        let (shape, flat) = strata_data::npy::read_npy(path)?;
        if shape != [c.experts, c.expert_epochs + 1, total] {
            anyhow::bail!("{}: expert buffer of shape {shape:?}, this model and distill.mtt need [{}, {}, {total}]", path.display(), c.experts, c.expert_epochs + 1);
        }
        return Ok(flat.chunks(total).map(split).collect::<Vec<_>>().chunks(c.expert_epochs + 1).map(<[Params]>::to_vec).collect());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xe4be_27);
    let all: Vec<usize> = (0..n).collect();
    let loc = tensor2(real.location_means(), [n, l * f], device);
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    for e in 0..c.experts {
        device.seed(cfg.seed.wrapping_add(7919 * (e as u64 + 1)));
        let mut model = backbone(cfg).init(st_shape(l, h, n, f), None, device);
        let mut traj = vec![param_values(&model)];
        for _ in 0..c.expert_epochs {
            let mut order = real.splits[0].clone();
            order.shuffle(&mut rng);
            let mut batches: Vec<&[usize]> = order.chunks(cfg.batch).collect();
            if c.expert_batches > 0 {
                batches.truncate(c.expert_batches);
            }
            for b in batches {
                let (x, y) = real.gather(b, &all);
                let loss = mse(&model, tensor4(x, [b.len(), l, n, f], device), tensor3(y, [b.len(), h, n], device), loc.clone());
                let g = all_grads(&model, &loss.backward());
                let next = axpy(&param_values(&model), -(c.expert_lr as f32), &g);
                model = with_values(model, &next);
            }
            traj.push(param_values(&model));
        }
        out.push(traj);
        progress(&cfg.method, started, format_args!("expert {}/{} trained ({} epochs)", e + 1, c.experts, c.expert_epochs));
    }
    if let Some(path) = &c.buffer {
        let flat: Vec<f32> = out.iter().flatten().flatten().flatten().copied().collect();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        strata_train::engine::checkpoint::write_atomic(path, &strata_data::npy::encode_f32(&[c.experts, c.expert_epochs + 1, total], &flat))?;
    }
    Ok(out)
}

/// CondTSF's expert: a shared DLinear trained (Adam) on the real windows' target feature,
/// every location as a channel. Returns `x [m, l, n, f] -> y [m, h, n]` on flat values.
fn dlinear_expert(real: &StData, cfg: &DistillConfig, device: &Device) -> impl Fn(&[f32], usize) -> Vec<f32> {
    let (n, f, l, h) = (real.nodes, real.f, real.l, real.h);
    device.seed(cfg.seed ^ 0xd11);
    let shape = Shape { seq_len: l, pred_len: h, channels: n, features: 1, steps_per_day: 0, tod: false, dow: false, grid: None, marks: 0, covariates: strata_models::CovariateShape { past: 0, future: 0, statics: 0, groups: 0 } };
    let mut model = DLinearConfig { moving_avg: if l > 25 { 25 } else { (l - 1) | 1 }, ..Default::default() }.init(shape, device);
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xd11);
    let all: Vec<usize> = (0..n).collect();
    let values = move |x: &[f32]| -> Vec<f32> { x.chunks(f).map(|c| c[0]).collect() };
    for _ in 0..cfg.condtsf.epochs {
        let mut order = real.splits[0].clone();
        order.shuffle(&mut rng);
        for b in order.chunks(cfg.batch) {
            let (x, y) = real.gather(b, &all);
            let x = Tensor::<3>::from_data(TensorData::new(values(&x), [b.len(), l, n]), device);
            let loss = (model.forecast(x) - tensor3(y, [b.len(), h, n], device)).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
    }
    let device = device.clone();
    move |x: &[f32], m: usize| {
        let x = Tensor::<3>::from_data(TensorData::new(values(x), [m, l, n]), &device);
        model.forecast(x).into_data().convert::<f32>().try_into_vec().expect("f32")
    }
}

/// The student's loss on a synthetic batch `x [b, l, n, f]`, `y [b, h, n]`.
pub type StudentLoss<'a, M> = &'a dyn Fn(&M, Tensor<4>, Tensor<3>) -> Tensor<1>;

/// A student unrolled on the synthetic set: `shape` is `[m, l, n, f, h]`.
pub struct Student<'a, M> {
    pub template: &'a M,
    pub loss: StudentLoss<'a, M>,
    pub shape: [usize; 5],
    pub alpha: f32,
}

impl<M: burn::module::Module + Clone> Student<'_, M> {
    /// One step's loss gradient at parameters `theta` on synthetic windows `b` (dropout masks
    /// from `seed`); with `track`, the gradients of those windows' inputs and targets too.
    fn pass(&self, theta: &Params, xs: &[f32], ys: &[f32], b: &[usize], seed: u64, track: bool, device: &Device) -> (Params, Vec<f32>, Vec<f32>) {
        let [_, l, n, f, h] = self.shape;
        same_masks(seed, device);
        let model = with_values(self.template.clone(), theta);
        let pick = |v: &[f32], len: usize| -> Vec<f32> { b.iter().flat_map(|&i| v[i * len..(i + 1) * len].to_vec()).collect() };
        let x = tensor4(pick(xs, l * n * f), [b.len(), l, n, f], device);
        let y = tensor3(pick(ys, h * n), [b.len(), h, n], device);
        let (x, y) = if track { (x.require_grad(), y.require_grad()) } else { (x, y) };
        let grads = (self.loss)(&model, x.clone(), y.clone()).backward();
        let flat = |t: Option<TensorData>| t.map(|d| d.convert::<f32>().try_into_vec().expect("f32")).unwrap_or_default();
        let gx = if track { flat(x.grad(&grads).map(|g| g.into_data())) } else { Vec::new() };
        let gy = if track { flat(y.grad(&grads).map(|g| g.into_data())) } else { Vec::new() };
        (all_grads(&model, &grads), gx, gy)
    }

    /// The final parameters after the SGD steps `steps` (windows, mask seed) from `start`, and
    /// every step's parameters and gradient.
    fn unroll(&self, start: &Params, xs: &[f32], ys: &[f32], steps: &[(Vec<usize>, u64)], device: &Device) -> (Vec<Params>, Vec<Params>) {
        let mut thetas = vec![start.clone()];
        let mut gs = Vec::new();
        for (b, seed) in steps {
            let (g, _, _) = self.pass(thetas.last().expect("start"), xs, ys, b, *seed, false, device);
            thetas.push(axpy(thetas.last().expect("start"), -self.alpha, &g));
            gs.push(g);
        }
        (thetas, gs)
    }

    /// The normalised parameter-matching loss after the unrolled steps.
    pub fn loss(&self, start: &Params, target: &Params, xs: &[f32], ys: &[f32], steps: &[(Vec<usize>, u64)], device: &Device) -> f64 {
        let (thetas, _) = self.unroll(start, xs, ys, steps, device);
        let diff = axpy(thetas.last().expect("start"), -1.0, target);
        let d = axpy(start, -1.0, target);
        dot(&diff, &diff) / dot(&d, &d).max(1e-12)
    }

    /// The loss and its gradients with respect to the synthetic inputs, targets and the
    /// student's learning rate (the adjoint recursion of the module notes).
    pub fn match_grad(&self, start: &Params, target: &Params, xs: &[f32], ys: &[f32], steps: &[(Vec<usize>, u64)], device: &Device) -> (f64, Vec<f32>, Vec<f32>, f64) {
        let [m, l, n, f, h] = self.shape;
        let (thetas, gs) = self.unroll(start, xs, ys, steps, device);
        let diff = axpy(thetas.last().expect("start"), -1.0, target);
        let den = {
            let d = axpy(start, -1.0, target);
            dot(&d, &d).max(1e-12)
        };
        let loss = dot(&diff, &diff) / den;
        let mut lambda: Params = diff.iter().map(|v| v.iter().map(|x| (2.0 * *x as f64 / den) as f32).collect()).collect();
        let (mut gx, mut gy, mut galpha) = (vec![0f32; m * l * n * f], vec![0f32; m * h * n], 0f64);
        let (lx, ly) = (l * n * f, h * n);
        for i in (0..steps.len()).rev() {
            let (b, seed) = &steps[i];
            galpha -= dot(&gs[i], &lambda);
            let eps = (0.01 / dot(&lambda, &lambda).sqrt().max(1e-12)) as f32;
            let (pp, xp, yp) = self.pass(&axpy(&thetas[i], eps, &lambda), xs, ys, b, *seed, true, device);
            let (pm, xm, ym) = self.pass(&axpy(&thetas[i], -eps, &lambda), xs, ys, b, *seed, true, device);
            let scale = -self.alpha / (2.0 * eps);
            for (j, &w) in b.iter().enumerate() {
                for k in 0..lx {
                    gx[w * lx + k] += scale * (xp[j * lx + k] - xm[j * lx + k]);
                }
                for k in 0..ly {
                    gy[w * ly + k] += scale * (yp[j * ly + k] - ym[j * ly + k]);
                }
            }
            let hl = axpy(&pp, -1.0, &pm);
            lambda = axpy(&lambda, -self.alpha / (2.0 * eps), &hl);
        }
        (loss, gx, gy, galpha)
    }
}

pub fn trajectory_matching(real: &StData, cfg: &DistillConfig, device: &Device) -> anyhow::Result<Distilled> {
    let started = std::time::Instant::now();
    let c = &cfg.mtt;
    let cond = cfg.method == "condtsf";
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (n, f, l, h) = (real.nodes, real.f, real.l, real.h);
    let m = cfg.time_only_windows(real.splits[0].len());
    let starts = random_starts(real, m, &mut rng);
    let all: Vec<usize> = (0..n).collect();
    let init = Distilled::of_windows(&cfg.method, real, &starts, &all);
    let buffer = experts(real, cfg, device)?;
    let expert = cond.then(|| dlinear_expert(real, cfg, device));
    let mut syn = SynSet { x: Param::from_tensor(tensor4(init.x.clone(), [m, l, n, f], device)), y: Param::from_tensor(tensor3(init.y.clone(), [m, h, n], device)) };
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let mut alpha = c.syn_lr as f32;
    let template = backbone(cfg).init(st_shape(l, h, n, f), None, device);
    let student_loss = |m: &MTGNN, x: Tensor<4>, y: Tensor<3>| mse(m, x.clone(), y, batch_location_means(x));
    let span = c.expert_span;
    let sb = if c.syn_batch == 0 { m } else { c.syn_batch.min(m) };
    let (mut history, mut best) = (Vec::new(), None);
    for it in 0..cfg.outer {
        let mut sum = 0.0;
        for step in 0..cfg.inner {
            let traj = &buffer[rng.random_range(0..buffer.len())];
            let t0 = rng.random_range(0..=c.max_start_epoch.min(traj.len() - 1 - span));
            let (start, target) = (&traj[t0], &traj[t0 + span]);
            let xs: Vec<f32> = syn.x.val().into_data().convert::<f32>().try_into_vec().expect("f32");
            let ys: Vec<f32> = syn.y.val().into_data().convert::<f32>().try_into_vec().expect("f32");
            let steps: Vec<(Vec<usize>, u64)> = (0..c.syn_steps)
                .map(|_| {
                    let mut b: Vec<usize> = (0..m).collect();
                    b.shuffle(&mut rng);
                    b.truncate(sb);
                    (b, rng.random())
                })
                .collect();
            let student = Student { template: &template, loss: &student_loss, shape: [m, l, n, f, h], alpha };
            let (loss, gx, gy, galpha) = student.match_grad(start, target, &xs, &ys, &steps, device);
            sum += loss;
            let mut grads = GradientsParams::new();
            grads.register(syn.x.id, tensor4(gx, [m, l, n, f], device));
            grads.register(syn.y.id, tensor3(gy, [m, h, n], device));
            syn = optim.step(cfg.lr_data, syn, grads);
            alpha = (alpha as f64 - c.lr_lr * galpha).max(1e-6) as f32;
            let done = it * cfg.inner + step + 1;
            if let Some(expert) = expert.as_ref().filter(|_| done % cfg.condtsf.every.max(1) == 0) {
                let xs: Vec<f32> = syn.x.val().into_data().convert::<f32>().try_into_vec().expect("f32");
                let fx = tensor3(expert(&xs, m), [m, h, n], device);
                let beta = cfg.condtsf.beta as f32;
                syn.y = syn.y.map(|t| (t.detach() * (1.0 - beta) + fx * beta).detach().require_grad());
            }
        }
        history.push((it + 1, sum / cfg.inner.max(1) as f64));
        progress(&cfg.method, started, format_args!("outer {}/{}: mean normalised trajectory distance {:.4}", it + 1, cfg.outer, history[it].1));
        if (it + 1) % cfg.eval_every.max(1) == 0 || it + 1 == cfg.outer {
            let mut cand = init.clone();
            cand.x = syn.x.val().into_data().convert::<f32>().try_into_vec().expect("f32");
            cand.y = syn.y.val().into_data().convert::<f32>().try_into_vec().expect("f32");
            keep_best(&mut best, cand, real, cfg, it, device);
        }
    }
    let mut out = best.unwrap_or(init);
    out.history = history;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{small_data, tiny};

    /// The adjoint gradient of the trajectory loss (synthetic inputs, targets, student rate)
    /// against central differences of the loss itself, on a smooth student (a tanh network:
    /// MTGNN's ReLUs and top-k graph make the loss piecewise smooth, where finite differences
    /// measure jumps).
    #[test]
    fn adjoint_gradient_equals_finite_differences_of_the_loss() {
        use burn::nn::{Linear, LinearConfig};
        #[derive(burn::module::Module, Debug)]
        struct Net {
            a: Linear,
            b: Linear,
        }
        let (m, l, n, f, h) = (3, 4, 2, 1, 3);
        let device = Device::flex().autodiff();
        device.seed(11);
        let template = Net { a: LinearConfig::new(l * n * f, 6).init(&device), b: LinearConfig::new(6, h * n).init(&device) };
        let loss = |net: &Net, x: Tensor<4>, y: Tensor<3>| {
            let b = x.dims()[0];
            let p = net.b.forward(burn::tensor::activation::tanh(net.a.forward(x.reshape([b, l * n * f]))));
            (p - y.reshape([b, h * n])).powi_scalar(2).mean()
        };
        let student = Student { template: &template, loss: &loss, shape: [m, l, n, f, h], alpha: 0.3 };
        let start = param_values(&template);
        let xs: Vec<f32> = (0..m * l * n * f).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let ys: Vec<f32> = (0..m * h * n).map(|i| ((i * 5 % 7) as f32 - 3.0) / 3.0).collect();
        let steps: Vec<(Vec<usize>, u64)> = vec![(vec![0, 1, 2], 1), (vec![2, 0], 2), (vec![1, 2, 0], 3), (vec![1], 4)];
        // The target is where the same steps lead from other data.
        let shift = |v: &[f32], k: usize| -> Vec<f32> { v.iter().enumerate().map(|(i, a)| a + 0.5 * (((i * k) % 13) as f32 / 6.0 - 1.0)).collect() };
        let target = student.unroll(&start, &shift(&xs, 7), &shift(&ys, 5), &steps, &device).0.pop().unwrap();
        let (value, gx, gy, galpha) = student.match_grad(&start, &target, &xs, &ys, &steps, &device);
        assert!(value > 0.0 && value.is_finite());
        let (ux, uy): (Vec<f32>, Vec<f32>) = ((0..xs.len()).map(|i| ((i * 3 % 5) as f32 - 2.0) / 2.0).collect(), (0..ys.len()).map(|i| (i * 2 % 3) as f32 - 1.0).collect());
        let e = 1e-2f32;
        let at = |s: f32| {
            let x: Vec<f32> = xs.iter().zip(&ux).map(|(a, u)| a + s * e * u).collect();
            let y: Vec<f32> = ys.iter().zip(&uy).map(|(a, u)| a + s * e * u).collect();
            student.loss(&start, &target, &x, &y, &steps, &device)
        };
        let fd = (at(1.0) - at(-1.0)) / (2.0 * e as f64);
        let analytic: f64 = gx.iter().zip(&ux).chain(gy.iter().zip(&uy)).map(|(g, u)| *g as f64 * *u as f64).sum();
        assert!(fd.abs() > 1e-2, "a non-trivial direction: {fd}");
        assert!((fd - analytic).abs() < 0.05 * fd.abs(), "finite differences {fd} vs adjoint {analytic}");
        let with_alpha = |a: f32| Student { template: &template, loss: &loss, shape: [m, l, n, f, h], alpha: a }.loss(&start, &target, &xs, &ys, &steps, &device);
        let fd_alpha = (with_alpha(0.3 + 1e-3) - with_alpha(0.3 - 1e-3)) / 2e-3;
        assert!(fd_alpha.abs() > 1e-2 && (fd_alpha - galpha).abs() < 0.05 * fd_alpha.abs(), "finite differences {fd_alpha} vs adjoint {galpha}");
    }

    /// The expert buffer is written once and read back identically; a buffer of another shape
    /// is refused with its path and both shapes.
    #[test]
    fn expert_buffer_round_trips_and_is_checked() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let path = std::env::temp_dir().join(format!("strata-experts-{}.npy", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut cfg = tiny();
        cfg.mtt.buffer = Some(path.clone());
        let trained = experts(&real, &cfg, &device).unwrap();
        assert_eq!((trained.len(), trained[0].len()), (2, 3));
        assert_ne!(trained[0][0], trained[0][2], "the experts moved");
        let read = experts(&real, &cfg, &device).unwrap();
        assert_eq!(read, trained);
        cfg.mtt.expert_epochs = 3;
        let err = experts(&real, &cfg, &device).unwrap_err().to_string();
        assert!(err.contains("strata-experts") && err.contains("[2, 3,") && err.contains("[2, 4,"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
