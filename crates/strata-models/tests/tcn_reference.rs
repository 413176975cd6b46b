//! The TCN backbone of `strata online` against its PyTorch twin (`fixtures/tcn.json`, made by
//! `fixtures/make_online_fixtures.sh`): the same weights and inputs give the same forecast, and
//! the gradients of an MSE agree, through blocks whose dilation reaches past the window (which
//! strata computes as their centre tap and torch as the full padded convolution).

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use strata_models::foundation::weights::{NamedTensor, load_named};
use strata_models::lsf::tcn::TCNConfig;
use strata_models::{Architecture, Shape};

#[derive(serde::Deserialize)]
struct Fixture {
    config: serde_json::Value,
    shape: [usize; 5],
    params: BTreeMap<String, NamedTensor>,
    x: Vec<f32>,
    marks: Vec<f32>,
    target: Vec<f32>,
    y: Vec<f32>,
    loss: f32,
    grads: BTreeMap<String, Vec<f32>>,
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

#[test]
fn tcn_matches_its_pytorch_twin_forward_and_backward() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tcn.json");
    let f: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let [b, l, h, c, m] = f.shape;
    let device = Device::flex().autodiff();
    let cfg: TCNConfig = serde_json::from_value(f.config).unwrap();
    let shape = Shape { marks: m, ..Shape::lsf(l, h, c) };
    // Loaded by name, then into a model built on the autodiff device (its parameters track
    // gradients).
    let loaded = load_named(cfg.build(shape, None, &Device::flex()).unwrap(), &f.params).unwrap();
    let model = cfg.build(shape, None, &device).unwrap().load_record(loaded.into_record());
    let x = Tensor::<3>::from_data(TensorData::new(f.x, [b, l, c]), &device);
    let marks = Tensor::<3>::from_data(TensorData::new(f.marks, [b, l, m]), &device);
    let target = Tensor::<3>::from_data(TensorData::new(f.target, [b, h, c]), &device);
    let y = model.forecast(x, Some(marks));
    let got: Vec<f32> = y.clone().into_data().try_to_vec().unwrap();
    let d = worst(&got, &f.y);
    eprintln!("forecast: max abs difference {d} from PyTorch");
    assert!(d < 1e-4, "forecast differs from PyTorch by {d}");
    let loss = (y - target).powi_scalar(2).mean();
    let l: f32 = loss.clone().into_scalar();
    assert!((l - f.loss).abs() < 1e-4 * f.loss, "loss {l} vs {}", f.loss);
    let grads = loss.backward();
    let grad = |name: &str| -> Vec<f32> {
        let t = match name {
            "input_fc.weight" => model.input_fc.weight.grad(&grads).map(|g| g.into_data()),
            "regressor.weight" => model.regressor.weight.grad(&grads).map(|g| g.into_data()),
            "blocks.0.conv1.weight" => model.blocks[0].conv1.weight.grad(&grads).map(|g| g.into_data()),
            n => {
                let last = model.blocks.len() - 1;
                assert_eq!(n, format!("blocks.{last}.conv2.weight"));
                model.blocks[last].conv2.weight.grad(&grads).map(|g| g.into_data())
            }
        };
        t.expect("a gradient").try_to_vec().unwrap()
    };
    for (name, want) in &f.grads {
        let d = worst(&grad(name), want);
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        eprintln!("{name}: max abs gradient difference {d} (largest {scale})");
        assert!(d <= 1e-4 * scale.max(1.0), "{name}: gradient differs by {d}");
    }
}
