//! Pipeline benchmark: ingest + validation + features over a generated 10M-request, 30-day lake.
//! Target on a 2-core machine: ≤ 15 s wall time and ≤ 2 GB peak RSS.
//!
//! `cargo bench --bench pipeline` (the lake is generated once into `target/bench-lake-10m`;
//! `TUNELAKE_BENCH_REQUESTS` changes its size). Peak RSS is printed at the end from the kernel's
//! high-water mark of this process.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::config::{ValidationSettings, Window};
use tunelake::generate::{GenerateConfig, generate};
use tunelake::ingest::{IngestInput, ingest};
use tunelake::storage::Location;

fn lake(runtime: &tokio::runtime::Runtime) -> (Location, Window) {
    let requests: u64 = std::env::var("TUNELAKE_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let dir = format!(
        "{}/target/bench-lake-{}",
        env!("CARGO_MANIFEST_DIR"),
        requests
    );
    let location = Location::parse(&dir, None).unwrap();
    if !std::path::Path::new(&dir)
        .join("ground_truth.json")
        .exists()
    {
        eprintln!("generating {requests} requests into {dir} (once)");
        runtime
            .block_on(generate(
                &location,
                &GenerateConfig {
                    requests,
                    days: 30,
                    seed: 1,
                    end,
                    invalid_share: 0.001,
                },
            ))
            .unwrap();
    }
    let as_of = end.and_hms_opt(0, 0, 0).unwrap().and_utc();
    (location, Window::ending_at(as_of, 30))
}

fn pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (location, window) = lake(&runtime);
    let input = IngestInput {
        lake: location,
        window,
        app_ids: vec![],
        validation: ValidationSettings::default(),
        skip_bad_files: false,
    };
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60));
    group.bench_function("ingest_validate_features_10m", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let lake = ingest(&input).await.unwrap();
                let tables = tunelake::features::extract(&lake.ctx, &window)
                    .await
                    .unwrap();
                assert!(lake.requests.rows_valid > 0 && !tables.is_empty());
            })
        })
    });
    group.finish();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
        eprintln!(
            "peak RSS of the benchmark process: {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
