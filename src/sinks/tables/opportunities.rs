//! The fleet and application findings: `cache_opportunities` (each app's requests replayed through
//! candidate response caches), `prompt_caching` (hosted APIs' prefix caches), `batch_opportunities`,
//! `client_defaults` (each app's output cap fitted to its completions), `cost_drivers`, `grades`,
//! `alerts`, `capacity_plan`, `regimes` and `routing`.

use serde_json::{Value, json};

use super::{Column, Table, TableDef, col, required};
use crate::error::Result;
use crate::opportunities::AppCache;
use crate::opportunities::batch::BatchOpportunity;
use crate::opportunities::cache::Policy;
use crate::opportunities::client::{CapChange, ClientDefaults};
use crate::opportunities::costs::CostDrivers;
use crate::opportunities::health::{SupplyGrade, SupplyHealth};
use crate::opportunities::prefix::PrefixCaching;
use crate::recommend::{CapacityPlan, Route, SupplySchedule, hour_ranges};

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

pub(super) fn prompt_caching_def() -> TableDef {
    use arrow::datatypes::DataType::{Boolean, Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("supply_id", Utf8, "the hosted supply"),
        required("app_id", Utf8, "the app whose requests were replayed"),
        required(
            "retention",
            Utf8,
            "`default`, or the `prompt_cache_retention` a client asks for",
        ),
        required(
            "ttl_s",
            Float64,
            "how long an unused prefix stays cached, s",
        ),
        required("requests", Int64, "the app's requests to the supply"),
        required("prompt_tokens", Int64, "their input tokens"),
        required(
            "long_prefix_tokens",
            Int64,
            "input tokens in shared prefixes of at least the provider's minimum (upper bound)",
        ),
        required(
            "reported_cached_tokens",
            Int64,
            "cached input tokens the provider reported (cached_tokens)",
        ),
        required(
            "cached_tokens",
            Int64,
            "input tokens the replayed cache would have served",
        ),
        required(
            "saving_usd",
            Float64,
            "saved in the window over what was already cached, at the cached-input price",
        ),
        required(
            "recommended",
            Boolean,
            "the retention recommended (most saving, over 1 % of the input bill)",
        ),
    ];
    TableDef {
        name: "prompt_caching",
        row: "one app on one hosted supply and one cache retention",
        columns,
    }
}

pub fn prompt_caching(apps: &[PrefixCaching]) -> Result<Table> {
    let rows: Vec<Value> = apps
        .iter()
        .flat_map(|p| {
            p.replays.iter().enumerate().map(move |(i, r)| {
                json!({
                    "supply_id": p.supply_id,
                    "app_id": p.app_id,
                    "retention": r.retention.as_deref().unwrap_or("default"),
                    "ttl_s": r.ttl_s,
                    "requests": p.requests,
                    "prompt_tokens": p.prompt_tokens,
                    "long_prefix_tokens": p.long_prefix_tokens,
                    "reported_cached_tokens": p.reported_cached_tokens,
                    "cached_tokens": r.cached_tokens,
                    "saving_usd": r.saving_usd,
                    "recommended": p.chosen == Some(i),
                })
            })
        })
        .collect();
    prompt_caching_def().table_of_rows(&rows)
}

pub(super) fn batch_opportunities_def() -> TableDef {
    use arrow::datatypes::DataType::{Boolean, Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("app_id", Utf8, "the app"),
        required("supply_id", Utf8, "the supply it sent these requests to"),
        required("requests", Int64, "requests of the window"),
        required(
            "night_share",
            Float64,
            "share arriving between 22:00 and 06:00 UTC",
        ),
        required("session_share", Float64, "share belonging to a session"),
        required("prompt_p50", Float64, "median prompt tokens"),
        col(
            "latency_tolerant",
            Utf8,
            "`declared` (pipeline file), `inferred` (from the three measures above) or null",
        ),
        required("hosted", Boolean, "the supply is a hosted API"),
        col(
            "cost_usd",
            Float64,
            "what these requests cost in the window (logged cost, else token prices)",
        ),
        col(
            "batch_discount",
            Float64,
            "the provider's batch discount from the pipeline file",
        ),
        col(
            "saving_usd",
            Float64,
            "saved in the window through the batch API (null when not latency-tolerant or not priced)",
        ),
    ];
    TableDef {
        name: "batch_opportunities",
        row: "one app on one supply",
        columns,
    }
}

pub fn batch_opportunities(apps: &[BatchOpportunity]) -> Result<Table> {
    let rows: Vec<Value> = apps
        .iter()
        .map(|b| {
            let p = &b.profile;
            json!({
                "app_id": p.app_id,
                "supply_id": p.supply_id,
                "requests": p.requests,
                "night_share": p.night_share(),
                "session_share": p.session_share(),
                "prompt_p50": p.prompt_p50,
                "latency_tolerant": b.tolerance,
                "hosted": b.hosted,
                "cost_usd": b.cost_usd,
                "batch_discount": b.batch_discount,
                "saving_usd": b.saving_usd,
            })
        })
        .collect();
    batch_opportunities_def().table_of_rows(&rows)
}

pub(super) fn grades_def() -> TableDef {
    use arrow::datatypes::DataType::{Float64, Int64, Utf8};
    let grade = |name: &str, what: &str| {
        col(
            name,
            Utf8,
            format!("{what} grade, A+ to D (null when not graded)"),
        )
    };
    let columns: Vec<Column> = vec![
        required("supply_id", Utf8, "the supply"),
        required(
            "grade",
            Utf8,
            "A+ to D: the weakest of the dimensions graded",
        ),
        required("requests", Int64, "requests of the window"),
        col(
            "slo_attainment",
            Float64,
            "share of requests meeting both p95 targets",
        ),
        grade("slo_grade", "SLO"),
        required(
            "failure_share",
            Float64,
            "errors and timeouts, of all requests",
        ),
        grade("errors_grade", "errors"),
        col("gpu_util", Float64, "mean GPU utilisation (telemetry)"),
        grade("utilisation_grade", "utilisation"),
        col(
            "avoidable_cost_share",
            Float64,
            "share of the bill the run's recommendations would save",
        ),
        grade("cost_grade", "cost"),
        required("alerts", Int64, "alerts raised in the window"),
    ];
    TableDef {
        name: "grades",
        row: "one supply",
        columns,
    }
}

pub fn grades(health: &[SupplyHealth], grades: &[SupplyGrade]) -> Result<Table> {
    let rows: Vec<Value> = grades
        .iter()
        .filter_map(|g| {
            let h = health.iter().find(|h| h.supply_id == g.supply_id)?;
            Some(json!({
                "supply_id": g.supply_id,
                "grade": g.grade,
                "requests": h.requests,
                "slo_attainment": h.slo_attainment,
                "slo_grade": g.slo,
                "failure_share": h.failure_share,
                "errors_grade": g.errors,
                "gpu_util": h.gpu_util,
                "utilisation_grade": g.utilisation,
                "avoidable_cost_share": g.avoidable_cost_share,
                "cost_grade": g.cost,
                "alerts": h.alerts.len(),
            }))
        })
        .collect();
    grades_def().table_of_rows(&rows)
}

pub(super) fn alerts_def() -> TableDef {
    use arrow::datatypes::DataType::{Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("supply_id", Utf8, "the supply"),
        required(
            "kind",
            Utf8,
            "`slo_miss`, `saturation`, `error_spike` or `cost_jump`",
        ),
        required("start", super::utc(), "first flagged hour (or day)"),
        required(
            "end",
            super::utc(),
            "end of the last flagged hour (exclusive)",
        ),
        required("hours", Int64, "hours covered"),
        required("evidence", Utf8, "the worst hour's figures"),
    ];
    TableDef {
        name: "alerts",
        row: "one run of consecutive flagged hours of one kind on one supply",
        columns,
    }
}

pub fn alerts(health: &[SupplyHealth]) -> Result<Table> {
    let rows: Vec<Value> = health
        .iter()
        .flat_map(|h| &h.alerts)
        .map(|a| {
            json!({
                "supply_id": a.supply_id,
                "kind": a.kind,
                "start": a.start_us,
                "end": a.end_us,
                "hours": a.hours,
                "evidence": a.evidence,
            })
        })
        .collect();
    alerts_def().table_of_rows(&rows)
}

pub(super) fn capacity_plan_def() -> TableDef {
    use arrow::datatypes::DataType::{Boolean, Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("supply_id", Utf8, "the supply"),
        required("hour", super::utc(), "start of the UTC hour"),
        required(
            "requests",
            Int64,
            "requests of the hour (at the planned growth)",
        ),
        required("replicas", Int64, "replicas the plan gives the hour"),
        col(
            "ttft_p95_ms",
            Float64,
            "simulated p95 TTFT of the hour on those replicas (null without requests)",
        ),
        col("tpot_p95_ms", Float64, "simulated p95 TPOT, likewise"),
        required(
            "slo_met",
            Boolean,
            "the hour meets the SLO targets and error budget",
        ),
        required(
            "replica_capacity_rps",
            Float64,
            "requests/s one replica serves within the SLOs (simulated on the busiest hour)",
        ),
        required(
            "concurrency_threshold",
            Int64,
            "the autoscaler's per-replica target on requests in flight (running + waiting)",
        ),
        col(
            "reserved_replicas",
            Int64,
            "replicas to reserve (null without a [purchase] table in the pipeline file)",
        ),
    ];
    TableDef {
        name: "capacity_plan",
        row: "one supply and UTC hour of the window",
        columns,
    }
}

pub fn capacity_plan(plans: &[CapacityPlan], window_start_us: i64) -> Result<Table> {
    let rows: Vec<Value> = plans
        .iter()
        .flat_map(|c| {
            c.plan.hours.iter().map(move |h| {
                json!({
                    "supply_id": c.supply_id,
                    "hour": window_start_us + i64::from(h.hour) * 3_600_000_000,
                    "requests": h.requests,
                    "replicas": h.replicas,
                    "ttft_p95_ms": h.metrics.as_ref().map(|m| m.ttft_p95_ms),
                    "tpot_p95_ms": h.metrics.as_ref().map(|m| m.tpot_p95_ms),
                    "slo_met": h.slo_met,
                    "replica_capacity_rps": c.plan.capacity.requests_per_s,
                    "concurrency_threshold": c.concurrency_threshold,
                    "reserved_replicas": c.mix.map(|m| m.reserved_replicas),
                })
            })
        })
        .collect();
    capacity_plan_def().table_of_rows(&rows)
}

pub(super) fn regimes_def() -> TableDef {
    use arrow::datatypes::DataType::{Boolean, Float64, Utf8};
    let columns: Vec<Column> = vec![
        required("supply_id", Utf8, "the supply"),
        required("regime", Utf8, "`low`, `normal` or `peak`"),
        required(
            "hours",
            Utf8,
            "its hours of the day, UTC (e.g. `0-6, 22-23`)",
        ),
        required(
            "mean_rps",
            Float64,
            "mean arrival rate of those hours over the window's days, requests/s",
        ),
        required(
            "max_rps",
            Float64,
            "highest of them: the regime's upper threshold",
        ),
        col(
            "mode",
            Utf8,
            "the search's choice on the regime's traffic (null: nothing feasible)",
        ),
        col(
            "mode_cost_per_hour_usd",
            Float64,
            "what that mode costs per hour",
        ),
        required(
            "static_cost_per_hour_usd",
            Float64,
            "the one static configuration's cost per hour",
        ),
        col(
            "saving_percent",
            Float64,
            "the schedule's saving against it (null when a regime has no mode)",
        ),
        required(
            "recommended",
            Boolean,
            "the schedule saves more than the model's error and is recommended",
        ),
    ];
    TableDef {
        name: "regimes",
        row: "one load regime of one supply",
        columns,
    }
}

pub fn regimes(schedules: &[SupplySchedule]) -> Result<Table> {
    let rows: Vec<Value> = schedules
        .iter()
        .flat_map(|sched| {
            let s = &sched.schedule;
            s.regimes.iter().map(move |r| {
                json!({
                    "supply_id": sched.supply_id,
                    "regime": r.name,
                    "hours": hour_ranges(&r.hours),
                    "mean_rps": r.mean_rps,
                    "max_rps": r.max_rps,
                    "mode": r.mode.as_ref().map(|m| m.config.describe()),
                    "mode_cost_per_hour_usd": r.mode.as_ref().map(|m| m.cost_per_hour),
                    "static_cost_per_hour_usd": s.static_cost_per_hour,
                    "saving_percent": s.saving_percent(),
                    "recommended": sched.recommendation.is_some(),
                })
            })
        })
        .collect();
    regimes_def().table_of_rows(&rows)
}

pub(super) fn routing_def() -> TableDef {
    use arrow::datatypes::DataType::{Boolean, Float64, Int64, Utf8};
    let columns: Vec<Column> = vec![
        required("app_id", Utf8, "the app"),
        required("class_id", Int64, "the workload class moved"),
        required("label", Utf8, "its label"),
        required("from_supply_id", Utf8, "the supply serving it today"),
        required(
            "to_supply_id",
            Utf8,
            "a supply of a smaller or cheaper model",
        ),
        required("requests", Int64, "the class's requests of the window"),
        required("tokens", Int64, "their prompt and completion tokens"),
        required(
            "saved_usd",
            Float64,
            "what the class costs where it is (tokens, or the replica-hours it holds)",
        ),
        required(
            "added_usd",
            Float64,
            "what it would add at the target (tokens, or replica-hours)",
        ),
        required("saving_usd", Float64, "saved − added, over the window"),
        col(
            "to_ttft_p95_ms",
            Float64,
            "the target's simulated p95 TTFT on its capacity plan (self-hosted targets)",
        ),
        col("to_tpot_p95_ms", Float64, "and p95 TPOT"),
        required(
            "worthwhile",
            Boolean,
            "saves over 1 % of what the class costs today (the best such route per class is recommended)",
        ),
    ];
    TableDef {
        name: "routing",
        row: "one workload class of one app and one other supply",
        columns,
    }
}

pub fn routing(routes: &[Route]) -> Result<Table> {
    let rows: Vec<Value> = routes
        .iter()
        .map(|r| {
            json!({
                "app_id": r.app_id,
                "class_id": r.class_id,
                "label": r.label,
                "from_supply_id": r.from,
                "to_supply_id": r.to,
                "requests": r.requests,
                "tokens": r.tokens,
                "saved_usd": r.saved_usd,
                "added_usd": r.added_usd,
                "saving_usd": r.saving_usd(),
                "to_ttft_p95_ms": r.to_ttft_p95_ms,
                "to_tpot_p95_ms": r.to_tpot_p95_ms,
                "worthwhile": r.worth_it(),
            })
        })
        .collect();
    routing_def().table_of_rows(&rows)
}
