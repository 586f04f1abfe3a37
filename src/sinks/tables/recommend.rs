//! The `recommendations` table: the report's recommendations, one row per supply.

use arrow::datatypes::DataType;

use serde_json::{Value, json};

use super::{Table, TableDef, col};
use crate::error::{Context, Result};
use crate::recommend::{PredictedImpact, SupplyRecommendation};

pub(super) fn recommendations_def() -> TableDef {
    use DataType::{Float64, Utf8};
    let mut columns = vec![
        col("analysis_id", Utf8, "the run's analysis (report.json)"),
        col("recommendation_id", Utf8, "stable for a run id and supply"),
        col("target_supply_id", Utf8, "the supply"),
        col(
            "status",
            Utf8,
            "`recommended`, `no_change`, `no_feasible` or `hosted`",
        ),
        col(
            "analysis_summary",
            Utf8,
            "what is recommended and why, or why nothing is",
        ),
    ];
    for figure in PredictedImpact::FIGURES {
        columns.push(col(
            figure,
            Float64,
            "predicted change, % (cost: GPU-hours × price; latency: p95 end-to-end; throughput: output tokens per GPU-hour)",
        ));
    }
    for figure in PredictedImpact::FIGURES {
        columns.push(col(
            format!("{figure}_low"),
            Float64,
            format!("low end of the 95 % bootstrap interval of {figure}"),
        ));
        columns.push(col(
            format!("{figure}_high"),
            Float64,
            format!("high end of the 95 % bootstrap interval of {figure}"),
        ));
    }
    columns.extend([
        col(
            "recommended_config_snippet",
            Utf8,
            "the changed keys as JSON (`{}` when nothing is recommended)",
        ),
        col(
            "current_config",
            Utf8,
            "today's configuration as JSON (null for a hosted API)",
        ),
        col(
            "recommended_config",
            Utf8,
            "the recommended configuration as JSON (today's when nothing is recommended)",
        ),
        col(
            "backtest_ttft_error_pct",
            Float64,
            "the calibrated model's |p95 TTFT error| in the backtest, %",
        ),
        col(
            "backtest_tpot_error_pct",
            Float64,
            "its |p95 TPOT error|, %",
        ),
        col(
            "backtest_e2e_error_pct",
            Float64,
            "its |p95 end-to-end latency error|, %",
        ),
    ]);
    TableDef {
        name: "recommendations",
        row: "supply",
        columns,
    }
}

/// The `recommendations` table: the snippet and configurations as JSON text.
pub fn recommendations(analysis_id: &str, recs: &[SupplyRecommendation]) -> Result<Table> {
    let rows = recs
        .iter()
        .map(|r| {
            let rec = &r.recommendation;
            let impact = serde_json::to_value(&rec.predicted_impact)
                .context("serialising a predicted impact")?;
            let mut row = json!({
                "analysis_id": analysis_id,
                "recommendation_id": rec.recommendation_id,
                "target_supply_id": rec.target_supply_id,
                "status": r.status,
                "analysis_summary": rec.analysis_summary,
                "recommended_config_snippet": rec.recommended_config_snippet.to_string(),
                "current_config": r.baseline.as_ref().map(|c| json!(c).to_string()),
                "recommended_config": r.recommended.as_ref().map(|c| json!(c).to_string()),
                "backtest_ttft_error_pct": r.model_error.map(|e| e.ttft_pct),
                "backtest_tpot_error_pct": r.model_error.map(|e| e.tpot_pct),
                "backtest_e2e_error_pct": r.model_error.map(|e| e.e2e_pct),
            });
            for f in PredictedImpact::FIGURES {
                row[f] = impact[f].clone();
                if let Some([low, high]) = rec.predicted_impact.confidence_intervals.get(f) {
                    row[format!("{f}_low")] = json!(low);
                    row[format!("{f}_high")] = json!(high);
                }
            }
            Ok(row)
        })
        .collect::<Result<Vec<Value>>>()?;
    recommendations_def().table_of_rows(&rows)
}
