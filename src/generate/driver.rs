//! The generator's entry point: days generated one at a time, written to the lake, and the ground
//! truth they add up to written beside them.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use rayon::prelude::*;
use serde::Serialize;

use super::apps::{APPS, AppShape};
use super::day::{AppDay, generate_app_day};
use super::engine::{SUPPLIES, SupplyTruth};
use super::invalid::INVALID_REASONS;
use super::{BLOCK_TOKENS, DECODE_NOISE, ITL_TOKEN_NOISE, TIMEOUT_MS, TTFT_NOISE, WINDOW_S};
use crate::contracts;
use crate::error::{Error, Result};
use crate::storage::Location;
use crate::storage::parquet::LakeWriter;

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
