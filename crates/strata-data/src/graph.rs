//! Sensor graphs: read the adjacency of N nodes from the formats the field ships.
//!
//! * edge lists `from,to,distance` (`pems0x_graph/PEMS04.csv`, `distances_bay_2017.csv`), turned
//!   into DCRNN's Gaussian-kernel adjacency `exp(-(d/sigma)^2)` with sigma the (population) std
//!   of the listed distances and entries below 0.1 dropped; or kept raw / as 0-1;
//! * dense N x N CSV matrices (`los-loop/los_adj.csv`), `.npy` matrices (`adj_mx.derived.npy`);
//! * DCRNN's pickles `(sensor_ids, id_to_index, matrix)` (`adj_mx.pkl`);
//! * PyTorch-Geometric-Temporal JSON (`links` with distances, or unweighted `edges`);
//! * sensor-id files (comma- or line-separated) that fix which row each id is.
//!
//! The adjacency is row-major `adj[i * n + j]`: the weight of the edge from node i to node j.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::DataError;

/// How distances on edge-list edges become weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeWeights {
    /// `exp(-(d/sigma)^2)`, sigma = std of the distances, entries below `threshold` dropped (DCRNN).
    #[default]
    Gaussian,
    /// The listed value itself.
    Raw,
    /// 1 for every listed edge.
    Binary,
}

/// How to read a graph file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphOptions {
    /// Node order by id (for edge lists whose endpoints are sensor ids).
    pub ids: Option<Vec<String>>,
    /// Node count for edge lists whose endpoints are row indices (default: largest index + 1).
    pub nodes: Option<usize>,
    pub weights: EdgeWeights,
    /// Gaussian-kernel entries below this are set to 0.
    pub threshold: f32,
    /// Also add the reverse of every listed edge.
    pub symmetric: bool,
    /// A graph per time step (PyGT's dynamic graphs) is read as its time average.
    pub dynamic_mean: bool,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions { ids: None, nodes: None, weights: EdgeWeights::Gaussian, threshold: 0.1, symmetric: false, dynamic_mean: false }
    }
}

/// An N-node weighted graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub n: usize,
    /// Row-major `[n, n]`.
    pub adj: Vec<f32>,
    /// Node ids in row order, where the file names them.
    pub ids: Option<Vec<String>>,
    pub path: PathBuf,
    /// Edge-list rows whose endpoints are not among the ids (skipped, as DCRNN does).
    pub skipped_edges: usize,
}

impl Graph {
    pub fn edges(&self) -> usize {
        self.adj.iter().filter(|&&w| w != 0.0).count()
    }
}

/// Read sensor ids: comma- and/or newline-separated, in node order.
pub fn read_ids(path: &Path) -> Result<Vec<String>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let ids: Vec<String> = text.split([',', '\n', '\r']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if ids.is_empty() {
        return Err(DataError::file(path, "no sensor ids in the file"));
    }
    Ok(ids)
}

/// Read a graph, choosing the reader by extension (`.npy`, `.pkl`, `.json`, else CSV: three
/// columns = edge list, N x N = dense matrix).
pub fn read_graph(path: &Path, opts: &GraphOptions) -> Result<Graph, DataError> {
    if !path.exists() {
        return Err(DataError::file(path, "graph file not found"));
    }
    let name = path.file_name().map(|s| s.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let g = if name.ends_with(".npy") {
        let (shape, adj) = crate::npy::read_npy(path)?;
        dense(path, &shape, adj, None)?
    } else if name.ends_with(".pkl") || name.ends_with(".pickle") {
        read_pickle(path)?
    } else if name.ends_with(".json") {
        read_pygt_graph(path, opts)?
    } else {
        read_csv_graph(path, opts)?
    };
    if let Some(n) = opts.nodes
        && n != g.n
    {
        return Err(DataError::file(path, format!("the graph has {} nodes, the configuration says {n}", g.n)));
    }
    Ok(g)
}

fn dense(path: &Path, shape: &[usize], adj: Vec<f32>, ids: Option<Vec<String>>) -> Result<Graph, DataError> {
    if shape.len() != 2 || shape[0] != shape[1] {
        return Err(DataError::file(path, format!("an adjacency matrix must be square, this one has shape {shape:?}")));
    }
    if let Some(ids) = &ids
        && ids.len() != shape[0]
    {
        return Err(DataError::file(path, format!("{} sensor ids for a {}-node matrix", ids.len(), shape[0])));
    }
    Ok(Graph { n: shape[0], adj, ids, path: path.to_path_buf(), skipped_edges: 0 })
}

fn read_pickle(path: &Path) -> Result<Graph, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let v = crate::pickle::parse(&bytes).map_err(|e| DataError::file(path, e))?;
    let (crate::pickle::Value::Tuple(parts) | crate::pickle::Value::List(parts)) = v else {
        return Err(DataError::file(path, "expected DCRNN's [sensor_ids, id_to_index, adjacency]"));
    };
    let matrix = parts.last().ok_or_else(|| DataError::file(path, "empty tuple"))?;
    let (shape, adj) = matrix.ndarray_f32().map_err(|e| DataError::file(path, format!("adjacency: {e}")))?;
    let ids = match parts.first() {
        Some(crate::pickle::Value::List(l)) if parts.len() == 3 => l.iter().map(|v| v.as_text()).collect::<Option<Vec<_>>>(),
        _ => None,
    };
    dense(path, &shape, adj, ids)
}

fn read_csv_graph(path: &Path, opts: &GraphOptions) -> Result<Graph, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut rows: Vec<(usize, Vec<&str>)> =
        text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l.split(',').map(str::trim).collect())).collect();
    // A header names its columns: its last field (the weight's name) is not a number.
    let header = rows.first().is_some_and(|(_, r)| r.last().is_some_and(|c| c.parse::<f64>().is_err()));
    if header {
        rows.remove(0);
    }
    let width = rows.first().map_or(0, |(_, r)| r.len());
    if let Some((line, r)) = rows.iter().find(|(_, r)| r.len() != width) {
        return Err(DataError::At { path: path.to_path_buf(), line: *line as u64, column: format!("{}", r.len()), msg: format!("row has {} fields, expected {width}", r.len()) });
    }
    if width == rows.len() && width != 3 {
        let mut adj = Vec::with_capacity(width * width);
        for (line, r) in &rows {
            for (c, cell) in r.iter().enumerate() {
                adj.push(cell.parse::<f32>().map_err(|_| DataError::At { path: path.to_path_buf(), line: *line as u64, column: (c + 1).to_string(), msg: format!("not a number: {cell:?}") })?);
            }
        }
        return dense(path, &[width, width], adj, None);
    }
    if width != 3 {
        return Err(DataError::file(path, format!("neither an edge list (from,to,weight) nor a square matrix: {} rows of {width} fields", rows.len())));
    }
    let mut edges = Vec::with_capacity(rows.len());
    for (line, r) in &rows {
        let w = r[2].parse::<f32>().map_err(|_| DataError::At { path: path.to_path_buf(), line: *line as u64, column: "3".into(), msg: format!("not a number: {:?}", r[2]) })?;
        edges.push((*line, r[0].to_string(), r[1].to_string(), w));
    }
    from_edges(path, edges, opts)
}

/// Build the adjacency from `(line, from, to, value)` edges.
fn from_edges(path: &Path, edges: Vec<(usize, String, String, f32)>, opts: &GraphOptions) -> Result<Graph, DataError> {
    let (n, index): (usize, Box<dyn Fn(&str) -> Option<usize>>) = match &opts.ids {
        Some(ids) => {
            let map: HashMap<String, usize> = ids.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect();
            (ids.len(), Box::new(move |s: &str| map.get(s).copied()))
        }
        None => {
            let mut max = (0usize, 0usize, 0usize);
            let mut seen = std::collections::HashSet::new();
            for (line, a, b, _) in &edges {
                for (col, s) in [(1, a), (2, b)] {
                    let i = s.parse::<usize>().map_err(|_| DataError::At {
                        path: path.to_path_buf(),
                        line: *line as u64,
                        column: col.to_string(),
                        msg: format!("node {s:?} is not a row index; give the sensor-id file (data.graph_ids)"),
                    })?;
                    seen.insert(i);
                    if i >= max.0 {
                        max = (i, *line, col);
                    }
                }
            }
            let n = opts.nodes.unwrap_or(max.0 + 1);
            // Indices far beyond the number of distinct endpoints are sensor ids, not rows.
            if max.0 >= n || (opts.nodes.is_none() && n > 2 * seen.len() + 16) {
                return Err(DataError::At {
                    path: path.to_path_buf(),
                    line: max.1 as u64,
                    column: max.2.to_string(),
                    msg: format!(
                        "node {} is not a row index of a {}-node graph; give the sensor-id file (data.graph_ids) or data.nodes",
                        max.0,
                        if opts.nodes.is_some() { n } else { seen.len() }
                    ),
                });
            }
            (n, Box::new(|s: &str| s.parse::<usize>().ok()))
        }
    };
    let mut value = vec![f32::INFINITY; n * n];
    let mut skipped = 0;
    for (_, a, b, w) in &edges {
        match (index(a), index(b)) {
            (Some(i), Some(j)) => {
                value[i * n + j] = *w;
                if opts.symmetric {
                    value[j * n + i] = *w;
                }
            }
            _ => skipped += 1,
        }
    }
    let adj = match opts.weights {
        EdgeWeights::Gaussian => gaussian_kernel(&value, opts.threshold),
        EdgeWeights::Raw => value.iter().map(|&d| if d.is_finite() { d } else { 0.0 }).collect(),
        EdgeWeights::Binary => value.iter().map(|&d| if d.is_finite() { 1.0 } else { 0.0 }).collect(),
    };
    Ok(Graph { n, adj, ids: opts.ids.clone(), path: path.to_path_buf(), skipped_edges: skipped })
}

/// DCRNN's `get_adjacency_matrix`: `exp(-(d/sigma)^2)` over the listed (finite) distances, sigma
/// their population standard deviation, entries below `threshold` set to 0; unlisted pairs are 0.
pub fn gaussian_kernel(dist: &[f32], threshold: f32) -> Vec<f32> {
    let listed: Vec<f64> = dist.iter().filter(|d| d.is_finite()).map(|&d| d as f64).collect();
    let n = listed.len().max(1) as f64;
    let mean = listed.iter().sum::<f64>() / n;
    let std = (listed.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    dist.iter()
        .map(|&d| {
            if !d.is_finite() {
                return 0.0;
            }
            let w = (-(d as f64 / std).powi(2)).exp() as f32;
            if w < threshold { 0.0 } else { w }
        })
        .collect()
}

/// PyTorch-Geometric-Temporal JSON: `nodes` + `links` (networkx node-link, weights are
/// distances) or `edges` + `node_ids` (unweighted).
fn read_pygt_graph(path: &Path, opts: &GraphOptions) -> Result<Graph, DataError> {
    let v = crate::pygt::read_json(path)?;
    if let Some(links) = v.get("links").and_then(|l| l.as_array()) {
        let nodes = v.get("nodes").and_then(|n| n.as_array()).ok_or_else(|| DataError::file(path, "key `nodes`: missing"))?;
        let ids: Vec<String> = nodes.iter().enumerate().map(|(i, n)| n.get("id").map(json_text).unwrap_or_else(|| i.to_string())).collect();
        let mut edges = Vec::with_capacity(links.len());
        for (k, l) in links.iter().enumerate() {
            let get = |key: &str| l.get(key).ok_or_else(|| DataError::file(path, format!("key `links[{k}].{key}`: missing")));
            let w = match opts.weights {
                EdgeWeights::Binary => 1.0,
                _ => get("weight")?.as_f64().ok_or_else(|| DataError::file(path, format!("key `links[{k}].weight`: not a number")))? as f32,
            };
            edges.push((k, json_text(get("source")?), json_text(get("target")?), w));
        }
        let o = GraphOptions { ids: Some(ids), ..opts.clone() };
        return from_edges(path, edges, &o);
    }
    let d = crate::pygt::read_pygt(path)?;
    let n = d.n;
    let edges = match (d.edges, d.dynamic) {
        (Some(e), _) => e,
        (None, Some(dy)) if opts.dynamic_mean => {
            let adj = crate::pygt::mean_graph(&dy, n);
            return Ok(Graph { n, adj, ids: d.ids, path: path.to_path_buf(), skipped_edges: 0 });
        }
        (None, Some(dy)) => {
            return Err(DataError::file(
                path,
                format!("has a graph per time step ({} steps, PyGT layout `{}`); strata's graph models take one static graph: set data.dynamic_graph = \"mean\" to give them the time-averaged graph", dy.len(), d.layout),
            ));
        }
        (None, None) => return Err(DataError::file(path, format!("no graph in this JSON (PyGT layout `{}` without `edges`); give data.graph or data.coordinates", d.layout))),
    };
    let mut adj = vec![0f32; n * n];
    for (i, j, w) in edges {
        let w = if opts.weights == EdgeWeights::Binary { 1.0 } else { w };
        adj[i * n + j] = w;
        if opts.symmetric {
            adj[j * n + i] = w;
        }
    }
    Ok(Graph { n, adj, ids: d.ids, path: path.to_path_buf(), skipped_edges: 0 })
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-graph-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn gaussian_kernel_by_hand() {
        // Distances 0, 1, 2 listed (the rest unlisted): mean 1, population std sqrt(2/3).
        let inf = f32::INFINITY;
        let d = [0.0, 1.0, inf, 2.0];
        let w = gaussian_kernel(&d, 0.1);
        let s2 = 2.0f64 / 3.0;
        assert_eq!(w[0], 1.0);
        assert!((w[1] as f64 - (-1.0 / s2).exp()).abs() < 1e-6);
        assert_eq!(w[2], 0.0);
        // exp(-4 / (2/3)) = exp(-6) < 0.1: dropped.
        assert_eq!(w[3], 0.0);
    }

    #[test]
    fn edge_list_with_ids_and_indices() {
        let p = write("e.csv", "from,to,cost\n10,20,1.0\n20,30,2.0\n99,10,5\n");
        let g = read_graph(&p, &GraphOptions { ids: Some(vec!["10".into(), "20".into(), "30".into()]), weights: EdgeWeights::Raw, ..Default::default() }).unwrap();
        assert_eq!((g.n, g.skipped_edges), (3, 1));
        assert_eq!(g.adj, [0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]);
        let p = write("i.csv", "0,2,3.5\n2,1,1\n1,0,1\n");
        let g = read_graph(&p, &GraphOptions { weights: EdgeWeights::Binary, symmetric: true, ..Default::default() }).unwrap();
        assert_eq!(g.adj, [0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_files_name_the_place() {
        let p = write("bad.csv", "0,1,2\n1,2,x\n");
        let e = read_graph(&p, &GraphOptions::default()).unwrap_err().to_string();
        assert!(e.ends_with("bad.csv:2: column 3: not a number: \"x\""), "{e}");
        let p = write("ids.csv", "a,b,1\n");
        let e = read_graph(&p, &GraphOptions::default()).unwrap_err().to_string();
        assert!(e.contains(":1: column 1: node \"a\" is not a row index"), "{e}");
        let p = write("sq.csv", "1,0\n0,1\n1,1\n1,1\n");
        let e = read_graph(&p, &GraphOptions::default()).unwrap_err().to_string();
        assert!(e.contains("neither an edge list"), "{e}");
    }
}
