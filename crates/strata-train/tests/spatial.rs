//! Every model trains and evaluates on a spatio-temporal field simulated here: advection and
//! diffusion on a periodic 6 x 6 grid driven by a daily source, read through the same files and
//! trainer a user's data goes through (a CSV signal plus a dense CSV adjacency, or the grid).

use std::path::{Path, PathBuf};

use strata_data::prepare::DataConfig;
use strata_models::{ConvLSTMConfig, GWNetConfig, MTGNNConfig, ModelConfig, PatchTSTConfig, STCNNConfig, STGCNConfig};
use strata_train::RunConfig;
use strata_train::evaluation::run::{Results, evaluate_run};
use strata_train::tasks::forecasting::{TrainOptions, train};

const SIDE: usize = 6;
const STEPS: usize = 480;
const DAY: usize = 24;

/// Simulate `u_t` on the grid: upwind advection to the east at 0.4 cells per step, diffusion
/// 0.1, decay 0.05, and a source at cell (1, 1) following the time of day. Node 7's sensor is
/// "down" (0, the null value) for 12 steps.
fn simulate() -> Vec<f64> {
    let n = SIDE * SIDE;
    let idx = |r: usize, c: usize| (r % SIDE) * SIDE + (c % SIDE);
    let mut u = vec![0f64; n];
    let mut out = Vec::with_capacity(STEPS * n);
    let mut noise = 99u64;
    for t in 0..STEPS + 50 {
        let mut next = vec![0f64; n];
        for r in 0..SIDE {
            for c in 0..SIDE {
                let here = u[idx(r, c)];
                let lap = u[idx(r + 1, c)] + u[idx(r + SIDE - 1, c)] + u[idx(r, c + 1)] + u[idx(r, c + SIDE - 1)] - 4.0 * here;
                let adv = 0.4 * (here - u[idx(r, c + SIDE - 1)]);
                next[idx(r, c)] = here + 0.1 * lap - adv - 0.05 * here;
            }
        }
        next[idx(1, 1)] += 2.0 * (1.0 + (t as f64 * std::f64::consts::TAU / DAY as f64).sin());
        u = next;
        if t >= 50 {
            for (j, v) in u.iter().enumerate() {
                noise = noise.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let e = ((noise >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.02;
                let down = j == 7 && (200..212).contains(&(t - 50));
                out.push(if down { 0.0 } else { 1.0 + v + e });
            }
        }
    }
    out
}

/// Write the signal (`field.csv`, header = node ids) and the 4-neighbour grid graph (`grid.csv`).
fn write_field(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let n = SIDE * SIDE;
    let u = simulate();
    let mut s = (0..n).map(|j| format!("n{j}")).collect::<Vec<_>>().join(",");
    s.push('\n');
    for row in u.chunks(n) {
        s.push_str(&row.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(","));
        s.push('\n');
    }
    let signal = dir.join("field.csv");
    std::fs::write(&signal, s).unwrap();
    let mut adj = vec![vec![0u8; n]; n];
    for r in 0..SIDE {
        for c in 0..SIDE {
            let i = r * SIDE + c;
            for (dr, dc) in [(1, 0), (SIDE - 1, 0), (0, 1), (0, SIDE - 1)] {
                adj[i][((r + dr) % SIDE) * SIDE + (c + dc) % SIDE] = 1;
            }
        }
    }
    let text: String = adj.iter().map(|row| row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",") + "\n").collect();
    let graph = dir.join("grid.csv");
    std::fs::write(&graph, text).unwrap();
    (signal, graph)
}

/// Small widths so that every model trains in seconds.
fn small(model: ModelConfig) -> ModelConfig {
    match model {
        ModelConfig::Patchtst(c) => ModelConfig::Patchtst(PatchTSTConfig { patch_len: 4, stride: 2, d_model: 16, n_heads: 2, d_ff: 32, e_layers: 1, dropout: 0.0, ..c }),
        ModelConfig::Stgcn(c) => ModelConfig::Stgcn(STGCNConfig { blocks: vec![[16, 8, 16], [16, 8, 16]], output: [32, 32], dropout: 0.0, ..c }),
        ModelConfig::Gwnet(c) => ModelConfig::Gwnet(GWNetConfig { residual_channels: 16, dilation_channels: 16, skip_channels: 32, end_channels: 32, blocks: 2, dropout: 0.0, ..c }),
        ModelConfig::Transformer(c) => ModelConfig::Transformer(strata_models::TransformerConfig { d_model: 32, n_heads: 4, d_ff: 64, dropout: 0.0, label_len: 6, ..c }),
        ModelConfig::Itransformer(c) => ModelConfig::Itransformer(strata_models::ITransformerConfig { d_model: 32, n_heads: 4, d_ff: 64, dropout: 0.0, ..c }),
        ModelConfig::Mtgnn(c) => ModelConfig::Mtgnn(MTGNNConfig { subgraph_size: 8, node_dim: 16, conv_channels: 16, residual_channels: 16, skip_channels: 32, end_channels: 32, dropout: 0.0, ..c }),
        ModelConfig::Stcnn(c) => ModelConfig::Stcnn(STCNNConfig { conv_channels: 16, hidden: 32, ..c }),
        ModelConfig::Convlstm(c) => ModelConfig::Convlstm(ConvLSTMConfig { hidden: 16, layers: 1, ..c }),
        other => other,
    }
}

fn run(dir: &Path, name: &str, model: ModelConfig, data: DataConfig) -> Results {
    let mut cfg = RunConfig { name: Some(name.into()), data, model, train: Default::default(), eval: Default::default(), online: None };
    cfg.train.epochs = 8;
    cfg.train.lr = 5e-3;
    cfg.train.batch_size = 16;
    cfg.train.loss = strata_train::config::Loss::Mae;
    cfg.train.schedule = strata_train::engine::schedule::Schedule::Constant;
    cfg.train.grad_clip = Some(5.0);
    cfg.train.patience = 8;
    train(&cfg, &dir.join(name), TrainOptions { fresh: true }).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

#[test]
fn every_model_learns_the_simulated_field() {
    let dir = std::env::temp_dir().join(format!("strata-field-{}", std::process::id()));
    let (signal, graph) = write_field(&dir);
    let data = DataConfig {
        dataset: "spatial".into(),
        path: Some(signal.clone()),
        graph: Some(graph),
        steps_per_day: Some(DAY),
        seq_len: 12,
        pred_len: 12,
        ..Default::default()
    };
    // Distribution heads train on long-sequence data only (tests/conformance.rs covers them).
    let mut runs: Vec<(String, ModelConfig, DataConfig)> =
        ModelConfig::all_defaults().into_iter().filter(|m| !m.capabilities().probabilistic).map(|m| (m.name().to_string(), small(m), data.clone())).collect();
    // The convolutional seed models also run on the grid itself, without a graph.
    let grid = DataConfig { graph: None, grid: Some([SIDE, SIDE]), ..data.clone() };
    runs.push(("stcnn_grid".into(), small(ModelConfig::Stcnn(Default::default())), grid.clone()));
    runs.push(("convlstm_grid".into(), small(ModelConfig::Convlstm(Default::default())), grid));
    for (name, model, data) in runs {
        let r = run(&dir, &name, model, data);
        let st = r.spatial.as_ref().unwrap();
        let (model_mae, ha, last) = (st.test.average.mae, st.baselines.historical_average.average.mae, st.baselines.last_value.average.mae);
        eprintln!("{name}: test masked MAE {model_mae:.4} (historical average {ha:.4}, last value {last:.4})");
        // 480 steps -> 457 windows: 320 / 46 / 91; every test window is scored at 3 horizons.
        assert_eq!(r.data.windows, [320, 46, 91], "{name}");
        assert_eq!(st.test.horizons.iter().map(|m| m.horizon).collect::<Vec<_>>(), [3, 6, 12]);
        assert!(model_mae.is_finite() && model_mae < 0.6 * last, "{name}: {model_mae} vs last value {last}");
    }
}

#[test]
fn the_null_value_is_masked_and_node_counts_are_enforced() {
    let dir = std::env::temp_dir().join(format!("strata-field-mask-{}", std::process::id()));
    let (signal, _) = write_field(&dir);
    let data = DataConfig { dataset: "spatial".into(), path: Some(signal), steps_per_day: Some(DAY), seq_len: 12, pred_len: 12, ..Default::default() };
    let mut cfg = RunConfig { name: None, data, model: ModelConfig::Stid(Default::default()), train: Default::default(), eval: Default::default(), online: None };
    cfg.train.epochs = 1;
    let run_dir = dir.join("stid");
    let r = train(&cfg, &run_dir, TrainOptions { fresh: true }).unwrap();
    let st = r.spatial.unwrap();
    // Node 7 is down for 12 steps (rows 200..212 of the simulation, all in the training part), so
    // the test targets have no null values: every one of 91 windows x 12 steps x 36 nodes counts.
    assert_eq!(st.test.average.count, 91 * 12 * 36);
    // STGCN needs a graph; the error says so before anything trains.
    let mut no_graph = cfg.clone();
    no_graph.model = ModelConfig::Stgcn(Default::default());
    let e = train(&no_graph, &dir.join("stgcn"), TrainOptions { fresh: true }).unwrap_err().to_string();
    assert!(e.contains("stgcn needs a graph"), "{e}");
    // The trained 36-node model refuses 20-node data.
    let other = dir.join("other.csv");
    let header = (0..20).map(|j| format!("s{j}")).collect::<Vec<_>>().join(",");
    let rows: String = (0..100).map(|t| (0..20).map(|j| format!("{}", 1 + (t + j) % 5)).collect::<Vec<_>>().join(",") + "\n").collect();
    std::fs::write(&other, format!("{header}\n{rows}")).unwrap();
    let e = evaluate_run(&run_dir, &[format!("data.path={:?}", other.display().to_string())]).unwrap_err().to_string();
    assert!(e.contains("trained on 36 nodes") && e.contains("has 20"), "{e}");
}
