//! Small generated data and tiny settings shared by the unit tests.

use strata_data::synthetic::{SyntheticConfig, generate};
use strata_models::MTGNNConfig;

use crate::stdata::StData;
use crate::config::{CondTsfConfig, DistillConfig, MttConfig};

/// 24 synthetic locations x 4 days of hourly steps, 12 -> 12 windows (generated once per
/// test process: the tests run in parallel).
pub fn small_data() -> StData {
    static DATA: std::sync::OnceLock<StData> = std::sync::OnceLock::new();
    DATA.get_or_init(generate_small).clone()
}

fn generate_small() -> StData {
    let dir = std::env::temp_dir().join(format!("strata-distill-{}", std::process::id()));
    generate(&SyntheticConfig { nodes: 24, days: 4, steps_per_day: 24, ..Default::default() }).write(&dir).unwrap();
    let cfg = strata_data::DataConfig {
        dataset: "spatial".into(),
        path: Some(dir.join("signal.npy")),
        graph: Some(dir.join("graph.csv")),
        graph_weights: strata_data::graph::EdgeWeights::Raw,
        graph_symmetric: true,
        steps_per_day: Some(24),
        seq_len: 12,
        pred_len: 12,
        ..Default::default()
    };
    StData::from_prepared(&strata_data::prepare_spatial(&cfg).unwrap())
}

pub fn tiny() -> DistillConfig {
    let model = MTGNNConfig { location_encoder: true, conv_channels: 8, residual_channels: 8, skip_channels: 8, end_channels: 16, layers: 2, ..Default::default() };
    DistillConfig { temporal: 0.2, spatial: 0.25, outer: 2, inner: 2, subsets: 2, batch: 8, model_epochs: 1, eval_every: 1, eval_epochs: 2, model, mtt: tiny_mtt(), condtsf: CondTsfConfig { every: 1, epochs: 1, ..Default::default() }, ..Default::default() }
}

pub fn tiny_mtt() -> MttConfig {
    MttConfig { experts: 2, expert_epochs: 2, expert_batches: 2, syn_steps: 2, expert_span: 1, max_start_epoch: 1, ..Default::default() }
}

