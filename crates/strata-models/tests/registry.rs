//! The registry's dispatch, through the public API: attention maps, the location-agnostic
//! MTGNN, learned adjacencies.

use burn::module::Module;
use burn::tensor::{Device, Distribution as Init, Tensor};
use strata_models::*;

/// Attention maps come from the same pass as the forecast: every row is a distribution over
/// the keys, and the shapes follow each model's tokens.
#[test]
fn attention_maps_are_row_stochastic_with_the_models_token_shapes() {
    let device = Device::flex();
    let shape = Shape { marks: 4, ..Shape::lsf(32, 8, 3) };
    let x = Tensor::<4>::random([2, 32, 3, 1], Init::Normal(0.0, 1.0), &device);
    let marks = || Some(Marks { x: Tensor::zeros([2, 32, 4], &device), y: Tensor::zeros([2, 8, 4], &device) });
    let cases: Vec<(ModelConfig, Vec<[usize; 4]>)> = vec![
        // PatchTST: channels folded into the batch, 32 steps -> 3 patches of 16 stride 8 (+ end pad).
        (ModelConfig::Patchtst(PatchTSTConfig { e_layers: 2, n_heads: 4, ..Default::default() }), vec![[6, 4, 4, 4]; 2]),
        // iTransformer: 3 variate tokens + 4 calendar tokens.
        (ModelConfig::Itransformer(ITransformerConfig { e_layers: 1, n_heads: 8, ..Default::default() }), vec![[2, 8, 7, 7]]),
        // Transformer: encoder self-attention over 32 steps, decoder (16 label + 8 horizon steps) cross-attention.
        (ModelConfig::Transformer(TransformerConfig { e_layers: 1, d_layers: 1, n_heads: 8, label_len: 16, ..Default::default() }), vec![[2, 8, 32, 32], [2, 8, 16 + 8, 32]]),
    ];
    for (cfg, shapes) in cases {
        let m = cfg.init(shape, None, &device).valid();
        let maps = m.attention(x.clone(), marks()).expect("an attention model");
        let got: Vec<[usize; 4]> = maps.iter().map(|(_, w)| w.dims()).collect();
        assert_eq!(got, shapes, "{}", cfg.name());
        for (name, w) in maps {
            let sums: Vec<f32> = w.sum_dim(3).into_data().convert::<f32>().try_into_vec().unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "{} {name}", cfg.name());
        }
    }
    assert!(ModelConfig::Dlinear(DLinearConfig::default()).init(shape, None, &device).attention(x, None).is_none());
}

/// STemDist's MTGNN has no per-node parameter: one model forecasts any number of
/// locations, and permuting the locations permutes the forecast (every graph entry kept:
/// the top-k choice among saturated, equal scores follows the node index).
#[test]
fn location_encoder_mtgnn_is_location_agnostic() {
    let device = Device::flex();
    let cfg = MTGNNConfig { location_encoder: true, subgraph_size: 30, conv_channels: 8, residual_channels: 8, skip_channels: 16, end_channels: 16, ..Default::default() };
    // Built for 30 nodes so that top-k (k = min(30, nodes at init)) keeps every entry at 10 and 23.
    let m = cfg.init(Shape { features: 2, ..Shape::lsf(12, 6, 30) }, None, &device);
    for n in [10, 23] {
        // A fixed input (the global RNG is shared by parallel tests): smooth, distinct per location.
        let vals: Vec<f32> = (0..3 * 12 * n * 2).map(|i| ((i as f32) * 0.37).sin() + 0.1 * ((i * 7 % 13) as f32 - 6.0)).collect();
        let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(vals, [3, 12, n, 2]), &device);
        let loc = x.clone().mean_dim(0).reshape([12, n, 2]).permute([1, 0, 2]).reshape([n, 24]);
        let y = m.forward_located(x.clone(), loc.clone());
        assert_eq!(y.dims(), [3, 6, n]);
        let perm: Vec<i64> = (0..n as i64).rev().collect();
        let idx = Tensor::<1, burn::tensor::Int>::from_data(burn::tensor::TensorData::new(perm, [n]), &device);
        let yp = m.forward_located(x.select(2, idx.clone()), loc.select(0, idx.clone()));
        let scale: f32 = y.clone().abs().max().into_scalar();
        let diff: f32 = (yp - y.select(2, idx)).abs().max().into_scalar();
        // Summation order changes with the permutation: equal up to float rounding.
        assert!(diff <= 1e-5 * scale.max(1.0), "n {n}: {diff} (output scale {scale})");
    }
    assert!(ModelConfig::Mtgnn(cfg).check(&Shape::lsf(12, 6, 10), false).is_err());
}

#[test]
fn graph_models_expose_the_adjacency_they_learn() {
    let device = Device::flex();
    let shape = Shape { features: 1, ..Shape::lsf(12, 12, 10) };
    let rows = |t: Tensor<2>| -> Vec<Vec<f32>> {
        let [n, _] = t.dims();
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap().chunks(n).map(|r| r.to_vec()).collect()
    };
    // Graph WaveNet: softmax rows.
    let g = ModelConfig::Gwnet(GWNetConfig::default()).init(shape, None, &device).learned_adjacency().unwrap();
    assert_eq!(g.dims(), [10, 10]);
    assert!(rows(g).iter().all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
    // MTGNN: at most top-k non-negative entries per row.
    let k = MTGNNConfig { subgraph_size: 4, ..Default::default() }.subgraph_size;
    let m = ModelConfig::Mtgnn(MTGNNConfig { subgraph_size: 4, ..Default::default() }).init(shape, None, &device).learned_adjacency().unwrap();
    for r in rows(m) {
        assert!(r.iter().all(|v| *v >= 0.0));
        assert!(r.iter().filter(|v| **v > 0.0).count() <= k);
    }
    assert!(ModelConfig::Stid(STIDConfig::default()).init(shape, None, &device).learned_adjacency().is_none());
}

/// Dynamic graphs: a model given every sample the same graph as its static one forecasts the
/// same; given different graphs per sample, each sample follows its own graph.
#[test]
fn a_graph_per_sample_equal_to_the_static_graph_forecasts_the_same() {
    let device = Device::flex();
    let n = 5;
    let adj: Vec<f32> = (0..n * n).map(|k| if (k / n + 1) % n == k % n { 1.0 + (k % 3) as f32 } else { 0.0 }).collect();
    let other: Vec<f32> = (0..n * n).map(|k| if (k % n + 1) % n == k / n { 1.0 } else { 0.0 }).collect();
    let shape = Shape::lsf(12, 3, n);
    let x = Tensor::<4>::random([2, 12, n, 1], Init::Normal(0.0, 1.0), &device);
    let same = Tensor::<3>::from_data(burn::tensor::TensorData::new([adj.clone(), adj.clone()].concat(), [2, n, n]), &device);
    let mixed = Tensor::<3>::from_data(burn::tensor::TensorData::new([adj.clone(), other.clone()].concat(), [2, n, n]), &device);
    let mtgnn = MTGNNConfig { prior: true, subgraph_size: 3, node_dim: 8, conv_channels: 8, residual_channels: 8, skip_channels: 8, end_channels: 8, dropout: 0.0, ..Default::default() };
    for cfg in [ModelConfig::Stgcn(STGCNConfig { dropout: 0.0, ..Default::default() }), ModelConfig::Gwnet(GWNetConfig::default()), ModelConfig::Mtgnn(mtgnn)] {
        assert!(cfg.dynamic_graph());
        let m = cfg.init(shape, Some(&adj), &device).valid();
        let stat: Vec<f32> = m.forward_marked(x.clone(), None).into_data().try_into_vec().unwrap();
        let dynm: Vec<f32> = m.forward_graph(x.clone(), None, Some(same.clone())).into_data().try_into_vec().unwrap();
        for (a, b) in stat.iter().zip(&dynm) {
            assert!((a - b).abs() < 1e-4, "{}: {a} vs {b}", cfg.name());
        }
        // Sample 1 on the other graph: its forecast is the static model's on that graph.
        let on_other = cfg.init(shape, Some(&other), &device).valid();
        let on_other = on_other.load_record(m.clone().into_record());
        let want: Vec<f32> = on_other.forward_marked(x.clone(), None).into_data().try_into_vec().unwrap();
        let got: Vec<f32> = m.forward_graph(x.clone(), None, Some(mixed.clone())).into_data().try_into_vec().unwrap();
        let half = got.len() / 2;
        for (a, b) in got[half..].iter().zip(&want[half..]) {
            assert!((a - b).abs() < 1e-4, "{}: {a} vs {b}", cfg.name());
        }
        for (a, b) in got[..half].iter().zip(&stat[..half]) {
            assert!((a - b).abs() < 1e-4, "{}: {a} vs {b}", cfg.name());
        }
    }
}
