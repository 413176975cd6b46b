//! Learning-rate schedules of the reference code bases, as pure functions of the step.
//!
//! The epoch schedules follow Time-Series-Library's `adjust_learning_rate`, which is called
//! with `epoch + 1` after each epoch: the first two epochs of `type1` both use the base rate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// TSLib/DLinear: halve every epoch (epoch k >= 1 uses `lr * 0.5^(k-1)`).
    Type1,
    /// PatchTST: base rate for epochs 0..3, then `lr * 0.9^(k-3)`.
    Type3,
    /// TSLib cosine: epoch k >= 1 uses `lr/2 * (1 + cos(pi k / epochs))`.
    Cosine,
    /// PyTorch `OneCycleLR` stepped every batch (PatchTST's `TST`): cosine warm-up from
    /// `lr/25` to `lr` over `pct_start` of the steps, then cosine down to `lr/25/1e4`.
    Onecycle,
    /// PyTorch `MultiStepLR` stepped every epoch (BasicTS): epoch k uses
    /// `lr * gamma^(number of milestones <= k)`.
    Multistep,
}

/// Milestones and factor of the `multistep` schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steps<'a> {
    pub milestones: &'a [usize],
    pub gamma: f64,
}

/// Rate for `step` (global, 0-based) of `epoch` (0-based).
#[allow(clippy::too_many_arguments)]
pub fn learning_rate(s: Schedule, lr: f64, epoch: usize, epochs: usize, step: usize, total_steps: usize, pct_start: f64, steps: Steps) -> f64 {
    match s {
        Schedule::Multistep => lr * steps.gamma.powi(steps.milestones.iter().filter(|&&m| m <= epoch).count() as i32),
        Schedule::Constant => lr,
        Schedule::Type1 => lr * 0.5f64.powi(epoch.saturating_sub(1) as i32),
        Schedule::Type3 => {
            if epoch < 3 {
                lr
            } else {
                lr * 0.9f64.powi((epoch - 3) as i32)
            }
        }
        Schedule::Cosine => {
            if epoch == 0 {
                lr
            } else {
                lr / 2.0 * (1.0 + (epoch as f64 / epochs as f64 * std::f64::consts::PI).cos())
            }
        }
        Schedule::Onecycle => one_cycle(lr, step, total_steps, pct_start),
    }
}

/// A parameter group's learning rate over a run: an epoch schedule of the reference code bases,
/// a linear warm-up then cosine decay (uni2ts's pretraining), or a constant rate.
#[derive(Debug, Clone, PartialEq)]
pub enum Rate {
    /// [`learning_rate`] of `schedule` with its settings.
    Epochs { schedule: Schedule, lr: f64, epochs: usize, pct_start: f64, milestones: Vec<usize>, gamma: f64 },
    /// [`warmup_cosine`].
    WarmupCosine { lr: f64, warmup: usize, steps: usize },
    Constant(f64),
}

impl Rate {
    /// The rate of global step `step` (0-based) in round `round` of a run of `total` steps.
    pub fn at(&self, round: usize, step: usize, total: usize) -> f64 {
        match self {
            Rate::Epochs { schedule, lr, epochs, pct_start, milestones, gamma } => {
                learning_rate(*schedule, *lr, round, *epochs, step, total, *pct_start, Steps { milestones, gamma: *gamma })
            }
            Rate::WarmupCosine { lr, warmup, steps } => warmup_cosine(*lr, *warmup, *steps, step),
            Rate::Constant(lr) => *lr,
        }
    }
}

/// Linear warm-up to `lr` over `warmup` steps, then cosine decay to 0 at `steps`.
pub fn warmup_cosine(lr: f64, warmup: usize, steps: usize, step: usize) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
    lr * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

fn one_cycle(max_lr: f64, step: usize, total: usize, pct_start: f64) -> f64 {
    let initial = max_lr / 25.0;
    let min = initial / 1e4;
    let anneal = |start: f64, end: f64, pct: f64| end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0);
    let phase1_end = pct_start * total as f64 - 1.0;
    let s = step as f64;
    if s <= phase1_end {
        anneal(initial, max_lr, s / phase1_end)
    } else {
        anneal(max_lr, min, (s - phase1_end) / (total as f64 - 1.0 - phase1_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_lr(s: Schedule, e: usize) -> f64 {
        learning_rate(s, 1e-2, e, 10, 0, 100, 0.3, NO_STEPS)
    }

    const NO_STEPS: Steps = Steps { milestones: &[], gamma: 0.5 };

    #[test]
    fn multistep_matches_pytorch() {
        // MultiStepLR(milestones=[1, 50], gamma=0.5), stepped after each epoch: epoch 0 -> lr,
        // epochs 1..49 -> lr/2, epoch 50.. -> lr/4.
        let st = Steps { milestones: &[1, 50], gamma: 0.5 };
        let lr = |e| learning_rate(Schedule::Multistep, 2e-3, e, 100, 0, 1, 0.3, st);
        assert_eq!([lr(0), lr(1), lr(49), lr(50), lr(99)], [2e-3, 1e-3, 1e-3, 5e-4, 5e-4]);
    }

    #[test]
    fn type1_matches_tslib_sequence() {
        let got: Vec<f64> = (0..5).map(|e| epoch_lr(Schedule::Type1, e)).collect();
        assert_eq!(got, [1e-2, 1e-2, 5e-3, 2.5e-3, 1.25e-3]);
    }

    #[test]
    fn type3_and_cosine_by_hand() {
        assert_eq!(epoch_lr(Schedule::Type3, 2), 1e-2);
        assert!((epoch_lr(Schedule::Type3, 5) - 1e-2 * 0.81).abs() < 1e-15);
        assert!((epoch_lr(Schedule::Cosine, 5) - 5e-3).abs() < 1e-15);
    }

    #[test]
    fn one_cycle_matches_pytorch() {
        // torch.optim.lr_scheduler.OneCycleLR(max_lr=0.01, total_steps=100, pct_start=0.3):
        // step 0 -> 0.0004, step 29 -> 0.01 (peak), step 99 -> 4e-8.
        let lr = |s| learning_rate(Schedule::Onecycle, 1e-2, 0, 1, s, 100, 0.3, NO_STEPS);
        assert!((lr(0) - 4e-4).abs() < 1e-12);
        assert!((lr(29) - 1e-2).abs() < 1e-12);
        assert!((lr(99) - 4e-8).abs() < 1e-15);
        // Half-way through phase 1 the rate is the mean of its ends.
        assert!((lr(14) - (anneal_mid(4e-4, 1e-2, 14.0 / 29.0))).abs() < 1e-12);
    }

    fn anneal_mid(a: f64, b: f64, pct: f64) -> f64 {
        b + (a - b) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
    }
}
