//! The SQL files under `sql/`, embedded at build time so the binary runs from any directory, and the
//! DataFusion session they run in.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{SessionConfig, SessionContext};

/// The session every query of a run uses: one partition per core, Parquet filter pushdown (so
/// selective predicates skip decoding the other columns), and tunelake's SQL functions:
/// `hash64(text)`, a stable 64-bit hash, so distinct-counting long string ids works on integers.
pub fn session() -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
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

/// `(name, text)` of every feature query, in the order the features stage runs them.
pub const FEATURES: &[(&str, &str)] = &[
    (
        "features_hourly",
        include_str!("../sql/features/features_hourly.sql"),
    ),
    (
        "session_depth",
        include_str!("../sql/features/session_depth.sql"),
    ),
    ("gpu_hourly", include_str!("../sql/features/gpu_hourly.sql")),
];

pub const VALIDATE_REQUESTS: &str = include_str!("../sql/validate/requests.sql");
pub const VALIDATE_GPU_METRICS: &str = include_str!("../sql/validate/gpu_metrics.sql");

/// The per-request stream of the workloads stage.
pub const WORKLOAD_REQUESTS: &str = include_str!("../sql/workloads/requests.sql");
