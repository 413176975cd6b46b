//! Integration tests on the real files in `$STRATA_DATA` (default `../shared/data`).

use strata_data::prepare::{DataConfig, Features, prepare};
use strata_data::table::read_table;
use strata_data::{data_root, registry};

fn root() -> std::path::PathBuf {
    // Tests run in the crate directory; the data lives beside the repository.
    let r = std::env::var_os("STRATA_DATA").map(Into::into).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
    });
    assert!(r.join("ETTh1/ETTh1.csv").exists(), "real data not found at {} (set STRATA_DATA)", r.display());
    r
}

#[test]
fn weather_loads_with_its_quirks() {
    let t = read_table(&root().join("weather/weather.csv.gz"), Some("OT")).unwrap();
    assert_eq!(t.rows, 52696);
    assert_eq!(t.cols(), 21);
    assert_eq!(t.columns.last().unwrap(), "OT");
    assert!(t.columns.iter().any(|c| c.starts_with("SWDR")));
    assert_eq!(t.quality.step_seconds, Some(600));
    // One duplicated timestamp (2020-05-12 06:00) and one 100-minute gap.
    assert_eq!(t.quality.duplicate_timestamp_lines.len(), 1);
    let dup_line = t.quality.duplicate_timestamp_lines[0] as usize;
    assert_eq!(t.dates.as_ref().unwrap()[dup_line - 2].to_string(), "2020-05-12 06:00:00");
    let gaps: Vec<_> = t.quality.irregular_step_lines.iter().map(|&l| {
        let d = t.dates.as_ref().unwrap();
        (d[l as usize - 2] - d[l as usize - 3]).num_minutes()
    }).collect();
    assert!(gaps.contains(&100), "{gaps:?}");
    assert_eq!(t.quality.missing_cells, 0);
}

#[test]
fn every_registry_dataset_prepares() {
    unsafe { std::env::set_var("STRATA_DATA", root()) };
    assert_eq!(data_root(), root());
    for spec in registry::DATASETS {
        let seq_len = if spec.name == "ili" { 36 } else { 96 };
        let pred_len = if spec.name == "ili" { 24 } else { 96 };
        let cfg = DataConfig { dataset: spec.name.into(), seq_len, pred_len, ..Default::default() };
        let p = prepare(&cfg).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert_eq!(p.columns.last().unwrap(), "OT", "{}", spec.name);
        assert_eq!(p.sha256.len(), 64);
    }
}

#[test]
fn etth1_windows_and_scaling_follow_the_protocol() {
    let cfg = DataConfig {
        dataset: "etth1".into(),
        path: Some(root().join("ETTh1/ETTh1.csv")),
        seq_len: 336,
        pred_len: 96,
        ..Default::default()
    };
    let p = prepare(&cfg).unwrap();
    assert_eq!(p.rows, 17420);
    assert_eq!(p.channels(), 7);
    assert_eq!(p.train.len(), 8640 - 336 - 96 + 1);
    assert_eq!(p.val.len(), 2880 - 96 + 1);
    assert_eq!(p.test.len(), 2880 - 96 + 1);
    // Scaled training rows have mean 0 and unit (population) variance per channel.
    let c = p.channels();
    for ch in 0..c {
        let col: Vec<f64> = (0..8640).map(|r| p.train.series.data[r * c + ch] as f64).collect();
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
        assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "channel {ch}: {mean} {var}");
    }
    // First raw OT value of ETTh1 is 30.531; the scaler maps it back.
    let s = p.scaler.as_ref().unwrap();
    let ot = p.train.series.data[c - 1] * s.std[c - 1] + s.mean[c - 1];
    assert!((ot - 30.531).abs() < 1e-3);
    // Calendar features (TSLib timeenc=1, hourly: hour, weekday, day of month, day of year) of
    // the first row, 2016-07-01 00:00, a Friday and day 183; and of the first target row of
    // window 1 (row 337 = 2016-07-15 01:00).
    let mut b = strata_data::window::Batch::default();
    p.train.fill(&[0, 1], &mut b);
    let want = [-0.5, 4.0 / 6.0 - 0.5, -0.5, 182.0 / 365.0 - 0.5];
    for (got, want) in b.x_mark[..4].iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{:?}", &b.x_mark[..4]);
    }
    assert_eq!(b.x_mark.len(), 2 * 336 * 4);
    assert_eq!(b.y_mark.len(), 2 * 96 * 4);
    let y1 = &b.y_mark[96 * 4..96 * 4 + 4];
    let want = [1.0 / 23.0 - 0.5, 4.0 / 6.0 - 0.5, 14.0 / 30.0 - 0.5, 196.0 / 365.0 - 0.5];
    for (got, want) in y1.iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{y1:?}");
    }

    let s_mode = prepare(&DataConfig { features: Features::S, ..cfg.clone() }).unwrap();
    assert_eq!(s_mode.columns, ["OT"]);
    let ms = prepare(&DataConfig { features: Features::MS, ..cfg }).unwrap();
    assert_eq!(ms.output_channels(), 6..7);
}

#[test]
fn bad_files_get_one_line_errors() {
    let dir = std::env::temp_dir().join(format!("strata-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.csv");
    std::fs::write(&f, "date,a,OT\n2020-01-01 00:00:00,1,2\n2020-01-01 01:00:00,1\n").unwrap();
    let cfg = DataConfig { dataset: "custom".into(), path: Some(f.clone()), seq_len: 1, pred_len: 1, ..Default::default() };
    let e = prepare(&cfg).unwrap_err().to_string();
    assert!(e.contains("bad.csv:3: column 3: ragged row"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn gluonts_exchange_rate_rolling_windows() {
    let ds = strata_data::gluonts::read_gluonts(&root().join("gluonts_exchange_rate_nips/exchange_rate_nips.tar.gz"), None).unwrap();
    assert_eq!(ds.freq, "B");
    // The archive's metadata has no prediction_length: the 30-step spacing of its rolling
    // test windows gives it (GluonTS's recipe uses 30).
    assert_eq!(ds.prediction_length, 30);
    assert_eq!(ds.train.len(), 8);
    assert!(ds.train.iter().all(|e| e.target.len() == 6071));
    let w = ds.rolling_windows().unwrap();
    // 5 windows x 8 series; window k of series s forecasts steps 6071 + 30k .. 6071 + 30(k+1).
    assert_eq!(w.len(), 40);
    for (i, win) in w.iter().enumerate() {
        assert_eq!((win.series, win.history, win.horizon), (i % 8, 6071 + 30 * (i / 8), 30), "window {i}");
    }
}

#[test]
fn gluonts_dataset_as_aligned_multivariate_series() {
    let cfg = DataConfig { dataset: "exchange_rate_nips".into(), path: Some(root().join("gluonts_exchange_rate_nips/exchange_rate_nips.tar.gz")), seq_len: 90, pred_len: 30, ..Default::default() };
    let p = prepare(&cfg).unwrap();
    assert_eq!((p.rows, p.channels(), p.freq.as_str()), (6221, 8, "B"));
    // Test = the 5 rolling windows: targets at rows 6071 + 30k; validation = the 5 windows
    // before them inside the train split; training windows end before the validation targets.
    assert_eq!((p.test.len(), p.val.len()), (5, 5));
    assert_eq!(p.test.start + 4 * p.test.stride + 90, 6071 + 4 * 30);
    assert_eq!(p.train.end, 6071 - 150);
    // The first target of the last test window is series 0's value 6191 of the longest test entry,
    // put back from the scaled series.
    let ds = strata_data::gluonts::read_gluonts(&cfg.path.clone().unwrap(), None).unwrap();
    let s = p.scaler.as_ref().unwrap();
    let y = p.test.y(4)[0] * s.std[0] + s.mean[0];
    assert!((y - ds.test[32].target[6191]).abs() < 1e-5, "{y}");
    // Business days from 1990-01-01 (a Monday): row 5 is Monday 1990-01-08.
    let mut b = strata_data::window::Batch::default();
    p.train.fill(&[0], &mut b);
    assert_eq!(b.x_mark[5 * 3], -0.5); // day of week (Monday) of row 5
    let e = prepare(&DataConfig { pred_len: 24, ..cfg }).unwrap_err().to_string();
    assert!(e.contains("forecasts 30 steps"), "{e}");
}

#[test]
fn fsnet_calendar_features_match_its_loader() {
    // FSNet's ETT loaders (`timeenc=2`): minute, hour, day of week, day of month, day of year,
    // month, ISO week, standardised on the 2,880 training rows; fixture from pandas and sklearn
    // (fixtures/make_calendar_fixture.sh).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/calendar_etth2.json");
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cfg = DataConfig {
        dataset: "etth2".into(),
        path: Some(root().join("ETTh2/ETTh2.csv")),
        seq_len: f["seq_len"].as_u64().unwrap() as usize,
        pred_len: 24,
        split_rows: Some([2880, 720, 10800]),
        time_features: strata_data::timefeat::TimeFeatures::Calendar,
        ..Default::default()
    };
    let p = prepare(&cfg).unwrap();
    let s = p.calendar.as_ref().expect("calendar statistics");
    for (k, (m, want)) in s.mean.iter().zip(f["mean"].as_array().unwrap()).enumerate() {
        assert!((m - want.as_f64().unwrap()).abs() < 1e-9, "mean of field {k}: {m} vs {want}");
    }
    for (k, (d, want)) in s.std.iter().zip(f["scale"].as_array().unwrap()).enumerate() {
        assert!((d - want.as_f64().unwrap()).abs() < 1e-9, "deviation of field {k}: {d} vs {want}");
    }
    // Marks of test-split rows (the test windows start at row 3600 - seq_len).
    let marks = p.test.marks.as_ref().unwrap();
    assert_eq!(marks.channels, 7);
    for (r, want) in f["rows"].as_array().unwrap().iter().zip(f["marks"].as_array().unwrap()) {
        let row = p.test.start + r.as_u64().unwrap() as usize;
        for (k, w) in want.as_array().unwrap().iter().enumerate() {
            let got = marks.data[row * 7 + k] as f64;
            assert!((got - w.as_f64().unwrap()).abs() < 1e-4 * w.as_f64().unwrap().abs().max(1.0), "test row {r}, field {k}: {got} vs {w}");
        }
    }
    // The default stays TSLib's four hourly features.
    let timef = prepare(&DataConfig { time_features: Default::default(), ..cfg }).unwrap();
    assert_eq!(timef.test.marks.as_ref().unwrap().channels, 4);
    assert!(timef.calendar.is_none());
}
