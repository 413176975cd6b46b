//! The engine on a two-parameter model whose answers are known in closed form.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Tensor, TensorData};

use super::checkpoint::TrainState;
use super::schedule::Rate;
use super::*;
use crate::config::Optimizer;

#[derive(Module, Debug)]
struct Two {
    a: Param<Tensor<1>>,
    b: Param<Tensor<1>>,
}

fn scalar(v: f32, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(vec![v], [1]), device)
}

fn value(p: &Param<Tensor<1>>) -> f32 {
    p.val().into_scalar()
}

/// Loss `(a - 3)^2 + (b - 5)^2` from `a = b = 0`; `b` may train in a second group.
struct Quadratic {
    rounds: usize,
    steps: usize,
    patience: usize,
    rates: Vec<f64>,
    /// Validation losses by round (the default: the training loss).
    val: Option<Vec<f64>>,
    nan_at: Option<usize>,
    /// A step at which `b`'s gradient is NaN while the loss stays finite.
    nan_grad_at: Option<usize>,
    detect: bool,
}

impl Quadratic {
    fn new(rounds: usize, steps: usize, rates: Vec<f64>) -> Self {
        Quadratic { rounds, steps, patience: usize::MAX, rates, val: None, nan_at: None, nan_grad_at: None, detect: false }
    }
}

impl Job for Quadratic {
    type Model = Two;

    fn seed(&self) -> u64 {
        1
    }
    fn plan(&self) -> Plan {
        Plan { rounds: self.rounds, steps_per_round: self.steps, total_steps: self.rounds * self.steps, patience: self.patience, batches: Batches::Drawn, unit: "epoch", activity: "training" }
    }
    fn build(&mut self, device: &Device) -> Result<Two> {
        Ok(Two { a: Param::from_tensor(scalar(0.0, device)), b: Param::from_tensor(scalar(0.0, device)) })
    }
    fn groups(&self) -> Vec<Group> {
        let spec = OptimizerSpec { kind: Optimizer::Adam, betas: None, epsilon: Some(1e-8), weight_decay: None, grad_clip: None };
        self.rates.iter().enumerate().map(|(i, &lr)| Group::new(&spec, Rate::Constant(lr), if i == 0 { "optimizer.bpk" } else { "optimizer_b.bpk" })).collect()
    }
    fn describe(&self, _model: &Two, _device: &Device) -> String {
        String::new()
    }
    fn detect_anomaly(&self) -> bool {
        self.detect
    }
    fn loss(&mut self, model: &Two, step: &Step, device: &Device) -> Result<StepLoss> {
        let mut loss = (model.a.val() - 3.0).powi_scalar(2) + (model.b.val() - 5.0).powi_scalar(2);
        if self.nan_grad_at == Some(step.global) {
            // relu(-(b + 1) * inf) = relu(-inf) = 0 for b > -1: the loss is unchanged, and b's
            // gradient is relu'(-inf) * -inf = 0 * -inf = NaN.
            loss = loss + burn::tensor::activation::relu((model.b.val() + 1.0) * scalar(f32::NEG_INFINITY, device));
        }
        let mut s = StepLoss::of(loss);
        if self.nan_at == Some(step.global) {
            s.value = f32::NAN;
        }
        Ok(s)
    }
    fn split_grads(&self, model: &Two, mut grads: Gradients) -> Vec<GradientsParams> {
        if self.rates.len() == 1 {
            return vec![GradientsParams::from_grads(grads, model)];
        }
        let b = GradientsParams::from_module(&mut grads, &model.b);
        vec![GradientsParams::from_grads(grads, model), b]
    }
    fn validate(&mut self, model: &Two, round: usize, _device: &Device) -> Option<f64> {
        match &self.val {
            Some(v) => Some(v[round]),
            None => Some(((value(&model.a) - 3.0).powi(2) + (value(&model.b) - 5.0).powi(2)) as f64),
        }
    }
}

fn device() -> Device {
    Device::flex().autodiff()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-engine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Adam's first step moves every parameter by its rate times the gradient's sign
/// (`m / sqrt(v) = g / |g|`): each group moves at its own rate.
#[test]
fn each_parameter_group_steps_at_its_own_rate() {
    let mut state = TrainState::default();
    let f = fit(&mut Quadratic::new(1, 1, vec![0.1, 0.01]), Store::Memory(&mut state), &device(), 1).unwrap();
    assert!((value(&f.model.a) - 0.1).abs() < 1e-6, "{}", value(&f.model.a));
    assert!((value(&f.model.b) - 0.01).abs() < 1e-6, "{}", value(&f.model.b));
    // One group: both at its rate.
    let mut state = TrainState::default();
    let f = fit(&mut Quadratic::new(1, 1, vec![0.1]), Store::Memory(&mut state), &device(), 1).unwrap();
    assert!((value(&f.model.b) - 0.1).abs() < 1e-6);
    assert_eq!((state.global_step, state.epochs_done), (1, 1));
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_the_step() {
    let mut job = Quadratic { nan_at: Some(4), ..Quadratic::new(2, 3, vec![0.1]) };
    let mut state = TrainState::default();
    let e = fit(&mut job, Store::Memory(&mut state), &device(), 2).err().expect("diverged").to_string();
    assert!(e.contains("diverged at epoch 2 step 2 (global step 5)"), "{e}");
}

#[test]
fn a_nan_gradient_is_named_with_detect_anomaly_and_through_the_parameter_without() {
    // detect_anomaly: stopped at the step whose gradient is NaN, naming it, the loss finite.
    let mut job = Quadratic { nan_grad_at: Some(2), detect: true, ..Quadratic::new(2, 3, vec![0.1]) };
    let e = fit(&mut job, Store::Memory(&mut TrainState::default()), &device(), 2).err().expect("stopped").to_string();
    assert!(e.contains("went non-finite at epoch 1 step 3 (global step 3)") && e.contains("the gradient of `b` [1]: 1 NaN"), "{e}");
    // Without it the NaN reaches `b` through Adam; the next loss is NaN and names `b`.
    let mut job = Quadratic { nan_grad_at: Some(2), ..Quadratic::new(2, 3, vec![0.1]) };
    let e = fit(&mut job, Store::Memory(&mut TrainState::default()), &device(), 2).err().expect("diverged").to_string();
    assert!(e.contains("diverged at epoch 2 step 1 (global step 4)") && e.contains("the parameter `b` [1]: 1 NaN"), "{e}");
}

#[test]
fn early_stopping_keeps_the_best_round_and_stops_after_patience() {
    // Rounds 1..6: 5, 3, 4, 4, 2, 1 with patience 2: round 2 is the best, 3 and 4 do not
    // improve, training stops after round 4.
    let mut job = Quadratic { patience: 2, val: Some(vec![5.0, 3.0, 4.0, 4.0, 2.0, 1.0]), ..Quadratic::new(6, 1, vec![0.1]) };
    let mut state = TrainState::default();
    let f = fit(&mut job, Store::Memory(&mut state), &device(), 6).unwrap();
    assert_eq!((state.epochs_done, state.best_epoch, state.stopped_early), (4, Some(2), true));
    // The best model is round 2's: two Adam steps of 0.1 (the gradient keeps its sign).
    assert!((value(&f.best.unwrap().a) - 0.2).abs() < 1e-3);
}

/// A run stopped after a round and resumed ends where an uninterrupted run ends, optimiser
/// states (both groups) included; a finished run folder trains no further.
#[test]
fn an_interrupted_run_resumes_exactly() {
    let config = "quadratic";
    let parse = |s: &str| Ok(s.to_string());
    let whole = tmp("whole");
    let mut run = Run::open(&whole, false, &config.to_string(), config, parse).unwrap();
    let a = fit(&mut Quadratic::new(3, 4, vec![0.1, 0.02]), Store::Folder(&mut run), &device(), 3).unwrap();
    let parts = tmp("parts");
    for until in [1, 2, 3] {
        let mut run = Run::open(&parts, false, &config.to_string(), config, parse).unwrap();
        assert_eq!(run.resumed_at, (until > 1).then_some(until - 1));
        fit(&mut Quadratic::new(3, 4, vec![0.1, 0.02]), Store::Folder(&mut run), &device(), until).unwrap();
    }
    let mut run = Run::open(&parts, false, &config.to_string(), config, parse).unwrap();
    let b = fit(&mut Quadratic::new(3, 4, vec![0.1, 0.02]), Store::Folder(&mut run), &device(), 3).unwrap();
    assert_eq!(run.state.global_step, 12);
    assert_eq!((value(&a.model.a), value(&a.model.b)), (value(&b.model.a), value(&b.model.b)));
    assert!(parts.join("optimizer_b.bpk").exists() && parts.join("best.bpk").exists());
    // Another configuration is refused.
    assert!(Run::open(&parts, false, &"other".to_string(), "other", parse).is_err());
    for d in [whole, parts] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn plans_stop_the_last_round_at_the_total() {
    let p = Plan { total_steps: 25, ..Plan::epochs(3, 100, 10, None, 3, 0) };
    assert_eq!((p.steps_per_round, p.steps_in(0), p.steps_in(2), p.steps_in(3)), (10, 10, 5, 0));
    assert_eq!(Plan::epochs(2, 95, 10, Some(4), 3, 0).total_steps, 8);
}

/// A caller's stop request (Ctrl-C in Python) ends the run before the next step with
/// `Interrupted`; the folder keeps the last finished epoch and resuming ends where an
/// uninterrupted run ends.
#[test]
fn a_stop_request_ends_the_run_at_a_step_and_it_resumes_exactly() {
    let config = "quadratic";
    let parse = |s: &str| Ok(s.to_string());
    let whole = tmp("stop-whole");
    let mut run = Run::open(&whole, false, &config.to_string(), config, parse).unwrap();
    let a = fit(&mut Quadratic::new(3, 4, vec![0.1]), Store::Folder(&mut run), &device(), 3).unwrap();
    let parts = tmp("stop-parts");
    let mut run = Run::open(&parts, false, &config.to_string(), config, parse).unwrap();
    // Stop at the 7th step check: in epoch 2, after 2 of its 4 steps.
    let asked = std::cell::Cell::new(0);
    let e = interrupt::with_check(
        move || {
            asked.set(asked.get() + 1);
            asked.get() == 7
        },
        || fit(&mut Quadratic::new(3, 4, vec![0.1]), Store::Folder(&mut run), &device(), 3).err().expect("stopped"),
    );
    assert_eq!(e.downcast_ref::<interrupt::Interrupted>(), Some(&interrupt::Interrupted { round: 2 }), "{e}");
    let state = TrainState::load(&parts.join("state.json")).unwrap();
    assert_eq!((state.epochs_done, state.global_step), (1, 4), "the checkpoint of epoch 1");
    let mut run = Run::open(&parts, false, &config.to_string(), config, parse).unwrap();
    let b = fit(&mut Quadratic::new(3, 4, vec![0.1]), Store::Folder(&mut run), &device(), 3).unwrap();
    assert_eq!((value(&a.model.a), value(&a.model.b)), (value(&b.model.a), value(&b.model.b)));
    for d in [whole, parts] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
