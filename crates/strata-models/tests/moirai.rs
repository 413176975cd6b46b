//! MOIRAI against uni2ts: `fixtures/moirai/tiny` holds a randomly initialised uni2ts
//! `MoiraiModule` (d_model 64, 2 layers, the released mixture head) and its outputs on a fixed
//! packed batch (`fixtures/make_moirai_fixture.sh`); strata loads the checkpoint by name and must
//! reproduce the scaler, the encoder output and every distribution parameter to 1e-4.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use strata_models::Moirai;
use strata_models::foundation::moirai::Packed;

fn fixture_dir() -> PathBuf {
    // MOIRAI_FIXTURE: another fixture folder, e.g. the small config made by make_moirai_fixture.sh small.
    std::env::var_os("MOIRAI_FIXTURE").map(Into::into).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/moirai/tiny"))
}

fn io() -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixture_dir().join("io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| (k, (v.shape().to_vec(), v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())))
        .collect()
}

fn close<const D: usize>(name: &str, got: Tensor<D>, want: &(Vec<usize>, Vec<f32>)) {
    close_to(name, got, want, 1e-4)
}

fn close_to<const D: usize>(name: &str, got: Tensor<D>, want: &(Vec<usize>, Vec<f32>), tol: f32) {
    assert_eq!(got.dims().to_vec(), want.0, "{name} shape");
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    if let Some(dir) = std::env::var_os("MOIRAI_DUMP") {
        std::fs::write(Path::new(&dir).join(format!("{name}.txt")), got.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    }
    if let Some((i, (g, w))) = got.iter().zip(&want.1).enumerate().find(|(_, (g, w))| (*g - *w).abs() / w.abs().max(1.0) >= 1e-4) {
        eprintln!("{name}: first difference at flat index {i}: strata {g}, uni2ts {w}");
    }
    let worst = got.iter().zip(&want.1).map(|(g, w)| (g - w).abs() / w.abs().max(1.0)).fold(0f32, f32::max);
    assert!(worst < tol, "{name}: differs from uni2ts by up to {worst}");
}

/// The fixture's packed batch.
fn fixture_batch(t: &HashMap<String, (Vec<usize>, Vec<f32>)>) -> Packed {
    let (b, l, m) = (t["target"].0[0], t["target"].0[1], t["target"].0[2]);
    let ids = |k: &str| t[k].1.iter().map(|&v| v as i64).collect::<Vec<_>>();
    Packed {
        batch: b,
        tokens: l,
        max_patch: m,
        target: t["target"].1.clone(),
        observed: t["observed_mask"].1.iter().map(|&v| v > 0.5).collect(),
        sample_id: ids("sample_id"),
        time_id: ids("time_id"),
        variate_id: ids("variate_id"),
        prediction: t["prediction_mask"].1.iter().map(|&v| v > 0.5).collect(),
        patch_size: t["patch_size"].1.iter().map(|&v| v as usize).collect(),
    }
}

/// The pretraining loss equals uni2ts's `PackedNLLLoss` on the fixture batch (two rows, three
/// samples, patch sizes 8/16/32 mixed in a row, a missing value, padding); computed only at
/// prediction tokens, per patch size.
#[test]
fn masked_nll_matches_uni2ts_packed_nll_loss() {
    let device = Device::flex();
    let model = Moirai::load(&fixture_dir(), &device).unwrap();
    let t = io();
    let got: f32 = model.masked_nll(&fixture_batch(&t), &device).into_scalar();
    let want = t["nll"].1[0];
    // As log_prob: the Normal component's scale 1e-3 amplifies float rounding.
    assert!((got - want).abs() / want.abs().max(1.0) < 1e-3, "strata {got}, uni2ts {want}");
}

/// A model saved by strata (pretraining's export) has exactly the keys and shapes of a uni2ts
/// checkpoint of the same config and loads back to the same forward pass.
#[test]
fn saved_checkpoints_have_the_uni2ts_layout_and_load_back() {
    let device = Device::flex();
    let cfg = strata_models::MoiraiConfig::from_file(&fixture_dir().join("config.json")).unwrap();
    device.seed(3);
    let model = cfg.init(&device);
    let dir = std::env::temp_dir().join(format!("strata-moirai-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture_dir().join("config.json"), dir.join("config.json")).unwrap();
    strata_models::foundation::weights::save_safetensors(&model, &dir.join("model.safetensors")).unwrap();
    let layout = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut v: Vec<(String, Vec<usize>)> = st.tensors().into_iter().map(|(k, t)| (k, t.shape().to_vec())).collect();
        v.sort();
        v
    };
    assert_eq!(layout(&dir.join("model.safetensors")), layout(&fixture_dir().join("model.safetensors")));
    let back = Moirai::load(&dir, &device).unwrap();
    let batch = fixture_batch(&io());
    let (a, b) = (model.forward(&batch, &device).mean(), back.forward(&batch, &device).mean());
    let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| x == y), "the reloaded model forecasts differently");
}

#[test]
fn moirai_matches_uni2ts_module() {
    let device = Device::flex();
    let model = Moirai::load(&fixture_dir(), &device).unwrap();
    let t = io();
    let packed = fixture_batch(&t);
    let (b, l, m) = (packed.batch, packed.tokens, packed.max_patch);
    let out = model.forward(&packed, &device);
    let target = Tensor::<3>::from_data(burn::tensor::TensorData::new(t["target"].1.clone(), [b, l, m]), &device);
    // The Normal component's fixed scale 1e-3 turns a 1e-7 difference in its loc into ~1e-3 in
    // the log density, so the density is held to 1e-3 (the parameters themselves to 1e-4).
    close_to("log_prob", out.log_prob(target), &t["log_prob"], 1e-3);
    // Seeded draws average to the predictive mean (4000 draws; the prediction tokens' first
    // positions, where every component is in play).
    let mean = out.mean().into_data().try_to_vec::<f32>().unwrap();
    let draws = out.sample(4000, 7);
    let points = mean.len();
    let mut worst = 0f32;
    for tok in [5usize, 6, 12, 13, 18] {
        for k in 0..4 {
            let i = tok * m + k;
            let avg = (0..4000).map(|s| draws[s * points + i]).sum::<f32>() / 4000.0;
            let sd = ((0..4000).map(|s| (draws[s * points + i] - avg).powi(2)).sum::<f32>() / 4000.0).sqrt();
            worst = worst.max((avg - mean[i]).abs() / (sd / 4000f32.sqrt()).max(1e-6));
        }
    }
    assert!(worst < 5.0, "sample means are {worst} standard errors from the predictive mean");
    close("mean", out.mean(), &t["mean"]);
    close("loc", out.loc, &t["loc"]);
    close("scale", out.scale, &t["scale"]);
    close("encoder_output", out.encoder_output, &t["encoder_output"]);
    let p = out.params;
    close("weights_logits", p.weights_logits, &t["param.weights_logits"]);
    close("student-t df", p.t_df, &t["param.components.0.df"]);
    close("student-t loc", p.t_loc, &t["param.components.0.loc"]);
    close("student-t scale", p.t_scale, &t["param.components.0.scale"]);
    close("normal loc", p.normal_loc, &t["param.components.1.loc"]);
    close("negbin total_count", p.nb_total_count, &t["param.components.2.total_count"]);
    close("negbin logits", p.nb_logits, &t["param.components.2.logits"]);
    close("lognormal loc", p.lognormal_loc, &t["param.components.3.loc"]);
    close("lognormal scale", p.lognormal_scale, &t["param.components.3.scale"]);
}

/// A checkpoint saved from a Lightning wrapper (`module.` before every key) loads the same; one
/// with a tensor of the wrong shape is refused naming the key and both shapes.
#[test]
fn prefixed_checkpoints_load_and_wrong_shapes_are_named() {
    use safetensors::{Dtype, SafeTensors, tensor::TensorView};
    let device = Device::flex();
    let bytes = std::fs::read(fixture_dir().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let write = |name: &str, rename: &dyn Fn(&str) -> String, shape_of: &dyn Fn(&str, &[usize]) -> Vec<usize>| {
        let dir = std::env::temp_dir().join(format!("strata-moirai-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixture_dir().join("config.json"), dir.join("config.json")).unwrap();
        let owned: Vec<(String, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(k, v)| {
                let shape = shape_of(&k, v.shape());
                let n: usize = shape.iter().product();
                (rename(&k), shape, v.data()[..n * 4].to_vec())
            })
            .collect();
        let views: Vec<(String, TensorView)> = owned.iter().map(|(k, s, d)| (k.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
        dir
    };
    let prefixed = write("prefixed", &|k| format!("module.{k}"), &|_, s| s.to_vec());
    Moirai::load(&prefixed, &device).unwrap();
    let key = "encoder.layers.1.ffn.fc2.weight";
    let bad = write("shape", &|k| k.to_string(), &|k, s| if k == key { vec![64, 100] } else { s.to_vec() });
    let e = Moirai::load(&bad, &device).unwrap_err();
    assert!(e.contains(key) && e.contains("100"), "{e}");
}

/// A forecasting window packed as uni2ts's `MoiraiForecast._convert` packs it (context 37 steps
/// x 2 variates with a missing value, horizon 10, patch 16), and the forecast mean read back as
/// its `_format_preds` does.
#[test]
fn window_packing_and_forecast_match_moirai_forecast() {
    let device = Device::flex();
    let model = Moirai::load(&fixture_dir(), &device).unwrap();
    let t = io();
    let past = &t["forecast.past"].1;
    let observed: Vec<bool> = t["forecast.past_observed"].1.iter().map(|&v| v > 0.5).collect();
    let p = Packed::window(past, &observed, 2, 10, 16, 128);
    let ids = |v: &[i64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    assert_eq!(p.target, t["forecast.packed.target"].1);
    assert_eq!(p.observed.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect::<Vec<f32>>(), t["forecast.packed.observed_mask"].1);
    assert_eq!(ids(&p.sample_id), t["forecast.packed.sample_id"].1);
    assert_eq!(ids(&p.time_id), t["forecast.packed.time_id"].1);
    assert_eq!(ids(&p.variate_id), t["forecast.packed.variate_id"].1);
    assert_eq!(p.prediction.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect::<Vec<f32>>(), t["forecast.packed.prediction_mask"].1);
    let mean = model.forward(&p, &device).mean().into_data().try_to_vec::<f32>().unwrap();
    let forecast = p.horizon_values(&mean, 2, 10);
    let want = &t["forecast.mean"].1;
    let worst = forecast.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(1.0)).fold(0f32, f32::max);
    assert!(worst < 1e-4, "forecast mean differs from uni2ts by {worst}: {forecast:?} vs {want:?}");
    // Windows stacked into one batch forecast as they do alone.
    let twice = Packed::stack(vec![p.clone(), p.clone()]);
    let mean = model.forward(&twice, &device).mean().into_data().try_to_vec::<f32>().unwrap();
    let both = twice.horizon_values(&mean, 2, 10);
    assert_eq!(both.len(), 40);
    let worst = both.iter().zip(forecast.iter().chain(&forecast)).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "batched forecast differs by {worst}");
}

/// MSFT at initialisation (identity adapters, LoRA B = 0, zero aggregator, within-scale mask)
/// forecasts scale 0 exactly as the backbone forecasts the window alone; switching the
/// within-scale mask off lets the coarser scales change it.
#[test]
fn msft_at_initialisation_is_the_backbone_on_scale_0() {
    use strata_models::adapters::moirai_msft::{MsftConfig, MsftMoirai};
    let device = Device::flex();
    let backbone = Moirai::load(&fixture_dir(), &device).unwrap();
    let (l, h, patch, rows) = (100, 24, 16, 2);
    let context: Vec<f32> = (0..rows * l).map(|i| ((i % l) as f32 * 0.3).sin() * 2.0 + (i / l) as f32).collect();
    let msft = MsftMoirai::new(backbone.clone(), &MsftConfig::default(), &device);
    let got = msft.scale0_mean(&context, rows, h, patch, &device);
    let mut want = Vec::new();
    for r in 0..rows {
        let p = Packed::window(&context[r * l..(r + 1) * l], &[true; 100], 1, h, patch, 128);
        want.extend(p.horizon_values(&backbone.forward(&p, &device).mean().into_data().try_to_vec::<f32>().unwrap(), 1, h));
    }
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "MSFT scale 0 differs from the backbone by {worst}");
    let open = MsftMoirai::new(backbone, &MsftConfig { within_scale: false, ..Default::default() }, &device);
    let other = open.scale0_mean(&context, rows, h, patch, &device);
    assert!(other.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-3), "without the mask the scales should interact");
}

/// The MSFT loss is the softmax-weighted sum of per-scale NLLs: with one scale it is the
/// backbone's masked NLL of the same packed windows; its gradient reaches the adapters, LoRA,
/// aggregator and scale weights but not the frozen q/k/v.
#[test]
fn msft_loss_weights_scales_and_trains_only_its_parts() {
    use burn::module::Module;
    use strata_models::adapters::moirai_msft::{MsftConfig, MsftMoirai};
    let device = Device::flex().autodiff();
    let backbone = Moirai::load(&fixture_dir(), &device).unwrap();
    let (l, h, patch, rows) = (64, 16, 8, 3);
    let context: Vec<f32> = (0..rows * l).map(|i| (i as f32 * 0.1).cos()).collect();
    let target: Vec<f32> = (0..rows * h).map(|i| (i as f32 * 0.2).sin()).collect();
    let single = MsftMoirai::new(backbone.clone(), &MsftConfig::off(), &device);
    let layout = strata_models::adapters::msft::ScaleLayout::new(l, h, patch, 0);
    let got: f32 = single.loss(&context, &target, rows, patch, &device).into_scalar();
    let want: f32 = backbone.masked_nll(&single.pack(&context, &target, rows, &layout), &device).into_scalar();
    assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{got} vs {want}");
    let frozen = backbone.freeze_except(&MsftConfig::BACKBONE_TRAINABLE);
    let msft = MsftMoirai::new(frozen, &MsftConfig::default(), &device);
    let loss = msft.loss(&context, &target, rows, patch, &device);
    let grads = loss.backward();
    let params = burn::optim::GradientsParams::from_grads(grads, &msft);
    assert!(params.get::<1>(msft.scale_weights.id).is_some(), "scale weights get a gradient");
    // Frozen: in_proj [5, 64, 128] + [5, 64], and per layer (2) q/k/v 3 x 64 x 64 and the
    // SwiGLU FFN 3 x 64 x 176 = 41,280 + 2 x 46,080.
    assert_eq!(msft.num_params() - strata_models::trainable_params(&msft), 133_440);
}

/// Prompt tuning: with prompt tokens in front, the scale tokens and the loss still line up
/// (the loss is finite and reaches the prompts), and different prompts change the forecast.
#[test]
fn prompt_tokens_reach_the_forecast() {
    use strata_models::adapters::moirai_msft::{MsftConfig, MsftMoirai};
    let device = Device::flex().autodiff();
    let backbone = Moirai::load(&fixture_dir(), &device).unwrap().freeze_except(&[]);
    let cfg = MsftConfig { prompt_tokens: 4, ..MsftConfig::off() };
    let (l, h, patch, rows) = (64, 16, 8, 2);
    let context: Vec<f32> = (0..rows * l).map(|i| (i as f32 * 0.3).sin()).collect();
    let target: Vec<f32> = (0..rows * h).map(|i| (i as f32 * 0.3).cos()).collect();
    device.seed(1);
    let a = MsftMoirai::new(backbone.clone(), &cfg, &device);
    device.seed(2);
    let b = MsftMoirai::new(backbone, &cfg, &device);
    let loss = a.loss(&context, &target, rows, patch, &device);
    assert!(loss.clone().into_scalar::<f32>().is_finite());
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &a);
    assert_eq!(grads.len(), 1, "only the prompts train");
    let (fa, fb) = (a.scale0_mean(&context, rows, h, patch, &device), b.scale0_mean(&context, rows, h, patch, &device));
    assert!(fa.iter().zip(&fb).any(|(x, y)| (x - y).abs() > 1e-4));
}
