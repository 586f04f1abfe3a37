//! Calibration throughput: 50 supplies × 30 days of 1-minute telemetry windows (2.16M windows), each
//! supply fitted by weighted LS (with outlier rejection and the prior) and tracked by the EKF (ITL
//! and queue wait through the queueing model). Telemetry is synthetic, in memory: the cost measured
//! is calibration's, not Parquet's or SQL's.
//!
//! Run: `cargo bench --bench calibration` (release; the target is ≤ 2 s on 2 cores).
//! `TUNELAKE_BENCH_DAYS` shrinks the window, e.g. for a quick debug-profile figure:
//! `TUNELAKE_BENCH_DAYS=3 cargo bench --profile dev --bench calibration`.

use criterion::{Criterion, criterion_group, criterion_main};
use rayon::prelude::*;
use tunelake::calibration::{
    EkfOptions, EngineCoefficients, FitOptions, TelemetryWindow, fit_decode, track,
};

const SUPPLIES: usize = 50;

/// One supply's windows: a diurnal batch between 1 and ~60, ITL = α + β·n with 1 % noise and a few
/// outliers, arrival rate and queue wait consistent with Little's law (seeded, deterministic).
fn telemetry(supply: usize, days: usize) -> Vec<TelemetryWindow> {
    let (alpha, beta) = (5.0 + supply as f64 * 0.3, 0.05 + supply as f64 * 0.004);
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ supply as u64;
    let mut unit = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..days * 1440)
        .map(|m| {
            let phase = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
            let batch = 30.0 + 28.0 * phase.sin() + 2.0 * unit();
            let itl = (alpha + beta * batch) * (1.0 + 0.01 * (unit() - 0.5));
            let outlier = if m % 997 == 0 { 3.0 } else { 1.0 };
            let tokens_per_request = 200.0;
            let rps = 1000.0 * batch / (tokens_per_request * itl);
            TelemetryWindow {
                ts_us: m as i64 * 60_000_000,
                batch,
                itl_ms: Some(itl * outlier),
                tokens: Some(rps * tokens_per_request * 60.0),
                requests_per_s: Some(rps),
                tokens_per_request: Some(tokens_per_request),
                queue_ms: Some(0.0),
            }
        })
        .collect()
}

fn calibrate_all(fleet: &[Vec<TelemetryWindow>]) -> usize {
    let prior = EngineCoefficients {
        alpha_ms: 8.0,
        beta_ms: 0.1,
        prefill_ms_per_token: 0.05,
        request_overhead_ms: 10.0,
    };
    fleet
        .par_iter()
        .map(|w| {
            let fit = fit_decode(w, &prior, 0.5, &FitOptions::default()).expect("fit");
            let ekf = track(w, (8.0, 0.1), 0.5, 10.0, 128, &EkfOptions::default());
            fit.windows_used + ekf.updates
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let days: usize = std::env::var("TUNELAKE_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let fleet: Vec<Vec<TelemetryWindow>> = (0..SUPPLIES).map(|s| telemetry(s, days)).collect();
    let start = std::time::Instant::now();
    let used = calibrate_all(&fleet);
    println!(
        "calibration: {SUPPLIES} supplies × {days} days × 1440 windows ({} windows, {used} used) in {:.2} s",
        SUPPLIES * days * 1440,
        start.elapsed().as_secs_f64()
    );
    let mut group = c.benchmark_group("calibration");
    group.sample_size(10);
    group.bench_function(format!("{SUPPLIES}_supplies_{days}_days"), |b| {
        b.iter(|| calibrate_all(&fleet))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
