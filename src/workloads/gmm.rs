//! The storage-free clustering core: a Gaussian mixture with full covariances fitted by EM on the
//! standardised per-request features of the sample, the number of components chosen by BIC, the
//! components grouped into classes by the modes of the fitted density, and assignment of any
//! request to the class with the highest posterior.
//!
//! **Why a mixture rather than k-means.** Workload shapes are elongated and correlated in the
//! feature space: a chat app's outputs spread over a decade (log-σ 0.7) while its prompts stay
//! short; a code app's outputs are tight. k-means partitions space into equal-radius Voronoi cells
//! and the silhouette score favours round clusters, so they cut a broad shape in two before they
//! separate two compact neighbours (observed on the generated lake: k-means + silhouette chose 3
//! classes, code and summarization merged, and with k fixed to 4 it split chat by output length
//! instead). A full-covariance component models each shape's own spread and orientation, and BIC
//! (−2 ln L + p ln n, p = k·(d + d(d+1)/2) + k − 1 free parameters in d non-constant features)
//! picks the number of components from the likelihood rather than from distances.
//!
//! **Classes are modes.** Real shapes are not Gaussian (a chat app is a mixture of session depths
//! and turn lengths; a share clipped at 1 is a lump), so BIC fits several components to one shape
//! (observed on the generated lake: chat in three components). Components are therefore grouped
//! into classes, parameter-free: two components belong to the same class when their two-component
//! mixture is unimodal (Ray & Lindsay's ridgeline criterion, as in Hennig 2010, "Methods for
//! merging Gaussian mixture components"), transitively. A class's posterior is the sum of its
//! components' posteriors; its centroid is their weighted mean.
//!
//! **Covariance floor.** Token counts are integers, many requests repeat one length (a template sent
//! many times), shares are clipped to 0..1 and single-shot traffic has a session depth of exactly
//! 1, so the features have lumps of identical points. Maximum likelihood lets a component collapse
//! onto such a lump (variance → 0, likelihood → ∞) and BIC then rewards a class per lump. Every
//! covariance therefore gets [`FLOOR_SD`]² added on its diagonal (the usual ridge regularisation of
//! EM, like scikit-learn's `reg_covar`, but in feature units and sized by what a class must not be
//! narrower than; see there).
//!
//! **Failed requests.** Requests with no completion token (errors, immediate cancellations) are
//! left out of the fit: ln(1 + 0) = 0 is a point mass far below any served output, which BIC would
//! make a class of its own (observed: a 0.4 % "error" class on the generated lake). They are still
//! assigned, like every request, in the streaming pass.
//!
//! **Determinism.** The sample order is fixed by the caller, the k-means++ initialisation draws
//! from the explicit seed, and every sum over points is taken per fixed-size chunk and the chunks
//! combined in order, so the fit is identical for any rayon thread count.
//!
//! nalgebra (already a dependency) carries the 4 × 4 covariance algebra (Cholesky factors); a
//! clustering crate (linfa) would add a large dependency tree for a few hundred lines of
//! well-understood code and would not give us control over determinism across thread counts.

use std::ops::{Range, RangeInclusive};

use nalgebra::{Cholesky, SMatrix};
use rayon::prelude::*;

use super::kmeans;
use super::vector::{DIMS, FeatureVector, Point};
use crate::{Error, Result};

type Matrix = SMatrix<f64, DIMS, DIMS>;

/// Smallest standard deviation of a component in each feature, in feature units, set by principle
/// and checked on the generated lake (never on the Azure traces, which are only scored):
/// - ln prompt and ln output tokens: 0.1, i.e. lengths within about ±10 % are one shape (finer than
///   any serving setting; coarser than the integer steps of counts above ~5 tokens);
/// - prefix share: 0.2 of the prompt, so the lumps at exactly 0 and 1 (no shared prefix, a prompt
///   entirely in a template or a duplicate) do not become classes of their own;
/// - ln session depth: ln 2, i.e. one turn more or less is not a different kind of traffic (the
///   depth tells conversational from single-shot traffic; at a finer floor the generated chat app
///   splits into single-turn and multi-turn classes).
pub const FLOOR_SD: [f64; DIMS] = [0.1, 0.1, 0.2, std::f64::consts::LN_2];
/// EM stops when the mean log-likelihood per point gains less than this in one iteration.
const TOLERANCE: f64 = 1e-6;
const MAX_ITERATIONS: usize = 500;
/// A component with fewer points (in posterior weight) than this is dropped during EM.
const MIN_POINTS: f64 = (DIMS + 1) as f64;
/// Most mixture components (the largest k tried).
pub const MAX_COMPONENTS: usize = 16;
/// Points per parallel chunk: fixed, so chunk boundaries (and therefore floating-point sums) do not
/// depend on the number of threads.
const CHUNK: usize = 4_096;

/// One Gaussian of the mixture, in standardised units.
#[derive(Debug, Clone, PartialEq)]
struct Component {
    weight: f64,
    mean: Point,
    /// L⁻¹ for the Cholesky factor Σ = L Lᵀ: the Mahalanobis distance is |L⁻¹(x − μ)|.
    whiten: Matrix,
    /// ln weight − ½ ln det Σ − (D/2) ln 2π.
    log_norm: f64,
}

impl Component {
    fn new(weight: f64, mean: Point, cov: Matrix) -> Component {
        // A floored covariance is positive definite; only non-finite input falls back to unit
        // variances.
        let l =
            Cholesky::new((cov + cov.transpose()) * 0.5).map_or_else(Matrix::identity, |c| c.l());
        let whiten = l
            .solve_lower_triangular(&Matrix::identity())
            .unwrap_or_else(Matrix::identity);
        let log_det: f64 = (0..DIMS).map(|i| 2.0 * l[(i, i)].ln()).sum();
        Component {
            weight,
            mean,
            whiten,
            log_norm: weight.ln()
                - 0.5 * log_det
                - 0.5 * DIMS as f64 * (2.0 * std::f64::consts::PI).ln(),
        }
    }

    /// Σ⁻¹.
    fn precision(&self) -> Matrix {
        self.whiten.transpose() * self.whiten
    }

    /// ln(weight × density) at `p`.
    fn log_density(&self, p: &Point) -> f64 {
        self.log_norm - 0.5 * (self.whiten * (p - self.mean)).norm_squared()
    }
}

/// A fitted clustering. Class ids are `1..=k` (0 means "unknown" in simulator traces), ordered by
/// class mean prompt length then output length, so ids do not depend on the draw order.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    mean: Point,
    scale: Point,
    /// Mixture components, grouped by class: class `c` (id c + 1) owns `components[classes[c]]`.
    components: Vec<Component>,
    classes: Vec<Range<usize>>,
    /// Weighted mean of each class's components, in standardised units.
    centroids: Vec<Point>,
    /// BIC of every k tried (lower is better), for the report.
    pub bic: Vec<(usize, f64)>,
}

impl Model {
    /// A model with no classes (an empty window); [`Model::assign`] then answers 1.
    pub fn empty() -> Model {
        Model {
            mean: Point::zeros(),
            scale: Point::repeat(1.0),
            components: Vec::new(),
            classes: Vec::new(),
            centroids: Vec::new(),
            bic: Vec::new(),
        }
    }

    /// Number of classes.
    pub fn k(&self) -> usize {
        self.classes.len()
    }

    /// Number of mixture components (k or more: a class may hold several).
    pub fn components(&self) -> usize {
        self.components.len()
    }

    fn standardise(&self, f: &FeatureVector) -> Point {
        (f.point() - self.mean).component_div(&self.scale)
    }

    /// The class id (1..=k) with the highest posterior (the sum of its components' posteriors);
    /// ties go to the lower id.
    pub fn assign(&self, f: &FeatureVector) -> u16 {
        let p = self.standardise(f);
        let mut log_p = [0.0; MAX_COMPONENTS];
        for (l, c) in log_p.iter_mut().zip(&self.components) {
            *l = c.log_density(&p);
        }
        let mut best = (0, f64::NEG_INFINITY);
        for (i, range) in self.classes.iter().enumerate() {
            let l = log_sum_exp(&log_p[range.clone()]);
            if l > best.1 {
                best = (i, l);
            }
        }
        best.0 as u16 + 1
    }

    /// Assigns many requests in parallel; the result is identical for any thread count.
    pub fn assign_all(&self, features: &[FeatureVector]) -> Vec<u16> {
        features
            .par_chunks(CHUNK)
            .flat_map_iter(|c| c.iter().map(|f| self.assign(f)))
            .collect()
    }

    /// The mean of class `id` (1..=k) in feature units (logs undone by the accessors).
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

/// ln Σ exp(l), 0 terms → −∞.
fn log_sum_exp(l: &[f64]) -> f64 {
    let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + l.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Points on the ridgeline at which a pair's density is evaluated.
const RIDGELINE_STEPS: usize = 200;
/// Rise of the log density after a fall that counts as a second mode (rounding only).
const RIDGELINE_TOLERANCE: f64 = 1e-9;

/// Whether the two-component mixture of `a` and `b` (with their weights) has a single mode. All
/// its critical points lie on the ridgeline x(α) = (αΣa⁻¹ + (1−α)Σb⁻¹)⁻¹(αΣa⁻¹μa + (1−α)Σb⁻¹μb),
/// α ∈ [0, 1] (Ray & Lindsay 2005), so it is unimodal iff its density along that curve has no dip.
fn unimodal(a: &Component, b: &Component) -> bool {
    let (ia, ib) = (a.precision(), b.precision());
    let (ha, hb) = (ia * a.mean, ib * b.mean);
    let mut previous = f64::NEG_INFINITY;
    let mut low = f64::INFINITY;
    for step in 0..=RIDGELINE_STEPS {
        let alpha = step as f64 / RIDGELINE_STEPS as f64;
        let Some(inverse) = (ia * alpha + ib * (1.0 - alpha)).try_inverse() else {
            return false;
        };
        let x = inverse * (ha * alpha + hb * (1.0 - alpha));
        let density = log_sum_exp(&[a.log_density(&x), b.log_density(&x)]);
        if density < previous {
            low = low.min(density);
        } else if density > low + RIDGELINE_TOLERANCE {
            // Rising again after a fall: a second mode.
            return false;
        }
        previous = density;
    }
    true
}

/// Groups components into classes: the connected groups of the graph whose edges join two
/// components with a unimodal pair mixture. Returns the components reordered by class and the
/// class ranges, classes ordered by weighted mean (prompt, then output).
fn merge_modes(components: Vec<Component>) -> (Vec<Component>, Vec<Range<usize>>, Vec<Point>) {
    let k = components.len();
    let mut root: Vec<usize> = (0..k).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for a in 0..k {
        for b in a + 1..k {
            if unimodal(&components[a], &components[b]) {
                let (ra, rb) = (find(&mut root, a), find(&mut root, b));
                root[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut groups: Vec<(Point, Vec<Component>)> = Vec::new();
    let mut index: Vec<Option<usize>> = vec![None; k];
    for (i, c) in components.into_iter().enumerate() {
        let r = find(&mut root, i);
        let g = *index[r].get_or_insert_with(|| {
            groups.push((Point::zeros(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(c);
    }
    for (centroid, members) in &mut groups {
        let weight: f64 = members.iter().map(|c| c.weight).sum();
        *centroid = members
            .iter()
            .fold(Point::zeros(), |acc, c| acc + c.mean * c.weight)
            / weight.max(f64::MIN_POSITIVE);
        members.sort_by(|a, b| order(&a.mean, &b.mean));
    }
    groups.sort_by(|a, b| order(&a.0, &b.0));
    let mut ordered = Vec::with_capacity(k);
    let mut ranges = Vec::with_capacity(groups.len());
    let mut centroids = Vec::with_capacity(groups.len());
    for (centroid, members) in groups {
        ranges.push(ordered.len()..ordered.len() + members.len());
        ordered.extend(members);
        centroids.push(centroid);
    }
    (ordered, ranges, centroids)
}

/// Class order: prompt, then output (standardised units keep the order of feature units).
fn order(a: &Point, b: &Point) -> std::cmp::Ordering {
    a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1]))
}

/// Number of free parameters of a k-component full-covariance mixture in d dimensions.
fn parameters(k: usize, d: usize) -> f64 {
    (k * (d + d * (d + 1) / 2) + k - 1) as f64
}

/// Clusters `sample` (in its given order, which must be deterministic) with a Gaussian mixture for
/// every k in `k_range` (EM from k-means++ centroids), keeping the k with the lowest BIC (ties: the
/// smaller k). Features are standardised (z-scores; a constant feature keeps scale 1, adds nothing
/// to the likelihood differences and is not counted in the BIC's parameters).
pub fn cluster(
    sample: &[FeatureVector],
    k_range: RangeInclusive<usize>,
    seed: u64,
) -> Result<Model> {
    if sample.is_empty() {
        return Err(Error::Internal("no requests to cluster".into()));
    }
    if k_range.is_empty() || *k_range.start() == 0 {
        return Err(Error::Setting {
            key: "workloads.k".into(),
            message: format!("k range {k_range:?} is empty or starts at 0"),
        });
    }
    // Requests without output are left out of the fit (see the module doc) unless all are.
    let served: Vec<Point> = sample
        .iter()
        .filter(|f| f.log_output > 0.0)
        .map(FeatureVector::point)
        .collect();
    let raw = if served.is_empty() {
        sample.iter().map(FeatureVector::point).collect()
    } else {
        served
    };
    let n = raw.len() as f64;
    let mean = raw.iter().fold(Point::zeros(), |a, p| a + p) / n;
    let var = raw.iter().fold(Point::zeros(), |a, p| {
        a + (p - mean).component_mul(&(p - mean))
    }) / n;
    let constant = var.map(|v| v <= 1e-12);
    let active = constant.iter().filter(|&&c| !c).count();
    let scale = Point::from_fn(|i, _| if constant[i] { 1.0 } else { var[i].sqrt() });
    // The floor in standardised units; a constant feature is 0 everywhere, any positive floor does.
    let floor = Point::from_fn(|i, _| {
        if constant[i] {
            1.0
        } else {
            FLOOR_SD[i] * FLOOR_SD[i] / var[i]
        }
    });
    let points: Vec<Point> = raw
        .iter()
        .map(|p| (p - mean).component_div(&scale))
        .collect();
    // k cannot exceed the number of distinct points nor MAX_COMPONENTS.
    let distinct = kmeans::distinct_points(&points, (*k_range.end()).min(MAX_COMPONENTS));
    let ks = (*k_range.start()).min(distinct)..=(*k_range.end()).min(distinct);
    // Every k is fitted in parallel (each from its own seed), then compared in order of k.
    let fits: Vec<(usize, f64, Vec<Component>)> = ks
        .into_par_iter()
        .map(|k| {
            let init = initial_components(&points, &kmeans::centroids(&points, k, seed), &floor);
            let (components, loglik) = em(&points, init, &floor);
            let score = -2.0 * loglik + parameters(components.len(), active) * n.ln();
            (k, score, components)
        })
        .collect();
    let mut best: Option<(f64, Vec<Component>)> = None;
    let mut bic = Vec::new();
    for (k, score, components) in fits {
        bic.push((k, score));
        if best.as_ref().is_none_or(|b| score < b.0) {
            best = Some((score, components));
        }
    }
    let (components, classes, centroids) = merge_modes(best.map(|b| b.1).unwrap_or_default());
    Ok(Model {
        mean,
        scale,
        components,
        classes,
        centroids,
        bic,
    })
}

/// Posterior-weighted sums over points, per component.
#[derive(Clone)]
struct Stats {
    weight: Vec<f64>,
    sum: Vec<Point>,
    outer: Vec<Matrix>,
    loglik: f64,
}

impl Stats {
    fn new(k: usize) -> Stats {
        Stats {
            weight: vec![0.0; k],
            sum: vec![Point::zeros(); k],
            outer: vec![Matrix::zeros(); k],
            loglik: 0.0,
        }
    }

    fn add(&mut self, j: usize, r: f64, p: &Point) {
        self.weight[j] += r;
        self.sum[j] += p * r;
        self.outer[j] += (p * r) * p.transpose();
    }

    fn merge(mut self, other: Stats) -> Stats {
        for j in 0..self.weight.len() {
            self.weight[j] += other.weight[j];
            self.sum[j] += other.sum[j];
            self.outer[j] += other.outer[j];
        }
        self.loglik += other.loglik;
        self
    }

    /// Sums per fixed chunk, combined in chunk order (identical for any thread count).
    fn collect(
        points: &[Point],
        k: usize,
        per_chunk: impl Fn(&[Point]) -> Stats + Sync + Send,
    ) -> Stats {
        points
            .par_chunks(CHUNK)
            .map(per_chunk)
            .collect::<Vec<_>>()
            .into_iter()
            .fold(Stats::new(k), Stats::merge)
    }

    /// The M step: weights, means and floored covariances; components with fewer than
    /// [`MIN_POINTS`] points are dropped (the heaviest one is always kept).
    fn components(&self, floor: &Point) -> Vec<Component> {
        let heaviest = (0..self.weight.len())
            .max_by(|&a, &b| self.weight[a].total_cmp(&self.weight[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        let kept: Vec<usize> = (0..self.weight.len())
            .filter(|&j| j == heaviest || self.weight[j] >= MIN_POINTS)
            .collect();
        let total: f64 = kept.iter().map(|&j| self.weight[j]).sum();
        kept.into_iter()
            .map(|j| {
                let w = self.weight[j].max(f64::MIN_POSITIVE);
                let mean = self.sum[j] / w;
                let cov =
                    self.outer[j] / w - mean * mean.transpose() + Matrix::from_diagonal(floor);
                Component::new(w / total.max(f64::MIN_POSITIVE), mean, cov)
            })
            .collect()
    }
}

/// Components from a hard assignment of `points` to their nearest centroid.
fn initial_components(points: &[Point], centroids: &[Point], floor: &Point) -> Vec<Component> {
    Stats::collect(points, centroids.len(), |chunk| {
        let mut s = Stats::new(centroids.len());
        for p in chunk {
            s.add(kmeans::nearest(centroids, p).0, 1.0, p);
        }
        s
    })
    .components(floor)
}

/// EM from `components` until the mean log-likelihood converges; returns the components and the
/// log-likelihood of the sample under them.
fn em(points: &[Point], mut components: Vec<Component>, floor: &Point) -> (Vec<Component>, f64) {
    let n = points.len() as f64;
    let mut previous = f64::NEG_INFINITY;
    for iteration in 0.. {
        let k = components.len();
        let stats = Stats::collect(points, k, |chunk| {
            let mut s = Stats::new(k);
            let mut log_p = vec![0.0; k];
            for p in chunk {
                for (l, c) in log_p.iter_mut().zip(&components) {
                    *l = c.log_density(p);
                }
                let lse = log_sum_exp(&log_p);
                s.loglik += lse;
                for (j, l) in log_p.iter().enumerate() {
                    let r = (l - lse).exp();
                    if r > 0.0 {
                        s.add(j, r, p);
                    }
                }
            }
            s
        });
        if stats.loglik - previous <= TOLERANCE * n || iteration >= MAX_ITERATIONS {
            return (components, stats.loglik);
        }
        previous = stats.loglik;
        components = stats.components(floor);
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::workloads::adjusted_rand_index;

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
        assert_eq!(model.k(), 3, "{:?}", model.bic);
        let labels: Vec<u32> = model.assign_all(&data).iter().map(|&c| c.into()).collect();
        let truth: Vec<u32> = (0..data.len() as u32).map(|i| i % 3).collect();
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
        let p: Vec<f64> = (1..=3)
            .map(|id| model.centroid(id).unwrap().prompt_tokens())
            .collect();
        assert!(p[0] < p[1] && p[1] < p[2], "{p:?}");
        assert_eq!(model.assign(&FeatureVector::new(100, 200, 0.0, 1)), 1);
    }

    /// A broad shape (outputs over two decades) far from two compact neighbours: k-means with k = 3
    /// (on the same standardised points) halves the broad shape and merges the neighbours; the
    /// full-covariance mixture finds the three shapes.
    #[test]
    fn keeps_a_broad_shape_whole() {
        let mut rng = Rng::new(5, 2);
        let mut lognormal =
            |median: f64, sigma: f64| (median * (sigma * rng.normal()).exp()) as i64;
        let data: Vec<FeatureVector> = (0..6000)
            .map(|i| match i % 3 {
                0 => FeatureVector::new(lognormal(100.0, 0.1), lognormal(150.0, 1.5), 0.0, 1),
                1 => FeatureVector::new(lognormal(3000.0, 0.1), lognormal(40.0, 0.1), 0.0, 1),
                _ => FeatureVector::new(lognormal(5000.0, 0.1), lognormal(66.0, 0.1), 0.0, 1),
            })
            .collect();
        let truth: Vec<u32> = (0..data.len() as u32).map(|i| i % 3).collect();
        let model = cluster(&data, 2..=6, 3).unwrap();
        let labels: Vec<u32> = model.assign_all(&data).iter().map(|&c| c.into()).collect();
        let ari = adjusted_rand_index(&labels, &truth);
        assert_eq!(model.k(), 3, "{:?}", model.bic);
        assert!(ari > 0.95, "ARI {ari}");
        let points: Vec<Point> = data
            .iter()
            .map(|f| (f.point() - model.mean).component_div(&model.scale))
            .collect();
        let centroids = kmeans::centroids(&points, 3, 3);
        let kmeans_labels: Vec<u32> = points
            .iter()
            .map(|p| kmeans::nearest(&centroids, p).0 as u32)
            .collect();
        let kmeans_ari = adjusted_rand_index(&kmeans_labels, &truth);
        assert!(kmeans_ari < 0.8, "k-means ARI {kmeans_ari}");
    }

    /// Two equal, unit-variance components are unimodal iff their means are at most 2σ apart.
    #[test]
    fn ridgeline_tells_one_mode_from_two() {
        let at = |x: f64| {
            let mut mean = Point::zeros();
            mean[0] = x;
            Component::new(0.5, mean, Matrix::identity())
        };
        assert!(unimodal(&at(0.0), &at(1.9)));
        assert!(!unimodal(&at(0.0), &at(2.1)));
        assert!(!unimodal(&at(0.0), &at(6.0)));
        // A light component at 2.5σ sits on the heavy one's flank: one mode.
        let light = Component::new(0.05, at(2.5).mean, Matrix::identity());
        assert!(unimodal(
            &Component::new(0.95, Point::zeros(), Matrix::identity()),
            &light
        ));
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
        assert!(cluster(&blobs(1), 0..=3, 1).is_err());
        let same = vec![FeatureVector::new(10, 10, 0.0, 1); 50];
        let m = cluster(&same, 2..=10, 1).unwrap();
        assert_eq!(m.k(), 1);
        assert_eq!(m.assign(&same[0]), 1);
        let nan = FeatureVector::new(-5, 0, f64::NAN, -3);
        assert_eq!(nan.prefix_share, 0.0);
        assert_eq!(m.assign(&nan), 1);
        let two = [
            FeatureVector::new(10, 10, 0.0, 1),
            FeatureVector::new(900, 5, 0.0, 1),
        ];
        let m = cluster(&two, 2..=10, 1).unwrap();
        assert_eq!(m.k(), 1, "too few points for two components");
        assert_eq!(Model::empty().assign(&same[0]), 1);
        // Only failed requests (no output): clustered as they are rather than not at all.
        let failed: Vec<FeatureVector> = (0..50)
            .map(|i| FeatureVector::new(100 + 50 * (i % 2), 0, 0.0, 1))
            .collect();
        let m = cluster(&failed, 2..=10, 1).unwrap();
        assert!(m.k() >= 1);
    }
}
