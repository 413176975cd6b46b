//! STemDist (`../shared/docs/stemdist.md`): cluster the locations, initialise a synthetic set
//! from random windows of the clustered data, and learn its inputs AND targets by gradient
//! matching on a location-encoder MTGNN, one random subset of clusters at a time; the random
//! baseline (random windows x random locations) shares the file format and the evaluation.

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cluster::{aggregate, kmeans};
use crate::config::DistillConfig;
use crate::evaluate::keep_best;
use crate::matching::{SynGrad, distance, hessian_vector, param_grads};
use crate::shared::{Distilled, SynSet, backbone, constant, partition, progress, random_starts, same_masks, st_shape, subset_loss};
use crate::stdata::{StData, batch_location_means, tensor2, tensor3, tensor4};

/// Gradient matching: STemDist (`clustered`: k-means locations, K random subsets per step)
/// or DC (every real location, one subset, time-only ratio).
pub(crate) fn gradient_matching(real: &StData, cfg: &DistillConfig, clustered: bool, device: &Device) -> Distilled {
    let started = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (n, f, l, h) = (real.nodes, real.f, real.l, real.h);
    let (m, k) = match clustered {
        true => (((cfg.temporal * real.splits[0].len() as f64).round() as usize).max(1), ((cfg.spatial * n as f64).round() as usize).clamp(1, n)),
        false => (cfg.time_only_windows(real.splits[0].len()), n),
    };
    let starts = random_starts(real, m, &mut rng);
    let subsets = if clustered { cfg.subsets } else { 1 };
    // 1. Location clustering on each location's normalised training rows (the flattened
    //    stride-1 windows repeat each row up to l times: the same geometry, l times smaller).
    let (sizes, assignment, clustered_data) = if clustered {
        let rows = real.train_rows();
        // Features equal at every location (time of day, day of week) move no distance: left
        // out, the clustering is the same and cheaper.
        let varying: Vec<usize> = (0..f).filter(|&j| (0..rows).any(|r| (1..n).any(|i| real.x[(r * n + i) * f + j] != real.x[r * n * f + j]))).collect();
        let fv = varying.len().max(1);
        let feats: Vec<f32> = (0..n).flat_map(|i| (0..rows).flat_map(move |r| (0..fv).map(move |j| (r, i, j)))).map(|(r, i, j)| varying.get(j).map_or(0.0, |&j| real.x[(r * n + i) * f + j])).collect();
        let clusters = kmeans(&feats, rows * fv, k, cfg.kmeans_iters, cfg.seed);
        progress(&cfg.method, started, format_args!("{n} locations clustered into {k}"));
        let data = StData { x: aggregate(&real.x, n, f, &clusters), y: aggregate(&real.y, n, 1, &clusters), nodes: k, rows: real.rows, f, l, h, splits: real.splits.clone(), mean: real.mean, std: real.std };
        (clusters.sizes, clusters.assignment, Some(data))
    } else {
        (vec![1; n], (0..n).collect(), None)
    };
    let data = clustered_data.as_ref().unwrap_or(real);
    // 2. The synthetic set starts as random windows of the (clustered) data.
    let all: Vec<usize> = (0..k).collect();
    let (sx, sy) = data.gather(&starts, &all);
    let mut syn = SynSet { x: Param::from_tensor(tensor4(sx, [m, l, k, f], device)), y: Param::from_tensor(tensor3(sy, [m, h, k], device)) };
    let mut syn_optim: ModuleOptimizer = AdamConfig::new().init();
    let real_loc = tensor2(data.location_means(), [k, l * f], device);
    let shape = st_shape(l, h, k, f);
    let mut history = Vec::new();
    let snapshot = |syn: &SynSet, history: &[(usize, f64)]| Distilled {
        method: cfg.method.clone(),
        x: syn.x.val().into_data().convert::<f32>().try_into_vec().expect("f32"),
        y: syn.y.val().into_data().convert::<f32>().try_into_vec().expect("f32"),
        m,
        k,
        l,
        h,
        f,
        sizes: sizes.clone(),
        assignment: assignment.clone(),
        mean: real.mean,
        std: real.std,
        history: history.to_vec(),
        val: None,
        seconds: 0.0,
    };
    let mut best: Option<Distilled> = None;
    for it in 0..cfg.outer {
        device.seed(cfg.seed.wrapping_add(1 + it as u64));
        let mut model = backbone(cfg).init(shape, None, device);
        let mut model_optim: ModuleOptimizer = AdamConfig::new().init();
        let mut dist_sum = 0.0;
        let mut dist_n = 0;
        for step in 0..cfg.inner {
            let batch: Vec<usize> = (0..cfg.batch.min(data.splits[0].len())).map(|_| data.splits[0][rng.random_range(0..data.splits[0].len())]).collect();
            let (xr, yr) = data.gather(&batch, &all);
            let xr = tensor4(xr, [batch.len(), l, k, f], device);
            let yr = tensor3(yr, [batch.len(), h, k], device);
            for subset in partition(k, subsets, &mut rng) {
                let g_real = param_grads(&model, &subset_loss(&model, xr.clone(), yr.clone(), real_loc.clone(), &subset, &sizes).backward());
                let (sxv, syv) = (syn.x.val().detach(), syn.y.val().detach());
                // The synthetic gradient and both sides of its derivative see the same masks.
                let masks: u64 = rng.random();
                same_masks(masks, device);
                let g_syn = param_grads(&model, &subset_loss(&model, sxv.clone(), syv.clone(), batch_location_means(sxv.clone()), &subset, &sizes).backward());
                let (d, v) = distance(&g_real, &g_syn);
                dist_sum += d;
                dist_n += 1;
                // Fresh leaves for each side (a leaf's tape is consumed by its backward).
                let sx_data = sxv.to_data();
                let sy_data = syv.to_data();
                let hv = hessian_vector(&model, &v, |mm| {
                    same_masks(masks, device);
                    let x = Tensor::<4>::from_data(sx_data.clone(), device).require_grad();
                    let y = Tensor::<3>::from_data(sy_data.clone(), device).require_grad();
                    let loss = subset_loss(mm, x.clone(), y.clone(), batch_location_means(x.clone()), &subset, &sizes);
                    (loss, vec![SynGrad::R4(x), SynGrad::R3(y)])
                });
                let mut grads = GradientsParams::new();
                grads.register(syn.x.id, tensor4(hv[0].clone(), [m, l, k, f], device));
                grads.register(syn.y.id, tensor3(hv[1].clone(), [m, h, k], device));
                syn = syn_optim.step(cfg.lr_data, syn, grads);
            }
            if step + 1 == cfg.inner {
                break;
            }
            // Train the model on the (detached) synthetic set, subset by subset.
            let (sx, sy) = (syn.x.val().detach(), syn.y.val().detach());
            let sloc = constant(batch_location_means(sx.clone()));
            for _ in 0..cfg.model_epochs {
                for subset in partition(k, subsets, &mut rng) {
                    let loss = subset_loss(&model, sx.clone(), sy.clone(), sloc.clone(), &subset, &sizes);
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = model_optim.step(cfg.lr_model, model, grads);
                }
            }
        }
        history.push((it + 1, dist_sum / dist_n.max(1) as f64));
        progress(&cfg.method, started, format_args!("outer {}/{}: mean matching distance {:.4}", it + 1, cfg.outer, history[it].1));
        if (it + 1) % cfg.eval_every.max(1) == 0 || it + 1 == cfg.outer {
            keep_best(&mut best, snapshot(&syn, &history), real, cfg, it, device);
        }
    }
    let mut out = best.unwrap_or_else(|| snapshot(&syn, &history));
    out.history = history;
    out
}

