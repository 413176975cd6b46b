//! The distillation methods behind one entry point: STemDist and DC (gradient matching,
//! `stemdist`), the coresets (`coreset`), distribution matching (`dm`), MTT and CondTSF (`mtt`).

use std::time::Instant;

use burn::tensor::Device;

use crate::config::DistillConfig;
use crate::shared::Distilled;
use crate::stdata::StData;

/// Distil `real` (its training windows) with `cfg.method`.
pub fn distill(real: &StData, cfg: &DistillConfig, device: &Device) -> anyhow::Result<Distilled> {
    cfg.check()?;
    let started = Instant::now();
    let mut out = match cfg.method.as_str() {
        "random" | "kcenter" | "herding" => crate::coreset::select(real, cfg),
        "stemdist" => crate::stemdist::gradient_matching(real, cfg, true, device),
        "dc" => crate::stemdist::gradient_matching(real, cfg, false, device),
        "dm" => crate::dm::distribution_matching(real, cfg, device),
        "mtt" | "condtsf" => crate::mtt::trajectory_matching(real, cfg, device)?,
        _ => unreachable!("checked"),
    };
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}


#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use crate::config::METHODS;
    use crate::evaluate::{evaluate, forecast, train_on};
    use crate::shared::{backbone, full_set, same_masks, st_shape};
    use crate::stdata::{batch_location_means, tensor2, tensor4};

    use crate::testutil::{small_data, tiny};

    #[test]
    fn stemdist_compresses_time_and_space_and_keeps_the_best_validated_set() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let d = distill(&real, &tiny(), &device).unwrap();
        let m = (0.2 * real.splits[0].len() as f64).round() as usize;
        assert_eq!((d.m, d.k, d.l, d.h, d.f), (m, 6, 12, 12, 3));
        assert_eq!(d.x.len(), m * 12 * 6 * 3);
        assert_eq!(d.y.len(), m * 12 * 6);
        assert_eq!(d.sizes.iter().sum::<usize>(), 24);
        assert!(d.assignment.iter().all(|&c| c < 6));
        assert_eq!(d.history.len(), 2);
        assert!(d.history.iter().all(|(_, dist)| dist.is_finite() && *dist > 0.0));
        assert!(d.val.is_some_and(|v| v.mae.is_finite() && v.points > 0));
        // A model trained on the distilled set forecasts every real location.
        let (model, val) = train_on(&d, &real, &tiny(), 2, 1, 5, &device);
        let loc = tensor2(real.location_means(), [real.nodes, 12 * 3], &Device::flex());
        let test = evaluate(&model.valid(), &real, &loc, 2, 0);
        assert_eq!(test.points > 0, true);
        assert!(val.rrse.is_finite() && test.rrse.is_finite());
    }

    #[test]
    fn random_baseline_keeps_real_windows_of_random_locations() {
        let real = small_data();
        let d = distill(&real, &DistillConfig { method: "random".into(), ..tiny() }, &Device::flex().autodiff()).unwrap();
        assert_eq!(d.k, 6);
        let kept: Vec<usize> = (0..24).filter(|&i| d.assignment[i] != usize::MAX).collect();
        assert_eq!(kept.len(), 6);
        // Each synthetic window is a real window of those locations: its first input row equals
        // some training row of the real series.
        let row0: Vec<f32> = (0..6).flat_map(|c| d.x[c * 3..c * 3 + 3].to_vec()).collect();
        let found = (0..real.train_rows()).any(|r| kept.iter().enumerate().all(|(c, &i)| real.x[(r * 24 + i) * 3..(r * 24 + i) * 3 + 3] == row0[c * 3..c * 3 + 3]));
        assert!(found);
        let full = full_set(&real);
        assert_eq!((full.m, full.k), (real.splits[0].len(), 24));
    }

    /// Every method runs through one command on tiny data: two-dimensional methods keep
    /// `temporal` of the windows at `spatial` of the locations, time-only ones `temporal x
    /// spatial` of the windows at every location; learned sets differ from their start.
    #[test]
    fn every_method_distils_to_its_shape() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let windows = real.splits[0].len();
        for method in METHODS {
            let cfg = DistillConfig { method: method.into(), outer: 1, inner: 2, ..tiny() };
            let d = distill(&real, &cfg, &device).unwrap_or_else(|e| panic!("{method}: {e}"));
            let (m, k) = match method {
                "stemdist" | "random" => (((0.2 * windows as f64).round()) as usize, 6),
                _ => (((0.05 * windows as f64).round()) as usize, 24),
            };
            assert_eq!((d.m, d.k), (m, k), "{method}");
            assert_eq!((d.x.len(), d.y.len()), (m * 12 * k * 3, m * 12 * k), "{method}");
            assert!(d.x.iter().chain(&d.y).all(|v| v.is_finite()), "{method}");
            assert_eq!(d.sizes.iter().sum::<usize>(), if method == "random" { 6 } else { 24 }, "{method}");
            if ["stemdist", "dc", "dm", "mtt", "condtsf"].contains(&method) {
                assert_eq!(d.history.len(), 1, "{method}");
                assert!(d.history[0].1.is_finite() && d.val.is_some(), "{method}");
            }
        }
        let bad = DistillConfig { method: "frepo".into(), ..tiny() };
        let err = distill(&real, &bad, &device).unwrap_err().to_string();
        assert!(err.contains("frepo") && err.contains("kcenter"), "{err}");
    }

    /// The same dropout seed gives the same masks (the matching gradient's two sides rely on
    /// it), and another seed other masks.
    #[test]
    fn same_masks_repeat_dropout() {
        let real = small_data();
        let device = Device::flex().autodiff();
        let model = backbone(&tiny()).init(st_shape(12, 12, 24, 3), None, &device);
        let all: Vec<usize> = (0..24).collect();
        let (x, _) = real.gather(&real.splits[0][..4], &all);
        let x = tensor4(x, [4, 12, 24, 3], &device);
        let loc = batch_location_means(x.clone());
        let run = |seed| {
            same_masks(seed, &device);
            model.forward_located(x.clone(), loc.clone()).into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
        };
        assert!(run(5) == run(5), "same seed, other masks");
        assert!(run(5) != run(6), "other seed, same masks");
    }

    /// Scoring in location groups: a group as large as the graph is the plain forecast; smaller
    /// groups still forecast every location (each once, finite), the same way every time.
    #[test]
    fn chunked_forecasts_cover_every_location() {
        let real = small_data();
        let device = Device::flex();
        device.seed(4);
        let model = backbone(&tiny()).init(st_shape(12, 12, 24, 3), None, &device);
        let loc = tensor2(real.location_means(), [24, 36], &device);
        let whole = forecast(&model, &real, &loc, 2, 0);
        assert_eq!(whole.len(), real.splits[2].len() * 12 * 24);
        assert_eq!(forecast(&model, &real, &loc, 2, 24), whole);
        let parts = forecast(&model, &real, &loc, 2, 7);
        assert_eq!(parts.len(), whole.len());
        assert!(parts.iter().all(|v| v.is_finite() && *v != 0.0));
        assert_ne!(parts, whole, "groups of 7 see other graphs");
        assert_eq!(forecast(&model, &real, &loc, 2, 7), parts);
    }
}
