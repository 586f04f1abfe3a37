//! The response-cache recommendation of one app (seed 003), in seed 000's shape.

use serde_json::json;

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::cache::Policy;
use crate::opportunities::{AppCache, per_month};

/// The recommendation for `app`'s chosen cache; None when no cache clears the minimum hit rate.
/// `hosted`: the app's supply is a hosted API, so each hit saves its price.
pub fn response_cache(
    app: &AppCache,
    hosted: bool,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    let chosen = app.chosen?;
    let Policy::Lru { entries } = chosen.policy else {
        return None;
    };
    let rate = chosen.hit_rate() * 100.0;
    let [lo, hi] = app
        .hit_rate_interval
        .map_or([rate, rate], |[lo, hi]| [lo * 100.0, hi * 100.0]);
    let curve = app
        .replays
        .iter()
        .map(|r| format!("{} {:.1} %", r.policy.name(), r.hit_rate() * 100.0))
        .collect::<Vec<_>>()
        .join(", ");
    let (cost_change, cost_interval, cost_text) = if hosted && app.cost_usd > 0.0 {
        // Saved price as a share of the app's bill; its interval scales with the hit rate's.
        let share = chosen.cost_saved_usd / app.cost_usd * 100.0;
        let scale = |r: f64| if rate > 0.0 { -share * r / rate } else { 0.0 };
        (
            -share,
            [scale(hi), scale(lo)],
            format!(
                " It saves ${:.2} of the ${:.2} the app paid in the window (about ${:.0} a month).",
                chosen.cost_saved_usd,
                app.cost_usd,
                per_month(chosen.cost_saved_usd, app.window_days)
            ),
        )
    } else {
        (
            0.0,
            [0.0, 0.0],
            " The GPU bill falls only once the supply is sized for the remaining load, so no cost change is claimed here.".to_string(),
        )
    };
    let mut impact = PredictedImpact {
        cost_change_percent: cost_change,
        ..PredictedImpact::default()
    };
    impact
        .confidence_intervals
        .insert("cost_change_percent".into(), cost_interval);
    impact
        .confidence_intervals
        .insert("hit_rate_percent".into(), [lo, hi]);
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "response-cache", &app.app_id]),
        target_supply_id: app.supply_id.clone(),
        analysis_summary: format!(
            "App `{}` sent the same prompt (prompt_hash) as an earlier successful request often enough that a response cache of {entries} entries (LRU) in front of `{}` would have answered {rate:.1} % of its {} requests (95 % interval over the window's days {lo:.1}–{hi:.1} %): {} prompt and {} completion tokens the model would not process.{cost_text} Hit rate by cache: {curve}.",
            app.app_id,
            app.supply_id,
            app.requests,
            chosen.prompt_tokens_saved,
            chosen.completion_tokens_saved,
        ),
        predicted_impact: impact,
        recommended_config_snippet: json!({
            "response_cache": {
                "app_id": app.app_id,
                "key": "prompt_hash",
                "policy": "lru",
                "max_entries": entries,
            }
        }),
    })
}
