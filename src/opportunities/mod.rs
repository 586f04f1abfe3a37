//! Fleet and application findings beyond the engine's knobs (issue 13), from the window's
//! requests. Today: response caching per app ([`cache`]), client defaults ([`client`]) and cost
//! drivers ([`costs`]).

pub mod cache;
pub mod client;
pub mod costs;

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::config::Window;
use crate::error::{Error, Result};
use crate::hash::stable_hash64;
use crate::rng::Rng;
use crate::sql;
use cache::{Lookup, MIN_HIT_RATE, NEAR_BEST, Policy, Replay, replay};

/// `usd` spent over `window_days` projected to a 30-day month.
pub fn per_month(usd: f64, window_days: f64) -> f64 {
    usd * 30.0 / window_days.max(1e-9)
}

/// Bootstrap resamples of the window's days.
const RESAMPLES: usize = 400;

/// One app's response-cache replays and what they recommend.
#[derive(Debug, Clone, Serialize)]
pub struct AppCache {
    pub app_id: String,
    /// The supply that served most of the app's requests (the one the hits leave).
    pub supply_id: String,
    /// Requests of the window with a prompt hash.
    pub requests: u64,
    /// What the app paid in the window (`cost_usd`, hosted APIs), USD.
    pub cost_usd: f64,
    pub window_days: f64,
    /// Every candidate policy, in [`Policy::candidates`] order.
    pub replays: Vec<Replay>,
    /// The smallest LRU reaching [`NEAR_BEST`] of the largest LRU's hits, when that clears
    /// [`MIN_HIT_RATE`].
    pub chosen: Option<Replay>,
    /// 95 % interval of the chosen cache's hit rate over resamples of the window's days.
    pub hit_rate_interval: Option<[f64; 2]>,
}

/// Replays each app's requests through the candidate caches.
pub async fn response_caching(
    ctx: &SessionContext,
    window: &Window,
    seed: u64,
) -> Result<Vec<AppCache>> {
    let batches = sql::PROMPT_REPEATS
        .collect(ctx, sql::window_params(window.start, window.end))
        .await?;
    let mut apps: BTreeMap<String, (Vec<Lookup>, BTreeMap<String, u64>)> = BTreeMap::new();
    for b in &batches {
        let column = |name: &str| {
            b.column_by_name(name).ok_or_else(|| {
                Error::Internal(format!("{} lacks column {name}", sql::PROMPT_REPEATS.path))
            })
        };
        let (app, supply) = (
            column("app_id")?.as_string::<i32>(),
            column("supply_id")?.as_string::<i32>(),
        );
        let ts = column("ts")?.as_primitive::<TimestampMicrosecondType>();
        let prompt = column("prompt_hash")?.as_string::<i32>();
        let cacheable = column("cacheable")?.as_boolean();
        let prompt_tokens = column("prompt_tokens")?.as_primitive::<Int64Type>();
        let completion_tokens = column("completion_tokens")?.as_primitive::<Int64Type>();
        let cost = column("cost_usd")?.as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let (lookups, supplies) = apps.entry(app.value(i).to_string()).or_default();
            *supplies.entry(supply.value(i).to_string()).or_default() += 1;
            let count = |a: &arrow::array::Int64Array| {
                if a.is_null(i) {
                    0
                } else {
                    a.value(i).max(0) as u64
                }
            };
            lookups.push(Lookup {
                ts_us: ts.value(i),
                prompt: stable_hash64(prompt.value(i)),
                cacheable: cacheable.is_valid(i) && cacheable.value(i),
                prompt_tokens: count(prompt_tokens),
                completion_tokens: count(completion_tokens),
                cost_usd: if cost.is_null(i) { 0.0 } else { cost.value(i) },
            });
        }
    }
    let window_days = window.days();
    Ok(apps
        .into_iter()
        .map(|(app_id, (lookups, supplies))| {
            let replays: Vec<(Replay, Vec<bool>)> = Policy::candidates()
                .into_iter()
                .map(|p| replay(&lookups, p))
                .collect();
            let is_lru = |r: &Replay| matches!(r.policy, Policy::Lru { .. });
            let best = replays
                .iter()
                .filter(|(r, _)| is_lru(r))
                .map(|(r, _)| r.hits)
                .max()
                .unwrap_or(0);
            let chosen = replays.iter().find(|(r, _)| {
                is_lru(r)
                    && r.hits as f64 >= NEAR_BEST * best as f64
                    && r.hit_rate() >= MIN_HIT_RATE
            });
            let hit_rate_interval =
                chosen.map(|(_, hits)| daily_bootstrap(&lookups, hits, window, seed, &app_id));
            AppCache {
                supply_id: supplies
                    .iter()
                    .max_by_key(|(s, n)| (**n, std::cmp::Reverse(*s)))
                    .map(|(s, _)| s.clone())
                    .unwrap_or_default(),
                requests: lookups.len() as u64,
                cost_usd: lookups.iter().map(|l| l.cost_usd).sum(),
                window_days,
                chosen: chosen.map(|(r, _)| *r),
                replays: replays.into_iter().map(|(r, _)| r).collect(),
                hit_rate_interval,
                app_id,
            }
        })
        .collect())
}

/// Each app's output lengths against its cap, fitted into client defaults (apps with too few
/// requests to fit are left out).
pub async fn client_defaults(
    ctx: &SessionContext,
    window: &Window,
) -> Result<Vec<client::ClientDefaults>> {
    let batches = sql::OUTPUT_LENGTHS
        .collect(ctx, sql::window_params(window.start, window.end))
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let column = |name: &str| {
            b.column_by_name(name).ok_or_else(|| {
                Error::Internal(format!("{} lacks column {name}", sql::OUTPUT_LENGTHS.path))
            })
        };
        let text = |name| Ok::<_, Error>(column(name)?.as_string::<i32>().clone());
        let count = |name| Ok::<_, Error>(column(name)?.as_primitive::<Int64Type>().clone());
        let real = |name| Ok::<_, Error>(column(name)?.as_primitive::<Float64Type>().clone());
        let (app, supply) = (text("app_id")?, text("supply_id")?);
        let (requests, truncated, with_cap, with_feedback) = (
            count("requests")?,
            count("truncated")?,
            count("with_max_tokens")?,
            count("with_feedback")?,
        );
        let (p50, p90, max, cap) = (
            real("completion_p50")?,
            real("completion_p90")?,
            real("completion_max")?,
            real("max_tokens_p50")?,
        );
        for i in 0..b.num_rows() {
            let lengths = client::OutputLengths {
                app_id: app.value(i).to_string(),
                supply_id: supply.value(i).to_string(),
                requests: requests.value(i).max(0) as u64,
                truncated: truncated.value(i).max(0) as u64,
                completion_p50: p50.value(i),
                completion_p90: p90.value(i),
                completion_max: max.value(i),
                current_cap: (2 * with_cap.value(i) > requests.value(i) && cap.is_valid(i))
                    .then(|| cap.value(i)),
                with_feedback: with_feedback.value(i).max(0) as u64,
            };
            out.extend(lengths.defaults());
        }
    }
    Ok(out)
}

/// 95 % interval of the hit rate over resamples of the window's UTC days (seeded by run and app).
fn daily_bootstrap(
    lookups: &[Lookup],
    hits: &[bool],
    window: &Window,
    seed: u64,
    app_id: &str,
) -> [f64; 2] {
    let start = window.start.timestamp_micros();
    let mut days: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for (l, hit) in lookups.iter().zip(hits) {
        let day = days
            .entry((l.ts_us - start).div_euclid(86_400_000_000))
            .or_default();
        day.0 += u64::from(*hit);
        day.1 += 1;
    }
    let days: Vec<(u64, u64)> = days.into_values().collect();
    let mut rng = Rng::new(seed, stable_hash64(&format!("{app_id}/cache-bootstrap")));
    let mut rates: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let (h, n) = (0..days.len()).fold((0, 0), |(h, n), _| {
                let d = days[rng.below(days.len() as u64) as usize];
                (h + d.0, n + d.1)
            });
            h as f64 / n.max(1) as f64
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let at = |q: f64| rates[((q * (rates.len() - 1) as f64).round()) as usize];
    [at(0.025), at(0.975)]
}
