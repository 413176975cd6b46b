//! Helpers shared by strata-train's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The timestamp of hourly row `t` from 2021-03-01 00:00.
pub fn date(t: usize) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2021, 3, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("a date");
    (start + chrono::Duration::hours(t as i64)).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A temporary folder for one test (`<prefix>-<name>-<pid>`), created.
pub fn dir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
