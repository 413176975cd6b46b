//! The spatio-temporal pipeline of one run: read the signal and the graph, check they agree,
//! split the windows in time order, fit one z-score on the training rows, add time features.

use std::path::PathBuf;

use crate::graph::{Graph, GraphOptions, read_graph, read_ids};
use crate::prepare::DataConfig;
use crate::scaler::StandardScaler;
use crate::spatial::{Signal, read_signal, spatial_lookup, split_windows};
use crate::window::{Series, Windows};
use crate::{DataError, data_root, sha256_file};

/// Everything a spatio-temporal run needs from its data.
#[derive(Debug, Clone)]
pub struct SpatialPrepared {
    pub dataset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub graph: Option<Graph>,
    pub graph_sha256: Option<String>,
    pub freq: String,
    pub rows: usize,
    pub nodes: usize,
    /// Input features per node: the scaled signal, then time of day, then day of week.
    pub in_features: usize,
    pub ids: Option<Vec<String>>,
    pub steps_per_day: Option<usize>,
    pub time_of_day: bool,
    pub day_of_week: bool,
    pub grid: Option<[usize; 2]>,
    /// The z-score (one mean and std over every node of the training rows).
    pub scaler: StandardScaler,
    /// Cells missing in the file (stored as 0, the null value), and zero targets overall.
    pub missing: usize,
    pub zeros: usize,
    pub split: [f64; 3],
    /// Rows `[start, end)` each split's windows cover.
    pub borders: [(usize, usize); 3],
    pub train: Windows,
    pub val: Windows,
    pub test: Windows,
    /// How a file from the wild was read (see [`crate::prepare::Prepared::source`]).
    pub source: Option<(crate::source::ReadSpec, crate::source::ReadReport)>,
    /// A graph per time step (PyGT's dynamic graphs), for the models that take a graph per
    /// window; `graph` then holds its time average. `None` with `data.dynamic_graph = "mean"`.
    pub dynamic: Option<std::sync::Arc<crate::pygt::DynamicGraph>>,
    /// The covariates' scalers (fitted on the training input rows), where the data has
    /// covariates (`data.covariates`; their names are in `train.covariates`).
    pub covariate_scalers: Option<crate::covariates::CovariateScalers>,
}

pub fn prepare_spatial(cfg: &DataConfig) -> Result<SpatialPrepared, DataError> {
    if cfg.time_features != crate::timefeat::TimeFeatures::Timef {
        return Err(DataError::Config(format!("data.time_features chooses the calendar features of long-sequence data; `{}` is spatio-temporal: use data.time_of_day / data.day_of_week", cfg.dataset)));
    }
    if cfg.split_rows.is_some() || cfg.val_size.is_some() || cfg.test_size.is_some() {
        return Err(DataError::Config(format!("data.split_rows / data.val_size / data.test_size cut long-sequence data; `{}` is spatio-temporal: use data.split = [train, val, test] (shares of the windows)", cfg.dataset)));
    }
    let spec = spatial_lookup(&cfg.dataset);
    let root = data_root();
    let path = match (&cfg.path, spec) {
        (Some(p), _) => p.clone(),
        (None, Some(s)) => root.join(s.signal),
        (None, None) => return Err(DataError::Config("data.dataset = \"spatial\" needs data.path (the signal file)".into())),
    };
    let graph_path = cfg.graph.clone().or_else(|| spec.and_then(|s| s.graph).map(|g| root.join(g)));
    if cfg.seq_len == 0 || cfg.pred_len == 0 {
        return Err(DataError::Config("data.seq_len and data.pred_len must be positive".into()));
    }
    let read = cfg.read_spec();
    let cov = &cfg.covariates;
    let mut source = None;
    let mut statics = None;
    // Past or future covariates of a text table are named columns: read it as a table.
    let lower = path.to_string_lossy().to_ascii_lowercase();
    let array = [".npy", ".npz", ".json"].iter().any(|e| lower.ends_with(e));
    let (signal, dates, cov_split) = if crate::source::needs_source(&path, &read) || (!array && !(cov.past.is_empty() && cov.future.is_empty())) {
        let frame = crate::source::read_frame(&path, &read)?;
        statics = Some(frame.statics.clone());
        source = Some((crate::source::ReadSpec { categories: frame.categories.clone(), ..read }, frame.report.clone()));
        // A wide table's columns are the nodes; long tables and folders name their nodes.
        let wide = frame.nodes.len() == 1 && frame.nodes[0].is_empty();
        let dates = frame.dates.clone();
        if cov.is_empty() {
            let (n, c, ids) = if wide { (frame.features.len(), 1, frame.features.clone()) } else { (frame.nodes.len(), frame.features.len(), frame.nodes.clone()) };
            (signal_of(frame.values, frame.rows, n, c, ids), dates, None)
        } else {
            let target = (!wide).then(|| frame.features[0].clone());
            let mut table = frame.into_table();
            let coords = statics.as_ref().expect("read with the frame");
            let split = crate::spatial_covariates::split_table(&mut table, cov, target.as_deref(), coords)?;
            let n = table.cols();
            (signal_of(table.values, table.rows, n, 1, table.columns), dates, split)
        }
    } else {
        let signal = read_signal(&path, &cfg.npz_key)?;
        let split = crate::spatial_covariates::split_channels(&signal, &path, cov)?;
        (signal, None, split)
    };
    let cov_split = crate::spatial_covariates::add_static_file(cov_split, cov, signal.t, signal.n, signal.ids.as_deref())?;
    let n = signal.n;
    if let Some(want) = cfg.nodes
        && want != n
    {
        return Err(DataError::file(&path, format!("the signal has {n} nodes, data.nodes says {want}")));
    }
    let mut dynamic = None;
    if cfg.graph_from.is_some() && cfg.coordinates.is_none() && cfg.coordinate_columns.is_none() {
        return Err(DataError::Config("data.graph_from builds the graph from coordinates: give data.coordinates (a file of id, latitude/longitude or x/y) or data.coordinate_columns".into()));
    }
    let how = cfg.graph_from.unwrap_or(crate::source::coords::GraphFrom::Gaussian);
    // A PyGT JSON graph file with a graph per step (read once here; kept unless averaged).
    let dynamic_pygt = match &graph_path {
        Some(gp) if cfg.dynamic_graph.is_none() && gp.to_string_lossy().to_ascii_lowercase().ends_with(".json") => Some(crate::pygt::read_pygt(gp)?).filter(|d| d.dynamic.is_some()),
        _ => None,
    };
    let graph = match (&graph_path, &cfg.coordinates) {
        (None, None) if cfg.coordinate_columns.is_some() => {
            let cols = cfg.coordinate_columns.as_deref().unwrap_or_default();
            let st = statics.unwrap_or_default();
            let (Some(a), Some(b)) = (cols.first().and_then(|c| st.get(c)), cols.get(1).and_then(|c| st.get(c))) else {
                return Err(DataError::Config("data.coordinate_columns reads coordinates from a folder of files or a long table (data.layout)".into()));
            };
            let geo = cols[0].to_ascii_lowercase().starts_with("lat");
            let points: Vec<(f64, f64)> = a.iter().copied().zip(b.iter().copied()).collect();
            Some(crate::source::coords::graph_from_points(&path, &points, geo, how, cfg.graph_k, signal.ids.clone())?)
        }
        (Some(gp), Some(_)) => return Err(DataError::Config(format!("give data.graph ({}) or data.coordinates, not both", gp.display()))),
        (None, Some(cp)) => {
            let (points, geo) = crate::source::coords::read_coordinates(cp, signal.ids.as_deref())?;
            if points.len() != n {
                return Err(DataError::file(cp, format!("{} rows of coordinates for the {n} nodes of the signal", points.len())));
            }
            Some(crate::source::coords::graph_from_points(cp, &points, geo, how, cfg.graph_k, signal.ids.clone())?)
        }
        (None, None) => None,
        (Some(gp), None) if dynamic_pygt.is_some() => {
            let d = dynamic_pygt.expect("checked");
            let steps = d.dynamic.expect("checked");
            if d.n != n {
                return Err(DataError::Config(format!("node count mismatch: the signal {} has {n} nodes, the graph {} has {}", path.display(), gp.display(), d.n)));
            }
            let adj = crate::pygt::mean_graph(&steps, n);
            dynamic = Some(std::sync::Arc::new(crate::pygt::DynamicGraph { n, steps }));
            Some(Graph { n, adj, ids: d.ids, path: gp.clone(), skipped_edges: 0 })
        }
        (Some(gp), None) => {
            let ids = cfg.graph_ids.as_deref().map(read_ids).transpose()?;
            let opts = GraphOptions { ids, nodes: None, weights: cfg.graph_weights, threshold: 0.1, symmetric: cfg.graph_symmetric, dynamic_mean: cfg.dynamic_graph.is_some() };
            let mut g = read_graph(gp, &opts)?;
            if g.n != n {
                return Err(DataError::Config(format!(
                    "node count mismatch: the signal {} has {n} nodes, the graph {} has {}",
                    path.display(),
                    gp.display(),
                    g.n
                )));
            }
            align_ids(&mut g, signal.ids.as_deref())?;
            Some(g)
        }
    };
    if let Some([h, w]) = cfg.grid
        && h * w != n
    {
        return Err(DataError::Config(format!("data.grid = [{h}, {w}] holds {} cells, the signal has {n} nodes", h * w)));
    }

    let (l, hz) = (cfg.seq_len, cfg.pred_len);
    let t = signal.t;
    let total = (t + 1).saturating_sub(l + hz);
    let split = cfg.split.or(spec.map(|s| s.split)).unwrap_or([0.7, 0.1, 0.2]);
    let counts = split_windows(total, split);
    if let Some(k) = counts.iter().position(|&c| c == 0) {
        return Err(DataError::Config(format!(
            "the {} split has no windows: {t} steps give {total} windows of {l} + {hz} steps, split {split:?}",
            ["train", "val", "test"][k]
        )));
    }
    // Channel 0 is the target; other channels of the file are not used as inputs.
    let target: Vec<f32> = signal.values.chunks_exact(signal.c).map(|c| c[0]).collect();
    let zeros = target.iter().filter(|&&v| v.abs() <= 5e-5).count();
    // One z-score over all nodes of the rows the training inputs cover (BasicTS).
    let train_rows = counts[0] - 1 + l;
    let scaler = StandardScaler::fit(&target[..train_rows * n], 1, train_rows * n);

    // Files with timestamps: the daily cycle from their step, time features from their times.
    let step = source.as_ref().and_then(|(_, r): &(crate::source::ReadSpec, crate::source::ReadReport)| r.step_seconds);
    let from_step = step.filter(|&s| s > 0 && s < 86400 && 86400 % s == 0).map(|s| (86400 / s) as usize);
    let steps_per_day = cfg.steps_per_day.or(spec.and_then(|s| s.steps_per_day)).or(from_step);
    let tod = cfg.time_of_day.unwrap_or(steps_per_day.is_some());
    let dow = cfg.day_of_week.unwrap_or(tod);
    if (tod || dow) && steps_per_day.is_none() {
        return Err(DataError::Config("time features need data.steps_per_day (this dataset has no daily cycle in the registry)".into()));
    }
    let spd = steps_per_day.unwrap_or(1);
    let start_weekday = spec.map_or(0, |s| s.start_weekday);
    let f = 1 + tod as usize + dow as usize;
    let mut x = Vec::with_capacity(t * n * f);
    for (r, row) in target.chunks_exact(n).enumerate() {
        let (tod_v, dow_v) = match &dates {
            Some(d) => {
                let secs = chrono::Timelike::num_seconds_from_midnight(&d[r].time()) as usize;
                ((secs * spd / 86400) as f32 / spd as f32, chrono::Datelike::weekday(&d[r]).num_days_from_monday() as f32 / 7.0)
            }
            None => ((r % spd) as f32 / spd as f32, ((r / spd + start_weekday) % 7) as f32 / 7.0),
        };
        for &v in row {
            x.push((v - scaler.mean[0]) / scaler.std[0]);
            if tod {
                x.push(tod_v);
            }
            if dow {
                x.push(dow_v);
            }
        }
    }
    if cov_split.is_some() && dynamic.is_some() {
        return Err(DataError::Config("data.covariates with a graph per time step: no model takes both yet; set data.dynamic_graph = \"mean\" (one averaged graph) or leave out data.covariates".into()));
    }
    // Covariates: scaled on the rows the training inputs cover, as the signal; a missing cell
    // becomes its column's training mean (0 once scaled).
    let (covariates, covariate_scalers) = match cov_split {
        Some(mut sp) => {
            crate::spatial_covariates::fill_missing(&mut sp, train_rows);
            let (series, scalers) = sp.scale(train_rows, true);
            (Some(std::sync::Arc::new(series)), scalers)
        }
        None => (None, None),
    };
    let xs = Series { data: x.into(), rows: t, channels: n * f };
    let ys = Series { data: target.into(), rows: t, channels: n };
    let starts = [0, counts[0], counts[0] + counts[1]];
    let windows = |k: usize| Windows { series: xs.clone(), target: ys.clone(), marks: None, covariates: covariates.clone(), start: starts[k], end: starts[k] + counts[k] - 1 + l + hz, seq_len: l, pred_len: hz, stride: 1 };
    let (train, val, test) = (windows(0), windows(1), windows(2));
    let borders = [(train.start, train.end), (val.start, val.end), (test.start, test.end)];
    Ok(SpatialPrepared {
        dataset: cfg.dataset.to_ascii_lowercase(),
        sha256: crate::sha256_path(&path)?,
        path,
        graph_sha256: graph_path.as_deref().map(sha256_file).transpose()?,
        graph,
        freq: spec.map_or_else(|| step.map_or("?".into(), crate::source::align::freq_name), |s| s.freq.into()),
        rows: t,
        nodes: n,
        in_features: f,
        ids: signal.ids,
        steps_per_day,
        time_of_day: tod,
        day_of_week: dow,
        grid: cfg.grid,
        scaler,
        missing: signal.missing,
        zeros,
        split,
        borders,
        train,
        val,
        test,
        source,
        dynamic,
        covariate_scalers,
    })
}

/// A signal `[rows, n, c]` of a table's values, missing cells stored as 0 (the null value).
fn signal_of(mut values: Vec<f32>, t: usize, n: usize, c: usize, ids: Vec<String>) -> Signal {
    let missing = values.iter_mut().filter(|v| !v.is_finite()).map(|v| *v = 0.0).count();
    Signal { t, n, c, values, ids: Some(ids), missing }
}

/// Put the graph's nodes in the signal's order when both name their nodes by the same ids.
fn align_ids(g: &mut Graph, signal_ids: Option<&[String]>) -> Result<(), DataError> {
    let (Some(sig), Some(gids)) = (signal_ids, g.ids.as_ref()) else { return Ok(()) };
    if sig == gids.as_slice() {
        return Ok(());
    }
    let pos: std::collections::HashMap<&str, usize> = gids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let perm: Option<Vec<usize>> = sig.iter().map(|s| pos.get(s.as_str()).copied()).collect();
    let Some(perm) = perm else {
        let missing = sig.iter().find(|s| !pos.contains_key(s.as_str())).cloned().unwrap_or_default();
        return Err(DataError::file(&g.path, format!("the signal's node {missing:?} is not in the graph's ids")));
    };
    let n = g.n;
    let mut adj = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            adj[i * n + j] = g.adj[perm[i] * n + perm[j]];
        }
    }
    g.adj = adj;
    g.ids = Some(sig.to_vec());
    Ok(())
}
