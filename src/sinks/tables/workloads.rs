//! `workload_classes`, `app_workload_shares` and `app_workload_mix`: the characterization.

use std::sync::Arc;

use arrow::array::{ListArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Float64Type};

use super::{Column, Table, TableDef, col, f64_array, i64_array, str_array, utc};
use crate::contracts;
use crate::error::Result;
use crate::workloads::{AppShare, WorkloadClass, Workloads};

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

pub(super) fn workload_classes() -> TableDef {
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

pub(super) fn app_workload_shares() -> TableDef {
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

pub(super) fn app_workload_mix() -> TableDef {
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
    let classes = workload_classes().table_of_arrays(vec![
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
    let shares = app_workload_shares().table_of_arrays(vec![
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
    let mix = app_workload_mix().table_of_arrays(vec![
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
