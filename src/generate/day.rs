//! One app's rows for one day: draws, latencies, then the `requests` and `gpu_metrics` batches, so a
//! day depends only on (seed, app, date).

use std::fmt::Write as _;

use arrow::array::RecordBatch;
use chrono::{Datelike, NaiveDate};

use super::apps::{APPS, PrefixKind};
use super::driver::GenerateConfig;
use super::engine::{hosted_latencies, run_engine, supply_of};
use super::invalid::{Planted, plant};
use super::requests::{Status, draw_requests, hash2};
use super::telemetry::gpu_rows;
use super::{BLOCK_TOKENS, TIMEOUT_MS, TTFT_NOISE};
use crate::error::Result;
use crate::ingest::import::rows::{Request, RequestRows};
use crate::rng::{Xoshiro256, mix};

/// One app's rows for one day.
pub(super) struct AppDay {
    pub(super) requests: RecordBatch,
    pub(super) gpu_metrics: Option<RecordBatch>,
    pub(super) valid: u64,
    pub(super) sessions: u64,
    pub(super) invalid: [u64; 4],
}

fn day_number(date: NaiveDate) -> u64 {
    date.num_days_from_ce() as u64
}

pub(super) fn generate_app_day(
    config: &GenerateConfig,
    a: usize,
    date: NaiveDate,
    n: u64,
) -> Result<AppDay> {
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

    let mut planted = Planted::new(n, config.invalid_share, a + day_number(date) as usize);
    let ymd = date.format("%Y%m%d").to_string();
    let mut rows = RequestRows::with_capacity(n + planted.remaining());
    let mut session = String::new();
    let mut prefix = String::new();
    let mut prompt_hash = String::new();
    let mut blocks: Vec<i64> = Vec::new();
    for (i, d) in draws.iter().enumerate() {
        let reason = planted.at(i);
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
        let mut row = Request {
            request_id: None,
            ts_us: Some(d.ts_us),
            app_id: Some(app.name),
            supply_id: Some(supply.name),
            prompt_tokens: Some(d.prompt),
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
            status: Some(d.status.as_str()),
            finish_reason: finish,
            cost_usd: Some(cost),
            feedback: None,
        };
        let copies = reason.map_or(1, |reason| plant(reason, &mut row));
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
        invalid: planted.counts,
    })
}
