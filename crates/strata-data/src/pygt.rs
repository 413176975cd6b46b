//! Every JSON layout of PyTorch Geometric Temporal's dataset loaders
//! (`torch_geometric_temporal/dataset/*.py`), read as a signal `[time, nodes, features]` and a
//! graph: static (`edges` [+ `weights`], or node-link `links`) or one per time step (dynamic).
//!
//! | layout | loaders | signal | graph |
//! |---|---|---|---|
//! | `node-link` | Montevideo bus | `nodes[i].y` | `links` (static) |
//! | `FX` | chickenpox | `FX[t][i]` | `edges` (static, weight 1) |
//! | `X` | PedalMe | `X[t][i]` | `edges` + `weights` |
//! | `block` | windmill (large, medium, small) | `block[t][i]` | `edges` + `weights` |
//! | `snapshots` | Wikipedia maths | `"t": {"y": [i]}` for t < `time_periods` | `edges` + `weights` |
//! | `edge_mapping` | England COVID | `y[t][i]` | `edge_mapping.edge_index/edge_weight["t"]` (dynamic) |
//! | `dynamic snapshots` | Twitter tennis | `"t": {"y": [i], "X": [i][f]}` | `"t": {"edges", "weights"}` (dynamic) |
//! | `joints` | MTM-1 hand motions | `"j": {"frame": "(x, y, z)"}` for the 21 joints: `[t, 21, 3]` | `edges` |

use std::path::Path;

use serde_json::Value;

use crate::DataError;

/// The layouts this reader knows, for the message that refuses an unknown one.
pub const LAYOUTS: &str = "node-link (`nodes[*].y` + `links`), `FX`, `X`, `block`, `y` + `edge_mapping`, `time_periods` + per-step `\"t\": {\"y\"}` snapshots (with or without per-step `edges`), MTM joints (`\"0\"`..`\"20\"` + `LABEL`)";

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| DataError::At {
        path: path.to_path_buf(),
        line: e.line() as u64,
        column: e.column().to_string(),
        msg: format!("invalid JSON: {e}"),
    })
}

/// The node-link layout's signal: `nodes[i].y`, node ids from `nodes[i].id`.
pub(crate) fn read_node_link_signal(path: &Path, v: &serde_json::Value) -> Result<(Vec<usize>, Vec<f32>, Option<Vec<String>>), DataError> {
    let nodes = v.get("nodes").and_then(|n| n.as_array()).ok_or_else(|| DataError::file(path, "key `nodes`: expected a list"))?;
    let series: Vec<&Vec<serde_json::Value>> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.get("y").and_then(|y| y.as_array()).ok_or_else(|| DataError::file(path, format!("key `nodes[{i}].y`: missing"))))
        .collect::<Result<_, _>>()?;
    let t = series.first().map_or(0, |s| s.len());
    if let Some(i) = series.iter().position(|s| s.len() != t) {
        return Err(DataError::file(path, format!("key `nodes[{i}].y`: {} steps, node 0 has {t}", series[i].len())));
    }
    let n = series.len();
    let mut values = vec![0f32; t * n];
    for (j, s) in series.iter().enumerate() {
        for (k, x) in s.iter().enumerate() {
            values[k * n + j] = x.as_f64().map_or(f32::NAN, |x| x as f32);
        }
    }
    let ids = nodes.iter().enumerate().map(|(i, n)| n.get("id").map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_else(|| i.to_string())).collect();
    Ok((vec![t, n], values, Some(ids)))
}

/// Edges of one graph: `(from, to, weight)` by node index.
pub type Edges = Vec<(usize, usize, f32)>;

/// A PyGT dataset.
#[derive(Debug, Clone)]
pub struct Pygt {
    pub layout: &'static str,
    pub t: usize,
    pub n: usize,
    pub c: usize,
    /// `[t, n, c]`, row-major; missing numbers are NaN.
    pub values: Vec<f32>,
    pub ids: Option<Vec<String>>,
    /// The static graph's edges, where the file has one.
    pub edges: Option<Edges>,
    /// One edge set per time step (dynamic graphs).
    pub dynamic: Option<Vec<Edges>>,
}

fn num(v: &Value) -> f32 {
    v.as_f64().map_or(f32::NAN, |x| x as f32)
}

fn arr<'a>(path: &Path, v: &'a Value, key: &str) -> Result<&'a Vec<Value>, DataError> {
    v.as_array().ok_or_else(|| DataError::file(path, format!("key `{key}`: expected a list")))
}

/// `[t][n]` numbers.
fn matrix(path: &Path, v: &Value, key: &str) -> Result<(usize, usize, Vec<f32>), DataError> {
    let rows = arr(path, v, key)?;
    let n = rows.first().and_then(|r| r.as_array()).map_or(0, |r| r.len());
    let mut out = Vec::with_capacity(rows.len() * n);
    for (t, r) in rows.iter().enumerate() {
        let r = r.as_array().filter(|r| r.len() == n).ok_or_else(|| DataError::file(path, format!("key `{key}[{t}]`: expected {n} numbers (as `{key}[0]` has)")))?;
        out.extend(r.iter().map(num));
    }
    Ok((rows.len(), n, out))
}

/// `edges` (pairs) with an optional parallel `weights` list.
fn edge_list(path: &Path, edges: &Value, weights: Option<&Value>, key: &str) -> Result<Edges, DataError> {
    let list = arr(path, edges, key)?;
    let w = weights.map(|w| arr(path, w, &format!("{key} weights"))).transpose()?;
    if let Some(w) = w
        && w.len() != list.len()
    {
        return Err(DataError::file(path, format!("key `{key}`: {} edges but {} weights", list.len(), w.len())));
    }
    let mut out = Vec::with_capacity(list.len());
    for (k, e) in list.iter().enumerate() {
        let pair = e.as_array().filter(|p| p.len() == 2).and_then(|p| Some((p[0].as_u64()? as usize, p[1].as_u64()? as usize)));
        let Some((i, j)) = pair else { return Err(DataError::file(path, format!("key `{key}[{k}]`: expected a pair of node indices, found {e}"))) };
        out.push((i, j, w.map_or(1.0, |w| num(&w[k]))));
    }
    Ok(out)
}

fn check_edges(path: &Path, edges: &Edges, n: usize, key: &str) -> Result<(), DataError> {
    if let Some((k, e)) = edges.iter().enumerate().find(|(_, e)| e.0 >= n || e.1 >= n) {
        return Err(DataError::file(path, format!("key `{key}[{k}]`: edge ({}, {}) names a node beyond the {n} nodes of the signal", e.0, e.1)));
    }
    Ok(())
}

/// Read a PyGT JSON file in any of its loaders' layouts.
pub fn read_pygt(path: &Path) -> Result<Pygt, DataError> {
    let v = read_json(path)?;
    let obj = v.as_object().ok_or_else(|| DataError::file(path, "expected a JSON object at the top"))?;
    let has = |k: &str| obj.contains_key(k);
    let static_edges = |n: usize| -> Result<Option<Edges>, DataError> {
        match obj.get("edges") {
            Some(e) => {
                let edges = edge_list(path, e, obj.get("weights"), "edges")?;
                check_edges(path, &edges, n, "edges")?;
                Ok(Some(edges))
            }
            None => Ok(None),
        }
    };
    let flat = |layout: &'static str, key: &str| -> Result<Pygt, DataError> {
        let (t, n, values) = matrix(path, &obj[key], key)?;
        Ok(Pygt { layout, t, values, edges: static_edges(n)?, ..flat_ids(obj, n) })
    };
    if has("nodes") && has("links") {
        let (shape, values, ids) = read_node_link_signal(path, &v)?;
        return Ok(Pygt { layout: "node-link", t: shape[0], n: shape[1], c: 1, values, ids, edges: None, dynamic: None });
    }
    if has("FX") {
        return flat("FX", "FX");
    }
    if has("block") {
        return flat("block", "block");
    }
    if has("X") && has("edges") {
        return flat("X", "X");
    }
    if has("y") && has("edge_mapping") {
        let mut d = flat("edge_mapping", "y")?;
        let em = &obj["edge_mapping"];
        let mut dynamic = Vec::new();
        for t in 0..d.t {
            let key = t.to_string();
            let Some(e) = em.get("edge_index").and_then(|x| x.get(&key)) else { break };
            let edges = edge_list(path, e, em.get("edge_weight").and_then(|x| x.get(&key)), &format!("edge_mapping.edge_index.{key}"))?;
            check_edges(path, &edges, d.n, &format!("edge_mapping.edge_index.{key}"))?;
            dynamic.push(edges);
        }
        if dynamic.is_empty() {
            return Err(DataError::file(path, "key `edge_mapping.edge_index`: no graph for step \"0\""));
        }
        d.dynamic = Some(dynamic);
        return Ok(d);
    }
    if let Some(tp) = obj.get("time_periods").and_then(|t| t.as_u64()) {
        return snapshots(path, obj, tp as usize, static_edges);
    }
    if has("0") && has("20") && has("LABEL") {
        return joints(path, obj, static_edges);
    }
    // A graph alone (`edges` [+ `weights`, `node_ids`]), as a graph file without a signal.
    if let Some(e) = obj.get("edges") {
        let edges = edge_list(path, e, obj.get("weights"), "edges")?;
        let n = match obj.get("node_ids").and_then(|m| m.as_object()) {
            Some(m) => m.len(),
            None => edges.iter().map(|&(i, j, _)| i.max(j) + 1).max().unwrap_or(0),
        };
        check_edges(path, &edges, n, "edges")?;
        let mut d = flat_ids(obj, n);
        d.edges = Some(edges);
        return Ok(d);
    }
    let keys: Vec<&String> = obj.keys().take(12).collect();
    Err(DataError::file(path, format!("no signal in this JSON: its keys are {keys:?}{}; the PyTorch Geometric Temporal layouts strata reads are {LAYOUTS}", if obj.len() > 12 { " ..." } else { "" })))
}

/// `"t": {"y": [n], "X"?: [n][f], "edges"?, "weights"?}` for t < `time_periods` (Wikipedia
/// maths: static edges at the top; Twitter tennis: a graph per step).
fn snapshots(path: &Path, obj: &serde_json::Map<String, Value>, t: usize, static_edges: impl Fn(usize) -> Result<Option<Edges>, DataError>) -> Result<Pygt, DataError> {
    let step = |k: usize| obj.get(&k.to_string()).ok_or_else(|| DataError::file(path, format!("key `{k}`: missing (time_periods is {t})")));
    let y0 = arr(path, step(0)?.get("y").unwrap_or(&Value::Null), "0.y")?;
    let n = y0.len();
    let f = step(0)?.get("X").and_then(|x| x.as_array()).and_then(|x| x.first()).and_then(|r| r.as_array()).map_or(0, |r| r.len());
    let c = 1 + f;
    let mut values = Vec::with_capacity(t * n * c);
    let mut dynamic = Vec::new();
    for k in 0..t {
        let s = step(k)?;
        let y = arr(path, s.get("y").unwrap_or(&Value::Null), &format!("{k}.y"))?;
        if y.len() != n {
            return Err(DataError::file(path, format!("key `{k}.y`: {} nodes, step 0 has {n}", y.len())));
        }
        let x = s.get("X").and_then(|x| x.as_array());
        for (i, yi) in y.iter().enumerate() {
            values.push(num(yi));
            for j in 0..f {
                values.push(x.and_then(|x| x.get(i)).and_then(|r| r.get(j)).map_or(f32::NAN, num));
            }
        }
        if let Some(e) = s.get("edges") {
            let edges = edge_list(path, e, s.get("weights"), &format!("{k}.edges"))?;
            check_edges(path, &edges, n, &format!("{k}.edges"))?;
            dynamic.push(edges);
        }
    }
    let dynamic = (!dynamic.is_empty()).then_some(dynamic);
    let layout = if dynamic.is_some() { "dynamic snapshots" } else { "snapshots" };
    Ok(Pygt { layout, t, n, c, values, ids: None, edges: static_edges(n)?, dynamic })
}

/// MTM-1: 21 joints, each `{"frame": "(x, y, z)"}`; frames in the order of joint 0's keys.
fn joints(path: &Path, obj: &serde_json::Map<String, Value>, static_edges: impl Fn(usize) -> Result<Option<Edges>, DataError>) -> Result<Pygt, DataError> {
    let n = 21;
    let frames: Vec<&String> = obj["0"].as_object().ok_or_else(|| DataError::file(path, "key `0`: expected frames"))?.keys().collect();
    let t = frames.len();
    let mut values = vec![f32::NAN; t * n * 3];
    for j in 0..n {
        let joint = obj.get(&j.to_string()).and_then(|x| x.as_object()).ok_or_else(|| DataError::file(path, format!("key `{j}`: missing joint")))?;
        for (k, frame) in frames.iter().enumerate() {
            let cell = joint.get(*frame).and_then(|x| x.as_str()).ok_or_else(|| DataError::file(path, format!("key `{j}.{frame}`: missing")))?;
            let xyz: Vec<f32> = cell.trim_matches(|c| c == '(' || c == ')').split(',').filter_map(|s| s.trim().parse().ok()).collect();
            if xyz.len() != 3 {
                return Err(DataError::file(path, format!("key `{j}.{frame}`: expected \"(x, y, z)\", found {cell:?}")));
            }
            values[(k * n + j) * 3..(k * n + j) * 3 + 3].copy_from_slice(&xyz);
        }
    }
    Ok(Pygt { layout: "joints", t, n, c: 3, values, ids: None, edges: static_edges(n)?, dynamic: None })
}

/// A graph per time step (PyGT's dynamic graphs), kept sparse.
#[derive(Debug, Clone)]
pub struct DynamicGraph {
    pub n: usize,
    pub steps: Vec<Edges>,
}

impl DynamicGraph {
    /// The graph a window sees: the mean adjacency `[n, n]` over its input steps
    /// `[first, first + len)` (steps past the last graph take the last one, as PyGT's loaders
    /// have fewer graphs than signal steps).
    pub fn window(&self, first: usize, len: usize) -> Vec<f32> {
        let n = self.n;
        let mut adj = vec![0f32; n * n];
        let w = 1.0 / len as f32;
        for t in first..first + len {
            for &(i, j, v) in &self.steps[t.min(self.steps.len() - 1)] {
                adj[i * n + j] += v * w;
            }
        }
        adj
    }
}

/// A graph without a signal (`t = 0`), its node ids from `node_ids` where given.
fn flat_ids(obj: &serde_json::Map<String, Value>, n: usize) -> Pygt {
    let ids = obj.get("node_ids").and_then(|m| m.as_object()).map(|m| {
        let mut ids = vec![String::new(); n];
        for (name, i) in m {
            if let Some(i) = i.as_u64().filter(|&i| (i as usize) < n) {
                ids[i as usize] = name.clone();
            }
        }
        ids
    });
    Pygt { layout: "edges", t: 0, n, c: 1, values: Vec::new(), ids, edges: None, dynamic: None }
}

/// Edges -> a dense `[n, n]` adjacency (the last weight of a repeated edge).
pub fn dense(edges: &Edges, n: usize) -> Vec<f32> {
    let mut adj = vec![0f32; n * n];
    for &(i, j, w) in edges {
        adj[i * n + j] = w;
    }
    adj
}

/// The time-averaged adjacency of a dynamic graph.
pub fn mean_graph(dynamic: &[Edges], n: usize) -> Vec<f32> {
    let mut adj = vec![0f32; n * n];
    for e in dynamic {
        for (a, d) in adj.iter_mut().zip(dense(e, n)) {
            *a += d / dynamic.len() as f32;
        }
    }
    adj
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, v: serde_json::Value) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-pygt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    }

    #[test]
    fn pedalme_x_with_weights() {
        let p = write("pedalme.json", serde_json::json!({"edges": [[0, 1], [1, 0]], "weights": [2.5, 0.5], "X": [[1, 2], [3, 4], [5, 6]]}));
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n, d.c), ("X", 3, 2, 1));
        assert_eq!(d.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(dense(d.edges.as_ref().unwrap(), 2), [0.0, 2.5, 0.5, 0.0]);
    }

    #[test]
    fn windmill_block() {
        let p = write("windmill.json", serde_json::json!({"edges": [[0, 1]], "weights": [0.9], "block": [[0.1, 0.2], [0.3, 0.4]]}));
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n), ("block", 2, 2));
        assert_eq!(d.edges.unwrap(), [(0, 1, 0.9)]);
    }

    #[test]
    fn chickenpox_fx_with_node_ids() {
        let p = write("pox.json", serde_json::json!({"edges": [[0, 1]], "node_ids": {"BUDAPEST": 0, "PEST": 1}, "FX": [[1, 2], [3, 4]]}));
        let d = read_pygt(&p).unwrap();
        assert_eq!(d.layout, "FX");
        assert_eq!(d.ids.unwrap(), ["BUDAPEST", "PEST"]);
        assert_eq!(d.edges.unwrap(), [(0, 1, 1.0)]);
    }

    #[test]
    fn wikimath_snapshots() {
        let p = write("wiki.json", serde_json::json!({"edges": [[0, 1], [1, 2]], "weights": [1, 3], "time_periods": 2, "0": {"y": [10, 20, 30]}, "1": {"y": [11, 21, 31]}}));
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n, d.c), ("snapshots", 2, 3, 1));
        assert_eq!(d.values, [10.0, 20.0, 30.0, 11.0, 21.0, 31.0]);
        assert!(d.dynamic.is_none());
        assert_eq!(d.edges.unwrap()[1], (1, 2, 3.0));
    }

    #[test]
    fn england_covid_dynamic_graph() {
        let p = write(
            "covid.json",
            serde_json::json!({"time_periods": 2, "y": [[1, 2], [3, 4]],
                "edge_mapping": {"edge_index": {"0": [[0, 1]], "1": [[1, 0], [0, 0]]}, "edge_weight": {"0": [4.0], "1": [2.0, 1.0]}}}),
        );
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n), ("edge_mapping", 2, 2));
        let dy = d.dynamic.unwrap();
        assert_eq!(dy.len(), 2);
        // Time average: (0,1) = 4/2, (1,0) = 2/2, (0,0) = 1/2.
        assert_eq!(mean_graph(&dy, 2), [0.5, 2.0, 1.0, 0.0]);
    }

    #[test]
    fn twitter_tennis_dynamic_snapshots_with_features() {
        let p = write(
            "tennis.json",
            serde_json::json!({"time_periods": 2,
                "0": {"y": [1, 0], "X": [[3, 0.5], [1, 0.0]], "edges": [[0, 1]], "weights": [1]},
                "1": {"y": [2, 5], "X": [[4, 0.2], [2, 0.1]], "edges": [[1, 0]], "weights": [2]}}),
        );
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n, d.c), ("dynamic snapshots", 2, 2, 3));
        assert_eq!(&d.values[..6], &[1.0, 3.0, 0.5, 0.0, 1.0, 0.0]);
        assert_eq!(d.dynamic.unwrap()[1], [(1, 0, 2.0)]);
    }

    #[test]
    fn mtm_joints() {
        let mut m = serde_json::Map::new();
        for j in 0..21 {
            m.insert(j.to_string(), serde_json::json!({"0": format!("({j}, 0.5, -1)"), "1": format!("({}, 0.5, -1)", j + 100)}));
        }
        m.insert("LABEL".into(), serde_json::json!({"0": 1, "1": 2}));
        m.insert("edges".into(), serde_json::json!([[0, 1], [1, 2]]));
        let p = write("mtm.json", serde_json::Value::Object(m));
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n, d.c), ("joints", 2, 21, 3));
        assert_eq!(&d.values[3..6], &[1.0, 0.5, -1.0]);
        assert_eq!(d.values[21 * 3], 100.0);
    }

    #[test]
    fn montevideo_node_link() {
        let p = write("bus.json", serde_json::json!({"nodes": [{"id": "a", "y": [1, 2]}, {"id": "b", "y": [3, 4]}], "links": [{"source": "a", "target": "b", "weight": 1.5}]}));
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n), ("node-link", 2, 2));
        assert_eq!(d.values, [1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn a_graph_alone() {
        let p = write("graph.json", serde_json::json!({"edges": [[0, 2]], "node_ids": {"a": 0, "b": 1, "c": 2}}));
        let d = read_pygt(&p).unwrap();
        assert_eq!((d.layout, d.t, d.n), ("edges", 0, 3));
        assert_eq!(d.ids.unwrap(), ["a", "b", "c"]);
        assert_eq!(d.edges.unwrap(), [(0, 2, 1.0)]);
    }

    #[test]
    fn unknown_layouts_and_bad_edges_are_refused() {
        let p = write("odd.json", serde_json::json!({"series": [1, 2], "meta": {}}));
        let e = read_pygt(&p).unwrap_err().to_string();
        assert!(e.contains("no signal in this JSON: its keys are [\"meta\", \"series\"]; the PyTorch Geometric Temporal layouts strata reads are node-link"), "{e}");
        let p = write("bad.json", serde_json::json!({"edges": [[0, 5]], "FX": [[1, 2]]}));
        let e = read_pygt(&p).unwrap_err().to_string();
        assert!(e.ends_with("key `edges[0]`: edge (0, 5) names a node beyond the 2 nodes of the signal"), "{e}");
    }
}
