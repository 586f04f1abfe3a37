//! Search and recommendations (issue 6): known-answer runs of the whole pipeline on a generated lake,
//! successive halving against exhaustive search, determinism, and snippet round trips.

use std::path::Path;

use chrono::NaiveDate;
use tunelake::catalog::Catalog;
use tunelake::config::Plan;
use tunelake::generate::{self, GenerateConfig};
use tunelake::knobs::ServingConfig;
use tunelake::pipeline::{self, RunSummary};
use tunelake::recommend::{SystemRecommendation, apply_snippet};
use tunelake::search::{Evaluator, ScenarioKind, SearchInput, Strategy};
use tunelake::storage::Location;
use tunelake::{calibration, ingest, workloads};

use crate::support::{SupplyToml, pipeline_toml, plan_with};

/// Days of the generated lake (≥ 3, so the bootstrap resamples days).
const DAYS: u32 = 3;
const END: &str = "2025-03-04";

/// A generated 3-day lake of 45k requests (the generator's four apps and supplies, known engine).
async fn lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate::generate(
        &Location::parse(dir.path().join("lake").to_str().unwrap(), None).unwrap(),
        &GenerateConfig {
            requests: 45_000,
            days: DAYS,
            seed: 11,
            end: NaiveDate::parse_from_str(END, "%Y-%m-%d").unwrap(),
            invalid_share: 0.0,
        },
    )
    .await
    .unwrap();
    dir
}

/// Runs the pipeline over `dir/lake` with the given supplies.
async fn run(dir: &Path, name: &str, supplies: &[SupplyToml]) -> (Plan, RunSummary) {
    let head = format!(
        "[run]\nlake = \"lake\"\nout = \"out-{name}\"\nas_of = \"{END}\"\nperiod_days = {DAYS}\nseed = 5\n"
    );
    let plan = plan_with(
        &dir.join(format!("{name}.toml")),
        &pipeline_toml(&head, supplies),
        name,
    );
    let summary = pipeline::run(&plan, &()).await.unwrap();
    (plan, summary)
}

const LLAMA_8B: &str = "meta-llama/Llama-3.1-8B-Instruct";
const LLAMA_70B: &str = "meta-llama/Llama-3.1-70B-Instruct";

/// The generator's RAG supply: TP-4 replicas of a 70B model on H100s, searching `options`.
fn rag(replicas: u32, options: &str) -> SupplyToml {
    SupplyToml {
        gpus_per_replica: Some(4),
        replicas: Some(replicas),
        p95_ttft_ms: 4000.0,
        extra: format!("options = {{ {options} }}"),
        ..SupplyToml::new("rag-llama70b-h100", LLAMA_70B, "H100-SXM")
    }
}

/// The generator's chat supply, its KV cache squeezed (the GPU is shared: 30 % of it) into blocks of
/// 128 tokens, where most of a short chat's last block is wasted; the log is a 0.5 % sample, so the
/// search plans for 200×. `options` are searched beside block size and max_num_seqs (each followed
/// by `, `).
fn squeezed_chat(replicas: u32, options: &str) -> SupplyToml {
    SupplyToml {
        replicas: Some(replicas),
        extra: format!(
            "config = {{ block_size = 128, max_num_seqs = 32, gpu_memory_utilization = 0.3, max_model_len = 4096 }}\n\
             options = {{ block_size = [16, 128], max_num_seqs = [32, 64, 128], {options}growth = 200.0 }}"
        ),
        ..SupplyToml::new("chat-llama8b-h100", LLAMA_8B, "H100-SXM")
    }
}

/// The run's stages before the search, done independently of `pipeline::run`: the ingested lake,
/// its workload classes and every supply's calibration.
async fn prepared(
    plan: &Plan,
) -> (
    ingest::Lake,
    workloads::Workloads,
    Vec<calibration::SupplyCalibration>,
) {
    let lake = ingest::ingest(&ingest::IngestInput {
        lake: Location::parse(&plan.lake, None).unwrap(),
        window: plan.window,
        app_ids: Vec::new(),
        validation: plan.validation.clone(),
        skip_bad_files: false,
    })
    .await
    .unwrap();
    let classes = workloads::characterize(&lake.ctx, &plan.window, plan.seed)
        .await
        .unwrap();
    let fitted = calibration::calibrate(
        &lake.ctx,
        &plan.supplies,
        &Catalog::bundled().unwrap(),
        &calibration::CalibrationOptions {
            seed: plan.seed,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (lake, classes, fitted)
}

/// Protocol for "the predicted impact agrees with a direct simulation": independently of the run,
/// ingest the lake, characterize and calibrate it, apply each recommendation's snippet to the
/// supply's current configuration and simulate both on the window with another seed; the p95
/// changes must fall inside the recommendation's 95 % intervals (widened by 1 point for the
/// seed's own noise, which the day bootstrap does not cover).
async fn check_against_direct_simulation(plan: &Plan, summary: &RunSummary) {
    let catalog = Catalog::bundled().unwrap();
    let (lake, classes, fitted) = prepared(plan).await;
    for (supply, fit) in plan.supplies.iter().zip(&fitted) {
        let rec = recommendation(summary, &supply.id);
        if rec.recommended_config_snippet == serde_json::json!({}) {
            continue;
        }
        let traffic = classes
            .traffic(&lake.ctx, &plan.window, Some(&supply.id))
            .await
            .unwrap();
        let input = SearchInput {
            supply,
            catalog: &catalog,
            traffic: &traffic,
            calibrated: fit.coefficients,
            seed: plan.seed + 1000,
            strategy: Strategy::Exhaustive,
        };
        let evaluator = Evaluator::new(&input).unwrap();
        let current = tunelake::deployment::current(supply).unwrap();
        let recommended = apply_snippet(&current, &rec.recommended_config_snippet).unwrap();
        let sim = |c: &ServingConfig| {
            evaluator
                .simulate(c, ScenarioKind::Window, false)
                .unwrap()
                .unwrap()
        };
        let (before, after) = (sim(&current), sim(&recommended));
        let intervals = &rec.predicted_impact.confidence_intervals;
        for (name, b, a) in [
            (
                "p95_latency_change_percent",
                before.e2e_ms.p95,
                after.e2e_ms.p95,
            ),
            (
                "p95_ttft_change_percent",
                before.ttft_ms.p95,
                after.ttft_ms.p95,
            ),
            (
                "p95_tpot_change_percent",
                before.tpot_ms.p95,
                after.tpot_ms.p95,
            ),
        ] {
            let direct = (a / b - 1.0) * 100.0;
            let [lo, hi] = intervals[name];
            eprintln!(
                "{}: {name} direct {direct:.2} % vs interval [{lo:.2}, {hi:.2}]",
                supply.id
            );
            assert!(
                lo - 1.0 <= direct && direct <= hi + 1.0,
                "{}: {name}",
                supply.id
            );
        }
    }
}

fn recommendation<'a>(summary: &'a RunSummary, supply: &str) -> &'a SystemRecommendation {
    let r = summary
        .analysis
        .recommendations
        .iter()
        .find(|r| r.target_supply_id == supply)
        .unwrap();
    eprintln!(
        "{supply}: {}\n  snippet {}\n  impact {:?}",
        r.analysis_summary, r.recommended_config_snippet, r.predicted_impact
    );
    r
}

/// Protocol: one generated lake (known α/β/γ engines), two pipeline runs with hand-written supply
/// configurations that each plant one known answer; the pipeline calibrates on the lake, searches
/// and recommends; each answer is checked on the recommendation's snippet and predicted impact.
#[tokio::test]
async fn known_answer_recommendations() {
    let dir = lake().await;
    let first = run(
        dir.path(),
        "known",
        &[
            // (a) Short conversations in a squeezed KV cache.
            squeezed_chat(1, ""),
            // (b) A code assistant dominated by long generations; speculative decoding is an option.
            SupplyToml {
                gpus_per_replica: Some(4),
                replicas: Some(2),
                per_gpu_hour: 3.431,
                p95_ttft_ms: 4000.0,
                p95_tpot_ms: 80.0,
                extra: format!(
                    "config = {{ max_num_seqs = 128 }}\n\
                     options = {{ speculative = [{{ draft_model = \"{LLAMA_8B}\", num_speculative_tokens = 4 }}] }}"
                ),
                ..SupplyToml::new("code-llama70b-a100", LLAMA_70B, "A100-80GB")
            },
            // (c) Over-provisioned: four TP-4 replicas of a 70B model for a few requests a minute.
            rag(4, r#"replicas = [1, 2, 3, 4], gpu = ["H100-SXM", "A100-80GB"]"#),
        ],
    )
    .await;

    let (plan, first) = first;
    check_against_direct_simulation(&plan, &first).await;
    let a = recommendation(&first, "chat-llama8b-h100");
    let perf = &a.recommended_config_snippet["performance_config"];
    assert!(
        perf["block_size"].as_u64().is_some_and(|b| b < 128),
        "{perf}"
    );
    assert!(
        perf["max_num_seqs"].as_u64().is_some_and(|s| s > 32),
        "{perf}"
    );
    assert!(a.predicted_impact.p95_ttft_change_percent < 0.0);

    let b = recommendation(&first, "code-llama70b-a100");
    let spec = &b.recommended_config_snippet["performance_config"]["speculative_decoding"];
    assert_eq!(
        spec["num_speculative_tokens"], 4,
        "{}",
        b.recommended_config_snippet
    );
    assert!(b.predicted_impact.p95_tpot_change_percent < 0.0);
    assert!(b.predicted_impact.confidence_intervals["p95_tpot_change_percent"][1] < 0.0);

    let c = recommendation(&first, "rag-llama70b-h100");
    assert!(c.predicted_impact.cost_change_percent < 0.0);
    let resources = &c.recommended_config_snippet["resource_config"];
    assert!(
        resources["replicas"].as_u64().is_some_and(|r| r < 4)
            || resources["gpu_type"] == "A100-80GB",
        "{resources}"
    );
    for s in &first.search {
        eprintln!(
            "{}: {} candidates, {} simulated requests vs {} exhaustive",
            s.supply_id, s.candidates, s.simulated_requests, s.exhaustive_requests
        );
    }

    // (d) Already at its optimum: the deployment that served the lake (two TP-4 replicas), where
    // (c) found one replica too few and the other options cost more or change nothing that matters.
    let second = run(
        dir.path(),
        "optimal",
        &[
            rag(
                2,
                "replicas = [1, 2, 3], max_num_batched_tokens = [8192, 16384]",
            ),
            // A self-hosted supply the lake has no requests for: nothing to size, nothing recommended.
            SupplyToml {
                extra: "options = { replicas = [1, 2] }".into(),
                ..SupplyToml::new("idle-llama8b", LLAMA_8B, "H100-SXM")
            },
        ],
    )
    .await;
    let d = recommendation(&second.1, "rag-llama70b-h100");
    assert_eq!(d.recommended_config_snippet, serde_json::json!({}));
    assert!(d.analysis_summary.contains("No change recommended"));
    let idle = recommendation(&second.1, "idle-llama8b");
    assert_eq!(idle.recommended_config_snippet, serde_json::json!({}));
    assert!(idle.analysis_summary.contains("served no requests"));
    assert_eq!(
        second.1.search[1].status,
        tunelake::recommend::Status::NoChange
    );
}

/// The snippet of a recommendation, applied to the current configuration, gives back the
/// recommended one.
#[test]
fn snippets_round_trip() {
    let supply = SupplyToml {
        gpus_per_replica: Some(4),
        per_gpu_hour: 1.0,
        p95_ttft_ms: 1.0,
        p95_tpot_ms: 1.0,
        extra: r#"config = { speculative = { draft_model = "Llama-3.2-1B", num_speculative_tokens = 2 } }"#
            .into(),
        ..SupplyToml::new("s", "Llama-3.1-70B", "H100-SXM")
    }
    .parse();
    let current = tunelake::deployment::current(&supply).unwrap();
    let changed = ServingConfig {
        gpu: "A100-80GB".into(),
        replicas: 3,
        block_size: 32,
        enable_prefix_caching: false,
        speculative: None,
        ..current.clone()
    };
    for (from, to) in [
        (&current, &changed),
        (&changed, &current),
        (&current, &current),
    ] {
        let snippet = tunelake::recommend::config_snippet(from, to);
        assert_eq!(&apply_snippet(from, &snippet).unwrap(), to, "{snippet}");
    }
}

/// On a small space (2 block sizes × 3 max_num_seqs × 3 replica counts of the chat supply at 200×
/// load), successive halving with replica bisection picks the configuration exhaustive search picks,
/// simulating fewer requests; and the search gives identical results on 1 and 2 threads.
#[tokio::test]
async fn successive_halving_finds_the_exhaustive_optimum() {
    let dir = lake().await;
    let (plan, _) = run(
        dir.path(),
        "space",
        &[squeezed_chat(2, "replicas = [1, 2, 3], ")],
    )
    .await;
    let catalog = Catalog::bundled().unwrap();
    let (lake, classes, fitted) = prepared(&plan).await;
    let supply = &plan.supplies[0];
    let traffic = classes
        .traffic(&lake.ctx, &plan.window, Some(&supply.id))
        .await
        .unwrap();
    let search = |strategy: Strategy, threads: usize| {
        let input = SearchInput {
            supply,
            catalog: &catalog,
            traffic: &traffic,
            calibrated: fitted[0].coefficients,
            seed: plan.seed,
            strategy,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| tunelake::search::search(&Evaluator::new(&input).unwrap()).unwrap())
    };
    let exhaustive = search(Strategy::Exhaustive, 2);
    let halving = search(Strategy::SuccessiveHalving, 2);
    let best = |r: &tunelake::search::SearchResult| r.best.as_ref().unwrap().config.clone();
    eprintln!(
        "exhaustive: {} simulated requests, best {}; halving: {} simulated requests, best {}",
        exhaustive.simulated_requests,
        best(&exhaustive).describe(),
        halving.simulated_requests,
        best(&halving).describe()
    );
    assert_eq!(exhaustive.candidates, 18);
    assert_eq!(best(&halving), best(&exhaustive));
    assert!(halving.simulated_requests < exhaustive.simulated_requests);
    let one_thread = search(Strategy::SuccessiveHalving, 1);
    assert_eq!(
        serde_json::to_string(&one_thread).unwrap(),
        serde_json::to_string(&halving).unwrap()
    );
}

/// Known answers of the regime split: three clear load levels give three regimes with exactly
/// those hours; two give two (they explain all the variance); rates are per second over the days.
#[test]
fn regimes_split_the_day_by_load() {
    use tunelake::search::regimes::{hour_of_day_rates, split};
    let rates: [f64; 24] = std::array::from_fn(|h| match h {
        0..=5 | 22 | 23 => 1.0,
        9..=16 => 10.0,
        _ => 5.0,
    });
    let groups = split(&rates);
    assert_eq!(
        groups,
        vec![
            vec![0, 1, 2, 3, 4, 5, 22, 23],
            vec![6, 7, 8, 17, 18, 19, 20, 21],
            (9..=16).collect::<Vec<u32>>(),
        ]
    );
    let two: [f64; 24] = std::array::from_fn(|h| if h < 12 { 1.0 } else { 4.0 });
    assert_eq!(split(&two).len(), 2);
    // Two days: 7,200 arrivals at 03:xx → 1 request/s in hour 3.
    let clock: Vec<f64> = (0..7200)
        .map(|i| 3.0 * 3600.0 + (i % 3600) as f64 + (i / 3600) as f64 * 86_400.0)
        .collect();
    let rates = hour_of_day_rates(&clock, 2.0);
    assert_eq!(rates[3], 1.0);
    assert_eq!(rates.iter().sum::<f64>(), 1.0);
}

/// Protocol: the generator's chat supply planned for 200× its observed load (its diurnal curve peaks
/// at 15:00 UTC, 1.6× the mean: ground truth). One replica serves what the bisection claims and fails
/// at 1.2× that; every hour's requests are placed in their hour; busier hours get at least as many
/// replicas, so the plan spans several counts; the peak regime holds 15:00 and the low one 03:00.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_plan_and_regimes_follow_the_diurnal_load() {
    use tunelake::search::capacity::{hourly_plan, replica_capacity};
    use tunelake::simulation::{Trace, TraceRequest};
    let dir = lake().await;
    let (plan, _) = run(dir.path(), "capacity", &[squeezed_chat(3, "")]).await;
    let catalog = Catalog::bundled().unwrap();
    let (lake, classes, fitted) = prepared(&plan).await;
    let supply = &plan.supplies[0];
    let traffic = classes
        .traffic(&lake.ctx, &plan.window, Some(&supply.id))
        .await
        .unwrap();
    let input = SearchInput {
        supply,
        catalog: &catalog,
        traffic: &traffic,
        calibrated: fitted[0].coefficients,
        seed: plan.seed,
        strategy: Strategy::SuccessiveHalving,
    };
    let evaluator = Evaluator::new(&input).unwrap();
    let config = evaluator.current().clone();
    let capacity = replica_capacity(&evaluator, &config).unwrap().unwrap();

    // At the capacity one replica meets the SLOs; at 1.2× it does not.
    let one = ServingConfig {
        replicas: 1,
        ..config.clone()
    };
    let peak = evaluator
        .scenarios(config.block_size)
        .unwrap()
        .peak
        .clone()
        .unwrap();
    let span = peak.requests().last().unwrap().arrival_s - peak.requests()[0].arrival_s;
    let rate = peak.len() as f64 / span;
    let meets = |factor: f64| {
        let m = capacity.requests_per_s * factor / rate;
        let trace = Trace::new(
            peak.requests()
                .iter()
                .map(|r| TraceRequest {
                    arrival_s: r.arrival_s / m,
                    ..r.clone()
                })
                .collect(),
        )
        .unwrap();
        let report = evaluator
            .simulate_trace(&one, &trace, "capacity/peak", false)
            .unwrap();
        report.ttft_ms.p95 <= supply.slo.p95_ttft_ms
            && report.tpot_ms.p95 <= supply.slo.p95_tpot_ms
            && (report.rejected + report.timed_out) as f64 / report.requests as f64
                <= supply.slo.error_budget
    };
    assert!(meets(1.0), "{capacity:?}");
    assert!(!meets(1.2), "{capacity:?}");

    let hours = (plan.window.hours().ceil()) as u32;
    let hourly = hourly_plan(&evaluator, &config, capacity, 0.1, hours).unwrap();
    assert_eq!(hourly.hours.len(), hours as usize);
    assert_eq!(
        hourly.hours.iter().map(|h| h.requests).sum::<u64>(),
        traffic.len() as u64
    );
    let mut by_load: Vec<(u64, u32)> = hourly
        .hours
        .iter()
        .map(|h| (h.requests, h.replicas))
        .collect();
    by_load.sort();
    assert!(by_load.windows(2).all(|w| w[0].1 <= w[1].1), "{by_load:?}");
    let (min, max) = (by_load[0].1, by_load[by_load.len() - 1].1);
    assert!(
        max > min,
        "a diurnal load needs different counts: {by_load:?}"
    );

    let best = tunelake::search::search(&evaluator).unwrap().best.unwrap();
    let schedule = tunelake::search::regimes::schedule(&input, &best, plan.window.days())
        .unwrap()
        .expect("the day swings enough to schedule");
    let of = schedule.regime_of_hour();
    let names: Vec<&str> = schedule.regimes.iter().map(|r| r.name).collect();
    assert_eq!(names[of[15]], "peak", "{names:?} {of:?}");
    assert_eq!(names[of[3]], "low", "{names:?} {of:?}");
}
