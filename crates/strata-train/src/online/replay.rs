//! The replay memory of experience replay (ER) and DER++: a reservoir of past stream windows
//! (Vitter's algorithm R, as the continual-learning code FSNet builds on: every window seen so
//! far has the same chance `size / seen` to be in memory), each with the forecast the model made
//! for it when it was stored (DER++'s "logits").
//!
//! Random choices come from the run seed and the stream step, not from a generator's state, so a
//! resumed run draws exactly what the uninterrupted one drew.

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One remembered window: its index in the stream and the forecast stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub window: usize,
    pub forecast: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reservoir {
    pub size: usize,
    /// Windows offered so far.
    pub seen: usize,
    pub items: Vec<Memory>,
}

fn rng(seed: u64, step: usize, salt: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt)
}

impl Reservoir {
    pub fn new(size: usize) -> Self {
        Reservoir { size, seen: 0, items: vec![] }
    }

    /// Offer a window (at stream step `step`): kept while there is room, then in place of a
    /// random one with probability `size / seen`.
    pub fn offer(&mut self, item: Memory, seed: u64, step: usize) {
        self.seen += 1;
        if self.items.len() < self.size {
            self.items.push(item);
            return;
        }
        let j = rng(seed, step, 0x7265_7365_7276).random_range(0..self.seen);
        if j < self.size {
            self.items[j] = item;
        }
    }

    /// `k` distinct memories drawn at random (all when fewer are held).
    pub fn draw(&self, k: usize, seed: u64, step: usize) -> Vec<&Memory> {
        let k = k.min(self.items.len());
        sample(&mut rng(seed, step, 0x6472_6177), self.items.len(), k).into_iter().map(|i| &self.items[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(w: usize) -> Memory {
        Memory { window: w, forecast: vec![w as f32] }
    }

    #[test]
    fn reservoir_keeps_the_first_then_samples_uniformly() {
        let mut r = Reservoir::new(50);
        for w in 0..50 {
            r.offer(mem(w), 1, w);
        }
        assert_eq!(r.items.iter().map(|m| m.window).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
        // Over many streams of 1000 windows, each window is kept with probability 50/1000:
        // the early and the late halves are equally represented.
        let (mut early, mut late) = (0usize, 0usize);
        for seed in 0..200 {
            let mut r = Reservoir::new(50);
            for w in 0..1000 {
                r.offer(mem(w), seed, w);
            }
            assert_eq!(r.items.len(), 50);
            early += r.items.iter().filter(|m| m.window < 500).count();
            late += r.items.iter().filter(|m| m.window >= 500).count();
        }
        let share = early as f64 / (early + late) as f64;
        assert!((share - 0.5).abs() < 0.03, "{share}");
    }

    #[test]
    fn draws_are_distinct_and_repeatable() {
        let mut r = Reservoir::new(20);
        for w in 0..20 {
            r.offer(mem(w), 3, w);
        }
        let a: Vec<usize> = r.draw(8, 3, 77).iter().map(|m| m.window).collect();
        let b: Vec<usize> = r.draw(8, 3, 77).iter().map(|m| m.window).collect();
        assert_eq!(a, b);
        let mut u = a.clone();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 8);
        assert_eq!(r.draw(100, 3, 1).len(), 20);
    }
}
