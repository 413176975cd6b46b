//! `strata forecast` with covariates (docs/covariates.md): a run trained with past-observed
//! (a number and a one-hot text column) and future-known covariates forecasts a new file whose
//! rows go on past the last observed target with the future-known column filled in; the
//! forecast follows those future values; a file without them is refused, saying what to add.

mod common;

use std::path::Path;

use common::{strata, tmp, train};

const DIRS: [&str; 4] = ["N", "E", "S", "W"];

/// `date, TEMP, wd, holiday, PM2.5`: `rows` hourly rows observed, then `horizon` rows with only
/// the future-known `holiday` (and the date) filled in; `holiday` of those rows is `future`.
fn file(rows: usize, horizon: usize, future: f64) -> String {
    let mut s = String::from("date,TEMP,wd,holiday,PM2.5\n");
    for k in 0..rows + horizon {
        let t = k as f64;
        let date = chrono::NaiveDate::from_ymd_opt(2013, 3, 1).unwrap().and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(k as i64);
        let holiday = if k >= rows { future } else { ((k / 24) % 7 == 5) as u8 as f64 };
        let temp = 5.0 + 3.0 * (t * 0.26).sin();
        let pm = 60.0 + 20.0 * (t * std::f64::consts::TAU / 24.0).sin() + 2.0 * temp + 15.0 * holiday;
        if k < rows {
            s += &format!("{},{temp:.2},{},{holiday},{pm:.2}\n", date.format("%Y-%m-%d %H:%M:%S"), DIRS[k % 4]);
        } else {
            s += &format!("{},,,{holiday},\n", date.format("%Y-%m-%d %H:%M:%S"));
        }
    }
    s
}

fn forecast(run: &Path, input: &Path, out: &Path) -> (bool, String) {
    let o = strata().args(["forecast", "--model"]).arg(run).arg("--input").arg(input).arg("--out").arg(out).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string())
}

fn values(csv: &Path) -> Vec<f64> {
    std::fs::read_to_string(csv).unwrap().lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect()
}

#[test]
fn forecasting_reads_future_known_covariates_over_the_horizon_and_refuses_without_them() {
    let dir = tmp("covariates");
    let data = dir.join("train.csv");
    std::fs::write(&data, file(24 * 20, 0, 0.0)).unwrap();
    let config = format!(
        "[data]\ndataset = \"custom\"\npath = {:?}\ntarget = \"PM2.5\"\nfeatures = \"S\"\ncategorical = \"onehot\"\nseq_len = 24\npred_len = 6\n[data.covariates]\npast = [\"TEMP\", \"wd\"]\nfuture = [\"holiday\"]\n[model]\nname = \"tide\"\nhidden_size = 32\ntemporal_decoder_hidden = 16\nfinal_norm = false\ndropout = 0.0\n[train]\nepochs = 2\nbatch_size = 16\nlr = 0.003\n",
        data
    );
    let run = train(&dir, "pm", &config);
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("schema.json")).unwrap()).unwrap();
    assert_eq!(schema["covariates"]["names"]["past"], serde_json::json!(["TEMP", "wd=E", "wd=N", "wd=S", "wd=W"]));
    assert_eq!(schema["covariates"]["names"]["future"], serde_json::json!(["holiday"]));
    assert_eq!(schema["columns"], serde_json::json!(["PM2.5"]));

    // 48 observed rows, then the 6 horizon rows with the holiday flag known.
    let (new, out) = (dir.join("new.csv"), dir.join("f.csv"));
    std::fs::write(&new, file(48, 6, 0.0)).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(ok, "{err}");
    let fc = std::fs::read_to_string(&out).unwrap();
    assert!(fc.starts_with("date,PM2.5\n2013-03-03 00:00:00,"), "the first forecast row follows the last observed target:\n{fc}");
    assert_eq!(fc.lines().count(), 7);
    let workday = values(&out);
    // `strata serve` reads the same file as a request body: the same numbers.
    let cfg = strata_serve::ServeConfig { models: vec![("pm".into(), run.clone())], addr: ([127, 0, 0, 1], 0).into(), ..Default::default() };
    let url = format!("http://{}/v1/models/pm/forecast", strata_serve::spawn(cfg).unwrap());
    let mut reply = ureq::post(&url).header("content-type", "text/csv").send(std::fs::read_to_string(&new).unwrap().as_str()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
    let http: Vec<f64> = json["values"].as_array().unwrap().iter().map(|row| row[0].as_f64().unwrap()).collect();
    assert_eq!(http.len(), 6);
    for (a, b) in http.iter().zip(&workday) {
        assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "serve {http:?} vs forecast {workday:?}");
    }
    // The same context with a holiday over the horizon: the model reads it there.
    std::fs::write(&new, file(48, 6, 1.0)).unwrap();
    assert!(forecast(&run, &new, &out).0);
    assert_ne!(values(&out), workday, "the future-known covariate over the horizon changes the forecast");

    // Without the horizon rows: refused, naming the covariate, the rows and the fix.
    std::fs::write(&new, file(48, 0, 0.0)).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(!ok);
    assert!(err.contains("future-known covariate(s) [\"holiday\"] over the 6 steps after the forecast origin (rows 49..=54); the input ends at row 48: add those rows"), "{err}");
    // A horizon row with the future-known cell empty: refused, naming the row and the column.
    std::fs::write(&new, file(48, 6, 0.0).replace(",,,0,\n", ",,,,\n")).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(!ok);
    assert!(err.contains("has no value in column 'holiday', a future-known covariate"), "{err}");
    // A missing past-observed column: refused by name.
    std::fs::write(&new, file(48, 6, 0.0).replace("TEMP", "T")).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(!ok);
    assert!(err.contains("missing past-observed covariate column(s) [\"TEMP\"]"), "{err}");
}

/// A long table with per-series covariates: `unique_id, ds, y, temp, holiday, elev`.
fn long_file(rows: usize, horizon: usize) -> String {
    let mut s = String::from("unique_id,ds,y,temp,holiday,elev\n");
    for (k, id) in ["north", "south"].iter().enumerate() {
        for t in 0..rows + horizon {
            let date = chrono::NaiveDate::from_ymd_opt(2013, 3, 1).unwrap().and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(t as i64);
            let holiday = ((t / 24) % 7 == 5) as u8;
            let temp = 5.0 + 3.0 * (t as f64 * 0.26 + k as f64).sin();
            let y = 10.0 * k as f64 + (t as f64 * std::f64::consts::TAU / 24.0).sin() + 0.5 * temp + 2.0 * holiday as f64;
            let (y, temp) = if t < rows { (format!("{y:.3}"), format!("{temp:.3}")) } else { (String::new(), String::new()) };
            s += &format!("{id},{},{y},{temp},{holiday},{}\n", date.format("%Y-%m-%d %H:%M:%S"), 100 + 50 * k);
        }
    }
    s
}

#[test]
fn a_long_table_forecasts_each_series_with_its_own_covariates() {
    let dir = tmp("covariates-long");
    let data = dir.join("train.csv");
    std::fs::write(&data, long_file(24 * 20, 0)).unwrap();
    let config = format!(
        "[data]\ndataset = \"custom\"\npath = {data:?}\nfeatures = \"M\"\nseq_len = 24\npred_len = 6\n[data.covariates]\npast = [\"temp\"]\nfuture = [\"holiday\"]\nstatic = [\"elev\"]\n[model]\nname = \"tide\"\nhidden_size = 32\ntemporal_decoder_hidden = 16\nfinal_norm = false\n[train]\nepochs = 2\nbatch_size = 16\nlr = 0.003\n"
    );
    let run = train(&dir, "long", &config);
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("schema.json")).unwrap()).unwrap();
    assert_eq!(schema["columns"], serde_json::json!(["north", "south"]));
    assert_eq!(schema["covariates"]["groups"], 2);
    let (new, out) = (dir.join("new.csv"), dir.join("f.csv"));
    std::fs::write(&new, long_file(48, 6)).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(ok, "{err}");
    let fc = std::fs::read_to_string(&out).unwrap();
    assert!(fc.starts_with("date,north,south\n2013-03-03 00:00:00,"), "{fc}");
    assert_eq!(fc.lines().count(), 7);
    // The south series forecast near its own level (10 higher), from its own covariates.
    let rows: Vec<Vec<f64>> = fc.lines().skip(1).map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect()).collect();
    let gap: f64 = rows.iter().map(|r| r[1] - r[0]).sum::<f64>() / rows.len() as f64;
    assert!((gap - 10.0).abs() < 3.0, "south - north = {gap}: {fc}");
}

/// Three sensors in a long table: `unique_id, ds, y, occ, hol, lanes`; `y` follows the
/// occupancy one step earlier and the holiday flag. Horizon rows hold only `hol` (= `future`).
fn sensor_file(rows: usize, horizon: usize, future: u8) -> String {
    let mut s = String::from("unique_id,ds,y,occ,hol,lanes\n");
    for k in 0..3 {
        for t in 0..rows + horizon {
            let date = chrono::NaiveDate::from_ymd_opt(2013, 3, 1).unwrap().and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(t as i64);
            let hol = if t >= rows { future } else { ((t / 24) % 7 == 5) as u8 };
            let occ = |t: usize| 0.5 + 0.4 * (t as f64 * 0.37 + k as f64).sin();
            let y = 40.0 + 5.0 * k as f64 + 8.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin() + 10.0 * occ(t.saturating_sub(1)) - 6.0 * hol as f64;
            let (y, o) = if t < rows { (format!("{y:.3}"), format!("{:.3}", occ(t))) } else { (String::new(), String::new()) };
            s += &format!("s{k},{},{y},{o},{hol},{}\n", date.format("%Y-%m-%d %H:%M:%S"), 2 + k);
        }
    }
    s
}

#[test]
fn a_sensor_graph_run_forecasts_with_per_node_covariates_and_refuses_without_the_future_ones() {
    let dir = tmp("covariates-spatial");
    let data = dir.join("train.csv");
    std::fs::write(&data, sensor_file(24 * 20, 0, 0)).unwrap();
    let config = format!(
        "[data]\ndataset = \"spatial\"\npath = {data:?}\nseq_len = 12\npred_len = 3\n[data.covariates]\npast = [\"occ\"]\nfuture = [\"hol\"]\nstatic = [\"lanes\"]\n[model]\nname = \"stid\"\ndropout = 0.0\n[train]\nepochs = 3\nbatch_size = 16\nlr = 0.003\n"
    );
    let run = train(&dir, "sensors", &config);
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("schema.json")).unwrap()).unwrap();
    assert_eq!(schema["columns"], serde_json::json!(["s0", "s1", "s2"]));
    assert_eq!(schema["covariates"]["groups"], 3);
    assert_eq!(schema["covariates"]["series"], serde_json::json!(["s0", "s1", "s2"]));
    let (new, out) = (dir.join("new.csv"), dir.join("f.csv"));
    std::fs::write(&new, sensor_file(48, 3, 0)).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(ok, "{err}");
    let fc = std::fs::read_to_string(&out).unwrap();
    assert!(fc.starts_with("date,s0,s1,s2\n2013-03-03 00:00:00,"), "{fc}");
    assert_eq!(fc.lines().count(), 4);
    let workday = values(&out);
    std::fs::write(&new, sensor_file(48, 3, 1)).unwrap();
    assert!(forecast(&run, &new, &out).0);
    assert_ne!(values(&out), workday, "the future-known covariate over the horizon changes the forecast");
    // Without the horizon rows: refused, naming the covariate and the fix.
    std::fs::write(&new, sensor_file(48, 0, 0)).unwrap();
    let (ok, err) = forecast(&run, &new, &out);
    assert!(!ok);
    assert!(err.contains("future-known covariate(s) [\"hol\"] over the 3 steps after the forecast origin") && err.contains("add those rows"), "{err}");
}
