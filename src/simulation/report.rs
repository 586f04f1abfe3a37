//! Simulation results.

use serde::{Deserialize, Serialize};

/// Percentiles of one latency metric, in milliseconds (nearest-rank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Computes the summary of `v` (reordered in place). NaN entries must have been filtered out.
    pub fn from_values(v: &mut [f64]) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let rank = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        // Select from the top down, each time in the lower part only.
        let mut hi = n;
        let mut pick = |idx: usize, v: &mut [f64]| -> f64 {
            let (_, x, _) = v[..hi].select_nth_unstable_by(idx, |a, b| a.total_cmp(b));
            let x = *x;
            hi = idx + 1;
            x
        };
        let max = pick(n - 1, v);
        let p99 = pick(rank(0.99), v);
        let p95 = pick(rank(0.95), v);
        let p90 = pick(rank(0.90), v);
        let p50 = pick(rank(0.50), v);
        Percentiles {
            mean,
            p50,
            p90,
            p95,
            p99,
            max,
        }
    }
}

/// Final state of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Finished,
    /// Prompt + output exceed max_model_len, the prompt cannot be scheduled (no chunked prefill and
    /// larger than max_num_batched_tokens), or the sequence needs more KV blocks than exist.
    Rejected,
    /// Aborted by the client timeout.
    TimedOut,
}

/// Per-request results (milliseconds; NaN where undefined, e.g. TPOT of a 1-token output).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RequestResult {
    pub index: u32,
    pub replica: u32,
    pub status: RequestStatus,
    pub arrival_s: f64,
    pub queue_ms: f64,
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    pub e2e_ms: f64,
    pub preemptions: u32,
}

/// Run-level results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    pub requests: u64,
    pub finished: u64,
    pub rejected: u64,
    pub timed_out: u64,
    /// Time from trace start (0) to the last completion, seconds.
    pub makespan_s: f64,
    /// Queue time: arrival → first scheduled.
    pub queue_ms: Percentiles,
    pub ttft_ms: Percentiles,
    /// (E2E − TTFT) / (output − 1), over requests with more than one output token.
    pub tpot_ms: Percentiles,
    pub e2e_ms: Percentiles,
    pub input_tokens_per_s: f64,
    pub output_tokens_per_s: f64,
    /// Finished requests meeting both SLO thresholds per second, and their fraction of all requests.
    pub goodput_rps: f64,
    pub goodput_fraction: f64,
    /// Whether the run's p95 TTFT and p95 TPOT meet the SLO.
    pub slo_met: bool,
    /// Time-weighted mean and max of running sequences per replica while busy.
    pub mean_batch: f64,
    pub max_batch: u32,
    /// Time-weighted (over the makespan) mean and max fraction of KV blocks in use, per replica.
    pub mean_kv_utilization: f64,
    pub max_kv_utilization: f64,
    pub kv_blocks_per_replica: u64,
    pub preemptions: u64,
    /// Prompt tokens served from the prefix cache / prompt tokens admitted (recomputations included).
    pub prefix_cache_hit_rate: f64,
    pub prefix_cache_evictions: u64,
    /// Time-average number of requests in the system (for Little's law checks).
    pub mean_in_system: f64,
    pub steps: u64,
    /// Decode steps executed inside analytically advanced runs (diagnostic).
    pub fast_forwarded_steps: u64,
    /// Output tokens generated (equals Σ output_tokens of finished requests plus partial outputs of
    /// timed-out ones).
    pub generated_tokens: u64,
    /// Prompt (and recomputed) tokens pushed through prefill.
    pub prefill_tokens: u64,
    /// KV blocks loaded from the host tier (offloaded prefix blocks and parked sequences).
    pub host_loaded_blocks: u64,
    /// KV blocks still held at the end, in GPU memory or parked in the host tier (must be 0).
    pub leaked_blocks: u64,
    /// Max over the run of blocks in use on one replica (never exceeds `kv_blocks_per_replica`).
    pub peak_blocks_used: u64,
    pub gpu_seconds: f64,
    pub cost_usd: f64,
    /// Present when `SimOptions::keep_per_request`.
    pub per_request: Option<Vec<RequestResult>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(|x| x as f64).collect();
        let p = Percentiles::from_values(&mut v);
        assert_eq!(
            (p.p50, p.p90, p.p95, p.p99, p.max),
            (50.0, 90.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(p.mean, 50.5);
    }
}
