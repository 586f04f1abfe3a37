//! Batch opportunity (seed 003): apps whose answers can wait, and what the provider's batch API
//! would save on them.
//!
//! An app is latency-tolerant when the pipeline file says so (`[[apps]] latency_tolerant`), or,
//! flagged as inferred, when its traffic looks like offline work on all three counts: at least
//! [`MIN_NIGHT_SHARE`] of its requests arrive between 22:00 and 06:00 UTC (a third would be flat),
//! at most [`MAX_SESSION_SHARE`] belong to a session (nobody is waiting in a conversation), and its
//! median prompt is at least [`MIN_PROMPT_P50`] tokens (documents, not questions). A declaration
//! always wins over the inference, in both directions.
//!
//! On a hosted API with a `batch_discount` in its price, the saving is that share of what the
//! app's requests cost (the logged `cost_usd` when every request has one, else its tokens at the
//! supply's prices). On self-hosted capacity the saving is an off-peak window, priced by the
//! capacity plan.

use serde::Serialize;

use super::Columns;
use crate::config::{AppSettings, Supply};
use crate::error::Result;

/// Night-time share of requests from which traffic looks like offline work.
pub const MIN_NIGHT_SHARE: f64 = 0.5;
/// Largest share of requests in sessions for traffic to look like offline work.
pub const MAX_SESSION_SHARE: f64 = 0.05;
/// Median prompt tokens from which traffic looks like document processing.
pub const MIN_PROMPT_P50: f64 = 1000.0;

/// One app's traffic on one supply, as `sql/opportunities/app_profile.sql` sums it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppProfile {
    pub app_id: String,
    pub supply_id: String,
    pub requests: u64,
    pub in_sessions: u64,
    pub night: u64,
    pub prompt_p50: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Requests with a logged cost, and that cost.
    pub with_cost: u64,
    pub cost_usd: f64,
}

impl AppProfile {
    pub fn night_share(&self) -> f64 {
        self.night as f64 / self.requests.max(1) as f64
    }

    pub fn session_share(&self) -> f64 {
        self.in_sessions as f64 / self.requests.max(1) as f64
    }

    /// Whether the traffic looks like offline work (see the module doc).
    pub fn looks_offline(&self) -> bool {
        self.night_share() >= MIN_NIGHT_SHARE
            && self.session_share() <= MAX_SESSION_SHARE
            && self.prompt_p50 >= MIN_PROMPT_P50
    }
}

/// How an app came to count as latency-tolerant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    Declared,
    Inferred,
}

/// The batch finding of one app on one supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchOpportunity {
    pub profile: AppProfile,
    /// None: the app's answers are awaited.
    pub tolerance: Option<Tolerance>,
    /// The supply is a hosted API.
    pub hosted: bool,
    /// What the app's requests on the supply cost in the window, USD (None: no price for them).
    pub cost_usd: Option<f64>,
    /// The provider's batch discount, when the pipeline file gives one.
    pub batch_discount: Option<f64>,
    /// Saved in the window by the provider's batch API, USD.
    pub saving_usd: Option<f64>,
}

/// Reads the profiles of `sql/opportunities/app_profile.sql`.
pub(super) fn profiles(batches: &[arrow::array::RecordBatch]) -> Result<Vec<AppProfile>> {
    let mut out = Vec::new();
    for b in batches {
        let c = Columns::new(b, crate::sql::APP_PROFILE.path);
        let (app, supply) = (c.text("app_id")?, c.text("supply_id")?);
        let (requests, in_sessions, night) =
            (c.int("requests")?, c.int("in_sessions")?, c.int("night")?);
        let (prompt, completion, with_cost) = (
            c.int("prompt_tokens")?,
            c.int("completion_tokens")?,
            c.int("with_cost")?,
        );
        let (prompt_p50, cost) = (c.real("prompt_p50")?, c.real("cost_usd")?);
        for i in 0..b.num_rows() {
            out.push(AppProfile {
                app_id: app.value(i).to_string(),
                supply_id: supply.value(i).to_string(),
                requests: Columns::count(requests, i),
                in_sessions: Columns::count(in_sessions, i),
                night: Columns::count(night, i),
                prompt_p50: prompt_p50.value(i),
                prompt_tokens: Columns::count(prompt, i),
                completion_tokens: Columns::count(completion, i),
                with_cost: Columns::count(with_cost, i),
                cost_usd: cost.value(i),
            });
        }
    }
    Ok(out)
}

/// The batch finding of each profile, given what the pipeline declares and prices.
pub fn batch_opportunities(
    profiles: Vec<AppProfile>,
    apps: &[AppSettings],
    supplies: &[Supply],
) -> Vec<BatchOpportunity> {
    profiles
        .into_iter()
        .map(|profile| {
            let declared = apps
                .iter()
                .find(|a| a.id == profile.app_id)
                .and_then(|a| a.latency_tolerant);
            let tolerance = match declared {
                Some(true) => Some(Tolerance::Declared),
                Some(false) => None,
                None => profile.looks_offline().then_some(Tolerance::Inferred),
            };
            let supply = supplies.iter().find(|s| s.id == profile.supply_id);
            let hosted = supply.is_some_and(|s| s.engine.is_hosted());
            let cost_usd = if profile.with_cost == profile.requests && profile.requests > 0 {
                Some(profile.cost_usd)
            } else {
                supply.and_then(|s| match (s.price.per_1k_input, s.price.per_1k_output) {
                    (Some(i), Some(o)) => Some(
                        (profile.prompt_tokens as f64 * i + profile.completion_tokens as f64 * o)
                            / 1e3,
                    ),
                    _ => None,
                })
            };
            let batch_discount = supply.and_then(|s| s.price.batch_discount);
            let saving_usd = match (tolerance, hosted, cost_usd, batch_discount) {
                (Some(_), true, Some(cost), Some(d)) => Some(cost * d),
                _ => None,
            };
            BatchOpportunity {
                profile,
                tolerance,
                hosted,
                cost_usd,
                batch_discount,
                saving_usd,
            }
        })
        .collect()
}
