//! The named datasets of the long-sequence forecasting protocol and their split rules
//! (`../shared/docs/protocols.md`).

use crate::DataError;

/// How a dataset is cut into train / validation / test rows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum SplitRule {
    /// ETT hourly: 12/4/4 months of 30 days (8640 / 2880 / 2880 rows); later rows unused.
    EttHour,
    /// ETT 15-minute: the same months, 4 rows an hour.
    EttMinute,
    /// `int(0.7 n)` train, `int(0.2 n)` test, the rest validation.
    Ratio712,
    /// The last `test` rows test, the `val` rows before them validation, the rest training
    /// (`data.val_size` / `data.test_size`, neuralforecast's sizes in time steps).
    Sizes { val: usize, test: usize },
    /// The first `train` rows training, the next `val` validation, the next `test` test; later
    /// rows unused (`data.split_rows`; FSNet's online protocol on ETT: 2,880 / 720 / 10,800).
    Rows { train: usize, val: usize, test: usize },
    /// `int(train * n)` training rows, `int(test * n)` test rows at the end, the rest
    /// validation (`data.split` on long-sequence data; FSNet's custom datasets: 0.2 / 0.05 / 0.75).
    Shares { train: f64, test: f64 },
}

/// Row ranges `[start, end)` of the three splits. Validation and test start `seq_len` rows
/// before their border so that their first window is complete.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Borders {
    pub train: (usize, usize),
    pub val: (usize, usize),
    pub test: (usize, usize),
}

impl SplitRule {
    pub fn borders(self, rows: usize, seq_len: usize) -> Result<Borders, DataError> {
        let (n_train, val_end, test_end) = match self {
            SplitRule::EttHour | SplitRule::EttMinute => {
                let per_month = if self == SplitRule::EttHour { 30 * 24 } else { 30 * 24 * 4 };
                (12 * per_month, 16 * per_month, 20 * per_month)
            }
            SplitRule::Ratio712 => {
                let n_train = (rows as f64 * 0.7) as usize;
                let n_test = (rows as f64 * 0.2) as usize;
                (n_train, rows - n_test, rows)
            }
            SplitRule::Sizes { val, test } => {
                if val == 0 || test == 0 || val + test >= rows {
                    return Err(DataError::Config(format!(
                        "data.val_size = {val} and data.test_size = {test} must be positive and leave training rows in the {rows} rows of the file"
                    )));
                }
                (rows - test - val, rows - test, rows)
            }
            SplitRule::Rows { train, val, test } => (train, train + val, train + val + test),
            SplitRule::Shares { train, test } => {
                let n_train = (rows as f64 * train) as usize;
                let n_test = (rows as f64 * test) as usize;
                if n_train == 0 || n_test == 0 || n_train + n_test >= rows {
                    return Err(DataError::Config(format!(
                        "data.split: {} training and {} test rows of the {rows} rows leave no validation rows: give shares that sum to 1 with each positive",
                        n_train, n_test
                    )));
                }
                (n_train, rows - n_test, rows)
            }
        };
        if test_end > rows {
            return Err(DataError::Config(format!(
                "the split rule {self:?} needs {test_end} rows, the file has {rows}"
            )));
        }
        if seq_len > n_train {
            return Err(DataError::Config(format!(
                "seq_len {seq_len} is longer than the {n_train} training rows"
            )));
        }
        Ok(Borders { train: (0, n_train), val: (n_train - seq_len, val_end), test: (val_end - seq_len, test_end) })
    }
}

/// One entry of the registry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetSpec {
    pub name: &'static str,
    /// Path relative to the data root.
    pub file: &'static str,
    pub freq: &'static str,
    pub split: SplitRule,
    pub target: &'static str,
}

pub const DATASETS: &[DatasetSpec] = &[
    DatasetSpec { name: "etth1", file: "ETTh1/ETTh1.csv", freq: "h", split: SplitRule::EttHour, target: "OT" },
    DatasetSpec { name: "etth2", file: "ETTh2/ETTh2.csv", freq: "h", split: SplitRule::EttHour, target: "OT" },
    DatasetSpec { name: "ettm1", file: "ETTm1/ETTm1.csv.gz", freq: "15min", split: SplitRule::EttMinute, target: "OT" },
    DatasetSpec { name: "ettm2", file: "ETTm2/ETTm2.csv.gz", freq: "15min", split: SplitRule::EttMinute, target: "OT" },
    DatasetSpec { name: "weather", file: "weather/weather.csv.gz", freq: "10min", split: SplitRule::Ratio712, target: "OT" },
    DatasetSpec { name: "exchange", file: "exchange_rate/exchange_rate.csv", freq: "d", split: SplitRule::Ratio712, target: "OT" },
    DatasetSpec { name: "ili", file: "illness/national_illness.csv", freq: "w", split: SplitRule::Ratio712, target: "OT" },
];

/// Look a dataset up by name (case-insensitive). `custom` is not in the table: it needs a path.
pub fn lookup(name: &str) -> Result<&'static DatasetSpec, DataError> {
    let lower = name.to_ascii_lowercase();
    DATASETS.iter().find(|d| d.name == lower).ok_or_else(|| {
        let names: Vec<&str> = DATASETS.iter().map(|d| d.name).collect();
        DataError::Config(format!("unknown dataset '{name}'; known: {names:?} or 'custom' with data.path"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ett_hour_borders_match_tslib() {
        let b = SplitRule::EttHour.borders(17420, 336).unwrap();
        assert_eq!(b.train, (0, 8640));
        assert_eq!(b.val, (8640 - 336, 11520));
        assert_eq!(b.test, (11520 - 336, 14400));
    }

    #[test]
    fn ett_minute_borders_match_tslib() {
        let b = SplitRule::EttMinute.borders(69680, 96).unwrap();
        assert_eq!(b.train, (0, 34560));
        assert_eq!(b.test, (46080 - 96, 57600));
    }

    #[test]
    fn ratio_borders_match_tslib_for_weather() {
        // TSLib: num_train = int(52696*0.7) = 36887, num_test = int(52696*0.2) = 10539.
        let b = SplitRule::Ratio712.borders(52696, 96).unwrap();
        assert_eq!(b.train, (0, 36887));
        assert_eq!(b.val, (36887 - 96, 52696 - 10539));
        assert_eq!(b.test, (52696 - 10539 - 96, 52696));
    }

    #[test]
    fn too_short_file_is_an_error() {
        assert!(SplitRule::EttHour.borders(1000, 96).is_err());
    }

    #[test]
    fn fsnet_online_borders() {
        // FSNet's Dataset_ETT_hour: border1s = [0, 2880 - 60, 3600 - 60], border2s = [2880, 3600, 14400].
        let b = SplitRule::Rows { train: 2880, val: 720, test: 10800 }.borders(17420, 60).unwrap();
        assert_eq!((b.train, b.val, b.test), ((0, 2880), (2820, 3600), (3540, 14400)));
        // FSNet's Dataset_Custom on the Weather file: num_train = int(52696 * 0.2) = 10539,
        // num_test = int(52696 * 0.75) = 39522, val = the 2635 rows between.
        let b = SplitRule::Shares { train: 0.2, test: 0.75 }.borders(52696, 60).unwrap();
        assert_eq!((b.train, b.val, b.test), ((0, 10539), (10479, 13174), (13114, 52696)));
        assert!(SplitRule::Rows { train: 2880, val: 720, test: 10800 }.borders(10000, 60).is_err());
    }
}
