//! Recommendations in seed 000's shape: per supply, what to change, why, and its predicted impact
//! with bootstrap intervals; plus the engine snippets that apply it.
//!
//! **Decision.** The search's choice is recommended when it differs from the current configuration
//! and either (a) the current one misses its SLOs and the choice meets them, (b) it is cheaper and
//! meets the SLOs with a margin of the calibrated model's backtest error (p95 × (1 + error) within
//! the targets), or (c) it costs the same and improves a p95 latency by more than that error, with
//! a bootstrap interval that excludes zero. Otherwise nothing is recommended and the summary says
//! why.
//!
//! **Impact.** Baseline and choice are re-simulated on the window with per-request results (same
//! seed: common random numbers). Point figures are over all requests; 95 % intervals come from a
//! paired bootstrap that resamples the days of the window (hours when it has fewer than 3 days).

pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::Supply;
use crate::error::Result;
use crate::hash::stable_hash64;
use crate::knobs::{Knob, ServingConfig};
use crate::rng::Rng;
use crate::search::{Evaluation, Evaluator, Round, ScenarioKind, SearchResult};
use crate::simulation::{RequestResult, RequestStatus};
use crate::workloads::WorkloadClass;

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

    /// Whether `e` meets the SLO on every scenario even if each p95 were this much worse.
    fn has_headroom(&self, e: &Evaluation, slo: &crate::config::Slo) -> bool {
        e.feasible
            && e.scenarios.iter().all(|(_, m)| {
                m.ttft_p95_ms * (1.0 + self.ttft_pct / 100.0) <= slo.p95_ttft_ms
                    && m.tpot_p95_ms * (1.0 + self.tpot_pct / 100.0) <= slo.p95_tpot_ms
            })
    }
}
/// Bootstrap resamples.
const RESAMPLES: usize = 400;

/// The analysis response (seed 000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub analysis_id: String,
    pub recommendations: Vec<SystemRecommendation>,
}

/// One supply's recommendation (seed 000's `SystemRecommendation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemRecommendation {
    pub recommendation_id: String,
    pub target_supply_id: String,
    pub analysis_summary: String,
    pub predicted_impact: PredictedImpact,
    /// Only the changed keys; `{}` when nothing is recommended.
    pub recommended_config_snippet: Value,
}

/// Predicted changes in percent, with 95 % bootstrap intervals over the days of the window. Cost is
/// GPU-hours × price, latency the p95 end-to-end latency, throughput the output tokens served per
/// GPU-hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictedImpact {
    pub cost_change_percent: f64,
    pub p95_latency_change_percent: f64,
    pub p95_ttft_change_percent: f64,
    pub p95_tpot_change_percent: f64,
    pub throughput_change_percent: f64,
    /// `[low, high]` per figure above.
    pub confidence_intervals: BTreeMap<String, [f64; 2]>,
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

/// The seed-000 snippet of the change from `before` to `after`: only changed keys, grouped as
/// `resource_config` (GPU, TP, replicas) and `performance_config` (engine settings).
pub fn config_snippet(before: &ServingConfig, after: &ServingConfig) -> Value {
    let mut resource = Map::new();
    let mut performance = Map::new();
    for ch in after.changes_from(before) {
        match ch.knob {
            Knob::Gpu => {
                resource.insert("gpu_type".into(), ch.after);
            }
            Knob::TensorParallelSize | Knob::Replicas => {
                resource.insert(ch.knob.to_string(), ch.after);
            }
            Knob::Speculative => {
                let value = match &after.speculative {
                    Some(s) => json!({
                        "draft_model_path": s.draft_model,
                        "num_speculative_tokens": s.num_speculative_tokens,
                    }),
                    None => Value::Null,
                };
                performance.insert("speculative_decoding".into(), value);
            }
            knob => {
                performance.insert(knob.to_string(), ch.after);
            }
        }
    }
    let mut snippet = Map::new();
    if !resource.is_empty() {
        snippet.insert("resource_config".into(), Value::Object(resource));
    }
    if !performance.is_empty() {
        snippet.insert("performance_config".into(), Value::Object(performance));
    }
    Value::Object(snippet)
}

/// `config` with a [`config_snippet`] applied: the inverse of the snippet, so a test (or a user)
/// can check that a snippet reproduces the recommended configuration.
pub fn apply_snippet(config: &ServingConfig, snippet: &Value) -> Result<ServingConfig> {
    let bad = |m: String| crate::Error::Setting {
        key: "recommended_config_snippet".into(),
        message: m,
    };
    let mut knobs: Map<String, Value> = Knob::ALL
        .iter()
        .map(|&k| (k.to_string(), config.value(k)))
        .collect();
    for (group, values) in snippet.as_object().into_iter().flatten() {
        for (key, value) in values
            .as_object()
            .ok_or_else(|| bad(format!("`{group}` is not an object")))?
        {
            let (knob, value) = match key.as_str() {
                "gpu_type" => ("gpu".to_string(), value.clone()),
                "speculative_decoding" => (
                    "speculative".to_string(),
                    match value {
                        Value::Null => Value::Null,
                        v => json!({
                            "draft_model": v["draft_model_path"],
                            "num_speculative_tokens": v["num_speculative_tokens"],
                        }),
                    },
                ),
                other => (other.to_string(), value.clone()),
            };
            if !knobs.contains_key(&knob) {
                return Err(bad(format!("unknown key `{key}` in `{group}`")));
            }
            knobs.insert(knob, value);
        }
    }
    serde_json::from_value(Value::Object(knobs)).map_err(|e| bad(e.to_string()))
}

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
        Some(best) => decide(input, best, error, &targets)?,
    };
    let recommended = chosen.clone().unwrap_or_else(|| baseline.config.clone());
    let predicted_impact = match (&chosen, known_impact) {
        (Some(_), Some(known)) => known,
        (Some(c), None) => impact(input, c)?,
        (None, _) => PredictedImpact::default(),
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
    })
}

/// What to recommend, why, and the impact when it was already computed.
type Decision = (
    Status,
    Option<ServingConfig>,
    String,
    Option<PredictedImpact>,
);

/// Whether the search's choice `best` (not the baseline) is worth recommending; see the module doc.
fn decide(
    input: &RecommendInput,
    best: &Evaluation,
    error: ModelError,
    targets: &str,
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
    let impact = impact(input, &best.config)?;
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
            Some(impact),
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

/// "Traffic of <supply>: N requests, 78 % short chat (...), 22 % ...; peak hour M requests."
fn context_sentence(input: &RecommendInput) -> String {
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for c in input.request_classes {
        *counts.entry(*c).or_default() += 1;
    }
    let total = input.request_classes.len().max(1) as f64;
    let mut shares: Vec<(u16, usize)> = counts.into_iter().collect();
    shares.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mix: Vec<String> = shares
        .iter()
        .filter(|(_, n)| *n as f64 / total >= 0.01)
        .take(3)
        .map(|(id, n)| {
            let label = input
                .classes
                .iter()
                .find(|c| c.id == *id)
                .map_or("unclassified", |c| c.label.as_str());
            format!("{:.0} % {label}", *n as f64 / total * 100.0)
        })
        .collect();
    let peak = input
        .search
        .baseline
        .metrics(ScenarioKind::Peak)
        .map(|m| format!(" The peak hour is simulated with {} requests.", m.requests))
        .unwrap_or_default();
    format!(
        "Supply `{}` served {} requests in the window: {}.{peak}",
        input.supply.id,
        input.request_classes.len(),
        mix.join(", ")
    )
}

fn describe_changes(before: &ServingConfig, after: &ServingConfig) -> String {
    let changes: Vec<String> = after
        .changes_from(before)
        .iter()
        .map(|c| c.describe().to_string())
        .collect();
    format!("Recommended: {}.", changes.join("; "))
}

/// Per-request figures of one configuration on the window.
struct Outcomes {
    results: Vec<RequestResult>,
    gpus: f64,
    cost_per_hour: f64,
}

/// Predicted impact of `chosen` against the baseline, with paired bootstrap intervals.
fn impact(input: &RecommendInput, chosen: &ServingConfig) -> Result<PredictedImpact> {
    let run = |config: &ServingConfig| -> Result<Outcomes> {
        let report = input
            .evaluator
            .simulate(config, ScenarioKind::Window, true)?
            .expect("the window scenario always exists");
        let d = input.evaluator.deployment(config)?;
        Ok(Outcomes {
            results: report.per_request.unwrap_or_default(),
            gpus: config.gpus() as f64,
            cost_per_hour: config.gpus() as f64 * d.price_per_gpu_hour,
        })
    };
    let base = run(&input.search.baseline.config)?;
    let new = run(chosen)?;
    let scenarios = input
        .evaluator
        .scenarios(chosen.block_size)
        .expect("scenarios of every searched block size");
    let trace = &scenarios.window;
    let clock = &scenarios.window_clock_s;
    let days = clock
        .iter()
        .map(|s| (s / 86_400.0) as u32)
        .max()
        .unwrap_or(0)
        + 1;
    let unit = if days >= 3 { 86_400.0 } else { 3_600.0 };
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, s) in clock.iter().enumerate() {
        groups.entry((s / unit) as u32).or_default().push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let cost = (new.cost_per_hour / base.cost_per_hour - 1.0) * 100.0;
    let figures = |picked: &mut dyn Iterator<Item = usize>| -> [f64; 4] {
        let mut v: [[Vec<f64>; 2]; 3] = Default::default();
        let mut tokens = [0.0f64; 2];
        for i in picked {
            for (k, o) in [&base, &new].into_iter().enumerate() {
                let r = &o.results[i];
                if r.status != RequestStatus::Finished {
                    continue;
                }
                v[0][k].push(r.e2e_ms);
                v[1][k].push(r.ttft_ms);
                if r.tpot_ms.is_finite() {
                    v[2][k].push(r.tpot_ms);
                }
                tokens[k] += trace.requests()[i].output_tokens as f64;
            }
        }
        let change = |pair: &mut [Vec<f64>; 2]| {
            let [a, b] = pair;
            (p95(b) / p95(a) - 1.0) * 100.0
        };
        [
            change(&mut v[0]),
            change(&mut v[1]),
            change(&mut v[2]),
            ((tokens[1] / new.gpus) / (tokens[0] / base.gpus) - 1.0) * 100.0,
        ]
    };
    let point = figures(&mut (0..trace.len()));
    let mut rng = Rng::new(
        input.seed,
        stable_hash64(&format!("{}/bootstrap", input.supply.id)),
    );
    let mut draws: [Vec<f64>; 4] = Default::default();
    for _ in 0..RESAMPLES {
        let picks: Vec<usize> = (0..groups.len())
            .flat_map(|_| {
                groups[rng.below(groups.len() as u64) as usize]
                    .iter()
                    .copied()
            })
            .collect();
        let f = figures(&mut picks.into_iter());
        for (d, x) in draws.iter_mut().zip(f) {
            if x.is_finite() {
                d.push(x);
            }
        }
    }
    let names = [
        "p95_latency_change_percent",
        "p95_ttft_change_percent",
        "p95_tpot_change_percent",
        "throughput_change_percent",
    ];
    let mut intervals = BTreeMap::from([("cost_change_percent".to_string(), [cost, cost])]);
    for (name, mut d) in names.into_iter().zip(draws) {
        if !d.is_empty() {
            d.sort_by(f64::total_cmp);
            let at = |q: f64| d[((q * (d.len() - 1) as f64).round()) as usize];
            intervals.insert(name.to_string(), [at(0.025), at(0.975)]);
        }
    }
    Ok(PredictedImpact {
        cost_change_percent: cost,
        p95_latency_change_percent: point[0],
        p95_ttft_change_percent: point[1],
        p95_tpot_change_percent: point[2],
        throughput_change_percent: point[3],
        confidence_intervals: intervals,
    })
}

/// Nearest-rank p95 (NaN when empty); reorders `v`.
fn p95(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let k = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    *v.select_nth_unstable_by(k, f64::total_cmp).1
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
    }
}

/// The figures of [`PredictedImpact`], in column order.
const IMPACT_FIGURES: [&str; 5] = [
    "cost_change_percent",
    "p95_latency_change_percent",
    "p95_ttft_change_percent",
    "p95_tpot_change_percent",
    "throughput_change_percent",
];

/// The `recommendations` table: one row per supply; the snippet and configurations as JSON text.
pub fn table(analysis_id: &str, recs: &[SupplyRecommendation]) -> Result<crate::features::Table> {
    use arrow::datatypes::DataType::{Float64, Utf8};
    let mut columns = vec![
        ("analysis_id", Utf8),
        ("recommendation_id", Utf8),
        ("target_supply_id", Utf8),
        ("status", Utf8),
        ("analysis_summary", Utf8),
    ];
    for f in IMPACT_FIGURES {
        columns.push((f, Float64));
    }
    let bounds: Vec<(String, String)> = IMPACT_FIGURES
        .iter()
        .map(|f| (format!("{f}_low"), format!("{f}_high")))
        .collect();
    for (lo, hi) in &bounds {
        columns.push((lo, Float64));
        columns.push((hi, Float64));
    }
    columns.extend([
        ("recommended_config_snippet", Utf8),
        ("current_config", Utf8),
        ("recommended_config", Utf8),
        ("backtest_ttft_error_pct", Float64),
        ("backtest_tpot_error_pct", Float64),
        ("backtest_e2e_error_pct", Float64),
    ]);
    let rows: Vec<Value> = recs
        .iter()
        .map(|r| {
            let rec = &r.recommendation;
            let impact = serde_json::to_value(&rec.predicted_impact).expect("JSON");
            let mut row = json!({
                "analysis_id": analysis_id,
                "recommendation_id": rec.recommendation_id,
                "target_supply_id": rec.target_supply_id,
                "status": r.status.as_str(),
                "analysis_summary": rec.analysis_summary,
                "recommended_config_snippet": rec.recommended_config_snippet.to_string(),
                "current_config": r.baseline.as_ref().map(|c| json!(c).to_string()),
                "recommended_config": r.recommended.as_ref().map(|c| json!(c).to_string()),
                "backtest_ttft_error_pct": r.model_error.map(|e| e.ttft_pct),
                "backtest_tpot_error_pct": r.model_error.map(|e| e.tpot_pct),
                "backtest_e2e_error_pct": r.model_error.map(|e| e.e2e_pct),
            });
            for (f, (lo, hi)) in IMPACT_FIGURES.iter().zip(&bounds) {
                row[f] = impact[f].clone();
                if let Some([l, h]) = rec.predicted_impact.confidence_intervals.get(*f) {
                    row[lo] = json!(l);
                    row[hi] = json!(h);
                }
            }
            row
        })
        .collect();
    crate::features::Table::from_rows("recommendations", &columns, &rows)
}
