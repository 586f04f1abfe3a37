//! Every table a run writes, defined once: its name, what one row is, and each column's type and
//! meaning. The stages hand over typed results; the builders here turn them into Arrow under these
//! definitions, and the tables that come from SQL or ingest are checked against them before they are
//! written. The README's list of tables is tested against [`definitions`].

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use serde::Serialize;
use serde_json::{Value, json};

use crate::calibration::{Backtest, MetricError, SupplyCalibration};
use crate::contracts;
use crate::error::{Context, Error, Result};
use crate::features::QueryResult;
use crate::knobs::{Knob, ServingConfig, ValueKind};
use crate::recommend::{PredictedImpact, SupplyRecommendation};
use crate::search::{Metrics, Round, SearchResult, pareto};
use crate::workloads::{AppShare, WorkloadClass, Workloads};

/// A named table, ready to be written.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// One column of an output table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// What the value means, with its unit.
    pub doc: String,
}

/// A nullable column.
fn col(name: impl Into<String>, data_type: DataType, doc: impl Into<String>) -> Column {
    Column {
        name: name.into(),
        data_type,
        nullable: true,
        doc: doc.into(),
    }
}

/// A column that always has a value.
fn required(name: &str, data_type: DataType, doc: &str) -> Column {
    Column {
        nullable: false,
        ..col(name, data_type, doc)
    }
}

/// The definition of one output table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub name: &'static str,
    /// What one row is.
    pub row: &'static str,
    pub columns: Vec<Column>,
}

impl TableDef {
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// A table computed elsewhere (SQL, ingest), checked against this definition: the same column
    /// names in the same order, of the same types and nullability.
    fn conformed(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Table> {
        let found: Vec<(&str, &DataType, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
            .collect();
        let declared: Vec<(&str, &DataType, bool)> = self
            .columns
            .iter()
            .map(|c| (c.name.as_str(), &c.data_type, c.nullable))
            .collect();
        if found != declared {
            return Err(Error::Internal(format!(
                "table `{}` has columns {found:?}, but src/sinks/tables.rs defines {declared:?}",
                self.name
            )));
        }
        Ok(Table {
            name: self.name.into(),
            schema: schema.clone(),
            batches: batches.to_vec(),
        })
    }

    /// A table of named column arrays, which must be this definition's columns in order.
    fn from_arrays(&self, columns: Vec<(&str, ArrayRef)>) -> Result<Table> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let declared: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        if names != declared {
            return Err(Error::Internal(format!(
                "table `{}` is built with columns {names:?}, but src/sinks/tables.rs defines {declared:?}",
                self.name
            )));
        }
        let schema = self.schema();
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
                .map_err(|e| Error::Internal(format!("building the `{}` table: {e}", self.name)))?;
        Ok(Table {
            name: self.name.into(),
            schema,
            batches: if batch.num_rows() > 0 {
                vec![batch]
            } else {
                vec![]
            },
        })
    }

    /// A table of serde rows, each a JSON object keyed by this definition's column names (a field
    /// the definition lacks is an error, so a new field cannot be dropped silently).
    fn from_rows<T: Serialize>(&self, rows: &[T]) -> Result<Table> {
        let schema = self.schema();
        let context = format!("building the `{}` table", self.name);
        let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .with_strict_mode(true)
            .build_decoder()
            .context(context.clone())?;
        decoder.serialize(rows).context(context.clone())?;
        let batches = decoder.flush().context(context)?.into_iter().collect();
        Ok(Table {
            name: self.name.into(),
            schema,
            batches,
        })
    }
}

/// Every output table, in the order the README lists them.
pub fn definitions() -> Vec<TableDef> {
    vec![
        features_hourly(),
        session_depth(),
        gpu_hourly(),
        quarantine(),
        workload_classes(),
        app_workload_shares(),
        app_workload_mix(),
        calibration_def(),
        simulations_def(),
        pareto_def(),
        recommendations_def(),
    ]
}

/// What a run hands to the sinks, stage by stage.
pub struct RunResults<'a> {
    pub features: &'a [QueryResult],
    /// Quarantined rows, under ingest's quarantine schema.
    pub quarantine: (&'a SchemaRef, &'a [RecordBatch]),
    pub workloads: &'a Workloads,
    pub calibration: &'a [SupplyCalibration],
    pub searches: &'a [SearchResult],
    pub analysis_id: &'a str,
    pub recommendations: &'a [SupplyRecommendation],
}

/// Every output table of a run.
pub fn build(run: &RunResults) -> Result<Vec<Table>> {
    let mut tables = Vec::new();
    for result in run.features {
        let def = definitions()
            .into_iter()
            .find(|d| d.name == result.name)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "feature query `{}` has no output table in src/sinks/tables.rs",
                    result.name
                ))
            })?;
        tables.push(def.conformed(&result.schema, &result.batches)?);
    }
    tables.push(quarantine().conformed(run.quarantine.0, run.quarantine.1)?);
    tables.extend(workloads(run.workloads)?);
    tables.push(calibration(run.calibration)?);
    tables.extend(search(run.searches)?);
    tables.push(recommendations(run.analysis_id, run.recommendations)?);
    Ok(tables)
}

fn utc() -> DataType {
    contracts::timestamp_type()
}

fn features_hourly() -> TableDef {
    use DataType::{Float64, Int64, Utf8};
    let mut columns = vec![
        col("app_id", Utf8, "the application that sent the requests"),
        col("supply_id", Utf8, "the supply that served them"),
        col("hour", utc(), "start of the UTC hour"),
        required("requests", Int64, "requests that arrived in the hour"),
        required("requests_per_s", Float64, "requests ÷ 3600"),
    ];
    for (tokens, what) in [
        ("prompt_tokens", "prompt tokens"),
        ("completion_tokens", "completion tokens"),
    ] {
        columns.push(col(
            format!("{tokens}_mean"),
            Float64,
            format!("mean {what}"),
        ));
        for p in ["50", "95", "99"] {
            columns.push(col(
                format!("{tokens}_p{p}"),
                Float64,
                format!("p{p} of {what} (approximate)"),
            ));
        }
        columns.push(col(format!("{tokens}_max"), Int64, format!("most {what}")));
    }
    columns.extend([
        col(
            "cached_token_share",
            Float64,
            "cached tokens ÷ prompt tokens",
        ),
        col(
            "duplicate_prompt_share",
            Float64,
            "share of requests with a `prompt_hash` whose prompt was already sent in the hour",
        ),
        col(
            "error_rate",
            Float64,
            "share of requests with status `error`",
        ),
        col(
            "timeout_rate",
            Float64,
            "share of requests with status `timeout`",
        ),
    ]);
    for (figure, what, how) in [
        ("ttft_ms", "observed time to first token, ms", "approximate"),
        (
            "tpot_ms",
            "observed time per output token after the first, ms",
            "approximate",
        ),
        ("e2e_ms", "observed end-to-end latency, ms", "exact"),
    ] {
        for p in ["50", "95", "99"] {
            columns.push(col(
                format!("{figure}_p{p}"),
                Float64,
                format!("p{p} of the {what} ({how})"),
            ));
        }
    }
    columns.push(col("cost_usd", Float64, "sum of the requests' `cost_usd`"));
    TableDef {
        name: "features_hourly",
        row: "app, supply and UTC hour",
        columns,
    }
}

fn session_depth() -> TableDef {
    use DataType::{Float64, Int64, Utf8};
    TableDef {
        name: "session_depth",
        row: "app",
        columns: vec![
            col("app_id", Utf8, "the application"),
            col(
                "sessions",
                Int64,
                "sessions in the window (a request without a session is one)",
            ),
            col("depth_mean", Float64, "mean requests per session"),
            col("depth_p50", Int64, "median requests per session"),
            col("depth_p90", Int64, "p90 of requests per session"),
            col("depth_p99", Int64, "p99 of requests per session"),
            col("depth_max", Int64, "most requests in one session"),
            col(
                "single_turn_share",
                Float64,
                "share of sessions with one request",
            ),
        ],
    }
}

fn gpu_hourly() -> TableDef {
    use DataType::{Float64, Int64, Utf8};
    let mut columns = vec![
        col("supply_id", Utf8, "the supply"),
        col("hour", utc(), "start of the UTC hour"),
        required("windows", Int64, "telemetry windows scraped in the hour"),
        required("instances", Int64, "distinct serving instances"),
    ];
    for (gauge, what) in [
        ("num_running", "running sequences (the batch)"),
        ("num_waiting", "waiting requests"),
        ("kv_cache_usage", "KV-cache usage, 0–1"),
        ("gpu_util", "GPU utilisation, 0–1"),
    ] {
        columns.push(col(
            format!("{gauge}_mean"),
            Float64,
            format!("mean {what}"),
        ));
        columns.push(col(
            format!("{gauge}_max"),
            Float64,
            format!("highest {what}"),
        ));
    }
    TableDef {
        name: "gpu_hourly",
        row: "supply and UTC hour",
        columns,
    }
}

fn quarantine() -> TableDef {
    use DataType::Utf8;
    TableDef {
        name: "quarantine",
        row: "input row that breaks its contract",
        columns: vec![
            required("source_table", Utf8, "`requests` or `gpu_metrics`"),
            required(
                "reason",
                Utf8,
                "the rule it breaks, e.g. `null_request_id` (sql/validate/)",
            ),
            col("ts", utc(), "the row's timestamp"),
            required("row", Utf8, "the whole row as JSON"),
        ],
    }
}

/// Columns shared by the workload tables: a class and its label.
fn class_columns() -> [Column; 2] {
    [
        col(
            "class_id",
            DataType::Int64,
            "workload class, 1..=k (as in workload_classes)",
        ),
        col(
            "label",
            DataType::Utf8,
            "the class's rule-based name, e.g. `multi-turn chat (~140 in / 180 out)`",
        ),
    ]
}

fn workload_classes() -> TableDef {
    use DataType::{Float64, Int64};
    let mut columns = class_columns().to_vec();
    columns.extend([
        col(
            "centroid_prompt_tokens",
            Float64,
            "class centre: prompt tokens",
        ),
        col(
            "centroid_completion_tokens",
            Float64,
            "class centre: completion tokens",
        ),
        col(
            "centroid_prefix_share",
            Float64,
            "class centre: share of the prompt in a shared prefix",
        ),
        col(
            "centroid_session_depth",
            Float64,
            "class centre: requests in the request's session",
        ),
        col("requests", Int64, "requests of the class in the window"),
        col("request_share", Float64, "share of all requests"),
        col(
            "token_share",
            Float64,
            "share of all prompt + completion tokens",
        ),
    ]);
    for (tokens, what) in [
        ("prompt_tokens", "prompt tokens"),
        ("completion_tokens", "completion tokens"),
    ] {
        for p in ["50", "90", "99"] {
            columns.push(col(
                format!("{tokens}_p{p}"),
                Float64,
                format!("p{p} of {what} (within 0.5 %)"),
            ));
        }
    }
    columns.extend([
        col(
            "interarrival_cv",
            Float64,
            "coefficient of variation of inter-arrival times (1 for Poisson)",
        ),
        col(
            "fano_per_minute",
            Float64,
            "variance ÷ mean of requests per minute (1 for Poisson)",
        ),
        col(
            "hourly_rate_per_s",
            DataType::new_list(Float64, true),
            "mean arrival rate per UTC hour of day, 24 values, requests/s",
        ),
        col(
            "peak_to_mean",
            Float64,
            "highest hourly rate ÷ mean hourly rate",
        ),
        col(
            "prefix_sharing_ratio",
            Float64,
            "share of prompt tokens in a prefix another request also carries",
        ),
        col(
            "session_depth_mean",
            Float64,
            "mean requests per session, request-weighted",
        ),
    ]);
    TableDef {
        name: "workload_classes",
        row: "workload class",
        columns,
    }
}

fn app_workload_shares() -> TableDef {
    use DataType::{Float64, Int64, Utf8};
    let mut columns = vec![col("app_id", Utf8, "the application")];
    columns.extend(class_columns());
    columns.extend([
        col("requests", Int64, "the app's requests in the class"),
        col("request_share", Float64, "share of the app's requests"),
        col(
            "token_share",
            Float64,
            "share of the app's prompt + completion tokens",
        ),
    ]);
    TableDef {
        name: "app_workload_shares",
        row: "app and workload class",
        columns,
    }
}

fn app_workload_mix() -> TableDef {
    use DataType::{Int64, Utf8};
    let mut columns = vec![
        col("app_id", Utf8, "the application"),
        col("supply_id", Utf8, "the supply"),
        col(
            "hour",
            utc(),
            "start of the UTC hour (joins features_hourly on app_id, supply_id, hour)",
        ),
    ];
    columns.extend(class_columns());
    columns.extend([
        col("requests", Int64, "requests of the class"),
        col("prompt_tokens", Int64, "their prompt tokens"),
        col("completion_tokens", Int64, "their completion tokens"),
    ]);
    TableDef {
        name: "app_workload_mix",
        row: "app, supply, UTC hour and workload class",
        columns,
    }
}

fn f64_array(values: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn i64_array(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn str_array<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// `workload_classes`, `app_workload_shares` and `app_workload_mix`.
pub fn workloads(w: &Workloads) -> Result<Vec<Table>> {
    let c = &w.classes;
    let per_class = |f: fn(&WorkloadClass) -> f64| f64_array(c.iter().map(f));
    let hourly = ListArray::from_iter_primitive::<Float64Type, _, _>(c.iter().map(|c| {
        Some(
            c.diurnal
                .hourly_rate_per_s
                .iter()
                .map(|&v| Some(v))
                .collect::<Vec<_>>(),
        )
    }));
    let classes = workload_classes().from_arrays(vec![
        ("class_id", i64_array(c.iter().map(|c| i64::from(c.id)))),
        ("label", str_array(c.iter().map(|c| c.label.as_str()))),
        (
            "centroid_prompt_tokens",
            per_class(|c| c.centroid_prompt_tokens),
        ),
        (
            "centroid_completion_tokens",
            per_class(|c| c.centroid_completion_tokens),
        ),
        (
            "centroid_prefix_share",
            per_class(|c| c.centroid_prefix_share),
        ),
        (
            "centroid_session_depth",
            per_class(|c| c.centroid_session_depth),
        ),
        ("requests", i64_array(c.iter().map(|c| c.requests as i64))),
        ("request_share", per_class(|c| c.request_share)),
        ("token_share", per_class(|c| c.token_share)),
        ("prompt_tokens_p50", per_class(|c| c.prompt.p50)),
        ("prompt_tokens_p90", per_class(|c| c.prompt.p90)),
        ("prompt_tokens_p99", per_class(|c| c.prompt.p99)),
        ("completion_tokens_p50", per_class(|c| c.output.p50)),
        ("completion_tokens_p90", per_class(|c| c.output.p90)),
        ("completion_tokens_p99", per_class(|c| c.output.p99)),
        (
            "interarrival_cv",
            per_class(|c| c.burstiness.interarrival_cv),
        ),
        (
            "fano_per_minute",
            per_class(|c| c.burstiness.fano_per_minute),
        ),
        ("hourly_rate_per_s", Arc::new(hourly)),
        ("peak_to_mean", per_class(|c| c.diurnal.peak_to_mean)),
        (
            "prefix_sharing_ratio",
            per_class(|c| c.prefix_sharing_ratio),
        ),
        ("session_depth_mean", per_class(|c| c.session_depth_mean)),
    ])?;
    let shares: Vec<(&WorkloadClass, &AppShare)> = c
        .iter()
        .flat_map(|c| c.apps.iter().map(move |a| (c, a)))
        .collect();
    let shares = app_workload_shares().from_arrays(vec![
        (
            "app_id",
            str_array(shares.iter().map(|s| s.1.app_id.as_str())),
        ),
        (
            "class_id",
            i64_array(shares.iter().map(|s| i64::from(s.0.id))),
        ),
        (
            "label",
            str_array(shares.iter().map(|s| s.0.label.as_str())),
        ),
        (
            "requests",
            i64_array(shares.iter().map(|s| s.1.requests as i64)),
        ),
        (
            "request_share",
            f64_array(shares.iter().map(|s| s.1.request_share)),
        ),
        (
            "token_share",
            f64_array(shares.iter().map(|s| s.1.token_share)),
        ),
    ])?;
    let label_of = |id: u16| {
        c.iter()
            .find(|c| c.id == id)
            .map_or("", |c| c.label.as_str())
    };
    let cells: Vec<_> = w.mix.cells().collect();
    let hours = TimestampMicrosecondArray::from_iter_values(cells.iter().map(|m| m.hour_us))
        .with_timezone(contracts::UTC);
    let mix = app_workload_mix().from_arrays(vec![
        ("app_id", str_array(cells.iter().map(|m| m.app_id))),
        ("supply_id", str_array(cells.iter().map(|m| m.supply_id))),
        ("hour", Arc::new(hours)),
        (
            "class_id",
            i64_array(cells.iter().map(|m| i64::from(m.class_id))),
        ),
        (
            "label",
            str_array(cells.iter().map(|m| label_of(m.class_id))),
        ),
        (
            "requests",
            i64_array(cells.iter().map(|m| m.requests as i64)),
        ),
        (
            "prompt_tokens",
            i64_array(cells.iter().map(|m| m.prompt_tokens as i64)),
        ),
        (
            "completion_tokens",
            i64_array(cells.iter().map(|m| m.completion_tokens as i64)),
        ),
    ])?;
    Ok(vec![classes, shares, mix])
}

/// A calibration column with how to read it off a supply's result.
struct CalibrationColumn<T> {
    column: Column,
    get: Box<dyn Fn(&SupplyCalibration) -> Option<T>>,
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
    let metrics: [(&str, &str, fn(&Backtest) -> MetricError); 3] = [
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

fn calibration_def() -> TableDef {
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
    calibration_def().from_arrays(columns)
}

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

fn simulations_def() -> TableDef {
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

fn pareto_def() -> TableDef {
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
        simulations_def().from_rows(&simulations)?,
        pareto_def().from_rows(&frontier)?,
    ])
}

fn recommendations_def() -> TableDef {
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
    recommendations_def().from_rows(&rows)
}
