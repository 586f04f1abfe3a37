//! The client-defaults recommendation of one app (seeds 000, 001), in seed 000's shape.

use serde_json::json;

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::client::{COVERED_QUANTILE, CapChange, ClientDefaults};

/// The recommendation for `d`'s cap; None when the current cap already fits the outputs.
pub fn client_defaults(d: &ClientDefaults, analysis_id: &str) -> Option<SystemRecommendation> {
    let change = d.change?;
    let l = &d.lengths;
    let cap = d.recommended_cap;
    let fit = format!(
        "Its successful completions fit a lognormal with median {:.0} and log-σ {:.2} (p90 {:.0}, longest {:.0} tokens)",
        d.mu.exp(),
        d.sigma,
        l.completion_p90,
        l.completion_max
    );
    let what = match (change, l.current_cap) {
        (CapChange::Raise, Some(current)) => format!(
            "{:.1} % of its {} successful responses were cut at max_tokens = {current:.0} (finish_reason = length). {fit}; max_completion_tokens = {cap:.0} covers their {:.1}th percentile, would cut about {:.2} % of responses, and lets about {:.0} more completion tokens through over the window.",
            l.truncated_share() * 100.0,
            l.requests,
            COVERED_QUANTILE * 100.0,
            d.cut_share * 100.0,
            d.extra_tokens
        ),
        (_, current) => format!(
            "{}. {fit}; max_completion_tokens = {cap:.0} covers their {:.1}th percentile (it would cut about {:.2} % of responses) and bounds runaway generations; engines that reserve KV for the cap up front (TensorRT-LLM's GUARANTEED_NO_EVICT) hold that many fewer tokens per sequence.",
            current.map_or(
                "Most of its requests set no output cap".to_string(),
                |c| format!(
                    "Its requests cap outputs at max_tokens = {c:.0}, over {:.0}× what they use",
                    c / cap
                )
            ),
            COVERED_QUANTILE * 100.0,
            d.cut_share * 100.0
        ),
    };
    let temperature = if l.with_feedback == 0 {
        " Temperature is not recommendable: no request carries feedback, so the data holds no signal of answer quality."
    } else {
        " Temperature is left as it is: feedback exists but tunelake does not yet relate it to sampling settings."
    };
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "client-defaults", &l.app_id]),
        target_supply_id: l.supply_id.clone(),
        analysis_summary: format!("App `{}`: {what}{temperature}", l.app_id),
        predicted_impact: PredictedImpact::default(),
        recommended_config_snippet: json!({
            "client_defaults": {
                "app_id": l.app_id,
                "max_completion_tokens": cap as u64,
            }
        }),
    })
}
