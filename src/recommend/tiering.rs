//! Model tiering and router weights (seeds 001, 003): for each app and workload class, what moving
//! the class to another supply with a smaller or cheaper model would cost and save.
//!
//! A hosted API's side is priced by its token prices. A self-hosted side is priced by its capacity
//! plan: capacity in tokens per second is the plan's simulated requests per second × the supply's
//! mean tokens per request (an approximation: the moved class may be heavier or lighter per token
//! than the supply's own mix), each hour's replicas are recomputed with the class's tokens added
//! (target) or removed (source) by the plan's rule, and the replica-hours that change are priced.
//! A target is a supply of a different model that is not larger (catalog parameters; hosted models,
//! whose sizes are unknown, are compared by price). Quality is unknown unless requests carry
//! `feedback`, and the summary says so; the weights route a whole class.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use super::{CapacityPlan, PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::costs::Billing;
use crate::workloads::{MixCell, WorkloadClass};

/// A route must save at least this share of what the class costs today.
pub const MIN_SAVING_SHARE: f64 = 0.01;
/// A class routed on its own holds at least this share of the app's requests on its supply.
pub const MIN_CLASS_SHARE: f64 = 0.05;
const HOUR_US: i64 = 3_600_000_000;

/// A supply as tiering sees it.
#[derive(Debug, Clone, Copy)]
pub struct TierSupply<'a> {
    pub id: &'a str,
    pub model: &'a str,
    /// Catalog parameter count (None for a model the catalog lacks, e.g. a hosted API's).
    pub params: Option<u64>,
    pub billing: Option<Billing>,
    /// The self-hosted supply's capacity plan.
    pub plan: Option<&'a CapacityPlan>,
}

/// One class of one app moved from its supply to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    pub app_id: String,
    pub class_id: u16,
    pub label: String,
    pub from: String,
    pub to: String,
    pub requests: u64,
    /// The app's requests on the source supply, all classes.
    pub app_requests: u64,
    pub tokens: u64,
    /// What the class costs where it is (hosted: its tokens; self-hosted: the replica-hours it
    /// holds), and what it would add at the target, USD over the window.
    pub saved_usd: f64,
    pub added_usd: f64,
    /// The target's simulated p95s on its plan (self-hosted targets).
    pub to_ttft_p95_ms: Option<f64>,
    pub to_tpot_p95_ms: Option<f64>,
}

impl Route {
    pub fn saving_usd(&self) -> f64 {
        self.saved_usd - self.added_usd
    }

    /// Worth recommending (see [`MIN_SAVING_SHARE`] and [`MIN_CLASS_SHARE`]).
    pub fn worth_it(&self) -> bool {
        self.saving_usd() > MIN_SAVING_SHARE * self.saved_usd
            && self.saving_usd() > 0.0
            && self.requests as f64 >= MIN_CLASS_SHARE * self.app_requests as f64
    }
}

/// Tokens per hour index of one supply, optionally of one app (and one of its classes) only.
pub(super) fn hourly_tokens(
    cells: &[MixCell],
    supply: &str,
    only: Option<(&str, Option<u16>)>,
    start_us: i64,
) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for c in cells.iter().filter(|c| c.supply_id == supply) {
        if only.is_some_and(|(app, class)| {
            c.app_id != app || class.is_some_and(|class| c.class_id != class)
        }) {
            continue;
        }
        *out.entry((c.hour_us - start_us).div_euclid(HOUR_US))
            .or_default() += (c.prompt_tokens + c.completion_tokens) as f64;
    }
    out
}

/// Tokens per request of one supply over the cells.
pub(super) fn tokens_per_request(cells: &[MixCell], supply: &str) -> f64 {
    let (requests, tokens) = cells
        .iter()
        .filter(|c| c.supply_id == supply)
        .fold((0u64, 0u64), |(r, t), c| {
            (r + c.requests, t + c.prompt_tokens + c.completion_tokens)
        });
    tokens as f64 / requests.max(1) as f64
}

/// Tokens per hour one replica of `plan` serves with the plan's headroom kept.
pub(super) fn replica_tokens_per_hour(plan: &CapacityPlan, tokens_per_request: f64) -> f64 {
    plan.plan.capacity.requests_per_s * tokens_per_request * 3600.0 / (1.0 + plan.plan.headroom)
}

/// Replica-hours of `plan` with `delta` tokens per hour added (negative: removed), minus those
/// without it, priced.
pub(super) fn replica_cost_change(
    plan: &CapacityPlan,
    load: &BTreeMap<i64, f64>,
    delta: &BTreeMap<i64, f64>,
    tokens_per_request: f64,
) -> f64 {
    let per_replica = replica_tokens_per_hour(plan, tokens_per_request);
    let replicas = |tokens: f64| (tokens.max(0.0) / per_replica).ceil().max(1.0);
    let changed: f64 = delta
        .iter()
        .map(|(h, d)| {
            let base = load.get(h).copied().unwrap_or(0.0);
            replicas(base + d) - replicas(base)
        })
        .sum();
    changed * plan.usd_per_replica_hour
}

/// Every route from an app's class to a cheaper or smaller supply (see the module doc).
pub fn routes(
    cells: &[MixCell],
    classes: &[WorkloadClass],
    supplies: &[TierSupply],
    window_start_us: i64,
) -> Vec<Route> {
    let label = |id: u16| {
        classes
            .iter()
            .find(|c| c.id == id)
            .map_or(format!("class {id}"), |c| c.label.clone())
    };
    let mut groups: BTreeMap<(&str, &str, u16), (u64, u64, u64)> = BTreeMap::new();
    let mut app_requests: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for c in cells {
        *app_requests.entry((c.app_id, c.supply_id)).or_default() += c.requests;
        let g = groups
            .entry((c.app_id, c.supply_id, c.class_id))
            .or_default();
        g.0 += c.requests;
        g.1 += c.prompt_tokens;
        g.2 += c.completion_tokens;
    }
    let token_price = |b: Option<Billing>, prompt: u64, completion: u64| match b {
        Some(Billing::Tokens {
            usd_per_1k_input,
            usd_per_1k_output,
        }) => {
            Some((prompt as f64 * usd_per_1k_input + completion as f64 * usd_per_1k_output) / 1e3)
        }
        _ => None,
    };
    let mut out = Vec::new();
    for ((app, from_id, class), (requests, prompt, completion)) in groups {
        let Some(from) = supplies.iter().find(|s| s.id == from_id) else {
            continue;
        };
        let class_tokens = hourly_tokens(cells, from_id, Some((app, Some(class))), window_start_us);
        let saved = match (token_price(from.billing, prompt, completion), from.plan) {
            (Some(usd), _) => usd,
            (None, Some(plan)) => {
                let removed: BTreeMap<i64, f64> =
                    class_tokens.iter().map(|(h, t)| (*h, -t)).collect();
                0.0 - replica_cost_change(
                    plan,
                    &hourly_tokens(cells, from_id, None, window_start_us),
                    &removed,
                    tokens_per_request(cells, from_id),
                )
            }
            (None, None) => continue,
        };
        for to in supplies
            .iter()
            .filter(|t| t.id != from_id && t.model != from.model)
        {
            let smaller = match (from.params, to.params) {
                (Some(f), Some(t)) => t < f,
                _ => true,
            };
            if !smaller {
                continue;
            }
            let added = match (token_price(to.billing, prompt, completion), to.plan) {
                (Some(usd), _) => usd,
                (None, Some(plan)) => replica_cost_change(
                    plan,
                    &hourly_tokens(cells, to.id, None, window_start_us),
                    &class_tokens,
                    tokens_per_request(cells, to.id),
                ),
                (None, None) => continue,
            };
            out.push(Route {
                app_id: app.to_string(),
                class_id: class,
                label: label(class),
                from: from_id.to_string(),
                to: to.id.to_string(),
                requests,
                app_requests: app_requests[&(app, from_id)],
                tokens: prompt + completion,
                saved_usd: saved,
                added_usd: added,
                to_ttft_p95_ms: to.plan.map(|p| p.plan.window.ttft_p95_ms),
                to_tpot_p95_ms: to.plan.map(|p| p.plan.window.tpot_p95_ms),
            });
        }
    }
    out
}

/// Router weights for one app: each class's best worthwhile route; None when no class has one.
/// `with_feedback`: apps whose requests carry a quality signal.
pub fn router_weights(
    app_id: &str,
    routes: &[Route],
    with_feedback: &BTreeSet<String>,
    window_days: f64,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    let mut best: BTreeMap<u16, &Route> = BTreeMap::new();
    for r in routes.iter().filter(|r| r.app_id == app_id && r.worth_it()) {
        let slot = best.entry(r.class_id).or_insert(r);
        if r.saving_usd() > slot.saving_usd() {
            *slot = r;
        }
    }
    let first = best.values().next()?;
    let saving: f64 = best.values().map(|r| r.saving_usd()).sum();
    let saved: f64 = best.values().map(|r| r.saved_usd).sum();
    let described: Vec<String> = best
        .values()
        .map(|r| {
            let latency = match (r.to_ttft_p95_ms, r.to_tpot_p95_ms) {
                (Some(t), Some(p)) => format!(", where the simulated p95s are TTFT {t:.0} ms and TPOT {p:.1} ms"),
                _ => String::new(),
            };
            format!(
                "{} ({} requests, {} tokens) from `{}` to `{}`: ${:.2} less over the window (${:.2} saved, ${:.2} added){latency}",
                r.label, r.requests, r.tokens, r.from, r.to, r.saving_usd(), r.saved_usd, r.added_usd
            )
        })
        .collect();
    let quality = if with_feedback.contains(app_id) {
        "Its requests carry feedback, but tunelake does not yet compare answer quality across models: check it on a sample before moving all traffic."
    } else {
        "Answer quality on the smaller model is unknown (no request carries feedback): move a share first and compare."
    };
    let routes_json: Vec<_> = best
        .values()
        .map(|r| json!({ "class": r.label, "weights": { r.to.clone(): 1.0, r.from.clone(): 0.0 } }))
        .collect();
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "router", app_id]),
        target_supply_id: first.from.clone(),
        analysis_summary: format!(
            "App `{app_id}` could send these workload classes to a smaller or cheaper supply: {}. Together ${saving:.2} less over the window (about ${:.0} a month). {quality}",
            described.join("; "),
            crate::opportunities::per_month(saving, window_days)
        ),
        predicted_impact: PredictedImpact {
            cost_change_percent: -saving / saved.max(1e-12) * 100.0,
            ..PredictedImpact::default()
        },
        recommended_config_snippet: json!({ "router": { "app_id": app_id, "routes": routes_json } }),
    })
}
