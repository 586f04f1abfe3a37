//! inference-sim "training" runs: real vLLM on H100 with per-request traces
//! (`blis-vllm-h100-replay/requests/<exp>.csv`, columns `index`, `stage_index`, `arrival_time_us`,
//! `input_tokens`, `output_tokens_client`, `has_error`, `ttft_s`, `e2e_s`). The experiment's settings
//! come from `experiments.csv`, looked up two levels above the file (the dataset root) or next to
//! the `requests/` directory.
//!
//! - `ts` = start + `arrival_time_us` (µs relative to the first request). start defaults to the
//!   experiment name's date-time (`20260217-155451-…` → 2026-02-17T15:54:51), read as **UTC**: the
//!   zone of that stamp is not documented.
//! - `prompt_tokens` = `input_tokens` (server tokenizer, chat template included).
//! - **`completion_tokens` = the experiment's `max_tokens_output_len`** for completed requests:
//!   the load generator sets `ignore_eos`, so the server generates exactly that many tokens.
//!   `output_tokens_client` is a client-side re-tokenisation of the text and is wrong (SOURCE.md
//!   caveat 1); it is ignored. `max_tokens` = `max_tokens_output_len`, `finish_reason` = `length`.
//! - `has_error` = 1 is always the client's 300 s timeout: `status` = `timeout`. None of these
//!   requests received a first token (`ttft_s` is empty), so their `completion_tokens` is 0 and
//!   `finish_reason` null.
//! - `ttft_ms` = `ttft_s` × 1000 (null when empty), `e2e_ms` = `e2e_s` × 1000.
//! - Defaults: app = the experiment's profile (`codegen`, `general`, `roleplay`, `reasoning`), supply
//!   = the experiment name; request ids `blis-<exp>-<index>`.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

use super::rows::{Request, RequestRows};
use super::{Csv, ImportOptions, Imported, bad_row};
use crate::error::{Error, Result};

/// The experiment settings this importer uses.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    pub profile: String,
    pub max_tokens_output_len: i64,
}

fn experiments_file(input: &Path) -> Option<PathBuf> {
    let requests_dir = input.parent()?;
    [
        requests_dir.parent().map(|d| d.join("experiments.csv")),
        Some(requests_dir.join("experiments.csv")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

/// Reads the row of `experiments.csv` for `name`.
pub fn experiment(path: &Path, name: &str) -> Result<Experiment> {
    let csv = Csv::read(path)?;
    let (c_name, c_profile, c_max) = (
        csv.column("experiment")?,
        csv.column("profile")?,
        csv.column("max_tokens_output_len")?,
    );
    let row = csv
        .rows
        .iter()
        .find(|r| r.1.get(c_name).is_some_and(|n| n == name))
        .ok_or_else(|| Error::Setting {
            key: "INPUT".into(),
            message: format!("experiment `{name}` is not in {}", path.display()),
        })?;
    Ok(Experiment {
        name: name.to_string(),
        profile: csv.field(row, c_profile)?.to_string(),
        max_tokens_output_len: csv.parse(row, c_max)?,
    })
}

/// The experiment name's leading `YYYYMMDD-HHMMSS`, as UTC.
pub fn start_of(name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let stamp = name.get(..15)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

pub fn read(input: &Path, options: &ImportOptions) -> Result<Imported> {
    let name = input
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let exp_file = experiments_file(input).ok_or_else(|| Error::Setting {
        key: "INPUT".into(),
        message: format!(
            "no experiments.csv two levels above or next to the directory of {}",
            input.display()
        ),
    })?;
    let exp = experiment(&exp_file, &name)?;
    let start = options
        .start
        .or_else(|| start_of(&name))
        .ok_or_else(|| Error::Setting {
            key: "start".into(),
            message: format!("experiment `{name}` has no leading YYYYMMDD-HHMMSS: give --start"),
        })?;
    let start = super::micros(start);
    let app = options
        .app_id
        .clone()
        .unwrap_or_else(|| exp.profile.clone());
    let supply = options.supply_id.clone().unwrap_or_else(|| name.clone());
    let csv = Csv::read(input)?;
    let c = [
        "index",
        "arrival_time_us",
        "input_tokens",
        "has_error",
        "ttft_s",
        "e2e_s",
    ]
    .map(|n| csv.column(n));
    let [index, arrival, input_tokens, has_error, ttft, e2e] = c;
    let (index, arrival, input_tokens, has_error, ttft, e2e) =
        (index?, arrival?, input_tokens?, has_error?, ttft?, e2e?);
    let mut rows = RequestRows::with_capacity(csv.rows.len());
    let mut id = String::new();
    let mut timeouts = 0;
    for row in &csv.rows {
        let error = match csv.field(row, has_error)?.trim() {
            "0" => false,
            "1" => true,
            other => return Err(bad_row(input, row.0, format!("has_error `{other}`"))),
        };
        timeouts += error as usize;
        let ttft_s = csv.field(row, ttft)?.trim();
        let ttft_ms = if ttft_s.is_empty() {
            None
        } else {
            Some(csv.parse::<f64>(row, ttft)? * 1000.0)
        };
        id.clear();
        id.push_str("blis-");
        id.push_str(&name);
        id.push('-');
        id.push_str(csv.field(row, index)?.trim());
        rows.push(&Request {
            request_id: Some(&id),
            ts_us: Some(start + csv.parse::<i64>(row, arrival)?),
            app_id: Some(&app),
            supply_id: Some(&supply),
            prompt_tokens: Some(csv.parse(row, input_tokens)?),
            completion_tokens: Some(if error { 0 } else { exp.max_tokens_output_len }),
            max_tokens: Some(exp.max_tokens_output_len),
            ttft_ms,
            e2e_ms: Some(csv.parse::<f64>(row, e2e)? * 1000.0),
            status: Some(if error { "timeout" } else { "ok" }),
            finish_reason: (!error).then_some("length"),
            ..Default::default()
        });
    }
    let n = rows.len();
    Ok(Imported {
        tag: name.clone(),
        requests: Some(rows.finish()?),
        gpu_metrics: None,
        notes: vec![format!(
            "{n} requests ({timeouts} timeouts); completion_tokens = max_tokens_output_len = {} (ignore_eos) instead of output_tokens_client",
            exp.max_tokens_output_len
        )],
    })
}
