//! The storage-free clustering core: standardised per-request feature vectors, k-means++ with k
//! chosen by the silhouette score, and assignment of any request to the nearest centroid.
//!
//! nalgebra (already a dependency) carries the small fixed-size vector arithmetic; a clustering
//! crate (linfa) would add a large dependency tree for ~150 lines of well-understood code and would
//! not give us control over determinism across thread counts, which we need (see [`Model::assign_all`]).

use std::ops::RangeInclusive;

use nalgebra::SVector;
use rayon::prelude::*;
use serde::Serialize;

use crate::simulation::rng::Rng;
use crate::{Error, Result};

/// Number of features per request.
pub const DIMS: usize = 4;
/// A standardised feature vector.
pub type Point = SVector<f64, DIMS>;

/// Points used for the silhouette score of each candidate k (it is quadratic in the points).
const SILHOUETTE_POINTS: usize = 2_000;
/// Weights of the standardised features (log prompt, log output, prefix share, log session depth).
/// The session depth is secondary: it tells conversational traffic from single-shot traffic, but at
/// full weight its spread within one chat app (sessions of 1 to 10 turns) outweighs the difference
/// between two single-shot shapes (observed on the generated lake: chat split in two, code and
/// summarization merged).
pub const WEIGHTS: [f64; DIMS] = [1.0, 1.0, 1.0, 0.5];
/// k is the largest candidate whose silhouette is within this of the best one.
pub const SILHOUETTE_TOLERANCE: f64 = 0.05;
/// k-means++ restarts per k; the lowest inertia wins.
const RESTARTS: u64 = 3;
const MAX_ITERATIONS: usize = 100;
/// Points per parallel chunk: fixed, so chunk boundaries (and therefore floating-point sums) do not
/// depend on the number of threads.
const CHUNK: usize = 16_384;

/// Per-request features, in the units they are clustered in. Logs because token counts are
/// lognormal-ish and a 2,000- vs 4,000-token prompt differ as much as 200 vs 400 for serving.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FeatureVector {
    /// ln(1 + prompt tokens).
    pub log_prompt: f64,
    /// ln(1 + completion tokens).
    pub log_output: f64,
    /// Share of the prompt in a prefix already seen in the window (0..1).
    pub prefix_share: f64,
    /// ln(number of requests in the request's session), 0 without a session.
    pub log_depth: f64,
}

impl FeatureVector {
    /// Features of one request; negative counts are treated as 0, the share is clipped to 0..1.
    pub fn new(prompt_tokens: i64, completion_tokens: i64, prefix_share: f64, depth: i64) -> Self {
        let share = if prefix_share.is_finite() {
            prefix_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        FeatureVector {
            log_prompt: (prompt_tokens.max(0) as f64).ln_1p(),
            log_output: (completion_tokens.max(0) as f64).ln_1p(),
            prefix_share: share,
            log_depth: (depth.max(1) as f64).ln(),
        }
    }

    fn point(&self) -> Point {
        Point::new(
            self.log_prompt,
            self.log_output,
            self.prefix_share,
            self.log_depth,
        )
    }

    /// Prompt tokens in original units.
    pub fn prompt_tokens(&self) -> f64 {
        self.log_prompt.exp_m1()
    }

    /// Completion tokens in original units.
    pub fn completion_tokens(&self) -> f64 {
        self.log_output.exp_m1()
    }

    /// Session depth in original units.
    pub fn session_depth(&self) -> f64 {
        self.log_depth.exp()
    }
}

/// A fitted clustering. Class ids are `1..=k` (0 means "unknown" in simulator traces), ordered by
/// centroid prompt length then output length, so ids do not depend on the k-means++ draw order.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    mean: Point,
    scale: Point,
    /// Centroids in standardised units, index = class id − 1.
    centroids: Vec<Point>,
    /// Silhouette score of every k tried, for the report.
    pub silhouettes: Vec<(usize, f64)>,
}

impl Model {
    /// A model with no classes (an empty window); [`Model::assign`] then answers 1.
    pub fn empty() -> Model {
        Model {
            mean: Point::zeros(),
            scale: Point::repeat(1.0),
            centroids: Vec::new(),
            silhouettes: Vec::new(),
        }
    }

    pub fn k(&self) -> usize {
        self.centroids.len()
    }

    fn standardise(&self, f: &FeatureVector) -> Point {
        (f.point() - self.mean).component_div(&self.scale)
    }

    /// The class id (1..=k) of the nearest centroid; ties go to the lower id.
    pub fn assign(&self, f: &FeatureVector) -> u16 {
        nearest(&self.centroids, &self.standardise(f)).0 as u16 + 1
    }

    /// Assigns many requests in parallel; the result is identical for any thread count.
    pub fn assign_all(&self, features: &[FeatureVector]) -> Vec<u16> {
        features
            .par_chunks(CHUNK)
            .flat_map_iter(|c| c.iter().map(|f| self.assign(f)))
            .collect()
    }

    /// The centroid of class `id` (1..=k) in feature units (logs undone by the accessors).
    pub fn centroid(&self, id: u16) -> Option<FeatureVector> {
        let c = self.centroids.get(usize::from(id).checked_sub(1)?)?;
        let p = c.component_mul(&self.scale) + self.mean;
        Some(FeatureVector {
            log_prompt: p[0],
            log_output: p[1],
            prefix_share: p[2],
            log_depth: p[3],
        })
    }
}

/// Index and squared distance of the nearest centroid.
fn nearest(centroids: &[Point], p: &Point) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = (p - c).norm_squared();
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// Clusters `sample` (in its given order, which must be deterministic) with k-means++ for every k in
/// `k_range`, keeping the largest k whose silhouette score is within [`SILHOUETTE_TOLERANCE`] of the
/// best (see there why). Features are
/// standardised (z-scores times [`WEIGHTS`]; a constant feature keeps scale 1 so it drops out).
pub fn cluster(
    sample: &[FeatureVector],
    k_range: RangeInclusive<usize>,
    seed: u64,
) -> Result<Model> {
    if sample.is_empty() {
        return Err(Error::Setting {
            key: "workloads".into(),
            message: "no requests to cluster in the window".into(),
        });
    }
    if k_range.is_empty() || *k_range.start() == 0 {
        return Err(Error::Setting {
            key: "workloads.k".into(),
            message: format!("k range {k_range:?} is empty or starts at 0"),
        });
    }
    let n = sample.len() as f64;
    let raw: Vec<Point> = sample.iter().map(FeatureVector::point).collect();
    let mean = raw.iter().fold(Point::zeros(), |a, p| a + p) / n;
    let var = raw.iter().fold(Point::zeros(), |a, p| {
        a + (p - mean).component_mul(&(p - mean))
    }) / n;
    let scale = var
        .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
        .component_div(&Point::from(WEIGHTS));
    let points: Vec<Point> = raw
        .iter()
        .map(|p| (p - mean).component_div(&scale))
        .collect();
    let distinct = distinct_points(&points, *k_range.end());
    let silhouette_points = &points[..points.len().min(SILHOUETTE_POINTS)];
    let mut fits = Vec::new();
    let mut silhouettes = Vec::new();
    for k in k_range.clone() {
        if k > distinct {
            break;
        }
        let centroids = (0..RESTARTS)
            .map(|r| lloyd(&points, k, seed, k as u64 * 1000 + r))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
            .unwrap_or_default();
        let score = if k == 1 {
            0.0
        } else {
            silhouette(silhouette_points, &centroids)
        };
        silhouettes.push((k, score));
        fits.push((k, score, centroids));
    }
    // The finest partition whose separation is about as good as the best: silhouette favours the
    // top-level split when one shape sits far from the others (a session-heavy chat app), which
    // would hide distinct shapes among the rest; an over-split class is merely reported twice.
    let top = fits.iter().map(|f| f.1).fold(f64::NEG_INFINITY, f64::max);
    let best = fits
        .into_iter()
        .filter(|f| f.1 >= top - SILHOUETTE_TOLERANCE)
        .max_by_key(|f| f.0)
        .map(|f| (f.1, f.2));
    let (_, mut centroids) = best.unwrap_or_else(|| (0.0, vec![points[0]]));
    centroids.sort_by(|a, b| {
        let (a, b) = (a.component_mul(&scale), b.component_mul(&scale));
        a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1]))
    });
    Ok(Model {
        mean,
        scale,
        centroids,
        silhouettes,
    })
}

/// Distinct points, counted up to `limit` (k cannot exceed it).
fn distinct_points(points: &[Point], limit: usize) -> usize {
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

/// Mean silhouette of `points` under nearest-centroid labels (exact pairwise distances).
fn silhouette(points: &[Point], centroids: &[Point]) -> f64 {
    let k = centroids.len();
    let labels: Vec<usize> = points.iter().map(|p| nearest(centroids, p).0).collect();
    let mut sizes = vec![0usize; k];
    for &l in &labels {
        sizes[l] += 1;
    }
    let scores: Vec<f64> = points
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut sum = vec![0.0; k];
            for (q, &l) in points.iter().zip(&labels) {
                sum[l] += (p - q).norm();
            }
            let own = labels[i];
            if sizes[own] <= 1 {
                return 0.0;
            }
            let a = sum[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&j| j != own && sizes[j] > 0)
                .map(|j| sum[j] / sizes[j] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() || a.max(b) == 0.0 {
                0.0
            } else {
                (b - a) / a.max(b)
            }
        })
        .collect();
    scores.iter().sum::<f64>() / points.len() as f64
}

/// Adjusted Rand index of two labellings of the same items (Hubert & Arabie); 1 = identical
/// partitions, ≈0 = chance agreement.
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    use std::collections::BTreeMap;
    let mut table: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    let mut rows: BTreeMap<u32, u64> = BTreeMap::new();
    let mut cols: BTreeMap<u32, u64> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let pairs = |n: &u64| (*n as f64) * (*n as f64 - 1.0) / 2.0;
    let index: f64 = table.values().map(pairs).sum();
    let sa: f64 = rows.values().map(pairs).sum();
    let sb: f64 = cols.values().map(pairs).sum();
    let total = pairs(&(a.len().min(b.len()) as u64));
    let expected = sa * sb / total.max(1.0);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64) -> Vec<FeatureVector> {
        let mut rng = Rng::new(seed, 1);
        (0..3000)
            .map(|i| {
                let (p, o) = [(100.0, 200.0), (5000.0, 200.0), (1500.0, 900.0)][i % 3];
                let p = p * (0.2 * rng.normal()).exp();
                let o = o * (0.2 * rng.normal()).exp();
                FeatureVector::new(p as i64, o as i64, 0.0, 1)
            })
            .collect()
    }

    #[test]
    fn finds_three_blobs_and_orders_ids_by_prompt() {
        let data = blobs(7);
        let model = cluster(&data, 2..=6, 42).unwrap();
        assert_eq!(model.k(), 3);
        let labels: Vec<u32> = model.assign_all(&data).iter().map(|&c| c.into()).collect();
        let truth: Vec<u32> = (0..data.len() as u32).map(|i| i % 3).collect();
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
        let p: Vec<f64> = (1..=3)
            .map(|id| model.centroid(id).unwrap().prompt_tokens())
            .collect();
        assert!(p[0] < p[1] && p[1] < p[2], "{p:?}");
        assert_eq!(model.assign(&FeatureVector::new(100, 200, 0.0, 1)), 1);
    }

    #[test]
    fn identical_for_any_thread_count() {
        let data = blobs(3);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let m = cluster(&data, 2..=5, 9).unwrap();
                    (format!("{m:?}"), m.assign_all(&data))
                })
        };
        assert_eq!(run(1), run(4));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(cluster(&[], 2..=10, 1).is_err());
        let same = vec![FeatureVector::new(10, 10, 0.0, 1); 50];
        let m = cluster(&same, 2..=10, 1).unwrap();
        assert_eq!(m.k(), 1);
        assert_eq!(m.assign(&same[0]), 1);
        let nan = FeatureVector::new(-5, 0, f64::NAN, -3);
        assert_eq!(nan.prefix_share, 0.0);
        assert_eq!(m.assign(&nan), 1);
    }

    #[test]
    fn ari_basics() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 7, 7]) - 1.0).abs() < 1e-12);
        assert!(adjusted_rand_index(&[0, 1, 0, 1], &[0, 0, 1, 1]) < 0.01);
    }
}
