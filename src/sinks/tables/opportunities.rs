//! `cache_opportunities` (each app's requests replayed through candidate response caches) and
//! `client_defaults` (each app's output cap fitted to its completions) and `cost_drivers`.

use serde_json::{Value, json};

use super::{Column, Table, TableDef, col, required};
use crate::error::Result;
use crate::opportunities::AppCache;
use crate::opportunities::cache::Policy;
use crate::opportunities::client::{CapChange, ClientDefaults};
use crate::opportunities::costs::CostDrivers;

pub(super) fn cache_opportunities_def() -> TableDef {
    use arrow::datatypes::DataType::{Boolean, Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("app_id", Utf8, "the app whose requests were replayed"),
        col(
            "supply_id",
            Utf8,
            "the supply that served most of them (the one hits leave)",
        ),
        required(
            "policy",
            Utf8,
            "`lru-<entries>` (least recently used, that many responses) or `ttl-<seconds>s` (every response kept that long)",
        ),
        col(
            "max_entries",
            Int64,
            "LRU capacity in responses (null for a TTL cache)",
        ),
        col("ttl_s", Int64, "TTL in seconds (null for an LRU cache)"),
        required(
            "requests",
            Int64,
            "requests of the window with a prompt_hash",
        ),
        required(
            "hits",
            Int64,
            "requests the cache would have answered: an earlier successful request of the app sent the same prompt_hash and the cache still held it",
        ),
        required("hit_rate", Float64, "hits ÷ requests"),
        required("prompt_tokens_saved", Int64, "prompt tokens of the hits"),
        required(
            "completion_tokens_saved",
            Int64,
            "completion tokens of the hits",
        ),
        required(
            "cost_saved_usd",
            Float64,
            "cost_usd of the hits as the request log carries it (a hosted API's charge, or the cost the fleet allocates to a self-hosted request), USD",
        ),
        required(
            "recommended",
            Boolean,
            "this is the cache recommended for the app (the smallest LRU within 95 % of the best hits, when it answers ≥ 1 % of requests)",
        ),
    ];
    TableDef {
        name: "cache_opportunities",
        row: "one app × one candidate response cache",
        columns,
    }
}

pub fn cache_opportunities(apps: &[AppCache]) -> Result<Table> {
    let rows: Vec<Value> = apps
        .iter()
        .flat_map(|a| {
            a.replays.iter().map(move |r| {
                let (entries, ttl) = match r.policy {
                    Policy::Lru { entries } => (Some(entries), None),
                    Policy::Ttl { seconds } => (None, Some(seconds)),
                };
                json!({
                    "app_id": a.app_id,
                    "supply_id": a.supply_id,
                    "policy": r.policy.name(),
                    "max_entries": entries,
                    "ttl_s": ttl,
                    "requests": r.requests,
                    "hits": r.hits,
                    "hit_rate": r.hit_rate(),
                    "prompt_tokens_saved": r.prompt_tokens_saved,
                    "completion_tokens_saved": r.completion_tokens_saved,
                    "cost_saved_usd": r.cost_saved_usd,
                    "recommended": a.chosen.is_some_and(|c| c.policy == r.policy),
                })
            })
        })
        .collect();
    cache_opportunities_def().table_of_rows(&rows)
}

pub(super) fn client_defaults_def() -> TableDef {
    use arrow::datatypes::DataType::{Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("app_id", Utf8, "the app"),
        required(
            "supply_id",
            Utf8,
            "the supply that served most of its requests",
        ),
        required("requests", Int64, "successful requests of the window"),
        required(
            "truncated_share",
            Float64,
            "share of them cut at max_tokens (finish_reason = length)",
        ),
        required("completion_p50", Float64, "median completion tokens"),
        required(
            "completion_p90",
            Float64,
            "90th percentile of completion tokens",
        ),
        required("completion_max", Float64, "longest completion, tokens"),
        col(
            "current_cap",
            Float64,
            "the median max_tokens requests set (null when most set none)",
        ),
        required(
            "fitted_sigma",
            Float64,
            "log-σ of the censoring-aware lognormal fit of completion lengths",
        ),
        required(
            "recommended_cap",
            Float64,
            "max_completion_tokens covering the fit's 99.9th percentile, rounded up to 64",
        ),
        required(
            "change",
            Utf8,
            "`raise` (over 1 % cut), `lower` (no cap, or over 2× the recommended one) or `none`",
        ),
        required(
            "cut_share",
            Float64,
            "share of responses the recommended cap would cut (fitted)",
        ),
        required(
            "extra_tokens",
            Float64,
            "completion tokens a raise lets through over the window (fitted)",
        ),
        required(
            "temperature",
            Utf8,
            "whether a temperature can be recommended, and why",
        ),
    ];
    TableDef {
        name: "client_defaults",
        row: "one app",
        columns,
    }
}

pub fn client_defaults(apps: &[ClientDefaults]) -> Result<Table> {
    let rows: Vec<Value> = apps
        .iter()
        .map(|d| {
            let l = &d.lengths;
            json!({
                "app_id": l.app_id,
                "supply_id": l.supply_id,
                "requests": l.requests,
                "truncated_share": l.truncated_share(),
                "completion_p50": l.completion_p50,
                "completion_p90": l.completion_p90,
                "completion_max": l.completion_max,
                "current_cap": l.current_cap,
                "fitted_sigma": d.sigma,
                "recommended_cap": d.recommended_cap,
                "change": match d.change {
                    Some(CapChange::Raise) => "raise",
                    Some(CapChange::Lower) => "lower",
                    None => "none",
                },
                "cut_share": d.cut_share,
                "extra_tokens": d.extra_tokens,
                "temperature": if l.with_feedback == 0 {
                    "not recommendable: no feedback in the data"
                } else {
                    "not analysed: feedback present"
                },
            })
        })
        .collect();
    client_defaults_def().table_of_rows(&rows)
}

pub(super) fn cost_drivers_def() -> TableDef {
    use arrow::datatypes::DataType::{Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required(
            "dimension",
            Utf8,
            "`app`, `supply`, `model`, `class` (workload class label) or `day` (UTC date)",
        ),
        required("key", Utf8, "the app, supply, model, class or day"),
        required(
            "rank",
            Int64,
            "1 for the costliest key of its dimension (days in date order)",
        ),
        required(
            "cost_usd",
            Float64,
            "cost in the window, USD: a self-hosted supply's GPUs × price × hours spread over its traffic by tokens, a hosted API's token prices",
        ),
        required("share", Float64, "of the fleet's cost in the window"),
        required(
            "cost_usd_per_month",
            Float64,
            "cost_usd projected to a 30-day month",
        ),
        required("requests", Int64, "requests of the key in the window"),
        required(
            "tokens",
            Int64,
            "prompt + completion tokens of the key in the window",
        ),
        required("usd_per_1k_requests", Float64, "cost per 1,000 requests"),
        required("usd_per_1m_tokens", Float64, "cost per million tokens"),
    ];
    TableDef {
        name: "cost_drivers",
        row: "one key of one cost dimension",
        columns,
    }
}

pub fn cost_drivers(drivers: &CostDrivers) -> Result<Table> {
    let mut rank: std::collections::BTreeMap<&str, i64> = Default::default();
    let rows: Vec<Value> = drivers
        .rows
        .iter()
        .map(|r| {
            let n = rank.entry(r.dimension).or_default();
            *n += 1;
            json!({
                "dimension": r.dimension,
                "key": r.key,
                "rank": *n,
                "cost_usd": r.cost_usd,
                "share": r.share,
                "cost_usd_per_month": drivers.per_month(r.cost_usd),
                "requests": r.requests,
                "tokens": r.tokens,
                "usd_per_1k_requests": r.cost_usd / r.requests.max(1) as f64 * 1e3,
                "usd_per_1m_tokens": r.cost_usd / r.tokens.max(1) as f64 * 1e6,
            })
        })
        .collect();
    cost_drivers_def().table_of_rows(&rows)
}
