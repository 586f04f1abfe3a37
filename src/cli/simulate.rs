//! `simulate`: replays a trace through one supply's deployment and prints the report.

use std::path::Path;

use tunelake::pipeline::{self, SimulateInput, Simulated};

pub fn simulate(
    trace: &Path,
    supply_ref: &str,
    overrides: &[String],
    seed: u64,
    timeout_s: Option<f64>,
    json: bool,
) -> anyhow::Result<()> {
    let (file, id) = supply_ref
        .rsplit_once('#')
        .ok_or_else(|| tunelake::Error::Setting {
            key: "--supply".into(),
            message: format!("`{supply_ref}` is not PIPELINE.toml#SUPPLY_ID"),
        })?;
    let Simulated { deployment, report } = pipeline::simulate(&SimulateInput {
        trace,
        pipeline: Path::new(file),
        supply_id: id,
        overrides,
        seed,
        timeout_s,
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{id}: {} × {} (TP {}) {} on {} requests, {:.1} s simulated",
        deployment.config.replicas,
        deployment.gpu.id,
        deployment.config.tensor_parallel_size,
        deployment.model.id,
        report.requests,
        report.makespan_s
    );
    println!(
        "  {:<10} {:>10} {:>10} {:>10} {:>10}",
        "ms", "p50", "p90", "p95", "p99"
    );
    for (name, p) in [
        ("queue", &report.queue_ms),
        ("ttft", &report.ttft_ms),
        ("tpot", &report.tpot_ms),
        ("e2e", &report.e2e_ms),
    ] {
        println!(
            "  {name:<10} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            p.p50, p.p90, p.p95, p.p99
        );
    }
    println!(
        "  throughput {:.0} in / {:.0} out tokens/s; goodput {:.2} req/s ({:.1} % within SLO)",
        report.input_tokens_per_s,
        report.output_tokens_per_s,
        report.goodput_rps,
        100.0 * report.goodput_fraction
    );
    println!(
        "  batch mean {:.1} max {}; KV use mean {:.0} % max {:.0} % of {} blocks; preemptions {}; prefix hit rate {:.1} %",
        report.mean_batch,
        report.max_batch,
        100.0 * report.mean_kv_utilization,
        100.0 * report.max_kv_utilization,
        report.kv_blocks_per_replica,
        report.preemptions,
        100.0 * report.prefix_cache_hit_rate
    );
    println!(
        "  finished {} rejected {} timed out {}; {:.2} GPU-hours, ${:.2}",
        report.finished,
        report.rejected,
        report.timed_out,
        report.gpu_seconds / 3600.0,
        report.cost_usd
    );
    Ok(())
}
