//! The ground-truth engine: supplies with known coefficients and the latencies and telemetry
//! windows they produce, so calibration has an answer to recover.
//!
//! llm-inferno's linear model: decode step ITL(n) = α + β·n ms at mean batch n, prefill γ ms per
//! uncached prompt token. Requests go round-robin to `replicas`; per replica and 1-minute window
//! with arrival rate λ (plus any backlog ÷ 60 s), mean uncached prompt P and mean output O, the mean
//! concurrency is the fixed point of Little's law n = λ·E2E(n), E2E(n) = α + γP + (O − 1)(α + βn),
//! which is linear in n: n = a/(1 − b), a = λ(α + γP + (O − 1)α), b = λ(O − 1)β (λ per ms). If that
//! exceeds `max_num_seqs` M (or b ≥ 1) the window is overloaded (simple overflow rule): n = M, the
//! service rate is μ = M/E2E(M), arrivals beyond μ·60 s join a backlog carried to the next window,
//! `num_waiting` = the window's mean backlog and the queue wait = backlog/μ (Little). Backlog resets
//! at 00:00 UTC so days are independent.
//! Per request: TTFT = queue + α + γ·uncached, E2E = TTFT + (out − 1)·ITL(n), with multiplicative
//! mean-one lognormal noise σ = 0.10 on TTFT/queue and 0.05 on the decode part.
//! `gpu_metrics` per replica and window: `num_running` = n (exact), `mean_itl_ms` = ITL(n) × mean-one
//! noise with σ = 0.05/√(tokens decoded in the window) (a mean over that many steps; null when
//! nothing ran), `num_waiting`, `mean_queue_ms`, `requests_per_s` = λ, `prompt_tokens_per_s` and
//! `generation_tokens_per_s` = completions per second × mean prompt / output tokens,
//! `kv_cache_usage` = n·(P_all + O/2)·KV bytes per token ÷ KV capacity (clipped at 1; the excess
//! share of the window's requests is counted as `preemptions`), `gpu_util` = min(1, prefill busy
//! share + (1 − e^(−n))), `mem_used_bytes` = 0.9 × GPU memory × TP (vLLM preallocation),
//! `power_w` = TP × (idle + (TDP − idle)·gpu_util). The hosted supply has no `gpu_metrics`:
//! TTFT = 350 ms + 0.03 ms × prompt tokens, 10 ms per output token, same noise.
//! `cost_usd` = (prompt × input price + completion × output price) ÷ 10⁶ (self-hosted prices are
//! amortised GPU cost).

use serde::Serialize;

use super::apps::AppShape;
use super::requests::Draw;
use super::{DECODE_NOISE, TTFT_NOISE};
use crate::rng::Xoshiro256;

/// A supply and, when self-hosted, its ground-truth engine.
#[derive(Debug, Clone, Serialize)]
pub struct SupplyTruth {
    pub name: &'static str,
    /// `vllm` (self-hosted) or `openai` (hosted API).
    pub engine: &'static str,
    pub model: &'static str,
    pub gpu: Option<&'static str>,
    pub tp: u32,
    pub replicas: u32,
    pub max_num_seqs: u32,
    /// Decode step time intercept, ms.
    pub alpha_ms: f64,
    /// Decode step time per running request, ms.
    pub beta_ms: f64,
    /// Prefill time per uncached prompt token, ms.
    pub gamma_ms_per_token: f64,
    pub kv_bytes_per_token: f64,
    /// KV-cache capacity per replica, bytes.
    pub kv_capacity_bytes: f64,
    pub gpu_memory_bytes: f64,
    pub gpu_idle_w: f64,
    pub gpu_tdp_w: f64,
    /// USD per million tokens (amortised GPU cost when self-hosted).
    pub price_input_per_mtok: f64,
    pub price_output_per_mtok: f64,
}

impl SupplyTruth {
    pub fn self_hosted(&self) -> bool {
        self.engine == "vllm"
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub const SUPPLIES: [SupplyTruth; 4] = [
    SupplyTruth {
        name: "chat-llama8b-h100",
        engine: "vllm",
        model: "meta-llama/Llama-3.1-8B-Instruct",
        gpu: Some("H100-SXM-80GB"),
        tp: 1,
        replicas: 2,
        max_num_seqs: 256,
        alpha_ms: 6.0,
        beta_ms: 0.08,
        gamma_ms_per_token: 0.07,
        // 32 layers × 8 KV heads × 128 dims × 2 (K, V) × 2 bytes.
        kv_bytes_per_token: 131_072.0,
        kv_capacity_bytes: 56e9,
        gpu_memory_bytes: 80.0 * GIB,
        gpu_idle_w: 90.0,
        gpu_tdp_w: 700.0,
        price_input_per_mtok: 0.05,
        price_output_per_mtok: 0.20,
    },
    SupplyTruth {
        name: "rag-llama70b-h100",
        engine: "vllm",
        model: "meta-llama/Llama-3.1-70B-Instruct",
        gpu: Some("H100-SXM-80GB"),
        tp: 4,
        replicas: 2,
        max_num_seqs: 128,
        alpha_ms: 14.0,
        beta_ms: 0.20,
        gamma_ms_per_token: 0.25,
        // 80 layers × 8 KV heads × 128 dims × 2 × 2 bytes.
        kv_bytes_per_token: 327_680.0,
        kv_capacity_bytes: 150e9,
        gpu_memory_bytes: 80.0 * GIB,
        gpu_idle_w: 90.0,
        gpu_tdp_w: 700.0,
        price_input_per_mtok: 0.40,
        price_output_per_mtok: 0.80,
    },
    SupplyTruth {
        name: "code-llama70b-a100",
        engine: "vllm",
        model: "meta-llama/Llama-3.1-70B-Instruct",
        gpu: Some("A100-SXM-80GB"),
        tp: 4,
        replicas: 2,
        max_num_seqs: 128,
        alpha_ms: 22.0,
        beta_ms: 0.32,
        gamma_ms_per_token: 0.45,
        kv_bytes_per_token: 327_680.0,
        kv_capacity_bytes: 150e9,
        gpu_memory_bytes: 80.0 * GIB,
        gpu_idle_w: 60.0,
        gpu_tdp_w: 400.0,
        price_input_per_mtok: 0.60,
        price_output_per_mtok: 1.20,
    },
    SupplyTruth {
        name: "summarize-gpt4o-mini",
        engine: "openai",
        model: "gpt-4o-mini",
        gpu: None,
        tp: 0,
        replicas: 0,
        max_num_seqs: 0,
        // Hosted: TTFT = 350 ms + 0.03 ms/token, 10 ms per output token.
        alpha_ms: 10.0,
        beta_ms: 0.0,
        gamma_ms_per_token: 0.03,
        kv_bytes_per_token: 0.0,
        kv_capacity_bytes: 0.0,
        gpu_memory_bytes: 0.0,
        gpu_idle_w: 0.0,
        gpu_tdp_w: 0.0,
        price_input_per_mtok: 0.15,
        price_output_per_mtok: 0.60,
    },
];

const HOSTED_TTFT_BASE_MS: f64 = 350.0;

pub(super) fn supply_of(app: &AppShape) -> &'static SupplyTruth {
    SUPPLIES
        .iter()
        .find(|s| s.name == app.supply)
        .expect("every app names a supply")
}

/// One replica-window of the ground-truth engine.
#[derive(Clone, Copy, Default)]
pub(super) struct EngineWindow {
    pub(super) arrivals: u32,
    pub(super) prompt_sum: f64,
    pub(super) uncached_sum: f64,
    pub(super) output_sum: f64,
    pub(super) n: f64,
    pub(super) waiting: f64,
    pub(super) queue_ms: f64,
    pub(super) itl_ms: f64,
    pub(super) completions_per_s: f64,
    pub(super) preemptions: f64,
    pub(super) kv: f64,
    pub(super) util: f64,
}

/// Runs the engine model over the day's windows and fills request latencies; returns the windows
/// per replica (replica-major).
pub(super) fn run_engine(
    rng: &mut Xoshiro256,
    s: &SupplyTruth,
    draws: &mut [Draw],
) -> Vec<EngineWindow> {
    let replicas = s.replicas as usize;
    let mut w = vec![EngineWindow::default(); replicas * 1440];
    let day0 = draws
        .first()
        .map_or(0, |d| d.ts_us - d.ts_us.rem_euclid(86_400_000_000));
    let window_of = |d: &Draw| ((d.ts_us - day0) / 60_000_000).clamp(0, 1439) as usize;
    for d in draws.iter() {
        let e = &mut w[d.replica as usize * 1440 + window_of(d)];
        e.arrivals += 1;
        e.prompt_sum += d.prompt as f64;
        e.uncached_sum += (d.prompt - d.cached) as f64;
        e.output_sum += d.completion as f64;
    }
    let m = s.max_num_seqs as f64;
    for r in 0..replicas {
        let mut backlog = 0.0;
        for e in &mut w[r * 1440..(r + 1) * 1440] {
            let count = e.arrivals as f64;
            let (p_all, p, o) = if e.arrivals > 0 {
                (
                    e.prompt_sum / count,
                    e.uncached_sum / count,
                    e.output_sum / count,
                )
            } else {
                (0.0, 0.0, 0.0)
            };
            let lambda = (count + backlog) / 60_000.0; // per ms
            let t0 = s.alpha_ms + s.gamma_ms_per_token * p;
            let decode = (o - 1.0).max(0.0);
            let e2e = |n: f64| t0 + decode * (s.alpha_ms + s.beta_ms * n);
            let a = lambda * (t0 + decode * s.alpha_ms);
            let b = lambda * decode * s.beta_ms;
            let unconstrained = if b < 1.0 {
                a / (1.0 - b)
            } else {
                f64::INFINITY
            };
            if unconstrained <= m {
                e.n = unconstrained;
                e.completions_per_s = lambda * 1000.0;
                backlog = 0.0;
            } else {
                e.n = m;
                let mu = m / e2e(m); // per ms
                let next = (backlog + count - mu * 60_000.0).max(0.0);
                e.waiting = 0.5 * (backlog + next);
                e.queue_ms = e.waiting / mu;
                e.completions_per_s = mu * 1000.0;
                backlog = next;
            }
            e.itl_ms = s.alpha_ms + s.beta_ms * e.n;
            let kv = e.n * (p_all + o / 2.0) * s.kv_bytes_per_token / s.kv_capacity_bytes;
            if kv > 1.0 {
                e.preemptions = ((kv - 1.0) / kv * count).ceil();
            }
            e.kv = kv.min(1.0);
            let prefill_share = e.completions_per_s * s.gamma_ms_per_token * p / 1000.0;
            e.util = (prefill_share + (1.0 - (-e.n).exp())).min(1.0);
        }
    }
    for d in draws.iter_mut() {
        let e = &w[d.replica as usize * 1440 + window_of(d)];
        let queue = if e.queue_ms > 0.0 {
            e.queue_ms * rng.unit_noise(TTFT_NOISE)
        } else {
            0.0
        };
        let ttft = queue
            + (s.alpha_ms + s.gamma_ms_per_token * (d.prompt - d.cached) as f64)
                * rng.unit_noise(TTFT_NOISE);
        let decode = (d.completion - 1).max(0) as f64 * e.itl_ms * rng.unit_noise(DECODE_NOISE);
        d.queue_ms = queue;
        d.ttft_ms = ttft;
        d.e2e_ms = ttft + decode;
    }
    w
}

/// Latencies on the hosted API (no engine model, no telemetry).
pub(super) fn hosted_latencies(rng: &mut Xoshiro256, s: &SupplyTruth, draws: &mut [Draw]) {
    for d in draws.iter_mut() {
        d.ttft_ms = (HOSTED_TTFT_BASE_MS + s.gamma_ms_per_token * d.prompt as f64)
            * rng.unit_noise(TTFT_NOISE);
        d.e2e_ms = d.ttft_ms
            + (d.completion - 1).max(0) as f64 * s.alpha_ms * rng.unit_noise(DECODE_NOISE);
    }
}
