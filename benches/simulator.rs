//! Simulator throughput: 1M Azure-conversation-like requests at ~80 % of the capacity of one
//! Llama-3-8B replica on an H100 (roofline step model, vLLM v1 defaults).
//!
//! Run: `cargo bench --bench simulator`. Prints simulated requests per second of wall time.

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::catalog::Catalog;
use tunelake::simulation::{Deployment, SimOptions, Trace, simulate};

const AZURE_CONV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/azure-llm-2023/AzureLLMInferenceTrace_conv.csv"
);

/// (ContextTokens, GeneratedTokens) pairs of the Azure 2023 conversation trace, or lognormal fits of
/// it when the file is absent.
fn azure_lengths() -> Vec<(u32, u32)> {
    match std::fs::read_to_string(AZURE_CONV) {
        Ok(text) => text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',').skip(1);
                Some((
                    f.next()?.trim().parse().ok()?,
                    f.next()?.trim().parse().ok()?,
                ))
            })
            .map(|(p, o): (u32, u32)| (p.clamp(1, 7000), o.clamp(1, 1000)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn trace(n: usize, rate: f64) -> Trace {
    let lens = azure_lengths();
    Trace::poisson(n, rate, 1, |rng| {
        if lens.is_empty() {
            let p = (6.93 + 0.9 * rng.normal()).exp().clamp(4.0, 6000.0) as u32;
            let o = (4.87 + 0.85 * rng.normal()).exp().clamp(2.0, 1000.0) as u32;
            (p, o)
        } else {
            lens[rng.below(lens.len() as u64) as usize]
        }
    })
}

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
