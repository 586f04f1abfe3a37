//! k-means++ seeding and Lloyd iterations: the deterministic starting point of the mixture fit
//! ([`super::gmm`]), one per candidate k.

use rayon::prelude::*;

use super::vector::Point;
use crate::rng::Rng;

/// k-means++ restarts per k; the lowest inertia wins.
const RESTARTS: u64 = 3;
const MAX_ITERATIONS: usize = 100;
/// Points per parallel chunk: fixed, so chunk boundaries (and therefore floating-point sums) do not
/// depend on the number of threads.
const CHUNK: usize = 16_384;

/// Index and squared distance of the nearest centroid; ties go to the lower index.
pub(crate) fn nearest(centroids: &[Point], p: &Point) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = (p - c).norm_squared();
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// The centroids of the best (lowest inertia) of [`RESTARTS`] k-means++ runs on `points` (in their
/// given order, which must be deterministic). Every draw comes from `seed` and `k`.
pub(crate) fn centroids(points: &[Point], k: usize, seed: u64) -> Vec<Point> {
    let runs: Vec<(Vec<Point>, f64)> = (0..RESTARTS)
        .into_par_iter()
        .map(|r| lloyd(points, k, seed, k as u64 * 1000 + r))
        .collect();
    runs.into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
        .unwrap_or_default()
}

/// Distinct points, counted up to `limit` (k cannot exceed it).
pub(crate) fn distinct_points(points: &[Point], limit: usize) -> usize {
    let mut seen: Vec<&Point> = Vec::new();
    for p in points {
        if !seen.contains(&p) {
            seen.push(p);
            if seen.len() >= limit {
                break;
            }
        }
    }
    seen.len()
}

/// One k-means++ seeding plus Lloyd iterations; returns centroids and inertia.
fn lloyd(points: &[Point], k: usize, seed: u64, stream: u64) -> (Vec<Point>, f64) {
    let mut rng = Rng::new(seed, 0x6b6d_6561_6e73 ^ stream);
    let mut centroids = vec![points[rng.below(points.len() as u64) as usize]];
    let mut d2: Vec<f64> = points
        .iter()
        .map(|p| (p - centroids[0]).norm_squared())
        .collect();
    while centroids.len() < k {
        let total: f64 = d2.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            d2.iter()
                .position(|&d| {
                    target -= d;
                    target < 0.0
                })
                .unwrap_or(points.len() - 1)
        } else {
            rng.below(points.len() as u64) as usize
        };
        let c = points[next];
        centroids.push(c);
        for (d, p) in d2.iter_mut().zip(points) {
            *d = d.min((p - c).norm_squared());
        }
    }
    let mut labels = vec![usize::MAX; points.len()];
    let mut inertia = f64::INFINITY;
    for _ in 0..MAX_ITERATIONS {
        let assigned: Vec<(usize, f64)> = points
            .par_chunks(CHUNK)
            .flat_map_iter(|c| c.iter().map(|p| nearest(&centroids, p)))
            .collect();
        let changed = assigned
            .iter()
            .zip(&labels)
            .any(|((new, _), old)| new != old);
        inertia = assigned.iter().map(|a| a.1).sum();
        labels = assigned.iter().map(|a| a.0).collect();
        if !changed {
            break;
        }
        let mut sums = vec![Point::zeros(); k];
        let mut counts = vec![0usize; k];
        for (p, &l) in points.iter().zip(&labels) {
            sums[l] += p;
            counts[l] += 1;
        }
        for j in 0..k {
            if counts[j] > 0 {
                centroids[j] = sums[j] / counts[j] as f64;
            } else {
                // An emptied cluster restarts at the point farthest from its centroid.
                let far = assigned
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
                    .map_or(0, |(i, _)| i);
                centroids[j] = points[far];
            }
        }
    }
    (centroids, inertia)
}
