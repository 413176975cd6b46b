//! Bounded load test of `strata serve`: starts the server on loopback with one model, sends a
//! fixed number of forecast requests from concurrent clients (keep-alive connections), and
//! prints latency percentiles, throughput and the error count as one JSON line.
//!
//! Usage: strata-loadtest --model <run dir> --input <csv> [--requests 2000] [--clients 32]
//!        [--max-batch 64] [--url http://host:port (an already running server)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use strata_serve::{ForecastRequest, ServeConfig};
use strata_train::inference::forecast::{InputTable, Schema, fmt_date};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let model = PathBuf::from(arg("--model").context("--model <run dir> is required")?);
    let input = PathBuf::from(arg("--input").context("--input <csv> is required")?);
    let requests: usize = arg("--requests").map_or(Ok(2000), |v| v.parse())?;
    let clients: usize = arg("--clients").map_or(Ok(32), |v| v.parse())?;
    let max_batch: usize = arg("--max-batch").map_or(Ok(64), |v| v.parse())?;

    let schema = Schema::load(&model)?;
    let table = InputTable::read(&input)?;
    let (Some(names), Some(dates)) = (&table.columns, &table.dates) else { bail!("{} needs named columns and a date column", input.display()) };
    let l = schema.shape.seq_len;
    if table.rows < l + 64 {
        bail!("{} has {} rows; the load test draws 64 windows of {l}", input.display(), table.rows);
    }
    // 64 different windows from the end of the file, cycled.
    let bodies: Vec<String> = (0..64)
        .map(|k| {
            let end = table.rows - k * ((table.rows - l) / 64).max(1);
            let rows = end - l..end;
            let req = ForecastRequest {
                columns: Some(names.clone()),
                timestamps: Some(rows.clone().map(|r| fmt_date(dates[r])).collect()),
                values: rows.map(|r| table.values[r * table.width..(r + 1) * table.width].iter().map(|v| Some(*v)).collect()).collect(),
                at: None,
            };
            serde_json::to_string(&req).expect("serialisable")
        })
        .collect();

    let name = arg("--name").unwrap_or_else(|| model.file_name().map_or("model".into(), |n| n.to_string_lossy().into_owned()));
    let base = match arg("--url") {
        Some(u) => u,
        None => {
            let cfg = ServeConfig { models: vec![(name.clone(), model.clone())], addr: ([127, 0, 0, 1], 0).into(), max_batch, ..Default::default() };
            format!("http://{}", strata_serve::spawn(cfg)?)
        }
    };
    let url = format!("{base}/v1/models/{name}/forecast");
    let next = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let started = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            break mine;
                        }
                        let t = Instant::now();
                        let ok = agent
                            .post(&url)
                            .header("content-type", "application/json")
                            .send(bodies[i % bodies.len()].as_str())
                            .ok()
                            .filter(|r| r.status() == 200)
                            .and_then(|mut r| r.body_mut().read_to_string().ok())
                            .is_some();
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        mine.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("client thread")).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((p / 100.0 * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1];
    println!(
        "{}",
        serde_json::json!({
            "model": schema.model.name(), "dataset": schema.dataset, "seq_len": l, "pred_len": schema.shape.pred_len,
            "requests": requests, "clients": clients, "max_batch": max_batch, "errors": errors.load(Ordering::Relaxed),
            "p50_ms": pct(50.0), "p90_ms": pct(90.0), "p99_ms": pct(99.0), "max_ms": pct(100.0),
            "requests_per_s": requests as f64 / wall, "wall_s": wall,
        })
    );
    if errors.load(Ordering::Relaxed) > 0 {
        bail!("{} requests failed", errors.load(Ordering::Relaxed));
    }
    Ok(())
}
