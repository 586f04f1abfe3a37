//! The synthetic lake generator: determinism, contract, documented shapes, ground-truth engine.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use tunelake::generate::{self, APPS, GenerateConfig, SUPPLIES};
use tunelake::storage::Location;

use crate::import::read_table;

fn config(requests: u64, days: u32, seed: u64) -> GenerateConfig {
    GenerateConfig {
        requests,
        days,
        seed,
        end: NaiveDate::from_ymd_opt(2025, 3, 3).unwrap(),
        invalid_share: 0.001,
    }
}

async fn lake(config: &GenerateConfig) -> (tempfile::TempDir, generate::GroundTruth) {
    let dir = tempfile::tempdir().unwrap();
    let out = Location::parse(dir.path().to_str().unwrap(), None).unwrap();
    let truth = generate::generate(&out, config).await.unwrap();
    (dir, truth)
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::test]
async fn same_seed_same_bytes_other_seed_differs() {
    let (a, _) = lake(&config(20_000, 2, 7)).await;
    let (b, _) = lake(&config(20_000, 2, 7)).await;
    let (c, _) = lake(&config(20_000, 2, 8)).await;
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert!(
        fa.keys()
            .any(|k| k.starts_with("requests/date=2025-03-01/"))
    );
    assert!(
        fa.keys()
            .any(|k| k.starts_with("gpu_metrics/date=2025-03-02/"))
    );
    assert!(fa.contains_key("ground_truth.json"));
    assert_eq!(fa, fb);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fc.keys().collect::<Vec<_>>());
    assert_ne!(
        fa["requests/date=2025-03-01/part-chat-00000.parquet"],
        fc["requests/date=2025-03-01/part-chat-00000.parquet"]
    );
}

#[tokio::test]
async fn generated_lake_matches_its_ground_truth() {
    let cfg = config(40_000, 2, 11);
    let (dir, truth) = lake(&cfg).await;
    let r = concat(&read_table(dir.path(), "requests"));
    let g = concat(&read_table(dir.path(), "gpu_metrics"));
    assert_eq!(truth.requests, 40_000);
    assert_eq!(r.num_rows() as u64, truth.request_rows);
    assert_eq!(g.num_rows() as u64, truth.gpu_metrics_rows);
    // 3 self-hosted supplies × 2 replicas × 1440 windows × 2 days.
    assert_eq!(g.num_rows(), 3 * 2 * 1440 * 2);

    // Injected invalid rows, exactly as recorded.
    let app = col::<StringArray>(&r, "app_id");
    let prompt = col::<Int64Array>(&r, "prompt_tokens");
    let status = col::<StringArray>(&r, "status");
    let ids = col::<StringArray>(&r, "request_id");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in ids.iter().flatten() {
        *seen.entry(id).or_default() += 1;
    }
    let found = BTreeMap::from([
        ("null_app_id".to_string(), app.null_count() as u64),
        (
            "negative_tokens".to_string(),
            prompt.iter().flatten().filter(|&p| p < 0).count() as u64,
        ),
        (
            "duplicate_request_id".to_string(),
            seen.values().map(|&n| n as u64 - 1).sum(),
        ),
        (
            "unknown_status".to_string(),
            status.iter().flatten().filter(|&s| s == "unknown").count() as u64,
        ),
    ]);
    assert_eq!(found, truth.invalid);
    assert_eq!(truth.invalid.values().sum::<u64>(), 40);
    assert_eq!(
        truth.request_rows,
        40_000 + truth.invalid["duplicate_request_id"]
    );

    // Shares as configured; medians within 10 % of the documented parameters.
    let completion = col::<Int64Array>(&r, "completion_tokens");
    for (shape, realised) in APPS.iter().zip(&truth.apps) {
        assert!(
            (realised.realised_share - shape.share).abs() < 1e-3,
            "{}",
            shape.name
        );
        let rows: Vec<usize> = (0..r.num_rows())
            .filter(|&i| app.is_valid(i) && app.value(i) == shape.name && prompt.value(i) >= 0)
            .collect();
        let share = rows.len() as f64 / 40_000.0;
        assert!(
            (share - shape.share).abs() < 2e-3,
            "{} share {share}",
            shape.name
        );
        let p = median(rows.iter().map(|&i| prompt.value(i) as f64).collect());
        let c = median(
            rows.iter()
                .filter(|&&i| status.value(i) == "ok")
                .map(|&i| completion.value(i) as f64)
                .collect(),
        );
        assert!(
            (p / shape.prompt_median - 1.0).abs() < 0.10,
            "{} prompt median {p}",
            shape.name
        );
        assert!(
            (c / shape.completion_median - 1.0).abs() < 0.10,
            "{} completion median {c}",
            shape.name
        );
    }

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ground_truth.json")).unwrap())
            .unwrap();
    assert_eq!(json["supplies"][0]["alpha_ms"], 6.0);
    assert_eq!(json["invalid"]["null_app_id"], truth.invalid["null_app_id"]);
}

/// Regress mean_itl_ms on num_running per supply and recover α and β within 3 %. Needs a realistic
/// load (one replica-window must decode enough tokens), hence 300k requests in one day.
#[tokio::test]
async fn gpu_metrics_recover_the_engine() {
    let mut cfg = config(300_000, 1, 5);
    cfg.invalid_share = 0.0;
    let (dir, truth) = lake(&cfg).await;
    assert!(truth.invalid.values().all(|&n| n == 0));
    let g = concat(&read_table(dir.path(), "gpu_metrics"));
    let supply = col::<StringArray>(&g, "supply_id");
    let n = col::<Float64Array>(&g, "num_running");
    let itl = col::<Float64Array>(&g, "mean_itl_ms");
    let kv = col::<Float64Array>(&g, "kv_cache_usage");
    let util = col::<Float64Array>(&g, "gpu_util");
    assert!((0..g.num_rows()).all(|i| (0.0..=1.0).contains(&kv.value(i))));
    assert!((0..g.num_rows()).all(|i| (0.0..=1.0).contains(&util.value(i))));
    for s in SUPPLIES.iter().filter(|s| s.self_hosted()) {
        let pts: Vec<(f64, f64)> = (0..g.num_rows())
            .filter(|&i| supply.value(i) == s.name && itl.is_valid(i))
            .map(|i| (n.value(i), itl.value(i)))
            .collect();
        let k = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / k,
            pts.iter().map(|p| p.1).sum::<f64>() / k,
        );
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let beta = sxy / sxx;
        let alpha = my - beta * mx;
        assert!(
            (alpha / s.alpha_ms - 1.0).abs() < 0.03,
            "{}: α {alpha}",
            s.name
        );
        assert!(
            (beta / s.beta_ms - 1.0).abs() < 0.03,
            "{}: β {beta} (n̄ {mx})",
            s.name
        );
    }
}
