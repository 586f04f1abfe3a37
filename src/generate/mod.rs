//! The synthetic lake generator: realistic `requests` and `gpu_metrics` for several apps served by
//! supplies with a **known ground-truth engine**, so later stages can check that the pipeline
//! recovers what was put in, and so the product can ship a small demo lake.
//!
//! # Apps ([`APPS`])
//! | app | supply | share | prompt median (σ) | completion median (σ) | max_tokens | arrivals |
//! |---|---|---:|---:|---:|---:|---|
//! | `chat` | `chat-llama8b-h100` | 40 % | 120 over all turns | 180 (0.7) | 1024 | CV 1.2, peak/mean 1.6 at 15:00 |
//! | `rag` | `rag-llama70b-h100` | 25 % | ≈5,600 (doc 5,300 (0.25) + question 300 (0.5)) | 200 (0.5) | 512 | CV 1.5, peak/mean 1.5 at 14:00 |
//! | `code` | `code-llama70b-a100` | 20 % | 1,500 (0.6) | 800 (0.4) | 2048 | CV 1.3, peak/mean 1.8 at 13:00 |
//! | `summarize` | `summarize-gpt4o-mini` | 15 % | 3,000 (0.4) | 300 (0.3) | 512 | CV 3.0, peak/mean 1.9 at 02:00 (night bursts) |
//!
//! Lengths are lognormal (median, log-σ), completions clipped at `max_tokens` (then
//! `finish_reason` = `length`, else `stop`).
//! - **chat**: multi-turn sessions. Each arrival starts a new session with probability 1/3, else
//!   continues a random open session; a session closes after each turn with probability 1/3 (≈3
//!   turns per session). Prompt = system prompt (one of 4, 40/55/70/90 tokens: `prefix_hash`
//!   `chat-sys-<k>`) + user part × (1 + 0.6 (turn − 1)), the user part lognormal(25, 0.7); this
//!   gives the documented overall median of 120. The cached tokens of a later turn are the
//!   previous turn's prompt (its KV is reusable), rounded down to 16-token pages. Sessions are
//!   per day (cut at 00:00 UTC).
//! - **rag**: a pool of 2,000 documents shared across days; each request picks one uniformly;
//!   `prefix_hash` = `rag-doc-<d>`, `prefix_tokens` = the document's length (fixed per document).
//! - **code**: 8 prompt templates (`code-tmpl-<k>`, 256 + 32k tokens) as shared prefixes.
//! - **summarize**: one instruction prefix `sum-instr-0` of 150 tokens; batch jobs at night.
//! - Duplicated prompts (same `prompt_hash`, tokens and prefix as an earlier request of the day):
//!   chat 2 %, rag 10 %, code 5 %, summarize 0 %.
//! - Prefix caching (self-hosted): `cached_tokens` = the shared prefix rounded down to 16-token
//!   pages when that prefix (or, for a duplicate, the whole prompt) was already seen that day;
//!   0 otherwise and on the hosted supply.
//! - `prefix_block_hashes`: one id per [`BLOCK_TOKENS`]-token block of the prompt (the last partial
//!   block included, as in Mooncake); blocks fully inside the shared prefix get ids from the prefix,
//!   the rest from the prompt (chat: from the session, so a later turn extends its history's chain).
//! - Status: `error` 0.4 % (no tokens, `e2e_ms` ≈ 50 ms, not billed), `timeout` 0.1 % (`e2e_ms` =
//!   120 s, partial output), `cancelled` 1 % for chat only (partial output); otherwise `ok`.
//!
//! # Arrivals
//! For each (app, day) the number of requests is fixed (N × share ÷ days, remainders spread
//! deterministically), so realised shares are exact. Arrival times are a gamma-renewal process with
//! inter-arrival CV as in the table (shape 1/CV²; CV > 1 is burstier than Poisson), normalised to
//! the day in "operational time" and mapped through the app's diurnal profile
//! rate(h) ∝ 1 + A·cos(2π(h − peak)/24), whose peak-to-mean ratio is 1 + A.
//!
//! # Ground-truth engine (self-hosted supplies, [`SUPPLIES`])
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
//!
//! # Invalid rows
//! With `invalid_share` s > 0, round(s × n) rows of each (app, day) break the contract, cycling
//! (from a starting reason that rotates with app and day) through `null_app_id`, `negative_tokens` (prompt_tokens negated), `duplicate_request_id` (an exact
//! extra copy of a valid row) and `unknown_status` (`status` = `unknown`); exact counts per reason go
//! to `ground_truth.json`.
//!
//! # Determinism and streaming
//! Every draw comes from [`Xoshiro256`] seeded by (seed, app, day number), so a day's rows do not
//! depend on the other days or on `--days`; days are generated one at a time (apps in parallel
//! with rayon) and written with [`LakeWriter`] (`part-<app>-<n>.parquet`), so memory is one day.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use arrow::array::RecordBatch;
use chrono::{Datelike, Duration, NaiveDate};
use rayon::prelude::*;
use serde::Serialize;

use crate::contracts;
use crate::error::{Error, Result};
use crate::rng::{Xoshiro256, mix};
use crate::ingest::import::rows::{GpuRows, GpuWindow, Request, RequestRows};
use crate::storage::Location;
use crate::storage::parquet::LakeWriter;

/// Tokens per `prefix_block_hashes` block (as in the Mooncake traces).
pub const BLOCK_TOKENS: i64 = 512;
/// KV-cache page size used to round cached tokens.
pub const PAGE_TOKENS: i64 = 16;
/// Noise (log-σ, mean one) on TTFT and queue time.
pub const TTFT_NOISE: f64 = 0.10;
/// Noise on the decode part of E2E.
pub const DECODE_NOISE: f64 = 0.05;
/// Per-token ITL noise; a window mean over k tokens gets σ / √k.
pub const ITL_TOKEN_NOISE: f64 = 0.05;
/// Client timeout of every supply.
pub const TIMEOUT_MS: f64 = 120_000.0;
/// Telemetry window.
pub const WINDOW_S: i64 = 60;

/// Invalid-row reasons, named as in `sql/validate/requests.sql`.
pub const INVALID_REASONS: [&str; 4] = [
    "null_app_id",
    "negative_tokens",
    "duplicate_request_id",
    "unknown_status",
];

/// How an app's prompts share prefixes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixKind {
    /// Multi-turn sessions with one of a few system prompts.
    Sessions,
    /// A pool of shared documents.
    Documents,
    /// A few prompt templates.
    Templates,
    /// One shared instruction.
    Instruction,
}

/// The documented shape of an app.
#[derive(Debug, Clone, Serialize)]
pub struct AppShape {
    pub name: &'static str,
    pub supply: &'static str,
    pub share: f64,
    /// Target median of prompt tokens over all requests.
    pub prompt_median: f64,
    pub prompt_sigma: f64,
    pub completion_median: f64,
    pub completion_sigma: f64,
    pub max_tokens: i64,
    pub temperature: f64,
    pub prefix: PrefixKind,
    /// Inter-arrival coefficient of variation (gamma renewal, shape 1/CV²).
    pub interarrival_cv: f64,
    pub diurnal_peak_hour: f64,
    /// Peak-to-mean ratio of the 24-hour profile (1 + amplitude).
    pub peak_to_mean: f64,
    pub duplicate_rate: f64,
    pub error_rate: f64,
    pub timeout_rate: f64,
    pub cancel_rate: f64,
}

pub const APPS: [AppShape; 4] = [
    AppShape {
        name: "chat",
        supply: "chat-llama8b-h100",
        share: 0.40,
        prompt_median: 120.0,
        prompt_sigma: 0.7,
        completion_median: 180.0,
        completion_sigma: 0.7,
        max_tokens: 1024,
        temperature: 0.7,
        prefix: PrefixKind::Sessions,
        interarrival_cv: 1.2,
        diurnal_peak_hour: 15.0,
        peak_to_mean: 1.6,
        duplicate_rate: 0.02,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.01,
    },
    AppShape {
        name: "rag",
        supply: "rag-llama70b-h100",
        share: 0.25,
        prompt_median: 5600.0,
        prompt_sigma: 0.25,
        completion_median: 200.0,
        completion_sigma: 0.5,
        max_tokens: 512,
        temperature: 0.0,
        prefix: PrefixKind::Documents,
        interarrival_cv: 1.5,
        diurnal_peak_hour: 14.0,
        peak_to_mean: 1.5,
        duplicate_rate: 0.10,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.0,
    },
    AppShape {
        name: "code",
        supply: "code-llama70b-a100",
        share: 0.20,
        prompt_median: 1500.0,
        prompt_sigma: 0.6,
        completion_median: 800.0,
        completion_sigma: 0.4,
        max_tokens: 2048,
        temperature: 0.2,
        prefix: PrefixKind::Templates,
        interarrival_cv: 1.3,
        diurnal_peak_hour: 13.0,
        peak_to_mean: 1.8,
        duplicate_rate: 0.05,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.0,
    },
    AppShape {
        name: "summarize",
        supply: "summarize-gpt4o-mini",
        share: 0.15,
        prompt_median: 3000.0,
        prompt_sigma: 0.4,
        completion_median: 300.0,
        completion_sigma: 0.3,
        max_tokens: 512,
        temperature: 0.0,
        prefix: PrefixKind::Instruction,
        interarrival_cv: 3.0,
        diurnal_peak_hour: 2.0,
        peak_to_mean: 1.9,
        duplicate_rate: 0.0,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.0,
    },
];

/// Chat: the user part's lognormal median, calibrated so the overall prompt median is 120.
const CHAT_USER_MEDIAN: f64 = 25.0;
const CHAT_TURN_GROWTH: f64 = 0.6;
const CHAT_SYSTEM_PROMPTS: [i64; 4] = [40, 55, 70, 90];
const RAG_DOCS: u64 = 2000;
const RAG_DOC_MEDIAN: f64 = 5300.0;
const RAG_DOC_SIGMA: f64 = 0.25;
const RAG_QUESTION_MEDIAN: f64 = 300.0;
const RAG_QUESTION_SIGMA: f64 = 0.5;
const CODE_TEMPLATES: u64 = 8;
const SUMMARIZE_PREFIX: i64 = 150;

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

fn supply_of(app: &AppShape) -> &'static SupplyTruth {
    SUPPLIES
        .iter()
        .find(|s| s.name == app.supply)
        .expect("every app names a supply")
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Valid requests in total (injected duplicates come on top).
    pub requests: u64,
    pub days: u32,
    pub seed: u64,
    /// The window ends at this date's 00:00 UTC (exclusive).
    pub end: NaiveDate,
    /// Share of rows made contract-breaking; 0 disables.
    pub invalid_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppTruth {
    #[serde(flatten)]
    pub shape: AppShape,
    pub requests: u64,
    pub realised_share: f64,
    pub sessions: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoiseTruth {
    pub ttft_sigma: f64,
    pub decode_sigma: f64,
    pub itl_token_sigma: f64,
}

/// `<out>/ground_truth.json`.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    pub seed: u64,
    pub start: String,
    pub end: String,
    pub days: u32,
    pub requests: u64,
    /// Rows written to `requests`, injected duplicates included.
    pub request_rows: u64,
    pub gpu_metrics_rows: u64,
    pub window_s: i64,
    pub block_tokens: i64,
    pub timeout_ms: f64,
    pub noise: NoiseTruth,
    pub apps: Vec<AppTruth>,
    pub supplies: Vec<SupplyTruth>,
    pub invalid_share: f64,
    /// Injected contract-breaking rows per reason.
    pub invalid: BTreeMap<String, u64>,
}

/// Generates the lake at `out` and writes `ground_truth.json` there.
pub async fn generate(out: &Location, config: &GenerateConfig) -> Result<GroundTruth> {
    if config.days == 0 {
        return Err(Error::Setting {
            key: "days".into(),
            message: "must be at least 1".into(),
        });
    }
    if !(0.0..0.5).contains(&config.invalid_share) {
        return Err(Error::Setting {
            key: "invalid-share".into(),
            message: "must be in [0, 0.5)".into(),
        });
    }
    let start = config.end - Duration::days(config.days as i64);
    let counts = per_day_counts(config);
    let mut invalid: BTreeMap<String, u64> =
        INVALID_REASONS.iter().map(|r| (r.to_string(), 0)).collect();
    let mut app_requests = [0u64; APPS.len()];
    let mut sessions = [0u64; APPS.len()];
    let (mut request_rows, mut gpu_rows) = (0u64, 0u64);
    for day in 0..config.days {
        let date = start + Duration::days(day as i64);
        let days: Vec<AppDay> = APPS
            .par_iter()
            .enumerate()
            .map(|(a, _)| generate_app_day(config, a, date, counts[a][day as usize]))
            .collect::<Result<_>>()?;
        let mut tasks = Vec::new();
        for (a, d) in days.into_iter().enumerate() {
            app_requests[a] += d.valid;
            sessions[a] += d.sessions;
            for (reason, n) in INVALID_REASONS.iter().zip(d.invalid) {
                *invalid.get_mut(*reason).expect("reason") += n;
            }
            for (contract, batch) in [
                (contracts::requests(), Some(d.requests)),
                (contracts::gpu_metrics(), d.gpu_metrics),
            ] {
                let Some(batch) = batch.filter(|b| b.num_rows() > 0) else {
                    continue;
                };
                let mut writer = LakeWriter::new(
                    out.clone(),
                    contract.table,
                    contract.schema.clone(),
                    APPS[a].name,
                );
                tasks.push(tokio::spawn(async move {
                    writer.write(batch).await?;
                    Ok::<_, Error>((contract.table, writer.finish().await?))
                }));
            }
        }
        for task in tasks {
            let (table, rows) = task
                .await
                .map_err(|e| Error::Simulation(format!("writer task failed: {e}")))??;
            match table {
                "requests" => request_rows += rows as u64,
                _ => gpu_rows += rows as u64,
            }
        }
        tracing::debug!(%date, "generated day");
    }
    let total: u64 = app_requests.iter().sum();
    let truth = GroundTruth {
        seed: config.seed,
        start: format!("{start}T00:00:00Z"),
        end: format!("{}T00:00:00Z", config.end),
        days: config.days,
        requests: total,
        request_rows,
        gpu_metrics_rows: gpu_rows,
        window_s: WINDOW_S,
        block_tokens: BLOCK_TOKENS,
        timeout_ms: TIMEOUT_MS,
        noise: NoiseTruth {
            ttft_sigma: TTFT_NOISE,
            decode_sigma: DECODE_NOISE,
            itl_token_sigma: ITL_TOKEN_NOISE,
        },
        apps: APPS
            .iter()
            .enumerate()
            .map(|(a, shape)| AppTruth {
                shape: shape.clone(),
                requests: app_requests[a],
                realised_share: app_requests[a] as f64 / total.max(1) as f64,
                sessions: sessions[a],
            })
            .collect(),
        supplies: SUPPLIES.to_vec(),
        invalid_share: config.invalid_share,
        invalid,
    };
    let json = serde_json::to_vec_pretty(&truth).map_err(|source| Error::Json {
        context: "encoding ground_truth.json".into(),
        source,
    })?;
    out.put(&out.child("ground_truth.json"), json.into())
        .await?;
    Ok(truth)
}

/// Requests per app and day: N × share per app (the last app takes the rounding remainder), split
/// evenly over days with the remainder going to the first days.
fn per_day_counts(config: &GenerateConfig) -> Vec<Vec<u64>> {
    let mut left = config.requests;
    APPS.iter()
        .enumerate()
        .map(|(a, app)| {
            let total = if a + 1 == APPS.len() {
                left
            } else {
                ((config.requests as f64 * app.share).round() as u64).min(left)
            };
            left -= total;
            let days = config.days as u64;
            (0..days)
                .map(|d| total / days + u64::from(d < total % days))
                .collect()
        })
        .collect()
}

/// One app's rows for one day.
struct AppDay {
    requests: RecordBatch,
    gpu_metrics: Option<RecordBatch>,
    valid: u64,
    sessions: u64,
    invalid: [u64; 4],
}

/// The drawn facts of one request before latencies.
#[derive(Clone, Copy, Default)]
struct Draw {
    ts_us: i64,
    prompt: i64,
    completion: i64,
    cached: i64,
    /// Session index (chat) and turn.
    session: Option<(u32, u32)>,
    /// Prefix id (for hashing), its display number and length.
    prefix_id: u64,
    prefix_no: u64,
    prefix_tokens: i64,
    /// Identity of the prompt text.
    identity: u64,
    status: Status,
    clipped: bool,
    /// Share of the output produced before a timeout/cancel.
    partial: f64,
    replica: u32,
    queue_ms: f64,
    ttft_ms: f64,
    e2e_ms: f64,
}

#[derive(Clone, Copy, Default, PartialEq)]
enum Status {
    #[default]
    Ok,
    Error,
    Timeout,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Cancelled => "cancelled",
        }
    }
}

fn day_number(date: NaiveDate) -> u64 {
    date.num_days_from_ce() as u64
}

fn day_start_us(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros()
}

/// Arrival times of `n` requests on `date`: gamma renewal in operational time, mapped through the
/// app's diurnal profile. Sorted.
fn arrivals(rng: &mut Xoshiro256, app: &AppShape, date: NaiveDate, n: usize) -> Vec<i64> {
    let shape = 1.0 / (app.interarrival_cv * app.interarrival_cv);
    let mut cum = Vec::with_capacity(n);
    let mut acc = 0.0;
    for _ in 0..n {
        acc += rng.gamma(shape);
        cum.push(acc);
    }
    let total = acc + rng.gamma(shape);
    // Cumulative diurnal intensity per minute.
    let amplitude = app.peak_to_mean - 1.0;
    let weights: Vec<f64> = (0..1440)
        .map(|m| {
            let h = (m as f64 + 0.5) / 60.0;
            1.0 + amplitude * (std::f64::consts::TAU * (h - app.diurnal_peak_hour) / 24.0).cos()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut edges = Vec::with_capacity(1441);
    edges.push(0.0);
    let mut c = 0.0;
    for w in &weights {
        c += w / sum;
        edges.push(c);
    }
    let base = day_start_us(date);
    let mut minute = 0usize;
    cum.into_iter()
        .map(|x| {
            let u = x / total;
            while minute < 1439 && edges[minute + 1] <= u {
                minute += 1;
            }
            let frac = ((u - edges[minute]) / (edges[minute + 1] - edges[minute])).clamp(0.0, 1.0);
            base + ((minute as f64 + frac) * 60e6) as i64
        })
        .map(|t| t.min(base + 86_400_000_000 - 1))
        .collect()
}

fn hash2(a: u64, b: u64) -> u64 {
    mix(&[a, b])
}

/// Draws the requests of one (app, day), without latencies.
fn draw_requests(
    rng: &mut Xoshiro256,
    config: &GenerateConfig,
    a: usize,
    date: NaiveDate,
    n: usize,
) -> (Vec<Draw>, u64) {
    let app = &APPS[a];
    let supply = supply_of(app);
    let times = arrivals(rng, app, date, n);
    let mut draws: Vec<Draw> = Vec::with_capacity(n);
    let mut seen: HashSet<u64> = HashSet::new();
    // chat: open sessions (index, turn, previous prompt tokens, system prompt).
    let mut open: Vec<(u32, u32, i64, usize)> = Vec::new();
    let mut sessions = 0u32;
    let replicas = supply.replicas.max(1);
    for (i, &ts_us) in times.iter().enumerate() {
        let mut d = Draw {
            ts_us,
            replica: i as u32 % replicas,
            ..Default::default()
        };
        let duplicate = i > 0 && rng.bernoulli(app.duplicate_rate);
        let mut history = 0;
        if duplicate {
            let j = rng.below(i as u64) as usize;
            let src = draws[j];
            d.prompt = src.prompt;
            d.prefix_id = src.prefix_id;
            d.prefix_no = src.prefix_no;
            d.prefix_tokens = src.prefix_tokens;
            d.identity = src.identity;
            if let Some((_, _)) = src.session {
                sessions += 1;
                d.session = Some((sessions - 1, 1));
            }
        } else {
            d.identity = rng.next_u64();
            match app.prefix {
                PrefixKind::Sessions => {
                    let new = open.is_empty() || rng.bernoulli(1.0 / 3.0);
                    let slot = if new {
                        let sys = rng.below(CHAT_SYSTEM_PROMPTS.len() as u64) as usize;
                        open.push((sessions, 0, 0, sys));
                        sessions += 1;
                        open.len() - 1
                    } else {
                        rng.below(open.len() as u64) as usize
                    };
                    let (s, turn, prev, sys) = &mut open[slot];
                    *turn += 1;
                    let sys_len = CHAT_SYSTEM_PROMPTS[*sys];
                    let user = rng.lognormal(CHAT_USER_MEDIAN, app.prompt_sigma);
                    let grown = (user * (1.0 + CHAT_TURN_GROWTH * (*turn - 1) as f64)).round();
                    d.prompt = (sys_len + grown as i64).max(*prev + 1);
                    history = *prev;
                    *prev = d.prompt;
                    d.session = Some((*s, *turn));
                    d.prefix_id = hash2(config.seed ^ 0xC4A7, *sys as u64);
                    d.prefix_no = *sys as u64;
                    d.prefix_tokens = sys_len;
                    if rng.bernoulli(1.0 / 3.0) {
                        open.swap_remove(slot);
                    }
                }
                PrefixKind::Documents => {
                    let doc = rng.below(RAG_DOCS);
                    let mut doc_rng = Xoshiro256::new(hash2(config.seed ^ 0xD0C5, doc));
                    let doc_len = doc_rng.lognormal(RAG_DOC_MEDIAN, RAG_DOC_SIGMA).round() as i64;
                    let question = rng
                        .lognormal(RAG_QUESTION_MEDIAN, RAG_QUESTION_SIGMA)
                        .round() as i64;
                    d.prompt = doc_len + question.max(1);
                    d.prefix_id = hash2(config.seed ^ 0xD0C5, doc);
                    d.prefix_no = doc;
                    d.prefix_tokens = doc_len;
                }
                PrefixKind::Templates => {
                    let k = rng.below(CODE_TEMPLATES);
                    d.prefix_tokens = 256 + 32 * k as i64;
                    d.prefix_id = hash2(config.seed ^ 0xC0DE, k);
                    d.prefix_no = k;
                    let p = rng.lognormal(app.prompt_median, app.prompt_sigma).round() as i64;
                    d.prompt = p.max(d.prefix_tokens + PAGE_TOKENS);
                }
                PrefixKind::Instruction => {
                    d.prefix_tokens = SUMMARIZE_PREFIX;
                    d.prefix_id = hash2(config.seed ^ 0x5077, 0);
                    let p = rng.lognormal(app.prompt_median, app.prompt_sigma).round() as i64;
                    d.prompt = p.max(d.prefix_tokens + PAGE_TOKENS);
                }
            }
        }
        // Prefix caching on self-hosted supplies.
        if supply.self_hosted() {
            let page = |t: i64| t / PAGE_TOKENS * PAGE_TOKENS;
            let mut cached = page(history);
            if duplicate && !seen.insert(d.identity) {
                cached = page(d.prompt - 1);
            } else if !seen.insert(d.prefix_id) {
                cached = cached.max(page(d.prefix_tokens));
            }
            seen.insert(d.identity);
            d.cached = cached.min(d.prompt - 1).max(0);
        }
        let full = rng
            .lognormal(app.completion_median, app.completion_sigma)
            .round()
            .max(1.0) as i64;
        d.clipped = full >= app.max_tokens;
        d.completion = full.min(app.max_tokens);
        let r = rng.next_f64();
        d.status = if r < app.error_rate {
            Status::Error
        } else if r < app.error_rate + app.timeout_rate {
            Status::Timeout
        } else if r < app.error_rate + app.timeout_rate + app.cancel_rate {
            Status::Cancelled
        } else {
            Status::Ok
        };
        d.partial = match d.status {
            Status::Ok => 1.0,
            Status::Error => 0.0,
            _ => 0.1 + 0.8 * rng.next_f64(),
        };
        if d.status != Status::Ok {
            d.completion = (d.completion as f64 * d.partial).round() as i64;
        }
        draws.push(d);
    }
    (draws, sessions as u64)
}

/// One replica-window of the ground-truth engine.
#[derive(Clone, Copy, Default)]
struct EngineWindow {
    arrivals: u32,
    prompt_sum: f64,
    uncached_sum: f64,
    output_sum: f64,
    n: f64,
    waiting: f64,
    queue_ms: f64,
    itl_ms: f64,
    completions_per_s: f64,
    preemptions: f64,
    kv: f64,
    util: f64,
}

/// Runs the engine model over the day's windows and fills request latencies; returns the windows
/// per replica (replica-major).
fn run_engine(rng: &mut Xoshiro256, s: &SupplyTruth, draws: &mut [Draw]) -> Vec<EngineWindow> {
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
fn hosted_latencies(rng: &mut Xoshiro256, s: &SupplyTruth, draws: &mut [Draw]) {
    for d in draws.iter_mut() {
        d.ttft_ms = (HOSTED_TTFT_BASE_MS + s.gamma_ms_per_token * d.prompt as f64)
            * rng.unit_noise(TTFT_NOISE);
        d.e2e_ms = d.ttft_ms
            + (d.completion - 1).max(0) as f64 * s.alpha_ms * rng.unit_noise(DECODE_NOISE);
    }
}

fn generate_app_day(config: &GenerateConfig, a: usize, date: NaiveDate, n: u64) -> Result<AppDay> {
    let app = &APPS[a];
    let supply = supply_of(app);
    let mut rng = Xoshiro256::new(mix(&[config.seed, a as u64, day_number(date)]));
    let n = n as usize;
    let (mut draws, sessions) = draw_requests(&mut rng, config, a, date, n);
    let windows = if supply.self_hosted() {
        Some(run_engine(&mut rng, supply, &mut draws))
    } else {
        hosted_latencies(&mut rng, supply, &mut draws);
        None
    };

    // Invalid rows: evenly spaced positions, reasons cycling; the cycle starts at a different reason
    // per (app, day) so that small lakes, with one invalid row per app-day, still get every reason.
    let k = (n as f64 * config.invalid_share).round() as usize;
    let first_reason = (a + day_number(date) as usize) % INVALID_REASONS.len();
    let mut invalid_at: Vec<(usize, usize)> = (0..k)
        .map(|j| {
            (
                (2 * j + 1) * n / (2 * k),
                (first_reason + j) % INVALID_REASONS.len(),
            )
        })
        .collect();
    invalid_at.reverse();
    let mut invalid = [0u64; 4];

    let ymd = date.format("%Y%m%d").to_string();
    let mut rows = RequestRows::with_capacity(n + k);
    let mut session = String::new();
    let mut prefix = String::new();
    let mut prompt_hash = String::new();
    let mut blocks: Vec<i64> = Vec::new();
    for (i, d) in draws.iter().enumerate() {
        let reason = match invalid_at.last() {
            Some(&(pos, reason)) if pos == i => {
                invalid_at.pop();
                invalid[reason] += 1;
                Some(reason)
            }
            _ => None,
        };
        session.clear();
        if let Some((s, _)) = d.session {
            let _ = write!(session, "{}-{ymd}-s{s:06}", app.name);
        }
        prefix.clear();
        let _ = match app.prefix {
            PrefixKind::Sessions => write!(prefix, "chat-sys-{}", d.prefix_no),
            PrefixKind::Documents => write!(prefix, "rag-doc-{}", d.prefix_no),
            PrefixKind::Templates => write!(prefix, "code-tmpl-{}", d.prefix_no),
            PrefixKind::Instruction => write!(prefix, "sum-instr-0"),
        };
        prompt_hash.clear();
        let _ = write!(prompt_hash, "{:016x}", d.identity);
        blocks.clear();
        let chain_of = match d.session {
            Some((s, _)) => hash2(config.seed ^ a as u64, hash2(day_number(date), s as u64)),
            None => d.identity,
        };
        let n_blocks = (d.prompt + BLOCK_TOKENS - 1) / BLOCK_TOKENS;
        for j in 0..n_blocks {
            let id = if (j + 1) * BLOCK_TOKENS <= d.prefix_tokens {
                hash2(d.prefix_id, j as u64)
            } else {
                hash2(chain_of, j as u64)
            };
            blocks.push((id >> 1) as i64);
        }
        let billed = d.status != Status::Error;
        let cost = if billed {
            (d.prompt as f64 * supply.price_input_per_mtok
                + d.completion as f64 * supply.price_output_per_mtok)
                / 1e6
        } else {
            0.0
        };
        let (ttft, e2e) = match d.status {
            Status::Ok | Status::Cancelled => (
                Some(d.ttft_ms),
                d.ttft_ms + (d.e2e_ms - d.ttft_ms) * d.partial,
            ),
            Status::Error => (None, 50.0 * rng.unit_noise(TTFT_NOISE)),
            Status::Timeout => (Some(d.ttft_ms), TIMEOUT_MS),
        };
        let finish = match d.status {
            Status::Ok if d.clipped => Some("length"),
            Status::Ok => Some("stop"),
            _ => None,
        };
        let mut status = d.status.as_str();
        let mut prompt = d.prompt;
        let mut app_id = Some(app.name);
        match reason.map(|r| INVALID_REASONS[r]) {
            Some("null_app_id") => app_id = None,
            Some("negative_tokens") => prompt = -prompt,
            Some("unknown_status") => status = "unknown",
            _ => {}
        }
        let row = Request {
            request_id: None,
            ts_us: Some(d.ts_us),
            app_id,
            supply_id: Some(supply.name),
            prompt_tokens: Some(prompt),
            completion_tokens: Some(d.completion),
            session_id: d.session.map(|_| session.as_str()),
            cached_tokens: Some(d.cached),
            prefix_hash: Some(&prefix),
            prefix_tokens: Some(d.prefix_tokens),
            prefix_block_hashes: Some(&blocks),
            prefix_block_tokens: Some(BLOCK_TOKENS),
            prompt_hash: Some(&prompt_hash),
            max_tokens: Some(app.max_tokens),
            temperature: Some(app.temperature),
            queue_ms: Some(d.queue_ms),
            ttft_ms: ttft,
            e2e_ms: Some(e2e),
            status: Some(status),
            finish_reason: finish,
            cost_usd: Some(cost),
            feedback: None,
        };
        let copies = if reason == Some(2) { 2 } else { 1 };
        for _ in 0..copies {
            let _ = write!(rows.request_id, "{}-{ymd}-{i:07}", app.name);
            rows.request_id.append_value("");
            rows.push_after_id(&row);
        }
    }
    let requests = rows.finish()?;

    let gpu_metrics = match windows {
        Some(w) => Some(gpu_rows(&mut rng, supply, date, &w)?),
        None => None,
    };
    Ok(AppDay {
        requests,
        gpu_metrics,
        valid: n as u64,
        sessions,
        invalid: invalid.map(|x| x),
    })
}

fn gpu_rows(
    rng: &mut Xoshiro256,
    s: &SupplyTruth,
    date: NaiveDate,
    w: &[EngineWindow],
) -> Result<RecordBatch> {
    let mut rows = GpuRows::with_capacity(w.len());
    let base = day_start_us(date);
    let mut instance = String::new();
    for r in 0..s.replicas as usize {
        instance.clear();
        let _ = write!(instance, "{}-{r}", s.name);
        for (minute, e) in w[r * 1440..(r + 1) * 1440].iter().enumerate() {
            let count = e.arrivals.max(1) as f64;
            let o = e.output_sum / count;
            let p_all = e.prompt_sum / count;
            let tokens = e.completions_per_s * o * WINDOW_S as f64;
            let itl = (e.n > 0.0 && tokens >= 1.0)
                .then(|| e.itl_ms * rng.unit_noise(ITL_TOKEN_NOISE / tokens.sqrt()));
            rows.push(&GpuWindow {
                ts_us: Some(base + minute as i64 * WINDOW_S * 1_000_000),
                supply_id: Some(s.name),
                instance_id: Some(&instance),
                num_running: Some(e.n),
                num_waiting: Some(e.waiting),
                kv_cache_usage: Some(e.kv),
                gpu_util: Some(e.util),
                window_s: Some(WINDOW_S as f64),
                requests_per_s: Some(e.arrivals as f64 / WINDOW_S as f64),
                prompt_tokens_per_s: Some(e.completions_per_s * p_all),
                generation_tokens_per_s: Some(e.completions_per_s * o),
                mean_itl_ms: itl,
                mean_queue_ms: Some(e.queue_ms),
                mem_used_bytes: Some((0.9 * s.gpu_memory_bytes * s.tp as f64) as i64),
                power_w: Some(s.tp as f64 * (s.gpu_idle_w + (s.gpu_tdp_w - s.gpu_idle_w) * e.util)),
                preemptions: Some(e.preemptions),
            });
        }
    }
    rows.finish()
}
