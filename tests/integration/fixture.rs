//! The fixture lake most tests share: three days of window plus partitions on both sides of it, with
//! one row for every quarantine rule and corrupt files outside the window that must never be opened.

use std::collections::BTreeMap;

use tunelake::storage::Location;
use tunelake::storage::parquet::write_file;

use crate::support::{self, Req, SupplyToml, gpu_batch, requests_batch, write_table};

/// The window is [2026-11-07, 2026-11-10).
pub const AS_OF: &str = "2026-11-10";
pub const PERIOD_DAYS: u32 = 3;
pub const APPS: [&str; 2] = ["chat", "rag"];

/// Valid rows of the selected apps in the window.
pub const VALID_REQUESTS: u64 = 9;

/// Quarantined rows per reason.
pub fn expected_quarantine() -> BTreeMap<String, u64> {
    [
        ("duplicate_request_id", 1),
        ("negative_tokens", 1),
        ("null_app_id", 1),
        ("tokens_above_ceiling", 1),
        ("ts_after_as_of", 1),
        ("unknown_status", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn chat(id: &str, ts: &str, prompt: i64, completion: i64, session: &str) -> Req {
    Req {
        session: Some(session.to_string()),
        prompt_hash: Some(format!("h-{prompt}")),
        cached: Some(prompt / 2),
        ttft_ms: Some(100.0 + prompt as f64 / 10.0),
        e2e_ms: Some(100.0 + prompt as f64 / 10.0 + 20.0 * (completion - 1) as f64),
        cost_usd: Some(0.001),
        ..Req::ok(id, ts, "chat", prompt, completion)
    }
}

pub fn requests() -> Vec<Req> {
    let mut rows = vec![
        chat("c1", "2026-11-07T10:00:00Z", 100, 50, "s1"),
        chat("c2", "2026-11-07T10:05:00Z", 300, 80, "s1"),
        chat("c3", "2026-11-07T10:20:00Z", 500, 20, "s1"),
        chat("c4", "2026-11-07T10:30:00Z", 100, 60, "s2"),
        chat("c5", "2026-11-07T11:10:00Z", 200, 40, "s3"),
        Req {
            status: Some("error"),
            ..chat("c6", "2026-11-08T09:00:00Z", 150, 1, "s4")
        },
        Req::ok("r1", "2026-11-08T12:00:00Z", "rag", 6000, 200),
        Req::ok("r2", "2026-11-08T12:30:00Z", "rag", 4000, 100),
        Req {
            status: Some("timeout"),
            ..Req::ok("r3", "2026-11-09T23:59:59Z", "rag", 8000, 300)
        },
        // Another app: outside the selection, neither valid nor quarantined.
        Req::ok("o1", "2026-11-08T12:00:00Z", "other", 10, 10),
        // One row per quarantine rule.
        Req {
            app: None,
            ..Req::ok("q1", "2026-11-07T12:00:00Z", "chat", 10, 10)
        },
        Req::ok("q2", "2026-11-07T12:00:00Z", "chat", -5, 10),
        Req::ok("q3", "2026-11-07T12:00:00Z", "rag", 200_000, 10),
        Req {
            status: Some("exploded"),
            ..Req::ok("q4", "2026-11-08T12:00:00Z", "rag", 10, 10)
        },
        // An exact copy of c1, logged twice.
        chat("c1", "2026-11-07T10:00:00Z", 100, 50, "s1"),
        // Outside the window: these partitions must not even be opened.
        Req::ok("old", "2026-11-06T10:00:00Z", "chat", 10, 10),
        Req::ok("new", "2026-11-10T10:00:00Z", "chat", 10, 10),
    ];
    rows.sort_by_key(|r| r.ts);
    rows
}

/// Writes the fixture lake at `lake`.
pub async fn write(lake: &Location) {
    write_table(lake, "requests", requests_batch(&requests())).await;
    // A row whose ts lies after the as-of but was filed under an in-window date partition.
    let late = requests_batch(&[Req::ok("late", "2026-11-10T01:00:00Z", "chat", 10, 10)]);
    write_file(
        lake,
        "requests/date=2026-11-09/late.parquet",
        &late.schema(),
        &[late],
    )
    .await
    .unwrap();
    for date in ["2026-11-06", "2026-11-10"] {
        lake.put(
            &lake.child(&format!("requests/date={date}/corrupt.parquet")),
            bytes::Bytes::from_static(b"not parquet at all"),
        )
        .await
        .unwrap();
    }
    let gpu = gpu_batch(&[
        ("2026-11-07T10:00:00Z", "i-0", 4.0, 0.0, 0.30, 0.55),
        ("2026-11-07T10:01:00Z", "i-0", 6.0, 1.0, 0.40, 0.65),
        ("2026-11-07T10:00:00Z", "i-1", 2.0, 0.0, 0.20, 0.35),
        ("2026-11-08T12:00:00Z", "i-0", 8.0, 2.0, 0.90, 0.95),
        // Out of range: a percentage where a fraction belongs.
        ("2026-11-08T12:01:00Z", "i-0", 8.0, 2.0, 90.0, 0.95),
    ]);
    write_table(lake, "gpu_metrics", gpu).await;
}

/// A pipeline file for the fixture lake.
pub fn pipeline_toml(lake: &str, out: &str) -> String {
    support::pipeline_toml(
        &format!(
            r#"[run]
lake = "{lake}"
out = "{out}"
as_of = "{AS_OF}"
period_days = {PERIOD_DAYS}
app_ids = ["chat", "rag"]

[validation]
max_prompt_tokens = 100000
"#
        ),
        &[SupplyToml {
            gpus_per_replica: Some(1),
            replicas: Some(2),
            per_gpu_hour: 3.5,
            p95_ttft_ms: 500.0,
            p95_tpot_ms: 50.0,
            ..SupplyToml::new("llama-h100", "llama-3.1-8b", "h100-sxm")
        }],
    )
}
