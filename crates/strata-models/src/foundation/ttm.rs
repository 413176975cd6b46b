//! TinyTimeMixer (Ekambaram et al., NeurIPS 2024) as IBM's granite-tsfm builds
//! `TinyTimeMixerForPrediction`, loading the released checkpoints (`config.json` +
//! `model.safetensors`, e.g. TTM-R2 512 -> 96).
//!
//! Channel-independent: every channel of the context is standardised by its own mean and
//! standard deviation (`sqrt(var + 1e-5)`), cut into non-overlapping patches and embedded
//! (`patcher`); the encoder is a TSMixer block with adaptive patching (level i reshapes
//! `[patches, d_model]` to `[patches * 2^i, d_model / 2^i]` for its layers), each layer a
//! patch mixer (LayerNorm over features, MLP over patches, softmax gate, residual) and a
//! feature mixer (the same over features); the decoder adapts to `decoder_d_model` and runs
//! plain mixer layers; the head flattens the patches and maps them linearly to the horizon,
//! which is scaled back. Module and field names follow the PyTorch module, so the safetensors
//! keys load by name: a missing, extra or misshapen tensor is an error naming the key.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use crate::api::{Architecture, Capabilities, Forecast, Marks, Shape, trainable_params, values};
use crate::layers::dropout::Dropout;
use crate::kernels::gelu::gelu;

/// The fields of a TTM `config.json` that shape the model (others are ignored; options this
/// implementation does not have are refused by [`TTMConfig::check`]).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct TTMConfig {
    pub context_length: usize,
    pub prediction_length: usize,
    pub patch_length: usize,
    pub patch_stride: usize,
    pub num_patches: usize,
    pub d_model: usize,
    pub decoder_d_model: usize,
    pub num_layers: usize,
    pub decoder_num_layers: usize,
    pub adaptive_patching_levels: usize,
    #[serde(default)]
    pub decoder_adaptive_patching_levels: usize,
    pub expansion_factor: usize,
    pub gated_attn: bool,
    pub mode: String,
    pub decoder_mode: String,
    pub norm_mlp: String,
    pub norm_eps: f64,
    pub dropout: f64,
    pub head_dropout: f64,
    pub scaling: serde_json::Value,
    pub use_decoder: bool,
    #[serde(default)]
    pub use_positional_encoding: bool,
    #[serde(default)]
    pub self_attn: bool,
    #[serde(default)]
    pub resolution_prefix_tuning: bool,
    #[serde(default)]
    pub decoder_raw_residual: bool,
    #[serde(default)]
    pub enable_forecast_channel_mixing: bool,
    #[serde(default)]
    pub prediction_channel_indices: Option<Vec<usize>>,
    #[serde(default)]
    pub prediction_filter_length: Option<usize>,
    #[serde(default)]
    pub loss: Option<String>,
}

impl TTMConfig {
    /// Read `config.json`; errors name the file and the key.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cfg: TTMConfig = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Refuse the options this implementation does not have, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let unsupported = [
            ("use_positional_encoding", self.use_positional_encoding),
            ("self_attn", self.self_attn),
            ("resolution_prefix_tuning", self.resolution_prefix_tuning),
            ("decoder_raw_residual", self.decoder_raw_residual),
            ("enable_forecast_channel_mixing", self.enable_forecast_channel_mixing),
            ("prediction_channel_indices", self.prediction_channel_indices.is_some()),
            ("decoder_adaptive_patching_levels", self.decoder_adaptive_patching_levels > 0),
            ("use_decoder = false", !self.use_decoder),
            ("mode (only common_channel)", self.mode != "common_channel" || self.decoder_mode != "common_channel"),
            ("norm_mlp (only LayerNorm)", !self.norm_mlp.to_lowercase().contains("layer")),
            ("loss = nll (distribution head)", self.loss.as_deref() == Some("nll")),
            ("scaling (only std)", self.scaling != serde_json::json!("std") && self.scaling != serde_json::json!(true)),
            ("patch_stride != patch_length", self.patch_stride != self.patch_length),
        ];
        if let Some((key, _)) = unsupported.iter().find(|(_, bad)| *bad) {
            return Err(format!("key `{key}`: not supported by strata's TinyTimeMixer"));
        }
        if self.num_patches * self.patch_length > self.context_length {
            return Err(format!("key `num_patches`: {} patches of {} exceed context_length {}", self.num_patches, self.patch_length, self.context_length));
        }
        for level in 0..self.adaptive_patching_levels {
            let f = 1usize << level;
            if self.d_model / f > 4 && self.d_model % f != 0 {
                return Err(format!("key `d_model`: {} is not divisible by 2^{level}", self.d_model));
            }
        }
        Ok(())
    }

    /// Forecast length after `prediction_filter_length`.
    pub fn horizon(&self) -> usize {
        self.prediction_filter_length.unwrap_or(self.prediction_length)
    }

    pub fn init(&self, device: &Device) -> TinyTimeMixer {
        let next = std::cell::Cell::new(0usize);
        let id = || {
            next.set(next.get() + 1);
            next.get() - 1
        };
        let layers = |n: usize, patches: usize, d: usize, dropout: f64| -> Vec<MixerLayer> {
            (0..n)
                .map(|_| MixerLayer {
                    patch_mixer: (patches > 1).then(|| Mixer::new(patches, d, self, dropout, true, id(), device)),
                    feature_mixer: Mixer::new(d, d, self, dropout, false, id(), device),
                })
                .collect()
        };
        let mixers = (0..self.adaptive_patching_levels)
            .rev()
            .map(|level| {
                // granite-tsfm turns a level off when d_model / 2^level <= 4.
                let f = if self.d_model >> level <= 4 { 1 } else { 1 << level };
                AdaptiveBlock { mixer_layers: layers(self.num_layers, self.num_patches * f, self.d_model / f, self.dropout), factor: f }
            })
            .collect();
        let model = TinyTimeMixer {
            backbone: Backbone { encoder: Encoder { patcher: LinearConfig::new(self.patch_length, self.d_model).init(device), mlp_mixer_encoder: EncoderBlock { mixers } } },
            decoder: TtmDecoder {
                adapter: (self.d_model != self.decoder_d_model).then(|| LinearConfig::new(self.d_model, self.decoder_d_model).init(device)),
                decoder_block: DecoderBlock { mixers: layers(self.decoder_num_layers, self.num_patches, self.decoder_d_model, self.head_dropout) },
            },
            head: Head { base_forecast_block: LinearConfig::new(self.num_patches * self.decoder_d_model, self.prediction_length).init(device), dropout_layer: Dropout::new(self.head_dropout) },
            context: self.context_length,
            patch_length: self.patch_length,
            num_patches: self.num_patches,
            horizon: self.horizon(),
            mixers: next.get(),
        };
        model
    }
}

/// `[model] name = "ttm"`: fine-tune a TinyTimeMixer checkpoint with the run's trainer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TTMRunConfig {
    /// Checkpoint folder (`config.json` + `model.safetensors`); a relative path that does not
    /// exist is looked up under `STRATA_DATA` (default `../shared/data`).
    pub checkpoint: PathBuf,
    /// `full` (every parameter trains) or `linear_probe` (only the forecast head trains).
    pub method: FinetuneMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinetuneMethod {
    Full,
    #[serde(alias = "linear-probe")]
    LinearProbe,
}

impl Default for TTMRunConfig {
    fn default() -> Self {
        TTMRunConfig { checkpoint: PathBuf::from("ttm-r2"), method: FinetuneMethod::Full }
    }
}

impl TTMRunConfig {
    pub fn resolve(&self) -> PathBuf {
        if self.checkpoint.is_absolute() || self.checkpoint.exists() {
            return self.checkpoint.clone();
        }
        let root = std::env::var_os("STRATA_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data"));
        root.join(&self.checkpoint)
    }

    /// Load the checkpoint for windows of `seq_len -> pred_len`, freezing what the method keeps fixed.
    pub fn try_init(&self, seq_len: usize, pred_len: usize, device: &Device) -> Result<TinyTimeMixer, String> {
        let dir = self.resolve();
        let mut m = TinyTimeMixer::load(&dir, device)?;
        if seq_len != m.context {
            return Err(format!("key `data.seq_len`: {} takes a context of {} steps, not {seq_len}", dir.display(), m.context));
        }
        if pred_len == 0 || pred_len > m.horizon {
            return Err(format!("key `data.pred_len`: {} forecasts 1..={} steps, not {pred_len}", dir.display(), m.horizon));
        }
        m.horizon = pred_len;
        Ok(if self.method == FinetuneMethod::LinearProbe { m.freeze_for_linear_probe() } else { m })
    }
}

#[derive(Module, Debug)]
pub struct Norm {
    norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct Gate {
    attn_layer: Linear,
}

/// A patch mixer (MLP over the patch axis) or a feature mixer (over the feature axis).
#[derive(Module, Debug)]
pub struct Mixer {
    norm: Norm,
    mlp: Mlp,
    gating_block: Option<Gate>,
    over_patches: bool,
    /// Position among the model's mixers (forward order), for per-layer hooks.
    id: usize,
}

impl Mixer {
    fn new(width: usize, d: usize, cfg: &TTMConfig, dropout: f64, over_patches: bool, id: usize, device: &Device) -> Self {
        let hidden = width * cfg.expansion_factor;
        Mixer {
            norm: Norm { norm: LayerNormConfig::new(d).with_epsilon(cfg.norm_eps).init(device) },
            mlp: Mlp { fc1: LinearConfig::new(width, hidden).init(device), fc2: LinearConfig::new(hidden, width).init(device), dropout: Dropout::new(dropout) },
            gating_block: cfg.gated_attn.then(|| Gate { attn_layer: LinearConfig::new(width, width).init(device) }),
            over_patches,
            id,
        }
    }

    /// `[b, c, patches, d] -> same`.
    fn forward(&self, x: Tensor<4>, hooks: &dyn TtmHooks) -> Tensor<4> {
        let h = self.norm.norm.forward(x.clone());
        let h = if self.over_patches { self.mix_patches(h, hooks) } else { self.mix_features(h, hooks) };
        h + x
    }

    /// fc1 (`which` 0) or fc2 (1) applied to `h` with the hooks' weight delta: `h @ W` when
    /// `left` is false (`W [in, out]`), `W^T @ h` when true (the patch axis); no bias.
    fn project(&self, which: usize, h: Tensor<4>, left: bool, hooks: &dyn TtmHooks) -> Tensor<4> {
        let lin = if which == 0 { &self.mlp.fc1 } else { &self.mlp.fc2 };
        let apply = |w: Tensor<2>, h: Tensor<4>| if left { w.transpose().unsqueeze::<4>().matmul(h) } else { h.matmul(w.unsqueeze::<4>()) };
        match (hooks.weight_delta(self.id, which), hooks.delta_dropout()) {
            (Some(d), Some(drop)) => apply(lin.weight.val(), h.clone()) + apply(d, drop.forward(h)),
            (Some(d), None) => apply(lin.weight.val() + d, h),
            (None, _) => apply(lin.weight.val(), h),
        }
    }

    fn mix_features(&self, h: Tensor<4>, hooks: &dyn TtmHooks) -> Tensor<4> {
        let right = |which: usize, h: Tensor<4>| {
            let lin = if which == 0 { &self.mlp.fc1 } else { &self.mlp.fc2 };
            let y = self.project(which, h, false, hooks);
            match &lin.bias {
                Some(b) => {
                    let n = b.dims()[0];
                    y + b.val().reshape([1, 1, 1, n])
                }
                None => y,
            }
        };
        let h = right(1, self.mlp.dropout.forward(gelu(right(0, h))));
        let h = self.mlp.dropout.forward(h);
        match &self.gating_block {
            Some(g) => h.clone() * crate::kernels::softmax::softmax_last(g.attn_layer.forward(h), None),
            None => h,
        }
    }

    /// The MLP and gate over the patch axis, applied from the left (`W^T @ h`) so that the
    /// `[patches, d]` layout never has to be transposed.
    fn mix_patches(&self, h: Tensor<4>, hooks: &dyn TtmHooks) -> Tensor<4> {
        let bias = |lin: &Linear, y: Tensor<4>| match &lin.bias {
            Some(b) => {
                let n = b.dims()[0];
                y + b.val().reshape([1, 1, n, 1])
            }
            None => y,
        };
        let h = bias(&self.mlp.fc1, self.project(0, h, true, hooks));
        let h = bias(&self.mlp.fc2, self.project(1, self.mlp.dropout.forward(gelu(h)), true, hooks));
        let h = self.mlp.dropout.forward(h);
        match &self.gating_block {
            Some(g) => h.clone() * crate::kernels::softmax::softmax(bias(&g.attn_layer, g.attn_layer.weight.val().transpose().unsqueeze::<4>().matmul(h)), 2),
            None => h,
        }
    }
}

#[derive(Module, Debug)]
pub struct MixerLayer {
    patch_mixer: Option<Mixer>,
    feature_mixer: Mixer,
}

impl MixerLayer {
    fn forward(&self, x: Tensor<4>, hooks: &dyn TtmHooks) -> Tensor<4> {
        let x = match &self.patch_mixer {
            Some(m) => m.forward(x, hooks),
            None => x,
        };
        self.feature_mixer.forward(x, hooks)
    }
}

/// Where a fine-tuning method changes TinyTimeMixer (MSFT's per-scale adapters and LoRA).
pub trait TtmHooks {
    /// After the patch embedding, `[b, c, patches, d]`.
    fn after_patcher(&self, h: Tensor<4>) -> Tensor<4> {
        h
    }
    /// Added to the `[in, out]` weight of fc1 (`which` 0) or fc2 (1) of mixer `mixer`.
    fn weight_delta(&self, _mixer: usize, _which: usize) -> Option<Tensor<2>> {
        None
    }
    /// Dropout on the input of the [`TtmHooks::weight_delta`] path (LoRA dropout): the layer
    /// computes `x W + drop(x) delta` instead of `x (W + delta)`.
    fn delta_dropout(&self) -> Option<&Dropout> {
        None
    }
}

/// TinyTimeMixer unchanged.
pub struct PlainTtm;

impl TtmHooks for PlainTtm {}

#[derive(Module, Debug)]
pub struct AdaptiveBlock {
    mixer_layers: Vec<MixerLayer>,
    factor: usize,
}

#[derive(Module, Debug)]
pub struct EncoderBlock {
    mixers: Vec<AdaptiveBlock>,
}

#[derive(Module, Debug)]
pub struct Encoder {
    patcher: Linear,
    mlp_mixer_encoder: EncoderBlock,
}

#[derive(Module, Debug)]
pub struct Backbone {
    encoder: Encoder,
}

#[derive(Module, Debug)]
pub struct DecoderBlock {
    mixers: Vec<MixerLayer>,
}

#[derive(Module, Debug)]
pub struct TtmDecoder {
    adapter: Option<Linear>,
    decoder_block: DecoderBlock,
}

#[derive(Module, Debug)]
pub struct Head {
    base_forecast_block: Linear,
    dropout_layer: Dropout,
}

#[derive(Module, Debug)]
pub struct TinyTimeMixer {
    backbone: Backbone,
    decoder: TtmDecoder,
    head: Head,
    context: usize,
    patch_length: usize,
    num_patches: usize,
    horizon: usize,
    /// Mixers in forward order (ids `0..mixers`).
    mixers: usize,
}

impl TinyTimeMixer {
    pub fn context_length(&self) -> usize {
        self.context
    }
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// The first (patch embedding) and last (forecast head) weight matrices, for inspection.
    pub fn patcher_and_head_weights(&self) -> (Tensor<2>, Tensor<2>) {
        (self.backbone.encoder.patcher.weight.val(), self.head.base_forecast_block.weight.val())
    }

    /// `x`: `[batch, context, channels]` (the last `context_length` steps are used) ->
    /// `[batch, horizon, channels]`, on the scale of `x`.
    pub fn forecast(&self, x: Tensor<3>) -> Tensor<3> {
        self.forecast_with(x, &PlainTtm)
    }

    /// [`Self::forecast`] with a fine-tuning method's changes.
    pub fn forecast_with(&self, x: Tensor<3>, hooks: &dyn TtmHooks) -> Tensor<3> {
        let (mut h, loc, scale) = self.embed(x, hooks);
        for k in 0..self.encoder_blocks() {
            h = self.encoder_block(k, h, hooks);
        }
        self.decode(h, loc, scale, hooks)
    }

    /// Standardise each channel over the context (TinyTimeMixerStdScaler), patch and embed:
    /// `[b, c, patches, d]` and the scaler's loc / scale `[b, 1, c]`.
    pub fn embed(&self, x: Tensor<3>, hooks: &dyn TtmHooks) -> (Tensor<4>, Tensor<3>, Tensor<3>) {
        let [b, l, c] = x.dims();
        assert!(l >= self.context, "TinyTimeMixer needs {} context steps, got {l}", self.context);
        let x = x.narrow(1, l - self.context, self.context);
        let loc = x.clone().mean_dim(1);
        let centred = x - loc.clone();
        let scale = (centred.clone().powf_scalar(2.0).mean_dim(1) + 1e-5).sqrt();
        let z = centred / scale.clone();
        // Non-overlapping patches of the last num_patches * patch_length steps.
        let used = self.num_patches * self.patch_length;
        let z = z.narrow(1, self.context - used, used).swap_dims(1, 2).reshape([b, c, self.num_patches, self.patch_length]);
        (hooks.after_patcher(self.backbone.encoder.patcher.forward(z)), loc, scale)
    }

    /// Adaptive-patching blocks of the encoder.
    pub fn encoder_blocks(&self) -> usize {
        self.backbone.encoder.mlp_mixer_encoder.mixers.len()
    }

    /// Mixers (patch and feature) in forward order.
    pub fn mixer_count(&self) -> usize {
        self.mixers
    }

    /// `(width of fc1's input, its hidden width)` of mixer `id`: `[in, hidden]` and `[hidden, in]`.
    pub fn mixer_shape(&self, id: usize) -> (usize, usize) {
        let layers = self.backbone.encoder.mlp_mixer_encoder.mixers.iter().flat_map(|b| b.mixer_layers.iter()).chain(self.decoder.decoder_block.mixers.iter());
        let all: Vec<&Mixer> = layers.flat_map(|l| l.patch_mixer.iter().chain(std::iter::once(&l.feature_mixer))).collect();
        let m = all.into_iter().find(|m| m.id == id).expect("mixer id");
        let [i, o] = m.mlp.fc1.weight.dims();
        (i, o)
    }

    /// Encoder block `k` on `[b, c, patches, d]`.
    pub fn encoder_block(&self, k: usize, h: Tensor<4>, hooks: &dyn TtmHooks) -> Tensor<4> {
        let block = &self.backbone.encoder.mlp_mixer_encoder.mixers[k];
        let [b, c, p, d] = h.dims();
        let f = block.factor;
        let mut h = h.reshape([b, c, p * f, d / f]);
        for layer in &block.mixer_layers {
            h = layer.forward(h, hooks);
        }
        h.reshape([b, c, p, d])
    }

    /// Decoder and head: `[b, horizon, c]` on the data's scale.
    pub fn decode(&self, mut h: Tensor<4>, loc: Tensor<3>, scale: Tensor<3>, hooks: &dyn TtmHooks) -> Tensor<3> {
        let [b, c, _, _] = h.dims();
        if let Some(adapter) = &self.decoder.adapter {
            h = adapter.forward(h);
        }
        for layer in &self.decoder.decoder_block.mixers {
            h = layer.forward(h, hooks);
        }
        let [_, _, p, d] = h.dims();
        let flat = self.head.dropout_layer.forward(h.reshape([b, c, p * d]));
        let y = self.head.base_forecast_block.forward(flat).swap_dims(1, 2);
        let y = y.narrow(1, 0, self.horizon);
        y * scale + loc
    }

    /// Freeze everything but the forecast head (a linear probe).
    pub fn freeze_for_linear_probe(mut self) -> Self {
        self.backbone = self.backbone.no_grad();
        self.decoder = self.decoder.no_grad();
        self
    }

    /// Freeze everything but the layer norms and the forecast head (MSFT's backbone set).
    pub fn freeze_for_msft(mut self) -> Self {
        self.backbone.encoder.patcher = self.backbone.encoder.patcher.no_grad();
        let freeze = |l: &mut MixerLayer| {
            for m in l.patch_mixer.iter_mut().chain(std::iter::once(&mut l.feature_mixer)) {
                m.mlp = m.mlp.clone().no_grad();
                m.gating_block = m.gating_block.clone().map(|g| g.no_grad());
            }
        };
        self.backbone.encoder.mlp_mixer_encoder.mixers.iter_mut().flat_map(|b| b.mixer_layers.iter_mut()).for_each(freeze);
        self.decoder.decoder_block.mixers.iter_mut().for_each(freeze);
        self.decoder.adapter = self.decoder.adapter.map(|a| a.no_grad());
        self
    }

    /// d_model of the encoder.
    pub fn d_model(&self) -> usize {
        self.backbone.encoder.patcher.weight.dims()[1]
    }

    pub fn num_patches(&self) -> usize {
        self.num_patches
    }

    /// Load `config.json` and `model.safetensors` from a checkpoint folder.
    pub fn load(dir: &Path, device: &Device) -> Result<TinyTimeMixer, String> {
        let cfg = TTMConfig::from_file(&dir.join("config.json"))?;
        let mut model = cfg.init(device);
        crate::foundation::weights::load_safetensors(&mut model, &dir.join("model.safetensors"))?;
        Ok(model)
    }
}

impl Architecture for TTMRunConfig {
    type Module = TinyTimeMixer;
    fn capabilities(&self) -> Capabilities {
        Capabilities { cross_channel: false, probabilistic: false, exogenous: false, attention: false }
    }
    fn check(&self, shape: &Shape, _has_graph: bool) -> Result<(), String> {
        if shape.features != 1 || shape.grid.is_some() {
            return Err("ttm forecasts long-sequence data (one feature per channel)".into());
        }
        let dir = self.resolve();
        let cfg = TTMConfig::from_file(&dir.join("config.json"))?;
        if shape.seq_len != cfg.context_length || shape.pred_len > cfg.horizon() {
            return Err(format!("ttm: {} takes {} steps and forecasts up to {}; set data.seq_len = {} and data.pred_len <= {}", dir.display(), cfg.context_length, cfg.horizon(), cfg.context_length, cfg.horizon()));
        }
        Ok(())
    }
    fn build(&self, shape: Shape, _adj: Option<&[f32]>, device: &Device) -> Result<TinyTimeMixer, String> {
        self.try_init(shape.seq_len, shape.pred_len, device)
    }
    /// None: the model needs its pretrained weights (tests/ttm.rs runs it on IBM's checkpoint).
    fn examples() -> Vec<Self> {
        vec![]
    }
}

impl Forecast for TinyTimeMixer {
    fn predict(&self, x: Tensor<4>, _marks: Option<Marks>) -> Tensor<3> {
        self.forecast(values(x))
    }
    fn trainable(&self) -> usize {
        trainable_params(self)
    }
}
