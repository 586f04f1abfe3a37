//! Fleet and application findings: known answers on the generated demo lake (whose
//! `ground_truth.json` records what was planted) and the cases where nothing is recommended.

use std::path::Path;

use chrono::{TimeZone, Utc};
use tunelake::config::Window;
use tunelake::ingest;
use tunelake::opportunities::cache::{Lookup, Policy, replay};
use tunelake::opportunities::client::{CapChange, normal_cdf};
use tunelake::opportunities::{self, AppCache};
use tunelake::storage::Location;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/demo");

/// The demo lake's week, ingested.
async fn demo_lake() -> (ingest::Lake, Window) {
    let window = Window::ending_at(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(), 7);
    (
        crate::support::ingest_window(Location::parse(DEMO, None).unwrap(), window).await,
        window,
    )
}

async fn demo_caching(seed: u64) -> Vec<AppCache> {
    let (lake, window) = demo_lake().await;
    opportunities::response_caching(&lake.ctx, &window, seed)
        .await
        .unwrap()
}

/// Known answer. Protocol: the generator repeats an earlier prompt of the same app and day with
/// each app's `duplicate_rate` (ground truth); nothing else shares a prompt_hash. A day-long cache
/// must answer that share of requests, within 3 binomial standard errors, and the app planted
/// without repeats (the night-time summariser) must get no cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_caching_recovers_the_planted_duplicate_rates() {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(DEMO).join("ground_truth.json")).unwrap())
            .unwrap();
    let apps = demo_caching(42).await;
    assert_eq!(apps.len(), 4);
    for planted in truth["apps"].as_array().unwrap() {
        let name = planted["name"].as_str().unwrap();
        let rate = planted["duplicate_rate"].as_f64().unwrap();
        let app = apps.iter().find(|a| a.app_id == name).unwrap();
        let day = app
            .replays
            .iter()
            .find(|r| r.policy == Policy::Ttl { seconds: 86_400 })
            .unwrap();
        let n = app.requests as f64;
        let tolerance = 3.0 * (rate * (1.0 - rate) / n).sqrt() + 1.0 / n;
        assert!(
            (day.hit_rate() - rate).abs() <= tolerance,
            "{name}: hit rate {} vs planted {rate} ± {tolerance}",
            day.hit_rate()
        );
        assert_eq!(app.supply_id, planted["supply"].as_str().unwrap());
        if rate == 0.0 {
            assert!(app.chosen.is_none(), "{name} has nothing to cache");
            assert!(tunelake::recommend::response_cache(app, true, "a").is_none());
        } else {
            let chosen = app.chosen.expect("a cache for an app with repeats");
            let [lo, hi] = app.hit_rate_interval.unwrap();
            assert!(lo <= chosen.hit_rate() && chosen.hit_rate() <= hi);
            let rec = tunelake::recommend::response_cache(app, false, "a").unwrap();
            assert_eq!(rec.target_supply_id, app.supply_id);
            assert_eq!(
                rec.recommended_config_snippet["response_cache"]["app_id"],
                name
            );
        }
    }
    // Seeded: the same run seed gives the same intervals.
    let again = demo_caching(42).await;
    let intervals = |a: &[AppCache]| a.iter().map(|x| x.hit_rate_interval).collect::<Vec<_>>();
    assert_eq!(intervals(&apps), intervals(&again));
}

fn lookup(ts_s: i64, prompt: u64, cacheable: bool) -> Lookup {
    Lookup {
        ts_us: ts_s * 1_000_000,
        prompt,
        cacheable,
        prompt_tokens: 100,
        completion_tokens: 10,
        cost_usd: 0.5,
    }
}

/// Known answers of the replay itself: LRU eviction order, TTL expiry, and that only a successful
/// response is stored.
#[test]
fn cache_replay_evicts_expires_and_stores_only_successes() {
    // A B C A: with room for two, A was evicted by C; with three it hits.
    let abca = [
        lookup(0, 1, true),
        lookup(1, 2, true),
        lookup(2, 3, true),
        lookup(3, 1, true),
    ];
    assert_eq!(replay(&abca, Policy::Lru { entries: 2 }).0.hits, 0);
    let (three, hits) = replay(&abca, Policy::Lru { entries: 3 });
    assert_eq!((three.hits, hits), (1, vec![false, false, false, true]));
    assert_eq!(
        (
            three.prompt_tokens_saved,
            three.completion_tokens_saved,
            three.cost_saved_usd
        ),
        (100, 10, 0.5)
    );
    // A B A C A with room for two: the second A refreshes it, so C evicts B and the third A hits.
    let refreshed = [
        lookup(0, 1, true),
        lookup(1, 2, true),
        lookup(2, 1, true),
        lookup(3, 3, true),
        lookup(4, 1, true),
    ];
    assert_eq!(replay(&refreshed, Policy::Lru { entries: 2 }).0.hits, 2);
    // A TTL counts from when the response was stored.
    let late = [
        lookup(0, 1, true),
        lookup(3_000, 1, true),
        lookup(3_700, 1, true),
    ];
    assert_eq!(replay(&late, Policy::Ttl { seconds: 3_600 }).0.hits, 1);
    // A failed request stores nothing; the next success does.
    let failed_first = [lookup(0, 1, false), lookup(1, 1, true), lookup(2, 1, true)];
    assert_eq!(
        replay(&failed_first, Policy::Lru { entries: 10 }).1,
        vec![false, false, true]
    );
}

/// Known answer. Protocol: the generator draws each app's completions from a lognormal (median,
/// σ in ground truth) cut at its `max_tokens` (then finish_reason = length). The censoring-aware
/// fit must recover σ within 15 % and the truncated share within 3 standard errors of the planted
/// tail; a cap is raised exactly where more than 1 % of responses are cut (rag, summarize), and
/// left alone where the cap already covers the outputs (chat, code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_defaults_recover_the_planted_output_lengths() {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(DEMO).join("ground_truth.json")).unwrap())
            .unwrap();
    let (lake, window) = demo_lake().await;
    assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    let found = opportunities::client_defaults(&lake.ctx, &window)
        .await
        .unwrap();
    assert_eq!(found.len(), 4);
    for planted in truth["apps"].as_array().unwrap() {
        let name = planted["name"].as_str().unwrap();
        let (median, sigma, cap) = (
            planted["completion_median"].as_f64().unwrap(),
            planted["completion_sigma"].as_f64().unwrap(),
            planted["max_tokens"].as_f64().unwrap(),
        );
        let d = found.iter().find(|d| d.lengths.app_id == name).unwrap();
        assert!(
            (d.sigma / sigma - 1.0).abs() < 0.15,
            "{name}: σ {} vs {sigma}",
            d.sigma
        );
        assert!(
            (d.mu.exp() / median - 1.0).abs() < 0.05,
            "{name}: median {}",
            d.mu.exp()
        );
        assert_eq!(d.lengths.current_cap, Some(cap), "{name}");
        let tail = 1.0 - normal_cdf((cap / median).ln() / sigma);
        let n = d.lengths.requests as f64;
        let se = (tail * (1.0 - tail) / n).sqrt();
        assert!(
            (d.lengths.truncated_share() - tail).abs() < 3.0 * se + 1.0 / n,
            "{name}: truncated {} vs planted tail {tail}",
            d.lengths.truncated_share()
        );
        let expected = if tail > 0.01 {
            Some(CapChange::Raise)
        } else {
            None
        };
        assert_eq!(d.change, expected, "{name}: tail {tail}");
        let rec = tunelake::recommend::client_defaults(d, "a");
        assert_eq!(rec.is_some(), expected.is_some(), "{name}");
        if let Some(rec) = rec {
            let new_cap =
                rec.recommended_config_snippet["client_defaults"]["max_completion_tokens"]
                    .as_f64()
                    .unwrap();
            // Covers the planted 99.9th percentile, within the fit's error.
            let planted_q = median * (sigma * 3.0902).exp();
            assert!(
                new_cap > cap && (new_cap / planted_q - 1.0).abs() < 0.25,
                "{name}: {new_cap} vs {planted_q}"
            );
        }
    }
}

/// Known answer. Protocol: each self-hosted supply of the demo holds its GPUs for the whole week
/// (GPUs × the pipeline file's price × 168 h); the hosted summariser bills its token prices on
/// the tokens the lake records. The drivers must carry exactly those bills, spread so that every
/// dimension sums to the fleet's total, project them to 30 days, and rank keys by cost. An empty
/// window costs nothing and names no driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_drivers_carry_the_planted_bills() {
    use tunelake::opportunities::costs::{Billing, SupplyPrice, cost_drivers};
    let (lake, window) = demo_lake().await;
    let workloads = tunelake::workloads::characterize(&lake.ctx, &window, 42)
        .await
        .unwrap();
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let file = tunelake::config::PipelineFile::load(&pipeline).unwrap();
    let mut prices = Vec::new();
    let mut bills = Vec::new();
    for s in &file.supplies {
        let billing = match s.price.per_gpu_hour {
            Some(usd) => {
                let gpus = f64::from(s.gpus_per_replica * s.replicas);
                bills.push((s.id.clone(), gpus * usd * 168.0));
                Billing::Gpus {
                    gpus,
                    usd_per_gpu_hour: usd,
                }
            }
            None => Billing::Tokens {
                usd_per_1k_input: s.price.per_1k_input.unwrap(),
                usd_per_1k_output: s.price.per_1k_output.unwrap(),
            },
        };
        prices.push(SupplyPrice {
            supply_id: s.id.clone(),
            model: s.model.clone(),
            billing,
        });
    }
    let tokens = lake
        .ctx
        .sql("SELECT CAST(SUM(prompt_tokens) AS DOUBLE), CAST(SUM(completion_tokens) AS DOUBLE) FROM requests WHERE supply_id = 'summarize-gpt4o-mini'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let sum = |c: usize| {
        tokens[0]
            .column(c)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap()
            .value(0)
    };
    bills.push((
        "summarize-gpt4o-mini".into(),
        (sum(0) * 0.00015 + sum(1) * 0.0006) / 1e3,
    ));
    let drivers = cost_drivers(&workloads.mix, &workloads.classes, &prices, 7.0);
    assert!(drivers.unpriced.is_empty());
    // As a recommendation: a monthly budget at the projection, rounded up to $10; nothing when no
    // supply is priced.
    let rec = tunelake::recommend::cost_budget(&drivers, "a").unwrap();
    let month = drivers.total_usd * 30.0 / 7.0;
    assert_eq!(
        rec.recommended_config_snippet["monthly_budget"]["amount_usd"],
        (month / 10.0).ceil() * 10.0
    );
    let unpriced = cost_drivers(&workloads.mix, &workloads.classes, &[], 7.0);
    assert_eq!(unpriced.total_usd, 0.0);
    assert!(tunelake::recommend::cost_budget(&unpriced, "a").is_none());
    let total: f64 = bills.iter().map(|b| b.1).sum();
    assert!(
        (drivers.total_usd / total - 1.0).abs() < 1e-9,
        "{} vs {total}",
        drivers.total_usd
    );
    for (supply, bill) in &bills {
        let row = drivers
            .rows
            .iter()
            .find(|r| r.dimension == "supply" && r.key == *supply)
            .unwrap();
        assert!(
            (row.cost_usd / bill - 1.0).abs() < 1e-9,
            "{supply}: {} vs {bill}",
            row.cost_usd
        );
    }
    // chat is the only app of its supply.
    let chat = drivers
        .rows
        .iter()
        .find(|r| r.dimension == "app" && r.key == "chat")
        .unwrap();
    assert!((chat.cost_usd - 2.0 * 6.88 * 168.0).abs() < 1e-6);
    assert!((drivers.per_month(chat.cost_usd) - chat.cost_usd * 30.0 / 7.0).abs() < 1e-9);
    for dimension in ["app", "supply", "model", "class", "day"] {
        let rows: Vec<_> = drivers
            .rows
            .iter()
            .filter(|r| r.dimension == dimension)
            .collect();
        let shares: f64 = rows.iter().map(|r| r.share).sum();
        assert!((shares - 1.0).abs() < 1e-9, "{dimension}: {shares}");
        if dimension != "day" {
            assert!(
                rows.windows(2).all(|w| w[0].cost_usd >= w[1].cost_usd),
                "{dimension} ranked"
            );
        }
    }
    assert_eq!(
        drivers.rows.iter().filter(|r| r.dimension == "day").count(),
        7
    );
    // Nothing in the window: no driver.
    let empty = cost_drivers(&tunelake::workloads::Mix::default(), &[], &prices, 7.0);
    assert!(empty.rows.is_empty() && empty.total_usd == 0.0);
}

/// Known answer on the demo lake. Protocol: the generator plants one latency-tolerant app (the
/// night-time summariser: `latency_tolerant` in ground_truth.json) and three with a person waiting;
/// nothing is declared, so the inference must recover exactly that split, and the hosted
/// summariser's saving is the demo pipeline's 50 % batch discount on what its requests cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_inference_recovers_the_planted_latency_tolerant_app() {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(DEMO).join("ground_truth.json")).unwrap())
            .unwrap();
    let (lake, window) = demo_lake().await;
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/demo.toml");
    let supplies = tunelake::config::PipelineFile::load(Path::new(demo))
        .unwrap()
        .supplies;
    let found = opportunities::batch_opportunities(&lake.ctx, &window, &[], &supplies)
        .await
        .unwrap();
    for planted in truth["apps"].as_array().unwrap() {
        let name = planted["name"].as_str().unwrap();
        let b = found.iter().find(|b| b.profile.app_id == name).unwrap();
        assert_eq!(
            b.tolerance.is_some(),
            planted["latency_tolerant"].as_bool().unwrap(),
            "{name}: {b:?}"
        );
        match b.saving_usd {
            Some(saving) => assert!((saving - 0.5 * b.cost_usd.unwrap()).abs() < 1e-9),
            None => assert!(b.tolerance.is_none() || !b.hosted),
        }
    }
}
