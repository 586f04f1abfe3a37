//! `simulations` (every evaluation) and `pareto` (the cost vs latency frontier).

use arrow::datatypes::{DataType, Field};
use serde::Serialize;

use super::{Column, Table, TableDef, col};
use crate::error::Result;
use crate::knobs::{Knob, ServingConfig, ValueKind};
use crate::search::{Metrics, Round, SearchResult, pareto};

/// The columns of a flattened [`ServingConfig`]: one per knob, in [`Knob::ALL`] order.
fn config_columns() -> Vec<Column> {
    Knob::ALL
        .iter()
        .map(|&knob| {
            let data_type = match knob.kind() {
                ValueKind::Text => DataType::Utf8,
                ValueKind::Integer => DataType::Int64,
                ValueKind::Real => DataType::Float64,
                ValueKind::Flag => DataType::Boolean,
                ValueKind::Speculative => DataType::Struct(
                    vec![
                        Field::new("draft_model", DataType::Utf8, true),
                        Field::new("num_speculative_tokens", DataType::Int64, true),
                    ]
                    .into(),
                ),
            };
            col(knob.name(), data_type, knob.doc())
        })
        .collect()
}

pub(super) fn simulations_def() -> TableDef {
    use DataType::{Boolean, Float64, Int64, Utf8};
    let mut columns = vec![
        col("supply_id", Utf8, "the supply"),
        col(
            "candidate_id",
            Utf8,
            "the configuration's id (stable across runs)",
        ),
        col(
            "round",
            Utf8,
            "`baseline` (today's), `screen` (on the sample) or `full`",
        ),
        col(
            "scenario",
            Utf8,
            "`window` (the whole window), `peak` (its busiest hour) or `sample` (1-in-8 time slices)",
        ),
    ];
    columns.extend(config_columns());
    columns.extend([
        col(
            "cost_per_hour_usd",
            Float64,
            "GPUs × price per GPU-hour, USD",
        ),
        col(
            "feasible",
            Boolean,
            "meets the SLOs and error budget on every scenario of its round",
        ),
        col(
            "slo_ratio",
            Float64,
            "worst figure ÷ its limit over the round's scenarios (≤ 1 when feasible)",
        ),
        col("requests", Int64, "requests simulated in this scenario"),
        col(
            "failed_share",
            Float64,
            "rejected or timed-out requests ÷ requests",
        ),
        col("ttft_p50_ms", Float64, "p50 time to first token, ms"),
        col("ttft_p95_ms", Float64, "p95 time to first token, ms"),
        col("tpot_p50_ms", Float64, "p50 time per output token, ms"),
        col("tpot_p95_ms", Float64, "p95 time per output token, ms"),
        col("e2e_p95_ms", Float64, "p95 end-to-end latency, ms"),
        col(
            "output_tokens_per_s",
            Float64,
            "output tokens served per second",
        ),
        col("mean_batch", Float64, "mean running batch"),
        col("max_kv_utilization", Float64, "highest KV-cache use, 0–1"),
        col("preemptions", Int64, "sequences preempted"),
        col(
            "prefix_cache_hit_rate",
            Float64,
            "share of prompt tokens served from the prefix cache",
        ),
    ]);
    TableDef {
        name: "simulations",
        row: "configuration simulated, per round and scenario",
        columns,
    }
}

pub(super) fn pareto_def() -> TableDef {
    use DataType::{Boolean, Float64, Int64, Utf8};
    TableDef {
        name: "pareto",
        row: "configuration on a supply's cost vs p95 latency frontier",
        columns: vec![
            col("supply_id", Utf8, "the supply"),
            col("rank", Int64, "0 for the cheapest, upward"),
            col("candidate_id", Utf8, "the configuration's id"),
            col(
                "description",
                Utf8,
                "the configuration, as a person reads it",
            ),
            col("is_current", Boolean, "today's configuration"),
            col("is_chosen", Boolean, "the search's choice"),
            col(
                "feasible",
                Boolean,
                "meets the SLOs and error budget on the window and peak hour",
            ),
            col(
                "cost_per_hour_usd",
                Float64,
                "GPUs × price per GPU-hour, USD",
            ),
            col(
                "e2e_p95_ms",
                Float64,
                "worst p95 end-to-end latency over the scenarios, ms",
            ),
            col(
                "slo_ratio",
                Float64,
                "worst figure ÷ its limit (≤ 1 when feasible)",
            ),
        ],
    }
}

/// One row of the `simulations` table: one evaluation on one scenario.
#[derive(Serialize)]
struct SimulationRow<'a> {
    supply_id: &'a str,
    candidate_id: String,
    round: Round,
    scenario: &'static str,
    #[serde(flatten)]
    config: &'a ServingConfig,
    cost_per_hour_usd: f64,
    feasible: bool,
    slo_ratio: f64,
    #[serde(flatten)]
    metrics: &'a Metrics,
}

/// One row of the `pareto` table.
#[derive(Serialize)]
struct ParetoRow<'a> {
    supply_id: &'a str,
    rank: usize,
    candidate_id: String,
    description: String,
    is_current: bool,
    is_chosen: bool,
    feasible: bool,
    cost_per_hour_usd: f64,
    e2e_p95_ms: f64,
    slo_ratio: f64,
}

/// The `simulations` (every evaluation, per scenario) and `pareto` tables.
pub fn search(results: &[SearchResult]) -> Result<Vec<Table>> {
    let mut simulations = Vec::new();
    let mut frontier = Vec::new();
    for r in results {
        for e in std::iter::once(&r.baseline).chain(&r.evaluations) {
            for (kind, m) in &e.scenarios {
                simulations.push(SimulationRow {
                    supply_id: &r.supply_id,
                    candidate_id: e.config.id(),
                    round: e.round,
                    scenario: kind.as_str(),
                    config: &e.config,
                    cost_per_hour_usd: e.cost_per_hour,
                    feasible: e.feasible,
                    slo_ratio: e.slo_ratio,
                    metrics: m,
                });
            }
        }
        for (rank, e) in pareto(r).into_iter().enumerate() {
            frontier.push(ParetoRow {
                supply_id: &r.supply_id,
                rank,
                candidate_id: e.config.id(),
                description: e.config.describe(),
                is_current: e.config == r.baseline.config,
                is_chosen: r.best.as_ref().is_some_and(|b| b.config == e.config),
                feasible: e.feasible,
                cost_per_hour_usd: e.cost_per_hour,
                e2e_p95_ms: e.e2e_p95_ms,
                slo_ratio: e.slo_ratio,
            });
        }
    }
    Ok(vec![
        simulations_def().table_of_rows(&simulations)?,
        pareto_def().table_of_rows(&frontier)?,
    ])
}
