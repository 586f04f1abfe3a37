//! Workload clustering throughput: the Gaussian mixture with automatic k (BIC over 2..=10
//! components, EM from k-means++, grouped by mode) on the 100k-request sample, then assignment of
//! every request, on synthetic feature vectors drawn from seeded lognormals
//! (four shapes like the generated lake's apps; no lake needed).
//!
//! Run: `cargo bench --bench workloads` (10M requests; issue 5 target ≤ 10 s on 2 cores).
//! `TUNELAKE_BENCH_REQUESTS` changes the count, e.g. for a quick debug-profile run:
//! `TUNELAKE_BENCH_REQUESTS=1000000 cargo test --bench workloads`.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::rng::Rng;
use tunelake::workloads::{FeatureVector, K_RANGE, SAMPLE_SIZE, cluster};

/// (share, prompt median, prompt σ, output median, output σ, prefix share, session depth).
const SHAPES: [(f64, f64, f64, f64, f64, f64, i64); 4] = [
    (0.40, 120.0, 0.7, 180.0, 0.7, 0.9, 3),
    (0.25, 5600.0, 0.25, 200.0, 0.5, 0.95, 1),
    (0.20, 1500.0, 0.6, 800.0, 0.4, 0.25, 1),
    (0.15, 3000.0, 0.4, 300.0, 0.3, 0.05, 1),
];

fn requests() -> usize {
    std::env::var("TUNELAKE_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn features(n: usize, seed: u64) -> Vec<FeatureVector> {
    let mut rng = Rng::new(seed, 0);
    (0..n)
        .map(|_| {
            let mut u = rng.next_f64();
            let shape = SHAPES
                .iter()
                .find(|s| {
                    u -= s.0;
                    u < 0.0
                })
                .unwrap_or(&SHAPES[3]);
            let p = shape.1 * (shape.2 * rng.normal()).exp();
            let o = shape.3 * (shape.4 * rng.normal()).exp();
            let share = (shape.5 + 0.05 * rng.normal()).clamp(0.0, 1.0);
            FeatureVector::new(p as i64, o as i64, share, shape.6)
        })
        .collect()
}

/// Clusters the sample (the first `SAMPLE_SIZE` draws: they are i.i.d.) and assigns every request;
/// returns the number of classes and a checksum of the assignments.
fn run(data: &[FeatureVector]) -> (usize, u64) {
    let model = cluster(&data[..data.len().min(SAMPLE_SIZE)], K_RANGE, 1).expect("non-empty");
    let classes = model.assign_all(data);
    (
        model.k(),
        classes.iter().map(|&c| u64::from(c)).sum::<u64>(),
    )
}

fn bench(c: &mut Criterion) {
    let n = requests();
    let data = features(n, 42);
    let start = Instant::now();
    let (k, _) = run(&data);
    println!(
        "workloads: clustered (k = {k}) and assigned {n} requests in {:.2} s on {} threads",
        start.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let mut group = c.benchmark_group("workloads");
    group.sample_size(10);
    group.bench_function(format!("cluster_and_assign_{n}"), |b| b.iter(|| run(&data)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
