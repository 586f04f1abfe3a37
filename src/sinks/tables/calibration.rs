//! The `calibration` table: per supply, the fitted engine model and its backtest.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::datatypes::DataType;

use super::{Column, Table, TableDef, col, required, str_array};
use crate::calibration::{Backtest, MetricError, SupplyCalibration};
use crate::error::Result;

/// How a column's value is read off a supply's result.
type Getter<T> = Box<dyn Fn(&SupplyCalibration) -> Option<T>>;

/// A calibration column with how to read it off a supply's result.
struct CalibrationColumn<T> {
    column: Column,
    get: Getter<T>,
}

fn calibration_column<T>(
    name: impl Into<String>,
    data_type: DataType,
    doc: impl Into<String>,
    get: impl Fn(&SupplyCalibration) -> Option<T> + 'static,
) -> CalibrationColumn<T> {
    CalibrationColumn {
        column: col(name, data_type, doc),
        get: Box::new(get),
    }
}

/// The counts of the `calibration` table, after `supply_id` and `status`.
fn calibration_counts() -> Vec<CalibrationColumn<i64>> {
    let n = |name: &str, doc: &str, get: fn(&SupplyCalibration) -> Option<usize>| {
        calibration_column(name, DataType::Int64, doc, move |c| {
            get(c).map(|v| v as i64)
        })
    };
    vec![
        n("windows_total", "telemetry windows read", |c| {
            c.decode.as_ref().map(|d| d.windows_total)
        }),
        n(
            "windows_used",
            "windows with a running batch and an ITL, used by the decode fit",
            |c| c.decode.as_ref().map(|d| d.windows_used),
        ),
        n(
            "windows_rejected",
            "of those, rejected as outliers (4 robust σ)",
            |c| c.decode.as_ref().map(|d| d.windows_rejected),
        ),
        n("requests_used", "requests used by the prefill fit", |c| {
            c.prefill.as_ref().map(|p| p.requests_used)
        }),
        n("ekf_updates", "windows the EKF updated on", |c| {
            c.ekf.map(|e| e.updates)
        }),
        n("ekf_rejected", "windows the EKF rejected", |c| {
            c.ekf.map(|e| e.rejected)
        }),
        n(
            "backtest_requests",
            "requests replayed by the backtest",
            |c| c.backtest.as_ref().map(|b| b.requests),
        ),
    ]
}

/// The figures of the `calibration` table, after its counts.
fn calibration_figures() -> Vec<CalibrationColumn<f64>> {
    let f = |name: &str, doc: &str, get: fn(&SupplyCalibration) -> Option<f64>| {
        calibration_column(name, DataType::Float64, doc, get)
    };
    let mut columns = vec![
        f(
            "prior_alpha_ms",
            "roofline prior of α (decode step at batch 0), ms",
            |c| c.prior.map(|p| p.alpha_ms),
        ),
        f(
            "prior_beta_ms",
            "roofline prior of β (decode step per sequence), ms",
            |c| c.prior.map(|p| p.beta_ms),
        ),
        f(
            "prior_prefill_ms_per_token",
            "roofline prior of γ (prefill per uncached token), ms",
            |c| c.prior.map(|p| p.prefill_ms_per_token),
        ),
        f(
            "prior_request_overhead_ms",
            "roofline prior of c₀ (fixed cost per request), ms",
            |c| c.prior.map(|p| p.request_overhead_ms),
        ),
        f("alpha_ms", "fitted α, ms", |c| {
            c.decode.as_ref().map(|d| d.alpha.value)
        }),
        f("alpha_se", "standard error of α, ms", |c| {
            c.decode.as_ref().map(|d| d.alpha.se)
        }),
        f(
            "alpha_shrinkage",
            "share of α taken from the prior, 0–1",
            |c| c.decode.as_ref().map(|d| d.alpha.shrinkage),
        ),
        f("beta_ms", "fitted β, ms", |c| {
            c.decode.as_ref().map(|d| d.beta.value)
        }),
        f("beta_se", "standard error of β, ms", |c| {
            c.decode.as_ref().map(|d| d.beta.se)
        }),
        f(
            "beta_shrinkage",
            "share of β taken from the prior, 0–1",
            |c| c.decode.as_ref().map(|d| d.beta.shrinkage),
        ),
        f(
            "batch_min",
            "smallest batch among the fitted windows",
            |c| c.decode.as_ref().map(|d| d.batch_min),
        ),
        f("batch_max", "largest batch among the fitted windows", |c| {
            c.decode.as_ref().map(|d| d.batch_max)
        }),
        f(
            "itl_residual_sd_ms",
            "residual sd of ITL at a window of average weight, ms",
            |c| c.decode.as_ref().map(|d| d.sigma_ms),
        ),
        f(
            "prefill_ms_per_token",
            "fitted γ, ms per uncached token",
            |c| c.prefill.as_ref().map(|p| p.per_token.value),
        ),
        f("prefill_ms_per_token_se", "standard error of γ, ms", |c| {
            c.prefill.as_ref().map(|p| p.per_token.se)
        }),
        f("request_overhead_ms", "fitted c₀, ms", |c| {
            c.prefill.as_ref().map(|p| p.overhead.value)
        }),
        f("request_overhead_se", "standard error of c₀, ms", |c| {
            c.prefill.as_ref().map(|p| p.overhead.se)
        }),
        f("ekf_alpha_ms", "the EKF's final α, ms", |c| {
            c.ekf.map(|e| e.alpha_ms)
        }),
        f("ekf_alpha_sd", "its posterior sd, ms", |c| {
            c.ekf.map(|e| e.alpha_sd)
        }),
        f("ekf_beta_ms", "the EKF's final β, ms", |c| {
            c.ekf.map(|e| e.beta_ms)
        }),
        f("ekf_beta_sd", "its posterior sd, ms", |c| {
            c.ekf.map(|e| e.beta_sd)
        }),
    ];
    type Pick<T> = fn(T) -> f64;
    type Metric = fn(&Backtest) -> MetricError;
    let metrics: [(&str, &str, Metric); 3] = [
        ("ttft", "TTFT", |b| b.ttft),
        ("tpot", "TPOT", |b| b.tpot),
        ("e2e", "end-to-end latency", |b| b.e2e),
    ];
    let figures: [(&str, &str, Pick<MetricError>); 6] = [
        ("observed_p50_ms", "observed p50 {}, ms", |m| m.observed_p50),
        ("predicted_p50_ms", "backtest's predicted p50 {}, ms", |m| {
            m.predicted_p50
        }),
        (
            "error_p50_pct",
            "predicted ÷ observed p50 {} − 1, %",
            |m| m.error_p50_pct,
        ),
        ("observed_p95_ms", "observed p95 {}, ms", |m| m.observed_p95),
        ("predicted_p95_ms", "backtest's predicted p95 {}, ms", |m| {
            m.predicted_p95
        }),
        (
            "error_p95_pct",
            "predicted ÷ observed p95 {} − 1, %",
            |m| m.error_p95_pct,
        ),
    ];
    for (metric, what, pick) in metrics {
        for (suffix, doc, field) in figures {
            columns.push(calibration_column(
                format!("{metric}_{suffix}"),
                DataType::Float64,
                doc.replace("{}", what),
                move |c| c.backtest.as_ref().map(|b| field(pick(b))),
            ));
        }
    }
    columns
}

pub(super) fn calibration_def() -> TableDef {
    let mut columns = vec![
        required("supply_id", DataType::Utf8, "the supply"),
        required(
            "status",
            DataType::Utf8,
            "`fitted`, `prior_only` (no usable telemetry: decode coefficients from the roofline) or `skipped` (hosted API)",
        ),
    ];
    columns.extend(calibration_counts().into_iter().map(|c| c.column));
    columns.extend(calibration_figures().into_iter().map(|c| c.column));
    TableDef {
        name: "calibration",
        row: "supply",
        columns,
    }
}

/// The `calibration` table (a non-finite figure is written as null).
pub fn calibration(results: &[SupplyCalibration]) -> Result<Table> {
    let counts = calibration_counts();
    let figures = calibration_figures();
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (
            "supply_id",
            str_array(results.iter().map(|c| c.supply_id.as_str())),
        ),
        (
            "status",
            str_array(results.iter().map(|c| c.status.as_str())),
        ),
    ];
    for c in &counts {
        let values: Int64Array = results.iter().map(|r| (c.get)(r)).collect();
        columns.push((&c.column.name, Arc::new(values)));
    }
    for c in &figures {
        let values: Float64Array = results
            .iter()
            .map(|r| (c.get)(r).filter(|x| x.is_finite()))
            .collect();
        columns.push((&c.column.name, Arc::new(values)));
    }
    calibration_def().table_of_arrays(columns)
}
