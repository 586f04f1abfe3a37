//! Commands over a pipeline file: `run`, `calibrate`, `validate`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tunelake::catalog::Catalog;
use tunelake::config::{Overrides, Plan};
use tunelake::pipeline::{self, RunSummary};
use tunelake::recommend::Status;

use super::args::{DEMO_PIPELINE, RunFlags};
use super::terminal::{DayBar, Spinner};
use tunelake::backfill::{BackfillRequest, DayOutcome, DayResult};

fn plan(pipeline: &Path, overrides: &Overrides) -> tunelake::Result<Plan> {
    pipeline::load_plan(pipeline, overrides, &Catalog::bundled()?)
}

pub async fn run(pipeline: Option<PathBuf>, flags: RunFlags, json: bool) -> anyhow::Result<()> {
    let path = pipeline.unwrap_or_else(|| PathBuf::from(DEMO_PIPELINE));
    let plan = plan(
        &path,
        &Overrides {
            as_of: flags.as_of,
            out: flags.out,
            run_id: flags.run_id,
            skip_bad_files: flags.skip_bad_files,
        },
    )?;
    let spinner = Spinner::new();
    let summary = pipeline::run(&plan, &spinner)
        .await
        .with_context(|| format!("run {} of {}", plan.run_id, path.display()))?;
    spinner.finish();
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(summary: &RunSummary) {
    println!("run {} committed to {}", summary.run_id, summary.out);
    for (table, rows) in &summary.rows {
        println!("  {table:<20} {rows:>10} rows");
    }
    let quarantined: u64 = summary.requests.quarantined.values().sum::<u64>()
        + summary.gpu_metrics.quarantined.values().sum::<u64>();
    println!(
        "  requests read {} (valid {}), gpu_metrics read {} (valid {}), quarantined {}",
        summary.requests.rows_read,
        summary.requests.rows_valid,
        summary.gpu_metrics.rows_read,
        summary.gpu_metrics.rows_valid,
        quarantined
    );
    println!(
        "  reports: {dir}/report.html (open in a browser), report.md, report.json; snippets under snippets/<supply_id>/",
        dir = format_args!("{}/_runs/run_id={}", summary.out, summary.run_id)
    );
    for (s, r) in summary.search.iter().zip(&summary.analysis.recommendations) {
        println!(
            "\n[{}] {} ({} candidates, {} simulated requests)\n  {}",
            s.supply_id, s.status, s.candidates, s.simulated_requests, r.analysis_summary
        );
        if s.status == Status::Recommended {
            println!("  snippet: {}", r.recommended_config_snippet);
        }
    }
}

pub async fn backfill(request: &BackfillRequest, json: bool) -> anyhow::Result<()> {
    let days = (request.to - request.from).num_days().max(0) as u64 + 1;
    let bar = DayBar::new(days);
    let results = tunelake::backfill::backfill(
        request,
        &Catalog::bundled()?,
        &|index, date| bar.day(index, date),
        &bar,
    )
    .await
    .with_context(|| format!("backfilling {}", request.pipeline.display()))?;
    bar.finish();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            let (outcome, message) = match &r.outcome {
                DayOutcome::Committed => ("committed", ""),
                DayOutcome::AlreadyCommitted => ("already committed", ""),
                DayOutcome::Locked { message } => ("locked", message.as_str()),
                DayOutcome::Failed { message } => ("FAILED", message.as_str()),
            };
            println!(
                "{} {:<10} {outcome:<18} {:>7.1} s  {message}",
                r.date, r.run_id, r.seconds
            );
        }
    }
    let unfinished: Vec<&DayResult> = tunelake::backfill::unfinished(&results).collect();
    let failed = unfinished
        .iter()
        .filter(|r| matches!(r.outcome, DayOutcome::Failed { .. }))
        .count();
    let summary = format!(
        "{} of {} days committed, {} skipped as already committed, {} locked, {failed} failed",
        results
            .iter()
            .filter(|r| r.outcome == DayOutcome::Committed)
            .count(),
        results.len(),
        results
            .iter()
            .filter(|r| r.outcome == DayOutcome::AlreadyCommitted)
            .count(),
        unfinished.len() - failed,
    );
    eprintln!("{summary}");
    if unfinished.is_empty() {
        Ok(())
    } else if failed > 0 {
        Err(anyhow::anyhow!("backfill incomplete: {summary}"))
    } else {
        // Only locked days: the same exit status as a locked run, so a scheduler retries later.
        Err(tunelake::Error::DaysLocked {
            run_ids: unfinished.iter().map(|r| r.run_id.clone()).collect(),
        }
        .into())
    }
}

pub async fn calibrate(
    pipeline: Option<PathBuf>,
    as_of: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let path = pipeline.unwrap_or_else(|| PathBuf::from(DEMO_PIPELINE));
    let plan = plan(
        &path,
        &Overrides {
            as_of,
            ..Overrides::default()
        },
    )?;
    let results = pipeline::calibrate(&plan)
        .await
        .with_context(|| format!("calibrating {}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_calibration(&results);
    }
    Ok(())
}

pub fn validate(pipeline: &Path) -> anyhow::Result<()> {
    let plan = plan(pipeline, &Overrides::default())?;
    println!(
        "{}: ok ({} supplies, window {} .. {})",
        pipeline.display(),
        plan.supplies.len(),
        plan.window.start.to_rfc3339(),
        plan.window.end.to_rfc3339()
    );
    Ok(())
}

fn print_calibration(results: &[tunelake::calibration::SupplyCalibration]) {
    for c in results {
        println!("{} ({})", c.supply_id, c.status);
        if let (Some(d), Some(p), Some(prior)) = (&c.decode, &c.prefill, c.prior) {
            println!(
                "  decode  α {:.4} ± {:.4} ms (prior {:.4}, shrinkage {:.0} %)   β {:.5} ± {:.5} ms (prior {:.5}, shrinkage {:.0} %)",
                d.alpha.value,
                d.alpha.se,
                prior.alpha_ms,
                100.0 * d.alpha.shrinkage,
                d.beta.value,
                d.beta.se,
                prior.beta_ms,
                100.0 * d.beta.shrinkage
            );
            println!(
                "          {} windows ({} rejected), batch {:.1}..{:.1}, ITL residual sd {:.3} ms",
                d.windows_used, d.windows_rejected, d.batch_min, d.batch_max, d.sigma_ms
            );
            println!(
                "  prefill γ {:.5} ± {:.5} ms/token, c₀ {:.2} ± {:.2} ms ({} requests)",
                p.per_token.value, p.per_token.se, p.overhead.value, p.overhead.se, p.requests_used
            );
        }
        if let Some(e) = &c.ekf {
            println!(
                "  EKF     α {:.4} ± {:.4}, β {:.5} ± {:.5} ({} updates, {} rejected)",
                e.alpha_ms, e.alpha_sd, e.beta_ms, e.beta_sd, e.updates, e.rejected
            );
        }
        if let Some(b) = &c.backtest {
            println!(
                "  backtest over {} requests (predicted vs observed, ms):",
                b.requests
            );
            for (name, m) in [("TTFT", b.ttft), ("TPOT", b.tpot), ("E2E", b.e2e)] {
                println!(
                    "    {name:<5} p50 {:>9.1} vs {:>9.1} ({:+.1} %)   p95 {:>9.1} vs {:>9.1} ({:+.1} %)",
                    m.predicted_p50,
                    m.observed_p50,
                    m.error_p50_pct,
                    m.predicted_p95,
                    m.observed_p95,
                    m.error_p95_pct
                );
            }
        }
    }
}
