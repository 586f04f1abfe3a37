//! Fleet findings on lakes built row by row, where the planted truth is exact: prompt-prefix
//! caching on a hosted API, batch opportunities, grades and alerts; each with its case where
//! nothing is recommended.

use chrono::Duration;
use tunelake::config::{AppSettings, PipelineFile, Supply, Window};
use tunelake::ingest;
use tunelake::opportunities::{self, health::AlertKind, health::Grade};

use crate::support::{
    Backend, Req, at, gpu_batch, ingest_window, location, requests_batch, write_table,
};

/// A self-hosted supply (`llama-h100`, SLO 500 ms TTFT / 40 ms TPOT) and a hosted API (`api`)
/// with OpenAI-style prompt caching and a 50 % batch discount.
fn supplies() -> Vec<Supply> {
    let text = r#"
[run]
lake = "x"
out = "y"

[[supplies]]
id = "llama-h100"
engine = "vllm"
model = "meta-llama/Llama-3.1-8B-Instruct"
gpu = "H100-SXM"
price = { per_gpu_hour = 4.0 }
slo = { p95_ttft_ms = 500, p95_tpot_ms = 40 }

[[supplies]]
id = "api"
engine = "openai"
model = "gpt-4.1"
price = { per_1k_input = 0.00015, per_1k_output = 0.0006, per_1k_cached_input = 0.000075, batch_discount = 0.5 }
slo = { p95_ttft_ms = 3000, p95_tpot_ms = 50 }
prompt_cache = { min_prefix_tokens = 1024, increment_tokens = 128, ttl_s = 300, extended = { name = "24h", ttl_s = 86400 } }
"#;
    toml::from_str::<PipelineFile>(text).unwrap().supplies
}

const START: &str = "2026-11-01T00:00:00Z";

/// A successful request at `start + offset_s`.
fn req(n: usize, offset_s: i64, app: &'static str, supply: &'static str) -> Req {
    Req {
        id: Some(format!("{app}-{supply}-{n}")),
        ts: Some(at(START) + Duration::seconds(offset_s)),
        app: Some(app),
        supply: Some(supply),
        prompt: Some(2000),
        completion: Some(101),
        status: Some("ok"),
        ttft_ms: Some(100.0),
        e2e_ms: Some(100.0 + 100.0 * 20.0),
        ..Default::default()
    }
}

/// Ingests `rows` (and telemetry windows) as a lake over `days` days from [`START`].
async fn ingested(
    rows: Vec<Req>,
    gpu: &[(&str, &str, f64, f64, f64, f64)],
    days: u32,
) -> (ingest::Lake, Window, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    write_table(&lake, "requests", requests_batch(&rows)).await;
    if !gpu.is_empty() {
        write_table(&lake, "gpu_metrics", gpu_batch(gpu)).await;
    }
    let window = Window::ending_at(at(START) + Duration::days(i64::from(days)), days);
    (ingest_window(lake, window).await, window, dir)
}

/// Known answer. Planted: app `docs` sends a 1,500-token shared prefix to the hosted API every
/// 10 minutes, ten times; app `short` a 500-token one every minute; app `warm` a 1,500-token one
/// every minute that the provider already reports as cached. The default retention (300 s) never
/// keeps `docs`'s prefix; the 24-hour one serves the 9 repeats, each 1,024 + 3 × 128 = 1,408
/// tokens. `short` is below the provider's minimum and `warm` is cached already: nothing for them.
#[tokio::test]
async fn prompt_caching_recovers_the_planted_prefix_reuse() {
    let mut rows = Vec::new();
    for i in 0..10 {
        let mut r = req(i, i as i64 * 600, "docs", "api");
        r.prefix = Some(("doc-prefix".into(), 1500));
        rows.push(r);
        let mut r = req(i, i as i64 * 60, "short", "api");
        r.prefix = Some(("short-prefix".into(), 500));
        rows.push(r);
        let mut r = req(i, i as i64 * 60, "warm", "api");
        r.prefix = Some(("warm-prefix".into(), 1500));
        r.cached = Some(if i == 0 { 0 } else { 1408 });
        rows.push(r);
        // The self-hosted supply's requests are no hosted API's concern.
        let mut r = req(i, i as i64 * 600, "docs", "llama-h100");
        r.prefix = Some(("doc-prefix".into(), 1500));
        rows.push(r);
    }
    let (lake, window, _dir) = ingested(rows, &[], 1).await;
    let supplies = supplies();
    opportunities::register_supplies(&lake.ctx, &supplies).unwrap();
    let found = opportunities::prefix_caching(&lake.ctx, &window, &supplies)
        .await
        .unwrap();
    let app = |name: &str| found.iter().find(|p| p.app_id == name).unwrap();
    assert_eq!(found.len(), 3, "only the hosted supply's apps: {found:?}");

    let docs = app("docs");
    assert_eq!(docs.supply_id, "api");
    assert_eq!(docs.requests, 10);
    assert_eq!(
        docs.replays[0].cached_tokens, 0,
        "300 s never bridges 600 s"
    );
    assert_eq!(docs.replays[1].retention.as_deref(), Some("24h"));
    assert_eq!(docs.replays[1].cached_tokens, 9 * 1408);
    let saving = 9.0 * 1408.0 * (0.00015 - 0.000075) / 1e3;
    assert!((docs.replays[1].saving_usd - saving).abs() < 1e-12);
    assert_eq!(docs.chosen, Some(1));
    let rec = tunelake::recommend::prompt_caching(docs, "a").unwrap();
    assert_eq!(rec.target_supply_id, "api");
    let client = &rec.recommended_config_snippet["openai_client"];
    assert_eq!(client["prompt_cache_retention"], "24h");
    assert_eq!(client["prompt_cache_key"], "docs");
    let params = crate::snippets::reference("openai-chat-params.txt");
    for key in client.as_object().unwrap().keys() {
        assert!(
            params.contains(key),
            "{key} is not an OpenAI chat parameter"
        );
    }

    for quiet in ["short", "warm"] {
        let p = app(quiet);
        assert_eq!(p.chosen, None, "{quiet}: {p:?}");
        assert!(tunelake::recommend::prompt_caching(p, "a").is_none());
    }
    assert_eq!(app("short").long_prefix_tokens, 0);
    assert_eq!(app("warm").replays[0].cached_tokens, 9 * 1408);
    assert_eq!(app("warm").reported_cached_tokens, 9 * 1408);
}

/// Known answer. Planted: `nightly` (hosted, long prompts, no sessions, every request at 01:00–
/// 05:00) and `chat` (hosted, in sessions, daytime). Only `nightly` is inferred latency-tolerant;
/// its saving is half its logged cost. A declaration overrides the inference both ways, and a
/// latency-tolerant app on a self-hosted supply gets no batch-API saving.
#[tokio::test]
async fn batch_opportunity_is_inferred_priced_and_overridden_by_declarations() {
    let mut rows = Vec::new();
    for i in 0..40 {
        let mut r = req(i, 3600 + i as i64 * 300, "nightly", "api");
        r.cost_usd = Some(0.01);
        rows.push(r);
        let mut r = req(i, 10 * 3600 + i as i64 * 300, "chat", "api");
        r.session = Some(format!("s{}", i / 4));
        r.prompt = Some(200);
        r.cost_usd = Some(0.002);
        rows.push(r);
        rows.push(req(i, 3600 + i as i64 * 300, "offline", "llama-h100"));
    }
    let (lake, window, _dir) = ingested(rows, &[], 1).await;
    let supplies = supplies();
    let run = |apps: Vec<AppSettings>| {
        let (ctx, supplies) = (&lake.ctx, &supplies);
        async move {
            opportunities::batch_opportunities(ctx, &window, &apps, supplies)
                .await
                .unwrap()
        }
    };
    let found = run(vec![]).await;
    let app = |found: &[opportunities::batch::BatchOpportunity], name: &str| {
        found
            .iter()
            .find(|b| b.profile.app_id == name)
            .unwrap()
            .clone()
    };
    let nightly = app(&found, "nightly");
    assert_eq!(
        nightly.tolerance,
        Some(opportunities::batch::Tolerance::Inferred)
    );
    assert_eq!(nightly.profile.night_share(), 1.0);
    assert!((nightly.cost_usd.unwrap() - 0.4).abs() < 1e-9);
    assert!((nightly.saving_usd.unwrap() - 0.2).abs() < 1e-9);
    let rec = tunelake::recommend::batch_api(&nightly, window.days(), "a").unwrap();
    assert_eq!(rec.target_supply_id, "api");
    assert_eq!(rec.predicted_impact.cost_change_percent, -50.0);
    assert_eq!(
        rec.recommended_config_snippet["batch_api"]["completion_window"],
        "24h"
    );
    assert!(rec.analysis_summary.contains("Inferred"));

    let chat = app(&found, "chat");
    assert_eq!(chat.tolerance, None, "a daytime app in sessions is awaited");
    assert!(tunelake::recommend::batch_api(&chat, 1.0, "a").is_none());
    let offline = app(&found, "offline");
    assert_eq!(
        offline.tolerance,
        Some(opportunities::batch::Tolerance::Inferred)
    );
    assert_eq!(
        offline.saving_usd, None,
        "no batch API on a self-hosted supply"
    );
    assert!(tunelake::recommend::batch_api(&offline, 1.0, "a").is_none());

    let declared = |id: &str, tolerant| AppSettings {
        id: id.into(),
        latency_tolerant: Some(tolerant),
    };
    let found = run(vec![declared("nightly", false), declared("chat", true)]).await;
    assert_eq!(app(&found, "nightly").tolerance, None);
    let chat = app(&found, "chat");
    assert_eq!(
        chat.tolerance,
        Some(opportunities::batch::Tolerance::Declared)
    );
    assert!((chat.saving_usd.unwrap() - 0.04).abs() < 1e-9);
}

/// Three days of 60 requests an hour on `llama-h100` and `api`, every one within the SLO, with
/// telemetry every 10 minutes at 60 % GPU utilisation; `plant(hour, n, row)` changes the `n`th row of
/// each supply before it is written.
async fn health_of(
    plant: impl Fn(usize, usize, &mut Req),
    kv_full_hour: Option<usize>,
) -> Vec<opportunities::health::SupplyHealth> {
    let mut rows = Vec::new();
    for hour in 0..72usize {
        for k in 0..60usize {
            let n = hour * 60 + k;
            for supply in ["llama-h100", "api"] {
                let mut r = req(n, (hour * 3600 + k * 60) as i64, "app", supply);
                r.cost_usd = Some(0.001);
                plant(hour, n, &mut r);
                rows.push(r);
            }
        }
    }
    let stamps: Vec<String> = (0..72 * 6)
        .map(|i| (at(START) + Duration::minutes(i * 10)).to_rfc3339())
        .collect();
    let gpu: Vec<(&str, &str, f64, f64, f64, f64)> = stamps
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let kv = if Some(i / 6) == kv_full_hour {
                0.99
            } else {
                0.5
            };
            (ts.as_str(), "i-0", 8.0, 0.0, kv, 0.6)
        })
        .collect();
    let (lake, window, _dir) = ingested(rows, &gpu, 3).await;
    let supplies = supplies();
    opportunities::register_supplies(&lake.ctx, &supplies).unwrap();
    opportunities::supply_health(&lake.ctx, &window, &supplies)
        .await
        .unwrap()
}

fn hour_us(hour: i64) -> i64 {
    (at(START) + Duration::hours(hour)).timestamp_micros()
}

/// Known answer. Planted on `llama-h100`: hour 10, half the requests at 2 s TTFT (an SLO miss);
/// hours 20 and 21, one request in five failing (one error spike of two hours); hour 30, the KV
/// cache full (saturation). On `api`, every request of the third day costs twice as much (a cost
/// jump). Nothing else may be flagged, and the grades follow the documented thresholds.
#[tokio::test]
async fn alerts_and_grades_recover_the_planted_incidents() {
    let plant = |hour: usize, n: usize, r: &mut Req| {
        if r.supply == Some("api") && hour >= 48 {
            r.cost_usd = Some(0.002);
        }
        if r.supply != Some("llama-h100") {
            return;
        }
        if hour == 10 && n.is_multiple_of(2) {
            r.ttft_ms = Some(2000.0);
            r.e2e_ms = Some(4000.0);
        }
        if (hour == 20 || hour == 21) && n.is_multiple_of(5) {
            r.status = Some("error");
        }
    };
    let health = health_of(plant, Some(30)).await;
    let of = |id: &str| health.iter().find(|h| h.supply_id == id).unwrap();
    let kinds = |id: &str| {
        of(id)
            .alerts
            .iter()
            .map(|a| (a.kind, a.start_us, a.hours))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds("llama-h100"),
        vec![
            (AlertKind::SloMiss, hour_us(10), 1),
            (AlertKind::Saturation, hour_us(30), 1),
            (AlertKind::ErrorSpike, hour_us(20), 2),
        ]
    );
    assert_eq!(kinds("api"), vec![(AlertKind::CostJump, hour_us(48), 24)]);

    let llama = of("llama-h100");
    assert_eq!(llama.requests, 72 * 60);
    // Latencies count only requests that did not fail (24 errors).
    assert!((llama.slo_attainment.unwrap() - (1.0 - 30.0 / (4320.0 - 24.0))).abs() < 1e-12);
    assert!((llama.failure_share - 24.0 / 4320.0).abs() < 1e-12);
    assert!((llama.gpu_util.unwrap() - 0.6).abs() < 1e-9);
    let grade = llama.grade(Some(0.0));
    assert_eq!(
        (
            grade.slo,
            grade.errors,
            grade.utilisation,
            grade.cost,
            grade.grade
        ),
        (
            Some(Grade::APlus),
            Grade::A,
            Some(Grade::APlus),
            Some(Grade::APlus),
            Grade::A
        )
    );
    assert_eq!(
        llama.grade(Some(0.4)).grade,
        Grade::D,
        "the weakest dimension"
    );
    let supply = &supplies()[0];
    let rec = tunelake::recommend::alerts(supply, llama, &grade, "a").unwrap();
    let rules = &rec.recommended_config_snippet["prometheus_rules"]["groups"][0]["rules"];
    let names: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"TunelakeTtftSloMiss") && names.contains(&"TunelakeKvCacheFull"));
    assert!(
        rec.analysis_summary
            .contains("error_spike 2026-11-01 20:00")
    );
}

/// Nothing planted: no alert, and every dimension at the top grade.
#[tokio::test]
async fn a_healthy_fleet_raises_no_alert() {
    let health = health_of(|_, _, _| {}, None).await;
    for h in &health {
        assert!(h.alerts.is_empty(), "{}: {:?}", h.supply_id, h.alerts);
        let g = h.grade(Some(0.0));
        assert_eq!(g.grade, Grade::APlus, "{g:?}");
        let supply = supplies()
            .into_iter()
            .find(|s| s.id == h.supply_id)
            .unwrap();
        assert!(tunelake::recommend::alerts(&supply, h, &g, "a").is_none());
    }
}

/// An hourly plan of `replicas` per hour for a configuration of `static_replicas` replicas.
fn hourly(replicas: &[u32], static_replicas: u32) -> tunelake::search::capacity::HourlyPlan {
    use tunelake::search::capacity::{HourPlan, HourlyPlan, ReplicaCapacity, WindowVerdict};
    HourlyPlan {
        config: tunelake::knobs::ServingConfig::with_engine_defaults(
            "H100-SXM".into(),
            1,
            static_replicas,
        ),
        capacity: ReplicaCapacity {
            requests_per_s: 1.0,
            concurrency_per_replica: 2.4,
        },
        headroom: 0.1,
        hours: replicas
            .iter()
            .enumerate()
            .map(|(h, r)| HourPlan {
                hour: h as u32,
                requests: 100,
                replicas: *r,
                metrics: None,
                slo_met: true,
            })
            .collect(),
        window: WindowVerdict {
            ttft_p95_ms: 100.0,
            tpot_p95_ms: 20.0,
            failed_share: 0.0,
            slo_met: true,
        },
    }
}

/// Known answer of the purchase mix. A day needing 1 replica for 12 hours and 3 for the other 12,
/// today 3 static replicas at $10 a replica-hour (cost $720). With 40 % off reserved capacity, a
/// replica is reserved when at least 60 % of hours need it: the first (100 %), not the second
/// (50 %). Above it, 24 replica-hours, half on spot at 60 % off: 1 × 24 × $6 + 12 × $10 + 12 × $4
/// = $312 (reserving the second would pay 60 % of its price for hours half of which need it at a
/// blended 70 %). Autoscaled on demand: 48 replica-hours, $480. KEDA's bounds are 1 and 3, its
/// threshold ⌈2.4⌉ = 3 requests in flight per replica.
#[test]
fn capacity_plan_prices_the_purchase_mix() {
    use tunelake::config::PurchaseOptions;
    use tunelake::recommend::{CapacityPlan, capacity_plan};
    let day: Vec<u32> = [1; 12].into_iter().chain([3; 12]).collect();
    let purchase = PurchaseOptions {
        reserved_discount: 0.4,
        spot_discount: 0.6,
        max_spot_share: 0.5,
    };
    let plan = CapacityPlan::priced("llama-h100", hourly(&day, 3), 10.0, Some(&purchase));
    let mix = plan.mix.unwrap();
    assert_eq!(mix.reserved_replicas, 1);
    assert_eq!(
        (mix.on_demand_replica_hours, mix.spot_replica_hours),
        (12.0, 12.0)
    );
    assert!((mix.cost_usd - 312.0).abs() < 1e-9);
    assert_eq!(
        (plan.static_cost_usd, plan.autoscaled_cost_usd),
        (720.0, 480.0)
    );
    assert_eq!(
        (
            plan.min_replicas,
            plan.max_replicas,
            plan.concurrency_threshold
        ),
        (1, 3, 3)
    );
    let supply = &supplies()[0];
    let rec = capacity_plan(supply, &plan, "a").unwrap();
    assert!(
        (rec.predicted_impact.cost_change_percent - (312.0 / 720.0 - 1.0) * 100.0).abs() < 1e-9
    );
    let spec = &rec.recommended_config_snippet["keda_scaled_object"]["spec"];
    assert_eq!(
        (
            spec["minReplicaCount"].as_u64(),
            spec["maxReplicaCount"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(spec["triggers"][0]["metadata"]["threshold"], "3");
    assert_eq!(
        rec.recommended_config_snippet["purchase"]["reserved_replicas"],
        1
    );
}

/// Nothing to recommend: a flat load already on its static replicas with no purchase terms costs
/// the same; a plan whose replay misses the SLOs is never recommended, however cheap. With
/// purchase terms the flat fleet is worth reserving, with nothing to autoscale.
#[test]
fn capacity_plan_recommends_nothing_for_a_flat_fleet_or_a_failing_plan() {
    use tunelake::recommend::{CapacityPlan, capacity_plan};
    let supply = &supplies()[0];
    let flat = CapacityPlan::priced("llama-h100", hourly(&[2; 24], 2), 10.0, None);
    assert_eq!(flat.mix, None);
    assert_eq!(flat.cost_usd(), flat.static_cost_usd);
    assert!(capacity_plan(supply, &flat, "a").is_none());
    let mut failing = hourly(&[1; 24], 3);
    failing.window.slo_met = false;
    let failing = CapacityPlan::priced("llama-h100", failing, 10.0, None);
    assert!(failing.cost_usd() < failing.static_cost_usd);
    assert!(capacity_plan(supply, &failing, "a").is_none());
    let terms = tunelake::config::PurchaseOptions {
        reserved_discount: 0.4,
        spot_discount: 0.6,
        max_spot_share: 0.5,
    };
    let reserved = CapacityPlan::priced("llama-h100", hourly(&[2; 24], 2), 10.0, Some(&terms));
    let rec = capacity_plan(supply, &reserved, "a").unwrap();
    let snippet = rec.recommended_config_snippet.as_object().unwrap();
    assert!(!snippet.contains_key("keda_scaled_object"));
    assert_eq!(snippet["purchase"]["reserved_replicas"], 2);
}

/// One mix cell: `requests` of `class` for `app` on `supply` in hour `hour` of [`START`]'s day.
fn cell<'a>(
    app: &'a str,
    supply: &'a str,
    class: u16,
    hour: i64,
    requests: u64,
    tokens: (u64, u64),
) -> tunelake::workloads::MixCell<'a> {
    tunelake::workloads::MixCell {
        app_id: app,
        supply_id: supply,
        hour_us: hour_us(hour),
        class_id: class,
        requests,
        prompt_tokens: tokens.0,
        completion_tokens: tokens.1,
    }
}

/// A supply as tiering sees it, of unknown size.
fn tier<'a>(
    id: &'a str,
    model: &'a str,
    billing: Option<tunelake::opportunities::costs::Billing>,
    plan: Option<&'a tunelake::recommend::CapacityPlan>,
) -> tunelake::recommend::TierSupply<'a> {
    tunelake::recommend::TierSupply {
        id,
        model,
        params: None,
        billing,
        plan,
    }
}

fn tokens_priced(input: f64, output: f64) -> Option<tunelake::opportunities::costs::Billing> {
    Some(tunelake::opportunities::costs::Billing::Tokens {
        usd_per_1k_input: input,
        usd_per_1k_output: output,
    })
}

/// Known answer. App `docs` sends class 0 (1,000 requests, 10⁶ prompt and 10⁵ completion tokens)
/// and class 1 (10 requests) to the `big` API ($2 / $8 per 1M tokens); the `small` API costs $0.40 /
/// $1.60. Moving class 0 saves $2.80 and adds $0.56; class 1 is under 5 % of the app's requests and
/// stays. A self-hosted target with spare capacity adds nothing; one at capacity adds a replica-hour.
#[test]
fn tiering_routes_a_class_to_the_cheaper_model() {
    use tunelake::recommend::{CapacityPlan, router_weights, routes};
    let cells = [
        cell("docs", "big", 0, 0, 1000, (1_000_000, 100_000)),
        cell("docs", "big", 1, 0, 10, (10_000, 1_000)),
    ];
    let hosted = [
        tier("big", "gpt-4.1", tokens_priced(0.002, 0.008), None),
        tier("small", "gpt-4.1-mini", tokens_priced(0.0004, 0.0016), None),
    ];
    let found = routes(&cells, &[], &hosted, hour_us(0));
    let class0 = found.iter().find(|r| r.class_id == 0).unwrap();
    assert_eq!((class0.from.as_str(), class0.to.as_str()), ("big", "small"));
    assert!((class0.saved_usd - 2.8).abs() < 1e-9 && (class0.added_usd - 0.56).abs() < 1e-9);
    assert!(class0.worth_it());
    assert!(!found.iter().find(|r| r.class_id == 1).unwrap().worth_it());
    let rec = router_weights("docs", &found, &Default::default(), 1.0, "a").unwrap();
    let routes_json = rec.recommended_config_snippet["router"]["routes"]
        .as_array()
        .unwrap();
    assert_eq!(routes_json.len(), 1);
    assert_eq!(routes_json[0]["weights"]["small"], 1.0);
    assert!(
        rec.analysis_summary
            .contains("quality on the smaller model is unknown")
    );

    // A self-hosted target: 1 request/s per replica, its own requests of 1,100 tokens (3.96M tokens
    // an hour), 10 % headroom, $10 a replica-hour. With 1.1M tokens of its own in the hour, the
    // class's 1.1M fit in its one replica (nothing added); with 3.3M they need a second ($10).
    for (own, added) in [(1_100_000u64, 0.0), (3_300_000, 10.0)] {
        let plan = CapacityPlan::priced("gpu", hourly(&[1], 1), 10.0, None);
        let mut with_gpu = cells.to_vec();
        with_gpu.push(cell(
            "chat",
            "gpu",
            0,
            0,
            own / 1100,
            (own - 100_000, 100_000),
        ));
        let supplies = [
            hosted[0],
            tier("gpu", "meta-llama/Llama-3.1-8B-Instruct", None, Some(&plan)),
        ];
        let to_gpu = routes(&with_gpu, &[], &supplies, hour_us(0))
            .into_iter()
            .find(|r| r.class_id == 0 && r.to == "gpu")
            .unwrap();
        assert_eq!(to_gpu.added_usd, added, "own load {own}");
    }
}

/// Nothing to recommend: a target that costs more, a larger model, or a self-hosted source whose
/// last replica the class does not free.
#[test]
fn tiering_recommends_nothing_without_a_saving() {
    use tunelake::recommend::{CapacityPlan, TierSupply, router_weights, routes};
    let cells = [cell("docs", "small", 0, 0, 1000, (1_000_000, 100_000))];
    let supplies = [
        TierSupply {
            id: "small",
            model: "gpt-4.1-mini",
            params: None,
            billing: tokens_priced(0.0004, 0.0016),
            plan: None,
        },
        TierSupply {
            id: "big",
            model: "gpt-4.1",
            params: None,
            billing: tokens_priced(0.002, 0.008),
            plan: None,
        },
    ];
    let found = routes(&cells, &[], &supplies, hour_us(0));
    assert!(found.iter().all(|r| !r.worth_it()), "{found:?}");
    assert!(router_weights("docs", &found, &Default::default(), 1.0, "a").is_none());

    let plan = CapacityPlan::priced("gpu-70b", hourly(&[1], 1), 10.0, None);
    let cells = [cell("docs", "gpu-70b", 0, 0, 10, (10_000, 1_000))];
    let supplies = [
        TierSupply {
            id: "gpu-70b",
            model: "meta-llama/Llama-3.1-70B-Instruct",
            params: Some(70_000_000_000),
            billing: None,
            plan: Some(&plan),
        },
        TierSupply {
            id: "gpu-405b",
            model: "meta-llama/Llama-3.1-405B-Instruct",
            params: Some(405_000_000_000),
            billing: None,
            plan: Some(&plan),
        },
        supplies[0],
    ];
    let found = routes(&cells, &[], &supplies, hour_us(0));
    assert!(
        found.iter().all(|r| r.to != "gpu-405b"),
        "never to a larger model"
    );
    let to_api = found.iter().find(|r| r.to == "small").unwrap();
    assert_eq!(to_api.saved_usd, 0.0, "the last replica stays");
    assert!(!to_api.worth_it());
}

/// A latency-tolerant (declared) app `nightly` on self-hosted `gpu`, beside `web`.
fn nightly_on_gpu(tolerant: bool) -> opportunities::batch::BatchOpportunity {
    opportunities::batch::BatchOpportunity {
        profile: opportunities::batch::AppProfile {
            app_id: "nightly".into(),
            supply_id: "gpu".into(),
            requests: 4000,
            in_sessions: 0,
            night: 0,
            prompt_p50: 100.0,
            prompt_tokens: 400_000,
            completion_tokens: 0,
            with_cost: 0,
            cost_usd: 0.0,
        },
        tolerance: tolerant.then_some(opportunities::batch::Tolerance::Declared),
        hosted: false,
        cost_usd: None,
        batch_discount: None,
        saving_usd: None,
    }
}

/// Known answer of the off-peak window. A day on one replica of 1 request/s at 100 tokens a
/// request with 10 % headroom (327,273 tokens an hour): `web` sends 100k tokens every hour, the
/// latency-tolerant `nightly` 400k at noon, which needs a second replica there. Deferred, its
/// tokens fill the room of the quietest hours in order (ties by hour: 227,273 at 00:00, the rest at
/// 01:00), no hour needs a second replica: one replica-hour, $10, saved. Nothing for an app with a
/// person waiting, nor where deferring frees nothing.
#[test]
fn batch_window_fills_the_quiet_hours_of_self_hosted_capacity() {
    use tunelake::recommend::{CapacityPlan, batch_window, batch_window_recommendation};
    let mut cells: Vec<_> = (0..24)
        .map(|h| cell("web", "gpu", 0, h, 1000, (100_000, 0)))
        .collect();
    cells.push(cell("nightly", "gpu", 1, 12, 4000, (400_000, 0)));
    let plan = CapacityPlan::priced("gpu", hourly(&[1; 24], 2), 10.0, None);
    let w = batch_window(&nightly_on_gpu(true), &plan, &cells, hour_us(0)).unwrap();
    assert!((w.saving_usd - 10.0).abs() < 1e-9, "{w:?}");
    assert_eq!(w.hours_of_day, vec![0, 1]);
    let rec = batch_window_recommendation(&w, 1.0, "a").unwrap();
    assert_eq!(
        rec.recommended_config_snippet["batch_window"]["hours_utc"],
        "0-1"
    );

    assert!(batch_window(&nightly_on_gpu(false), &plan, &cells, hour_us(0)).is_none());
    // At 100k tokens the app fits noon's one replica already: deferring frees nothing.
    cells.pop();
    cells.push(cell("nightly", "gpu", 1, 12, 1000, (100_000, 0)));
    let w = batch_window(&nightly_on_gpu(true), &plan, &cells, hour_us(0)).unwrap();
    assert_eq!(w.saving_usd, 0.0);
    assert!(batch_window_recommendation(&w, 1.0, "a").is_none());
}
