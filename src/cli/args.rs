//! The command line: subcommands, their flags and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "tunelake",
    version,
    about = "Turns an LLM-serving fleet's request logs and GPU telemetry into tuning recommendations",
    long_about = "tunelake reads request logs and GPU telemetry from a Parquet data lake (local or S3), \
                  extracts features with SQL, and writes output tables, a manifest and reports back. \
                  It is meant to run as a scheduled batch job (cron, Airflow)."
)]
pub struct Cli {
    /// Log format on stderr: human-readable text or one JSON object per line for orchestrators.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log level filter (tracing's RUST_LOG syntax), e.g. `debug` or `tunelake=debug`.
    #[arg(long, default_value = "info", global = true, env = "TUNELAKE_LOG")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Run one analysis per day from --from to --to (inclusive), as the daily schedule would have:
    /// the window ends at 00:00 UTC of the day and the run id is the day as YYYYMMDD.
    ///
    /// Days already committed are skipped unless --force; a day whose run id another process is
    /// running is reported as locked, a failed day as failed, and the backfill goes on. Exits 0 when
    /// every day is committed, 75 when some were locked (try again later), 1 when any failed.
    Backfill {
        /// Pipeline file (TOML).
        pipeline: PathBuf,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day (inclusive), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Re-run committed days too (each replaces its earlier run).
        #[arg(long)]
        force: bool,
        /// Output location, overriding the pipeline's `run.out`.
        #[arg(long)]
        out: Option<String>,
        /// Skip unreadable or non-conforming Parquet files (recorded in each manifest).
        #[arg(long)]
        skip_bad_files: bool,
        /// Print each day's outcome as JSON on stdout.
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
        /// Override one setting, e.g. `--set max_num_seqs=128 --set gpu=H200`.
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
    /// Score the engine model on measured runs: predicted vs measured TTFT p50/p90, decode time per
    /// token and output throughput (where measured), per case and as median / p90 |error|.
    ///
    /// CASES is a TOML file of `[[case]]` tables: a deployment (engine, model by catalog id or
    /// config.json path, GPU, TP, dtype, the engine's knobs, its logged KV block count) and its measured requests
    /// (`trace`, a requests-contract Parquet/CSV or an `import` format such as `blis`). Each case is
    /// replayed uncalibrated (the roofline's public defaults) and calibrated (the step model and
    /// frontend time fitted on the other cases of its group, never on itself). The shipped cases:
    /// `pipelines/eval/blis-h100.toml` (16 real vLLM runs on H100).
    Eval {
        /// Cases file (TOML).
        cases: PathBuf,
        /// Also write `eval_cases.parquet` and `eval.md` here (local path or s3://).
        #[arg(long)]
        out: Option<String>,
        /// Seed of every random draw.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print the report as JSON instead of the Markdown tables.
        #[arg(long)]
        json: bool,
    },
    /// Serve the analysis API (seed 000) and the reports of committed runs over HTTP.
    ///
    /// Reads committed runs from the pipeline's `out` (local or S3) and answers
    /// `POST /v2/analysis/system_recommendations` by running the pipeline for the apps and window
    /// asked (the same code path as `run`, committing a run). Every route but `/healthz`,
    /// `/metrics` and `/openapi.json` needs an `X-API-Key` from the keys file, scoped to the apps
    /// it may analyse. Plain HTTP: put TLS in a reverse proxy in front.
    Serve(ServeFlags),
    /// Manage the API's keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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
    /// Import a real public trace, or a fleet's Prometheus telemetry, into a lake (`requests`
    /// and/or `gpu_metrics` tables).
    ///
    /// Formats: `azure` (Azure LLM inference 2023 CSV), `mooncake` (Mooncake FAST'25 JSONL),
    /// `inferno` (llm-inferno tuner CSV → gpu_metrics windows), `burstgpt` (vLLM replay logs
    /// directory with --scale, or one detail_log file), `blis` (inference-sim H100 replay
    /// `requests/<exp>.csv`), `prometheus` (vLLM and DCGM metrics from a Prometheus server: no
    /// INPUT, but --url, --start, --end and --step; labels map to ids as the pipeline's
    /// `[prometheus]` table says; credentials from TUNELAKE_PROMETHEUS_TOKEN, or
    /// TUNELAKE_PROMETHEUS_USER and TUNELAKE_PROMETHEUS_PASSWORD). Unit conversions and defaults
    /// per format are listed in the docs of `tunelake::ingest::import`; the summary printed at the
    /// end reports measured conversions.
    Import(ImportFlags),
}

#[derive(clap::Args)]
pub struct ImportFlags {
    /// Trace format.
    #[arg(value_enum)]
    pub format: tunelake::ingest::import::Format,
    /// Input file (or, for burstgpt, the log directory); not for prometheus.
    pub input: Option<PathBuf>,
    /// Lake to write into: local path or s3://bucket/prefix.
    #[arg(long)]
    pub out: String,
    /// app_id for every request (default per format, e.g. `azure-conv`, or the blis profile).
    #[arg(long = "app")]
    pub app: Option<String>,
    /// supply_id for every row (default per format, e.g. `azure-llm-2023`; prometheus: the
    /// `[prometheus] supply_label`'s value).
    #[arg(long = "supply")]
    pub supply: Option<String>,
    /// Where relative clocks start (RFC 3339 or YYYY-MM-DD); absolute clocks are shifted so the
    /// first row lands here. Default per format (azure keeps its own 2023-11-16 timestamps).
    /// prometheus: the first window's end (required).
    #[arg(long)]
    pub start: Option<String>,
    /// prometheus: base URL of the server, e.g. http://prometheus:9090.
    #[arg(long)]
    pub url: Option<String>,
    /// prometheus: the last window's end (RFC 3339 or YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub end: Option<String>,
    /// prometheus: window length and evaluation step (30s, 1m, 1h). Default: 60s.
    #[arg(long)]
    pub step: Option<String>,
    /// prometheus: pipeline file whose `[prometheus]` table maps labels to ids.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// inferno: length of one observation window in seconds (not recorded in the file; an assumption).
    #[arg(long, default_value_t = 60.0)]
    pub window_s: f64,
    /// burstgpt: replay scale S of the run to import when INPUT is the log directory.
    #[arg(long)]
    pub scale: Option<u32>,
    /// Print the import summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ServeFlags {
    /// Pipeline file (TOML). Default: pipelines/demo.toml.
    pub pipeline: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Keys file written by `tunelake keys create` (hashed keys with their app scopes).
    #[arg(long, env = "TUNELAKE_API_KEYS_FILE", conflicts_with = "keys_toml")]
    pub keys: Option<PathBuf>,
    /// The keys file's TOML itself, for deployments that pass secrets as environment variables.
    #[arg(long, env = "TUNELAKE_API_KEYS", hide_env_values = true)]
    pub keys_toml: Option<String>,
    /// Seconds a request may take: GETs past it answer 503, an analysis past it answers 202
    /// with a Location to poll while it goes on.
    #[arg(long, default_value_t = 120)]
    pub request_timeout_s: u64,
    /// Largest request body in bytes (413 above).
    #[arg(long, default_value_t = 16 * 1024)]
    pub body_limit: usize,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key: prints it once and appends its SHA-256 hash and scope to the keys file (the
    /// key itself is stored nowhere).
    Create {
        /// Name shown in logs and metrics instead of the key.
        #[arg(long)]
        name: String,
        /// Apps the key may analyse and read (repeat, or `*` for every app).
        #[arg(long = "app", required = true)]
        apps: Vec<String>,
        /// Requests per minute before the server answers 429.
        #[arg(long, default_value_t = 60)]
        requests_per_minute: u32,
        /// Keys file to append to (created if missing).
        #[arg(long, env = "TUNELAKE_API_KEYS_FILE")]
        file: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct RunFlags {
    /// End of the analysis window (exclusive): YYYY-MM-DD or RFC 3339. Default: the pipeline's, else now.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output location, overriding the pipeline's `run.out`.
    #[arg(long)]
    pub out: Option<String>,
    /// Run id (letters, digits, '-', '_', '.'); re-running an id replaces that run. Default: a timestamp.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Skip unreadable or non-conforming Parquet files (recorded in the manifest) instead of failing.
    #[arg(long)]
    pub skip_bad_files: bool,
}

/// The default pipeline, relative to the working directory (the repository root for a new user).
pub const DEMO_PIPELINE: &str = "pipelines/demo.toml";
