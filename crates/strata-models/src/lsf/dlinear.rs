//! DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023).
//!
//! The window is split by a moving average (replicate padding) into trend and seasonal parts;
//! each part is mapped from `seq_len` to `pred_len` steps by one linear layer shared by all
//! channels (or one per channel with `individual`), and the two forecasts are added.
//! The moving average is a constant `[seq_len, seq_len]` matrix, so decomposition is one matmul.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::api::{Architecture, Capabilities, Forecast, Forecaster, Marks, Shape, values};

/// DLinear hyper-parameters (defaults from the paper's scripts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DLinearConfig {
    /// Moving-average kernel of the decomposition (odd). Paper: 25.
    pub moving_avg: usize,
    /// One linear map per channel instead of one shared by all. Paper's ETT scripts: false.
    pub individual: bool,
    /// Start the weights at `1/seq_len` (an average of the window), as Time-Series-Library does;
    /// false uses the default uniform initialisation.
    pub mean_init: bool,
}

impl Default for DLinearConfig {
    fn default() -> Self {
        DLinearConfig { moving_avg: 25, individual: false, mean_init: true }
    }
}

impl DLinearConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: false, probabilistic: false, exogenous: false, attention: false };

    pub fn init(&self, shape: Shape, device: &Device) -> DLinear {
        assert!(self.moving_avg % 2 == 1, "dlinear moving_avg must be odd, got {}", self.moving_avg);
        let Shape { seq_len: l, pred_len: h, channels: c, .. } = shape;
        let avg = TensorData::new(moving_average_matrix(l, self.moving_avg), [l, l]);
        let linear = |device: &Device| {
            let mut lin = LinearConfig::new(l, h).init(device);
            if self.mean_init {
                lin.weight = Param::from_tensor(Tensor::full([l, h], 1.0 / l as f32, device));
            }
            lin
        };
        let per_channel = |device: &Device| {
            let w = if self.mean_init {
                Tensor::full([c, l, h], 1.0 / l as f32, device)
            } else {
                let bound = 1.0 / (l as f64).sqrt();
                Tensor::random([c, l, h], Distribution::Uniform(-bound, bound), device)
            };
            let bound = 1.0 / (l as f64).sqrt();
            (Param::from_tensor(w), Param::from_tensor(Tensor::random([c, 1, h], Distribution::Uniform(-bound, bound), device)))
        };
        let (seasonal, trend) = match self.individual {
            false => (Some(linear(device)), Some(linear(device))),
            true => (None, None),
        };
        let (seasonal_individual, trend_individual) = match self.individual {
            true => (Some(per_channel(device)), Some(per_channel(device))),
            false => (None, None),
        };
        DLinear { avg_t: Tensor::from_data(avg, device).transpose(), seasonal, trend, seasonal_individual, trend_individual }
    }
}

/// `a[t][j]`: weight of input step `j` in the moving average at step `t`, with the window
/// padded by repeating the first and last values `(k-1)/2` times (PyTorch `AvgPool1d` on the
/// replicate-padded series, as DLinear computes it).
pub fn moving_average_matrix(l: usize, k: usize) -> Vec<f32> {
    let p = (k - 1) / 2;
    let mut a = vec![0f32; l * l];
    for t in 0..l {
        for i in 0..k {
            let j = (t + i).saturating_sub(p).min(l - 1);
            a[t * l + j] += 1.0 / k as f32;
        }
    }
    a
}

#[derive(Module, Debug)]
pub struct DLinear {
    /// Transposed moving-average matrix `[seq_len, seq_len]` (a constant, not a parameter).
    pub avg_t: Tensor<2>,
    pub seasonal: Option<Linear>,
    pub trend: Option<Linear>,
    /// Per-channel weights `[channels, seq_len, pred_len]` and biases `[channels, 1, pred_len]`
    /// when `individual`.
    pub seasonal_individual: Option<(Param<Tensor<3>>, Param<Tensor<3>>)>,
    pub trend_individual: Option<(Param<Tensor<3>>, Param<Tensor<3>>)>,
}

impl DLinear {
    /// Trend (moving average) and seasonal (remainder) parts of `x: [batch, channels, seq_len]`.
    pub fn decompose(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let trend = x.clone().matmul(self.avg_t.clone().unsqueeze::<3>());
        (trend.clone(), x - trend)
    }
}

impl Forecaster for DLinear {
    fn forecast(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.swap_dims(1, 2); // [b, c, l]
        let (trend, seasonal) = self.decompose(x);
        let out = match (&self.seasonal, &self.trend) {
            (Some(s), Some(t)) => s.forward(seasonal) + t.forward(trend),
            _ => {
                // [b, c, l] -> [c, b, l] @ [c, l, h] -> [c, b, h]
                let map = |x: Tensor<3>, wb: &Option<(Param<Tensor<3>>, Param<Tensor<3>>)>| {
                    let (w, b) = wb.as_ref().expect("individual weights present when shared ones are not");
                    x.swap_dims(0, 1).matmul(w.val()) + b.val()
                };
                (map(seasonal, &self.seasonal_individual) + map(trend, &self.trend_individual)).swap_dims(0, 1)
            }
        };
        out.swap_dims(1, 2) // [b, h, c]
    }
}

impl Architecture for DLinearConfig {
    type Module = DLinear;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<DLinear, String> {
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

impl Forecast for DLinear {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forecast(values(x))
    }
    fn predict_channels(&self, x: Tensor<3>) -> Tensor<3> {
        self.forecast(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_matches_replicate_padded_pooling_by_hand() {
        // l = 4, k = 3: padded [x0, x0, x1, x2, x3, x3]; outputs are means of 3 consecutive.
        let a = moving_average_matrix(4, 3);
        let x = [1.0f32, 2.0, 4.0, 8.0];
        let y: Vec<f32> = (0..4).map(|t| (0..4).map(|j| a[t * 4 + j] * x[j]).sum()).collect();
        let want = [4.0 / 3.0, 7.0 / 3.0, 14.0 / 3.0, 20.0 / 3.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }

    #[test]
    fn mean_init_forecasts_window_mean_plus_bias() {
        let device = Device::flex();
        let shape = Shape::lsf(8, 3, 2);
        let m = DLinearConfig::default().init(shape, &device);
        // With weights 1/l, seasonal + trend = x, so the forecast is mean(x) + b_s + b_t.
        let x: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let out = m.forecast(Tensor::from_data(TensorData::new(x.clone(), [1, 8, 2]), &device));
        assert_eq!(out.dims(), [1, 3, 2]);
        let bias = m.seasonal.as_ref().unwrap().bias.as_ref().unwrap().val() + m.trend.as_ref().unwrap().bias.as_ref().unwrap().val();
        let bias: Vec<f32> = bias.into_data().try_to_vec().unwrap();
        let out: Vec<f32> = out.into_data().try_to_vec().unwrap();
        for h in 0..3 {
            for c in 0..2 {
                let mean = (0..8).map(|t| x[t * 2 + c]).sum::<f32>() / 8.0;
                assert!((out[h * 2 + c] - (mean + bias[h])).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn individual_mode_has_per_channel_weights() {
        let device = Device::flex();
        let shape = Shape::lsf(8, 3, 5);
        let cfg = DLinearConfig { individual: true, ..Default::default() };
        let m = cfg.init(shape, &device);
        assert_eq!(m.num_params(), 2 * (5 * 8 * 3 + 5 * 3));
        let out = m.forecast(Tensor::zeros([4, 8, 5], &device));
        assert_eq!(out.dims(), [4, 3, 5]);
    }
}
