//! llm-inferno model-tuner offline-observer CSV (`tuner-exp13.csv`: vLLM serving facebook/opt-125m on
//! one A100): one row per observation window with `RPM`, `tokens`, `avgConcurrency`,
//! `maxConcurrency`, `avgWait`, `avgITL`. The file starts with a UTF-8 BOM, which is stripped.
//!
//! Each row becomes one `gpu_metrics` window:
//! - `ts` = start + i × window, start defaulting to 2026-03-27T00:00:00Z (the date the file was
//!   last moved upstream; no real date is recorded). **The window length is not recorded**: it is an
//!   assumption, `--window-s` (default 60 s), also written to `window_s`.
//! - `num_running` = `avgConcurrency`; `requests_per_s` = RPM / 60;
//!   `generation_tokens_per_s` = RPM / 60 × `tokens` (mean output tokens per request);
//!   `mean_itl_ms` = `avgITL` (ms); `mean_queue_ms` = `avgWait` (ms).
//! - `num_waiting` is not recorded; it is derived with Little's law, L = λ·W:
//!   `num_waiting` = RPM / 60 × `avgWait` / 1000.
//! - `kv_cache_usage`, `gpu_util`, `prompt_tokens_per_s`, `mem_used_bytes`, `power_w`,
//!   `preemptions` are not recorded: null.
//! - `maxConcurrency` is the engine's `max_num_seqs`, a configuration value the contract has no
//!   column for: it is **dropped** from the rows and reported in the import notes instead.
//! - Defaults: supply `inferno-opt125m-a100`, instance `inferno-0`.

use std::collections::BTreeSet;
use std::path::Path;

use super::rows::{GpuRows, GpuWindow};
use super::{Csv, ImportOptions, Imported, default_start};
use crate::error::{Error, Result};

pub const DEFAULT_SUPPLY: &str = "inferno-opt125m-a100";
pub const INSTANCE: &str = "inferno-0";

pub fn read(input: &Path, options: &ImportOptions) -> Result<Imported> {
    if !(options.window_s.is_finite() && options.window_s > 0.0) {
        return Err(Error::Setting {
            key: "window-s".into(),
            message: "must be a positive number of seconds".into(),
        });
    }
    let csv = Csv::read(input)?;
    let cols = [
        "RPM",
        "tokens",
        "avgConcurrency",
        "maxConcurrency",
        "avgWait",
        "avgITL",
    ]
    .map(|c| csv.column(c));
    let [rpm, tokens, conc, maxc, wait, itl] = cols;
    let (rpm, tokens, conc, wait, itl) = (rpm?, tokens?, conc?, wait?, itl?);
    let maxc = maxc.ok();
    let supply = options
        .supply_id
        .clone()
        .unwrap_or_else(|| DEFAULT_SUPPLY.to_string());
    let start = super::micros(options.start.unwrap_or_else(|| default_start(2026, 3, 27)));
    let window_us = (options.window_s * 1e6).round() as i64;
    let mut rows = GpuRows::with_capacity(csv.rows.len());
    let mut max_seqs = BTreeSet::new();
    for (i, row) in csv.rows.iter().enumerate() {
        let lambda = csv.parse::<f64>(row, rpm)? / 60.0;
        let wait_ms = csv.parse::<f64>(row, wait)?;
        if let Some(c) = maxc {
            max_seqs.insert(csv.field(row, c)?.trim().to_string());
        }
        rows.push(&GpuWindow {
            ts_us: Some(start + i as i64 * window_us),
            supply_id: Some(&supply),
            instance_id: Some(INSTANCE),
            num_running: Some(csv.parse(row, conc)?),
            num_waiting: Some(lambda * wait_ms / 1000.0),
            window_s: Some(options.window_s),
            requests_per_s: Some(lambda),
            generation_tokens_per_s: Some(lambda * csv.parse::<f64>(row, tokens)?),
            mean_itl_ms: Some(csv.parse(row, itl)?),
            mean_queue_ms: Some(wait_ms),
            ..Default::default()
        });
    }
    let n = rows.len();
    let mut notes = vec![format!(
        "{n} windows of an assumed {} s (the file does not record the window length); num_waiting derived by Little's law as RPM/60 × avgWait/1000",
        options.window_s
    )];
    if !max_seqs.is_empty() {
        notes.push(format!(
            "maxConcurrency (the engine's max_num_seqs) = {} dropped: the gpu_metrics contract has no column for it",
            max_seqs.into_iter().collect::<Vec<_>>().join("/")
        ));
    }
    Ok(Imported {
        tag: "inferno".into(),
        requests: None,
        gpu_metrics: Some(rows.finish()?),
        notes,
    })
}
