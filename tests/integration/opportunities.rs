//! Fleet and application findings: known answers on the generated demo lake (whose
//! `ground_truth.json` records what was planted) and the cases where nothing is recommended.

use std::path::Path;

use chrono::{TimeZone, Utc};
use tunelake::config::{ValidationSettings, Window};
use tunelake::ingest::{self, IngestInput};
use tunelake::opportunities::cache::{Lookup, Policy, replay};
use tunelake::opportunities::client::{CapChange, normal_cdf};
use tunelake::opportunities::{self, AppCache};
use tunelake::storage::Location;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/demo");

/// The demo lake's week, ingested.
async fn demo_lake() -> (ingest::Lake, Window) {
    let window = Window::ending_at(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(), 7);
    let lake = ingest::ingest(&IngestInput {
        lake: Location::parse(DEMO, None).unwrap(),
        window,
        app_ids: vec![],
        validation: ValidationSettings::default(),
        skip_bad_files: false,
    })
    .await
    .unwrap();
    (lake, window)
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
