//! TiDE (Das et al., "Long-term Forecasting with TiDE: Time-series Dense Encoder", TMLR 2023):
//! an MLP encoder-decoder, channel-independent, that takes all three kinds of covariates.
//!
//! Per series: the dynamic covariates known over the input and the horizon (calendar marks and
//! future-known covariates) are projected step by step to `temporal_width` values by a residual
//! block (the paper's "feature projection"); past-observed covariates, known over the input only,
//! get their own projection (as neuralforecast's TiDE does for `hist_exog`). The dense encoder
//! reads the normalised look-back, both projections flattened and the static covariates; the
//! dense decoder emits `decoder_output_dim` values per horizon step; the temporal decoder reads
//! each step's decoding beside that step's projected future covariates; a linear map of the
//! look-back is added (the global residual). Every residual block is
//! `LayerNorm(dropout(W2 relu(W1 x)) + W3 x)`.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::api::{Architecture, Capabilities, CovariateKinds, Covariates, Forecast, Marks, Shape, per_channel, statics_per_channel, values};
use crate::layers::dropout::Dropout;

/// TiDE hyper-parameters: the paper's ETTh1 row (Table 8: hidden 256, two encoder and two
/// decoder blocks, decoder output 8, temporal decoder hidden 128, dropout 0.3, layer norm,
/// reversible instance normalisation; look-back 720, learning rate 3.82e-5, batch 512).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TiDEConfig {
    /// Width of the dense encoder and decoder (and of every residual block's hidden layer).
    pub hidden_size: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    /// Values per horizon step the dense decoder emits.
    pub decoder_output_dim: usize,
    /// Hidden width of the temporal decoder.
    pub temporal_decoder_hidden: usize,
    /// Values each step's dynamic covariates are projected to.
    pub temporal_width: usize,
    pub dropout: f64,
    /// Layer norm at the end of every residual block.
    pub layer_norm: bool,
    /// The layer norm also ends the temporal decoder, as in every reference implementation
    /// (google-research's, TSLib's). Over that block's single output a layer norm returns its
    /// bias whatever the input: the forecast is then the linear residual of the look-back plus
    /// a learned constant, and neither the encoder-decoder nor any covariate reaches it.
    /// `false` leaves that one norm out so that they do (docs/covariates.md).
    pub final_norm: bool,
    /// Normalise each series' window (mean, std) and undo it on the forecast.
    pub revin: bool,
}

impl Default for TiDEConfig {
    fn default() -> Self {
        TiDEConfig { hidden_size: 256, encoder_layers: 2, decoder_layers: 2, decoder_output_dim: 8, temporal_decoder_hidden: 128, temporal_width: 4, dropout: 0.3, layer_norm: true, final_norm: true, revin: true }
    }
}

/// `LayerNorm(dropout(W2 relu(W1 x)) + W3 x)`.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    fc1: Linear,
    fc2: Linear,
    skip: Linear,
    norm: Option<LayerNorm>,
    dropout: Dropout,
}

impl ResidualBlock {
    fn new(input: usize, hidden: usize, output: usize, norm: bool, cfg: &TiDEConfig, device: &Device) -> Self {
        ResidualBlock {
            fc1: LinearConfig::new(input, hidden).init(device),
            fc2: LinearConfig::new(hidden, output).init(device),
            skip: LinearConfig::new(input, output).init(device),
            norm: norm.then(|| LayerNormConfig::new(output).init(device)),
            dropout: Dropout::new(cfg.dropout),
        }
    }
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let y = self.dropout.forward(self.fc2.forward(relu(self.fc1.forward(x.clone())))) + self.skip.forward(x);
        match &self.norm {
            Some(n) => n.forward(y),
            None => y,
        }
    }
}

#[derive(Module, Debug)]
pub struct TiDE {
    /// Projection of the future-known dynamic covariates (marks and `future`), when there are any.
    future_projection: Option<ResidualBlock>,
    /// Projection of the past-observed covariates, when there are any.
    past_projection: Option<ResidualBlock>,
    encoder: Vec<ResidualBlock>,
    decoder: Vec<ResidualBlock>,
    temporal_decoder: ResidualBlock,
    residual: Linear,
    marks: usize,
    future: usize,
    temporal_width: usize,
    pred_len: usize,
    decoder_output_dim: usize,
    revin: bool,
}

impl Architecture for TiDEConfig {
    type Module = TiDE;
    fn capabilities(&self) -> Capabilities {
        Capabilities { cross_channel: false, probabilistic: false, exogenous: true, attention: false }
    }
    fn covariates(&self) -> CovariateKinds {
        CovariateKinds::ALL
    }
    fn check(&self, shape: &Shape, _has_graph: bool) -> Result<(), String> {
        shape.covariates.check_groups("tide", shape.channels)?;
        Ok(())
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<TiDE, String> {
        let (l, h, tw, hid) = (shape.seq_len, shape.pred_len, self.temporal_width, self.hidden_size);
        let cov = shape.covariates;
        let dynamic = shape.marks + cov.future;
        let future_w = if dynamic > 0 { tw } else { 0 };
        let past_w = if cov.past > 0 { tw } else { 0 };
        let flat = l + l * past_w + (l + h) * future_w + cov.statics;
        let block = |i, o| ResidualBlock::new(i, hid, o, self.layer_norm, self, device);
        let mut encoder = vec![block(flat, hid)];
        encoder.extend((1..self.encoder_layers.max(1)).map(|_| block(hid, hid)));
        let mut decoder: Vec<ResidualBlock> = (1..self.decoder_layers.max(1)).map(|_| block(hid, hid)).collect();
        decoder.push(block(hid, self.decoder_output_dim * h));
        Ok(TiDE {
            future_projection: (dynamic > 0).then(|| block(dynamic, tw)),
            past_projection: (cov.past > 0).then(|| block(cov.past, tw)),
            encoder,
            decoder,
            temporal_decoder: ResidualBlock::new(self.decoder_output_dim + future_w, self.temporal_decoder_hidden, 1, self.layer_norm && self.final_norm, self, device),
            residual: LinearConfig::new(l, h).init(device),
            marks: shape.marks,
            future: cov.future,
            temporal_width: tw,
            pred_len: h,
            decoder_output_dim: self.decoder_output_dim,
            revin: self.revin,
        })
    }
    fn examples() -> Vec<Self> {
        vec![TiDEConfig { hidden_size: 32, temporal_decoder_hidden: 16, final_norm: false, ..Self::default() }]
    }
}

impl TiDE {
    /// `x`: `[batch, seq_len, channels]` -> `[batch, pred_len, channels]`.
    pub fn forward(&self, x: Tensor<3>, marks: Option<Marks>, cov: Covariates) -> Tensor<3> {
        let [b, l, c] = x.dims();
        let (h, bc, device) = (self.pred_len, b * c, x.device());
        let series = x.permute([0, 2, 1]).reshape([bc, l]);
        let (series, stats) = if self.revin {
            let (s, mean, std) = crate::layers::revin::standardise(series.unsqueeze_dim::<3>(2));
            (s.reshape([bc, l]), Some((mean.reshape([bc, 1]), std.reshape([bc, 1]))))
        } else {
            (series, None)
        };
        let mut parts = vec![series.clone()];
        if let Some(p) = &self.past_projection {
            let past = per_channel(cov.past.expect("the model was built for past-observed covariates"), c);
            parts.push(p.forward(past).reshape([bc, l * self.temporal_width]));
        }
        let future = self.future_projection.as_ref().map(|proj| {
            let mut dynamic = Vec::new();
            if self.marks > 0 {
                let m = match marks {
                    Some(m) => Tensor::cat(vec![m.x, m.y], 1),
                    None => Tensor::zeros([b, l + h, self.marks], &device),
                };
                dynamic.push(m.unsqueeze_dim::<4>(2).repeat_dim(2, c).permute([0, 2, 1, 3]).reshape([bc, l + h, self.marks]));
            }
            if self.future > 0 {
                dynamic.push(per_channel(cov.future.clone().expect("the model was built for future-known covariates"), c));
            }
            proj.forward(Tensor::cat(dynamic, 2))
        });
        if let Some(f) = &future {
            parts.push(f.clone().reshape([bc, (l + h) * self.temporal_width]));
        }
        if let Some(s) = cov.statics {
            parts.push(statics_per_channel(s, b, c));
        }
        let mut hidden = Tensor::cat(parts, 1);
        for block in self.encoder.iter().chain(&self.decoder) {
            hidden = block.forward(hidden);
        }
        let decoded = hidden.reshape([bc, h, self.decoder_output_dim]);
        let decoded = match future {
            Some(f) => Tensor::cat(vec![decoded, f.narrow(1, l, h)], 2),
            None => decoded,
        };
        let y = self.temporal_decoder.forward(decoded).reshape([bc, h]) + self.residual.forward(series);
        let y = match stats {
            Some((mean, std)) => y * std + mean,
            None => y,
        };
        y.reshape([b, c, h]).permute([0, 2, 1])
    }
}

impl Forecast for TiDE {
    fn predict(&self, x: Tensor<4>, marks: Option<Marks>) -> Tensor<3> {
        self.forward(values(x), marks, Covariates::default())
    }
    fn predict_covariates(&self, x: Tensor<4>, marks: Option<Marks>, covariates: Covariates) -> Tensor<3> {
        self.forward(values(x), marks, covariates)
    }
}
