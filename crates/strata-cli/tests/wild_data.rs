//! Files from the wild, end to end with settings alone (docs/data.md, "Bring your own data"):
//! a folder of per-station sensor exports, one export, long tables in CSV / Parquet / Arrow,
//! graphs from coordinates, PyGT layouts (static and dynamic graphs), `strata inspect`, and
//! `strata forecast` on new files of the training layout.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{strata, tmp, train};

const DIRS: [&str; 4] = ["N", "E", "S", "W"];

/// A PRSA-style export: `No, year, month, day, hour, PM2.5, TEMP, wd, station`, 8 days hourly;
/// `skip` hours are missing rows, every 50th PM2.5 is `NA`.
fn station_csv(name: &str, phase: f64, skip: &[usize]) -> String {
    let mut s = String::from("\"No\",\"year\",\"month\",\"day\",\"hour\",\"PM2.5\",\"TEMP\",\"wd\",\"station\"\n");
    for k in 0..24 * 8 {
        if skip.contains(&k) {
            continue;
        }
        let t = k as f64;
        let pm = 60.0 + 20.0 * (t * std::f64::consts::TAU / 24.0 + phase).sin() + 5.0 * (t * 0.05).cos();
        let pm = if k % 50 == 7 { "NA".to_string() } else { format!("{pm:.1}") };
        s += &format!("{},2013,3,{},{},{pm},{:.1},{},\"{name}\"\n", k + 1, 1 + k / 24, k % 24, 5.0 + (t * 0.26).sin(), DIRS[k % 4]);
    }
    s
}

fn stations(dir: &Path) -> PathBuf {
    let d = dir.join("prsa");
    std::fs::create_dir_all(&d).unwrap();
    for (i, (name, skip)) in [("Aotizhongxin", vec![]), ("Changping", vec![30, 31]), ("Dingling", vec![100])].iter().enumerate() {
        std::fs::write(d.join(format!("PRSA_Data_{name}.csv")), station_csv(name, i as f64, skip)).unwrap();
    }
    std::fs::write(dir.join("stations.csv"), "station,latitude,longitude\nDingling,40.29,116.22\nAotizhongxin,39.98,116.40\nChangping,40.22,116.23\n").unwrap();
    d
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = strata().args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn results(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap()
}

#[test]
fn a_sensor_export_is_refused_then_trains_and_forecasts_with_settings() {
    let dir = tmp("wild-export");
    let folder = stations(&dir);
    let file = folder.join("PRSA_Data_Changping.csv");
    let f = file.to_str().unwrap();
    // The refusal names the file, the line, the column and both settings that fix it.
    let (ok, out, _) = run(&["inspect", f, "--set", "target=\"PM2.5\""]);
    assert!(ok);
    assert!(out.contains("time: from year/month/day/hour; 2013-03-01 00:00:00 .. 2013-03-08 23:00:00, one step every 1 h; 192 rows on the grid"), "{out}");
    assert!(out.contains("gaps: 2 missing time steps inserted"), "{out}");
    assert!(out.contains(":2: column 8 (wd): cannot parse 'N' as a number: a text column; set data.categorical = \"onehot\" (or \"codes\") to encode text columns as inputs, or data.drop = [\"wd\"] to leave it out"), "{out}");
    let config = format!(
        "[data]\ndataset = \"custom\"\npath = {f:?}\ntarget = \"PM2.5\"\ncategorical = \"onehot\"\ndrop = [\"station\"]\nfeatures = \"MS\"\nseq_len = 24\npred_len = 6\nval_size = 24\ntest_size = 24\n[model]\nname = \"dlinear\"\n[train]\nepochs = 3\nbatch_size = 16\nlr = 0.01\n"
    );
    let r = train(&dir, "export", &config);
    let res = results(&r);
    assert_eq!(res["data"]["columns"].as_array().map(|c| c.len()), Some(6), "TEMP, wd=E/N/S/W, PM2.5: {}", res["data"]);
    // A new file of the same layout forecasts through the saved schema (one-hot mapping included).
    let new = dir.join("new.csv");
    let text = station_csv("Changping", 1.0, &[]);
    std::fs::write(&new, text.lines().take(1 + 48).collect::<Vec<_>>().join("\n")).unwrap();
    let out_csv = dir.join("f.csv");
    let (ok, _, err) = run(&["forecast", "--model", r.to_str().unwrap(), "--input", new.to_str().unwrap(), "--out", out_csv.to_str().unwrap()]);
    assert!(ok, "{err}");
    let fc = std::fs::read_to_string(&out_csv).unwrap();
    assert!(fc.starts_with("date,PM2.5\n2013-03-03 00:00:00,"), "{fc}");
    assert_eq!(fc.lines().count(), 7);
    // The same file as an HTTP body (text/csv): the same numbers as the CLI.
    let cfg = strata_serve::ServeConfig { models: vec![("pm".into(), r.clone())], addr: ([127, 0, 0, 1], 0).into(), ..Default::default() };
    let url = format!("http://{}/v1/models/pm/forecast", strata_serve::spawn(cfg).unwrap());
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let body = std::fs::read_to_string(&new).unwrap();
    let mut reply = agent.post(&url).header("content-type", "text/csv").send(body.as_str()).unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let json: serde_json::Value = serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
    let http: Vec<f32> = json["values"].as_array().unwrap().iter().map(|row| row[0].as_f64().unwrap() as f32).collect();
    let cli: Vec<f32> = fc.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(http, cli);
    let mut reply = agent.post(&url).header("content-type", "text/csv").send(body.replacen(",N,", ",NNW,", 1).as_str()).unwrap();
    assert_eq!(reply.status().as_u16(), 422);
    assert!(reply.body_mut().read_to_string().unwrap().contains("'NNW' is not one of the values the model was trained with"));
    // A value the model never saw is refused, naming the line and the known values.
    std::fs::write(&new, text.lines().take(1 + 48).collect::<Vec<_>>().join("\n").replacen(",N,", ",NNW,", 1)).unwrap();
    let (ok, _, err) = run(&["forecast", "--model", r.to_str().unwrap(), "--input", new.to_str().unwrap(), "--out", out_csv.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("column 8 (wd): 'NNW' is not one of the values the model was trained with: [\"E\", \"N\", \"S\", \"W\"]"), "{err}");
}

#[test]
fn a_folder_of_stations_trains_a_graph_model_with_a_graph_from_coordinates() {
    let dir = tmp("wild-folder");
    let folder = stations(&dir);
    let coords = dir.join("stations.csv");
    let base = format!("[data]\ndataset = \"spatial\"\npath = {:?}\ntarget = \"PM2.5\"\ncategorical = \"codes\"\nseq_len = 12\npred_len = 12\n", folder.to_str().unwrap());
    // No graph: a model that needs one says so; one that learns its adjacency trains.
    let cfg = dir.join("stgcn.toml");
    std::fs::write(&cfg, format!("{base}[model]\nname = \"stgcn\"\n[train]\nepochs = 1\n")).unwrap();
    let (ok, _, err) = run(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("stgcn").to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("graph"), "{err}");
    let r = train(&dir, "stid", &format!("{base}[model]\nname = \"stid\"\n[train]\nepochs = 1\nbatch_size = 16\nloss = \"mae\"\n"));
    assert_eq!(results(&r)["data"]["nodes"], 3);
    assert_eq!(results(&r)["data"]["read"]["gaps"], serde_json::json!([["Aotizhongxin", 0], ["Changping", 2], ["Dingling", 1]]));
    // Coordinates -> k nearest neighbours (k = 1: each station and its nearest, both ways).
    let r = train(&dir, "gwnet", &format!("{base}coordinates = {:?}\ngraph_from = \"knn\"\ngraph_k = 1\n[model]\nname = \"gwnet\"\n[train]\nepochs = 1\nbatch_size = 16\nloss = \"mae\"\n", coords.to_str().unwrap()));
    let graph = std::fs::read(r.join("graph.npy")).unwrap();
    let adj: Vec<f32> = graph[graph.len() - 36..].chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    // Node order Aotizhongxin, Changping, Dingling: Changping and Dingling are nearest each
    // other (8 km); Aotizhongxin's nearest is Changping (about 29 km).
    assert_eq!(adj, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    let out_csv = dir.join("f.csv");
    let (ok, _, err) = run(&["forecast", "--model", r.to_str().unwrap(), "--input", folder.to_str().unwrap(), "--out", out_csv.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(std::fs::read_to_string(&out_csv).unwrap().starts_with("date,Aotizhongxin,Changping,Dingling\n2013-03-09 00:00:00,"));
}

/// A long table of 4 series: hourly from different starts, series `s2` misses one hour.
fn long_rows() -> Vec<(String, String, f64, f64)> {
    let mut rows = Vec::new();
    for s in 0..4 {
        for k in (s * 3)..300 {
            if s == 2 && k == 150 {
                continue;
            }
            let t = k as f64;
            let ds = format!("2024-01-{:02} {:02}:00:00", 1 + k / 24, k % 24);
            rows.push((format!("s{s}"), ds, (t * 0.3 + s as f64).sin() * 10.0 + 50.0, (t * 0.1).cos()));
        }
    }
    rows
}

fn write_parquet(path: &Path) {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    let rows = long_rows();
    let ids: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()));
    let ds: ArrayRef = Arc::new(TimestampMicrosecondArray::from(
        rows.iter().map(|r| chrono::NaiveDateTime::parse_from_str(&r.1, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_micros()).collect::<Vec<_>>(),
    ));
    let y: ArrayRef = Arc::new(Float64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()));
    let x: ArrayRef = Arc::new(Float64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>()));
    let batch = RecordBatch::try_from_iter([("unique_id", ids), ("ds", ds), ("y", y), ("temp", x)]).unwrap();
    let props = parquet::file::properties::WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn long_tables_in_parquet_and_csv_train_as_series_or_as_nodes() {
    let dir = tmp("wild-long");
    let pq = dir.join("long.parquet");
    write_parquet(&pq);
    let (ok, out, err) = run(&["inspect", pq.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("layout: long"), "{out}");
    assert!(out.contains("time: from ds; 2024-01-01 00:00:00 .. 2024-01-13 11:00:00, one step every 1 h; 300 rows on the grid"), "{out}");
    // s1 starts 3 h late, s2 6 h late and misses an hour, s3 9 h late: 3 + 7 + 9 = 19.
    assert!(out.contains("gaps: 19 missing time steps"), "{out}");
    assert!(out.contains("nodes: 4 (s0, s1, s2, s3)"), "{out}");
    // As a long-sequence dataset: one channel per series.
    let r = train(&dir, "lsf", &format!("[data]\ndataset = \"custom\"\npath = {:?}\nseq_len = 48\npred_len = 12\n[model]\nname = \"dlinear\"\n[train]\nepochs = 2\nbatch_size = 16\n", pq.to_str().unwrap()));
    assert_eq!(results(&r)["data"]["columns"], serde_json::json!(["s0", "s1", "s2", "s3"]));
    // As a spatio-temporal one, the series are nodes (intersection of spans: 291 rows).
    let r = train(&dir, "st", &format!("[data]\ndataset = \"spatial\"\npath = {:?}\nalign = \"intersection\"\nseq_len = 12\npred_len = 12\n[model]\nname = \"stid\"\n[train]\nepochs = 1\nbatch_size = 16\n", pq.to_str().unwrap()));
    assert!(r.join("schema.json").exists());
    // A duplicated timestamp in a CSV long table is refused with the series, lines and fix.
    let csv = dir.join("dup.csv");
    std::fs::write(&csv, "unique_id,ds,y\nA,2024-01-01 00:00,1\nB,2024-01-01 00:00,1\nA,2024-01-01 01:00,2\nA,2024-01-01 01:00,3\n").unwrap();
    let cfg = dir.join("dup.toml");
    std::fs::write(&cfg, format!("[data]\ndataset = \"custom\"\npath = {:?}\nseq_len = 1\npred_len = 1\n[model]\nname = \"dlinear\"\n", csv.to_str().unwrap())).unwrap();
    let (ok, _, err) = run(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("dup").to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("dup.csv: series 'A': line 4 and line 5 both have the time 2024-01-01 01:00:00; set data.duplicates = \"first\", \"last\" or \"mean\""), "{err}");
}

#[test]
fn arrow_ipc_files_read_like_parquet() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    let dir = tmp("wild-arrow");
    let n = 400;
    let date: ArrayRef = Arc::new(StringArray::from((0..n).map(|k| format!("2024-01-{:02} {:02}:00:00", 1 + k / 24, k % 24)).collect::<Vec<_>>()));
    let a: ArrayRef = Arc::new(Float64Array::from((0..n).map(|k| (k as f64 * 0.2).sin()).collect::<Vec<_>>()));
    let ot: ArrayRef = Arc::new(Float64Array::from((0..n).map(|k| (k as f64 * 0.1).cos()).collect::<Vec<_>>()));
    let batch = RecordBatch::try_from_iter([("date", date), ("OT", ot), ("a", a)]).unwrap();
    let path = dir.join("t.arrow");
    let mut w = arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(&path).unwrap(), &batch.schema()).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let r = train(&dir, "arrow", &format!("[data]\ndataset = \"custom\"\npath = {:?}\nseq_len = 24\npred_len = 12\n[model]\nname = \"dlinear\"\n[train]\nepochs = 1\n", path.to_str().unwrap()));
    // OT is the target (TSLib's convention): stored last.
    assert_eq!(results(&r)["data"]["columns"], serde_json::json!(["a", "OT"]));
}

#[test]
fn pygt_layouts_train_and_a_dynamic_graph_is_told_or_averaged() {
    let dir = tmp("wild-pygt");
    let (t, n) = (120, 5);
    let series = |k: usize, i: usize| ((k as f64) * 0.4 + i as f64).sin() * 3.0 + 10.0;
    // Wikipedia-maths layout: per-step snapshots, static weighted edges.
    let mut wiki = serde_json::Map::new();
    wiki.insert("edges".into(), serde_json::json!([[0, 1], [1, 2], [2, 3], [3, 4]]));
    wiki.insert("weights".into(), serde_json::json!([1, 2, 1, 3, 1]));
    wiki.insert("time_periods".into(), serde_json::json!(t));
    for k in 0..t {
        wiki.insert(k.to_string(), serde_json::json!({"y": (0..n).map(|i| series(k, i)).collect::<Vec<_>>()}));
    }
    let p = dir.join("wiki.json");
    std::fs::write(&p, serde_json::Value::Object(wiki).to_string()).unwrap();
    let (ok, _, err) = run(&["inspect", p.to_str().unwrap()]);
    assert!(!ok, "4 edges, 5 weights must be refused");
    assert!(err.contains("key `edges`: 4 edges but 5 weights"), "{err}");
    let text = std::fs::read_to_string(&p).unwrap().replace("[1,2,1,3,1]", "[1,2,1,3]");
    std::fs::write(&p, text).unwrap();
    let base = |p: &Path| format!("[data]\ndataset = \"spatial\"\npath = {:?}\ngraph = {:?}\nseq_len = 12\npred_len = 4\n", p.to_str().unwrap(), p.to_str().unwrap());
    train(&dir, "wiki", &format!("{}[model]\nname = \"stgcn\"\n[train]\nepochs = 1\n", base(&p)));
    // England-COVID layout: a graph per step.
    let y: Vec<Vec<f64>> = (0..t).map(|k| (0..n).map(|i| series(k, i)).collect()).collect();
    let idx: serde_json::Map<String, serde_json::Value> = (0..t).map(|k| (k.to_string(), serde_json::json!([[k % n, (k + 1) % n]]))).collect();
    let w: serde_json::Map<String, serde_json::Value> = (0..t).map(|k| (k.to_string(), serde_json::json!([2.0]))).collect();
    let p = dir.join("covid.json");
    std::fs::write(&p, serde_json::json!({"time_periods": t, "y": y, "edge_mapping": {"edge_index": idx, "edge_weight": w}}).to_string()).unwrap();
    // A model that takes each window's graph trains on it; a grid model is told, and trains on
    // the time average when asked.
    train(&dir, "covid", &format!("{}[model]\nname = \"stgcn\"\n[train]\nepochs = 1\n", base(&p)));
    let cfg = dir.join("covid_grid.toml");
    std::fs::write(&cfg, format!("{}grid = [1, 5]\n[model]\nname = \"stcnn\"\n[train]\nepochs = 1\n", base(&p))).unwrap();
    let (ok, _, err) = run(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("covid_grid").to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("stcnn does not take a graph per window, and"), "{err}");
    assert!(err.contains("has a graph per time step (120 steps): set data.dynamic_graph = \"mean\" to give it the time-averaged graph, or use stgcn or gwnet"), "{err}");
    train(&dir, "covid_mean", &format!("{}grid = [1, 5]\ndynamic_graph = \"mean\"\n[model]\nname = \"stcnn\"\n[train]\nepochs = 1\n", base(&p)));
}
