//! What the commands print: the dataset registry, a run's metrics table, a VAE's fidelity.

use strata_data::{data_root, registry};
use strata_train::evaluation::run::Results;
use strata_train::tasks::vae as generative;

pub fn datasets() {
    let root = data_root();
    println!("data root: {} (set STRATA_DATA to change)", root.display());
    println!("{:<10} {:<28} {:<6} {:<10} {}", "name", "file", "freq", "split", "on disk");
    for d in registry::DATASETS {
        let p = root.join(d.file);
        let found = match std::fs::metadata(&p) {
            Ok(m) => format!("yes ({:.1} MB)", m.len() as f64 / 1e6),
            Err(_) => "missing".into(),
        };
        println!("{:<10} {:<28} {:<6} {:<10} {}", d.name, d.file, d.freq, format!("{:?}", d.split), found);
    }
    println!("{:<10} {:<28} {:<6} {:<10} {}", "custom", "data.path = <your.csv[.gz]>", "auto", "Ratio712", "-");
    for (name, file) in strata_data::gluonts::GLUON {
        let found = if root.join(file).exists() { "yes" } else { "missing" };
        println!("{name:<10} {file:<28} (GluonTS: trained as aligned series, tested on its rolling windows) {found}");
    }
    println!();
    println!("spatio-temporal (12 -> 12, windows split in time order, masked metrics on the original scale):");
    println!("{:<15} {:<28} {:<28} {:<6} {:<15} {}", "name", "signal", "graph", "freq", "split", "on disk");
    for d in strata_data::spatial::SPATIAL {
        let found = if root.join(d.signal).exists() && d.graph.is_none_or(|g| root.join(g).exists()) { "yes" } else { "missing" };
        println!("{:<15} {:<28} {:<28} {:<6} {:<15} {found}  ({})", d.name, d.signal, d.graph.unwrap_or("-"), d.freq, format!("{:?}", d.split), d.note);
    }
    println!("{:<15} {:<28} {:<28} {:<6} {:<15} -", "spatial", "data.path = <signal>", "data.graph = <graph>", "-", "[0.7, 0.1, 0.2]");
}

pub fn print_table(r: &Results, dir: &std::path::Path) {
    println!();
    println!("{}", r.protocol);
    println!(
        "{} {} {} {}->{}  best epoch {}/{}  train {:.1}s  wall {:.1}s",
        r.model.name,
        r.data.dataset,
        r.data.features,
        r.config.data.seq_len,
        r.config.data.pred_len,
        r.training.best_epoch.unwrap_or(0),
        r.training.epochs_run,
        r.training.train_seconds,
        r.wall_seconds
    );
    if let Some(st) = &r.spatial {
        println!("| test, masked (null 0), original scale | MAE | RMSE | MAPE |");
        println!("|---|---|---|---|");
        for m in st.test.horizons.iter().chain(std::iter::once(&st.test.average)) {
            let name = if m.horizon == 0 { "average".to_string() } else { format!("horizon {}", m.horizon) };
            println!("| {name} | {:.4} | {:.4} | {:.2}% |", m.mae, m.rmse, 100.0 * m.mape);
        }
        println!("| val average | {:.4} | {:.4} | {:.2}% |", st.val.average.mae, st.val.average.rmse, 100.0 * st.val.average.mape);
        for (name, b) in [("last value", &st.baselines.last_value), ("historical average", &st.baselines.historical_average)] {
            println!("| baseline: {name}, test average | {:.4} | {:.4} | {:.2}% |", b.average.mae, b.average.rmse, 100.0 * b.average.mape);
        }
        println!("test windows: {}; results: {}", r.data.windows[2], dir.join("results.json").display());
        return;
    }
    println!("| split | windows | MSE | MAE | RMSE | MAPE | R2 |");
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, w: usize, m: &strata_train::Metrics| {
        println!("| {name} | {w} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |", m.mse, m.mae, m.rmse, m.mape, m.r2)
    };
    row("val", r.data.windows[1], &r.val);
    row("test", r.data.windows[2], &r.test);
    if let Some(m) = &r.test_drop_last {
        let b = r.config.train.batch_size;
        row(&format!("test, first {} windows (the papers' drop_last, batch {b})", r.data.windows[2] / b * b), r.data.windows[2] / b * b, m);
    }
    if let Some(m) = &r.test_original_scale {
        row("test (original scale)", r.data.windows[2], m);
    }
    if let Some(p) = &r.probabilistic {
        println!(
            "| test, probabilistic (100 samples) | CRPS {:.4} (normalised {:.4}) | CRPS as mean weighted quantile loss {:.4} | MSIS {:.4} | coverage of the 50/90/95% intervals {:.3} / {:.3} / {:.3} |",
            p.crps, p.crps_normalised, p.mean_wquantile_loss, p.msis, p.interval_coverage[0], p.interval_coverage[1], p.interval_coverage[2]
        );
    }
    println!("results: {}", dir.join("results.json").display());
}


pub fn print_vae(r: &generative::VaeResults, dir: &std::path::Path) {
    println!();
    println!("{}", r.protocol);
    println!("{:<6} {:>12} {:>10} {:>12}", "split", "-ELBO/window", "KL", "recon MSE");
    for (name, s) in [("val", &r.val), ("test", &r.test)] {
        println!("{name:<6} {:>12.2} {:>10.2} {:>12.4}", s.neg_elbo, s.kl, s.recon_mse);
    }
    print_fidelity(&r.fidelity, &r.data.columns);
    println!("results: {}", dir.join("results.json").display());
}

/// Generated against real windows, per variable.
pub fn print_fidelity(f: &generative::Fidelity, columns: &[String]) {
    println!("generated vs training windows ({} vs {}): |mean diff|/std, std ratio, max |acf diff| lags 1..{}", f.generated.windows, f.real.windows, generative::MAX_LAG);
    for (i, c) in columns.iter().enumerate() {
        println!("  {c:<8} {:>8.3} {:>8.3} {:>8.3}", f.mean_diff[i], f.std_ratio[i], f.acf_max_diff[i]);
    }
}
