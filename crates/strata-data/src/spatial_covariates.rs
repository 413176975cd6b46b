//! Covariates of spatio-temporal data: `[data.covariates]` when the series are the nodes of a
//! sensor graph or a grid (docs/covariates.md).
//!
//! Where each kind comes from:
//! * a long table or a folder (one file per location): each node's own columns, split as for
//!   long-sequence data ([`crate::covariates::split`]); the coordinates read with
//!   `data.coordinate_columns` may be named as static covariates too;
//! * a wide table (one column per node): the named columns, shared by every node;
//! * a benchmark signal with several channels per node (PEMS0x `.npz`: flow, occupancy, speed):
//!   channel 0 is the target, the others are covariates named `channel1`, `channel2`, ...
//!   (`past = ["*"]` names all of them);
//! * `data.covariates.static_file`: a table of one row per node or series (its id column found as
//!   for `data.coordinates`) whose named columns are static covariates; text columns one-hot.

use std::collections::BTreeMap;
use std::path::Path;

use crate::DataError;
use crate::covariates::{CovariateConfig, Split};
use crate::source::raw::{Cells, read_raw};
use crate::spatial::Signal;
use crate::table::Table;
use crate::window::CovariateNames;

/// Take the covariates of `cfg` out of the table of a long, folder or wide source (`target`:
/// the feature forecast at every node of a long table; `None` for a wide one), leaving one
/// column per node named by the node. `coords`: the values of `data.coordinate_columns` per node.
pub fn split_table(table: &mut Table, cfg: &CovariateConfig, target: Option<&str>, coords: &BTreeMap<String, Vec<f64>>) -> Result<Option<Split>, DataError> {
    let own = cfg.in_table();
    let (from_coords, statics): (Vec<String>, Vec<String>) = own.statics.iter().cloned().partition(|s| coords.contains_key(s));
    let rest = CovariateConfig { statics, ..own };
    let mut split = crate::covariates::split(table, &rest, target)?;
    // A long table's other features (neither the target nor a covariate) are not inputs.
    if let Some(t) = target
        && table.columns.iter().any(|c| c.contains(':'))
    {
        let suffix = format!(":{t}");
        let keep: Vec<usize> = (0..table.cols()).filter(|&c| table.columns[c].ends_with(&suffix)).collect();
        if keep.is_empty() {
            return Err(DataError::file(&table.path, format!("no column holds the target '{t}' of each node; the columns are {:?}", table.columns)));
        }
        let mut kept = table.select(&keep);
        kept.columns = kept.columns.iter().map(|c| c[..c.len() - suffix.len()].to_string()).collect();
        *table = kept;
    }
    if !from_coords.is_empty() {
        let n = table.cols();
        let values: Vec<Vec<f32>> = from_coords.iter().map(|name| coords[name].iter().map(|&v| v as f32).collect()).collect();
        let s = split.get_or_insert_with(|| empty(table.rows, n));
        append_statics(s, n, &from_coords, &values)?;
    }
    Ok(split)
}

/// The covariates of a benchmark signal: channels 1.. of every node, named `channel1`, ...
/// Static covariates come from `data.covariates.static_file` only.
pub fn split_channels(signal: &Signal, path: &Path, cfg: &CovariateConfig) -> Result<Option<Split>, DataError> {
    if cfg.past.is_empty() && cfg.future.is_empty() {
        if let Some(name) = cfg.statics.first().filter(|_| cfg.static_file.is_none()) {
            return Err(DataError::Config(format!(
                "data.covariates.static names '{name}': {} holds no static columns; give data.covariates.static_file (a table of one row per node: an id column and the static columns)",
                path.display()
            )));
        }
        return Ok(None);
    }
    let channels: Vec<String> = (1..signal.c).map(|k| format!("channel{k}")).collect();
    let pick = |list: &[String], kind: &str| -> Result<Vec<usize>, DataError> {
        let mut out = Vec::new();
        for name in list {
            if name == "*" {
                out.extend((1..signal.c).filter(|k| !cfg.past.contains(&format!("channel{k}")) && !cfg.future.contains(&format!("channel{k}"))));
                continue;
            }
            let Some(k) = channels.iter().position(|c| c == name) else {
                return Err(DataError::file(
                    path,
                    format!(
                        "data.covariates.{kind} names '{name}', but this signal has {} channel(s) per node: channel 0 is the target{}; name covariates of a table by column in a long table or a folder (data.layout)",
                        signal.c,
                        if channels.is_empty() { String::new() } else { format!(", the covariates are {channels:?}") }
                    ),
                ));
            };
            out.push(k + 1);
        }
        Ok(out)
    };
    let (past, future) = (pick(&cfg.past, "past")?, pick(&cfg.future, "future")?);
    let (t, n, c) = (signal.t, signal.n, signal.c);
    let gather = |ks: &[usize]| -> Vec<f32> {
        let mut out = Vec::with_capacity(t * n * ks.len());
        for r in 0..t {
            for node in 0..n {
                out.extend(ks.iter().map(|&k| signal.values[(r * n + node) * c + k]));
            }
        }
        out
    };
    let name = |ks: &[usize]| ks.iter().map(|k| format!("channel{k}")).collect();
    Ok(Some(Split { groups: n, names: CovariateNames { past: name(&past), future: name(&future), statics: vec![] }, past: gather(&past), future: gather(&future), statics: vec![], rows: t, shared: false }))
}

/// Add the columns of `data.covariates.static_file` named in `data.covariates.static` to `split`
/// (made when `None`) as static covariates of the `n` nodes or series named `ids` (in row order of the file without ids).
pub fn add_static_file(split: Option<Split>, cfg: &CovariateConfig, rows: usize, n: usize, ids: Option<&[String]>) -> Result<Option<Split>, DataError> {
    let Some(path) = &cfg.static_file else { return Ok(split) };
    let want = &cfg.statics;
    if want.is_empty() {
        return Err(DataError::Config(format!("data.covariates.static_file = {}: name its columns to use in data.covariates.static", path.display())));
    }
    let (names, values) = read_static_file(path, want, n, ids)?;
    let mut split = split.unwrap_or_else(|| empty(rows, n));
    if split.groups == 1 && n > 1 {
        split = broadcast(split, n);
    }
    append_statics(&mut split, n, &names, &values)?;
    Ok(Some(split))
}

/// The columns `want` of a static file, one value per node in the order of `ids` (text columns
/// one-hot, named `column=value`): the names and, per name, the `n` values.
fn read_static_file(path: &Path, want: &[String], n: usize, ids: Option<&[String]>) -> Result<(Vec<String>, Vec<Vec<f32>>), DataError> {
    let raw = read_raw(path)?;
    let find = |names: &[&str]| raw.names.iter().position(|c| names.contains(&c.to_ascii_lowercase().as_str()));
    let rows: Vec<usize> = match ids {
        Some(ids) => {
            let id_col = find(&["id", "sensor_id", "station", "unique_id", "node", "location"]).unwrap_or(0);
            let have: Vec<String> = (0..raw.rows).map(|r| raw.cells[id_col].text(r).unwrap_or_default()).collect();
            ids.iter()
                .map(|id| {
                    have.iter().position(|h| h == id).ok_or_else(|| DataError::file(path, format!("node '{id}' has no row (column '{}' holds the ids); add a row for it", raw.names[id_col])))
                })
                .collect::<Result<_, _>>()?
        }
        None if raw.rows == n => (0..n).collect(),
        None => return Err(DataError::file(path, format!("{} rows for {n} nodes; the signal does not name its nodes, so give one row per node, in the signal's order", raw.rows))),
    };
    let (mut names, mut values) = (Vec::new(), Vec::new());
    for name in want {
        let c = raw.require(name, "data.covariates.static")?;
        match &raw.cells[c] {
            Cells::Num(v) => {
                if let Some(&r) = rows.iter().find(|&&r| !v[r].is_finite()) {
                    return Err(raw.error_at(r, c, "a static covariate is missing; fill the cell or leave the column out of data.covariates.static"));
                }
                names.push(name.clone());
                values.push(rows.iter().map(|&r| v[r] as f32).collect());
            }
            Cells::Text(v) => {
                let cats: std::collections::BTreeSet<String> = rows.iter().map(|&r| v[r].clone().unwrap_or_default()).collect();
                for cat in cats {
                    names.push(format!("{name}={cat}"));
                    values.push(rows.iter().map(|&r| (v[r].clone().unwrap_or_default() == cat) as u8 as f32).collect());
                }
            }
            Cells::Time(_) => return Err(DataError::file(path, format!("column '{name}' holds times; a static covariate is a number or a category"))),
        }
    }
    Ok((names, values))
}

/// Replace missing (NaN) cells of the past and future covariates by their column's mean over
/// rows `[0, train_rows)` (0 where the column has no value there).
pub fn fill_missing(split: &mut Split, train_rows: usize) {
    let g = split.groups;
    for (v, w) in [(&mut split.past, split.names.past.len()), (&mut split.future, split.names.future.len())] {
        let cols = g * w;
        if cols == 0 || !v.iter().any(|x| x.is_nan()) {
            continue;
        }
        let mut mean = vec![(0f64, 0usize); cols];
        for row in v[..train_rows * cols].chunks_exact(cols) {
            for (m, &x) in mean.iter_mut().zip(row).filter(|(_, x)| x.is_finite()) {
                *m = (m.0 + x as f64, m.1 + 1);
            }
        }
        for row in v.chunks_exact_mut(cols) {
            for (x, m) in row.iter_mut().zip(&mean).filter(|(x, _)| !x.is_finite()) {
                *x = if m.1 > 0 { (m.0 / m.1 as f64) as f32 } else { 0.0 };
            }
        }
    }
}

fn empty(rows: usize, groups: usize) -> Split {
    Split { groups, names: CovariateNames::default(), past: vec![], future: vec![], statics: vec![], rows, shared: false }
}

/// Covariates shared by every node (one group) repeated for each of `n` nodes.
fn broadcast(s: Split, n: usize) -> Split {
    let rep = |v: Vec<f32>, w: usize| -> Vec<f32> {
        if w == 0 {
            return v;
        }
        v.chunks_exact(w).flat_map(|row| std::iter::repeat_n(row, n).flatten().copied()).collect()
    };
    let (p, f) = (s.names.past.len(), s.names.future.len());
    Split { groups: n, past: rep(s.past, p), future: rep(s.future, f), statics: rep(s.statics, s.names.statics.len()), shared: true, ..s }
}

/// Append static columns (`values[j]`: one value per group) to `split`'s `[groups, statics]`.
fn append_statics(split: &mut Split, n: usize, names: &[String], values: &[Vec<f32>]) -> Result<(), DataError> {
    if split.groups != n {
        return Err(DataError::Config(format!("static covariates come one per node ({n}), the other covariates in {} group(s)", split.groups)));
    }
    let old = split.names.statics.len();
    let w = old + names.len();
    let mut out = Vec::with_capacity(n * w);
    for g in 0..n {
        out.extend_from_slice(&split.statics[g * old..(g + 1) * old]);
        out.extend(values.iter().map(|v| v[g]));
    }
    split.statics = out;
    split.names.statics.extend(names.iter().cloned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: usize) -> Table {
        let c = columns.len();
        let values = (0..rows * c).map(|i| i as f32).collect();
        Table { path: "t.csv".into(), columns: columns.iter().map(|s| s.to_string()).collect(), dates: None, values, rows, quality: Default::default() }
    }

    #[test]
    fn long_table_keeps_the_target_of_each_node_and_coordinates_become_statics() {
        let mut t = table(&["a:y", "a:occ", "a:other", "b:y", "b:occ", "b:other"], 2);
        let coords = BTreeMap::from([("lat".to_string(), vec![34.1, 34.2])]);
        let cfg = CovariateConfig { past: vec!["occ".into()], statics: vec!["lat".into()], ..Default::default() };
        let s = split_table(&mut t, &cfg, Some("y"), &coords).unwrap().unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.values, [0.0, 3.0, 6.0, 9.0]);
        assert_eq!(s.past, [1.0, 4.0, 7.0, 10.0]);
        assert_eq!((s.names.statics.clone(), s.statics.clone()), (vec!["lat".to_string()], vec![34.1f32, 34.2]));
    }

    #[test]
    fn signal_channels_are_named_and_star_takes_the_rest() {
        // [t=2, n=2, c=3]: value = 100 t + 10 node + channel.
        let values = (0..2).flat_map(|t| (0..2).flat_map(move |n| (0..3).map(move |c| (100 * t + 10 * n + c) as f32))).collect();
        let sig = Signal { t: 2, n: 2, c: 3, values, ids: None, missing: 0 };
        let cfg = CovariateConfig { past: vec!["*".into()], future: vec!["channel1".into()], ..Default::default() };
        let s = split_channels(&sig, Path::new("p.npz"), &cfg).unwrap().unwrap();
        assert_eq!((s.names.past.clone(), s.names.future.clone()), (vec!["channel2".to_string()], vec!["channel1".to_string()]));
        assert_eq!(s.past, [2.0, 12.0, 102.0, 112.0]);
        assert_eq!(s.future, [1.0, 11.0, 101.0, 111.0]);
        let e = split_channels(&sig, Path::new("p.npz"), &CovariateConfig { past: vec!["speed".into()], ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("p.npz") && e.contains("'speed'") && e.contains("channel2"), "{e}");
    }

    #[test]
    fn static_file_rows_follow_the_node_ids_and_text_is_one_hot() {
        let d = std::env::temp_dir().join(format!("strata-stfile-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("loc.csv");
        std::fs::write(&p, "sensor_id,lanes,kind\n7,3,highway\n5,2,street\n").unwrap();
        let cfg = CovariateConfig { statics: vec!["lanes".into(), "kind".into()], static_file: Some(p.clone()), ..Default::default() };
        let ids = vec!["5".to_string(), "7".to_string()];
        let s = add_static_file(None, &cfg, 4, 2, Some(&ids)).unwrap().unwrap();
        assert_eq!(s.names.statics, ["lanes", "kind=highway", "kind=street"]);
        // Node 5 first: 2 lanes, a street.
        assert_eq!(s.statics, [2.0, 0.0, 1.0, 3.0, 1.0, 0.0]);
        let e = add_static_file(None, &cfg, 4, 2, Some(&["5".to_string(), "9".to_string()])).unwrap_err().to_string();
        assert!(e.contains("loc.csv") && e.contains("'9'") && e.contains("sensor_id"), "{e}");
        // Shared covariates (one group) are repeated for every node.
        let shared = Split { groups: 1, names: CovariateNames { past: vec!["h".into()], ..Default::default() }, past: vec![1.0, 2.0], future: vec![], statics: vec![], rows: 2, shared: false };
        let s = add_static_file(Some(shared), &cfg, 2, 2, Some(&ids)).unwrap().unwrap();
        assert_eq!((s.groups, s.past.clone()), (2, vec![1.0, 1.0, 2.0, 2.0]));
    }
}
