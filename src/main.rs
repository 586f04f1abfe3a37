//! The `tunelake` command: a thin layer over the library. Exit codes: 0 success, 1 run failed,
//! 2 bad usage or configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tunelake::catalog::Catalog;
use tunelake::config::{Overrides, PipelineFile};
use tunelake::storage::Location;

#[derive(Parser)]
#[command(
    name = "tunelake",
    version,
    about = "Turns an LLM-serving fleet's request logs and GPU telemetry into tuning recommendations",
    long_about = "tunelake reads request logs and GPU telemetry from a Parquet data lake (local or S3), \
                  extracts features with SQL, and writes output tables, a manifest and reports back. \
                  It is meant to run as a scheduled batch job (cron, Airflow)."
)]
struct Cli {
    /// Log format on stderr: human-readable text or one JSON object per line for orchestrators.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Log level filter (tracing's RUST_LOG syntax), e.g. `debug` or `tunelake=debug`.
    #[arg(long, default_value = "info", global = true, env = "TUNELAKE_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline: ingest the window, extract features, write the outputs and commit the run.
    ///
    /// With no PIPELINE, runs `pipelines/demo.toml` on the demo lake shipped in `datasets/demo/`.
    Run {
        /// Pipeline file (TOML).
        pipeline: Option<PathBuf>,
        #[command(flatten)]
        overrides: RunFlags,
        /// Print the run summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Fit each self-hosted supply's engine model to the window's telemetry and requests, and show
    /// how well the calibrated simulator reproduces that window (the backtest), without writing
    /// anything. `run` writes the same as the `calibration` table.
    ///
    /// Per supply: decode ITL = α + β·batch and prefill TTFT = c₀ + γ·tokens with standard errors
    /// and the share of each coefficient that comes from the roofline prior (shrinkage), the EKF's
    /// final α, β, and predicted vs observed p50 / p95 TTFT, TPOT and E2E.
    Calibrate {
        /// Pipeline file (TOML). Default: pipelines/demo.toml.
        pipeline: Option<PathBuf>,
        /// End of the analysis window (exclusive): YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        as_of: Option<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a pipeline file (keys, types, catalog entries, SLOs) without reading any data.
    Validate {
        /// Pipeline file (TOML).
        pipeline: PathBuf,
    },
    /// Replay a request trace through the serving-engine simulator for one supply's deployment.
    ///
    /// The trace is a requests Parquet file or folder (e.g. a lake's `requests/`, written by
    /// `tunelake import` or `generate`) or a CSV with the contract's column names. The deployment is
    /// the supply's current configuration from the pipeline file, changed by any `--set key=value`
    /// (engine settings as named in the pipeline's `config` table, plus `gpu`,
    /// `tensor_parallel_size`, `replicas`, `num_gpu_blocks`, `router`, `speculative_model`,
    /// `num_speculative_tokens`).
    Simulate {
        /// Requests Parquet file or folder, or CSV.
        #[arg(long)]
        trace: PathBuf,
        /// `PIPELINE.toml#SUPPLY_ID`: the supply whose deployment to simulate.
        #[arg(long)]
        supply: String,
        /// Override one knob by its name (as in a pipeline file's `config`), e.g. `--set max_num_seqs=128
        /// --set gpu=H200 --set speculative=Llama-3.2-1B:4`; also `router`, `max_model_len`, `num_gpu_blocks`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Seed of every random draw (speculative acceptance).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Client timeout in seconds: requests unfinished by then are aborted and counted.
        #[arg(long)]
        timeout_s: Option<f64>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the committed runs under an output location (runs without `_SUCCESS` are ignored).
    Runs {
        /// Output location: local path or s3://bucket/prefix.
        out: String,
    },
    /// Generate a synthetic lake with a known ground truth (`requests`, `gpu_metrics`,
    /// `ground_truth.json`).
    ///
    /// Four apps (chat, rag, code, summarize) with documented length distributions, diurnal and
    /// bursty arrivals, sessions, shared prefixes and duplicated prompts, served by supplies whose
    /// latencies follow a known linear engine model (ITL = α + β·batch, prefill γ per token). The
    /// same seed gives identical files. See `tunelake::generate` for every parameter.
    Generate {
        /// Lake to write: local path or s3://bucket/prefix.
        #[arg(long)]
        out: String,
        /// Valid requests in total over the window (injected duplicate rows come on top).
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        /// Days in the window.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Seed of every random draw.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// End of the window (exclusive, 00:00 UTC), YYYY-MM-DD. Default: today (UTC).
        #[arg(long)]
        end: Option<String>,
        /// Share of rows made contract-breaking (counts per reason in ground_truth.json); 0 disables.
        #[arg(long, default_value_t = 0.001)]
        invalid_share: f64,
    },
    /// Import a real public trace into a lake (`requests` and/or `gpu_metrics` tables).
    ///
    /// Formats: `azure` (Azure LLM inference 2023 CSV), `mooncake` (Mooncake FAST'25 JSONL),
    /// `inferno` (llm-inferno tuner CSV → gpu_metrics windows), `burstgpt` (vLLM replay logs
    /// directory with --scale, or one detail_log file), `blis` (inference-sim H100 replay
    /// `requests/<exp>.csv`). Unit conversions and defaults per format are listed in the docs of
    /// `tunelake::ingest::import`; the summary printed at the end reports measured conversions.
    Import {
        /// Trace format.
        #[arg(value_enum)]
        format: tunelake::ingest::import::Format,
        /// Input file (or, for burstgpt, the log directory).
        input: PathBuf,
        /// Lake to write into: local path or s3://bucket/prefix.
        #[arg(long)]
        out: String,
        /// app_id for every request (default per format, e.g. `azure-conv`, or the blis profile).
        #[arg(long = "app")]
        app: Option<String>,
        /// supply_id for every row (default per format, e.g. `azure-llm-2023`).
        #[arg(long = "supply")]
        supply: Option<String>,
        /// Where relative clocks start (RFC 3339 or YYYY-MM-DD); absolute clocks are shifted so the
        /// first row lands here. Default per format (azure keeps its own 2023-11-16 timestamps).
        #[arg(long)]
        start: Option<String>,
        /// inferno: length of one observation window in seconds (not recorded in the file; an assumption).
        #[arg(long, default_value_t = 60.0)]
        window_s: f64,
        /// burstgpt: replay scale S of the run to import when INPUT is the log directory.
        #[arg(long)]
        scale: Option<u32>,
        /// Print the import summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct RunFlags {
    /// End of the analysis window (exclusive): YYYY-MM-DD or RFC 3339. Default: the pipeline's, else now.
    #[arg(long)]
    as_of: Option<String>,
    /// Output location, overriding the pipeline's `run.out`.
    #[arg(long)]
    out: Option<String>,
    /// Run id (letters, digits, '-', '_', '.'); re-running an id replaces that run. Default: a timestamp.
    #[arg(long)]
    run_id: Option<String>,
    /// Skip unreadable or non-conforming Parquet files (recorded in the manifest) instead of failing.
    #[arg(long)]
    skip_bad_files: bool,
}

/// The default pipeline, relative to the working directory (the repository root for a new user).
const DEMO_PIPELINE: &str = "pipelines/demo.toml";

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error
                .downcast_ref::<tunelake::Error>()
                .map_or(1, tunelake::Error::exit_code);
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// A spinner naming the current stage, shown only when stderr is a terminal.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new() -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        }))
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl tunelake::pipeline::Progress for Spinner {
    fn stage(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("stage: {name}"));
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Reads a pipeline file and validates it into a plan.
fn load_plan(
    path: &std::path::Path,
    overrides: &Overrides,
    catalog: &Catalog,
) -> tunelake::Result<tunelake::config::Plan> {
    let plan = PipelineFile::load(path)?.plan(path, overrides, catalog)?;
    tunelake::deployment::check(&plan.supplies, catalog)?;
    Ok(plan)
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            pipeline,
            overrides,
            json,
        } => {
            let path = pipeline.unwrap_or_else(|| PathBuf::from(DEMO_PIPELINE));
            let plan = load_plan(
                &path,
                &Overrides {
                    as_of: overrides.as_of,
                    out: overrides.out,
                    run_id: overrides.run_id,
                    skip_bad_files: overrides.skip_bad_files,
                },
                &Catalog::bundled()?,
            )?;
            let spinner = Spinner::new();
            let summary = tunelake::pipeline::run(&plan, &spinner)
                .await
                .with_context(|| format!("run {} of {}", plan.run_id, path.display()))?;
            spinner.finish();
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
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
                    "  report: {}/_runs/run_id={}/report.json, snippets under snippets/<supply_id>/",
                    summary.out, summary.run_id
                );
                for (s, r) in summary.search.iter().zip(&summary.analysis.recommendations) {
                    println!(
                        "\n[{}] {} ({} candidates, {} simulated requests)\n  {}",
                        s.supply_id,
                        s.status,
                        s.candidates,
                        s.simulated_requests,
                        r.analysis_summary
                    );
                    if s.status == "recommended" {
                        println!("  snippet: {}", r.recommended_config_snippet);
                    }
                }
            }
        }
        Command::Calibrate {
            pipeline,
            as_of,
            json,
        } => {
            let path = pipeline.unwrap_or_else(|| PathBuf::from(DEMO_PIPELINE));
            let plan = load_plan(
                &path,
                &Overrides {
                    as_of,
                    ..Overrides::default()
                },
                &Catalog::bundled()?,
            )?;
            let results = tunelake::pipeline::calibrate(&plan)
                .await
                .with_context(|| format!("calibrating {}", path.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                print_calibration(&results);
            }
        }
        Command::Validate { pipeline } => {
            let plan = load_plan(&pipeline, &Overrides::default(), &Catalog::bundled()?)?;
            println!(
                "{}: ok ({} supplies, window {} .. {})",
                pipeline.display(),
                plan.supplies.len(),
                plan.window.start.to_rfc3339(),
                plan.window.end.to_rfc3339()
            );
        }
        Command::Generate {
            out,
            requests,
            days,
            seed,
            end,
            invalid_share,
        } => {
            let end = match end {
                Some(e) => chrono::NaiveDate::parse_from_str(&e, "%Y-%m-%d").map_err(|_| {
                    tunelake::Error::Setting {
                        key: "end".into(),
                        message: format!("`{e}` is not YYYY-MM-DD"),
                    }
                })?,
                None => chrono::Utc::now().date_naive(),
            };
            let config = tunelake::generate::GenerateConfig {
                requests,
                days,
                seed,
                end,
                invalid_share,
            };
            let location = Location::parse(&out, None)?;
            let started = std::time::Instant::now();
            let truth = tunelake::generate::generate(&location, &config)
                .await
                .with_context(|| format!("generating into {out}"))?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "generated {} requests ({} rows) and {} gpu_metrics rows for {} .. {} into {out} in {secs:.2} s ({:.0} requests/s)",
                truth.requests,
                truth.request_rows,
                truth.gpu_metrics_rows,
                truth.start,
                truth.end,
                truth.requests as f64 / secs
            );
            for (reason, n) in truth.invalid.iter().filter(|(_, n)| **n > 0) {
                println!("  injected {n} {reason}");
            }
        }
        Command::Import {
            format,
            input,
            out,
            app,
            supply,
            start,
            window_s,
            scale,
            json,
        } => {
            use tunelake::ingest::import;
            let options = import::ImportOptions {
                app_id: app,
                supply_id: supply,
                start: start.as_deref().map(import::parse_start).transpose()?,
                window_s,
                scale,
            };
            let location = Location::parse(&out, None)?;
            let summary = import::import(format, &input, &location, &options)
                .await
                .with_context(|| format!("importing {} as {}", input.display(), format.name()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "imported {} ({}) into {}",
                    summary.input, summary.format, summary.out
                );
                for (table, rows) in &summary.rows {
                    println!("  {table:<20} {rows:>10} rows");
                }
                for note in &summary.notes {
                    println!("  note: {note}");
                }
            }
        }
        Command::Simulate {
            trace,
            supply,
            overrides,
            seed,
            timeout_s,
            json,
        } => simulate(&trace, &supply, &overrides, seed, timeout_s, json)?,
        Command::Runs { out } => {
            let location = Location::parse(&out, None)?;
            for run in tunelake::sinks::output::committed_runs(&location).await? {
                println!("{run}");
            }
        }
    }
    Ok(())
}

fn simulate(
    trace: &std::path::Path,
    supply_ref: &str,
    overrides: &[String],
    seed: u64,
    timeout_s: Option<f64>,
    json: bool,
) -> anyhow::Result<()> {
    use tunelake::simulation::{self, SimOptions, Slo};
    let (file, id) = supply_ref
        .rsplit_once('#')
        .ok_or_else(|| tunelake::Error::Setting {
            key: "--supply".into(),
            message: format!("`{supply_ref}` is not PIPELINE.toml#SUPPLY_ID"),
        })?;
    let catalog = Catalog::bundled()?;
    let path = PathBuf::from(file);
    let plan = load_plan(&path, &Overrides::default(), &catalog)?;
    let supply =
        plan.supplies
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| tunelake::Error::Setting {
                key: "--supply".into(),
                message: format!("{file} has no supply `{id}`"),
            })?;
    let deployment = tunelake::deployment::with_overrides(supply, &catalog, overrides)?;
    let mut batches = tunelake::ingest::trace_file::read_requests(trace)?;
    let of_supply = rows_of_supply(&batches, id)?;
    if of_supply.iter().any(|b| b.num_rows() > 0) {
        batches = of_supply;
    } else {
        tracing::info!(
            supply = id,
            "no request names this supply: replaying the whole trace"
        );
    }
    let trace = tunelake::workloads::trace::from_requests(&batches, deployment.config.block_size)?;
    let report = simulation::simulate(
        &deployment,
        &trace,
        &SimOptions {
            seed,
            slo: Slo {
                p95_ttft_ms: supply.slo.p95_ttft_ms,
                p95_tpot_ms: supply.slo.p95_tpot_ms,
            },
            request_timeout_s: timeout_s,
            ..Default::default()
        },
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{id}: {} × {} (TP {}) {} on {} requests, {:.1} s simulated",
        deployment.config.replicas,
        deployment.gpu.id,
        deployment.config.tensor_parallel_size,
        deployment.model.id,
        report.requests,
        report.makespan_s
    );
    println!(
        "  {:<10} {:>10} {:>10} {:>10} {:>10}",
        "ms", "p50", "p90", "p95", "p99"
    );
    for (name, p) in [
        ("queue", &report.queue_ms),
        ("ttft", &report.ttft_ms),
        ("tpot", &report.tpot_ms),
        ("e2e", &report.e2e_ms),
    ] {
        println!(
            "  {name:<10} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            p.p50, p.p90, p.p95, p.p99
        );
    }
    println!(
        "  throughput {:.0} in / {:.0} out tokens/s; goodput {:.2} req/s ({:.1} % within SLO)",
        report.input_tokens_per_s,
        report.output_tokens_per_s,
        report.goodput_rps,
        100.0 * report.goodput_fraction
    );
    println!(
        "  batch mean {:.1} max {}; KV use mean {:.0} % max {:.0} % of {} blocks; preemptions {}; prefix hit rate {:.1} %",
        report.mean_batch,
        report.max_batch,
        100.0 * report.mean_kv_utilization,
        100.0 * report.max_kv_utilization,
        report.kv_blocks_per_replica,
        report.preemptions,
        100.0 * report.prefix_cache_hit_rate
    );
    println!(
        "  finished {} rejected {} timed out {}; {:.2} GPU-hours, ${:.2}",
        report.finished,
        report.rejected,
        report.timed_out,
        report.gpu_seconds / 3600.0,
        report.cost_usd
    );
    Ok(())
}

fn print_calibration(results: &[tunelake::calibration::SupplyCalibration]) {
    for c in results {
        println!("{} ({})", c.supply_id, c.status);
        if let (Some(d), Some(p)) = (&c.decode, &c.prefill) {
            let prior = c.prior.expect("a fitted supply has a prior");
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

/// The requests whose `supply_id` is `id`.
fn rows_of_supply(
    batches: &[arrow::array::RecordBatch],
    id: &str,
) -> anyhow::Result<Vec<arrow::array::RecordBatch>> {
    use arrow::array::{AsArray, StringArray};
    batches
        .iter()
        .map(|batch| {
            let supply = batch
                .column_by_name("supply_id")
                .expect("conformed to the requests contract")
                .as_string::<i32>();
            let mask = arrow::compute::kernels::cmp::eq(supply, &StringArray::new_scalar(id))?;
            Ok(arrow::compute::filter_record_batch(batch, &mask)?)
        })
        .collect()
}
