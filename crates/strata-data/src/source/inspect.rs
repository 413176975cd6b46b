//! `strata inspect`: what strata would read from a file or folder with the given settings
//! (columns and their types, the time axis, gaps, duplicates, text values, nodes and edges) and
//! the first problem it would refuse, without training anything.

use std::fmt::Write;
use std::path::Path;

use super::raw::{Cells, RawTable, read_raw};
use super::{Duplicates, Encoding, ReadSpec};
use crate::{DataConfig, DataError};

/// The report, as lines of text.
pub fn inspect(path: &Path, cfg: &DataConfig) -> Result<String, DataError> {
    if !path.exists() {
        return Err(DataError::not_found(path));
    }
    let mut out = String::new();
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".json") {
        return inspect_pygt(path, cfg);
    }
    if name.ends_with(".npy") || name.ends_with(".npz") {
        let s = crate::spatial::read_signal(path, &cfg.npz_key)?;
        let _ = writeln!(out, "{}: a NumPy signal of {} steps x {} nodes x {} features; {} missing cells", path.display(), s.t, s.n, s.c, s.missing);
        return Ok(out);
    }
    let first = if path.is_dir() {
        let files = super::folder::data_files(path)?;
        let _ = writeln!(out, "{}: a folder of {} files, one per location: {}", path.display(), files.len(), list(files.iter().map(|f| f.file_name().unwrap_or_default().to_string_lossy().to_string()), 6));
        files[0].clone()
    } else {
        path.to_path_buf()
    };
    let raw = read_raw(&first)?;
    let _ = writeln!(out, "{}: {} rows, {} columns", first.display(), raw.rows, raw.names.len());
    columns(&mut out, &raw);
    let spec = cfg.read_spec();
    let strict = super::read_frame(path, &spec);
    let (frame, problem) = match strict {
        Ok(f) => (Some(f), None),
        Err(e) => {
            // Read leniently to show the rest (duplicates merged, text columns coded).
            let lenient = ReadSpec { duplicates: spec.duplicates.or(Some(Duplicates::First)), categorical: spec.categorical.or(Some(Encoding::Codes)), ..spec.clone() };
            (super::read_frame(path, &lenient).ok(), Some(e.to_string()))
        }
    };
    if let Some(f) = &frame {
        let r = &f.report;
        let step = match (r.step_seconds, r.step_months) {
            (Some(s), _) => super::align::human_seconds(s),
            (_, Some(m)) => format!("{m} month(s)"),
            _ => "-".into(),
        };
        let _ = writeln!(out, "layout: {}", r.layout);
        match &r.time_from {
            Some(t) => {
                let _ = writeln!(out, "time: from {t}; {} .. {}, one step every {step}; {} rows on the grid", r.first.as_deref().unwrap_or("?"), r.last.as_deref().unwrap_or("?"), f.rows);
            }
            None => {
                let _ = writeln!(out, "time: no time column (rows are steps); name it with data.time");
            }
        }
        let sum = |v: &[(String, usize)]| v.iter().map(|x| x.1).sum::<usize>();
        let _ = writeln!(out, "gaps: {} missing time steps inserted (filled as data.impute says); duplicates: {} rows repeat a time; {} missing cells in all", sum(&r.gaps), sum(&r.duplicates), f.missing());
        if r.sorted {
            let _ = writeln!(out, "order: rows were out of time order (sorted)");
        }
        if let Some(i) = &r.index_column {
            let _ = writeln!(out, "index column: {i} (left out)");
        }
        if !r.dropped.is_empty() {
            let _ = writeln!(out, "left out: {:?}", r.dropped);
        }
        for (col, levels) in &f.categories {
            let _ = writeln!(out, "text column {col}: {} values: {}", levels.len(), list(levels.iter().cloned(), 12));
        }
        if !(f.nodes.len() == 1 && f.nodes[0].is_empty()) {
            let _ = writeln!(out, "nodes: {} ({})", f.nodes.len(), list(f.nodes.iter().cloned(), 8));
        }
        let _ = writeln!(out, "values: {} columns {}", f.features.len(), list(f.features.iter().cloned(), 12));
        graph(&mut out, cfg, f.nodes.len(), Some(&f.nodes))?;
    }
    match problem {
        Some(p) => {
            let _ = writeln!(out, "first problem: {p}");
        }
        None => {
            let _ = writeln!(out, "no problems: strata reads this as it is");
        }
    }
    Ok(out)
}

fn list(items: impl Iterator<Item = String>, most: usize) -> String {
    let all: Vec<String> = items.collect();
    let shown = all.iter().take(most).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > most { format!("{shown}, ... ({} in all)", all.len()) } else { shown }
}

fn columns(out: &mut String, raw: &RawTable) {
    for (c, (name, cells)) in raw.names.iter().zip(&raw.cells).enumerate() {
        let missing = match cells {
            Cells::Num(v) => v.iter().filter(|x| x.is_nan()).count(),
            Cells::Text(v) => v.iter().filter(|x| x.is_none()).count(),
            Cells::Time(v) => v.iter().filter(|x| x.is_none()).count(),
        };
        let detail = match cells {
            Cells::Num(v) => {
                let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                let (lo, hi) = f.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                if f.is_empty() { String::new() } else { format!("{lo} .. {hi}") }
            }
            Cells::Text(v) => {
                let mut l: Vec<&String> = v.iter().flatten().collect();
                l.sort();
                l.dedup();
                format!("{} distinct, e.g. {}", l.len(), list(l.iter().map(|s| s.to_string()), 4))
            }
            Cells::Time(_) => cells.text(0).unwrap_or_default(),
        };
        let _ = writeln!(out, "  {:>3} {:<24} {:<6} {:>6} missing  {detail}", c + 1, name, cells.kind(), missing);
    }
}

fn graph(out: &mut String, cfg: &DataConfig, n: usize, ids: Option<&[String]>) -> Result<(), DataError> {
    if let Some(cp) = &cfg.coordinates {
        let (points, geo) = super::coords::read_coordinates(cp, ids)?;
        let how = cfg.graph_from.unwrap_or(super::coords::GraphFrom::Gaussian);
        let g = super::coords::graph_from_points(cp, &points, geo, how, cfg.graph_k, None)?;
        let _ = writeln!(out, "graph: {} nodes, {} edges ({how:?} from the coordinates in {})", g.n, g.edges(), cp.display());
    } else if let Some(gp) = &cfg.graph {
        let opts = crate::graph::GraphOptions { weights: cfg.graph_weights, symmetric: cfg.graph_symmetric, dynamic_mean: cfg.dynamic_graph.is_some(), ..Default::default() };
        let g = crate::graph::read_graph(gp, &opts)?;
        let ok = if g.n == n { "matches the data" } else { "does NOT match the data's node count" };
        let _ = writeln!(out, "graph: {} nodes ({ok}), {} edges, from {}", g.n, g.edges(), gp.display());
    } else if n > 1 {
        let _ = writeln!(out, "graph: none (give data.graph or data.coordinates; models that learn their adjacency, such as mtgnn, gwnet and stid, train without one)");
    }
    Ok(())
}

fn inspect_pygt(path: &Path, cfg: &DataConfig) -> Result<String, DataError> {
    let d = crate::pygt::read_pygt(path)?;
    let mut out = String::new();
    let missing = d.values.iter().filter(|v| v.is_nan()).count();
    let _ = writeln!(out, "{}: PyTorch Geometric Temporal layout `{}`: {} steps x {} nodes x {} features; {missing} missing cells", path.display(), d.layout, d.t, d.n, d.c);
    if let Some(ids) = &d.ids {
        let _ = writeln!(out, "nodes: {}", list(ids.iter().cloned(), 8));
    }
    if d.layout == "node-link" {
        let g = crate::graph::read_graph(path, &Default::default())?;
        let _ = writeln!(out, "graph: static, {} edges (node-link `links`)", g.edges());
    }
    match (&d.edges, &d.dynamic) {
        _ if d.layout == "node-link" => {}
        (Some(e), _) => {
            let _ = writeln!(out, "graph: static, {} edges", e.len());
        }
        (None, Some(dy)) => {
            let sizes: Vec<usize> = dy.iter().map(|e| e.len()).collect();
            let _ = writeln!(out, "graph: dynamic, one per step for {} steps ({} to {} edges)", dy.len(), sizes.iter().min().unwrap_or(&0), sizes.iter().max().unwrap_or(&0));
            if cfg.dynamic_graph.is_none() {
                let _ = writeln!(out, "first problem: the graph models take one static graph: set data.dynamic_graph = \"mean\" to give them the time-averaged graph");
                return Ok(out);
            }
        }
        (None, None) => {
            let _ = writeln!(out, "graph: none in the file");
        }
    }
    let _ = writeln!(out, "no problems: strata reads this as it is");
    Ok(out)
}
