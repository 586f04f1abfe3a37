//! Each request's drawn facts (arrival, lengths, session, shared prefix, cached tokens, status)
//! before any latency, so the engine and the hosted API see the same requests:
//!
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
//! - `prefix_block_hashes` (written in `day.rs`): one id per
//!   [`BLOCK_TOKENS`](super::BLOCK_TOKENS)-token block of the prompt (the last partial block
//!   included, as in Mooncake); blocks fully inside the shared prefix get ids from the prefix, the
//!   rest from the prompt (chat: from the session, so a later turn extends its history's chain).
//! - Status: `error` 0.4 % (no tokens, `e2e_ms` ≈ 50 ms, not billed), `timeout` 0.1 % (`e2e_ms` =
//!   120 s, partial output), `cancelled` 1 % for chat only (partial output); otherwise `ok`.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::PAGE_TOKENS;
use super::apps::{
    APPS, CHAT_SYSTEM_PROMPTS, CHAT_TURN_GROWTH, CHAT_USER_MEDIAN, CODE_TEMPLATES, PrefixKind,
    RAG_DOC_MEDIAN, RAG_DOC_SIGMA, RAG_DOCS, RAG_QUESTION_MEDIAN, RAG_QUESTION_SIGMA,
    SUMMARIZE_PREFIX,
};
use super::arrivals::arrivals;
use super::driver::GenerateConfig;
use super::engine::supply_of;
use crate::rng::{Xoshiro256, mix};

/// The drawn facts of one request before latencies.
#[derive(Clone, Copy, Default)]
pub(super) struct Draw {
    pub(super) ts_us: i64,
    pub(super) prompt: i64,
    pub(super) completion: i64,
    pub(super) cached: i64,
    /// Session index (chat) and turn.
    pub(super) session: Option<(u32, u32)>,
    /// Prefix id (for hashing), its display number and length.
    pub(super) prefix_id: u64,
    pub(super) prefix_no: u64,
    pub(super) prefix_tokens: i64,
    /// Identity of the prompt text.
    pub(super) identity: u64,
    pub(super) status: Status,
    pub(super) clipped: bool,
    /// Share of the output produced before a timeout/cancel.
    pub(super) partial: f64,
    pub(super) replica: u32,
    pub(super) queue_ms: f64,
    pub(super) ttft_ms: f64,
    pub(super) e2e_ms: f64,
}

#[derive(Clone, Copy, Default, PartialEq)]
pub(super) enum Status {
    #[default]
    Ok,
    Error,
    Timeout,
    Cancelled,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Cancelled => "cancelled",
        }
    }
}

pub(super) fn hash2(a: u64, b: u64) -> u64 {
    mix(&[a, b])
}

/// Draws the requests of one (app, day), without latencies.
pub(super) fn draw_requests(
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
