//! Azure LLM inference trace 2023 (Splitwise; `AzureLLMInferenceTrace_code.csv` /
//! `AzureLLMInferenceTrace_conv.csv`): one row per request with `TIMESTAMP`, `ContextTokens`,
//! `GeneratedTokens`.
//!
//! - `TIMESTAMP` is `YYYY-MM-DD HH:MM:SS.fffffff`: 7 fractional digits (100 ns) and no time zone. It
//!   is read as **UTC** (the dataset states no zone), and **truncated to microseconds**: the 7th
//!   fractional digit (100 ns) is dropped because the contract stores microseconds. That truncation
//!   is the one lossy step of this importer; it never reorders rows by more than 1 µs.
//! - `ContextTokens` → `prompt_tokens`, `GeneratedTokens` → `completion_tokens` (both tokens).
//! - Without `--start` the original 2023-11-16 timestamps are kept; with it, all rows are shifted by
//!   the same offset so that the first row is at `--start`.
//! - Defaults: app `azure-code` / `azure-conv` (from the file name; `azure` otherwise), supply
//!   `azure-llm-2023`; request ids `<app>-<row>` with the 1-based data row. The trace has no
//!   latencies, statuses or prompt content, so those columns are null.

use std::path::Path;

use chrono::NaiveDateTime;

use super::rows::{Request, RequestRows};
use super::{Csv, ImportOptions, Imported, bad_row};
use crate::error::Result;

pub const DEFAULT_SUPPLY: &str = "azure-llm-2023";

fn default_app(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.contains("code") {
        "azure-code"
    } else if name.contains("conv") {
        "azure-conv"
    } else {
        "azure"
    }
}

/// Parses `2023-11-16 18:17:03.9799600` as UTC microseconds, truncating below 1 µs.
pub fn parse_timestamp(value: &str) -> Option<i64> {
    let t = NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let t = t.and_utc();
    // timestamp_micros() floors the sub-microsecond part: the documented truncation.
    Some(t.timestamp_micros())
}

pub fn read(input: &Path, options: &ImportOptions) -> Result<Imported> {
    let csv = Csv::read(input)?;
    let (c_ts, c_in, c_out) = (
        csv.column("TIMESTAMP")?,
        csv.column("ContextTokens")?,
        csv.column("GeneratedTokens")?,
    );
    let app = options
        .app_id
        .clone()
        .unwrap_or_else(|| default_app(input).to_string());
    let supply = options
        .supply_id
        .clone()
        .unwrap_or_else(|| DEFAULT_SUPPLY.to_string());
    let mut parsed = Vec::with_capacity(csv.rows.len());
    for row in &csv.rows {
        let raw = csv.field(row, c_ts)?;
        let ts = parse_timestamp(raw)
            .ok_or_else(|| bad_row(input, row.0, format!("bad TIMESTAMP `{raw}`")))?;
        parsed.push((
            row.0,
            ts,
            csv.parse::<i64>(row, c_in)?,
            csv.parse::<i64>(row, c_out)?,
        ));
    }
    let shift = match (options.start, parsed.iter().map(|p| p.1).min()) {
        (Some(start), Some(first)) => super::micros(start) - first,
        _ => 0,
    };
    let mut rows = RequestRows::with_capacity(parsed.len());
    let mut id = String::new();
    for (n, ts, prompt, completion) in parsed {
        id.clear();
        id.push_str(&app);
        id.push('-');
        id.push_str(&n.to_string());
        rows.push(&Request {
            request_id: Some(&id),
            ts_us: Some(ts + shift),
            app_id: Some(&app),
            supply_id: Some(&supply),
            prompt_tokens: Some(prompt),
            completion_tokens: Some(completion),
            ..Default::default()
        });
    }
    let n = rows.len();
    Ok(Imported {
        tag: app.clone(),
        requests: Some(rows.finish()?),
        gpu_metrics: None,
        notes: vec![format!(
            "{n} requests; TIMESTAMP read as UTC and truncated from 100 ns to 1 µs precision{}",
            if shift != 0 {
                format!("; shifted by {shift} µs to start at --start")
            } else {
                String::new()
            }
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventh_digit_is_truncated() {
        let a = parse_timestamp("2023-11-16 18:17:03.9799609").unwrap();
        let b = parse_timestamp("2023-11-16 18:17:03.9799600").unwrap();
        assert_eq!(a, b);
        assert_eq!(a % 1_000_000, 979_960);
    }
}
