//! Simulator throughput per engine scheduler: 1M Azure-conversation-like requests at ~80 % of the
//! capacity of one Llama-3-8B replica on an H100 (roofline step model, each scheduler at its own
//! capacity: vLLM v1, TensorRT-LLM under both capacity policies, TGI, SGLang).
//!
//! Run: `cargo bench --bench simulator`. Prints simulated requests per second of wall time per
//! engine and its ratio to vLLM's.

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::catalog::Catalog;
use tunelake::knobs::CapacityPolicy;
use tunelake::simulation::{Deployment, SchedulerKind, SimOptions, simulate};

mod common;

use common::azure_conversation_trace as trace;

fn deployment(scheduler: SchedulerKind, policy: CapacityPolicy) -> Deployment {
    let c = Catalog::bundled().unwrap();
    let mut d = Deployment::new(
        c.gpu("H100").unwrap().clone(),
        c.model("Llama-3-8B").unwrap().clone(),
        1,
        1,
    );
    d.scheduler = scheduler;
    d.config.capacity_scheduler_policy = policy;
    d
}

/// The engines benchmarked, by name.
fn engines() -> Vec<(&'static str, Deployment)> {
    use CapacityPolicy::*;
    use SchedulerKind::*;
    vec![
        ("vllm", deployment(VllmV1, GuaranteedNoEvict)),
        ("trtllm-no-evict", deployment(Trtllm, GuaranteedNoEvict)),
        ("trtllm-max-util", deployment(Trtllm, MaxUtilization)),
        ("tgi", deployment(Tgi, GuaranteedNoEvict)),
        ("sglang", deployment(Sglang, GuaranteedNoEvict)),
    ]
}

/// Finds the arrival rate at ~80 % of capacity: the capacity is the throughput of a saturated run.
fn rate_at_80pct(d: &Deployment) -> f64 {
    let sat = trace(20_000, 1e4);
    let r = simulate(d, &sat, &SimOptions::default()).unwrap();
    0.8 * r.finished as f64 / r.makespan_s
}

fn bench(c: &mut Criterion) {
    let n = 1_000_000;
    let mut g = c.benchmark_group("simulator");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(n as u64));
    let mut vllm_speed = None;
    for (name, d) in engines() {
        let rate = rate_at_80pct(&d);
        let t = trace(n, rate);
        let start = std::time::Instant::now();
        let r = simulate(&d, &t, &SimOptions::default()).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let speed = n as f64 / secs;
        let vllm = *vllm_speed.get_or_insert(speed);
        println!(
            "{name}: 1M requests at {rate:.1} req/s (80 % of its capacity): {secs:.3} s wall = \
             {speed:.0} simulated requests/s ({:.0} % of vLLM's); {} steps ({} fast-forwarded), \
             mean batch {:.1}, p95 TTFT {:.0} ms, {} preemptions",
            100.0 * speed / vllm,
            r.steps,
            r.fast_forwarded_steps,
            r.mean_batch,
            r.ttft_ms.p95,
            r.preemptions
        );
        g.bench_function(format!("{name}-llama3-8b-h100-1M-azure-conv-80pct"), |b| {
            b.iter(|| simulate(&d, &t, &SimOptions::default()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
