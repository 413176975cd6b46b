//! Saved models forecasting new data: `strata forecast` on a user's CSV, the same forecast over
//! HTTP (`strata_serve`), and the errors both give for data the model cannot read.

mod common;

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use common::{data_root, strata, tmp, train};
use strata_serve::ServeConfig;

const ETTH1_336_96: &str = r#"
[data]
dataset = "etth1"
seq_len = 336
pred_len = 96
[model]
name = "dlinear"
[train]
epochs = 2
batch_size = 32
lr = 0.005
max_steps_per_epoch = 60
"#;

/// The real ETTh1 rows `[from, to)` as CSV with the columns in another order (OT first).
fn user_csv(from: usize, to: usize, path: &Path) -> (Vec<String>, Vec<Vec<f64>>, Vec<String>) {
    let text = std::fs::read_to_string(data_root().join("ETTh1/ETTh1.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows: Vec<Vec<String>> = lines.skip(from).take(to - from).map(|l| l.split(',').map(String::from).collect()).collect();
    let order: Vec<usize> = [header.len() - 1].into_iter().chain(1..header.len() - 1).collect();
    let mut out = format!("date,{}\n", order.iter().map(|&c| header[c].as_str()).collect::<Vec<_>>().join(","));
    for r in &rows {
        out.push_str(&format!("{},{}\n", r[0], order.iter().map(|&c| r[c].as_str()).collect::<Vec<_>>().join(",")));
    }
    std::fs::write(path, out).unwrap();
    let names = order.iter().map(|&c| header[c].clone()).collect();
    let values = rows.iter().map(|r| order.iter().map(|&c| r[c].parse().unwrap()).collect()).collect();
    (names, values, rows.iter().map(|r| r[0].clone()).collect())
}

fn read_forecast(path: &Path) -> (Vec<String>, Vec<String>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').skip(1).map(String::from).collect();
    let (mut dates, mut values) = (Vec::new(), Vec::new());
    for l in lines {
        let mut cells = l.split(',');
        dates.push(cells.next().unwrap().to_string());
        values.push(cells.map(|c| c.parse::<f32>().unwrap()).collect());
    }
    (header, dates, values)
}

fn post(url: &str, body: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.post(url).header("content-type", "application/json").send(body).unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
}

#[test]
fn etth1_model_forecasts_a_user_csv_through_the_cli_and_http_identically() {
    let dir = tmp("etth1");
    let run = train(&dir, "etth1", ETTH1_336_96);
    assert!(run.join("schema.json").exists());

    // The user's file: the last 336 + 96 hours of ETTh1, columns reordered; forecast the last 96
    // hours from the 336 before them.
    let rows = 14400; // the end of ETTh1's test split (12/4/4 months)
    let csv = dir.join("mine.csv");
    let (names, values, dates) = user_csv(rows - 432, rows, &csv);
    let at = &dates[335];
    let fc = dir.join("forecast.csv");
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&csv).args(["--at", at]).arg("--out").arg(&fc).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("the input holds 96 of the forecast steps"), "{stdout}");
    let (cols, fdates, cli) = read_forecast(&fc);
    assert_eq!(cols, ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]);
    assert_eq!(fdates.len(), 96);
    assert_eq!(fdates[0], dates[336]);
    assert_eq!(fdates[95], dates[431]);

    // Reference: the training pipeline's last test window (ETTh1's own split, scaler fitted on
    // the training rows) through the checkpoint, scaled back.
    let data = strata_data::prepare::prepare(&strata_data::DataConfig { dataset: "etth1".into(), path: Some(data_root().join("ETTh1/ETTh1.csv")), seq_len: 336, pred_len: 96, ..Default::default() }).unwrap();
    let device = burn::tensor::Device::flex();
    let model = strata_models::DLinearConfig::default().init(strata_models::Shape::lsf(336, 96, 7), &device);
    let model = strata_train::engine::checkpoint::load_module(strata_models::Model::DLinear(model), &run.join("best.bpk")).unwrap();
    let last = data.test.len() - 1;
    let mut batch = strata_data::window::Batch::default();
    data.test.fill(&[last], &mut batch);
    let x = Tensor::<4>::from_data(TensorData::new(batch.x.clone(), [1, 336, 7, 1]), &device);
    let y: Vec<f32> = model.forward(x).into_data().convert::<f32>().try_into_vec().unwrap();
    let sc = data.scaler.as_ref().unwrap();
    for t in 0..96 {
        for c in 0..7 {
            let want = y[t * 7 + c] * sc.std[c] + sc.mean[c];
            assert!((cli[t][c] - want).abs() <= 1e-4 * want.abs().max(1.0), "step {t} column {c}: {} vs {want}", cli[t][c]);
        }
    }

    // The same window as .npy ([rows, columns] in the model's order, no timestamps): same numbers,
    // steps instead of dates.
    let npy = dir.join("mine.npy");
    let data: Vec<f32> = values[..336].iter().flat_map(|r| r[1..].iter().chain(&r[..1]).map(|v| *v as f32)).collect();
    std::fs::write(&npy, strata_data::npy::encode_f32(&[336, 7], &data)).unwrap();
    let fn_ = dir.join("forecast_npy.csv");
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&npy).arg("--out").arg(&fn_).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, steps, from_npy) = read_forecast(&fn_);
    assert_eq!((steps[0].as_str(), steps[95].as_str()), ("1", "96"));
    assert_eq!(from_npy, cli);

    // The same forecast over HTTP, identical numbers.
    let cfg = ServeConfig { models: vec![("etth1".into(), run.clone())], addr: ([127, 0, 0, 1], 0).into(), max_body: 256 << 10, ..Default::default() };
    let base = format!("http://{}", strata_serve::spawn(cfg).unwrap());
    let body = |rows: std::ops::Range<usize>, names: &[String]| {
        serde_json::json!({ "columns": names, "timestamps": &dates[rows.clone()], "values": &values[rows] }).to_string()
    };
    let url = format!("{base}/v1/models/etth1/forecast");
    let (status, r) = post(&url, &body(0..336, &names));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["timestamps"][0], dates[336].as_str());
    let http: Vec<Vec<f32>> = serde_json::from_value(r["values"].clone()).unwrap();
    assert_eq!(http, cli, "HTTP and CLI forecasts differ");
    // `at` inside a longer history picks the same window.
    let with_at = serde_json::json!({ "columns": names, "timestamps": dates, "values": values, "at": at }).to_string();
    let (status, r) = post(&url, &with_at);
    assert_eq!(status, 200, "{r}");
    assert_eq!(serde_json::from_value::<Vec<Vec<f32>>>(r["values"].clone()).unwrap(), cli);

    // Concurrent requests are batched and answered with the same numbers.
    let answers: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16).map(|_| s.spawn(|| serde_json::from_value(post(&url, &body(0..336, &names)).1["values"].clone()).unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for a in answers {
        for (ra, rc) in a.iter().zip(&cli) {
            for (va, vc) in ra.iter().zip(rc) {
                assert!((va - vc).abs() <= 1e-4 * vc.abs().max(1.0));
            }
        }
    }

    // Errors: a reason and a 4xx, and the server keeps answering.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let models: serde_json::Value = serde_json::from_str(&agent.get(format!("{base}/v1/models")).call().unwrap().body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(models[0]["name"], "etth1");
    assert_eq!(models[0]["pred_len"], 96);
    let cases: Vec<(String, u16, &str)> = vec![
        (r#"{"values": [[1, 2], "#.into(), 400, "EOF while parsing"),
        (r#"{"values": "many"}"#.into(), 422, "invalid type"),
        (r#"{"values": [[1, 2, 3], [1, 2]]}"#.into(), 422, "row 1 has 2 numbers"),
        (body(0..336, &[&["oil".to_string()], &names[1..]].concat()), 422, "missing column(s) [\"OT\"]"),
        (body(0..200, &names), 422, "reads 336 steps"),
        (" ".repeat(300 << 10), 413, "length limit"),
    ];
    for (body, status, reason) in &cases {
        let (got, r) = post(&url, body);
        assert_eq!(got, *status, "{r}");
        assert!(r["error"].as_str().unwrap().contains(reason), "{r}");
    }
    // Timestamps every 15 minutes: the model was trained on hourly data.
    let quarter: Vec<String> = (0..336).map(|i| format!("2018-01-{:02} {:02}:{:02}:00", 1 + i / 96, (i / 4) % 24, (i % 4) * 15)).collect();
    let fifteen = serde_json::json!({ "columns": names, "timestamps": quarter, "values": &values[..336] }).to_string();
    let (got, r) = post(&url, &fifteen);
    assert_eq!(got, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("every 15 min"), "{r}");
    let (got, r) = post(&format!("{base}/v1/models/nope/forecast"), &body(0..336, &names));
    assert_eq!(got, 404, "{r}");
    let health: serde_json::Value = serde_json::from_str(&agent.get(format!("{base}/health")).call().unwrap().body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(health["status"], "ok");

    // The CLI explains a file it cannot use.
    let short = dir.join("short.csv");
    user_csv(rows - 100, rows, &short);
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&short).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the model reads 336 steps"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&csv).args(["--at", "2030-01-01 00:00:00"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no row of"), "{}", String::from_utf8_lossy(&out.stderr));
}

const PATCHTST_SMALL: &str = r#"
[data]
dataset = "etth1"
seq_len = 96
pred_len = 24
[model]
name = "patchtst"
d_model = 16
d_ff = 32
n_heads = 4
e_layers = 2
[train]
epochs = 2
batch_size = 32
lr = 0.001
max_steps_per_epoch = 20
"#;

fn is_png(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.len() > 5_000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

#[test]
fn plot_and_explain_patchtst_on_etth1() {
    let dir = tmp("plot");
    let run = train(&dir, "patchtst", PATCHTST_SMALL);
    let csv = dir.join("mine.csv");
    let (_, _, dates) = user_csv(14400 - 240, 14400, &csv);

    let plots = dir.join("plots");
    let out = strata()
        .args(["plot", "--model"])
        .arg(&run)
        .arg("--input")
        .arg(&csv)
        .args(["--at", &dates[150], "--at", &dates[200], "--series", "OT", "--series", "HUFL", "--out"])
        .arg(&plots)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["curves.png", "forecast_OT_1.png", "forecast_HUFL_1.png", "forecast_OT_2.png", "forecast_HUFL_2.png"] {
        assert!(is_png(&plots.join(name)), "{name}");
    }
    let svg = strata().args(["plot", "--model"]).arg(&run).args(["--format", "svg", "--out"]).arg(&plots).output().unwrap();
    assert!(svg.status.success(), "{}", String::from_utf8_lossy(&svg.stderr));
    assert!(std::fs::read_to_string(plots.join("curves.svg")).unwrap().contains("<svg"));

    let maps = dir.join("explain");
    let out = strata().args(["explain", "--model"]).arg(&run).arg("--input").arg(&csv).arg("--out").arg(&maps).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 2 layers x 4 heads.
    for l in 1..=2 {
        for h in 1..=4 {
            assert!(is_png(&maps.join(format!("attention_layer{l}_head{h}.png"))), "layer {l} head {h}");
        }
    }
    assert_eq!(std::fs::read_dir(&maps).unwrap().count(), 8);
}

#[test]
fn tune_ranks_trials_by_validation_loss_and_writes_the_best_config() {
    let dir = tmp("tune");
    let cfg = dir.join("base.toml");
    std::fs::write(&cfg, ETTH1_336_96.replace("seq_len = 336", "seq_len = 96").replace("pred_len = 96", "pred_len = 24").replace("epochs = 2", "epochs = 4\npatience = 10").replace("max_steps_per_epoch = 60", "max_steps_per_epoch = 15")).unwrap();
    let space = dir.join("space.toml");
    std::fs::write(&space, "[search]\nseed = 3\n[search.halving]\nmin_epochs = 1\neta = 2\n[space]\n\"train.lr\" = { log_uniform = [1e-4, 1e-1] }\n\"model.individual\" = { choice = [true, false] }\n").unwrap();
    let out = dir.join("tune");
    let run = strata().args(["tune", "--config"]).arg(&cfg).arg("--space").arg(&space).args(["--trials", "6", "--out"]).arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("tune.json")).unwrap()).unwrap();
    assert_eq!(r["rungs"], serde_json::json!([1, 2, 4]));
    let trials = r["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6);
    // Halving by 2 each rung: 6 trials -> 3 -> 2 finish.
    let count = |s: &str| trials.iter().filter(|t| t["status"] == s).count();
    assert_eq!((count("finished"), count("stopped")), (2, 4));
    // Each trial's recorded loss is its own run folder's best validation loss; the finished ones
    // rank first, best first.
    let mut last = f64::MIN;
    for t in &trials[..2] {
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(t["dir"].as_str().unwrap()).join("state.json")).unwrap()).unwrap();
        let v = t["best_val"].as_f64().unwrap();
        assert!((state["best_val"].as_f64().unwrap() - v).abs() < 1e-12);
        assert!(v >= last);
        last = v;
        assert_eq!(t["epochs"], 4);
    }
    // Rung 1 (one epoch): every trial that went on had a better first-epoch validation loss
    // than every trial stopped there (read from the trial folders' own logs).
    let first_epoch = |t: &serde_json::Value| {
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(t["dir"].as_str().unwrap()).join("state.json")).unwrap()).unwrap();
        state["history"][0]["val_loss"].as_f64().unwrap()
    };
    let went_on = trials.iter().filter(|t| t["epochs"].as_u64().unwrap() > 1).map(first_epoch).fold(f64::MIN, f64::max);
    let stopped = trials.iter().filter(|t| t["epochs"].as_u64().unwrap() == 1).map(first_epoch).fold(f64::MAX, f64::min);
    assert_eq!(trials.iter().filter(|t| t["epochs"].as_u64().unwrap() == 1).count(), 3);
    assert!(went_on <= stopped, "{went_on} > {stopped}");
    let best = trials[0]["id"].as_u64().unwrap();
    assert_eq!(r["best"].as_u64().unwrap(), best);
    let best_toml = std::fs::read_to_string(out.join("best.toml")).unwrap();
    for pair in trials[0]["settings"].as_array().unwrap() {
        let (k, v) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        let leaf = k.rsplit('.').next().unwrap();
        assert!(best_toml.contains(&format!("{leaf} = {v}")), "{k}={v} not in {best_toml}");
    }
    // best.toml is a valid run config.
    let check = strata().args(["train", "--config"]).arg(out.join("best.toml")).args(["--set", "train.epochs=1", "--out"]).arg(dir.join("best_run")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(std::fs::read_to_string(out.join("tune.csv")).unwrap().starts_with("rank,trial,model.individual,train.lr,epochs,best_val_loss,status"));
}

#[test]
fn probabilistic_forecasts_carry_ordered_quantiles_with_calendar_features() {
    let dir = tmp("prob");
    let run = train(
        &dir,
        "normal",
        "[data]\ndataset = \"etth1\"\nfeatures = \"S\"\nseq_len = 48\npred_len = 12\n[model]\nname = \"transformer\"\nd_model = 16\nn_heads = 2\ne_layers = 1\nd_layers = 1\nd_ff = 32\nlabel_len = 12\ndistribution = \"normal\"\n[train]\nepochs = 1\nlr = 0.001\nmax_steps_per_epoch = 30\n",
    );
    let csv = dir.join("mine.csv");
    user_csv(14400 - 100, 14400, &csv);
    let fc = dir.join("f.csv");
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&csv).arg("--out").arg(&fc).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (cols, dates, rows) = read_forecast(&fc);
    assert_eq!(cols, ["OT", "OT_q0.1", "OT_q0.5", "OT_q0.9"]);
    assert_eq!(dates.len(), 12);
    for r in &rows {
        assert!(r[1] <= r[2] && r[2] <= r[3], "{r:?}");
        assert!(r[3] > r[1], "a spread: {r:?}");
    }
    // The same model without a date column: it reads calendar features, so it says so.
    let npy_like = dir.join("nodates.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&npy_like, text.lines().map(|l| l.split_once(',').unwrap().1.to_string() + "\n").collect::<String>()).unwrap();
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&npy_like).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("reads calendar features"), "{}", String::from_utf8_lossy(&out.stderr));
    // The forecast plot draws the interval band.
    let plots = dir.join("plots");
    let out = strata().args(["plot", "--model"]).arg(&run).arg("--input").arg(&csv).arg("--out").arg(&plots).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(is_png(&plots.join("forecast_OT_1.png")));
}

#[test]
fn graph_model_forecasts_a_user_csv_with_timestamps() {
    let dir = tmp("st");
    let run = train(&dir, "stid", "[data]\ndataset = \"los-loop\"\nseq_len = 12\npred_len = 12\n[model]\nname = \"stid\"\n[train]\nepochs = 1\nlr = 0.002\nmax_steps_per_epoch = 20\n");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("schema.json")).unwrap()).unwrap();
    assert_eq!(schema["columns"].as_array().unwrap().len(), 207);
    assert!(run.join("graph.npy").exists());

    // The reference: the training pipeline's last test window (time of day and day of week from
    // the row index, the data starting Thursday 2012-03-01 00:00) through the checkpoint.
    let device = burn::tensor::Device::flex();
    let data_cfg = strata_data::DataConfig { dataset: "los-loop".into(), path: Some(data_root().join("los-loop/los_speed.csv")), graph: Some(data_root().join("los-loop/los_adj.csv")), seq_len: 12, pred_len: 12, ..Default::default() };
    let d = strata_data::prepare_spatial(&data_cfg).unwrap();
    let shape = strata_models::Shape { seq_len: 12, pred_len: 12, channels: 207, features: d.in_features, steps_per_day: 288, tod: true, dow: true, grid: None, marks: 0, covariates: strata_models::CovariateShape { past: 0, future: 0, statics: 0, groups: 0 } };
    let adj = d.graph.as_ref().map(|g| g.adj.as_slice());
    let model = strata_models::ModelConfig::Stid(Default::default()).init(shape, adj, &device);
    let model = strata_train::engine::checkpoint::load_module(model, &run.join("best.bpk")).unwrap();
    let last = d.test.len() - 1;
    let mut batch = strata_data::window::Batch::default();
    d.test.fill(&[last], &mut batch);
    let x = Tensor::<4>::from_data(TensorData::new(batch.x.clone(), [1, 12, 207, d.in_features]), &device);
    let want: Vec<f32> = model.forward(x).into_data().convert::<f32>().try_into_vec().unwrap();
    let want: Vec<f32> = want.iter().map(|v| v * d.scaler.std[0] + d.scaler.mean[0]).collect();

    // The user's file: those 12 rows with timestamps and the sensor ids as columns.
    let text = std::fs::read_to_string(data_root().join("los-loop/los_speed.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let start = d.test.end - 24;
    let mut csv = format!("date,{header}\n");
    for r in start..start + 12 {
        let minutes = r * 5;
        csv.push_str(&format!("2012-03-{:02} {:02}:{:02}:00,{}\n", 1 + minutes / 1440, (minutes % 1440) / 60, minutes % 60, rows[r]));
    }
    let input = dir.join("sensors.csv");
    std::fs::write(&input, csv).unwrap();
    let fc = dir.join("f.csv");
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&input).arg("--out").arg(&fc).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (cols, dates, got) = read_forecast(&fc);
    assert_eq!(cols.len(), 207);
    assert_eq!(cols[0], header.split(',').next().unwrap());
    assert_eq!(dates.len(), 12);
    for t in 0..12 {
        for n in 0..207 {
            let w = want[t * 207 + n];
            assert!((got[t][n] - w).abs() <= 1e-3 * w.abs().max(1.0), "step {t} node {n}: {} vs {w}", got[t][n]);
        }
    }
    // Without timestamps the model cannot know the time of day: it says so.
    let bare = dir.join("bare.csv");
    std::fs::write(&bare, format!("{header}\n{}\n", rows[start..start + 12].join("\n"))).unwrap();
    let out = strata().args(["forecast", "--model"]).arg(&run).arg("--input").arg(&bare).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("time of day"), "{}", String::from_utf8_lossy(&out.stderr));
}
