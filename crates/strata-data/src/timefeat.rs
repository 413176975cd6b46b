//! Calendar features as Time-Series-Library computes them with `timeenc=1`
//! (`utils/timefeatures.py`): each feature scaled to [-0.5, 0.5].

use chrono::{Datelike, NaiveDateTime, Timelike};

/// Names of the features produced for a frequency string (`h`, `15min`, `10min`, `d`, `w`, ...).
pub fn feature_names(freq: &str) -> &'static [&'static str] {
    match freq_unit(freq) {
        'S' => &["second_of_minute", "minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year"],
        'T' => &["minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year"],
        'H' => &["hour_of_day", "day_of_week", "day_of_month", "day_of_year"],
        'D' => &["day_of_week", "day_of_month", "day_of_year"],
        'W' => &["day_of_month", "week_of_year"],
        _ => &["month_of_year"],
    }
}

fn freq_unit(freq: &str) -> char {
    let f = freq.trim_start_matches(|c: char| c.is_ascii_digit()).to_ascii_lowercase();
    match f.as_str() {
        "s" | "sec" => 'S',
        "t" | "min" => 'T',
        "h" => 'H',
        "d" | "b" => 'D',
        "w" => 'W',
        _ => 'M',
    }
}

/// Row-major `[dates.len(), feature_names(freq).len()]` calendar features.
pub fn time_features(dates: &[NaiveDateTime], freq: &str) -> Vec<f32> {
    let names = feature_names(freq);
    let mut out = Vec::with_capacity(dates.len() * names.len());
    for d in dates {
        for name in names {
            out.push(match *name {
                "second_of_minute" => d.second() as f32 / 59.0 - 0.5,
                "minute_of_hour" => d.minute() as f32 / 59.0 - 0.5,
                "hour_of_day" => d.hour() as f32 / 23.0 - 0.5,
                "day_of_week" => d.weekday().num_days_from_monday() as f32 / 6.0 - 0.5,
                "day_of_month" => (d.day() - 1) as f32 / 30.0 - 0.5,
                "day_of_year" => (d.ordinal() - 1) as f32 / 365.0 - 0.5,
                "week_of_year" => (d.iso_week().week() - 1) as f32 / 52.0 - 0.5,
                _ => (d.month() - 1) as f32 / 11.0 - 0.5,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_features_by_hand() {
        // 2016-07-01 was a Friday (weekday 4), day of year 183.
        let d = crate::table::parse_date("2016-07-01 23:00:00").unwrap();
        let f = time_features(&[d], "h");
        let want = [0.5, 4.0 / 6.0 - 0.5, -0.5, 182.0 / 365.0 - 0.5];
        for (a, b) in f.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{f:?}");
        }
        assert_eq!(feature_names("15min").len(), 5);
    }
}
