//! One regular time axis: rows sorted by time, repeated timestamps refused or merged, missing
//! timestamps inserted as missing cells (and counted), series of different spans put on one grid.

use std::path::Path;

use chrono::{Datelike, Months, NaiveDateTime};

use super::{Align, Duplicates};
use crate::DataError;

/// The step of a time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Seconds(i64),
    /// Calendar months (monthly, quarterly, yearly data).
    Months(u32),
}

impl Step {
    pub fn advance(self, d: NaiveDateTime, k: i64) -> NaiveDateTime {
        match self {
            Step::Seconds(s) => d + chrono::Duration::seconds(s * k),
            Step::Months(m) => {
                let months = Months::new((m as i64 * k.abs()) as u32);
                if k >= 0 { d.checked_add_months(months).unwrap_or(d) } else { d.checked_sub_months(months).unwrap_or(d) }
            }
        }
    }
    /// How many steps from `a` to `b`, if `b` is on `a`'s grid.
    pub fn steps_between(self, a: NaiveDateTime, b: NaiveDateTime) -> Option<i64> {
        match self {
            Step::Seconds(s) => {
                let d = (b - a).num_seconds();
                (d % s == 0).then_some(d / s)
            }
            Step::Months(m) => {
                let months = (b.year() as i64 - a.year() as i64) * 12 + b.month() as i64 - a.month() as i64;
                (months % m as i64 == 0 && self.advance(a, months / m as i64) == b).then_some(months / m as i64)
            }
        }
    }
    pub fn human(self) -> String {
        match self {
            Step::Seconds(s) => crate::source::align::human_seconds(s),
            Step::Months(1) => "1 month".into(),
            Step::Months(m) => format!("{m} months"),
        }
    }
}

/// A frequency string (`5min`, `h`, `d`, ...) for a step in seconds.
pub fn freq_name(s: i64) -> String {
    match s {
        s if s % 604800 == 0 && s == 604800 => "w".into(),
        s if s == 86400 => "d".into(),
        s if s == 3600 => "h".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

pub fn human_seconds(s: i64) -> String {
    match s {
        s if s % 86400 == 0 => format!("{} d", s / 86400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The usual step of sorted, distinct timestamps: the most common difference (whole calendar
/// months when that difference is 28 to 31 days, or a year).
pub fn detect_step(dates: &[NaiveDateTime]) -> Option<Step> {
    let mut counts = std::collections::HashMap::<i64, usize>::new();
    for w in dates.windows(2) {
        *counts.entry((w[1] - w[0]).num_seconds()).or_default() += 1;
    }
    let s = counts.into_iter().filter(|(s, _)| *s > 0).max_by_key(|&(s, n)| (n, -s)).map(|(s, _)| s)?;
    let day = 86400;
    Some(match s {
        s if (28 * day..=31 * day).contains(&s) => Step::Months(1),
        s if (89 * day..=92 * day).contains(&s) => Step::Months(3),
        s if (365 * day..=366 * day).contains(&s) => Step::Months(12),
        s => Step::Seconds(s),
    })
}

/// The step shared by several series (the most common difference over all of them). A series
/// with at least two differences of which fewer than half are that step runs at another
/// frequency: refused, naming it.
pub fn common_step(path: &Path, names: &[String], series: &[Vec<NaiveDateTime>]) -> Result<Option<Step>, DataError> {
    let sorted: Vec<Vec<NaiveDateTime>> = series
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.sort();
            d.dedup();
            d
        })
        .collect();
    let all: Vec<NaiveDateTime> = sorted.iter().flat_map(|d| d.windows(2).flat_map(|w| [w[0], w[1]])).collect();
    // detect_step over consecutive pairs only: the pairs are laid out flat, so take every diff.
    let mut counts = std::collections::HashMap::<i64, usize>::new();
    for p in all.chunks(2) {
        *counts.entry((p[1] - p[0]).num_seconds()).or_default() += 1;
    }
    let Some(mode) = counts.into_iter().filter(|(s, _)| *s > 0).max_by_key(|&(s, n)| (n, -s)).map(|(s, _)| s) else { return Ok(None) };
    let step = detect_step(&[NaiveDateTime::default(), NaiveDateTime::default() + chrono::Duration::seconds(mode)]);
    for (name, d) in names.iter().zip(&sorted) {
        let diffs: Vec<i64> = d.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
        let on = diffs.iter().filter(|&&x| x == mode || matches!(step, Some(Step::Months(_)))).count();
        if diffs.len() >= 2 && on * 2 < diffs.len()
            && let Some(own) = detect_step(d)
        {
            return Err(DataError::file(
                path,
                format!(
                    "series '{name}' steps every {}, the others every {}: strata puts all series on one time grid; keep series of one frequency (data.ids) or resample '{name}' first",
                    own.human(),
                    step.map_or_else(|| human_seconds(mode), |s| s.human())
                ),
            ));
        }
    }
    Ok(step)
}

/// One series on its own regular grid.
#[derive(Debug, Clone)]
pub struct Regular {
    pub dates: Vec<NaiveDateTime>,
    /// `[rows, width]`.
    pub values: Vec<f32>,
    pub step: Option<Step>,
    pub gaps: usize,
    pub duplicates: usize,
    pub sorted: bool,
}

/// Put the rows of one series (`values` `[rows, width]`, `places` saying where each row is in
/// the file) on a regular grid. `who` names the series in messages (empty for a single table).
#[allow(clippy::too_many_arguments)]
pub fn regularize(path: &Path, who: &str, dates: &[NaiveDateTime], values: &[f32], width: usize, places: &[String], dup: Option<Duplicates>, step: Option<Step>) -> Result<Regular, DataError> {
    let series = if who.is_empty() { String::new() } else { format!("series '{who}': ") };
    let mut order: Vec<usize> = (0..dates.len()).collect();
    order.sort_by_key(|&i| dates[i]);
    let sorted = order.windows(2).any(|w| w[0] > w[1]);
    // Merge repeated timestamps.
    let mut udates: Vec<NaiveDateTime> = Vec::with_capacity(dates.len());
    let mut uvals: Vec<f32> = Vec::with_capacity(values.len());
    let mut duplicates = 0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && dates[order[j]] == dates[order[i]] {
            j += 1;
        }
        let group = &order[i..j];
        if group.len() > 1 {
            let Some(how) = dup else {
                return Err(DataError::file(
                    path,
                    format!(
                        "{series}{} and {} both have the time {}; set data.duplicates = \"first\", \"last\" or \"mean\" to merge rows that repeat a time, or remove one",
                        places[group[0]],
                        places[group[1]],
                        dates[group[0]].format("%Y-%m-%d %H:%M:%S")
                    ),
                ));
            };
            duplicates += group.len() - 1;
            for c in 0..width {
                let cells: Vec<f32> = group.iter().map(|&r| values[r * width + c]).collect();
                let present: Vec<f32> = cells.iter().copied().filter(|v| !v.is_nan()).collect();
                uvals.push(match how {
                    Duplicates::First => cells[0],
                    Duplicates::Last => cells[cells.len() - 1],
                    Duplicates::Mean if present.is_empty() => f32::NAN,
                    Duplicates::Mean => present.iter().sum::<f32>() / present.len() as f32,
                });
            }
        } else {
            uvals.extend_from_slice(&values[group[0] * width..(group[0] + 1) * width]);
        }
        udates.push(dates[group[0]]);
        i = j;
    }
    let step = step.or_else(|| detect_step(&udates));
    let Some(step) = step else {
        return Ok(Regular { dates: udates, values: uvals, step: None, gaps: 0, duplicates, sorted });
    };
    // Check every time is on the grid of the first, then insert the missing steps.
    let first = udates[0];
    let mut index = Vec::with_capacity(udates.len());
    for (k, d) in udates.iter().enumerate() {
        let Some(n) = step.steps_between(first, *d) else {
            let prev = udates[k.saturating_sub(1)];
            let place = &places[order.iter().position(|&r| dates[r] == *d).unwrap_or(0)];
            return Err(DataError::file(
                path,
                format!(
                    "{series}{place}: the time {} is not on the series' grid of one step every {} (from {}; the previous time is {}); remove or resample such rows before reading",
                    d.format("%Y-%m-%d %H:%M:%S"),
                    step.human(),
                    first.format("%Y-%m-%d %H:%M:%S"),
                    prev.format("%Y-%m-%d %H:%M:%S")
                ),
            ));
        };
        index.push(n as usize);
    }
    let rows = index.last().map_or(0, |&n| n + 1);
    if rows > 50_000_000 || rows > 100 * udates.len().max(1000) {
        return Err(DataError::file(path, format!("{series}{} timestamps spread over {rows} steps of {}: the times are too irregular for one grid; check the time column and data.time_format", udates.len(), step.human())));
    }
    let mut grid = vec![f32::NAN; rows * width];
    for (k, &n) in index.iter().enumerate() {
        grid[n * width..(n + 1) * width].copy_from_slice(&uvals[k * width..(k + 1) * width]);
    }
    let dates = (0..rows as i64).map(|k| step.advance(first, k)).collect();
    Ok(Regular { dates, values: grid, step: Some(step), gaps: rows - udates.len(), duplicates, sorted })
}

/// Several regular series on one grid: `[rows, series x width]`, series-major within a row.
#[derive(Debug)]
pub struct Joined {
    pub dates: Vec<NaiveDateTime>,
    pub values: Vec<f32>,
    /// Rows each series lost to the intersection.
    pub cut: Vec<usize>,
    /// Cells each series lacked on the union grid (before its start, after its end).
    pub padded: Vec<usize>,
}

/// Join regular series (each `[rows_i, width]`) on one grid. Every series must share the step
/// and the phase; the message names the first that does not.
pub fn join(path: &Path, names: &[String], parts: &[Regular], width: usize, align: Align) -> Result<Joined, DataError> {
    let step = parts.iter().find_map(|p| p.step).ok_or_else(|| DataError::file(path, "no series has two timestamps: cannot tell the step"))?;
    for (name, p) in names.iter().zip(parts) {
        if let Some(s) = p.step
            && s != step
        {
            return Err(DataError::file(
                path,
                format!(
                    "series '{name}' steps every {}, series '{}' every {}: strata puts all series on one time grid; keep series of one frequency (data.ids) or resample '{name}' first",
                    s.human(),
                    names[0],
                    step.human()
                ),
            ));
        }
    }
    let starts = parts.iter().map(|p| p.dates[0]);
    let ends = parts.iter().map(|p| *p.dates.last().expect("rows"));
    let (start, end) = match align {
        Align::Union => (starts.min().expect("series"), ends.max().expect("series")),
        Align::Intersection => (starts.max().expect("series"), ends.min().expect("series")),
    };
    if end < start {
        return Err(DataError::file(path, format!("the series share no time span (latest start {}, earliest end {}); use data.align = \"union\"", start, end)));
    }
    let rows = step.steps_between(start, end).map(|n| n as usize + 1);
    let mut offsets = Vec::with_capacity(parts.len());
    for (name, p) in names.iter().zip(parts) {
        let off = step.steps_between(start, p.dates[0]);
        match (off, rows) {
            (Some(o), Some(_)) => offsets.push(o),
            _ => {
                return Err(DataError::file(path, format!("series '{name}' starts at {}, off the grid of one step every {} from {start}: its times are shifted against the other series; resample it first", p.dates[0], step.human())));
            }
        }
    }
    let rows = rows.expect("checked");
    let k = parts.len();
    let mut values = vec![f32::NAN; rows * k * width];
    let (mut cut, mut padded) = (vec![0; k], vec![0; k]);
    for (s, (p, &off)) in parts.iter().zip(&offsets).enumerate() {
        let n = p.dates.len() as i64;
        for r in 0..n {
            let g = off + r;
            if g < 0 || g >= rows as i64 {
                cut[s] += 1;
                continue;
            }
            let dst = (g as usize * k + s) * width;
            values[dst..dst + width].copy_from_slice(&p.values[r as usize * width..(r as usize + 1) * width]);
        }
        padded[s] = rows.saturating_sub((n - cut[s] as i64) as usize);
    }
    let dates = (0..rows as i64).map(|r| step.advance(start, r)).collect();
    Ok(Joined { dates, values, cut, padded })
}

/// What joining did, per series, into the read report: gaps (inserted steps and the padding of
/// the union grid), merged duplicates, rows cut by the intersection, the step and the span.
pub fn record(report: &mut super::ReadReport, ids: &[String], parts: &[Regular], joined: &Joined) {
    report.gaps = ids.iter().zip(parts).zip(&joined.padded).map(|((id, q), pad)| (id.clone(), q.gaps + pad)).collect();
    report.duplicates = ids.iter().zip(parts).map(|(id, q)| (id.clone(), q.duplicates)).collect();
    report.cut = ids.iter().cloned().zip(joined.cut.iter().copied()).collect();
    report.sorted = parts.iter().any(|q| q.sorted);
    set_step(report, parts.iter().find_map(|q| q.step), &joined.dates);
}

pub(crate) fn set_step(report: &mut super::ReadReport, step: Option<Step>, dates: &[NaiveDateTime]) {
    match step {
        Some(Step::Seconds(s)) => report.step_seconds = Some(s),
        Some(Step::Months(m)) => report.step_months = Some(m),
        None => {}
    }
    report.first = dates.first().map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string());
    report.last = dates.last().map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        crate::table::parse_date(s).unwrap()
    }

    #[test]
    fn gaps_are_inserted_and_unsorted_rows_sorted() {
        let dates = [t("2020-01-01 02:00"), t("2020-01-01 00:00"), t("2020-01-01 01:00"), t("2020-01-01 05:00")];
        let places: Vec<String> = (2..6).map(|l| format!("line {l}")).collect();
        let r = regularize(Path::new("f.csv"), "", &dates, &[3.0, 1.0, 2.0, 6.0], 1, &places, None, None).unwrap();
        assert!(r.sorted);
        assert_eq!(r.gaps, 2);
        assert_eq!(r.dates.len(), 6);
        assert_eq!(&r.values[..3], &[1.0, 2.0, 3.0]);
        assert!(r.values[3].is_nan() && r.values[4].is_nan());
        assert_eq!(r.values[5], 6.0);
    }

    #[test]
    fn duplicates_are_refused_or_merged() {
        let dates = [t("2020-01-01 00:00"), t("2020-01-01 01:00"), t("2020-01-01 01:00")];
        let places: Vec<String> = (2..5).map(|l| format!("line {l}")).collect();
        let e = regularize(Path::new("f.csv"), "A", &dates, &[1.0, 2.0, 4.0], 1, &places, None, None).unwrap_err().to_string();
        assert_eq!(e, "f.csv: series 'A': line 3 and line 4 both have the time 2020-01-01 01:00:00; set data.duplicates = \"first\", \"last\" or \"mean\" to merge rows that repeat a time, or remove one");
        let r = regularize(Path::new("f.csv"), "A", &dates, &[1.0, 2.0, 4.0], 1, &places, Some(Duplicates::Mean), None).unwrap();
        assert_eq!(r.values, [1.0, 3.0]);
        assert_eq!(r.duplicates, 1);
    }

    #[test]
    fn monthly_steps_follow_the_calendar() {
        let dates = [t("2020-01-01"), t("2020-02-01"), t("2020-04-01")];
        let places: Vec<String> = (0..3).map(|l| format!("row {l}")).collect();
        let r = regularize(Path::new("m.csv"), "", &dates, &[1.0, 2.0, 4.0], 1, &places, None, None).unwrap();
        assert_eq!(r.step, Some(Step::Months(1)));
        assert_eq!(r.dates[2], t("2020-03-01"));
        assert_eq!(r.gaps, 1);
    }

    #[test]
    fn union_and_intersection_of_different_spans() {
        let mk = |start: &str, n: usize| Regular { dates: (0..n as i64).map(|k| t(start) + chrono::Duration::hours(k)).collect(), values: (0..n).map(|v| v as f32).collect(), step: Some(Step::Seconds(3600)), gaps: 0, duplicates: 0, sorted: false };
        let names = ["a".to_string(), "b".to_string()];
        let parts = [mk("2020-01-01 00:00", 3), mk("2020-01-01 01:00", 3)];
        let u = join(Path::new("l.csv"), &names, &parts, 1, Align::Union).unwrap();
        assert_eq!(u.dates.len(), 4);
        assert_eq!(u.padded, [1, 1]);
        assert!(u.values[1].is_nan() && u.values[6].is_nan());
        let i = join(Path::new("l.csv"), &names, &parts, 1, Align::Intersection).unwrap();
        assert_eq!(i.dates.len(), 2);
        assert_eq!(i.cut, [1, 1]);
        assert_eq!(i.values, [1.0, 0.0, 2.0, 1.0]);
        let mut odd = mk("2020-01-01 00:00", 3);
        odd.step = Some(Step::Seconds(1800));
        let e = join(Path::new("l.csv"), &names, &[parts[0].clone(), odd], 1, Align::Union).unwrap_err().to_string();
        assert!(e.contains("series 'b' steps every 30 min, series 'a' every 1 h"), "{e}");
    }
}
