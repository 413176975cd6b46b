//! TinyTimeMixer R2 with IBM's released weights (`$STRATA_DATA/ttm-r2`) against IBM's own
//! implementation: `fixtures/ttm_etth1.json` holds granite-tsfm's forecasts of the first ETTh1
//! test windows (512 -> 96) and its MSE/MAE over all of them (`fixtures/make_ttm_fixture.sh`).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use strata_data::prepare::{DataConfig, prepare};
use strata_data::window::Batch;
use strata_models::TinyTimeMixer;

fn data_root() -> PathBuf {
    std::env::var_os("STRATA_DATA").map(Into::into).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn fixture() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ttm_etth1.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn ttm_r2_matches_granite_tsfm_on_etth1() {
    let device = Device::flex();
    let model = TinyTimeMixer::load(&data_root().join("ttm-r2"), &device).unwrap();
    let f = fixture();
    let cfg = DataConfig { dataset: "etth1".into(), path: Some(data_root().join("ETTh1/ETTh1.csv")), seq_len: 512, pred_len: 96, ..Default::default() };
    let data = prepare(&cfg).unwrap();
    let test = &data.test;
    assert_eq!(test.len() as u64, f["windows"].as_u64().unwrap());
    let c = test.channels();
    let (mut sq, mut ab, mut batch) = (0f64, 0f64, Batch::default());
    let all: Vec<usize> = (0..test.len()).collect();
    for (k, idx) in all.chunks(256).enumerate() {
        test.fill(idx, &mut batch);
        let x = Tensor::<3>::from_data(TensorData::new(batch.x.clone(), [idx.len(), 512, c]), &device);
        let p = model.forecast(x).into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in p.iter().zip(&batch.y) {
            let d = (*a - *b) as f64;
            sq += d * d;
            ab += d.abs();
        }
        if k == 0 {
            let want: Vec<f64> = f["predictions"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let worst = want.iter().zip(&p).map(|(w, g)| (w - *g as f64).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "first windows differ from granite-tsfm by up to {worst}");
        }
    }
    let n = (test.len() * 96 * c) as f64;
    let (mse, mae) = (sq / n, ab / n);
    eprintln!("strata TTM-R2 ETTh1 512->96: mse {mse:.6} mae {mae:.6} over {} windows", test.len());
    assert!((mse - f["mse"].as_f64().unwrap()).abs() < 1e-4, "mse {mse} vs granite-tsfm {}", f["mse"]);
    assert!((mae - f["mae"].as_f64().unwrap()).abs() < 1e-4, "mae {mae} vs granite-tsfm {}", f["mae"]);
}

/// Copy the checkpoint folder with `edit` applied to its tensors.
fn altered(name: &str, edit: impl Fn(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> PathBuf {
    use safetensors::{Dtype, SafeTensors, tensor::TensorView};
    let src = data_root().join("ttm-r2");
    let dir = std::env::temp_dir().join(format!("strata-ttm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st.tensors().into_iter().map(|(k, v)| (k, v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors.iter().map(|(k, s, d)| (k.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir
}

#[test]
fn a_wrong_checkpoint_is_rejected_naming_the_key() {
    let device = Device::flex();
    let key = "head.base_forecast_block.bias";
    let missing = altered("missing", |t| t.retain(|(k, _, _)| k != key));
    let e = TinyTimeMixer::load(&missing, &device).unwrap_err();
    assert!(e.contains("missing") && e.contains(key), "{e}");

    let extra = altered("extra", |t| t.push(("decoder.extra.weight".into(), vec![2], vec![0; 8])));
    let e = TinyTimeMixer::load(&extra, &device).unwrap_err();
    assert!(e.contains("decoder.extra.weight"), "{e}");

    let shape = altered("shape", |t| {
        let (_, s, d) = t.iter_mut().find(|(k, _, _)| k == key).unwrap();
        *s = vec![48];
        d.truncate(48 * 4);
    });
    let e = TinyTimeMixer::load(&shape, &device).unwrap_err();
    eprintln!("{e}");
    assert!(e.contains(key) && e.contains("96") && e.contains("48"), "{e}");
}

/// `[model] name = "ttm"` fine-tunes the checkpoint: a linear probe's step moves only the head;
/// a full step moves the backbone too; a context other than the checkpoint's is refused.
#[test]
fn linear_probe_trains_only_the_head() {
    use burn::module::Module;
    use strata_models::{Model, ModelConfig, Shape};
    use strata_train::engine::checkpoint::TrainState;
    use strata_train::engine::schedule::Rate;
    use strata_train::engine::{Batches, Group, Job, OptimizerSpec, Plan, Step, StepLoss, Store, fit};
    let device = Device::flex().autodiff();
    let ckpt = data_root().join("ttm-r2");
    let cfg = |method: &str| -> ModelConfig { toml::from_str(&format!("name = \"ttm\"\ncheckpoint = \"{}\"\nmethod = \"{method}\"", ckpt.display())).unwrap() };
    let shape = Shape::lsf(512, 24, 3);
    let e = cfg("full").check(&Shape::lsf(336, 24, 3), false).unwrap_err();
    assert!(e.contains("data.seq_len = 512"), "{e}");
    let x = Tensor::<3>::random([4, 512, 3], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<3>::random([4, 24, 3], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let weights = |m: &Model| -> (Vec<f32>, Vec<f32>) {
        let Model::TTM(t) = m else { unreachable!() };
        let (a, b) = t.patcher_and_head_weights();
        (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap())
    };
    /// One Adam step (lr 1e-2) of the training engine on the MSE of one batch.
    struct OneStep {
        cfg: ModelConfig,
        shape: Shape,
        x: Tensor<3>,
        y: Tensor<3>,
        built: Option<Model>,
    }
    impl Job for OneStep {
        type Model = Model;
        fn seed(&self) -> u64 {
            0
        }
        fn plan(&self) -> Plan {
            Plan { rounds: 1, steps_per_round: 1, total_steps: 1, patience: 1, batches: Batches::Drawn, unit: "epoch", activity: "training" }
        }
        fn build(&mut self, device: &Device) -> anyhow::Result<Model> {
            let m = self.cfg.try_init(self.shape, None, device).map_err(anyhow::Error::msg)?;
            self.built = Some(m.clone());
            Ok(m)
        }
        fn groups(&self) -> Vec<Group> {
            vec![Group::new(&OptimizerSpec::adam(), Rate::Constant(1e-2), "optimizer.bpk")]
        }
        fn describe(&self, _m: &Model, _d: &Device) -> String {
            String::new()
        }
        fn loss(&mut self, model: &Model, _step: &Step, _device: &Device) -> anyhow::Result<StepLoss> {
            Ok(StepLoss::of((model.forward(self.x.clone().unsqueeze_dim(3)) - self.y.clone()).powf_scalar(2.0).mean()))
        }
        fn validate(&mut self, _m: &Model, _round: usize, _d: &Device) -> Option<f64> {
            Some(0.0)
        }
    }
    for (method, backbone_moves) in [("linear_probe", false), ("full", true)] {
        let mut job = OneStep { cfg: cfg(method), shape, x: x.clone(), y: y.clone(), built: None };
        let mut state = TrainState::default();
        let model = fit(&mut job, Store::Memory(&mut state), &device, 1).unwrap().model;
        let built = job.built.unwrap();
        let trainable = ModelConfig::trainable_params(&built);
        assert_eq!(trainable < built.num_params(), !backbone_moves, "{method}: {trainable} of {}", built.num_params());
        let before = weights(&built);
        let after = weights(&model);
        assert_eq!(before.0 != after.0, backbone_moves, "{method}: backbone");
        assert!(before.1 != after.1, "{method}: the head must train");
    }
}

/// MSFT on TinyTimeMixer at initialisation (identity adapters, LoRA B = 0, zero aggregator)
/// forecasts scale 0 exactly as TTM-R2 forecasts the last 512 steps; a window reads 512 x 2^K
/// steps; the MSFT loss with one scale is the plain MSE; training touches only MSFT's parts,
/// the norms and the head.
#[test]
fn ttm_msft_at_initialisation_is_the_backbone() {
    use strata_models::adapters::moirai_msft::MsftConfig;
    use strata_models::adapters::ttm_msft::TtmMsft;
    let device = Device::flex();
    let backbone = TinyTimeMixer::load(&data_root().join("ttm-r2"), &device).unwrap();
    let msft = TtmMsft::new(backbone.clone(), &MsftConfig::default(), &device);
    assert_eq!(msft.history(), 4096);
    let rows = 3;
    let context: Vec<f32> = (0..rows * 4096).map(|i| ((i % 4096) as f32 * 0.26).sin() * 2.0 + (i / 4096) as f32 + 0.001 * (i % 4096) as f32).collect();
    let got = msft.scale0(&context, rows, &device);
    let last: Vec<f32> = (0..rows).flat_map(|r| context[r * 4096 + 3584..(r + 1) * 4096].to_vec()).collect();
    let want = backbone.forecast(Tensor::<3>::from_data(TensorData::new(last.clone(), [rows, 512, 1]), &device)).into_data().try_to_vec::<f32>().unwrap();
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "scale 0 differs from TTM by {worst}");
    // One scale, nothing else: the loss is the MSE of TTM's forecast.
    let single = TtmMsft::new(backbone.clone(), &MsftConfig::off(), &device);
    let target: Vec<f32> = (0..rows * 96).map(|i| (i as f32 * 0.1).cos()).collect();
    let loss: f32 = single.loss(&last, &target, rows, &device).into_scalar();
    let mse = want.iter().zip(&target).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / want.len() as f32;
    assert!((loss - mse).abs() < 1e-4 * mse.max(1.0), "{loss} vs {mse}");
    // Frozen for MSFT: the patcher, every mixer MLP and gate, the decoder adapter.
    let ad = Device::flex().autodiff();
    let m = TtmMsft::new(TinyTimeMixer::load(&data_root().join("ttm-r2"), &ad).unwrap().freeze_for_msft(), &MsftConfig::default(), &ad);
    let grads = burn::optim::GradientsParams::from_grads(m.loss(&context, &target, rows, &ad).backward(), &m);
    assert!(grads.get::<1>(m.scale_weights.id).is_some());
}

/// AdaLoRA and prompt tuning on TinyTimeMixer: AdaLoRA starts as the backbone (E = 0) and its
/// gradients reach P, E and Q of every mixer's fc1/fc2 (so the importance scores exist and the
/// budget re-allocation applies); the prompts change the forecast and are all that trains (as
/// many prompts as patches are refused: the CLI test).
#[test]
fn ttm_adalora_and_prompts() {
    use strata_models::adapters::adalora::AdaLoraConfig;
    use strata_models::adapters::moirai_msft::MsftConfig;
    use strata_models::adapters::ttm_msft::TtmMsft;
    let device = Device::flex();
    let backbone = TinyTimeMixer::load(&data_root().join("ttm-r2"), &device).unwrap();
    let rows = 2;
    let context: Vec<f32> = (0..rows * 512).map(|i| ((i % 512) as f32 * 0.31).sin() + (i / 512) as f32).collect();
    let target: Vec<f32> = (0..rows * 96).map(|i| (i as f32 * 0.1).cos()).collect();
    let want = backbone.forecast(Tensor::<3>::from_data(TensorData::new(context.clone(), [rows, 512, 1]), &device)).into_data().try_to_vec::<f32>().unwrap();
    let worst = |got: &[f32]| got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // Re-allocate at step 1 straight to the target budget (8 of 12 triplets per matrix on average).
    let ada_cfg = MsftConfig { adalora: Some(AdaLoraConfig { t_init: 0, t_final: 0, delta_t: 1, ..Default::default() }), ..MsftConfig::off() };
    let ada = TtmMsft::new(backbone.clone(), &ada_cfg, &device);
    assert!(worst(&ada.scale0(&context, rows, &device)) < 1e-5, "AdaLoRA at initialisation changed the forecast");
    let prompt_cfg = MsftConfig { prompt_tokens: 2, ..MsftConfig::off() };
    let prompted = TtmMsft::new(backbone.clone(), &prompt_cfg, &device);
    assert!(worst(&prompted.scale0(&context, rows, &device)) > 1e-3, "the prompts did not reach the forecast");
    let ad = Device::flex().autodiff();
    let frozen = burn::module::Module::no_grad(TinyTimeMixer::load(&data_root().join("ttm-r2"), &ad).unwrap());
    let m = TtmMsft::new(frozen.clone(), &ada_cfg, &ad);
    let grads = burn::optim::GradientsParams::from_grads((m.loss(&context, &target, rows, &ad) + m.ada().unwrap().penalty()).backward(), &m);
    m.ada().unwrap().observe(&grads);
    // Scores exist only if every matrix's P, E and Q received gradients; then the budget applies.
    let m = m.ada_prune(1, 1);
    let ranks = m.ada().unwrap().ranks();
    assert_eq!(ranks.len(), 2 * backbone.mixer_count());
    assert_eq!(ranks.iter().sum::<usize>(), 8 * ranks.len(), "{ranks:?}");
    let m = TtmMsft::new(frozen, &prompt_cfg, &ad);
    let grads = burn::optim::GradientsParams::from_grads(m.loss(&context, &target, rows, &ad).backward(), &m);
    assert_eq!(grads.len(), 1, "only the prompts train");
}


/// LoRA dropout on TinyTimeMixer: during training the LoRA path sees a dropped-out input, so one
/// SGD step from the same model under two dropout seeds gives two different models; without
/// dropout the two steps agree. At inference dropout is off (the forecast of the untrained LoRA
/// model is TTM-R2's either way).
#[test]
fn ttm_lora_dropout_acts_in_training_only() {
    use burn::module::Module;
    use burn::optim::{GradientsParams, SgdConfig};
    use strata_models::adapters::moirai_msft::MsftConfig;
    use strata_models::adapters::ttm_msft::TtmMsft;
    let ad = Device::flex().autodiff();
    let rows = 2;
    let context: Vec<f32> = (0..rows * 512).map(|i| ((i % 512) as f32 * 0.17).sin() + (i / 512) as f32).collect();
    let target: Vec<f32> = (0..rows * 96).map(|i| (i as f32 * 0.1).cos()).collect();
    // TTM-R2 with its own dropout (0.4) off, so that only LoRA's can differ between the steps.
    let dir = std::env::temp_dir().join(format!("strata-ttm-nodrop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data_root().join("ttm-r2/config.json")).unwrap()).unwrap();
    config["dropout"] = 0.0.into();
    config["head_dropout"] = 0.0.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let _ = std::fs::remove_file(dir.join("model.safetensors"));
    std::os::unix::fs::symlink(data_root().join("ttm-r2/model.safetensors").canonicalize().unwrap(), dir.join("model.safetensors")).unwrap();
    let frozen = burn::module::Module::no_grad(TinyTimeMixer::load(&dir, &ad).unwrap());
    for p in [0.0, 0.5] {
        let m = TtmMsft::new(frozen.clone(), &MsftConfig { lora: true, lora_dropout: p, ..MsftConfig::off() }, &ad);
        let step = |seed: u64| {
            strata_models::layers::dropout::seed(seed);
            let grads = GradientsParams::from_grads(m.loss(&context, &target, rows, &ad).backward(), &m);
            let mut sgd = SgdConfig::new().init();
            let next = sgd.step(10.0, m.clone(), grads).valid();
            next.scale0(&context, rows, &Device::flex())
        };
        let (a, b) = (step(1), step(2));
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        if p == 0.0 {
            assert!(diff < 1e-6, "without dropout the steps differ by {diff}");
        } else {
            assert!(diff > 1e-4, "dropout {p} did not reach the LoRA path ({diff})");
        }
        let fresh = m.valid().scale0(&context, rows, &Device::flex());
        let plain = frozen.valid().forecast(Tensor::<3>::from_data(TensorData::new(context.clone(), [rows, 512, 1]), &Device::flex())).into_data().try_to_vec::<f32>().unwrap();
        assert!(fresh.iter().zip(&plain).all(|(x, y)| (x - y).abs() < 1e-5));
    }
}
