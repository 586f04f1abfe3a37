//! Search throughput: 500 candidate configurations of a Llama-3.1-8B supply (2 block sizes × 5
//! max_num_seqs × 5 max_num_batched_tokens × 2 prefix-caching settings × 5 replica counts) over
//! 100k Azure-conversation-like requests (about 3 hours at 9 req/s), successive halving with replica
//! bisection on 2 cores.
//!
//! Run: `cargo bench --bench search`. Prints candidates per second and the simulated requests
//! against what an exhaustive search of the same space would simulate.

use criterion::{Criterion, criterion_group, criterion_main};
use tunelake::catalog::Catalog;
use tunelake::config::PipelineFile;
use tunelake::ingest::import::rows::{Request, RequestRows};
use tunelake::search::{Evaluator, SearchInput, Strategy, search};
use tunelake::workloads::Traffic;

mod common;

const REQUESTS: usize = 100_000;
const RATE: f64 = 9.0;

const PIPELINE: &str = r#"
[run]
lake = "unused"
out = "unused"
[[supplies]]
id = "chat"
engine = "vllm"
model = "meta-llama/Llama-3.1-8B-Instruct"
gpu = "H100-SXM"
replicas = 2
price = { per_gpu_hour = 6.88 }
slo = { p95_ttft_ms = 2000, p95_tpot_ms = 50 }
config = { max_model_len = 8192 }
[supplies.options]
block_size = [16, 32]
max_num_seqs = [64, 128, 256, 512, 1024]
max_num_batched_tokens = [2048, 4096, 8192, 16384, 32768]
enable_prefix_caching = [true, false]
replicas = [1, 2, 3, 4, 5]
"#;

fn traffic() -> Traffic {
    let trace = common::azure_conversation_trace(REQUESTS, RATE);
    let mut rows = RequestRows::with_capacity(trace.len());
    for (i, r) in trace.requests().iter().enumerate() {
        let id = format!("r{i}");
        rows.push(&Request {
            request_id: Some(&id),
            ts_us: Some((r.arrival_s * 1e6) as i64),
            app_id: Some("chat"),
            supply_id: Some("chat"),
            prompt_tokens: Some(i64::from(r.prompt_tokens)),
            completion_tokens: Some(i64::from(r.output_tokens)),
            ..Default::default()
        });
    }
    Traffic {
        batches: vec![rows.finish().unwrap()],
        classes: vec![0; trace.len()],
        offset_s: 0.0,
    }
}

fn bench(c: &mut Criterion) {
    let catalog = Catalog::bundled().unwrap();
    let supply = toml::from_str::<PipelineFile>(PIPELINE)
        .unwrap()
        .supplies
        .remove(0);
    let traffic = traffic();
    let input = SearchInput {
        supply: &supply,
        catalog: &catalog,
        traffic: &traffic,
        calibrated: None,
        seed: 42,
        strategy: Strategy::SuccessiveHalving,
    };
    let start = std::time::Instant::now();
    let result = search(&Evaluator::new(&input).unwrap()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} candidates × {REQUESTS} requests: {secs:.1} s = {:.1} candidates/s; simulated {} requests, \
         exhaustive would simulate {} ({:.0} % saved); best: {}",
        result.candidates,
        result.candidates as f64 / secs,
        result.simulated_requests,
        result.exhaustive_requests,
        (1.0 - result.simulated_requests as f64 / result.exhaustive_requests as f64) * 100.0,
        result
            .best
            .as_ref()
            .map_or("none".into(), |b| b.config.describe())
    );
    let mut g = c.benchmark_group("search");
    g.sample_size(10);
    g.bench_function("500-candidates-100k-requests", |b| {
        b.iter(|| search(&Evaluator::new(&input).unwrap()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
