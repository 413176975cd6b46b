//! Covariate-aware models against their reference packages: same weights, same inputs (the
//! series and past-observed, future-known and static covariates), same output. Fixture:
//! `fixtures/covariate_models.json`, made by `fixtures/make_covariate_fixtures.sh` (TiDE from
//! neuralforecast, the package its users run).

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use strata_models::foundation::weights::{NamedTensor, load_named};
use strata_models::{Architecture, CovariateShape, Covariates, Shape, TiDEConfig};

#[derive(serde::Deserialize)]
struct Fixture {
    config: serde_json::Value,
    shape: [usize; 4],
    /// Past-observed, future-known and static covariates per series.
    widths: [usize; 3],
    params: BTreeMap<String, NamedTensor>,
    x: Vec<f32>,
    past: Vec<f32>,
    future: Vec<f32>,
    statics: Vec<f32>,
    y_eval: Vec<f32>,
}

fn fixture(name: &str) -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/covariate_models.json");
    let mut all: BTreeMap<String, Fixture> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.remove(name).unwrap_or_else(|| panic!("no fixture {name}"))
}

/// TiDE's forecast of the fixture's inputs with its weights, against neuralforecast's.
fn check_tide(name: &str) {
    let f = fixture(name);
    let [b, l, h, c] = f.shape;
    let [p, fu, s] = f.widths;
    let device = Device::flex();
    let cfg: TiDEConfig = serde_json::from_value(f.config).unwrap();
    let shape = Shape { covariates: CovariateShape { past: p, future: fu, statics: s, groups: 1 }, ..Shape::lsf(l, h, c) };
    let model = load_named(cfg.build(shape, None, &device).unwrap(), &f.params).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cov = Covariates {
        past: Some(Tensor::from_data(TensorData::new(f.past, [b, l, 1, p]), &device)),
        future: Some(Tensor::from_data(TensorData::new(f.future, [b, l + h, 1, fu]), &device)),
        statics: Some(Tensor::from_data(TensorData::new(f.statics, [1, s]), &device)),
    };
    let y = model.forward(Tensor::from_data(TensorData::new(f.x, [b, l, c]), &device), None, cov);
    let got: Vec<f32> = y.into_data().try_to_vec().unwrap();
    assert_eq!(got.len(), f.y_eval.len(), "{name}");
    let worst = got.iter().zip(&f.y_eval).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("{name}: max abs difference {worst} from neuralforecast");
    assert!(worst < 1e-4, "{name}: max abs difference {worst} from neuralforecast");
}

#[test]
fn tide_matches_neuralforecast_with_all_three_covariate_kinds() {
    check_tide("tide_no_final_norm");
}

#[test]
fn tide_with_its_final_norm_matches_neuralforecast() {
    check_tide("tide");
}

/// TimeXer forecasting three series together (TSLib's multivariate mode: every series' window
/// is an exogenous token), against neuralforecast's TimeXer with its ReLU feed-forward.
#[test]
fn timexer_matches_neuralforecast_on_several_series() {
    let f = fixture("timexer");
    let [b, l, h, c] = f.shape;
    let device = Device::flex();
    let cfg: strata_models::TimeXerConfig = serde_json::from_value(f.config).unwrap();
    let model = load_named(cfg.build(Shape::lsf(l, h, c), None, &device).unwrap(), &f.params).unwrap_or_else(|e| panic!("timexer: {e}"));
    let y = model.forward(Tensor::from_data(TensorData::new(f.x, [b, l, c]), &device), None, Covariates::default());
    let got: Vec<f32> = y.into_data().try_to_vec().unwrap();
    assert_eq!(got.len(), f.y_eval.len());
    let worst = got.iter().zip(&f.y_eval).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("timexer: max abs difference {worst} from neuralforecast");
    assert!(worst < 1e-4, "timexer: max abs difference {worst} from neuralforecast");
}
