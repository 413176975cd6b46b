//! FSNet's adaptive convolutions against a PyTorch restatement of the authors' code
//! (`fixtures/fsnet.json`, made by `fixtures/make_online_fixtures.sh`): from the same weights and
//! state (gradient averages, calibration averages, memory, one pending trigger), the forecast,
//! the memory read and write, the calibration averages, and after the backward pass the
//! gradient averages and the triggers they set, all agree.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use strata_models::foundation::weights::{NamedTensor, load_named};
use strata_models::lsf::fsnet::{ConvState, FSNetConfig};
use strata_models::{Architecture, Forecast, Shape};

#[derive(serde::Deserialize)]
struct Fixture {
    config: serde_json::Value,
    shape: [usize; 5],
    params: BTreeMap<String, NamedTensor>,
    x: Vec<f32>,
    marks: Vec<f32>,
    target: Vec<f32>,
    state_before: Vec<ConvState>,
    y: Vec<f32>,
    state_after_forward: Vec<ConvState>,
    state_after_store: Vec<ConvState>,
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= tol, "{what}: max abs difference {worst}");
}

#[test]
fn fsnet_matches_the_reference_adapter_memory_and_gradient_averages() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/fsnet.json");
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let [b, l, h, c, m] = f.shape;
    let device = Device::flex().autodiff();
    let cfg: FSNetConfig = serde_json::from_value(f.config).unwrap();
    let shape = Shape { marks: m, ..Shape::lsf(l, h, c) };
    let loaded = load_named(cfg.build(shape, None, &Device::flex()).unwrap(), &f.params).unwrap();
    let model = cfg.build(shape, None, &device).unwrap().load_record(loaded.into_record());
    model.state.lock().unwrap().convs = f.state_before.clone();

    let x = Tensor::<3>::from_data(TensorData::new(f.x, [b, l, c]), &device);
    let marks = Tensor::<3>::from_data(TensorData::new(f.marks, [b, l, m]), &device);
    let y = model.forecast(x, Some(marks));
    close("forecast", &y.clone().into_data().try_to_vec::<f32>().unwrap(), &f.y, 1e-4);
    {
        let s = model.state.lock().unwrap();
        assert_eq!(s.convs[0].reads, 1, "the pending trigger read the memory");
        for (i, (got, want)) in s.convs.iter().zip(&f.state_after_forward).enumerate() {
            close(&format!("conv {i} memory after the forward"), &got.memory, &want.memory, 1e-5);
            close(&format!("conv {i} calibration average"), got.q_ema.as_deref().unwrap(), want.q_ema.as_deref().unwrap(), 1e-5);
            assert!(!got.trigger, "conv {i}: the trigger is spent");
        }
    }

    let target = Tensor::<3>::from_data(TensorData::new(f.target, [b, h, c]), &device);
    let grads = GradientsParams::from_grads((y - target).powi_scalar(2).mean().backward(), &model);
    model.observe_gradients(&grads, true);
    let s = model.state.lock().unwrap();
    for (i, (got, want)) in s.convs.iter().zip(&f.state_after_store).enumerate() {
        close(&format!("conv {i} slow gradient average"), &got.grads, &want.grads, 1e-5);
        close(&format!("conv {i} fast gradient average"), &got.f_grads, &want.f_grads, 1e-4);
        assert_eq!(got.trigger, want.trigger, "conv {i}: trigger");
    }
    assert!(s.convs.iter().any(|c| c.trigger), "the fixture sets one trigger");
}
