//! The cost drivers as a recommendation (seed 003): the window's bill, its monthly projection and
//! what drives it, with a monthly budget set at that projection so an overrun is noticed.

use std::collections::BTreeMap;

use serde_json::json;

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::opportunities::costs::CostDrivers;

/// Budget alerts, percent of the projected month: on plan's end, and a fifth over it.
pub const BUDGET_ALERTS_PERCENT: [u32; 2] = [100, 120];

/// The recommendation for the fleet's costs, addressed to its costliest supply; None when nothing
/// is priced.
pub fn cost_budget(d: &CostDrivers, analysis_id: &str) -> Option<SystemRecommendation> {
    if d.total_usd <= 0.0 {
        return None;
    }
    let top = d.rows.iter().find(|r| r.dimension == "supply")?;
    let mut listed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in d.rows.iter().filter(|r| r.dimension != "day") {
        let keys = listed.entry(r.dimension).or_default();
        if keys.len() < 3 {
            keys.push(format!("{} {:.0} %", r.key, r.share * 100.0));
        }
    }
    let drivers: Vec<String> = ["supply", "app", "model", "class"]
        .iter()
        .filter_map(|dim| Some(format!("by {dim}: {}", listed.get(dim)?.join(", "))))
        .collect();
    let (requests, tokens) = (top.requests, top.tokens);
    let fleet = d
        .rows
        .iter()
        .filter(|r| r.dimension == "supply")
        .fold((0u64, 0u64), |(r, t), x| (r + x.requests, t + x.tokens));
    let month = d.per_month(d.total_usd);
    let budget = (month / 10.0).ceil() * 10.0;
    let unpriced = if d.unpriced.is_empty() {
        String::new()
    } else {
        format!(
            " Not priced (no price in the pipeline file): {}.",
            d.unpriced.join(", ")
        )
    };
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "cost-budget"]),
        target_supply_id: top.key.clone(),
        analysis_summary: format!(
            "The fleet cost ${:.2} over the {:.0}-day window, about ${month:.0} a month (${:.3} per 1k requests, ${:.2} per 1M tokens). Drivers {}. `{}` alone is {:.0} % ({requests} requests, {tokens} tokens).{unpriced} A monthly budget at the projection, alerting at {}, flags a month that runs over it.",
            d.total_usd,
            d.window_days,
            d.total_usd / fleet.0.max(1) as f64 * 1e3,
            d.total_usd / fleet.1.max(1) as f64 * 1e6,
            drivers.join("; "),
            top.key,
            top.share * 100.0,
            BUDGET_ALERTS_PERCENT
                .map(|p| format!("{p} %"))
                .join(" and "),
        ),
        predicted_impact: PredictedImpact::default(),
        recommended_config_snippet: json!({
            "monthly_budget": {
                "amount_usd": budget,
                "alert_at_percent": BUDGET_ALERTS_PERCENT,
            }
        }),
    })
}
