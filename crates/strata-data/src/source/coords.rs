//! A sensor graph from coordinates, for data that has no graph file: DCRNN's thresholded
//! Gaussian kernel of the pairwise distances, or each node's k nearest neighbours.
//!
//! The coordinates file has one row per node: an id column (`id`, `sensor_id`, `station`,
//! `unique_id`, `node`, or the first column) and either `latitude`/`longitude` (`lat`/`lon`,
//! great-circle distances in km) or `x`/`y` (Euclidean distances).

use std::path::Path;

use super::raw::{Cells, read_raw};
use crate::DataError;
use crate::graph::{Graph, gaussian_kernel};

/// How coordinates become edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphFrom {
    /// `exp(-(d/sigma)^2)` over every pair, sigma the std of the distances, below 0.1 dropped.
    Gaussian,
    /// An edge (weight 1, both ways) from each node to its `data.graph_k` nearest nodes.
    Knn,
}

fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

/// Read node coordinates in the order of `nodes` (by id; by row when `nodes` is `None`).
/// Returns the points and whether they are latitude/longitude.
pub fn read_coordinates(path: &Path, nodes: Option<&[String]>) -> Result<(Vec<(f64, f64)>, bool), DataError> {
    let raw = read_raw(path)?;
    let find = |names: &[&str]| raw.names.iter().position(|n| names.contains(&n.to_ascii_lowercase().as_str()));
    let (a, b, geo) = match (find(&["latitude", "lat"]), find(&["longitude", "lon", "lng"]), find(&["x"]), find(&["y"])) {
        (Some(a), Some(b), _, _) => (a, b, true),
        (_, _, Some(a), Some(b)) => (a, b, false),
        _ => return Err(DataError::file(path, format!("no coordinate columns: expected latitude/longitude (or lat/lon) or x/y; the columns are {:?}", raw.names))),
    };
    let num = |c: usize| match &raw.cells[c] {
        Cells::Num(v) => Ok(v.clone()),
        _ => Err(DataError::file(path, format!("column '{}' must hold numbers", raw.names[c]))),
    };
    let (xs, ys) = (num(a)?, num(b)?);
    if let Some(r) = (0..raw.rows).find(|&r| !xs[r].is_finite() || !ys[r].is_finite()) {
        return Err(raw.error_at(r, a, "a coordinate is missing"));
    }
    let points: Vec<(f64, f64)> = xs.into_iter().zip(ys).collect();
    let Some(nodes) = nodes else { return Ok((points, geo)) };
    let id_col = find(&["id", "sensor_id", "station", "unique_id", "node", "location"]).unwrap_or(0);
    let ids: Vec<String> = (0..raw.rows).map(|r| raw.cells[id_col].text(r).unwrap_or_default()).collect();
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let Some(r) = ids.iter().position(|i| i == n) else {
            return Err(DataError::file(path, format!("node '{n}' has no row (column '{}' holds the ids); add its coordinates", raw.names[id_col])));
        };
        out.push(points[r]);
    }
    Ok((out, geo))
}

/// The graph of `points`.
pub fn graph_from_points(path: &Path, points: &[(f64, f64)], geo: bool, how: GraphFrom, k: usize, ids: Option<Vec<String>>) -> Result<Graph, DataError> {
    let n = points.len();
    let dist = |i: usize, j: usize| if geo { haversine_km(points[i], points[j]) } else { ((points[i].0 - points[j].0).powi(2) + (points[i].1 - points[j].1).powi(2)).sqrt() };
    let mut d = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            d[i * n + j] = dist(i, j) as f32;
        }
    }
    let adj = match how {
        GraphFrom::Gaussian => gaussian_kernel(&d, 0.1),
        GraphFrom::Knn => {
            if k == 0 || k >= n {
                return Err(DataError::Config(format!("data.graph_k = {k}: give 1 to {} neighbours for {n} nodes", n.saturating_sub(1))));
            }
            let mut adj = vec![0f32; n * n];
            for i in 0..n {
                let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                others.sort_by(|&a, &b| d[i * n + a].total_cmp(&d[i * n + b]));
                for &j in &others[..k] {
                    adj[i * n + j] = 1.0;
                    adj[j * n + i] = 1.0;
                }
            }
            adj
        }
    };
    Ok(Graph { n, adj, ids, path: path.to_path_buf(), skipped_edges: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_kernel_of_distances_by_hand() {
        // Points on a line at 0, 1, 3: distances 0,1,3 / 1,0,2 / 3,2,0 (mean 4/3); their
        // population std over all nine entries is sqrt(12/9) = 1.1547; w(0) = 1,
        // w(1) = exp(-0.75) = 0.4724, w(2) = exp(-3) = 0.0498 -> dropped (< 0.1), w(3) -> dropped.
        let g = graph_from_points(Path::new("c.csv"), &[(0.0, 0.0), (1.0, 0.0), (3.0, 0.0)], false, GraphFrom::Gaussian, 0, None).unwrap();
        let want = [1.0, 0.4724, 0.0, 0.4724, 1.0, 0.0, 0.0, 0.0, 1.0];
        for (a, b) in g.adj.iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "{:?}", g.adj);
        }
        let g = graph_from_points(Path::new("c.csv"), &[(0.0, 0.0), (1.0, 0.0), (3.0, 0.0)], false, GraphFrom::Knn, 1, None).unwrap();
        assert_eq!(g.adj, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn great_circle_distance() {
        // Paris -> London, about 344 km.
        let d = haversine_km((48.8566, 2.3522), (51.5074, -0.1278));
        assert!((d - 343.5).abs() < 1.5, "{d}");
    }

    #[test]
    fn coordinates_by_id_and_a_missing_node() {
        let p = std::env::temp_dir().join(format!("strata-coords-{}.csv", std::process::id()));
        std::fs::write(&p, "station,latitude,longitude\nB,1,1\nA,0,0\n").unwrap();
        let (pts, geo) = read_coordinates(&p, Some(&["A".into(), "B".into()])).unwrap();
        assert!(geo);
        assert_eq!(pts, [(0.0, 0.0), (1.0, 1.0)]);
        let e = read_coordinates(&p, Some(&["C".into()])).unwrap_err().to_string();
        assert!(e.ends_with("node 'C' has no row (column 'station' holds the ids); add its coordinates"), "{e}");
    }
}
