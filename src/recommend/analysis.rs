//! What a recommendation says: the analysis response of seed 000 and what the sinks need besides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hash::stable_hash64;
use crate::knobs::ServingConfig;
use crate::search::Evaluation;

/// Model error assumed for every figure when a supply has no backtest (uncalibrated roofline),
/// percent.
pub const UNCALIBRATED_ERROR_PCT: f64 = 25.0;

/// How far the calibrated model's p95 predictions were off in the backtest, per figure, percent
/// (absolute values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelError {
    pub ttft_pct: f64,
    pub tpot_pct: f64,
    pub e2e_pct: f64,
}

impl ModelError {
    pub fn uncalibrated() -> ModelError {
        ModelError {
            ttft_pct: UNCALIBRATED_ERROR_PCT,
            tpot_pct: UNCALIBRATED_ERROR_PCT,
            e2e_pct: UNCALIBRATED_ERROR_PCT,
        }
    }

    /// The backtest's signed p95 errors as magnitudes; a figure the backtest could not measure (the
    /// log has no such latency) counts as uncalibrated.
    pub fn measured(ttft_pct: f64, tpot_pct: f64, e2e_pct: f64) -> ModelError {
        let known = |e: f64| {
            if e.is_finite() {
                e.abs()
            } else {
                UNCALIBRATED_ERROR_PCT
            }
        };
        ModelError {
            ttft_pct: known(ttft_pct),
            tpot_pct: known(tpot_pct),
            e2e_pct: known(e2e_pct),
        }
    }

    /// Whether `e` meets the SLO on every scenario even if each p95 were this much worse.
    pub(super) fn has_headroom(&self, e: &Evaluation, slo: &crate::config::Slo) -> bool {
        e.feasible
            && e.scenarios.iter().all(|(_, m)| {
                m.ttft_p95_ms * (1.0 + self.ttft_pct / 100.0) <= slo.p95_ttft_ms
                    && m.tpot_p95_ms * (1.0 + self.tpot_pct / 100.0) <= slo.p95_tpot_ms
            })
    }
}
/// The analysis response (seed 000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub analysis_id: String,
    pub recommendations: Vec<SystemRecommendation>,
}

/// One supply's recommendation (seed 000's `SystemRecommendation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SystemRecommendation {
    pub recommendation_id: String,
    pub target_supply_id: String,
    pub analysis_summary: String,
    pub predicted_impact: PredictedImpact,
    /// Only the changed keys; `{}` when nothing is recommended.
    #[schema(value_type = Object)]
    pub recommended_config_snippet: Value,
}

/// Predicted changes in percent, with 95 % bootstrap intervals over the days of the window. Cost is
/// GPU-hours × price, latency the p95 end-to-end latency, throughput the output tokens served per
/// GPU-hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PredictedImpact {
    pub cost_change_percent: f64,
    pub p95_latency_change_percent: f64,
    pub p95_ttft_change_percent: f64,
    pub p95_tpot_change_percent: f64,
    pub throughput_change_percent: f64,
    /// `[low, high]` per figure above.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<f64>>)]
    pub confidence_intervals: BTreeMap<String, [f64; 2]>,
}

impl PredictedImpact {
    /// The figures above, by name, in order.
    pub const FIGURES: [&'static str; 5] = [
        "cost_change_percent",
        "p95_latency_change_percent",
        "p95_ttft_change_percent",
        "p95_tpot_change_percent",
        "throughput_change_percent",
    ];
}

/// What was decided for a supply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Recommended,
    /// The current configuration is (within the model's error) the best.
    NoChange,
    /// No candidate meets the SLOs.
    NoFeasible,
    /// A hosted API: nothing to simulate.
    Hosted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recommended => "recommended",
            Status::NoChange => "no_change",
            Status::NoFeasible => "no_feasible",
            Status::Hosted => "hosted",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recommendation with what the sinks need besides it.
#[derive(Debug, Clone, Serialize)]
pub struct SupplyRecommendation {
    pub recommendation: SystemRecommendation,
    pub status: Status,
    /// The current configuration (None for a hosted API).
    pub baseline: Option<ServingConfig>,
    /// The recommended configuration (the baseline when nothing is recommended).
    pub recommended: Option<ServingConfig>,
    pub model_error: Option<ModelError>,
    /// Simulated latency distributions on the window (None when nothing was simulated).
    pub latency: Option<LatencyProfiles>,
}

/// Percentiles 1..=99 of the simulated TTFT and TPOT of one configuration on the window, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencyProfile {
    pub ttft_ms: Vec<f64>,
    pub tpot_ms: Vec<f64>,
}

/// The current configuration's latency distributions and, when a change is recommended, the
/// recommended one's (same requests, same seed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyProfiles {
    pub current: LatencyProfile,
    pub recommended: Option<LatencyProfile>,
}

/// A UUID (version 8) derived from `parts`, so reruns of the same analysis give the same ids.
pub fn stable_uuid(parts: &[&str]) -> String {
    let text = parts.join("\u{1f}");
    let hi = stable_hash64(&text);
    let lo = stable_hash64(&format!("{text}\u{1f}lo"));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}
