//! TimeMixer (Wang et al., ICLR 2024), channel-independent, as Time-Series-Library builds it:
//! the window is average-pooled into `down_sampling_layers + 1` scales, each normalised (RevIN)
//! and embedded per channel (circular value conv + calendar features, no positions); Past
//! Decomposable Mixing blocks split every scale into seasonal and trend parts (moving average),
//! mix seasons bottom-up (fine to coarse) and trends top-down (coarse to fine) with MLPs over
//! time, and add a feed-forward of the sum; Future Multipredictor Mixing maps every scale to the
//! horizon with its own linear layer and sums the predictions.
//!
//! Calendar features: TSLib pairs each channel's series with the calendar features of another
//! window (`x_mark.repeat(N, 1, 1)` against a `(batch, channel)`-major reshape), which leaves
//! them uninformative; by default (`use_marks = false`) strata leaves them out, and with
//! `use_marks = true` every series gets its own window's features.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::lsf::dlinear::moving_average_matrix;
use crate::kernels::gelu::gelu;
use crate::layers::revin::RevIN;
use crate::lsf::transformer::{Embedding, TokenInit};
use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, values};

/// TimeMixer hyper-parameters (the authors' ETTh1 script: d_model 16, d_ff 32, 2 layers,
/// 3 down-sampling layers of window 2, moving average 25).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeMixerConfig {
    pub d_model: usize,
    pub d_ff: usize,
    pub e_layers: usize,
    pub down_sampling_layers: usize,
    pub down_sampling_window: usize,
    pub moving_avg: usize,
    pub dropout: f64,
    /// RevIN on every scale.
    pub use_norm: bool,
    /// Embed the calendar features with the values. TSLib pairs each series with another
    /// window's features (see the module docs), so its published numbers come from a model that
    /// cannot use them; `false` (the default) reproduces that, `true` pairs them correctly.
    pub use_marks: bool,
    /// How the value embedding's conv is initialised (TSLib's by default).
    pub token_init: TokenInit,
}

impl Default for TimeMixerConfig {
    fn default() -> Self {
        TimeMixerConfig { d_model: 16, d_ff: 32, e_layers: 2, down_sampling_layers: 3, down_sampling_window: 2, moving_avg: 25, dropout: 0.1, use_norm: true, use_marks: false, token_init: TokenInit::Tslib }
    }
}

/// `Linear -> GELU -> Linear`.
#[derive(Module, Debug)]
pub struct Mlp {
    a: Linear,
    b: Linear,
}

impl Mlp {
    fn new(i: usize, h: usize, o: usize, device: &Device) -> Self {
        Mlp { a: LinearConfig::new(i, h).init(device), b: LinearConfig::new(h, o).init(device) }
    }
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.b.forward(gelu(self.a.forward(x)))
    }
}

/// One Past Decomposable Mixing block over every scale (`[series, time_i, d_model]`).
#[derive(Module, Debug)]
pub struct Pdm {
    /// Moving-average matrices `[t_i, t_i]` of each scale (constants).
    avg: Vec<Tensor<2>>,
    season_down: Vec<Mlp>,
    trend_up: Vec<Mlp>,
    out: Mlp,
}

impl Pdm {
    fn forward(&self, xs: Vec<Tensor<3>>) -> Vec<Tensor<3>> {
        // Decompose; mix along time, so work on [series, d_model, time].
        let mut season = Vec::with_capacity(xs.len());
        let mut trend = Vec::with_capacity(xs.len());
        for (x, a) in xs.iter().zip(&self.avg) {
            let tr = a.clone().unsqueeze::<3>().matmul(x.clone());
            season.push((x.clone() - tr.clone()).swap_dims(1, 2));
            trend.push(tr.swap_dims(1, 2));
        }
        // Seasons bottom-up: each coarser scale adds a down-mapped finer one.
        let mut out_season = vec![season[0].clone()];
        for i in 0..season.len() - 1 {
            let next = season[i + 1].clone() + self.season_down[i].forward(out_season[i].clone());
            out_season.push(next);
        }
        // Trends top-down: each finer scale adds an up-mapped coarser one.
        let k = trend.len();
        let mut out_trend = vec![trend[k - 1].clone()];
        for (j, up) in self.trend_up.iter().enumerate() {
            let finer = trend[k - 2 - j].clone() + up.forward(out_trend[j].clone());
            out_trend.push(finer);
        }
        out_trend.reverse();
        xs.into_iter()
            .zip(out_season.into_iter().zip(out_trend))
            .map(|(x, (s, t))| x + self.out.forward((s + t).swap_dims(1, 2)))
            .collect()
    }
}

#[derive(Module, Debug)]
pub struct TimeMixer {
    norms: Vec<RevIN>,
    embed: Embedding,
    blocks: Vec<Pdm>,
    predict: Vec<Linear>,
    projection: Linear,
    window: usize,
    use_norm: bool,
}

impl TimeMixerConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: false, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, device: &Device) -> TimeMixer {
        let (l, h, c, d, w) = (shape.seq_len, shape.pred_len, shape.channels, self.d_model, self.down_sampling_window);
        let lens: Vec<usize> = (0..=self.down_sampling_layers).map(|i| l / w.pow(i as u32)).collect();
        assert!(lens.iter().all(|&t| t > 0), "timemixer: seq_len {l} is too short for {} down-sampling layers of {w}", self.down_sampling_layers);
        let blocks = (0..self.e_layers)
            .map(|_| Pdm {
                avg: lens.iter().map(|&t| Tensor::from_data(TensorData::new(moving_average_matrix(t, self.moving_avg), [t, t]), device)).collect(),
                season_down: (0..self.down_sampling_layers).map(|i| Mlp::new(lens[i], lens[i + 1], lens[i + 1], device)).collect(),
                trend_up: (0..self.down_sampling_layers).rev().map(|i| Mlp::new(lens[i + 1], lens[i], lens[i], device)).collect(),
                out: Mlp::new(d, self.d_ff, d, device),
            })
            .collect();
        TimeMixer {
            norms: lens.iter().map(|_| RevIN::new(c, true, false, device)).collect(),
            embed: Embedding::new(1, if self.use_marks { shape.marks } else { 0 }, d, 0, self.dropout, self.token_init, device),
            blocks,
            predict: lens.iter().map(|&t| LinearConfig::new(t, h).init(device)).collect(),
            projection: LinearConfig::new(d, 1).init(device),
            window: w,
            use_norm: self.use_norm,
        }
    }
}

impl TimeMixer {
    /// `x`: `[batch, seq_len, channels]`, `marks`: `[batch, seq_len, m]` -> `[batch, pred_len, channels]`.
    pub fn forward(&self, x: Tensor<3>, marks: Option<Tensor<3>>) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let scales = self.norms.len();
        // Average-pool the window (and subsample the calendar features) into every scale.
        let mut xs = vec![x];
        let mut ms = vec![marks];
        for _ in 1..scales {
            let prev = xs.last().unwrap().clone();
            let t = prev.dims()[1] / self.window;
            let pooled = prev.narrow(1, 0, t * self.window).reshape([b, t, self.window, c]).mean_dim(2).reshape([b, t, c]);
            xs.push(pooled);
            let m = ms.last().unwrap().clone().map(|m| {
                let [_, mt, mw] = m.dims();
                let idx: Vec<i64> = (0..mt).step_by(self.window).take(t).map(|i| i as i64).collect();
                m.select(1, Tensor::from_data(TensorData::new(idx, [t]), &xs[0].device())).reshape([b, t, mw])
            });
            ms.push(m);
        }
        let mut stats0 = None;
        let mut enc = Vec::with_capacity(scales);
        for (i, (x, m)) in xs.into_iter().zip(ms).enumerate() {
            let t = x.dims()[1];
            let x = if self.use_norm {
                let (y, s) = self.norms[i].norm(x);
                if i == 0 {
                    stats0 = Some(s);
                }
                y
            } else {
                x
            };
            // Channel independence: every (window, channel) is one univariate series.
            let series = x.swap_dims(1, 2).reshape([b * c, t, 1]);
            let m = m.map(|m| {
                let mw = m.dims()[2];
                m.unsqueeze_dim::<4>(1).expand([b as i64, c as i64, t as i64, mw as i64]).reshape([b * c, t, mw])
            });
            enc.push(self.embed.forward(series, m));
        }
        for block in &self.blocks {
            enc = block.forward(enc);
        }
        let mut out: Option<Tensor<3>> = None;
        for (e, p) in enc.into_iter().zip(&self.predict) {
            let y = self.projection.forward(p.forward(e.swap_dims(1, 2)).swap_dims(1, 2)); // [b*c, h, 1]
            out = Some(match out {
                Some(o) => o + y,
                None => y,
            });
        }
        let y = out.expect("at least one scale");
        let h = y.dims()[1];
        let y = y.reshape([b, c, h]).swap_dims(1, 2);
        match (self.use_norm, stats0) {
            (true, Some(s)) => self.norms[0].denorm(y, &s),
            _ => y,
        }
    }
}

impl Architecture for TimeMixerConfig {
    type Module = TimeMixer;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<TimeMixer, String> {
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for TimeMixer {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        self.forward(values(x), marks.map(|m| m.x))
    }
}
