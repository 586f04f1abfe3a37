//! Pipeline benchmark: ingest + validation + features + workloads + the fleet findings
//! (opportunities, with the demo pipeline's supplies) over a generated 10M-request, 30-day lake.
//! Targets on a 2-core machine: ≤ 8 s wall time and ≤ 1.5 GB peak RSS (issue 10); the findings add
//! ≤ 20 % to the rest (issue 13). Each finding's own time is printed once before the measurement.
//!
//! `cargo bench --bench pipeline` (the lake is generated once into `target/bench-lake-10m`;
//! `TUNELAKE_BENCH_REQUESTS` changes its size). A first run prints each stage's wall time and the
//! peak RSS so far (the kernel's high-water mark of this process); the peak RSS of the whole
//! benchmark is printed at the end.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::config::{Supply, ValidationSettings, Window};
use tunelake::generate::{GenerateConfig, generate};
use tunelake::ingest::{IngestInput, ingest};
use tunelake::storage::Location;

/// The allocator of the `tunelake` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// Ingest (with validation), features, workloads and the findings once; each stage's wall time in
/// seconds and the process's peak RSS when it ended.
async fn stages(input: &IngestInput, supplies: &[Supply]) -> [(&'static str, f64, String); 4] {
    let mut clock = Instant::now();
    let mut lap = || {
        let seconds = clock.elapsed().as_secs_f64();
        clock = Instant::now();
        (seconds, peak_rss())
    };
    let lake = ingest(input).await.unwrap();
    let ingest_s = lap();
    let tables = tunelake::features::extract(&lake.ctx, &input.window)
        .await
        .unwrap();
    let features_s = lap();
    let workloads = tunelake::workloads::characterize(&lake.ctx, &input.window, 1)
        .await
        .unwrap();
    let workloads_s = lap();
    let findings = tunelake::opportunities::findings(&lake.ctx, &input.window, 1, &[], supplies)
        .await
        .unwrap();
    let findings_s = lap();
    assert!(lake.requests.rows_valid > 0 && !tables.is_empty() && !workloads.classes.is_empty());
    assert!(!findings.caching.is_empty() && !findings.health.is_empty());
    [
        ("ingest", ingest_s.0, ingest_s.1),
        ("features", features_s.0, features_s.1),
        ("workloads", workloads_s.0, workloads_s.1),
        ("opportunities", findings_s.0, findings_s.1),
    ]
}

/// The kernel's high-water mark of this process's resident memory.
fn peak_rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map_or("unknown".into(), |l| {
            l.trim_start_matches("VmHWM:").trim().to_string()
        })
}

/// Each finding of the opportunities stage on its own, seconds (printed once, to show where the
/// stage's time goes).
async fn findings_breakdown(input: &IngestInput, supplies: &[Supply]) -> Vec<(&'static str, f64)> {
    use tunelake::opportunities as o;
    let lake = ingest(input).await.unwrap();
    let (ctx, window) = (&lake.ctx, &input.window);
    o::register_supplies(ctx, supplies).unwrap();
    let mut out = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name| {
        out.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    o::response_caching(ctx, window, 1).await.unwrap();
    lap("response_caching");
    o::prefix_caching(ctx, window, supplies).await.unwrap();
    lap("prefix_caching");
    o::batch_opportunities(ctx, window, &[], supplies)
        .await
        .unwrap();
    lap("batch");
    o::client_defaults(ctx, window).await.unwrap();
    lap("client_defaults");
    o::supply_health(ctx, window, supplies).await.unwrap();
    lap("health");
    out
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
    // The generator's supplies, as the demo pipeline describes them.
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/demo.toml");
    let supplies = tunelake::config::PipelineFile::load(std::path::Path::new(demo))
        .unwrap()
        .supplies;
    let parts = runtime.block_on(findings_breakdown(&input, &supplies));
    eprintln!("findings: {parts:?}");
    let timed = runtime.block_on(stages(&input, &supplies));
    let total: f64 = timed.iter().map(|(_, s, _)| s).sum();
    let each: Vec<String> = timed
        .iter()
        .map(|(n, s, rss)| format!("{n} {s:.2} s (peak RSS {rss})"))
        .collect();
    eprintln!(
        "pipeline: {} = {total:.2} s; the findings add {:.1} %",
        each.join(", "),
        timed[3].1 / (total - timed[3].1) * 100.0
    );
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60));
    group.bench_function("ingest_validate_features_workloads_findings_10m", |b| {
        b.iter(|| runtime.block_on(stages(&input, &supplies)))
    });
    group.finish();
    eprintln!("peak RSS of the benchmark process: {}", peak_rss());
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
