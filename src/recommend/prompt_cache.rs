//! The prompt-caching recommendation of one app on a hosted API, in seed 000's shape.

use serde_json::json;

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::per_month;
use crate::opportunities::prefix::PrefixCaching;

/// The recommendation for `p`'s chosen retention; None when no replay saves enough.
pub fn prompt_caching(p: &PrefixCaching, analysis_id: &str) -> Option<SystemRecommendation> {
    let chosen = &p.replays[p.chosen?];
    let share = |tokens: u64| tokens as f64 / p.prompt_tokens.max(1) as f64 * 100.0;
    let mut client = json!({ "prompt_cache_key": p.app_id });
    if let Some(name) = &chosen.retention {
        client["prompt_cache_retention"] = json!(name);
    }
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "prompt-cache", &p.app_id, &p.supply_id]),
        target_supply_id: p.supply_id.clone(),
        analysis_summary: format!(
            "App `{}` sends `{}` prompts whose shared prefixes hold {:.1} % of its {} input tokens in prefixes long enough for the provider's prompt cache; the provider reported {:.1} % as cached. Replayed with {} (prefixes kept {:.0} s after their last use), {:.1} % of input tokens would be read from the cache, saving ${:.2} of the ${:.2} its input cost in the window (about ${:.0} a month). Keep the shared prefix at the start of every prompt, byte for byte, and send the app's name as `prompt_cache_key` so its requests reach the same cache.",
            p.app_id,
            p.supply_id,
            share(p.long_prefix_tokens),
            p.prompt_tokens,
            share(p.reported_cached_tokens),
            chosen
                .retention
                .as_ref()
                .map_or("the default retention".to_string(), |r| format!(
                    "`prompt_cache_retention` = \"{r}\""
                )),
            chosen.ttl_s,
            share(chosen.cached_tokens),
            chosen.saving_usd,
            p.input_cost_usd,
            per_month(chosen.saving_usd, p.window_days),
        ),
        predicted_impact: PredictedImpact {
            cost_change_percent: -chosen.saving_usd / p.cost_usd.max(1e-12) * 100.0,
            ..PredictedImpact::default()
        },
        recommended_config_snippet: json!({ "openai_client": client }),
    })
}
