//! The tables of the feature queries (`sql/features/`) and of ingest's quarantine.

use arrow::datatypes::DataType;

use super::{TableDef, col, required, utc};

pub(super) fn features_hourly() -> TableDef {
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

pub(super) fn session_depth() -> TableDef {
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

pub(super) fn gpu_hourly() -> TableDef {
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

pub(super) fn quarantine() -> TableDef {
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
