//! Calibration: known answers on a generated lake, and real-data protocols (each test states which
//! part of the data is fitted and which is predicted, so no scored measurement leaks into a fit).

use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use tunelake::calibration::{self, CalibrationOptions, EkfOptions, TelemetryWindow};
use tunelake::catalog::Catalog;
use tunelake::config::{Overrides, PipelineFile, ValidationSettings, Window};
use tunelake::generate::{self, GenerateConfig, SUPPLIES};
use tunelake::ingest::{self, IngestInput};
use tunelake::storage::Location;

fn demo_supplies() -> Vec<tunelake::config::Supply> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    PipelineFile::load(&path)
        .unwrap()
        .plan(&path, &Overrides::default(), &Catalog::bundled().unwrap())
        .unwrap()
        .supplies
}

/// Known answer. Protocol: the generator's telemetry comes from ITL = α + β·n with unbiased noise and
/// its TTFT from queue + α + γ·uncached; calibration sees only the lake. The LS fit must recover α, β
/// (and γ) within 3 %, and the EKF, started 50 % above the truth, must converge within 3 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_the_generators_engine() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Location::parse(dir.path().to_str().unwrap(), None).unwrap();
    let end = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
    generate::generate(
        &lake,
        &GenerateConfig {
            requests: 300_000,
            days: 1,
            seed: 7,
            end,
            invalid_share: 0.0,
        },
    )
    .await
    .unwrap();
    let as_of = Utc.from_utc_datetime(&end.and_hms_opt(0, 0, 0).unwrap());
    let ingested = ingest::ingest(&IngestInput {
        lake,
        window: Window::ending_at(as_of, 1),
        app_ids: vec![],
        validation: ValidationSettings::default(),
        skip_bad_files: false,
    })
    .await
    .unwrap();
    let options = CalibrationOptions {
        max_backtest_requests: 3_000,
        ..CalibrationOptions::default()
    };
    let results = calibration::calibrate(
        &ingested.ctx,
        &demo_supplies(),
        &Catalog::bundled().unwrap(),
        &options,
    )
    .await
    .unwrap();
    let rel = |x: f64, t: f64| (x / t - 1.0).abs();
    for truth in SUPPLIES.iter() {
        let c = results.iter().find(|c| c.supply_id == truth.name).unwrap();
        if !truth.self_hosted() {
            assert_eq!(c.status, calibration::CalibrationStatus::Skipped);
            continue;
        }
        assert_eq!(c.status, calibration::CalibrationStatus::Fitted);
        let d = c.decode.as_ref().unwrap();
        let p = c.prefill.as_ref().unwrap();
        println!(
            "{}: α {:.3}±{:.3} (truth {}), β {:.4}±{:.4} (truth {}), γ {:.4}±{:.4} (truth {}), c0 {:.2}; batch {:.1}..{:.1}, {} windows ({} rejected)",
            truth.name,
            d.alpha.value,
            d.alpha.se,
            truth.alpha_ms,
            d.beta.value,
            d.beta.se,
            truth.beta_ms,
            p.per_token.value,
            p.per_token.se,
            truth.gamma_ms_per_token,
            p.overhead.value,
            d.batch_min,
            d.batch_max,
            d.windows_used,
            d.windows_rejected
        );
        assert!(rel(d.alpha.value, truth.alpha_ms) < 0.03, "{}", truth.name);
        assert!(rel(d.beta.value, truth.beta_ms) < 0.03, "{}", truth.name);
        assert!(rel(p.per_token.value, truth.gamma_ms_per_token) < 0.03);
        assert!(d.alpha.se > 0.0 && d.beta.se > 0.0 && p.per_token.se > 0.0);
        let b = c.backtest.as_ref().unwrap();
        println!(
            "  backtest {} requests: TTFT p50 {:+.1} % p95 {:+.1} %, TPOT p50 {:+.1} % p95 {:+.1} %, E2E p50 {:+.1} % p95 {:+.1} %",
            b.requests,
            b.ttft.error_p50_pct,
            b.ttft.error_p95_pct,
            b.tpot.error_p50_pct,
            b.tpot.error_p95_pct,
            b.e2e.error_p50_pct,
            b.e2e.error_p95_pct
        );
        // The generator's engine lets prefill run beside decode for free; the simulator's chunked
        // prefill shares steps with decodes, so long-prompt supplies (RAG, code) see slower decode
        // there by construction. Only the short-prompt chat supply is a like-for-like replay.
        assert!(b.ttft.error_p50_pct.is_finite() && b.e2e.error_p95_pct.is_finite());
        if truth.name == "chat-llama8b-h100" {
            assert!(b.tpot.error_p50_pct.abs() < 10.0 && b.e2e.error_p50_pct.abs() < 10.0);
        }

        // EKF from a prior 50 % above the truth. Its measurement noise is set to the generator's
        // documented ITL noise scale (σ = 0.05/√tokens, under 0.5 % for any busy window).
        let telemetry = ingested
            .ctx
            .sql(&format!(
                "SELECT * FROM gpu_metrics WHERE supply_id = '{}' ORDER BY ts, instance_id",
                truth.name
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let windows: Vec<TelemetryWindow> = calibration::windows_from_batches(&telemetry).unwrap();
        let ekf = calibration::track(
            &windows,
            (1.5 * truth.alpha_ms, 1.5 * truth.beta_ms),
            0.5,
            truth.alpha_ms,
            truth.max_num_seqs,
            &EkfOptions {
                itl_rel_sd: 0.005,
                ..EkfOptions::default()
            },
        );
        println!(
            "  EKF from +50 %: α {:.3} β {:.4} ({} updates, {} rejected, {} unidentified)",
            ekf.alpha, ekf.beta, ekf.updates, ekf.rejected, ekf.unidentified
        );
        assert!(rel(ekf.alpha, truth.alpha_ms) < 0.03, "{}", truth.name);
        assert!(rel(ekf.beta, truth.beta_ms) < 0.03, "{}", truth.name);
    }
    let table = tunelake::sinks::tables::calibration(&results).unwrap();
    assert_eq!(table.rows(), results.len());
}

const INFERNO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/llm-inferno-tuner/tuner-exp13.csv"
);

/// llm-inferno tuner-exp13: 85 real windows of vLLM serving opt-125m on one A100.
/// Protocol: fit (LS and EKF) on the first 60 windows only; predict avgITL and avgWait of the other 26
/// from their own inputs (batch = avgConcurrency for ITL; arrival rate, output tokens and
/// max_num_seqs = 64 for the queueing model's wait). opt-125m is not in the catalog, so the prior is
/// vague (α = 2 ms, β = 0.02 ms, sd 10× the mean): it carries no information about this engine.
#[test]
fn inferno_exp13_fit_first_60_predict_last_25() {
    let imported = tunelake::ingest::import::read(
        tunelake::ingest::import::Format::Inferno,
        Path::new(INFERNO),
        &Default::default(),
    )
    .unwrap();
    let windows = calibration::windows_from_batches(&[imported.gpu_metrics.unwrap()]).unwrap();
    // The file has 86 windows (SOURCE.md); all after the 60th are predicted.
    assert_eq!(windows.len(), 86);
    let (train, test) = windows.split_at(60);
    let prior = calibration::EngineCoefficients {
        alpha_ms: 2.0,
        beta_ms: 0.02,
        prefill_ms_per_token: 0.0,
        request_overhead_ms: 0.0,
    };
    let fit = calibration::fit_decode(train, &prior, 10.0, &Default::default()).unwrap();
    let observed: Vec<f64> = test.iter().map(|w| w.itl_ms.unwrap()).collect();
    let ls: Vec<f64> = test
        .iter()
        .map(|w| fit.alpha.value + fit.beta.value * w.batch)
        .collect();
    let ekf = calibration::track(train, (2.0, 0.02), 10.0, 0.0, 64, &EkfOptions::default());
    let inputs = |w: &TelemetryWindow, batch| calibration::QueueInputs {
        lambda_per_ms: w.requests_per_s.unwrap() / 1000.0,
        tokens_per_request: w.tokens_per_request.unwrap(),
        prefill_ms: 0.0,
        max_batch: 64,
        batch,
    };
    let ekf_itl: Vec<f64> = test
        .iter()
        .map(|w| {
            calibration::ekf::predict(ekf.alpha, ekf.beta, &inputs(w, Some(w.batch)), 1024).itl_ms
        })
        .collect();
    // Without the observed batch: the queueing model predicts it from the arrival rate.
    let model_only: Vec<_> = test
        .iter()
        .map(|w| calibration::ekf::predict(ekf.alpha, ekf.beta, &inputs(w, None), 1024))
        .collect();
    let model_itl: Vec<f64> = model_only.iter().map(|p| p.itl_ms).collect();
    let batch_mape = calibration::mape(
        &test.iter().map(|w| w.batch).collect::<Vec<_>>(),
        &model_only.iter().map(|p| p.mean_batch).collect::<Vec<_>>(),
    );
    let wait_obs: Vec<f64> = test.iter().map(|w| w.queue_ms.unwrap()).collect();
    let wait_err = wait_obs
        .iter()
        .zip(&model_only)
        .map(|(o, p)| (p.wait_ms - o).abs())
        .sum::<f64>()
        / wait_obs.len() as f64;
    println!(
        "inferno exp13, fit on windows 1-60, predict 61-86:\n  LS  α {:.4}±{:.4} ms, β {:.5}±{:.5} ms (batch {:.0}..{:.0}): ITL MAPE {:.2} %\n  EKF α {:.4}, β {:.5} ({} updates, {} rejected): ITL MAPE {:.2} % at the observed batch, {:.2} % with the batch predicted by the queueing model (batch MAPE {:.1} %)\n  avgWait: observed mean {:.4} ms, mean absolute error of the queueing model {:.4} ms",
        fit.alpha.value,
        fit.alpha.se,
        fit.beta.value,
        fit.beta.se,
        fit.batch_min,
        fit.batch_max,
        calibration::mape(&observed, &ls),
        ekf.alpha,
        ekf.beta,
        ekf.updates,
        ekf.rejected,
        calibration::mape(&observed, &ekf_itl),
        calibration::mape(&observed, &model_itl),
        batch_mape,
        wait_obs.iter().sum::<f64>() / wait_obs.len() as f64,
        wait_err,
    );
    // The target (≤ 5 %) is met by the tracking filter; the static LS line, fitted on batches 21-57,
    // extrapolates to the later, busier windows (46-62) slightly worse (5.1 %).
    assert!(calibration::mape(&observed, &ekf_itl) <= 5.0);
    assert!(calibration::mape(&observed, &ls) <= 6.0);
    assert!(calibration::mape(&observed, &model_itl) <= 10.0);
}

const BURSTGPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/vllm-burstgpt-replay-logs"
);

/// BurstGPT replay (Llama-3.2-1B, one 24 GiB GPU of unstated model: A10G assumed for the prior).
/// Protocol: the decode model (ITL = num_running ÷ generation throughput per stats line) is fitted on
/// the engine stats of the low scales S ≤ 500 only; prefill γ and the per-request offset c₀ are
/// fitted on those runs' TTFTs. The runs at S ≥ 600 are then replayed through the simulator and their
/// per-request TTFT and E2E p50 / p95 scored. No held-out run's stats or latencies enter the fit.
/// The bounds are regression guards (measured when set: median |error| 25 %, E2E p95 −7 to −14 %);
/// TTFT p50 is under-predicted by ~80 % on every held-out run, so it has none yet.
#[test]
fn burstgpt_fit_low_scales_predict_high_scales() {
    use tunelake::ingest::import::{Format, ImportOptions, read};
    use tunelake::simulation::{Deployment, Percentiles, SimOptions, simulate};
    let load = |scale: u32| {
        read(
            Format::Burstgpt,
            Path::new(BURSTGPT),
            &ImportOptions {
                scale: Some(scale),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let c = Catalog::bundled().unwrap();
    let mut dep = Deployment::new(
        c.gpu("A10G").unwrap().clone(),
        c.model("Llama-3.2-1B").unwrap().clone(),
        1,
        1,
    );
    let (train, test) = (
        [100, 200, 300, 400, 500],
        [600, 700, 800, 900, 1000, 1500, 2000],
    );
    let mut windows = Vec::new();
    let mut prefill = Vec::new();
    let mut context = Vec::new();
    for s in train {
        let run = load(s);
        windows.extend(calibration::windows_from_batches(&[run.gpu_metrics.unwrap()]).unwrap());
        let r = run.requests.unwrap();
        let f = |n: &str| {
            arrow::compute::cast(
                r.column_by_name(n).unwrap(),
                &arrow::datatypes::DataType::Float64,
            )
            .unwrap()
        };
        let (p, o, t) = (f("prompt_tokens"), f("completion_tokens"), f("ttft_ms"));
        let [p, o, t] = [&p, &o, &t].map(|a| {
            a.as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap()
                .values()
                .to_vec()
        });
        for i in 0..p.len() {
            prefill.push(calibration::PrefillSample {
                uncached_tokens: p[i],
                service_ms: t[i],
            });
            context.push(p[i] + o[i] / 2.0);
        }
    }
    let prior =
        calibration::roofline_prior(&dep, context.iter().sum::<f64>() / context.len() as f64);
    let decode = calibration::fit_decode(&windows, &prior, 0.5, &Default::default()).unwrap();
    let pre = calibration::fit_prefill(&prefill, &prior, 0.5, &Default::default()).unwrap();
    let coefficients = calibration::EngineCoefficients {
        alpha_ms: decode.alpha.value,
        beta_ms: decode.beta.value,
        prefill_ms_per_token: pre.per_token.value,
        request_overhead_ms: pre.overhead.value,
    };
    dep.step_model = coefficients.step_model(1.5);
    let extra =
        (coefficients.request_overhead_ms - coefficients.alpha_ms - coefficients.beta_ms).max(0.0);
    println!(
        "\nburstgpt: fit on S ≤ 500: α {:.3}±{:.3} β {:.4}±{:.4} (batch {:.0}..{:.0}, {} windows), γ {:.5}±{:.5}, c0 {:.1}",
        decode.alpha.value,
        decode.alpha.se,
        decode.beta.value,
        decode.beta.se,
        decode.batch_min,
        decode.batch_max,
        decode.windows_used,
        pre.per_token.value,
        pre.per_token.se,
        pre.overhead.value
    );
    let mut errors = Vec::new();
    let mut e2e_p95_errors = Vec::new();
    for s in test {
        let r = load(s).requests.unwrap();
        let trace = tunelake::workloads::trace::from_requests(
            std::slice::from_ref(&r),
            dep.config.block_size,
        )
        .unwrap();
        let sim = simulate(
            &dep,
            &trace,
            &SimOptions {
                seed: 42,
                ..Default::default()
            },
        )
        .unwrap();
        let f = |n: &str| {
            r.column_by_name(n)
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let (mut t, mut e) = (f("ttft_ms"), f("e2e_ms"));
        let (ot, oe) = (
            Percentiles::from_values(&mut t),
            Percentiles::from_values(&mut e),
        );
        let err = [
            (sim.ttft_ms.p50 + extra) / ot.p50,
            (sim.ttft_ms.p95 + extra) / ot.p95,
            (sim.e2e_ms.p50 + extra) / oe.p50,
            (sim.e2e_ms.p95 + extra) / oe.p95,
        ]
        .map(|x| 100.0 * (x - 1.0));
        println!(
            "  S={s:<5} TTFT p50 {:>7.1} vs {:>7.1} ({:+.0} %), p95 {:>7.1} vs {:>7.1} ({:+.0} %); E2E p50 {:>8.1} vs {:>8.1} ({:+.0} %), p95 {:>8.1} vs {:>8.1} ({:+.0} %)",
            sim.ttft_ms.p50 + extra,
            ot.p50,
            err[0],
            sim.ttft_ms.p95 + extra,
            ot.p95,
            err[1],
            sim.e2e_ms.p50 + extra,
            oe.p50,
            err[2],
            sim.e2e_ms.p95 + extra,
            oe.p95,
            err[3]
        );
        errors.extend(err);
        e2e_p95_errors.push(err[3]);
    }
    let mut abs: Vec<f64> = errors.iter().map(|x| x.abs()).collect();
    abs.sort_by(f64::total_cmp);
    println!(
        "  median |error| over the held-out runs: {:.1} %",
        abs[abs.len() / 2]
    );
    assert!(abs.iter().all(|x| x.is_finite()));
    assert!(abs[abs.len() / 2] <= 35.0);
    assert!(
        e2e_p95_errors.iter().all(|e| e.abs() <= 25.0),
        "E2E p95 errors {e2e_p95_errors:?}"
    );
}
