//! DM (distribution matching, Zhao & Bilen): learn synthetic inputs so that, through many
//! randomly initialised networks, their mean embedding equals that of real batches. The
//! embedding is the location-encoder MTGNN's last hidden layer at every location; the targets
//! stay those of the real windows the set started from (DM learns the inputs, as it learns
//! images with fixed labels). Time only: every location, `temporal x spatial` of the windows.
//! The loss is first order in the synthetic data: one backward pass per iteration.

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::stdata::{StData, batch_location_means, tensor2, tensor3, tensor4};
use crate::config::DistillConfig;
use crate::evaluate::keep_best;
use crate::shared::{Distilled, SynSet, backbone, progress, random_starts, st_shape};

/// The squared distance between the mean embeddings of a real batch and the synthetic set
/// under `model`.
pub(crate) fn mmd_loss(model: &strata_models::MTGNN, xr: Tensor<4>, real_loc: Tensor<2>, xs: Tensor<4>) -> Tensor<1> {
    let er = model.embed_located(xr, real_loc).mean_dim(0).detach();
    let es = model.embed_located(xs.clone(), batch_location_means(xs)).mean_dim(0);
    (er - es).powi_scalar(2).sum()
}

pub fn distribution_matching(real: &StData, cfg: &DistillConfig, device: &Device) -> Distilled {
    let started = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (n, f, l, h) = (real.nodes, real.f, real.l, real.h);
    let m = cfg.time_only_windows(real.splits[0].len());
    let starts = random_starts(real, m, &mut rng);
    let all: Vec<usize> = (0..n).collect();
    let init = Distilled::of_windows("dm", real, &starts, &all);
    let mut syn = SynSet { x: Param::from_tensor(tensor4(init.x.clone(), [m, l, n, f], device)), y: Param::from_tensor(tensor3(init.y.clone(), [m, h, n], device).detach()) };
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let real_loc = tensor2(real.location_means(), [n, l * f], device);
    let shape = st_shape(l, h, n, f);
    let train = &real.splits[0];
    let (mut history, mut best) = (Vec::new(), None);
    for it in 0..cfg.outer {
        let mut sum = 0.0;
        for step in 0..cfg.inner {
            device.seed(cfg.seed.wrapping_add((1 + it * cfg.inner + step) as u64));
            let model = backbone(cfg).init(shape, None, device);
            let batch: Vec<usize> = (0..cfg.batch.min(train.len())).map(|_| train[rng.random_range(0..train.len())]).collect();
            let (xr, _) = real.gather(&batch, &all);
            let loss = mmd_loss(&model, tensor4(xr, [batch.len(), l, n, f], device), real_loc.clone(), syn.x.val());
            let value: f32 = loss.clone().into_scalar();
            sum += value as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &syn);
            syn = optim.step(cfg.lr_data, syn, grads);
        }
        history.push((it + 1, sum / cfg.inner.max(1) as f64));
        progress(&cfg.method, started, format_args!("outer {}/{}: mean embedding distance {:.4}", it + 1, cfg.outer, history[it].1));
        if (it + 1) % cfg.eval_every.max(1) == 0 || it + 1 == cfg.outer {
            let mut cand = init.clone();
            cand.x = syn.x.val().into_data().convert::<f32>().try_into_vec().expect("f32");
            cand.history = history.clone();
            keep_best(&mut best, cand, real, cfg, it, device);
        }
    }
    let mut out = best.unwrap_or(init);
    out.history = history;
    out
}
