//! `eval_cases`: what `tunelake eval` writes beside its Markdown, one row per case, mode and metric
//! (long format, so one filter gives a metric's errors).

use arrow::datatypes::DataType;
use serde::Serialize;

use super::{Table, TableDef, col, required};
use crate::error::Result;
use crate::eval::{EvalReport, Metric, Mode};

pub(super) fn eval_cases_def() -> TableDef {
    use DataType::{Boolean, Float64, Int64, Utf8};
    TableDef {
        name: "eval_cases",
        row: "case, mode and metric",
        columns: vec![
            required("case_id", Utf8, "the case's id in the cases file"),
            required(
                "group",
                Utf8,
                "cases of one setup; calibration fits on the others of it",
            ),
            required(
                "scored",
                Boolean,
                "false for stress runs, reported but not scored",
            ),
            required("requests", Int64, "requests replayed"),
            required(
                "mode",
                Utf8,
                "`uncalibrated` (roofline defaults) or `calibrated` (fitted leaving this case out)",
            ),
            required(
                "metric",
                Utf8,
                "`ttft_p50_ms`, `ttft_p90_ms` or `decode_ms_per_token` (mean (E2E − TTFT) / (output − 1))",
            ),
            required("measured", Float64, "the measured value, ms"),
            col(
                "predicted",
                Float64,
                "the simulated value, ms (null: no model for this mode)",
            ),
            col("error_pct", Float64, "(predicted / measured − 1) × 100"),
            required("measured_failed", Int64, "requests the measured run failed"),
            col(
                "predicted_failed",
                Int64,
                "requests the simulation failed (timed out or rejected)",
            ),
        ],
    }
}

#[derive(Serialize)]
struct Row<'a> {
    case_id: &'a str,
    group: &'a str,
    scored: bool,
    requests: usize,
    mode: &'static str,
    metric: &'static str,
    measured: f64,
    predicted: Option<f64>,
    error_pct: Option<f64>,
    measured_failed: usize,
    predicted_failed: Option<usize>,
}

/// The `eval_cases` table of a report (non-finite values are written as null).
pub fn eval_cases(report: &EvalReport) -> Result<Table> {
    let finite = |x: f64| x.is_finite().then_some(x);
    let mut rows = Vec::new();
    for r in &report.cases {
        for mode in Mode::ALL {
            let predicted = r.predicted(mode);
            for metric in Metric::ALL.into_iter().filter(|&m| r.measures(m)) {
                rows.push(Row {
                    case_id: &r.id,
                    group: &r.group,
                    scored: r.scored,
                    requests: r.requests,
                    mode: mode.name(),
                    metric: metric.name(),
                    measured: r.measured.get(metric),
                    predicted: predicted.and_then(|p| finite(p.get(metric))),
                    error_pct: r.error_pct(mode, metric).and_then(finite),
                    measured_failed: r.measured.failed,
                    predicted_failed: predicted.map(|p| p.failed),
                });
            }
        }
    }
    eval_cases_def().table_of_rows(&rows)
}
