//! The SQL files under `sql/`, embedded at build time so the binary runs from any directory, the
//! DataFusion session they run in, and the one way their parameters are bound.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{DateTime, Utc};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Context, Result};

/// The session every query of a run uses: one partition per core, Parquet filter pushdown (so
/// selective predicates skip decoding the other columns), and tunelake's SQL functions:
/// `hash64(text)`, a stable 64-bit hash, so distinct-counting long string ids works on integers.
pub fn session() -> SessionContext {
    session_with_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// [`session`] with `partitions` partitions per plan (1 where the caller runs plans in parallel).
pub fn session_with_partitions(partitions: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true);
    let ctx = SessionContext::new_with_config(config);
    ctx.register_udf(hash64());
    ctx
}

/// `hash64(text) -> bigint`: [`crate::hash::stable_hash64`] as a SQL function.
pub fn hash64() -> ScalarUDF {
    create_udf(
        "hash64",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let hashes: Int64Array = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(|s| crate::hash::stable_hash64(s) as i64))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(hashes)))
        }),
    )
}

/// One file of `sql/`: its path (for messages) and text.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! query {
    ($path:literal) => {
        Query {
            path: concat!("sql/", $path),
            text: include_str!(concat!("../sql/", $path)),
        }
    };
}

/// Named query parameters (`$name` in the SQL).
pub type Params = Vec<(&'static str, ScalarValue)>;

/// A UTC instant as a parameter of the contracts' timestamp type.
pub fn timestamp(t: DateTime<Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
}

/// `$window_start` and `$window_end`, the parameters of every query that reads the window.
pub fn window_params(start: DateTime<Utc>, end: DateTime<Utc>) -> Params {
    vec![
        ("window_start", timestamp(start)),
        ("window_end", timestamp(end)),
    ]
}

/// A string as a SQL literal: quoted, with embedded quotes doubled.
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Query {
    /// The query planned on `ctx` with `params` bound (a query without parameters takes none).
    pub async fn frame(&self, ctx: &SessionContext, params: Params) -> Result<DataFrame> {
        let df = ctx.sql(self.text).await.context(self.path)?;
        if params.is_empty() {
            return Ok(df);
        }
        df.with_param_values(ParamValues::from(params))
            .context(self.path)
    }

    /// Runs the query and collects its result.
    pub async fn collect(&self, ctx: &SessionContext, params: Params) -> Result<Vec<RecordBatch>> {
        self.frame(ctx, params)
            .await?
            .collect()
            .await
            .context(self.path)
    }
}

/// Every feature query, in the order the features stage runs them (its name is its output table).
pub const FEATURES: &[(&str, Query)] = &[
    ("features_hourly", query!("features/features_hourly.sql")),
    ("session_depth", query!("features/session_depth.sql")),
    ("gpu_hourly", query!("features/gpu_hourly.sql")),
];

pub const VALIDATE_REQUESTS: Query = query!("validate/requests.sql");
pub const VALIDATE_GPU_METRICS: Query = query!("validate/gpu_metrics.sql");

/// The per-request stream of the workloads stage.
pub const WORKLOAD_REQUESTS: Query = query!("workloads/requests.sql");

/// Calibration's inputs for one supply (parameter `$supply_id`).
pub const CALIBRATION_REQUEST_SHAPE: Query = query!("calibration/request_shape.sql");
pub const CALIBRATION_TELEMETRY: Query = query!("calibration/telemetry.sql");
pub const CALIBRATION_PREFILL_SAMPLES: Query = query!("calibration/prefill_samples.sql");
/// Also `$first_s` and `$stride`: whole hours from the supply's first request, one in `stride`.
pub const CALIBRATION_BACKTEST_REQUESTS: Query = query!("calibration/backtest_requests.sql");

/// Requests with a prompt hash, per app in arrival order (response-cache replay).
pub const PROMPT_REPEATS: Query = query!("opportunities/prompt_repeats.sql");

/// Per app, completions against the clients' cap (client defaults).
pub const OUTPUT_LENGTHS: Query = query!("opportunities/output_lengths.sql");

/// Per app and supply: night-time, session and prompt-length shape, tokens and cost (batch).
pub const APP_PROFILE: Query = query!("opportunities/app_profile.sql");

/// Requests to hosted supplies with their shared prefixes, in arrival order (prefix caching).
pub const HOSTED_PREFIXES: Query = query!("opportunities/hosted_prefixes.sql");

/// Per supply and hour: SLO attainment, failures, cost and telemetry (grades and alerts).
pub const SUPPLY_HOURS: Query = query!("opportunities/supply_hours.sql");

/// Every query with a golden result on the fixture lake: `tests/golden/<path under sql/>.csv`.
pub const GOLDEN: &[Query] = &[
    FEATURES[0].1,
    FEATURES[1].1,
    FEATURES[2].1,
    WORKLOAD_REQUESTS,
    CALIBRATION_REQUEST_SHAPE,
    CALIBRATION_TELEMETRY,
    CALIBRATION_PREFILL_SAMPLES,
    CALIBRATION_BACKTEST_REQUESTS,
    PROMPT_REPEATS,
    OUTPUT_LENGTHS,
    APP_PROFILE,
    HOSTED_PREFIXES,
    SUPPLY_HOURS,
];
