//! Distribution heads against scipy (`fixtures/distributions.json`, written by
//! `fixtures/make_prob_fixtures.sh`), and seeded sampling against closed-form moments.

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;
use strata_models::layers::distribution::{Distribution, Family, lgamma};

fn fixture() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/distributions.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        x => vec![x.as_f64().unwrap() as f32],
    }
}

fn t2(v: Vec<f32>, k: usize, d: &Device) -> Tensor<2> {
    let n = v.len() / k;
    Tensor::from_data(TensorData::new(v, [n, k]), d)
}

fn vec1(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: strata {g} vs reference {w}");
    }
}

#[test]
fn log_densities_match_scipy() {
    let f = fixture();
    let d = Device::flex();
    let y = Tensor::<1>::from_data(TensorData::new(flat(&f["y"]), [12]), &d);
    let (loc, scale) = (t2(flat(&f["loc"]), 1, &d), t2(flat(&f["scale"]), 1, &d));
    let normal = Distribution { family: Family::Normal, loc: loc.clone(), scale: scale.clone(), df: None, log_weights: None };
    assert_close(&vec1(normal.log_prob(y.clone())), &flat(&f["normal_logpdf"]), 1e-5, "normal");
    let t = Distribution { family: Family::StudentT, loc, scale, df: Some(t2(flat(&f["df"]), 1, &d)), log_weights: None };
    assert_close(&vec1(t.log_prob(y.clone())), &flat(&f["student_t_logpdf"]), 1e-5, "student-t");
    let logits = t2(flat(&f["mix_logits"]), 3, &d);
    let mix = Distribution {
        family: Family::Mixture(3),
        loc: t2(flat(&f["mix_loc"]), 3, &d),
        scale: t2(flat(&f["mix_scale"]), 3, &d),
        df: None,
        log_weights: Some(burn::tensor::activation::log_softmax(logits, 1)),
    };
    assert_close(&vec1(mix.log_prob(y)), &flat(&f["mixture_logpdf"]), 1e-5, "mixture");
    let xs = [0.1f32, 0.5, 1.0, 1.5, 2.5, 7.3, 31.0];
    let g: Vec<f32> = lgamma(t2(xs.to_vec(), 1, &d)).into_data().try_into_vec().unwrap();
    assert_close(&g, &flat(&f["gammaln"]), 1e-5, "lgamma");
}

#[test]
fn samples_are_seeded_and_have_the_right_moments() {
    let d = Device::flex();
    // Raw parameters: loc 3, softplus(raw) = 2 -> raw = ln(e^2 - 1); df = 2 + softplus(raw) = 6.
    let raw_scale = (2f32.exp() - 1.0).ln();
    let raw_df = (4f32.exp() - 1.0).ln();
    let normal = Distribution::from_raw(Family::Normal, t2(vec![3.0, raw_scale], 2, &d));
    let s = normal.sample(40_000, 7);
    assert_eq!(s, normal.sample(40_000, 7));
    assert_ne!(s[..10], normal.sample(10, 8)[..]);
    let mean = s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
    let var = s.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / s.len() as f64;
    // Standard errors: 2/sqrt(40000) = 0.01 for the mean; the variance 4 within 3%.
    assert!((mean - 3.0).abs() < 0.04 && (var - 4.0).abs() < 0.12, "mean {mean} var {var}");
    let t = Distribution::from_raw(Family::StudentT, t2(vec![0.0, raw_scale, raw_df], 3, &d));
    let s = t.sample(40_000, 1);
    let var = s.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / s.len() as f64;
    // Var of scale * t(6) = 4 * 6 / 4 = 6.
    assert!((var - 6.0).abs() < 0.5, "student-t variance {var}");
    // A two-component mixture at -5 and 5 with weights 0.25 / 0.75: mean 2.5.
    let raw = vec![-5.0, 5.0, -20.0, -20.0, 0.0, 3f32.ln()];
    let mix = Distribution::from_raw(Family::Mixture(2), t2(raw, 6, &d));
    let m = vec1(mix.mean())[0];
    assert!((m - 2.5).abs() < 1e-5, "mixture mean {m}");
    let s = mix.sample(40_000, 3);
    let share = s.iter().filter(|&&v| v > 0.0).count() as f64 / s.len() as f64;
    assert!((share - 0.75).abs() < 0.015, "share of the upper component {share}");
}

/// beta-NLL against its closed form for a Normal (hand-derived): the loss is
/// `mean_i s_i^(2 beta) (z_i^2 / 2 + ln s_i + ln(2 pi) / 2)` with the weight held constant, so the
/// gradient on the mean is `s^(2 beta) (mu - y) / s^2 / n` (at beta 1: `(mu - y) / n`, half the
/// squared error's) and on the scale `s^(2 beta) (1 / s - (y - mu)^2 / s^3) / n`.
#[test]
fn beta_nll_weights_by_the_variance_without_its_gradient() {
    let device = Device::flex().autodiff();
    let (mu, s, y) = ([0.5f32, -1.0, 2.0], [0.5f32, 1.0, 2.0], [1.0f32, 0.0, 1.5]);
    let half_log_2pi = 0.5 * (2.0 * std::f32::consts::PI).ln();
    for beta in [0.0f32, 0.5, 1.0] {
        let loc = t2(mu.to_vec(), 1, &device).require_grad();
        let scale = t2(s.to_vec(), 1, &device).require_grad();
        let d = Distribution { family: Family::Normal, loc: loc.clone(), scale: scale.clone(), df: None, log_weights: None };
        let loss = d.beta_nll(Tensor::from_data(TensorData::new(y.to_vec(), [3]), &device), beta as f64);
        let got: f32 = loss.clone().into_scalar();
        let w = |i: usize| s[i].powf(2.0 * beta);
        let want: f32 = (0..3).map(|i| w(i) * (0.5 * ((y[i] - mu[i]) / s[i]).powi(2) + s[i].ln() + half_log_2pi)).sum::<f32>() / 3.0;
        assert!((got - want).abs() < 1e-5, "beta {beta}: loss {got} vs {want}");
        let grads = loss.backward();
        let g_loc = vec1(loc.grad(&grads).unwrap().reshape([3]));
        let g_scale = vec1(scale.grad(&grads).unwrap().reshape([3]));
        let want_loc: Vec<f32> = (0..3).map(|i| w(i) * (mu[i] - y[i]) / s[i].powi(2) / 3.0).collect();
        let want_scale: Vec<f32> = (0..3).map(|i| w(i) * (1.0 / s[i] - (y[i] - mu[i]).powi(2) / s[i].powi(3)) / 3.0).collect();
        assert_close(&g_loc, &want_loc, 1e-5, "d loss / d loc");
        assert_close(&g_scale, &want_scale, 1e-5, "d loss / d scale");
    }
}

/// Predictive variances in closed form: Normal `s^2`, Student-t `s^2 df / (df - 2)`, and a
/// two-component mixture `sum w (s^2 + mu^2) - (sum w mu)^2`.
#[test]
fn variances_in_closed_form() {
    let device = Device::flex();
    let t = |v: Vec<f32>, k: usize| t2(v, k, &device);
    let st = Distribution { family: Family::StudentT, loc: t(vec![0.0, 1.0], 1), scale: t(vec![2.0, 0.5], 1), df: Some(t(vec![3.0, 6.0], 1)), log_weights: None };
    assert_close(&vec1(st.variance()), &[12.0, 0.375], 1e-6, "student-t variance");
    let (w0, w1) = (0.25f32, 0.75f32);
    let mix = Distribution {
        family: Family::Mixture(2),
        loc: t(vec![-1.0, 2.0], 2),
        scale: t(vec![0.5, 1.5], 2),
        df: None,
        log_weights: Some(t(vec![w0.ln(), w1.ln()], 2)),
    };
    let mean = w0 * -1.0 + w1 * 2.0;
    let want = w0 * (0.25 + 1.0) + w1 * (2.25 + 4.0) - mean * mean;
    assert_close(&vec1(mix.variance()), &[want], 1e-5, "mixture variance");
    let normal = Distribution { family: Family::Normal, loc: t(vec![3.0], 1), scale: t(vec![0.7], 1), df: None, log_weights: None };
    assert_close(&vec1(normal.variance()), &[0.49], 1e-6, "normal variance");
}
