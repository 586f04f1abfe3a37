//! Simulator throughput: 1M Azure-conversation-like requests at ~80 % of the capacity of one
//! Llama-3-8B replica on an H100 (roofline step model, vLLM v1 defaults).
//!
//! Run: `cargo bench --bench simulator`. Prints simulated requests per second of wall time.

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::catalog::Catalog;
use tunelake::simulation::{Deployment, SimOptions, simulate};

mod common;

use common::azure_conversation_trace as trace;

fn deployment() -> Deployment {
    let c = Catalog::bundled().unwrap();
    Deployment::new(
        c.gpu("H100").unwrap().clone(),
        c.model("Llama-3-8B").unwrap().clone(),
        1,
        1,
    )
}

/// Finds the arrival rate at ~80 % of capacity: the capacity is the throughput of a saturated run.
fn rate_at_80pct(d: &Deployment) -> f64 {
    let sat = trace(20_000, 1e4);
    let r = simulate(d, &sat, &SimOptions::default()).unwrap();
    0.8 * r.finished as f64 / r.makespan_s
}

fn bench(c: &mut Criterion) {
    let d = deployment();
    let rate = rate_at_80pct(&d);
    let n = 1_000_000;
    let t = trace(n, rate);
    let start = std::time::Instant::now();
    let r = simulate(&d, &t, &SimOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "1M requests at {rate:.1} req/s (80 % of capacity): {secs:.3} s wall = {:.0} simulated requests/s; \
         {} steps ({} fast-forwarded), mean batch {:.1}, p95 TTFT {:.0} ms",
        n as f64 / secs,
        r.steps,
        r.fast_forwarded_steps,
        r.mean_batch,
        r.ttft_ms.p95
    );
    let mut g = c.benchmark_group("simulator");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(n as u64));
    g.bench_function("llama3-8b-h100-1M-azure-conv-80pct", |b| {
        b.iter(|| simulate(&d, &t, &SimOptions::default()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
