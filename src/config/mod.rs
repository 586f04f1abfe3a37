//! Pipeline files: TOML, every table `deny_unknown_fields`, validated into a [`Plan`] before any data
//! is touched. Relative paths in a pipeline file are relative to the file itself, so a pipeline runs
//! the same from any working directory.

pub mod eval;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Quantization};
use crate::error::{Error, Result};
use crate::knobs::{EngineSettings, Knob, SearchOptions, ServingConfig};

/// A pipeline file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub run: RunSettings,
    #[serde(default)]
    pub validation: ValidationSettings,
    #[serde(default)]
    pub supplies: Vec<Supply>,
    /// What the pipeline declares about apps (the lake says the rest).
    #[serde(default)]
    pub apps: Vec<AppSettings>,
    /// How GPU capacity can be bought; without it the capacity plan prices on-demand only.
    pub purchase: Option<PurchaseOptions>,
    /// How `tunelake import prometheus` reads ids from series labels; absent: the defaults.
    pub prometheus: Option<PrometheusMapping>,
}

/// Which Prometheus labels carry the `gpu_metrics` ids. vLLM labels its series with the served
/// model (`model_name`) and Prometheus adds the scrape target (`instance`); DCGM's exporter runs as
/// another target, so its `instance` differs from vLLM's and the node name (`Hostname`) is the label
/// that joins a GPU to the vLLM instance on it: make the two label values equal (relabelling) or
/// point these settings at labels that are.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusMapping {
    /// vLLM label whose value is the `supply_id`; ignored when `supply_id` is set.
    pub supply_label: String,
    /// vLLM label whose value is the `instance_id`.
    pub instance_label: String,
    /// One `supply_id` for every row, for fleets that label supplies differently.
    pub supply_id: Option<String>,
    /// Extra PromQL label matchers for the vLLM series, e.g. `job="vllm"`.
    pub selector: String,
    /// DCGM label whose value equals the vLLM `instance_label`'s.
    pub dcgm_instance_label: String,
    /// Extra PromQL label matchers for the DCGM series, e.g. `job="dcgm"`.
    pub dcgm_selector: String,
}

impl Default for PrometheusMapping {
    fn default() -> Self {
        Self {
            supply_label: "model_name".into(),
            instance_label: "instance".into(),
            supply_id: None,
            selector: String::new(),
            dcgm_instance_label: "Hostname".into(),
            dcgm_selector: String::new(),
        }
    }
}

impl PrometheusMapping {
    /// Label names must be PromQL identifiers and selectors must stay inside the braces they are
    /// pasted into, so that a typo fails here rather than as a query error or a wider match.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| Error::Setting {
            key: format!("prometheus.{key}"),
            message,
        };
        for (key, label) in [
            ("supply_label", &self.supply_label),
            ("instance_label", &self.instance_label),
            ("dcgm_instance_label", &self.dcgm_instance_label),
        ] {
            let mut chars = label.chars();
            let identifier = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !identifier {
                return Err(bad(
                    key,
                    format!("`{label}` is not a Prometheus label name"),
                ));
            }
        }
        for (key, selector) in [
            ("selector", &self.selector),
            ("dcgm_selector", &self.dcgm_selector),
        ] {
            if selector.contains(['{', '}']) {
                return Err(bad(
                    key,
                    format!("`{selector}`: give the matchers without braces, e.g. job=\"vllm\""),
                ));
            }
        }
        if self
            .supply_id
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(bad("supply_id", "must not be empty".into()));
        }
        Ok(())
    }
}

/// What a person declares about one app.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    pub id: String,
    /// Whether the app's answers may wait hours (batch, offline jobs); absent: inferred from its
    /// traffic, and flagged as inferred.
    pub latency_tolerant: Option<bool>,
}

/// Discounts on the on-demand GPU price (each supply's `per_gpu_hour`), as the buyer's contract
/// gives them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOptions {
    /// Share off for reserved capacity (committed for every hour of the term).
    pub reserved_discount: f64,
    /// Share off for spot capacity (can be reclaimed).
    pub spot_discount: f64,
    /// Largest share of the capacity above the reserved floor that may run on spot.
    pub max_spot_share: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Lake URL: a local path, `file://...` or `s3://bucket/prefix`, holding `requests/` and
    /// `gpu_metrics/` in `date=YYYY-MM-DD/` partitions.
    pub lake: String,
    /// Where output tables, reports and the manifest go (local path or `s3://`).
    pub out: String,
    /// End of the analysis window (exclusive), `YYYY-MM-DD` or RFC 3339; default now.
    pub as_of: Option<String>,
    #[serde(default = "default_period_days")]
    pub period_days: u32,
    /// Apps to analyse; empty means all.
    #[serde(default)]
    pub app_ids: Vec<String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Skip (and record) unreadable Parquet files instead of failing the run.
    #[serde(default)]
    pub skip_bad_files: bool,
    /// Endpoint of an S3-compatible store; overrides `AWS_ENDPOINT_URL(_S3)`.
    pub s3_endpoint: Option<String>,
    /// Seconds a run's lock outlives its holder's last heartbeat (one every third of it): how long a
    /// killed run blocks its run id.
    #[serde(default = "default_lock_ttl_s")]
    pub lock_ttl_s: u64,
    /// Seconds a failing S3 request is retried (exponential backoff) before the run fails; default
    /// object_store's 180.
    pub storage_retry_timeout_s: Option<u64>,
    /// How output tables are written: `parquet` files under hive partitions, or `delta` tables.
    #[serde(default)]
    pub table_format: TableFormat,
}

/// The format of the output tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// `<table>/run_date=D/run_id=ID/part-00000.parquet`, with the `runs` table to join.
    #[default]
    Parquet,
    /// A Delta Lake table per output table, one commit per run (`sinks::delta`).
    Delta,
}

fn default_lock_ttl_s() -> u64 {
    600
}

fn default_period_days() -> u32 {
    30
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// Rows with more prompt tokens than this are quarantined (corrupt counters, unit mix-ups).
    #[serde(default = "default_token_ceiling")]
    pub max_prompt_tokens: i64,
    #[serde(default = "default_token_ceiling")]
    pub max_completion_tokens: i64,
}

fn default_token_ceiling() -> i64 {
    2_000_000
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            max_prompt_tokens: default_token_ceiling(),
            max_completion_tokens: default_token_ceiling(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Vllm,
    Tgi,
    Trtllm,
    Triton,
    Sglang,
    Openai,
}

impl Engine {
    pub fn is_hosted(self) -> bool {
        self == Engine::Openai
    }

    /// The engine's own defaults where they differ from vLLM's (the knobs' defaults), so a supply's
    /// unset knobs mean what the engine does when not told:
    /// - TensorRT-LLM (`tensorrt_llm/llmapi/llm_args.py`): `max_batch_size` 2048,
    ///   `tokens_per_block` 32, `enable_chunked_prefill` false;
    /// - TGI (launcher docs): `--max-batch-prefill-tokens` 4096 where it cannot compute one;
    /// - SGLang (`server_args.py`): `--chunked-prefill-size` 8192, its value on 60–160 GiB GPUs (the
    ///   common H100/H200 case; SGLang picks 4096 below and 16384 above: set it for those),
    ///   `--mem-fraction-static` computed from memory (about 0.85 on 80 GiB).
    pub fn defaults(self) -> EngineSettings {
        match self {
            Engine::Trtllm | Engine::Triton => EngineSettings {
                max_num_seqs: Some(2048),
                block_size: Some(32),
                enable_chunked_prefill: Some(false),
                ..EngineSettings::default()
            },
            Engine::Tgi => EngineSettings {
                max_num_batched_tokens: Some(4096),
                ..EngineSettings::default()
            },
            Engine::Sglang => EngineSettings {
                max_num_batched_tokens: Some(8192),
                gpu_memory_utilization: Some(0.85),
                ..EngineSettings::default()
            },
            Engine::Vllm | Engine::Openai => EngineSettings::default(),
        }
    }

    /// Whether the engine has a setting for `knob`.
    /// - TGI has no block-size, prefix-caching or chunked-prefill switch, no expert parallelism,
    ///   speculates without a draft model, and neither offloads KV nor disaggregates.
    /// - TensorRT-LLM serves a quantized checkpoint only after ModelOpt has converted it, which a
    ///   launch option cannot do.
    /// - Triton's TensorRT-LLM models fix TP, block size, token budget, KV dtype and drafts when the
    ///   engine is built, not in `config.pbtxt`.
    /// - SGLang's page size is left to it (the radix cache matches tokens), it always chunks
    ///   (`--chunked-prefill-size` is the token budget), and its draft-model speculation is not
    ///   modelled.
    /// - The scheduler policies belong to one engine each; a hosted API exposes none.
    pub fn supports(self, knob: Knob) -> bool {
        use Knob::*;
        match self {
            Engine::Vllm => !matches!(
                knob,
                CapacitySchedulerPolicy | SchedulePolicy | WaitingServedRatio
            ),
            Engine::Trtllm => !matches!(
                knob,
                LongPrefillTokenThreshold | Quantization | SchedulePolicy | WaitingServedRatio
            ),
            Engine::Tgi => !matches!(
                knob,
                BlockSize
                    | EnablePrefixCaching
                    | EnableChunkedPrefill
                    | LongPrefillTokenThreshold
                    | Speculative
                    | EnableExpertParallel
                    | KvOffloadGib
                    | PdDisaggregation
                    | CapacitySchedulerPolicy
                    | SchedulePolicy
            ),
            Engine::Triton => matches!(
                knob,
                Gpu | Replicas
                    | MaxNumSeqs
                    | GpuMemoryUtilization
                    | EnablePrefixCaching
                    | EnableChunkedPrefill
                    | CapacitySchedulerPolicy
            ),
            Engine::Sglang => !matches!(
                knob,
                BlockSize
                    | EnableChunkedPrefill
                    | LongPrefillTokenThreshold
                    | Speculative
                    | CapacitySchedulerPolicy
                    | WaitingServedRatio
            ),
            Engine::Openai => false,
        }
    }
}

/// A serving supply: one model deployment (or hosted API) that apps send requests to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Supply {
    pub id: String,
    pub engine: Engine,
    /// Catalog model id or alias (for a hosted API, the API's model name).
    pub model: String,
    /// Catalog GPU id or alias; absent for hosted APIs.
    pub gpu: Option<String>,
    #[serde(default = "one")]
    pub gpus_per_replica: u32,
    #[serde(default = "one")]
    pub replicas: u32,
    pub price: Price,
    #[serde(default)]
    pub config: EngineSettings,
    pub slo: Slo,
    #[serde(default)]
    pub options: SearchOptions,
    /// A hosted API's automatic prompt caching, as its provider documents it.
    pub prompt_cache: Option<PromptCacheRules>,
}

/// How a provider caches prompt prefixes on its own (e.g. OpenAI's automatic prompt caching).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromptCacheRules {
    /// Shortest prefix cached, tokens.
    pub min_prefix_tokens: u64,
    /// A cached prefix grows in steps of this many tokens past the minimum.
    pub increment_tokens: u64,
    /// How long an unused prefix stays cached, seconds.
    pub ttl_s: f64,
    /// The longer retention a client may ask for (absent when the provider has none).
    pub extended: Option<Retention>,
}

/// A prompt-cache retention a client asks for by name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// The value of the request's `prompt_cache_retention`.
    pub name: String,
    pub ttl_s: f64,
}

fn one() -> u32 {
    1
}

impl Supply {
    /// What the supply runs today, engine defaults filled in (`None` for a hosted API).
    pub fn serving_config(&self) -> Option<ServingConfig> {
        let mut config = ServingConfig::with_engine_defaults(
            self.gpu.clone()?,
            self.gpus_per_replica,
            self.replicas,
        );
        config.apply(&self.engine.defaults());
        config.apply(&self.config);
        Some(config)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per GPU-hour for self-hosted supplies.
    pub per_gpu_hour: Option<f64>,
    /// USD per 1k input / output tokens for hosted APIs.
    pub per_1k_input: Option<f64>,
    pub per_1k_output: Option<f64>,
    /// USD per 1k input tokens read from the provider's prompt cache.
    pub per_1k_cached_input: Option<f64>,
    /// Share off the token prices for requests sent through the provider's batch API.
    pub batch_discount: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub p95_ttft_ms: f64,
    pub p95_tpot_ms: f64,
    /// Error budget: the largest share of requests that may fail (rejected, or not finished within
    /// `timeout_s`) under a recommended configuration.
    #[serde(default = "default_error_budget")]
    pub error_budget: f64,
    /// Client timeout: a request unfinished this long after arrival counts as failed.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
}

fn default_error_budget() -> f64 {
    0.001
}

fn default_timeout_s() -> f64 {
    120.0
}

/// Settings that command-line flags override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub as_of: Option<String>,
    pub out: Option<String>,
    pub run_id: Option<String>,
    pub skip_bad_files: bool,
}

/// The analysis window: `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// Window of `period_days` ending at `as_of` (exclusive).
    pub fn ending_at(as_of: DateTime<Utc>, period_days: u32) -> Self {
        Self {
            start: as_of - Duration::days(i64::from(period_days)),
            end: as_of,
        }
    }

    /// Length in days (fractional for windows not on day boundaries).
    pub fn days(&self) -> f64 {
        (self.end - self.start).num_seconds() as f64 / 86_400.0
    }

    /// UTC dates whose partitions can hold rows of the window.
    pub fn dates(&self) -> Vec<NaiveDate> {
        let last = (self.end - Duration::microseconds(1)).date_naive();
        self.start
            .date_naive()
            .iter_days()
            .take_while(|d| *d <= last)
            .collect()
    }

    pub fn hours(&self) -> f64 {
        (self.end - self.start).num_seconds() as f64 / 3600.0
    }
}

/// A validated pipeline: everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: PathBuf,
    pub lake: String,
    pub out: String,
    pub run_id: String,
    pub window: Window,
    pub app_ids: Vec<String>,
    pub seed: u64,
    pub skip_bad_files: bool,
    pub s3_endpoint: Option<String>,
    pub lock_ttl: std::time::Duration,
    pub storage_retry_timeout: Option<std::time::Duration>,
    pub table_format: TableFormat,
    pub validation: ValidationSettings,
    pub supplies: Vec<Supply>,
    pub apps: Vec<AppSettings>,
    pub purchase: Option<PurchaseOptions>,
}

impl PipelineFile {
    /// Reads and parses a pipeline file; errors name the file, the key and the line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Validates the file against the catalog and applies command-line overrides.
    pub fn plan(self, source: &Path, overrides: &Overrides, catalog: &Catalog) -> Result<Plan> {
        let bad = |key: &str, message: String| Error::Setting {
            key: key.to_string(),
            message,
        };
        let base = source.parent().unwrap_or(Path::new("."));
        let as_of = match overrides.as_of.as_ref().or(self.run.as_of.as_ref()) {
            Some(text) => parse_instant(text).ok_or_else(|| {
                bad(
                    "run.as_of",
                    format!("`{text}` is neither YYYY-MM-DD nor an RFC 3339 timestamp"),
                )
            })?,
            None => Utc::now(),
        };
        if self.run.period_days == 0 {
            return Err(bad("run.period_days", "must be at least 1".into()));
        }
        if self.run.lock_ttl_s < 3 {
            return Err(bad("run.lock_ttl_s", "must be at least 3 seconds".into()));
        }
        let mut seen = HashSet::new();
        let mut supplies = self.supplies;
        for supply in &mut supplies {
            if !seen.insert(supply.id.clone()) {
                return Err(bad("supplies.id", format!("`{}` appears twice", supply.id)));
            }
            validate_supply(supply, catalog)?;
        }
        let mut seen_apps = HashSet::new();
        for app in &self.apps {
            if !seen_apps.insert(app.id.as_str()) {
                return Err(bad("apps.id", format!("`{}` appears twice", app.id)));
            }
        }
        if let Some(p) = &self.prometheus {
            p.validate()?;
        }
        if let Some(p) = &self.purchase {
            for (key, share) in [
                ("purchase.reserved_discount", p.reserved_discount),
                ("purchase.spot_discount", p.spot_discount),
                ("purchase.max_spot_share", p.max_spot_share),
            ] {
                if !(0.0..=1.0).contains(&share)
                    || (key != "purchase.max_spot_share" && share == 1.0)
                {
                    return Err(bad(key, "must be a share in [0, 1)".into()));
                }
            }
        }
        Ok(Plan {
            source: source.to_path_buf(),
            lake: resolve(base, &self.run.lake),
            out: resolve(base, overrides.out.as_deref().unwrap_or(&self.run.out)),
            run_id: match &overrides.run_id {
                Some(id) => validate_run_id(id)?,
                None => Utc::now().format("%Y%m%dT%H%M%SZ").to_string(),
            },
            window: Window::ending_at(as_of, self.run.period_days),
            app_ids: self.run.app_ids,
            seed: self.run.seed,
            skip_bad_files: self.run.skip_bad_files || overrides.skip_bad_files,
            s3_endpoint: self.run.s3_endpoint,
            lock_ttl: std::time::Duration::from_secs(self.run.lock_ttl_s),
            storage_retry_timeout: self
                .run
                .storage_retry_timeout_s
                .map(std::time::Duration::from_secs),
            table_format: self.run.table_format,
            validation: self.validation,
            supplies,
            apps: self.apps,
            purchase: self.purchase,
        })
    }
}

fn validate_run_id(id: &str) -> Result<String> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        Ok(id.to_string())
    } else {
        Err(Error::Setting {
            key: "--run-id".into(),
            message: format!("`{id}` may only contain letters, digits, '-', '_' and '.'"),
        })
    }
}

/// Checks a supply against the catalog and the engine's own limits, so that nothing the simulator
/// would reject gets past `tunelake validate`. GPU names become catalog ids.
fn validate_supply(supply: &mut Supply, catalog: &Catalog) -> Result<()> {
    let key = |field: &str| format!("supplies[{}].{field}", supply.id);
    let bad = |field: &str, message: String| Error::Setting {
        key: key(field),
        message,
    };
    // A name the catalog does not know is a fault of the pipeline file, reported with its key.
    let known = |field: &str, found: Result<String>| found.map_err(|e| bad(field, e.to_string()));
    if !(supply.slo.p95_ttft_ms > 0.0 && supply.slo.p95_tpot_ms > 0.0 && supply.slo.timeout_s > 0.0)
    {
        return Err(bad(
            "slo",
            "SLO targets and timeout_s must be positive".into(),
        ));
    }
    if !(0.0..1.0).contains(&supply.slo.error_budget) {
        return Err(bad("slo.error_budget", "must be in [0, 1)".into()));
    }
    let options = &supply.options;
    for knob in options.given() {
        if !supply.engine.supports(knob) {
            return Err(bad(
                &format!("options.{knob}"),
                format!("{:?} has no setting for {knob}", supply.engine),
            ));
        }
    }
    if !(options.growth.is_finite() && options.growth > 0.0) {
        return Err(bad("options.growth", "must be positive".into()));
    }
    for knob in options.max_delta.keys().chain(options.bounds.keys()) {
        if !knob.is_numeric() {
            return Err(bad(
                "options",
                format!("`{knob}` is not numeric; guardrails apply to numeric knobs"),
            ));
        }
    }
    if let Some((knob, _)) = options
        .max_delta
        .iter()
        .find(|(_, d)| d.is_nan() || **d < 0.0)
    {
        return Err(bad("options.max_delta", format!("`{knob}` must be ≥ 0")));
    }
    if let Some((knob, _)) = options
        .bounds
        .iter()
        .find(|(_, [lo, hi])| lo.is_nan() || hi.is_nan() || lo > hi)
    {
        return Err(bad("options.bounds", format!("`{knob}` needs min ≤ max")));
    }
    if let Some(d) = supply.price.batch_discount
        && !(0.0..1.0).contains(&d)
    {
        return Err(bad(
            "price.batch_discount",
            "must be a share in [0, 1)".into(),
        ));
    }
    if supply.engine.is_hosted() {
        if supply.price.per_1k_input.is_none() || supply.price.per_1k_output.is_none() {
            return Err(bad(
                "price",
                "a hosted API is priced with per_1k_input and per_1k_output".into(),
            ));
        }
        if let Some(r) = &supply.prompt_cache
            && !(r.increment_tokens > 0
                && r.ttl_s > 0.0
                && r.extended
                    .as_ref()
                    .is_none_or(|e| e.ttl_s >= r.ttl_s && !e.name.is_empty()))
        {
            return Err(bad(
                "prompt_cache",
                "increment_tokens and ttl_s must be positive; extended needs a name and a ttl_s of at least ttl_s".into(),
            ));
        }
        return Ok(());
    }
    if supply.prompt_cache.is_some() {
        return Err(bad(
            "prompt_cache",
            "describes a hosted API's caching; a self-hosted engine's prefix cache is a knob"
                .into(),
        ));
    }
    if !supply.price.per_gpu_hour.is_some_and(|p| p > 0.0) {
        return Err(bad(
            "price",
            "a self-hosted supply needs a positive per_gpu_hour".into(),
        ));
    }
    let Some(gpu) = supply.gpu.as_deref() else {
        return Err(bad("gpu", "a self-hosted supply names its GPU".into()));
    };
    let gpu = known("gpu", catalog.gpu(gpu).map(|g| g.id.clone()))?;
    let options_gpu = supply
        .options
        .gpu
        .iter()
        .map(|g| {
            catalog
                .gpu(g)
                .cloned()
                .map_err(|e| bad("options.gpu", e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    // Another GPU is costed at its catalog list price, so the search needs one.
    if let Some(unpriced) = options_gpu
        .iter()
        .find(|g| g.id != gpu && g.price_per_hour_usd.is_none())
    {
        return Err(bad(
            "options.gpu",
            format!(
                "{} has no list price in the catalog, so the search cannot cost it",
                unpriced.id
            ),
        ));
    }
    let options_gpu = options_gpu.into_iter().map(|g| g.id).collect();
    supply.gpu = Some(gpu.clone());
    supply.options.gpu = options_gpu;
    let model = catalog
        .model(&supply.model)
        .map_err(|e| bad("model", e.to_string()))?;
    let current = supply
        .serving_config()
        .expect("a self-hosted supply has a GPU");
    if let Some((knob, why)) = current.invalid() {
        let field = match knob {
            Knob::TensorParallelSize => "gpus_per_replica".to_string(),
            Knob::Gpu | Knob::Replicas => knob.to_string(),
            _ => format!("config.{knob}"),
        };
        return Err(bad(&field, why.into()));
    }
    if let Some((knob, why)) = supply.options.invalid(&current) {
        return Err(bad(&format!("options.{knob}"), why.into()));
    }
    let drafts = current
        .speculative
        .iter()
        .chain(supply.options.speculative.iter().flatten());
    for draft in drafts {
        catalog
            .model(&draft.draft_model)
            .map_err(|e| bad("speculative.draft_model", e.to_string()))?;
    }
    if !model.is_moe()
        && (current.enable_expert_parallel || supply.options.enable_expert_parallel.contains(&true))
    {
        return Err(bad(
            "enable_expert_parallel",
            format!("{} has no experts", model.id),
        ));
    }
    // A weight format is a different checkpoint, except FP8, which vLLM and TGI quantize at load.
    for q in supply.options.quantization.iter().flatten() {
        if *q != Quantization::Fp8
            && *q != model.quantization
            && !supply.options.checkpoints.contains_key(q)
        {
            return Err(bad(
                "options.quantization",
                format!("`{q}` weights need a checkpoint: list it in options.checkpoints"),
            ));
        }
    }
    for tp in std::iter::once(current.tensor_parallel_size)
        .chain(supply.options.tensor_parallel_size.iter().copied())
    {
        if model.num_attention_heads % tp != 0 {
            return Err(bad(
                "gpus_per_replica",
                format!(
                    "tensor parallel size {tp} does not divide {}'s {} attention heads",
                    supply.model, model.num_attention_heads
                ),
            ));
        }
    }
    Ok(())
}

fn resolve(base: &Path, location: &str) -> String {
    if location.contains("://") || Path::new(location).is_absolute() {
        location.to_string()
    } else {
        base.join(location).to_string_lossy().into_owned()
    }
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
