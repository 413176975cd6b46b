//! Location clustering (STemDist step 1): k-means++ seeding and Lloyd iterations on each
//! location's feature vector (its whole normalised training input, flattened), Euclidean.
//! An empty cluster takes the member farthest from its centroid in the largest cluster; the
//! cluster sizes become loss weights.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The result of clustering `n` locations into `k` groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Cluster of every location.
    pub assignment: Vec<usize>,
    /// Members per cluster (all at least 1).
    pub sizes: Vec<usize>,
    /// Row-major `[k, d]` centroids.
    pub centroids: Vec<f32>,
    /// Lloyd iterations run.
    pub iterations: usize,
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ then Lloyd until no assignment changes (at most `max_iter`), seeded.
/// `features` is row-major `[n, d]`; `k` is clamped to `1..=n`.
pub fn kmeans(features: &[f32], d: usize, k: usize, max_iter: usize, seed: u64) -> Clustering {
    let n = features.len() / d.max(1);
    let k = k.clamp(1, n.max(1));
    let row = |i: usize| &features[i * d..(i + 1) * d];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // k-means++: the first centre uniformly, each next one with probability proportional to the
    // squared distance to the nearest chosen centre.
    let mut centres = vec![rng.random_range(0..n)];
    let mut nearest: Vec<f32> = (0..n).into_par_iter().map(|i| dist2(row(i), row(centres[0]))).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().map(|&v| v as f64).sum();
        let pick = if total > 0.0 {
            let mut u = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, &v) in nearest.iter().enumerate() {
                u -= v as f64;
                if u < 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            // Every point coincides with a centre: any other point (its cluster may end empty
            // and be repaired below).
            (0..n).find(|i| !centres.contains(i)).unwrap_or(0)
        };
        centres.push(pick);
        let c = row(pick);
        nearest.par_iter_mut().enumerate().for_each(|(i, v)| *v = v.min(dist2(row(i), c)));
    }
    let mut centroids: Vec<f32> = centres.iter().flat_map(|&c| row(c).to_vec()).collect();
    let mut assignment = vec![usize::MAX; n];
    let mut iterations = 0;
    loop {
        let next: Vec<usize> = (0..n)
            .into_par_iter()
            .map(|i| (0..k).map(|c| (c, dist2(row(i), &centroids[c * d..(c + 1) * d]))).min_by(|a, b| a.1.total_cmp(&b.1)).map_or(0, |m| m.0))
            .collect();
        let changed = next != assignment;
        assignment = next;
        repair_empty(features, d, k, &mut assignment, &centroids);
        centroids = means(features, d, k, &assignment);
        iterations += 1;
        if !changed || iterations >= max_iter {
            break;
        }
    }
    let mut sizes = vec![0; k];
    assignment.iter().for_each(|&c| sizes[c] += 1);
    Clustering { assignment, sizes, centroids, iterations }
}

/// Give every empty cluster the member of the largest cluster farthest from that cluster's
/// centroid.
fn repair_empty(features: &[f32], d: usize, k: usize, assignment: &mut [usize], centroids: &[f32]) {
    loop {
        let mut sizes = vec![0usize; k];
        assignment.iter().for_each(|&c| sizes[c] += 1);
        let Some(empty) = sizes.iter().position(|&s| s == 0) else { return };
        let largest = (0..k).max_by_key(|&c| (sizes[c], std::cmp::Reverse(c))).expect("k >= 1");
        let centre = &centroids[largest * d..(largest + 1) * d];
        let far = (0..assignment.len())
            .filter(|&i| assignment[i] == largest)
            .max_by(|&a, &b| dist2(&features[a * d..(a + 1) * d], centre).total_cmp(&dist2(&features[b * d..(b + 1) * d], centre)))
            .expect("the largest cluster has members");
        assignment[far] = empty;
    }
}

/// Mean of each cluster's members, `[k, d]`.
fn means(features: &[f32], d: usize, k: usize, assignment: &[usize]) -> Vec<f32> {
    let mut sum = vec![0f64; k * d];
    let mut count = vec![0usize; k];
    for (i, &c) in assignment.iter().enumerate() {
        count[c] += 1;
        for (s, &v) in sum[c * d..(c + 1) * d].iter_mut().zip(&features[i * d..(i + 1) * d]) {
            *s += v as f64;
        }
    }
    sum.chunks(d).zip(&count).flat_map(|(s, &c)| s.iter().map(move |v| (v / c.max(1) as f64) as f32)).collect()
}

/// Average the locations of each cluster: `values` row-major `[rows, n, f]` -> `[rows, k, f]`
/// (STemDist: cluster input = mean of members' normalised inputs, cluster target = mean of the
/// members' raw targets).
pub fn aggregate(values: &[f32], n: usize, f: usize, c: &Clustering) -> Vec<f32> {
    let k = c.sizes.len();
    let rows = values.len() / (n * f);
    let mut out = vec![0f32; rows * k * f];
    out.par_chunks_mut(k * f).zip(values.par_chunks(n * f)).for_each(|(o, v)| {
        for (i, &cl) in c.assignment.iter().enumerate() {
            for j in 0..f {
                o[cl * f + j] += v[i * f + j];
            }
        }
        for cl in 0..k {
            for j in 0..f {
                o[cl * f + j] /= c.sizes[cl] as f32;
            }
        }
    });
    out
}

/// STemDist's loss weights of a subset of clusters: `size / sum(sizes) * |subset|` (mean 1).
pub fn subset_weights(sizes: &[usize], subset: &[usize]) -> Vec<f32> {
    let total: usize = subset.iter().map(|&c| sizes[c]).sum();
    subset.iter().map(|&c| sizes[c] as f32 / total.max(1) as f32 * subset.len() as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tight blobs far apart are recovered exactly, whatever the seed.
    #[test]
    fn separated_blobs_are_recovered() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let centres = [[0.0f32, 0.0, 0.0], [50.0, 0.0, 10.0], [0.0, 60.0, -20.0]];
        let mut x = Vec::new();
        let mut truth = Vec::new();
        for i in 0..90 {
            let c = i % 3;
            truth.push(c);
            x.extend(centres[c].iter().map(|v| v + rng.random_range(-1.0..1.0)));
        }
        for seed in 0..5 {
            let r = kmeans(&x, 3, 3, 50, seed);
            assert_eq!(r.sizes.iter().sum::<usize>(), 90);
            assert_eq!({ let mut s = r.sizes.clone(); s.sort(); s }, vec![30, 30, 30]);
            // Same partition as the truth (labels may be permuted).
            for i in 0..90 {
                for j in 0..90 {
                    assert_eq!(truth[i] == truth[j], r.assignment[i] == r.assignment[j]);
                }
            }
        }
        assert_eq!(kmeans(&x, 3, 3, 50, 1), kmeans(&x, 3, 3, 50, 1));
    }

    /// Lloyd by hand on four points on a line: {0, 1} and {10, 11}, centroids 0.5 and 10.5.
    #[test]
    fn lloyd_converges_to_the_hand_computed_means() {
        let r = kmeans(&[0.0, 1.0, 10.0, 11.0], 1, 2, 20, 3);
        let mut c = r.centroids.clone();
        c.sort_by(f32::total_cmp);
        assert_eq!(c, vec![0.5, 10.5]);
        assert_eq!(r.assignment[0], r.assignment[1]);
        assert_ne!(r.assignment[1], r.assignment[2]);
    }

    /// Four identical points and one far point into three clusters: a cluster is left empty by
    /// Lloyd and takes a member of the largest one, so every cluster has a member.
    #[test]
    fn empty_clusters_are_repaired() {
        let x = [0.0f32, 0.0, 0.0, 0.0, 10.0];
        let r = kmeans(&x, 1, 3, 20, 0);
        assert!(r.sizes.iter().all(|&s| s >= 1), "{:?}", r.sizes);
        assert_eq!(r.sizes.iter().sum::<usize>(), 5);
        let far = r.assignment[4];
        assert_eq!(r.sizes[far], 1);
    }

    #[test]
    fn aggregation_averages_members_and_weights_have_mean_one() {
        let c = Clustering { assignment: vec![0, 1, 0], sizes: vec![2, 1], centroids: vec![], iterations: 0 };
        // Two rows, three locations, two features.
        let v = [1.0, 10.0, 5.0, 50.0, 3.0, 30.0, /* row 2 */ 0.0, 0.0, 1.0, 1.0, 2.0, 2.0];
        assert_eq!(aggregate(&v, 3, 2, &c), vec![2.0, 20.0, 5.0, 50.0, 1.0, 1.0, 1.0, 1.0]);
        let w = subset_weights(&[6, 2, 4], &[0, 2]);
        assert_eq!(w, vec![1.2, 0.8]);
    }
}
