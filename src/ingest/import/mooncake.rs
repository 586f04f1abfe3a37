//! Mooncake FAST'25 traces (`conversation_trace.jsonl`, `synthetic_trace.jsonl`): one JSON object per
//! line with `timestamp` (ms, relative to the trace start), `input_length`, `output_length` (tokens)
//! and `hash_ids` (remapped prefix-block ids, one per 512-token block of the prompt).
//!
//! - `ts` = start + `timestamp` ms; start defaults to 2025-02-21T00:00:00Z (the release date: the
//!   trace records no real date) and is set with `--start`.
//! - `input_length` → `prompt_tokens`, `output_length` → `completion_tokens`.
//! - `hash_ids` → `prefix_block_hashes` with `prefix_block_tokens` = 512. `prefix_hash` is the first
//!   block's id as a string, so features can group requests by shared prefix, and `prefix_tokens` is
//!   the length that id covers, min(512, prompt_tokens).
//! - `cached_tokens` stays null: the trace records which blocks are *reusable*, not which were cache
//!   hits in the serving system.
//! - Defaults: app `mooncake-<trace>` (e.g. `mooncake-conversation`), supply `mooncake-kimi`; request
//!   ids `<app>-<line>` with the 1-based line number.

use std::path::Path;

use serde::Deserialize;

use super::rows::{Request, RequestRows};
use super::{ImportOptions, Imported, bad_row, default_start, read_text};
use crate::error::Result;

pub const BLOCK_TOKENS: i64 = 512;
pub const DEFAULT_SUPPLY: &str = "mooncake-kimi";

#[derive(Deserialize)]
struct Line {
    timestamp: f64,
    input_length: i64,
    output_length: i64,
    #[serde(default)]
    hash_ids: Vec<i64>,
}

fn default_app(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let trace = stem.strip_suffix("_trace").unwrap_or(&stem);
    format!("mooncake-{trace}")
}

pub fn read(input: &Path, options: &ImportOptions) -> Result<Imported> {
    let text = read_text(input)?;
    let app = options.app_id.clone().unwrap_or_else(|| default_app(input));
    let supply = options
        .supply_id
        .clone()
        .unwrap_or_else(|| DEFAULT_SUPPLY.to_string());
    let start = super::micros(options.start.unwrap_or_else(|| default_start(2025, 2, 21)));
    let mut rows = RequestRows::with_capacity(text.len() / 200);
    let mut id = String::new();
    let mut prefix = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let l: Line = serde_json::from_str(line)
            .map_err(|e| bad_row(input, n, format!("invalid JSON: {e}")))?;
        let ts_us = (l.timestamp.is_finite() && l.timestamp >= 0.0)
            .then(|| start.checked_add((l.timestamp * 1000.0).round() as i64))
            .flatten()
            .ok_or_else(|| {
                bad_row(
                    input,
                    n,
                    "timestamp must be a non-negative number of milliseconds within the calendar",
                )
            })?;
        id.clear();
        id.push_str(&app);
        id.push('-');
        id.push_str(&n.to_string());
        prefix.clear();
        if let Some(first) = l.hash_ids.first() {
            prefix.push_str(&first.to_string());
        }
        rows.push(&Request {
            request_id: Some(&id),
            ts_us: Some(ts_us),
            app_id: Some(&app),
            supply_id: Some(&supply),
            prompt_tokens: Some(l.input_length),
            completion_tokens: Some(l.output_length),
            prefix_hash: (!l.hash_ids.is_empty()).then_some(prefix.as_str()),
            prefix_tokens: (!l.hash_ids.is_empty()).then(|| l.input_length.min(BLOCK_TOKENS)),
            prefix_block_hashes: Some(&l.hash_ids),
            prefix_block_tokens: Some(BLOCK_TOKENS),
            ..Default::default()
        });
    }
    let n = rows.len();
    Ok(Imported {
        tag: app.clone(),
        requests: Some(rows.finish()?),
        gpu_metrics: None,
        notes: vec![format!(
            "{n} requests; hash_ids kept as 512-token prefix blocks; cached_tokens left null (the trace records reusability, not cache hits)"
        )],
    })
}
