//! The decision: whether the search's choice is worth recommending, and the recommendation that
//! explains it.

use serde_json::json;

use super::impact::{Outcomes, impact};
use super::prose::{context_sentence, describe_changes};
use super::{
    LatencyProfiles, ModelError, PredictedImpact, Status, SupplyRecommendation,
    SystemRecommendation, config_snippet, stable_uuid,
};
use crate::config::Supply;
use crate::error::Result;
use crate::knobs::ServingConfig;
use crate::search::{Evaluation, Evaluator, Round, SearchResult};
use crate::workloads::WorkloadClass;

/// Everything [`recommend`] needs for one self-hosted supply.
pub struct RecommendInput<'a> {
    pub supply: &'a Supply,
    pub evaluator: &'a Evaluator<'a>,
    pub search: &'a SearchResult,
    /// Workload classes of the run and the class of each of the supply's requests.
    pub classes: &'a [WorkloadClass],
    pub request_classes: &'a [u16],
    /// Backtest p95 errors of the calibrated model, if there is a backtest.
    pub model_error: Option<ModelError>,
    pub analysis_id: &'a str,
    pub seed: u64,
}

/// Decides and explains the recommendation of one self-hosted supply.
pub fn recommend(input: &RecommendInput) -> Result<SupplyRecommendation> {
    let search = input.search;
    let baseline = &search.baseline;
    let error = input.model_error.unwrap_or_else(ModelError::uncalibrated);
    let context = context_sentence(input);
    let slo = &input.supply.slo;
    let targets = format!(
        "p95 TTFT ≤ {} ms, p95 TPOT ≤ {} ms and ≤ {:.2} % failed requests at {}× the observed load",
        slo.p95_ttft_ms,
        slo.p95_tpot_ms,
        slo.error_budget * 100.0,
        input.supply.options.growth
    );
    let searched = format!(
        "{} candidate configurations were searched ({} pruned before simulation).",
        search.candidates,
        search.pruned.values().sum::<usize>()
    );
    let current = Outcomes::simulate(input, &baseline.config)?;
    let (status, chosen, reason, known_impact) = match &search.best {
        None => {
            let closest = search
                .evaluations
                .iter()
                .chain([baseline])
                .min_by(|a, b| a.slo_ratio.total_cmp(&b.slo_ratio))
                .unwrap_or(baseline);
            (
                Status::NoFeasible,
                None,
                format!(
                    "No configuration meets {targets}; the closest, {}, reaches {:.0} % of its tightest limit. Add capacity options (replicas, GPU types) or relax the SLO.",
                    closest.config.describe(),
                    closest.slo_ratio * 100.0
                ),
                None,
            )
        }
        Some(best) if best.config == baseline.config => (
            Status::NoChange,
            None,
            format!("The current configuration is already the cheapest meeting {targets}."),
            None,
        ),
        Some(best) => decide(input, best, error, &targets, &current)?,
    };
    let recommended = chosen.clone().unwrap_or_else(|| baseline.config.clone());
    let (predicted_impact, simulated) = match (&chosen, known_impact) {
        (Some(_), Some((known, simulated))) => (known, Some(simulated)),
        (Some(c), None) => {
            let simulated = Outcomes::simulate(input, c)?;
            (impact(input, c, &current, &simulated)?, Some(simulated))
        }
        (None, _) => (PredictedImpact::default(), None),
    };
    let summary = match status {
        Status::Recommended => format!(
            "{context} {} {reason} Predicted: cost {:+.1} %, p95 latency {:+.1} %, p95 TTFT {:+.1} %, p95 TPOT {:+.1} % (95 % intervals in predicted_impact). {searched} Model backtest error on p95: TTFT {:.1} %, TPOT {:.1} %, latency {:.1} %.",
            describe_changes(&baseline.config, &recommended),
            predicted_impact.cost_change_percent,
            predicted_impact.p95_latency_change_percent,
            predicted_impact.p95_ttft_change_percent,
            predicted_impact.p95_tpot_change_percent,
            error.ttft_pct,
            error.tpot_pct,
            error.e2e_pct,
        ),
        _ => format!("{context} No change recommended: {reason} {searched}"),
    };
    Ok(SupplyRecommendation {
        recommendation: SystemRecommendation {
            recommendation_id: stable_uuid(&[input.analysis_id, &input.supply.id]),
            target_supply_id: input.supply.id.clone(),
            analysis_summary: summary,
            predicted_impact,
            recommended_config_snippet: config_snippet(&baseline.config, &recommended),
        },
        status,
        baseline: Some(baseline.config.clone()),
        recommended: Some(recommended),
        model_error: Some(error),
        latency: Some(LatencyProfiles {
            current: current.profile(),
            recommended: simulated.map(|s| s.profile()),
        }),
    })
}

/// Status, the configuration chosen, why, and its impact when deciding needed it.
type Decision = (
    Status,
    Option<ServingConfig>,
    String,
    Option<(PredictedImpact, Outcomes)>,
);

/// Whether the search's choice `best` (not the baseline) is worth recommending; see the module doc.
fn decide(
    input: &RecommendInput,
    best: &Evaluation,
    error: ModelError,
    targets: &str,
    current: &Outcomes,
) -> Result<Decision> {
    let baseline = &input.search.baseline;
    let slo = &input.supply.slo;
    if !baseline.feasible {
        return Ok((
            Status::Recommended,
            Some(best.config.clone()),
            format!(
                "The current configuration misses {targets} (worst figure at {:.0} % of its limit); this one meets them.",
                baseline.slo_ratio * 100.0
            ),
            None,
        ));
    }
    if best.cost_per_hour < baseline.cost_per_hour * (1.0 - crate::search::COST_TIE) {
        // The cheapest configuration that keeps the model's error as headroom.
        let safe = input
            .search
            .evaluations
            .iter()
            .chain([best])
            .filter(|e| {
                e.round == Round::Full
                    && error.has_headroom(e, slo)
                    && e.cost_per_hour < baseline.cost_per_hour * (1.0 - crate::search::COST_TIE)
            })
            .min_by(|a, b| {
                a.cost_per_hour
                    .total_cmp(&b.cost_per_hour)
                    .then(a.e2e_p95_ms.total_cmp(&b.e2e_p95_ms))
            });
        return Ok(match safe {
            Some(e) => (
                Status::Recommended,
                Some(e.config.clone()),
                format!(
                    "It costs less and still meets {targets} with the model's backtest error as headroom."
                ),
                None,
            ),
            None => (
                Status::NoChange,
                None,
                format!(
                    "cheaper configurations ({}) meet {targets} only within the model's backtest error (p95 TTFT {:.1} %, TPOT {:.1} %).",
                    best.config.describe(),
                    error.ttft_pct,
                    error.tpot_pct
                ),
                None,
            ),
        });
    }
    let simulated = Outcomes::simulate(input, &best.config)?;
    let impact = impact(input, &best.config, current, &simulated)?;
    // Each latency gain is weighed against the backtest error of that figure.
    let figures = [
        (
            "p95 latency",
            "p95_latency_change_percent",
            impact.p95_latency_change_percent,
            error.e2e_pct,
        ),
        (
            "p95 TTFT",
            "p95_ttft_change_percent",
            impact.p95_ttft_change_percent,
            error.ttft_pct,
        ),
        (
            "p95 TPOT",
            "p95_tpot_change_percent",
            impact.p95_tpot_change_percent,
            error.tpot_pct,
        ),
    ];
    let (label, key, change, err) = figures
        .into_iter()
        .max_by(|a, b| (-a.2 - a.3).total_cmp(&(-b.2 - b.3)))
        .expect("three figures");
    let clear = impact
        .confidence_intervals
        .get(key)
        .is_none_or(|[_, hi]| *hi < 0.0);
    Ok(if -change > err && clear {
        (
            Status::Recommended,
            Some(best.config.clone()),
            format!(
                "At the same cost it cuts {label} by {:.1} %, more than the model's {err:.1} % backtest error on it.",
                -change
            ),
            Some((impact, simulated)),
        )
    } else {
        (
            Status::NoChange,
            None,
            format!(
                "the best alternative ({}) changes {label} by {change:.1} %, within the model's {err:.1} % backtest error on it.",
                best.config.describe(),
            ),
            None,
        )
    })
}

/// The recommendation of a supply that is not searched: a hosted API (nothing to simulate or
/// change on the serving side) or a self-hosted supply without traffic in the window.
pub fn unsearched(supply: &Supply, analysis_id: &str, requests: usize) -> SupplyRecommendation {
    let (status, summary) = if supply.engine.is_hosted() {
        (
            Status::Hosted,
            format!(
                "Supply `{}` is a hosted API ({}) that served {requests} requests in the window: its serving configuration is not ours to tune, so no change is recommended; its client defaults are in the OpenAI snippet.",
                supply.id, supply.model
            ),
        )
    } else {
        (
            Status::NoChange,
            format!(
                "Supply `{}` served no requests in the window: there is no traffic to size it for, so no change is recommended.",
                supply.id
            ),
        )
    };
    SupplyRecommendation {
        recommendation: SystemRecommendation {
            recommendation_id: stable_uuid(&[analysis_id, &supply.id]),
            target_supply_id: supply.id.clone(),
            analysis_summary: summary,
            predicted_impact: PredictedImpact::default(),
            recommended_config_snippet: json!({}),
        },
        status,
        baseline: None,
        recommended: None,
        model_error: None,
        latency: None,
    }
}
