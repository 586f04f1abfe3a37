//! Fleet and application findings beyond the engine's knobs (issue 13), from the window's
//! requests: response caching per app ([`cache`]), prompt-prefix caching on hosted APIs
//! ([`prefix`]), batch opportunities ([`batch`]), client defaults ([`client`]), cost drivers
//! ([`costs`]), grades and alerts ([`health`]).
//!
//! Queries that need the pipeline's supplies (hosted or not, SLO targets) join the in-memory
//! table `supplies` that [`register_supplies`] puts beside the lake's tables.

pub mod batch;
pub mod cache;
pub mod client;
pub mod costs;
pub mod health;
pub mod prefix;

use std::collections::BTreeMap;

use std::sync::Arc;

use arrow::array::{
    Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{AppSettings, Supply, Window};
use crate::error::{Context, Error, Result};
use crate::hash::stable_hash64;
use crate::rng::Rng;
use crate::sql;
use cache::{Lookup, MIN_HIT_RATE, NEAR_BEST, Policy, Replay, replay};

/// Typed columns of one result batch of a query; a missing or mistyped column is an internal error
/// naming the query.
pub(crate) struct Columns<'a> {
    batch: &'a RecordBatch,
    query: &'static str,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(batch: &'a RecordBatch, query: &'static str) -> Self {
        Columns { batch, query }
    }

    fn get<T: Array + 'static>(&self, name: &str) -> Result<&'a T> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "{} lacks column {name} of type {}",
                    self.query,
                    std::any::type_name::<T>()
                ))
            })
    }

    pub(crate) fn text(&self, name: &str) -> Result<&'a StringArray> {
        self.get(name)
    }

    pub(crate) fn int(&self, name: &str) -> Result<&'a Int64Array> {
        self.get(name)
    }

    pub(crate) fn real(&self, name: &str) -> Result<&'a Float64Array> {
        self.get(name)
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<&'a BooleanArray> {
        self.get(name)
    }

    pub(crate) fn timestamp(&self, name: &str) -> Result<&'a TimestampMicrosecondArray> {
        self.get(name)
    }

    /// Row `i` of a count column: null and negative read as 0.
    pub(crate) fn count(a: &Int64Array, i: usize) -> u64 {
        if a.is_null(i) {
            0
        } else {
            a.value(i).max(0) as u64
        }
    }
}

/// Registers the pipeline's supplies as the table `supplies` (`supply_id`, `hosted`,
/// `p95_ttft_ms`, `p95_tpot_ms`), replacing an earlier one.
pub fn register_supplies(ctx: &SessionContext, supplies: &[Supply]) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("supply_id", DataType::Utf8, false),
        Field::new("hosted", DataType::Boolean, false),
        Field::new("p95_ttft_ms", DataType::Float64, false),
        Field::new("p95_tpot_ms", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                supplies.iter().map(|s| &s.id),
            )),
            Arc::new(BooleanArray::from_iter(
                supplies.iter().map(|s| Some(s.engine.is_hosted())),
            )),
            Arc::new(Float64Array::from_iter_values(
                supplies.iter().map(|s| s.slo.p95_ttft_ms),
            )),
            Arc::new(Float64Array::from_iter_values(
                supplies.iter().map(|s| s.slo.p95_tpot_ms),
            )),
        ],
    )
    .context("building the supplies table")?;
    ctx.deregister_table("supplies")
        .context("replacing the supplies table")?;
    ctx.register_batch("supplies", batch)
        .context("registering the supplies table")?;
    Ok(())
}

/// Every fleet and application finding the lake gives on its own (cost drivers and grades also
/// need the supplies' prices and the run's recommendations: see [`costs`] and [`health`]).
#[derive(Debug, Clone)]
pub struct FleetFindings {
    pub caching: Vec<AppCache>,
    pub prefix_caching: Vec<prefix::PrefixCaching>,
    pub batch: Vec<batch::BatchOpportunity>,
    pub client_defaults: Vec<client::ClientDefaults>,
    pub health: Vec<health::SupplyHealth>,
}

/// Runs every finding of [`FleetFindings`] over the window (registering `supplies` first).
pub async fn findings(
    ctx: &SessionContext,
    window: &Window,
    seed: u64,
    apps: &[AppSettings],
    supplies: &[Supply],
) -> Result<FleetFindings> {
    register_supplies(ctx, supplies)?;
    Ok(FleetFindings {
        caching: response_caching(ctx, window, seed).await?,
        prefix_caching: prefix_caching(ctx, window, supplies).await?,
        batch: batch_opportunities(ctx, window, apps, supplies).await?,
        client_defaults: client_defaults(ctx, window).await?,
        health: supply_health(ctx, window, supplies).await?,
    })
}

/// The batch finding of every app (see [`batch`]).
pub async fn batch_opportunities(
    ctx: &SessionContext,
    window: &Window,
    apps: &[AppSettings],
    supplies: &[Supply],
) -> Result<Vec<batch::BatchOpportunity>> {
    let batches = sql::APP_PROFILE
        .collect(ctx, sql::window_params(window.start, window.end))
        .await?;
    Ok(batch::batch_opportunities(
        batch::profiles(&batches)?,
        apps,
        supplies,
    ))
}

/// The prompt-prefix caching finding of every app on a hosted supply (see [`prefix`]); needs
/// [`register_supplies`].
pub async fn prefix_caching(
    ctx: &SessionContext,
    window: &Window,
    supplies: &[Supply],
) -> Result<Vec<prefix::PrefixCaching>> {
    let batches = sql::HOSTED_PREFIXES
        .collect(ctx, sql::window_params(window.start, window.end))
        .await?;
    prefix::prefix_caching(&batches, supplies, window.days())
}

/// Each supply's measures and alerts (see [`health`]); needs [`register_supplies`].
pub async fn supply_health(
    ctx: &SessionContext,
    window: &Window,
    supplies: &[Supply],
) -> Result<Vec<health::SupplyHealth>> {
    let batches = sql::SUPPLY_HOURS
        .collect(ctx, sql::window_params(window.start, window.end))
        .await?;
    let targets = supplies
        .iter()
        .map(|s| (s.id.clone(), (s.slo.p95_ttft_ms, s.slo.p95_tpot_ms)))
        .collect();
    Ok(health::supply_health(
        &health::supply_hours(&batches)?,
        &targets,
        window,
    ))
}

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
        let c = Columns::new(b, sql::PROMPT_REPEATS.path);
        let (app, supply, prompt) = (c.text("app_id")?, c.text("supply_id")?, c.int("prompt")?);
        let ts = c.timestamp("ts")?;
        let cacheable = c.boolean("cacheable")?;
        let (prompt_tokens, completion_tokens) =
            (c.int("prompt_tokens")?, c.int("completion_tokens")?);
        let cost = c.real("cost_usd")?;
        for i in 0..b.num_rows() {
            // Looked up by &str first: an owned key is made once per app and supply, not per row.
            if !apps.contains_key(app.value(i)) {
                apps.insert(app.value(i).to_string(), Default::default());
            }
            let (lookups, supplies) = apps.get_mut(app.value(i)).expect("inserted above");
            match supplies.get_mut(supply.value(i)) {
                Some(n) => *n += 1,
                None => {
                    supplies.insert(supply.value(i).to_string(), 1);
                }
            }
            lookups.push(Lookup {
                ts_us: ts.value(i),
                prompt: prompt.value(i) as u64,
                cacheable: cacheable.is_valid(i) && cacheable.value(i),
                prompt_tokens: Columns::count(prompt_tokens, i),
                completion_tokens: Columns::count(completion_tokens, i),
                cost_usd: if cost.is_null(i) { 0.0 } else { cost.value(i) },
            });
        }
    }
    let window_days = window.days();
    Ok(apps
        .into_iter()
        .map(|(app_id, (lookups, supplies))| {
            // Policies replay independently, in parallel; collected in candidate order.
            let replays: Vec<(Replay, Vec<bool>)> = Policy::candidates()
                .into_par_iter()
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
        let c = Columns::new(b, sql::OUTPUT_LENGTHS.path);
        let (app, supply) = (c.text("app_id")?, c.text("supply_id")?);
        let (requests, truncated, with_cap, with_feedback) = (
            c.int("requests")?,
            c.int("truncated")?,
            c.int("with_max_tokens")?,
            c.int("with_feedback")?,
        );
        let (p50, p90, max, cap) = (
            c.real("completion_p50")?,
            c.real("completion_p90")?,
            c.real("completion_max")?,
            c.real("max_tokens_p50")?,
        );
        for i in 0..b.num_rows() {
            let lengths = client::OutputLengths {
                app_id: app.value(i).to_string(),
                supply_id: supply.value(i).to_string(),
                requests: Columns::count(requests, i),
                truncated: Columns::count(truncated, i),
                completion_p50: p50.value(i),
                completion_p90: p90.value(i),
                completion_max: max.value(i),
                current_cap: (2 * with_cap.value(i) > requests.value(i) && cap.is_valid(i))
                    .then(|| cap.value(i)),
                with_feedback: Columns::count(with_feedback, i),
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
