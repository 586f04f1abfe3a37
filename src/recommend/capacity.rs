//! The capacity plan (seed 003): autoscaling bounds and thresholds in KEDA's terms, and a purchase
//! mix of reserved, on-demand and spot capacity, priced against the same configuration held static.
//!
//! **Autoscaling.** `minReplicaCount` and `maxReplicaCount` are the fewest and most replicas any
//! hour of the plan needs; the trigger is vLLM's `vllm:num_requests_waiting`, summed over the
//! supply's replicas, at a per-replica threshold of the waiting requests one replica holds at its
//! capacity (Little's law, from the capacity simulation), at least one.
//!
//! **Purchase mix** (when the pipeline file has `[purchase]`). Reserving a replica pays for every
//! hour at (1 − reserved discount), so the k-th replica is reserved when at least that share of
//! hours need k replicas; above the reserved floor, up to `max_spot_share` of the replica-hours run
//! on spot at (1 − spot discount), the rest on demand.

use serde::Serialize;
use serde_json::json;

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::config::{PurchaseOptions, Supply};
use crate::search::capacity::HourlyPlan;

/// Replica-hours bought each way and what they cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PurchaseMix {
    pub reserved_replicas: u32,
    pub on_demand_replica_hours: f64,
    pub spot_replica_hours: f64,
    pub cost_usd: f64,
}

/// A supply's capacity plan, priced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPlan {
    pub supply_id: String,
    pub plan: HourlyPlan,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// KEDA's per-replica target on requests in flight (running + waiting).
    pub concurrency_threshold: u32,
    pub usd_per_replica_hour: f64,
    /// The planned configuration held at its replicas all window.
    pub static_cost_usd: f64,
    /// Every planned replica-hour on demand.
    pub autoscaled_cost_usd: f64,
    pub mix: Option<PurchaseMix>,
}

impl CapacityPlan {
    /// Prices `plan` at `usd_per_replica_hour`.
    pub fn priced(
        supply_id: &str,
        plan: HourlyPlan,
        usd_per_replica_hour: f64,
        purchase: Option<&PurchaseOptions>,
    ) -> CapacityPlan {
        let replicas: Vec<u32> = plan.hours.iter().map(|h| h.replicas).collect();
        let hours = replicas.len() as f64;
        let replica_hours: f64 = replicas.iter().map(|r| f64::from(*r)).sum();
        let mix = purchase.map(|p| {
            let share_needing =
                |k: u32| replicas.iter().filter(|r| **r >= k).count() as f64 / hours;
            let reserved = (1..)
                .take_while(|k| {
                    share_needing(*k) >= 1.0 - p.reserved_discount && share_needing(*k) > 0.0
                })
                .last()
                .unwrap_or(0);
            let flexible: f64 = replicas
                .iter()
                .map(|r| f64::from(r.saturating_sub(reserved)))
                .sum();
            let spot = flexible * p.max_spot_share;
            PurchaseMix {
                reserved_replicas: reserved,
                on_demand_replica_hours: flexible - spot,
                spot_replica_hours: spot,
                cost_usd: usd_per_replica_hour
                    * (f64::from(reserved) * hours * (1.0 - p.reserved_discount)
                        + (flexible - spot)
                        + spot * (1.0 - p.spot_discount)),
            }
        });
        CapacityPlan {
            supply_id: supply_id.to_string(),
            min_replicas: replicas.iter().copied().min().unwrap_or(1),
            max_replicas: replicas.iter().copied().max().unwrap_or(1),
            concurrency_threshold: (plan.capacity.concurrency_per_replica.ceil() as u32).max(1),
            usd_per_replica_hour,
            static_cost_usd: f64::from(plan.config.replicas) * hours * usd_per_replica_hour,
            autoscaled_cost_usd: replica_hours * usd_per_replica_hour,
            mix,
            plan,
        }
    }

    /// What the plan costs: its purchase mix, else every replica-hour on demand.
    pub fn cost_usd(&self) -> f64 {
        self.mix.map_or(self.autoscaled_cost_usd, |m| m.cost_usd)
    }

    pub fn hours_meeting_slo(&self) -> usize {
        self.plan.hours.iter().filter(|h| h.slo_met).count()
    }
}

/// The plan as a recommendation when the window, replayed hour by hour on its replicas, meets the
/// SLOs and the plan costs less than the configuration held static; None otherwise.
pub fn capacity_plan(
    supply: &Supply,
    c: &CapacityPlan,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    let hours = c.plan.hours.len();
    let w = &c.plan.window;
    if !w.slo_met || c.cost_usd() >= c.static_cost_usd {
        return None;
    }
    let change = (c.cost_usd() / c.static_cost_usd - 1.0) * 100.0;
    let mix = c.mix.map_or(String::new(), |m| {
        format!(
            " Bought as {} reserved replica(s), {:.0} on-demand and {:.0} spot replica-hours, it costs ${:.2} (${:.2} all on demand).",
            m.reserved_replicas, m.on_demand_replica_hours, m.spot_replica_hours, m.cost_usd, c.autoscaled_cost_usd
        )
    });
    let mut snippet = serde_json::Map::new();
    let scaling = if c.min_replicas < c.max_replicas {
        let model = format!("model_name=\"{}\"", supply.model);
        snippet.insert(
            "keda_scaled_object".into(),
            json!({
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": { "name": supply.id },
                "spec": {
                    "scaleTargetRef": { "name": supply.id },
                    "minReplicaCount": c.min_replicas,
                    "maxReplicaCount": c.max_replicas,
                    "advanced": { "horizontalPodAutoscalerConfig": { "behavior": {
                        "scaleDown": { "stabilizationWindowSeconds": 600 }
                    } } },
                    "triggers": [{
                        "type": "prometheus",
                        "metadata": {
                            "serverAddress": "http://prometheus:9090",
                            "query": format!("sum(vllm:num_requests_running{{{model}}}) + sum(vllm:num_requests_waiting{{{model}}})"),
                            "threshold": c.concurrency_threshold.to_string(),
                        }
                    }]
                }
            }),
        );
        format!(
            " Autoscaling between {} and {} replicas on requests in flight ({} per replica) costs ${:.2} on demand against ${:.2} for {} static replica(s).",
            c.min_replicas,
            c.max_replicas,
            c.concurrency_threshold,
            c.autoscaled_cost_usd,
            c.static_cost_usd,
            c.plan.config.replicas
        )
    } else {
        format!(
            " Every hour needs {} replica(s), so there is nothing to autoscale (${:.2} on demand).",
            c.min_replicas, c.autoscaled_cost_usd
        )
    };
    if let Some(m) = c.mix {
        snippet.insert(
            "purchase".into(),
            json!({
                "reserved_replicas": m.reserved_replicas,
                "spot_replica_hours": m.spot_replica_hours,
                "on_demand_replica_hours": m.on_demand_replica_hours,
            }),
        );
    }
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "capacity-plan", &supply.id]),
        target_supply_id: supply.id.clone(),
        analysis_summary: format!(
            "One replica of `{}`, configured as it will run (the recommended configuration, else today's), serves {:.3} requests/s within its SLOs (simulated on its busiest hour). Sized hour by hour with {:.0} % headroom for the model's error, the window needs {} to {} replicas; replayed hour by hour on those replicas, its requests meet the SLOs (p95 TTFT {:.0} ms, p95 TPOT {:.1} ms, {:.2} % failed; {} of {hours} hours meet them on their own).{scaling}{mix}",
            supply.id,
            c.plan.capacity.requests_per_s,
            c.plan.headroom * 100.0,
            c.min_replicas,
            c.max_replicas,
            w.ttft_p95_ms,
            w.tpot_p95_ms,
            w.failed_share * 100.0,
            c.hours_meeting_slo(),
        ),
        predicted_impact: PredictedImpact {
            cost_change_percent: change,
            ..PredictedImpact::default()
        },
        recommended_config_snippet: serde_json::Value::Object(snippet),
    })
}
