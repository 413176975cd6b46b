//! TCN: the dilated convolutional encoder of TS2Vec (Yue et al., AAAI 2022) with a linear
//! forecasting head, the backbone of the online forecasting papers (FSNet, Pham et al., ICLR
//! 2023, calls it "OnlineTCN"; OneNet reuses it).
//!
//! The input series and their calendar features are concatenated per step and mapped to
//! `hidden` channels by a linear layer; `depth` residual blocks of two "same"-padded dilated
//! convolutions (kernel 3, dilation `2^i`, GELU before each) and a final block to `output`
//! channels follow; the representation of the LAST input step (dropout `repr_dropout`) is
//! mapped by one linear layer to `pred_len x channels` values. A convolution whose dilation
//! reaches past the window (`dilation >= seq_len`: from block 6 on for a 60-step window) only
//! sees its centre tap; it is computed as that 1x1 convolution, which is the same function and
//! gradient.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, values};
use crate::kernels::gelu::gelu;
use crate::layers::dropout::Dropout;

/// TCN hyper-parameters (TS2Vec's encoder as FSNet's `scripts/run.sh` builds it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TCNConfig {
    /// Channels of the residual blocks. TS2Vec: 64.
    pub hidden: usize,
    /// Residual blocks of `hidden` channels (dilations 1, 2, ..., `2^(depth-1)`). TS2Vec: 10.
    pub depth: usize,
    /// Channels of the final block (the representation). TS2Vec: 320.
    pub output: usize,
    /// Convolution kernel. TS2Vec: 3.
    pub kernel: usize,
    /// Dropout on the representation. TS2Vec: 0.1.
    pub dropout: f64,
    /// Feed the calendar features of the input steps beside the series (FSNet: yes).
    pub use_marks: bool,
}

impl Default for TCNConfig {
    fn default() -> Self {
        TCNConfig { hidden: 64, depth: 10, output: 320, kernel: 3, dropout: 0.1, use_marks: true }
    }
}

/// A "same"-padded dilated convolution (`[b, c_in, t] -> [b, c_out, t]`), PyTorch's
/// initialisation (uniform in `1/sqrt(c_in * kernel)`).
#[derive(Module, Debug)]
pub struct SameConv {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
    pub dilation: usize,
}

impl SameConv {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, dilation: usize, device: &Device) -> Self {
        let bound = 1.0 / ((c_in * kernel) as f64).sqrt();
        SameConv {
            weight: Param::from_tensor(Tensor::random([c_out, c_in, kernel], Distribution::Uniform(-bound, bound), device)),
            bias: Param::from_tensor(Tensor::random([c_out], Distribution::Uniform(-bound, bound), device)),
            dilation,
        }
    }

    /// A 1x1 convolution (the residual projection).
    pub fn pointwise(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self::new(c_in, c_out, 1, 1, device)
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, _, t] = x.dims();
        let [_, _, k] = self.weight.dims();
        let field = (k - 1) * self.dilation + 1;
        let pad = field / 2;
        if k % 2 == 1 && self.dilation >= t {
            // Only the centre tap meets the (zero-padded) window.
            let centre = self.weight.val().narrow(2, k / 2, 1);
            return conv1d(x, centre, Some(self.bias.val()), ConvOptions::new([1], [0], [1], 1));
        }
        let out = conv1d(x, self.weight.val(), Some(self.bias.val()), ConvOptions::new([1], [pad], [self.dilation], 1));
        // An even receptive field gives one step too many (TS2Vec drops the last).
        if field % 2 == 0 { out.narrow(2, 0, t) } else { out }
    }
}

/// `x + conv2(gelu(conv1(gelu(x))))`, the residual through a 1x1 projection where the width
/// changes (and in the final block).
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv1: SameConv,
    pub conv2: SameConv,
    pub projector: Option<SameConv>,
}

impl ConvBlock {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let residual = match &self.projector {
            Some(p) => p.forward(x.clone()),
            None => x.clone(),
        };
        self.conv2.forward(gelu(self.conv1.forward(gelu(x)))) + residual
    }
}

#[derive(Module, Debug)]
pub struct TCN {
    pub input_fc: Linear,
    pub blocks: Vec<ConvBlock>,
    pub repr_dropout: Dropout,
    pub regressor: Linear,
    pub pred_len: usize,
    pub channels: usize,
    pub use_marks: bool,
}

impl TCNConfig {
    pub const CAPABILITIES: Capabilities = Capabilities { cross_channel: true, probabilistic: false, exogenous: true, attention: false };

    pub fn init(&self, shape: Shape, device: &Device) -> TCN {
        let marks = if self.use_marks { shape.marks } else { 0 };
        let widths: Vec<usize> = std::iter::repeat_n(self.hidden, self.depth).chain([self.output]).collect();
        let blocks = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let c_in = if i == 0 { self.hidden } else { widths[i - 1] };
                let final_block = i == widths.len() - 1;
                ConvBlock {
                    conv1: SameConv::new(c_in, w, self.kernel, 1 << i, device),
                    conv2: SameConv::new(w, w, self.kernel, 1 << i, device),
                    projector: (c_in != w || final_block).then(|| SameConv::new(c_in, w, 1, 1, device)),
                }
            })
            .collect();
        TCN {
            input_fc: LinearConfig::new(shape.channels + marks, self.hidden).init(device),
            blocks,
            repr_dropout: Dropout::new(self.dropout),
            regressor: LinearConfig::new(self.output, shape.channels * shape.pred_len).init(device),
            pred_len: shape.pred_len,
            channels: shape.channels,
            use_marks: marks > 0,
        }
    }
}

impl TCN {
    /// `x`: `[b, seq_len, channels]`, `marks`: `[b, seq_len, m]` -> `[b, pred_len, channels]`.
    pub fn forecast(&self, x: Tensor<3>, marks: Option<Tensor<3>>) -> Tensor<3> {
        let mut h = embed(&self.input_fc, x, marks.filter(|_| self.use_marks));
        for block in &self.blocks {
            h = block.forward(h);
        }
        head(h, &self.repr_dropout, &self.regressor, self.pred_len, self.channels)
    }
}

/// The series and their calendar features (where used) per step, mapped to the hidden width:
/// `[b, t, c]` -> `[b, hidden, t]`.
pub fn embed(input_fc: &Linear, x: Tensor<3>, marks: Option<Tensor<3>>) -> Tensor<3> {
    let x = match marks {
        Some(m) => Tensor::cat(vec![x, m], 2),
        None => x,
    };
    input_fc.forward(x).swap_dims(1, 2)
}

/// The last step's representation (with dropout) mapped to `[b, pred_len, channels]`.
pub fn head(h: Tensor<3>, dropout: &Dropout, regressor: &Linear, pred_len: usize, channels: usize) -> Tensor<3> {
    let [b, d, t] = h.dims();
    let last = dropout.forward(h.narrow(2, t - 1, 1).reshape([b, d]));
    regressor.forward(last).reshape([b, pred_len, channels])
}

impl Architecture for TCNConfig {
    type Module = TCN;
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }
    fn check(&self, shape: &Shape, _has_graph: bool) -> Result<(), String> {
        if self.kernel == 0 || self.hidden == 0 || self.output == 0 {
            return Err("tcn: model.kernel, model.hidden and model.output must be positive".into());
        }
        if self.depth > 20 {
            return Err(format!("tcn: model.depth = {} gives dilations up to 2^{}: at most 20 blocks", self.depth, self.depth));
        }
        if self.use_marks && shape.marks == 0 && shape.channels == 0 {
            return Err("tcn: no input channels".into());
        }
        Ok(())
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<TCN, String> {
        self.check(&shape, false)?;
        Ok(self.init(shape, device))
    }
    fn examples() -> Vec<Self> {
        vec![TCNConfig { hidden: 16, depth: 3, output: 32, ..Self::default() }]
    }
}

impl Forecast for TCN {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        self.forecast(values(x), marks.map(|m| m.x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn same_conv_matches_a_hand_computed_dilated_convolution() {
        // One channel, kernel 3, dilation 2 on [1, 2, 3, 4, 5]: padding 2 on each side.
        let d = device();
        let mut conv = SameConv::new(1, 1, 3, 2, &d);
        conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(vec![1.0f32, 10.0, 100.0], [1, 1, 3]), &d));
        conv.bias = Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.5f32], [1]), &d));
        let x = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0], [1, 1, 5]), &d);
        let y: Vec<f32> = conv.forward(x).into_data().try_to_vec::<f32>().unwrap();
        // y[t] = x[t-2] + 10 x[t] + 100 x[t+2] + 0.5
        let want = [310.5f32, 420.5, 531.5, 42.5, 53.5];
        assert_eq!(y, want);
    }

    #[test]
    fn a_dilation_past_the_window_equals_the_full_convolution() {
        let d = device();
        let conv = SameConv::new(3, 4, 3, 8, &d);
        let x = Tensor::<3>::random([2, 3, 6], Distribution::Normal(0.0, 1.0), &d);
        let fast = conv.forward(x.clone());
        let full = conv1d(x, conv.weight.val(), Some(conv.bias.val()), ConvOptions::new([1], [8], [8], 1));
        let diff: f32 = (fast - full).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn forecast_has_the_horizon_shape_and_reads_only_its_window() {
        let d = device();
        let shape = Shape { marks: 2, ..Shape::lsf(12, 5, 3) };
        let m = TCNConfig::examples()[0].init(shape, &d);
        let x = Tensor::<3>::random([4, 12, 3], Distribution::Normal(0.0, 1.0), &d);
        let marks = Tensor::<3>::random([4, 12, 2], Distribution::Normal(0.0, 1.0), &d);
        let y = m.forecast(x.clone(), Some(marks.clone()));
        assert_eq!(y.dims(), [4, 5, 3]);
        // Each sample's forecast depends on its own window only.
        let y1 = m.forecast(x.narrow(0, 1, 1), Some(marks.narrow(0, 1, 1)));
        let diff: f32 = (y.narrow(0, 1, 1) - y1).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
