//! strata's models against the PyTorch twin (`bench/torch_models.py`): same weights, same input,
//! same output. Fixture: `fixtures/models.json`, made by `fixtures/make_model_fixtures.sh`.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use strata_models::foundation::weights::{NamedTensor, load_named};
use strata_models::{DLinearConfig, Forecaster, PatchTSTConfig, Shape};

#[derive(serde::Deserialize)]
struct Fixture {
    config: serde_json::Value,
    shape: [usize; 4],
    params: BTreeMap<String, NamedTensor>,
    x: Vec<f32>,
    y_eval: Vec<f32>,
    y_train: Option<Vec<f32>>,
}

fn fixtures() -> BTreeMap<String, Fixture> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/models.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_close(got: Tensor<3>, want: &[f32], tol: f32, what: &str) {
    let got: Vec<f32> = got.into_data().try_to_vec().unwrap();
    assert_eq!(got.len(), want.len(), "{what}");
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < tol, "{what}: max abs difference {worst}");
}

#[test]
fn dlinear_matches_pytorch() {
    let f = fixtures().remove("dlinear").unwrap();
    let [b, l, h, c] = f.shape;
    let device = Device::flex();
    let cfg: DLinearConfig = serde_json::from_value(f.config).unwrap();
    let m = load_named(cfg.init(Shape::lsf(l, h, c), &device), &f.params).unwrap();
    let y = m.forecast(Tensor::from_data(TensorData::new(f.x, [b, l, c]), &device));
    assert_close(y, &f.y_eval, 1e-5, "dlinear");
}

#[test]
fn patchtst_matches_pytorch_in_eval_and_train_mode() {
    let f = fixtures().remove("patchtst").unwrap();
    let [b, l, h, c] = f.shape;
    let cfg: PatchTSTConfig = serde_json::from_value(f.config).unwrap();
    let shape = Shape::lsf(l, h, c);
    // Train mode (BatchNorm on batch statistics) needs the autodiff device.
    let device = Device::flex().autodiff();
    let m = load_named(cfg.init(shape, &device), &f.params).unwrap();
    let x = TensorData::new(f.x, [b, l, c]);
    // Eval first: a train-mode pass updates the BatchNorm running statistics, as in PyTorch.
    let y = m.valid().forecast(Tensor::from_data(x.clone(), &Device::flex()));
    assert_close(y, &f.y_eval, 1e-4, "patchtst eval mode");
    let y = m.forecast(Tensor::from_data(x, &device));
    assert_close(y, f.y_train.as_ref().unwrap(), 1e-4, "patchtst train mode");
}
