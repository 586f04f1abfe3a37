//! Scheduled modes (seed 004): one configuration per load regime, switched by cron, when that beats
//! the static configuration by more than the model's error.

use serde_json::{Value, json};

use super::snippet::config_snippet;
use super::{ModelError, PredictedImpact, SystemRecommendation, stable_uuid};
use crate::config::Supply;
use crate::knobs::ServingConfig;
use crate::search::regimes::Schedule;

/// A supply's schedule and the recommendation made of it, if any.
#[derive(Debug, Clone)]
pub struct SupplySchedule {
    pub supply_id: String,
    pub schedule: Schedule,
    pub recommendation: Option<SystemRecommendation>,
}

/// Hour ranges of the day as text ("0-6, 22-23").
pub fn hour_ranges(hours: &[u32]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &h in hours {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == h => *end = h,
            _ => ranges.push((h, h)),
        }
    }
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The schedule as a recommendation: one cron line per switch and one snippet per mode (changed
/// keys against today's configuration); None unless it saves more than the model's error.
pub fn schedule(
    supply: &Supply,
    current: &ServingConfig,
    s: &Schedule,
    error: &ModelError,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    let saving = s.saving_percent()?;
    let margin = error.ttft_pct.max(error.tpot_pct);
    if saving <= margin {
        return None;
    }
    let of_hour = s.regime_of_hour();
    let switches: Vec<Value> = (0..24)
        .filter(|h| of_hour[*h] != of_hour[(*h + 23) % 24])
        .map(|h| json!({ "cron": format!("0 {h} * * *"), "mode": s.regimes[of_hour[h]].name }))
        .collect();
    let modes: serde_json::Map<String, Value> = s
        .regimes
        .iter()
        .filter_map(|r| {
            let mode = r.mode.as_ref()?;
            Some((r.name.to_string(), config_snippet(current, &mode.config)))
        })
        .collect();
    let described: Vec<String> = s
        .regimes
        .iter()
        .filter_map(|r| {
            let mode = r.mode.as_ref()?;
            Some(format!(
                "{} (hours {} UTC, {:.3}–{:.3} requests/s): {} at ${:.2}/h",
                r.name,
                hour_ranges(&r.hours),
                r.mean_rps,
                r.max_rps,
                mode.config.describe(),
                mode.cost_per_hour
            ))
        })
        .collect();
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "schedule", &supply.id]),
        target_supply_id: supply.id.clone(),
        analysis_summary: format!(
            "Supply `{}`'s load follows the clock: its hours of the day fall into {} regimes, each searched on its own traffic: {}. Switched on the schedule, the day costs ${:.2}/h on average against ${:.2}/h for the one static configuration, {saving:.1} % less, more than the model's {margin:.1} % error. Each switch restarts the engine with the mode's settings; the cron lines are in UTC.",
            supply.id,
            s.regimes.len(),
            described.join("; "),
            s.scheduled_cost_per_hour.unwrap_or(f64::NAN),
            s.static_cost_per_hour,
        ),
        predicted_impact: PredictedImpact {
            cost_change_percent: -saving,
            ..PredictedImpact::default()
        },
        recommended_config_snippet: json!({
            "schedule": { "timezone": "UTC", "switches": switches, "modes": modes }
        }),
    })
}
