//! A supply's grade and alerts as a recommendation (seed 004): what went wrong when, and the
//! alerting rules that would have paged on it.

use serde_json::{Value, json};

use super::{PredictedImpact, SystemRecommendation, stable_uuid};
use crate::config::{Engine, Supply};
use crate::opportunities::health::{AlertKind, KV_FULL, SupplyGrade, SupplyHealth};

/// The recommendation for a supply with alerts; None when the window raised none.
pub fn alerts(
    supply: &Supply,
    health: &SupplyHealth,
    grade: &SupplyGrade,
    analysis_id: &str,
) -> Option<SystemRecommendation> {
    if health.alerts.is_empty() {
        return None;
    }
    let when = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map_or(String::new(), |t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    let listed: Vec<String> = health
        .alerts
        .iter()
        .map(|a| {
            format!(
                "{} {}–{} UTC ({} h): {}",
                a.kind.as_str(),
                when(a.start_us),
                when(a.end_us),
                a.hours,
                a.evidence
            )
        })
        .collect();
    let kinds: std::collections::BTreeSet<AlertKind> =
        health.alerts.iter().map(|a| a.kind).collect();
    let rules: Vec<Value> = if supply.engine == Engine::Vllm {
        kinds.iter().flat_map(|k| vllm_rules(supply, *k)).collect()
    } else {
        Vec::new()
    };
    let rule_text = if rules.is_empty() {
        " The engine exports no metrics tunelake writes rules for; the alerts above come from the request log.".to_string()
    } else {
        " The snippet holds Prometheus alerting rules on vLLM's metrics for the same kinds of condition.".to_string()
    };
    Some(SystemRecommendation {
        recommendation_id: stable_uuid(&[analysis_id, "alerts", &supply.id]),
        target_supply_id: supply.id.clone(),
        analysis_summary: format!(
            "Supply `{}` is graded {} over the window ({}). {} alert(s): {}.{rule_text}",
            supply.id,
            grade.grade.as_str(),
            grade_parts(grade),
            health.alerts.len(),
            listed.join("; ")
        ),
        predicted_impact: PredictedImpact::default(),
        recommended_config_snippet: if rules.is_empty() {
            json!({})
        } else {
            json!({ "prometheus_rules": { "groups": [{ "name": format!("tunelake-{}", supply.id), "rules": rules }] } })
        },
    })
}

/// "SLO A, errors A+, ..." for the dimensions graded.
pub fn grade_parts(g: &SupplyGrade) -> String {
    [
        ("SLO", g.slo),
        ("errors", Some(g.errors)),
        ("utilisation", g.utilisation),
        ("cost", g.cost),
    ]
    .into_iter()
    .filter_map(|(name, grade)| grade.map(|g| format!("{name} {}", g.as_str())))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Alerting rules on vLLM's Prometheus metrics for one kind of alert (none for cost jumps, which
/// the request log shows and vLLM does not).
fn vllm_rules(supply: &Supply, kind: AlertKind) -> Vec<Value> {
    let model = format!("model_name=\"{}\"", supply.model);
    let quantile = |metric: &str| {
        format!("histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{{{model}}}[5m])))")
    };
    let rule = |name: &str, expr: String, summary: String| {
        json!({
            "alert": name,
            "expr": expr,
            "for": "10m",
            "labels": { "severity": "warning", "supply_id": supply.id },
            "annotations": { "summary": summary },
        })
    };
    match kind {
        AlertKind::SloMiss => vec![
            rule(
                "TunelakeTtftSloMiss",
                format!(
                    "{} > {}",
                    quantile("vllm:time_to_first_token_seconds"),
                    supply.slo.p95_ttft_ms / 1e3
                ),
                format!("p95 TTFT over {} ms", supply.slo.p95_ttft_ms),
            ),
            rule(
                "TunelakeTpotSloMiss",
                format!(
                    "{} > {}",
                    quantile("vllm:inter_token_latency_seconds"),
                    supply.slo.p95_tpot_ms / 1e3
                ),
                format!("p95 inter-token latency over {} ms", supply.slo.p95_tpot_ms),
            ),
        ],
        AlertKind::Saturation => vec![
            rule(
                "TunelakeRequestsWaiting",
                format!("avg(vllm:num_requests_waiting{{{model}}}) >= 1"),
                "requests queue for a free batch slot".into(),
            ),
            rule(
                "TunelakeKvCacheFull",
                format!("max(vllm:kv_cache_usage_perc{{{model}}}) >= {KV_FULL}"),
                "KV cache full".into(),
            ),
            rule(
                "TunelakePreemptions",
                format!("sum(increase(vllm:num_preemptions_total{{{model}}}[10m])) > 0"),
                "sequences preempted for KV space".into(),
            ),
        ],
        // vLLM's API server counts HTTP responses by status class; like the detector, the rule
        // compares the recent failure rate with the longer-run one.
        AlertKind::ErrorSpike => vec![rule(
            "TunelakeServerErrorSpike",
            "sum(rate(http_requests_total{status=\"5xx\"}[10m])) / sum(rate(http_requests_total[10m])) > 2 * (sum(rate(http_requests_total{status=\"5xx\"}[7d])) / sum(rate(http_requests_total[7d])))".into(),
            "server errors at over twice their weekly rate".into(),
        )],
        AlertKind::CostJump => Vec::new(),
    }
}
