//! The real sensor graphs and spatio-temporal signals in `$STRATA_DATA`.

use strata_data::graph::{EdgeWeights, GraphOptions, read_graph, read_ids};
use strata_data::spatial::read_signal;
use strata_data::{DataConfig, prepare_spatial};

/// `$STRATA_DATA`, defaulting (for `cargo test` from the crate folder) to the data beside the
/// repository; the registry reads the same variable.
fn data_root() -> std::path::PathBuf {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if std::env::var_os("STRATA_DATA").is_none() {
            let r = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
            // SAFETY: set once, before any test thread reads the environment through this crate.
            unsafe { std::env::set_var("STRATA_DATA", r) };
        }
    });
    strata_data::data_root()
}

fn opts() -> GraphOptions {
    GraphOptions::default()
}

#[test]
fn metr_la_pickle_and_npy_hold_the_same_matrix() {
    let root = data_root().join("metr-la_graph");
    let pkl = read_graph(&root.join("adj_mx.pkl"), &opts()).unwrap();
    let npy = read_graph(&root.join("adj_mx.derived.npy"), &opts()).unwrap();
    assert_eq!(pkl.n, 207);
    assert_eq!(pkl.adj, npy.adj);
    let ids = read_ids(&root.join("graph_sensor_ids.txt")).unwrap();
    assert_eq!(pkl.ids.as_ref().unwrap(), &ids);
    assert_eq!(&read_ids(&root.join("adj_mx.derived.sensor_ids.txt")).unwrap(), &ids);
    // DCRNN's matrix: self-loops of weight 1, every other weight in [0.1, 1].
    assert!((0..207).all(|i| pkl.adj[i * 207 + i] == 1.0));
    assert!(pkl.adj.iter().all(|&w| w == 0.0 || (0.1..=1.0).contains(&w)));
}

#[test]
fn pems_bay_distances_give_dcrnns_gaussian_kernel() {
    // DCRNN built adj_mx_bay.pkl from distances_bay_2017.csv; rebuilding it from the edge list
    // with the sensor order of the pickle must give the same matrix.
    let root = data_root().join("pems-bay_graph");
    let pkl = read_graph(&root.join("adj_mx_bay.pkl"), &opts()).unwrap();
    let npy = read_graph(&root.join("adj_mx_bay.derived.npy"), &opts()).unwrap();
    assert_eq!(pkl.n, 325);
    assert_eq!(pkl.adj, npy.adj);
    let ids = pkl.ids.clone().unwrap();
    let edges = read_graph(&root.join("distances_bay_2017.csv"), &GraphOptions { ids: Some(ids), ..opts() }).unwrap();
    assert_eq!(edges.n, 325);
    let worst = edges.adj.iter().zip(&pkl.adj).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-6, "largest difference {worst}");
    assert_eq!(edges.edges(), pkl.edges());
}

#[test]
fn pems0x_edge_lists() {
    let root = data_root().join("pems0x_graph");
    for (file, n, edges) in [("PEMS04.csv", 307, 340), ("PEMS07.csv", 883, 866), ("PEMS08.csv", 170, 277)] {
        let g = read_graph(&root.join(file), &GraphOptions { nodes: Some(n), weights: EdgeWeights::Binary, ..opts() }).unwrap();
        assert_eq!((g.n, g.edges()), (n, edges), "{file}");
    }
    // PEMS03 names real sensor ids, mapped to rows by PEMS03.txt.
    let ids = read_ids(&root.join("PEMS03.txt")).unwrap();
    assert_eq!(ids.len(), 358);
    let g = read_graph(&root.join("PEMS03.csv"), &GraphOptions { ids: Some(ids), weights: EdgeWeights::Binary, ..opts() }).unwrap();
    assert_eq!((g.n, g.edges(), g.skipped_edges), (358, 547, 0));
    // Without the id file the error says what to do.
    let e = read_graph(&root.join("PEMS03.csv"), &opts()).unwrap_err().to_string();
    assert!(e.contains("is not a row index of a 358-node graph; give the sensor-id file"), "{e}");
}

#[test]
fn pygt_graphs_and_signals() {
    let bus = data_root().join("pygt/montevideo_bus.json");
    let g = read_graph(&bus, &opts()).unwrap();
    assert_eq!(g.n, 675);
    let s = read_signal(&bus, "data").unwrap();
    assert_eq!((s.t, s.n, s.c), (744, 675, 1));
    assert_eq!(s.ids.as_ref().unwrap(), g.ids.as_ref().unwrap());
    let pox = data_root().join("pygt/chickenpox.json");
    let g = read_graph(&pox, &GraphOptions { weights: EdgeWeights::Binary, ..opts() }).unwrap();
    assert_eq!((g.n, g.edges()), (20, 102));
    let s = read_signal(&pox, "data").unwrap();
    assert_eq!((s.t, s.n), (521, 20));
}

#[test]
fn los_loop_protocol() {
    data_root();
    let cfg = DataConfig { dataset: "los-loop".into(), seq_len: 12, pred_len: 12, ..Default::default() };
    let d = prepare_spatial(&cfg).unwrap();
    assert_eq!((d.rows, d.nodes, d.in_features), (2016, 207, 3));
    // 2016 - 24 + 1 = 1993 windows: 1395 / 199 / 399.
    assert_eq!([d.train.len(), d.val.len(), d.test.len()], [1395, 199, 399]);
    assert_eq!(d.graph.as_ref().unwrap().n, 207);
    // The los_speed.csv header is the METR-LA sensor ids.
    let metr = read_ids(&data_root().join("metr-la_graph/graph_sensor_ids.txt")).unwrap();
    assert_eq!(d.ids.as_ref().unwrap(), &metr);
    // The z-score covers every node of the rows the training inputs use (1395 - 1 + 12).
    let raw = read_signal(&d.path, "data").unwrap();
    let rows = 1395 - 1 + 12;
    let mean = raw.values[..rows * 207].iter().map(|&v| v as f64).sum::<f64>() / (rows * 207) as f64;
    assert!((d.scaler.mean[0] as f64 - mean).abs() < 1e-3, "{} vs {mean}", d.scaler.mean[0]);
    // Targets stay on the original scale; inputs are scaled, then time of day, day of week.
    assert_eq!(d.test.y(0)[0], raw.values[(1395 + 199 + 12) * 207]);
    let x = d.train.x(1);
    assert!((x[0] - (raw.values[207] - d.scaler.mean[0]) / d.scaler.std[0]).abs() < 1e-5);
    assert!((x[1] - 1.0 / 288.0).abs() < 1e-7);
}

#[test]
fn node_count_mismatch_names_both_counts() {
    data_root();
    let cfg = DataConfig {
        dataset: "los-loop".into(),
        seq_len: 12,
        pred_len: 12,
        graph: Some(data_root().join("pems0x_graph/PEMS08.csv")),
        ..Default::default()
    };
    let e = prepare_spatial(&cfg).unwrap_err().to_string();
    assert!(e.contains("the signal") && e.contains("has 207 nodes") && e.contains("PEMS08.csv has 170"), "{e}");
}
