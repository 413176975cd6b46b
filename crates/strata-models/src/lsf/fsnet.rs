//! FSNet (Pham et al., "Learning Fast and Slow for Online Time Series Forecasting", ICLR 2023):
//! the TCN backbone (`tcn.rs`) whose dilated convolutions each carry a fast-learning adapter and
//! an associative memory, as the authors' code (`salesforce/fsnet`, `models/ts2vec/fsnet_.py`)
//! builds them.
//!
//! Every convolution of the residual blocks (not the 1x1 projections) keeps an exponential
//! moving average of its weight's gradient (`gamma` 0.9, each step's gradient L2-normalised over
//! the input channels) and a faster one (`f_gamma` 0.3). The slow average, cut into `c_in`
//! chunks, goes through a small controller (linear to 64, SiLU) whose three heads give the
//! calibrations: `w` (`[c_in, kernel]`) scales the weight, `b` scales the bias and `f` the
//! output, per channel: `out = f * conv(x, weight * w, bias * b)`. The controller trains with
//! the model. Online (after the warm-up), when the two averages point in opposite directions
//! (cosine below `-tau`, 0.75), the next forward reads the memory (`[calibrations, 32]`, fixed
//! at its Xavier draw until then): attention of the calibrations' EMA over the 32 slots, the top
//! two slots blended into the calibrations (weight 1 - tau), and written back. The reference
//! weights the two slots it reads by their indices (`ww @ idx`); strata does the same, to
//! reproduce its numbers.
//!
//! The averages, the memory and the trigger live outside the parameters: the training tasks
//! feed each step's gradients in ([`crate::api::Forecast::observe_gradients`]) and checkpoint
//! them ([`crate::api::Forecast::extra_state`]).

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::silu;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, values};
use crate::kernels::gelu::gelu;
use crate::layers::dropout::Dropout;
use crate::lsf::tcn::{SameConv, embed, head};

/// FSNet hyper-parameters (the authors' code).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FSNetConfig {
    /// The TCN backbone (TS2Vec's: 64, 10, 320, kernel 3, dropout 0.1).
    pub hidden: usize,
    pub depth: usize,
    pub output: usize,
    pub kernel: usize,
    pub dropout: f64,
    pub use_marks: bool,
    /// Decay of the slow gradient average. Paper: 0.9.
    pub gamma: f32,
    /// Decay of the fast gradient average (and of the calibrations' average). Paper: 0.3.
    pub f_gamma: f32,
    /// Trigger and blending threshold. Paper: 0.75.
    pub tau: f32,
    /// Width of the controller. Paper: 64.
    pub controller: usize,
    /// Memory slots. Paper: 32.
    pub slots: usize,
}

impl Default for FSNetConfig {
    fn default() -> Self {
        FSNetConfig { hidden: 64, depth: 10, output: 320, kernel: 3, dropout: 0.1, use_marks: true, gamma: 0.9, f_gamma: 0.3, tau: 0.75, controller: 64, slots: 32 }
    }
}

/// One adaptive convolution's state outside the parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConvState {
    /// Slow and fast averages of the normalised weight gradient (`[c_out, c_in, k]` flat).
    pub grads: Vec<f32>,
    pub f_grads: Vec<f32>,
    /// The calibrations' average (`None` before the first forward).
    pub q_ema: Option<Vec<f32>>,
    pub trigger: bool,
    /// `[calibrations, slots]`, row-major.
    pub memory: Vec<f32>,
    /// Memory reads so far.
    pub reads: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FsState {
    pub convs: Vec<ConvState>,
}

/// A convolution with FSNet's adapter (`fsnet_.py`'s `SamePadConv`).
#[derive(Module, Debug)]
pub struct AdaptiveConv {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
    pub controller: Linear,
    pub calib_w: Linear,
    pub calib_b: Linear,
    pub calib_f: Linear,
    pub dilation: usize,
    /// Its slot in the model's state.
    pub slot: usize,
}

#[derive(Module, Debug)]
pub struct FsBlock {
    pub conv1: AdaptiveConv,
    pub conv2: AdaptiveConv,
    pub projector: Option<SameConv>,
}

#[derive(Module, Debug)]
pub struct FSNet {
    pub input_fc: Linear,
    pub blocks: Vec<FsBlock>,
    pub repr_dropout: Dropout,
    pub regressor: Linear,
    pub pred_len: usize,
    pub channels: usize,
    pub use_marks: bool,
    pub f_gamma: f32,
    pub gamma: f32,
    pub tau: f32,
    #[module(skip)]
    pub state: Arc<Mutex<FsState>>,
}

fn l2(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

impl AdaptiveConv {
    fn new(c_in: usize, c_out: usize, cfg: &FSNetConfig, dilation: usize, slot: usize, device: &Device) -> (Self, ConvState) {
        let k = cfg.kernel;
        assert!(c_out % c_in == 0, "fsnet: a block's output width ({c_out}) is a multiple of its input width ({c_in})");
        let bound = 1.0 / ((c_in * k) as f64).sqrt();
        let per = c_out / c_in;
        let conv = AdaptiveConv {
            weight: Param::from_tensor(Tensor::random([c_out, c_in, k], Distribution::Uniform(-bound, bound), device)),
            bias: Param::from_tensor(Tensor::zeros([c_out], device)),
            controller: LinearConfig::new(c_out * k, cfg.controller).init(device),
            calib_w: LinearConfig::new(cfg.controller, k).init(device),
            calib_b: LinearConfig::new(cfg.controller, per).init(device),
            calib_f: LinearConfig::new(cfg.controller, per).init(device),
            dilation,
            slot,
        };
        // The memory: Xavier-uniform `[calibrations, slots]`, scaled to Frobenius norm <= 1.
        let dim = c_in * k + 2 * c_out;
        let a = (6.0 / (dim + cfg.slots) as f64).sqrt();
        let mut memory: Vec<f32> = Tensor::<2>::random([dim, cfg.slots], Distribution::Uniform(-a, a), device).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        let norm = l2(&memory).max(1.0);
        memory.iter_mut().for_each(|v| *v /= norm);
        let n = c_out * c_in * k;
        (conv, ConvState { grads: vec![0.0; n], f_grads: vec![0.0; n], q_ema: None, trigger: false, memory, reads: 0 })
    }

    /// The calibrations `(w [c_in, k], b [c_out], f [c_out])` from the state (reading the memory
    /// when triggered).
    fn calibrations(&self, s: &mut ConvState, f_gamma: f32, tau: f32, device: &Device) -> (Tensor<2>, Tensor<1>, Tensor<1>) {
        let [c_out, c_in, k] = self.weight.dims();
        let per = c_out / c_in;
        let g = Tensor::<2>::from_data(TensorData::new(s.grads.clone(), [c_in, c_out * k]), device);
        let rep = silu(self.controller.forward(g));
        let (w, b, f) = (self.calib_w.forward(rep.clone()), self.calib_b.forward(rep.clone()), self.calib_f.forward(rep));
        let host = |t: &Tensor<2>| t.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        let q: Vec<f32> = [host(&w), host(&b), host(&f)].concat();
        let q = match s.q_ema.as_mut() {
            None => {
                s.q_ema = Some(vec![0.0; q.len()]);
                q
            }
            Some(e) => {
                e.iter_mut().zip(&q).for_each(|(e, q)| *e = f_gamma * *e + (1.0 - f_gamma) * q);
                e.clone()
            }
        };
        let (mut w, mut b, mut f) = (w, b, f);
        if s.trigger {
            s.trigger = false;
            s.reads += 1;
            let slots = s.memory.len() / q.len();
            let att: Vec<f32> = (0..slots).map(|j| q.iter().enumerate().map(|(i, qi)| qi * s.memory[i * slots + j]).sum::<f32>() / 0.5).collect();
            let max = att.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f32 = att.iter().map(|a| (a - max).exp()).sum();
            let att: Vec<f32> = att.iter().map(|a| (a - max).exp() / z).collect();
            let mut order: Vec<usize> = (0..slots).collect();
            order.sort_by(|&a, &b| att[b].total_cmp(&att[a]));
            let top = [order[0], order[1]];
            // The reference's read: the two slots weighted by their indices.
            let old: Vec<f32> = (0..q.len()).map(|i| top.iter().map(|&j| s.memory[i * slots + j] * j as f32).sum()).collect();
            for &j in &top {
                for (i, o) in old.iter().enumerate() {
                    let m = &mut s.memory[i * slots + j];
                    *m = tau * *m + (1.0 - tau) * o * att[j];
                }
            }
            let norm = l2(&s.memory).max(1.0);
            s.memory.iter_mut().for_each(|v| *v /= norm);
            let part = |from: usize, rows: usize, cols: usize| Tensor::<2>::from_data(TensorData::new(old[from..from + rows * cols].to_vec(), [rows, cols]), device);
            w = w.mul_scalar(tau) + part(0, c_in, k).mul_scalar(1.0 - tau);
            b = b.mul_scalar(tau) + part(c_in * k, c_in, per).mul_scalar(1.0 - tau);
            f = f.mul_scalar(tau) + part(c_in * k + c_out, c_in, per).mul_scalar(1.0 - tau);
        }
        (w, b.reshape([c_out]), f.reshape([c_out]))
    }

    fn forward(&self, x: Tensor<3>, state: &mut FsState, f_gamma: f32, tau: f32) -> Tensor<3> {
        let device = x.device();
        let [_, _, t] = x.dims();
        let [c_out, _, k] = self.weight.dims();
        let (w, b, f) = self.calibrations(&mut state.convs[self.slot], f_gamma, tau, &device);
        let weight = self.weight.val() * w.unsqueeze_dim::<3>(0);
        let bias = self.bias.val() * b;
        let out = if k % 2 == 1 && self.dilation >= t {
            // Only the centre tap meets the zero-padded window (tcn.rs).
            conv1d(x, weight.narrow(2, k / 2, 1), Some(bias), ConvOptions::new([1], [0], [1], 1))
        } else {
            conv1d(x, weight, Some(bias), ConvOptions::new([1], [(k - 1) * self.dilation / 2], [self.dilation], 1))
        };
        out * f.reshape([1, c_out, 1])
    }

    /// FSNet's `store_grad`: update the averages from this step's weight gradient; online, a
    /// reversal of direction triggers a memory read at the next forward.
    fn store(&self, grads: &GradientsParams, s: &mut ConvState, gamma: f32, f_gamma: f32, tau: f32, online: bool) {
        let Some(g) = grads.get::<3>(self.weight.id) else { return };
        let [c_out, c_in, k] = g.dims();
        let mut g: Vec<f32> = g.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
        // F.normalize over the input channels (dim 1), eps 1e-12.
        for o in 0..c_out {
            for j in 0..k {
                let norm = (0..c_in).map(|i| g[(o * c_in + i) * k + j].powi(2)).sum::<f32>().sqrt().max(1e-12);
                (0..c_in).for_each(|i| g[(o * c_in + i) * k + j] /= norm);
            }
        }
        s.f_grads.iter_mut().zip(&g).for_each(|(f, g)| *f = f_gamma * *f + (1.0 - f_gamma) * g);
        if online {
            let dot: f32 = s.f_grads.iter().zip(&s.grads).map(|(a, b)| a * b).sum();
            let cos = dot / (l2(&s.f_grads) * l2(&s.grads)).max(1e-6);
            if cos < -tau {
                s.trigger = true;
            }
        }
        s.grads.iter_mut().zip(&g).for_each(|(a, g)| *a = gamma * *a + (1.0 - gamma) * g);
    }
}

impl FsBlock {
    fn forward(&self, x: Tensor<3>, state: &mut FsState, f_gamma: f32, tau: f32) -> Tensor<3> {
        let residual = match &self.projector {
            Some(p) => p.forward(x.clone()),
            None => x.clone(),
        };
        let h = self.conv1.forward(gelu(x), state, f_gamma, tau);
        self.conv2.forward(gelu(h), state, f_gamma, tau) + residual
    }
}

impl FSNetConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, device: &Device) -> FSNet {
        let marks = if self.use_marks { shape.marks } else { 0 };
        let widths: Vec<usize> = std::iter::repeat_n(self.hidden, self.depth).chain([self.output]).collect();
        let mut state = FsState::default();
        let mut blocks = vec![];
        for (i, &w) in widths.iter().enumerate() {
            let c_in = if i == 0 { self.hidden } else { widths[i - 1] };
            let (conv1, s1) = AdaptiveConv::new(c_in, w, self, 1 << i, state.convs.len(), device);
            state.convs.push(s1);
            let (conv2, s2) = AdaptiveConv::new(w, w, self, 1 << i, state.convs.len(), device);
            state.convs.push(s2);
            let projector = (c_in != w || i == widths.len() - 1).then(|| SameConv::pointwise(c_in, w, device));
            blocks.push(FsBlock { conv1, conv2, projector });
        }
        FSNet {
            input_fc: LinearConfig::new(shape.channels + marks, self.hidden).init(device),
            blocks,
            repr_dropout: Dropout::new(self.dropout),
            regressor: LinearConfig::new(self.output, shape.channels * shape.pred_len).init(device),
            pred_len: shape.pred_len,
            channels: shape.channels,
            use_marks: marks > 0,
            f_gamma: self.f_gamma,
            gamma: self.gamma,
            tau: self.tau,
            state: Arc::new(Mutex::new(state)),
        }
    }
}

impl FSNet {
    /// `x`: `[b, seq_len, channels]`, `marks`: `[b, seq_len, m]` -> `[b, pred_len, channels]`.
    pub fn forecast(&self, x: Tensor<3>, marks: Option<Tensor<3>>) -> Tensor<3> {
        let mut h = embed(&self.input_fc, x, marks.filter(|_| self.use_marks));
        let mut state = self.state.lock().expect("fsnet state");
        for block in &self.blocks {
            h = block.forward(h, &mut state, self.f_gamma, self.tau);
        }
        head(h, &self.repr_dropout, &self.regressor, self.pred_len, self.channels)
    }

    /// Memory reads so far, over every convolution.
    pub fn memory_reads(&self) -> u64 {
        self.state.lock().expect("fsnet state").convs.iter().map(|c| c.reads).sum()
    }
}

impl Architecture for FSNetConfig {
    type Module = FSNet;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    fn check(&self, _shape: &Shape, _has_graph: bool) -> Result<(), String> {
        if self.kernel % 2 == 0 || self.hidden == 0 || self.output % self.hidden != 0 {
            return Err(format!("fsnet: model.kernel must be odd and model.output a multiple of model.hidden (got {}, {}, {})", self.kernel, self.output, self.hidden));
        }
        if self.depth > 20 || self.slots < 2 {
            return Err("fsnet: model.depth at most 20, model.slots at least 2".into());
        }
        Ok(())
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<FSNet, String> {
        self.check(&shape, false)?;
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![FSNetConfig { hidden: 16, depth: 3, output: 32, controller: 16, slots: 4, dropout: 0.0, ..Self::default() }]
    }
}

impl Forecast for FSNet {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        self.forecast(values(x), marks.map(|m| m.x))
    }
    fn observe_gradients(&self, grads: &GradientsParams, online: bool) {
        let mut state = self.state.lock().expect("fsnet state");
        for block in &self.blocks {
            for conv in [&block.conv1, &block.conv2] {
                conv.store(grads, &mut state.convs[conv.slot], self.gamma, self.f_gamma, self.tau, online);
            }
        }
    }
    fn extra_state(&self) -> Option<String> {
        serde_json::to_string(&*self.state.lock().expect("fsnet state")).ok()
    }
    fn restore_extra_state(&self, json: &str) -> Result<(), String> {
        let s: FsState = serde_json::from_str(json).map_err(|e| format!("fsnet state: {e}"))?;
        let mut state = self.state.lock().expect("fsnet state");
        if s.convs.len() != state.convs.len() || s.convs.iter().zip(&state.convs).any(|(a, b)| a.grads.len() != b.grads.len() || a.memory.len() != b.memory.len()) {
            return Err("fsnet state: saved for another shape of the model".into());
        }
        *state = s;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (FSNet, Device) {
        let d = Device::flex().autodiff();
        let cfg = FSNetConfig { hidden: 2, depth: 1, output: 2, kernel: 1, controller: 4, slots: 3, ..FSNetConfig::default() };
        (cfg.init(Shape::lsf(4, 1, 1), &d), d)
    }

    /// Gradients of the model's loss for a fixed input, as the training tasks pass them.
    fn grads(m: &FSNet, d: &Device, sign: f32) -> GradientsParams {
        let x = Tensor::<3>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [1, 4, 1]), d);
        let y = m.forecast(x, None).sum().mul_scalar(sign);
        GradientsParams::from_grads(y.backward(), m)
    }

    #[test]
    fn gradient_averages_follow_the_reference_update() {
        let (m, d) = tiny();
        let g = grads(&m, &d, 1.0);
        let raw: Vec<f32> = g.get::<3>(m.blocks[0].conv1.weight.id).unwrap().into_data().try_to_vec().unwrap();
        // [c_out 2, c_in 2, k 1]: normalised over the input channels for each output channel.
        let norm = |o: usize| (raw[o * 2].powi(2) + raw[o * 2 + 1].powi(2)).sqrt();
        let want: Vec<f32> = (0..4).map(|i| raw[i] / norm(i / 2)).collect();
        m.observe_gradients(&g, false);
        let s = m.state.lock().unwrap().convs[0].clone();
        for i in 0..4 {
            assert!((s.grads[i] - 0.1 * want[i]).abs() < 1e-6, "slow average {i}");
            assert!((s.f_grads[i] - 0.7 * want[i]).abs() < 1e-6, "fast average {i}");
        }
        assert!(!s.trigger, "no trigger while training");
    }

    /// A gradient `sign * [1, 2, 3, 4]` for the first convolution's weight only.
    fn crafted(m: &FSNet, d: &Device, sign: f32) -> GradientsParams {
        let mut g = GradientsParams::new();
        let t = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2, 1]), d).mul_scalar(sign);
        g.register(m.blocks[0].conv1.weight.id, t);
        g
    }

    #[test]
    fn a_reversed_gradient_online_reads_the_memory_once() {
        let (m, d) = tiny();
        m.observe_gradients(&crafted(&m, &d, 1.0), true);
        assert!(!m.state.lock().unwrap().convs[0].trigger, "same direction: no trigger");
        // The opposite gradient: fast average 0.3 * 0.7 g - 0.7 g = -0.49 g against the slow 0.1 g:
        // cosine -1 < -0.75.
        m.observe_gradients(&crafted(&m, &d, -1.0), true);
        let before = m.state.lock().unwrap().convs[0].clone();
        assert!(before.trigger);
        // Normalised per output channel over the inputs: [1, 2] / sqrt 5, [3, 4] / 5; slow average
        // 0.9 * 0.1 g - 0.1 g = -0.01 g.
        let g = [1.0 / 5f32.sqrt(), 2.0 / 5f32.sqrt(), 0.6, 0.8];
        for i in 0..4 {
            assert!((before.grads[i] + 0.01 * g[i]).abs() < 1e-6, "{i}: {}", before.grads[i]);
        }
        let x = Tensor::<3>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [1, 4, 1]), &d);
        let _ = m.forecast(x.clone(), None);
        let after = m.state.lock().unwrap().convs[0].clone();
        assert_eq!((after.reads, after.trigger), (1, false));
        assert_ne!(after.memory, before.memory, "the read writes the memory");
        assert!(l2(&after.memory) <= 1.0 + 1e-5);
        // The next forward does not read again; no other convolution was triggered.
        let _ = m.forecast(x, None);
        assert_eq!(m.memory_reads(), 1);
    }

    #[test]
    fn extra_state_round_trips_and_refuses_another_shape() {
        let (m, d) = tiny();
        m.observe_gradients(&grads(&m, &d, 1.0), false);
        let json = m.extra_state().unwrap();
        let (other, _) = tiny();
        other.restore_extra_state(&json).unwrap();
        assert_eq!(other.state.lock().unwrap().convs[0].grads, m.state.lock().unwrap().convs[0].grads);
        let big = FSNetConfig { hidden: 4, depth: 1, output: 4, kernel: 1, ..FSNetConfig::default() }.init(Shape::lsf(4, 1, 1), &d);
        assert!(big.restore_extra_state(&json).is_err());
    }
}
