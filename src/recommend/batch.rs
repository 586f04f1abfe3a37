//! The batch recommendations of a latency-tolerant app (seed 003), in seed 000's shape: the
//! provider's batch API on a hosted supply, an off-peak window on self-hosted capacity.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{CapacityPlan, PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::batch::{
    BatchOpportunity, MAX_SESSION_SHARE, MIN_NIGHT_SHARE, MIN_PROMPT_P50, Tolerance,
};
use crate::opportunities::per_month;
use crate::workloads::MixCell;

/// The recommendation to send `b`'s requests through the provider's batch API; None when the app
/// is not latency-tolerant or nothing prices a saving.
pub fn batch_api(
    b: &BatchOpportunity,
    window_days: f64,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    let (tolerance, saving, cost, discount) =
        (b.tolerance?, b.saving_usd?, b.cost_usd?, b.batch_discount?);
    if saving <= 0.0 {
        return None;
    }
    let p = &b.profile;
    let why = match tolerance {
        Tolerance::Declared => "The pipeline file declares it latency-tolerant.".to_string(),
        Tolerance::Inferred => format!(
            "Inferred latency-tolerant, not declared (set `latency_tolerant` under [[apps]] to confirm or veto): {:.0} % of its requests arrive between 22:00 and 06:00 UTC (threshold {:.0} %), {:.1} % belong to a session (at most {:.0} %), and its median prompt is {:.0} tokens (at least {:.0}).",
            p.night_share() * 100.0,
            MIN_NIGHT_SHARE * 100.0,
            p.session_share() * 100.0,
            MAX_SESSION_SHARE * 100.0,
            p.prompt_p50,
            MIN_PROMPT_P50
        ),
    };
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "batch-api", &p.app_id, &p.supply_id]),
        target_supply_id: p.supply_id.clone(),
        analysis_summary: format!(
            "App `{}` sent {} requests to `{}` costing ${cost:.2} in the window. {why} Sent through the provider's batch API at {:.0} % off, they would cost ${saving:.2} less (about ${:.0} a month), answered within the completion window instead of at once.",
            p.app_id,
            p.requests,
            p.supply_id,
            discount * 100.0,
            per_month(saving, window_days)
        ),
        predicted_impact: PredictedImpact {
            cost_change_percent: -discount * 100.0,
            ..PredictedImpact::default()
        },
        recommended_config_snippet: json!({
            "batch_api": {
                "app_id": p.app_id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            }
        }),
    })
}

/// The off-peak window of a latency-tolerant app on self-hosted capacity: each UTC day, the app's
/// tokens are taken out of the hours they arrived in and poured into that day's hours with the
/// most room left in their planned replicas (the capacity plan's, scaled to tokens as in
/// [`super::tiering`]), quietest first, so the deferred work fills valleys instead of peaks.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchWindow {
    pub app_id: String,
    pub supply_id: String,
    /// Replica-hours saved over the window, priced, USD (negative: the window costs more).
    pub saving_usd: f64,
    /// Hours of the day (UTC) that receive deferred work.
    pub hours_of_day: Vec<u32>,
}

/// [`BatchWindow`] of `b` on its supply's capacity `plan`; `cells` are the window's mix cells.
pub fn batch_window(
    b: &BatchOpportunity,
    plan: &CapacityPlan,
    cells: &[MixCell],
    window_start_us: i64,
) -> Option<BatchWindow> {
    use super::tiering::{
        hourly_tokens, replica_cost_change, replica_tokens_per_hour, tokens_per_request,
    };
    b.tolerance?;
    let p = &b.profile;
    let load = hourly_tokens(cells, &p.supply_id, None, window_start_us);
    let app = hourly_tokens(
        cells,
        &p.supply_id,
        Some((&p.app_id, None)),
        window_start_us,
    );
    let per_request = tokens_per_request(cells, &p.supply_id);
    let per_replica = replica_tokens_per_hour(plan, per_request);
    let hours = plan.plan.hours.len() as i64;
    let mut delta: BTreeMap<i64, f64> = BTreeMap::new();
    let mut receiving = BTreeSet::new();
    for day_start in (0..hours).step_by(24) {
        let day: Vec<i64> = (day_start..(day_start + 24).min(hours)).collect();
        let mut deferred: f64 = day.iter().map(|h| app.get(h).copied().unwrap_or(0.0)).sum();
        let rest =
            |h: &i64| load.get(h).copied().unwrap_or(0.0) - app.get(h).copied().unwrap_or(0.0);
        let room = |h: &i64| {
            let r = rest(h).max(0.0);
            (r / per_replica).ceil().max(1.0) * per_replica - r
        };
        for h in &day {
            *delta.entry(*h).or_default() -= app.get(h).copied().unwrap_or(0.0);
        }
        let mut order = day.clone();
        order.sort_by(|a, b| rest(a).total_cmp(&rest(b)).then(a.cmp(b)));
        for h in &order {
            if deferred <= 0.0 {
                break;
            }
            let poured = deferred.min(room(h));
            if poured > 0.0 {
                *delta.entry(*h).or_default() += poured;
                receiving.insert((h.rem_euclid(24)) as u32);
                deferred -= poured;
            }
        }
        if deferred > 0.0
            && let Some(h) = order.first()
        {
            *delta.entry(*h).or_default() += deferred;
            receiving.insert((h.rem_euclid(24)) as u32);
        }
    }
    Some(BatchWindow {
        app_id: p.app_id.clone(),
        supply_id: p.supply_id.clone(),
        saving_usd: 0.0 - replica_cost_change(plan, &load, &delta, per_request),
        hours_of_day: receiving.into_iter().collect(),
    })
}

/// The recommendation to run a latency-tolerant app's work in its supply's off-peak hours; None
/// when that frees no replica-hour.
pub fn batch_window_recommendation(
    w: &BatchWindow,
    window_days: f64,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    if w.saving_usd <= 0.0 {
        return None;
    }
    let hours = super::hour_ranges(&w.hours_of_day);
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "batch-window", &w.app_id, &w.supply_id]),
        target_supply_id: w.supply_id.clone(),
        analysis_summary: format!(
            "App `{}` is latency-tolerant and runs on self-hosted `{}`: queued and run in the supply's quiet hours ({hours} UTC) within each day, its work fills the capacity those hours leave idle, and the capacity plan needs ${:.2} less of replica-hours over the window (about ${:.0} a month).",
            w.app_id,
            w.supply_id,
            w.saving_usd,
            per_month(w.saving_usd, window_days)
        ),
        predicted_impact: PredictedImpact::default(),
        recommended_config_snippet: json!({
            "batch_window": { "app_id": w.app_id, "supply_id": w.supply_id, "hours_utc": hours }
        }),
    })
}
