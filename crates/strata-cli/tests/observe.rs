//! A served model that learns (`POST /v1/models/{name}/observe`, docs/serve.md): observations
//! extend the model's held context; with `[online] strategy = "ogd"` every completed window is
//! learned in the background, the forecast of a fixed context changes once the updates land,
//! forecasts made while updates run are each made wholly by one version of the weights (same
//! version, same numbers), and a restarted server serves the last version written.

mod common;

use std::path::Path;

use common::{strata, tmp};
use strata_serve::ServeConfig;

fn post(url: &str, body: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.post(url).header("content-type", "application/json").send(body).unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
}

/// `(timestamps, rows)` of the drift stream's rows `[from, to)`.
fn rows(csv: &Path, from: usize, to: usize) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(csv).unwrap();
    let lines: Vec<&str> = text.lines().skip(1 + from).take(to - from).collect();
    let dates = lines.iter().map(|l| l.split(',').next().unwrap().to_string()).collect();
    let values = lines.iter().map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect()).collect();
    (dates, values)
}

fn body(csv: &Path, from: usize, to: usize) -> String {
    let (dates, values) = rows(csv, from, to);
    serde_json::json!({ "columns": ["s0", "s1", "OT"], "timestamps": dates, "values": values }).to_string()
}

fn forecast(base: &str, body: &str) -> (u64, Vec<Vec<f64>>) {
    let (status, r) = post(&format!("{base}/v1/models/m/forecast"), body);
    assert_eq!(status, 200, "{r}");
    let values = r["values"].as_array().unwrap().iter().map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()).collect();
    (r["version"].as_u64().unwrap(), values)
}

fn wait_for_version(base: &str, ctx: &str, version: u64) -> Vec<Vec<f64>> {
    let start = std::time::Instant::now();
    loop {
        let (v, values) = forecast(base, ctx);
        if v >= version {
            assert_eq!(v, version);
            return values;
        }
        assert!(start.elapsed().as_secs() < 60, "version {v} after 60 s, waiting for {version}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_served_model_learns_from_observations() {
    let dir = tmp("observe");
    let out = strata().args(["synth", "--drift-stream", "--out"]).arg(dir.join("stream")).output().unwrap();
    assert!(out.status.success());
    let csv = dir.join("stream/drift.csv");
    let config = format!(
        "[data]\ndataset = \"custom\"\npath = \"{}\"\nseq_len = 24\npred_len = 4\nsplit_rows = [3000, 1000, 1000]\n[model]\nname = \"tcn\"\nhidden = 16\ndepth = 3\noutput = 32\n[train]\nepochs = 1\nlr = 0.003\noptimizer = \"adamw\"\nweight_decay = 0.01\n[online]\nstrategy = \"ogd\"\nlr = 0.01\n",
        csv.display()
    );
    let run = common::train(&dir, "run", &config);
    let cfg = ServeConfig { models: vec![("m".into(), run.clone())], addr: ([127, 0, 0, 1], 0).into(), ..Default::default() };
    let base = format!("http://{}", strata_serve::spawn(cfg.clone()).unwrap());

    // A fixed context (rows 5,950..5,974, before the level shift) to forecast throughout.
    let ctx = body(&csv, 5950, 5974);
    let (v0, f0) = forecast(&base, &ctx);
    assert_eq!(v0, 0);
    // Nothing observed yet: a forecast from the held rows says so.
    let (status, r) = post(&format!("{base}/v1/models/m/forecast"), "{}");
    assert_eq!(status, 422, "{r}");

    // 27 rows: one short of a window (24 + 4): held, nothing learned.
    let (status, r) = post(&format!("{base}/v1/models/m/observe"), &body(&csv, 5980, 6007));
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["added"].as_u64(), r["held"].as_u64(), r["queued"].as_u64()), (Some(27), Some(27), Some(0)));
    // The held rows forecast like the same rows sent in the request.
    let (_, held) = forecast(&base, "{}");
    let (_, sent) = forecast(&base, &body(&csv, 5980, 6007));
    assert_eq!(held, sent);

    // 10 more rows complete 10 windows (across the shift): 10 updates, then the fixed context's
    // forecast has changed.
    let (_, r) = post(&format!("{base}/v1/models/m/observe"), &body(&csv, 6007, 6017));
    assert_eq!(r["queued"].as_u64(), Some(10));
    let f10 = wait_for_version(&base, &ctx, 10);
    let moved = f0.iter().flatten().zip(f10.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(moved > 1e-3, "the forecast moved by {moved} after 10 updates");

    // Refused: an observation out of time order, a missing cell, a wrong width.
    let (status, _) = post(&format!("{base}/v1/models/m/observe"), &body(&csv, 6000, 6001));
    assert_eq!(status, 422);
    let (status, r) = post(&format!("{base}/v1/models/m/observe"), r#"{"values": [[1.0, null, 2.0]], "timestamps": ["2021-06-01 00:00:00"]}"#);
    assert_eq!(status, 422);
    assert!(r["error"].as_str().unwrap().contains("missing"), "{r}");

    // Forecasts while 40 single-row observations are learned: every answer is one version's.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (base, ctx, stop) = (base.clone(), ctx.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = vec![];
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    seen.push(forecast(&base, &ctx));
                }
                seen
            })
        })
        .collect();
    for r in 6017..6057 {
        let (status, _) = post(&format!("{base}/v1/models/m/observe"), &body(&csv, r, r + 1));
        assert_eq!(status, 200);
    }
    let last = wait_for_version(&base, &ctx, 50);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut by_version: std::collections::BTreeMap<u64, Vec<Vec<f64>>> = Default::default();
    let mut answers = 0;
    for c in clients {
        for (v, values) in c.join().unwrap() {
            answers += 1;
            let first = by_version.entry(v).or_insert_with(|| values.clone());
            assert_eq!(*first, values, "two answers of version {v} differ");
        }
    }
    assert!(by_version.len() >= 2 && answers > 20, "{answers} answers over versions {:?}", by_version.keys().collect::<Vec<_>>());
    assert!(by_version.keys().all(|&v| (10..=50).contains(&v)));

    // The last version is on disk; a restarted server (another port) serves it.
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("online_state.json")).unwrap()).unwrap();
    assert_eq!(state["version"], 50);
    let again = format!("http://{}", strata_serve::spawn(cfg).unwrap());
    let (v, values) = forecast(&again, &ctx);
    assert_eq!((v, &values), (50, &last));
}
