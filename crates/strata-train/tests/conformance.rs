//! Every model trains and evaluates on tiny data generated here, through the same trainer.

use strata_data::prepare::DataConfig;
use strata_models::ModelConfig;
use strata_train::RunConfig;
use strata_train::tasks::forecasting::{TrainOptions, train};

/// Three noisy sines with different periods, 900 hourly rows, as a TSLib CSV.
fn write_sines(path: &std::path::Path) {
    let mut s = String::from("date,a,b,OT\n");
    let mut noise = 12345u64;
    for t in 0..900 {
        let mut n = || {
            noise = noise.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((noise >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.1
        };
        let tf = t as f64;
        s.push_str(&format!(
            "{},{:.5},{:.5},{:.5}\n",
            chrono_like(t),
            (tf * std::f64::consts::TAU / 24.0).sin() + n(),
            (tf * std::f64::consts::TAU / 12.0).cos() * 2.0 + n(),
            (tf * std::f64::consts::TAU / 24.0).sin() * 0.5 + 10.0 + n()
        ));
    }
    std::fs::write(path, s).unwrap();
}

/// A fresh temporary folder holding `sines.csv`.
fn sines_in(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("strata-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("sines.csv");
    write_sines(&csv);
    (dir, csv)
}

/// Hourly timestamps from 2020-01-01.
fn chrono_like(t: usize) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("a valid date");
    (start + chrono::Duration::hours(t as i64)).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[test]
fn every_model_trains_and_beats_the_zero_forecast() {
    let (dir, csv) = sines_in("conf");
    // Graph models need a graph: tests/spatial.rs runs every model on graph data.
    for model in ModelConfig::all_defaults().into_iter().filter(|m| !m.needs_graph()) {
        let model = match model {
            ModelConfig::Patchtst(mut c) => {
                c.d_model = 16;
                c.n_heads = 2;
                c.d_ff = 32;
                c.e_layers = 1;
                c.dropout = 0.0;
                ModelConfig::Patchtst(c)
            }
            ModelConfig::Transformer(c) => ModelConfig::Transformer(strata_models::TransformerConfig { d_model: 32, n_heads: 4, d_ff: 64, dropout: 0.0, label_len: 24, ..c }),
            ModelConfig::Timemixer(c) => ModelConfig::Timemixer(strata_models::TimeMixerConfig { dropout: 0.0, ..c }),
            ModelConfig::Itransformer(c) => ModelConfig::Itransformer(strata_models::ITransformerConfig { d_model: 32, n_heads: 4, d_ff: 64, dropout: 0.0, ..c }),
            other => other,
        };
        let probabilistic = model.capabilities().probabilistic;
        let name = if probabilistic { format!("{}_normal", model.name()) } else { model.name().to_string() };
        let name = name.as_str();
        let mut cfg = RunConfig {
            name: Some(name.into()),
            data: DataConfig { dataset: "custom".into(), path: Some(csv.clone()), seq_len: 48, pred_len: 12, ..Default::default() },
            model,
            train: Default::default(),
            eval: Default::default(), online: None,
        };
        cfg.train.epochs = 3;
        cfg.train.lr = 5e-3;
        cfg.train.batch_size = 32;
        cfg.eval.inverse = true;
        let run = dir.join(name);
        let r = train(&cfg, &run, TrainOptions { fresh: true }).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        // Predicting zeros on standardised data costs about 1.0 (the variance); a trained model
        // of periodic data must do far better, on the scaled and the original scale.
        assert!(r.test.mse.is_finite() && r.test.mse < 0.3, "{name}: test mse {}", r.test.mse);
        let orig = r.test_original_scale.unwrap();
        assert!(orig.mse < r.test.mse * 4.0 && orig.mae > 0.0, "{name}: {orig:?}");
        // Every test window is evaluated: 900 rows, split 630/90/180, test starts 48 rows early.
        assert_eq!(r.data.windows[2], 180 + 48 - 48 - 12 + 1, "{name}");
        assert_eq!(r.test.count as usize, r.data.windows[2] * 12 * 3, "{name}");
        // The papers' drop_last view keeps whole batches of 32 in time order: 160 of 169 windows.
        assert_eq!(r.test_drop_last.unwrap().count as usize, 160 * 12 * 3, "{name}");
        for f in ["config.toml", "state.json", "best.bpk", "last.bpk", "optimizer.bpk", "results.json", "results.csv"] {
            assert!(run.join(f).exists(), "{name}: {f} missing");
        }
        assert_eq!(r.data.sha256.len(), 64);
        // A distribution head is scored on samples: CRPS below the mean absolute error of a
        // zero forecast, and the 90% interval covers most targets.
        if probabilistic {
            let p = r.probabilistic.as_ref().unwrap_or_else(|| panic!("{name}: no probabilistic metrics"));
            assert!(p.crps.is_finite() && p.crps < 0.5 && p.crps <= r.test.mae, "{name}: {p:?}");
            assert!(p.interval_coverage[1] > 0.6, "{name}: {:?}", p.interval_coverage);
        } else {
            assert!(r.probabilistic.is_none(), "{name}");
        }
    }
}

#[test]
fn features_modes_optimisers_schedules_and_losses_train() {
    use strata_data::Features;
    use strata_train::config::{Loss, Optimizer};
    use strata_train::engine::schedule::Schedule;
    let (dir, csv) = sines_in("conf-modes");
    let cases = [
        (Features::MS, Optimizer::Adamw, Schedule::Onecycle, Loss::Mse, Some(1.0), 1),
        (Features::S, Optimizer::Adam, Schedule::Cosine, Loss::Mae, None, 1),
        (Features::M, Optimizer::Adam, Schedule::Type3, Loss::Mse, Some(0.5), 3),
    ];
    for (i, (features, optimizer, schedule, loss, clip, out_channels)) in cases.into_iter().enumerate() {
        let mut cfg = RunConfig {
            name: None,
            data: DataConfig { dataset: "custom".into(), path: Some(csv.clone()), seq_len: 48, pred_len: 12, features, ..Default::default() },
            model: ModelConfig::all_defaults().remove(0),
            train: Default::default(),
            eval: Default::default(), online: None,
        };
        cfg.train.epochs = 3;
        cfg.train.lr = 5e-3;
        cfg.train.optimizer = optimizer;
        cfg.train.weight_decay = 1e-4;
        cfg.train.schedule = schedule;
        cfg.train.loss = loss;
        cfg.train.grad_clip = clip;
        let r = train(&cfg, &dir.join(format!("case{i}")), TrainOptions { fresh: true }).unwrap();
        let what = format!("{features:?} {optimizer:?} {schedule:?} {loss:?}");
        assert!(r.test.mse < 0.3, "{what}: {}", r.test.mse);
        // Metrics cover the output channels only: the target for MS and S.
        assert_eq!(r.test.count as usize, r.data.windows[2] * 12 * out_channels, "{what}");
        // The recorded learning rates follow the schedule.
        let lrs: Vec<f64> = r.training.history.iter().map(|h| h.lr).collect();
        match schedule {
            Schedule::Type3 => assert_eq!(lrs, [5e-3; 3]),
            Schedule::Cosine => assert!(lrs[0] == 5e-3 && lrs[2] < lrs[1] && lrs[1] < lrs[0], "{lrs:?}"),
            _ => assert!(lrs[2] < 1e-4, "one-cycle ends near zero: {lrs:?}"),
        }
    }
}
