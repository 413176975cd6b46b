//! Step-time benchmark of strata's models at fixed shapes; prints one JSON line per case.
//! `bench/run.sh` runs this and the PyTorch twin (`bench/torch_bench.py`) and reports ratios.
//!
//! Usage: strata-bench [--warmup N] [--iters N] [--case NAME]...

/// mimalloc keeps freed tensor buffers for reuse; glibc's malloc returned large ones to the OS
/// and every op paid page faults to get them back (~30% of a PatchTST inference batch).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use strata_data::window::{Batch, Series, Windows, epoch_order};
use strata_models::{DLinearConfig, Forecaster, Model, PatchTSTConfig, Shape};
use strata_train::config::TrainConfig;
use strata_train::trainer::build_optimizer;

struct Case {
    name: &'static str,
    model: fn(Shape, &Device) -> Model,
    batch: usize,
    shape: Shape,
}

fn patchtst_ref(shape: Shape, device: &Device) -> Model {
    let cfg = PatchTSTConfig { d_model: 128, n_heads: 16, d_ff: 256, e_layers: 3, dropout: 0.2, ..Default::default() };
    Model::PatchTST(cfg.init(shape, device))
}
fn patchtst_etth1(shape: Shape, device: &Device) -> Model {
    Model::PatchTST(PatchTSTConfig::default().init(shape, device))
}
fn dlinear(shape: Shape, device: &Device) -> Model {
    Model::DLinear(DLinearConfig::default().init(shape, device))
}

const SHAPE: Shape = Shape::lsf(336, 96, 7);
const CASES: &[Case] = &[
    Case { name: "dlinear", model: dlinear, batch: 32, shape: SHAPE },
    Case { name: "patchtst", model: patchtst_ref, batch: 32, shape: SHAPE },
    Case { name: "patchtst_etth1", model: patchtst_etth1, batch: 128, shape: SHAPE },
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // As the strata binary: never purge freed memory (mimalloc option 15, purge_delay).
    unsafe { mi_option_set(15, -1) };
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str, d: usize| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (warmup, iters) = (arg("--warmup", 3), arg("--iters", 10));
    let infer_only = args.iter().any(|a| a == "--infer-only");
    let only: Vec<&str> = args.windows(2).filter(|w| w[0] == "--case").map(|w| w[1].as_str()).collect();
    for case in CASES.iter().filter(|c| only.is_empty() || only.contains(&c.name)) {
        let (b, Shape { seq_len: l, pred_len: h, channels: c, .. }) = (case.batch, case.shape);
        let device = Device::flex().autodiff();
        device.seed(0);
        let mut model = (case.model)(case.shape, &device);
        let mut optim = build_optimizer(&TrainConfig::default());
        // Windows over a random series: the batching cost is measured inside the step.
        let rows = 4096;
        let data: Vec<f32> = Tensor::<2>::random([rows, c], Distribution::Normal(0.0, 1.0), &Device::flex()).into_data().try_to_vec().unwrap();
        let series = Series { data: data.into(), rows, channels: c };
        let w = Windows { target: series.clone(), series, start: 0, end: rows, seq_len: l, pred_len: h };
        let order = epoch_order(w.len(), Some(1));
        let mut batch = Batch::default();
        let (mut step, mut fill, mut infer) = (vec![], vec![], vec![]);
        // Millisecond-scale cases get more iterations for a stable median.
        let (warmup, iters) = if case.name == "dlinear" { (warmup * 20, iters * 20) } else { (warmup, iters) };
        for i in 0..warmup + iters {
            let t0 = Instant::now();
            w.fill(&order[(i * b) % (w.len() - b)..][..b], &mut batch);
            let t1 = Instant::now();
            if infer_only {
                let valid = model.valid();
                let x = Tensor::<3>::from_data(TensorData::new(batch.x.clone(), [b, l, c]), &Device::flex());
                let _p: Vec<f32> = valid.forecast(x).into_data().try_to_vec().unwrap();
                continue;
            }
            let x = Tensor::<3>::from_data(TensorData::new(batch.x.clone(), [b, l, c]), &device);
            let y = Tensor::<3>::from_data(TensorData::new(batch.y.clone(), [b, h, c]), &device);
            let loss = (model.forecast(x) - y).powi_scalar(2).mean();
            let _v: f32 = loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model, grads);
            let t2 = Instant::now();
            let valid = model.valid();
            let x = Tensor::<3>::from_data(TensorData::new(batch.x.clone(), [b, l, c]), &Device::flex());
            let _p: Vec<f32> = valid.forecast(x).into_data().try_to_vec().unwrap();
            let t3 = Instant::now();
            if i >= warmup {
                fill.push((t1 - t0).as_secs_f64());
                step.push((t2 - t0).as_secs_f64());
                infer.push((t3 - t2).as_secs_f64());
            }
        }
        println!(
            "{{\"impl\":\"strata\",\"case\":\"{}\",\"batch\":{b},\"train_step_ms\":{:.3},\"infer_ms\":{:.3},\"batching_ms\":{:.4},\"params\":{}}}",
            case.name,
            median(step) * 1e3,
            median(infer) * 1e3,
            median(fill) * 1e3,
            model.num_params()
        );
    }
}
