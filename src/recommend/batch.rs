//! The batch-API recommendation of one latency-tolerant app (seed 003), in seed 000's shape.

use serde_json::json;

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::batch::{
    BatchOpportunity, MAX_SESSION_SHARE, MIN_NIGHT_SHARE, MIN_PROMPT_P50, Tolerance,
};
use crate::opportunities::per_month;

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
