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
use strata_models::{DLinearConfig, GWNetConfig, Model, PatchTSTConfig, STGCNConfig, Shape, TransformerConfig};
use strata_train::config::TrainConfig;
use strata_train::engine::build_optimizer;

struct Case {
    name: &'static str,
    model: fn(Shape, &[f32], &Device) -> Model,
    batch: usize,
    shape: Shape,
}

fn patchtst_ref(shape: Shape, _: &[f32], device: &Device) -> Model {
    let cfg = PatchTSTConfig { d_model: 128, n_heads: 16, d_ff: 256, e_layers: 3, dropout: 0.2, ..Default::default() };
    Model::PatchTST(cfg.init(shape, device))
}
fn patchtst_etth1(shape: Shape, _: &[f32], device: &Device) -> Model {
    Model::PatchTST(PatchTSTConfig::default().init(shape, device))
}
/// TSLib's ETTh1 Transformer (`Transformer_ETTh1.sh`): d_model 512, 8 heads, 2 + 1 layers, FFN
/// 2048, label_len 48, dropout 0.1 (the defaults), point head; no calendar embeddings (no
/// marks), as in the twin.
fn transformer(shape: Shape, _: &[f32], device: &Device) -> Model {
    Model::Transformer(TransformerConfig::default().init(shape, device))
}
fn dlinear(shape: Shape, _: &[f32], device: &Device) -> Model {
    Model::DLinear(DLinearConfig::default().init(shape, device))
}
fn stgcn(shape: Shape, adj: &[f32], device: &Device) -> Model {
    Model::STGCN(STGCNConfig::default().init(shape, Some(adj), device))
}
fn gwnet(shape: Shape, adj: &[f32], device: &Device) -> Model {
    Model::GWNet(GWNetConfig::default().init(shape, Some(adj), device))
}

const SHAPE: Shape = Shape::lsf(336, 96, 7);
/// The graph shape: 207 nodes (METR-LA's graph), 12 -> 12 steps, value + time of day.
const GRAPH: Shape = Shape { seq_len: 12, pred_len: 12, channels: 207, features: 2, steps_per_day: 288, tod: true, dow: false, grid: None, marks: 0, covariates: strata_models::CovariateShape { past: 0, future: 0, statics: 0, groups: 0 } };
const CASES: &[Case] = &[
    Case { name: "dlinear", model: dlinear, batch: 32, shape: SHAPE },
    Case { name: "patchtst", model: patchtst_ref, batch: 32, shape: SHAPE },
    Case { name: "patchtst_etth1", model: patchtst_etth1, batch: 128, shape: SHAPE },
    Case { name: "transformer", model: transformer, batch: 32, shape: Shape::lsf(96, 96, 7) },
    Case { name: "stgcn", model: stgcn, batch: 64, shape: GRAPH },
    Case { name: "gwnet", model: gwnet, batch: 64, shape: GRAPH },
];

/// METR-LA's adjacency from `$STRATA_DATA` (the PyTorch twin reads the same file).
fn metr_la() -> Vec<f32> {
    let path = strata_data::data_root().join("metr-la_graph/adj_mx.derived.npy");
    strata_data::npy::read_npy(&path).unwrap_or_else(|e| panic!("{e}")).1
}

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
        let (b, Shape { seq_len: l, pred_len: h, channels: c, features: f, .. }) = (case.batch, case.shape);
        let device = Device::flex().autodiff();
        device.seed(0);
        let adj = if case.shape.features > 1 { metr_la() } else { vec![] };
        let mut model = (case.model)(case.shape, &adj, &device);
        let mut optim = build_optimizer(&TrainConfig::default());
        // Windows over a random series: the batching cost is measured inside the step.
        let rows = 4096;
        let data: Vec<f32> = Tensor::<2>::random([rows, c * f], Distribution::Normal(0.0, 1.0), &Device::flex()).into_data().try_to_vec().unwrap();
        let target: Vec<f32> = data.chunks_exact(f).map(|v| v[0]).collect();
        let w = Windows {
            series: Series { data: data.into(), rows, channels: c * f },
            target: Series { data: target.into(), rows, channels: c },
            marks: None,
            covariates: None,
            start: 0,
            end: rows,
            seq_len: l,
            pred_len: h,
            stride: 1,
        };
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
                let x = Tensor::<4>::from_data(TensorData::new(batch.x.clone(), [b, l, c, f]), &Device::flex());
                let _p: Vec<f32> = valid.forward(x).into_data().try_to_vec().unwrap();
                continue;
            }
            let x = Tensor::<4>::from_data(TensorData::new(batch.x.clone(), [b, l, c, f]), &device);
            let y = Tensor::<3>::from_data(TensorData::new(batch.y.clone(), [b, h, c]), &device);
            // Long-sequence cases train on MSE, graph cases on MAE (as their papers do).
            let err = model.forward(x) - y;
            let loss = if f > 1 { err.abs().mean() } else { err.powi_scalar(2).mean() };
            let _v: f32 = loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model, grads);
            let t2 = Instant::now();
            let valid = model.valid();
            let x = Tensor::<4>::from_data(TensorData::new(batch.x.clone(), [b, l, c, f]), &Device::flex());
            let _p: Vec<f32> = valid.forward(x).into_data().try_to_vec().unwrap();
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
