//! Calendar features as Time-Series-Library computes them with `timeenc=1`
//! (`utils/timefeatures.py`): each feature scaled to [-0.5, 0.5]; or, with
//! `data.time_features = "calendar"`, as TS2Vec's and FSNet's loaders do (`timeenc=2`): seven
//! raw calendar fields standardised with the training rows' mean and standard deviation.

use chrono::{Datelike, NaiveDateTime, Timelike};

/// Which calendar features the models read (`data.time_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeFeatures {
    /// TSLib's `timeenc=1`: the fields of the data's frequency, each scaled to [-0.5, 0.5].
    #[default]
    Timef,
    /// TS2Vec's and FSNet's `timeenc=2`: [`CALENDAR_NAMES`] as integers, standardised with the
    /// training rows' statistics (FSNet's ETT loaders; its other loaders leave them raw).
    Calendar,
}

/// The fields of `TimeFeatures::Calendar`, in order (pandas' `minute`, `hour`, `dayofweek`,
/// `day`, `dayofyear`, `month`, `weekofyear`).
pub const CALENDAR_NAMES: [&str; 7] = ["minute", "hour", "day_of_week", "day_of_month", "day_of_year", "month", "week_of_year"];

fn calendar_fields(d: &NaiveDateTime) -> [f64; 7] {
    [d.minute() as f64, d.hour() as f64, d.weekday().num_days_from_monday() as f64, d.day() as f64, d.ordinal() as f64, d.month() as f64, d.iso_week().week() as f64]
}

/// Mean and standard deviation of each calendar field over the training rows (as sklearn's
/// `StandardScaler`: population deviation, a constant field divided by 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalendarScaler {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl CalendarScaler {
    pub fn fit(dates: &[NaiveDateTime]) -> CalendarScaler {
        let n = dates.len().max(1) as f64;
        // Sums of small integers are exact: a field constant over the rows gets its value as the
        // mean and a zero variance, hence the deviation 1 (sklearn's rule for constant
        // features), not a rounding error's 1e-14 that would blow up every later value.
        let mut sum = vec![0f64; 7];
        for d in dates {
            for (s, v) in sum.iter_mut().zip(calendar_fields(d)) {
                *s += v;
            }
        }
        let mean: Vec<f64> = sum.into_iter().map(|s| s / n).collect();
        let mut var = vec![0f64; 7];
        for d in dates {
            for ((s, v), m) in var.iter_mut().zip(calendar_fields(d)).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let std = var
            .into_iter()
            .zip(&mean)
            .map(|(v, m)| {
                let v = v / n;
                if v > 1e-12 * (1.0 + m * m) { v.sqrt() } else { 1.0 }
            })
            .collect();
        CalendarScaler { mean, std }
    }

    /// Row-major `[dates.len(), 7]` standardised calendar fields.
    pub fn features(&self, dates: &[NaiveDateTime]) -> Vec<f32> {
        dates.iter().flat_map(|d| calendar_fields(d).into_iter().zip(self.mean.iter().zip(&self.std)).map(|(v, (m, s))| ((v - m) / s) as f32)).collect()
    }
}

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

    #[test]
    fn calendar_fields_standardised_by_hand() {
        // Two training rows: 2016-07-01 00:00 (Friday, day 183, ISO week 26) and 2016-07-04
        // 12:30 (Monday, day 186, week 27); pandas: minute, hour, dayofweek, day, dayofyear,
        // month, weekofyear.
        let a = crate::table::parse_date("2016-07-01 00:00:00").unwrap();
        let b = crate::table::parse_date("2016-07-04 12:30:00").unwrap();
        let s = CalendarScaler::fit(&[a, b]);
        assert_eq!(s.mean, vec![15.0, 6.0, 2.0, 2.5, 184.5, 7.0, 26.5]);
        // Population deviations; the month is constant, divided by 1.
        assert_eq!(s.std, vec![15.0, 6.0, 2.0, 1.5, 1.5, 1.0, 0.5]);
        // A later date: 2017-01-02 06:00 (Monday, day 2, ISO week 1), far outside the range.
        let c = crate::table::parse_date("2017-01-02 06:00:00").unwrap();
        let f = s.features(&[c]);
        let want = [-1.0, 0.0, -1.0, -0.333_333_34, -121.666_664, -6.0, -51.0];
        for (got, want) in f.iter().zip(want) {
            assert!((got - want).abs() < 1e-4, "{f:?}");
        }
        // Thirty days of July at 15 minutes (ETTm1's warm-up in FSNet's protocol): the month
        // is constant, so its deviation is 1 and an August date reads month + 1.
        let start = crate::table::parse_date("2016-07-01 00:00:00").unwrap();
        let july: Vec<_> = (0..2880).map(|k| start + chrono::Duration::minutes(15 * k)).collect();
        let s = CalendarScaler::fit(&july);
        assert_eq!((s.mean[5], s.std[5]), (7.0, 1.0));
        let august = crate::table::parse_date("2016-08-01 00:00:00").unwrap();
        assert_eq!(s.features(&[august])[5], 1.0);
        assert!(s.features(&[august]).iter().all(|v| v.abs() < 10.0), "{:?}", s.features(&[august]));
    }
}
