//! `tunelake eval` cases files: deployments with measured runs, to score the engine model on.
//!
//! ```toml
//! [[case]]
//! id = "llama-2-7b-tp1-codegen"
//! model = "meta-llama/Llama-2-7b-hf"   # catalog id, or a model directory / config.json path
//! gpu = "H100-SXM"
//! tensor_parallel_size = 1
//! dtype = "fp16"
//! num_gpu_blocks = 7462                # the engine's logged "# GPU blocks", when known
//! request_timeout_s = 300              # the load generator's client timeout
//! trace = "requests/run.csv"           # measured requests, relative to this file
//! format = "blis"                      # an `import` format; omit for requests-contract Parquet/CSV
//! [case.config]                        # the engine's knobs, as a supply's `config`
//! max_num_seqs = 128
//! ```
//!
//! A case without a trace describes its workload instead, with the measured aggregates:
//!
//! ```toml
//! [case.workload]
//! stages = [{ rate_rps = 5, duration_s = 600 }, { rate_rps = 10, duration_s = 600 }]
//! prompt_tokens = { mean = 590, cv = 0.2 }   # lognormal with this mean and coefficient of variation
//! output_tokens = { mean = 247 }             # cv 0: every request the same
//! shared_prefix = { groups = 10, tokens = 100 }
//! [case.measured]
//! ttft_p50_ms = 24.3
//! ttft_p90_ms = 28.4
//! decode_ms_per_token = 7.26
//! ```
//!
//! An offline benchmark (every request at once, as `trtllm-bench throughput` runs) is a workload
//! with one fast stage and its measured `output_tokens_per_s`; `engine` picks the engine whose
//! scheduler and defaults the case runs (default `vllm`).
//!
//! Cases of one `group` (default: the model) are one setup measured under different loads:
//! calibrated scores fit each case on the other scored cases of its group (leave one run out).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::Dtype;
use crate::config::Engine;
use crate::error::{Error, Result};
use crate::knobs::EngineSettings;

/// A cases file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    #[serde(rename = "case")]
    pub cases: Vec<CaseSpec>,
}

/// One measured run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub id: String,
    /// The engine that ran the case (default `vllm`).
    #[serde(default = "vllm")]
    pub engine: Engine,
    pub model: String,
    pub gpu: String,
    #[serde(default = "one")]
    pub tensor_parallel_size: u32,
    /// Activation and unquantized-weight dtype (default bf16).
    #[serde(default)]
    pub dtype: Option<Dtype>,
    #[serde(default)]
    pub config: EngineSettings,
    #[serde(default)]
    pub num_gpu_blocks: Option<u64>,
    #[serde(default)]
    pub request_timeout_s: Option<f64>,
    #[serde(default)]
    pub group: Option<String>,
    /// False for stress runs (overloaded by design): reported, not scored, not fitted on.
    #[serde(default = "yes")]
    pub scored: bool,
    /// Measured requests (Parquet/CSV, or `format`), relative to the cases file.
    #[serde(default)]
    pub trace: Option<PathBuf>,
    #[serde(default)]
    pub format: Option<String>,
    /// The workload, for a case measured only in aggregate.
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
    /// Measured aggregates; they replace those computed from the trace.
    #[serde(default)]
    pub measured: Option<MeasuredSpec>,
    /// What a reader should know about the run.
    #[serde(default)]
    pub note: Option<String>,
}

/// Poisson arrivals in rate stages, lognormal lengths, optional shared-prefix groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub stages: Vec<Stage>,
    pub prompt_tokens: LengthSpec,
    pub output_tokens: LengthSpec,
    #[serde(default)]
    pub shared_prefix: Option<SharedPrefix>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub rate_rps: f64,
    pub duration_s: f64,
}

/// A token-count distribution: lognormal with this mean and coefficient of variation (0: constant).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthSpec {
    pub mean: f64,
    #[serde(default)]
    pub cv: f64,
}

/// Each request opens with one of `groups` shared prompts of `tokens` tokens, uniformly.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefix {
    pub groups: u64,
    pub tokens: u32,
}

/// What was measured (latencies in ms); each figure is optional, at least one is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredSpec {
    #[serde(default)]
    pub ttft_p50_ms: Option<f64>,
    #[serde(default)]
    pub ttft_p90_ms: Option<f64>,
    #[serde(default)]
    pub decode_ms_per_token: Option<f64>,
    /// Output tokens per second over the run (an offline benchmark's figure).
    #[serde(default)]
    pub output_tokens_per_s: Option<f64>,
    /// Requests that failed.
    #[serde(default)]
    pub failed: usize,
}

fn vllm() -> Engine {
    Engine::Vllm
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

impl CaseSpec {
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.model)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be positive, got {v}"))
            }
        };
        if self.tensor_parallel_size == 0 {
            return Err("tensor_parallel_size must be at least 1".into());
        }
        if let Some(t) = self.request_timeout_s {
            positive("request_timeout_s", t)?;
        }
        match (&self.trace, &self.workload) {
            (Some(_), Some(_)) => return Err("give a trace or a workload, not both".into()),
            (None, None) => return Err("needs a trace or a workload".into()),
            (None, Some(_)) if self.measured.is_none() => {
                return Err("a workload case needs [case.measured]".into());
            }
            _ => {}
        }
        if let Some(w) = &self.workload {
            if w.stages.is_empty() {
                return Err("workload.stages is empty".into());
            }
            for s in &w.stages {
                positive("stages.rate_rps", s.rate_rps)?;
                positive("stages.duration_s", s.duration_s)?;
            }
            for (name, l) in [
                ("prompt_tokens", &w.prompt_tokens),
                ("output_tokens", &w.output_tokens),
            ] {
                positive(&format!("{name}.mean"), l.mean)?;
                if !(l.cv.is_finite() && l.cv >= 0.0) {
                    return Err(format!("{name}.cv must be >= 0"));
                }
            }
            if w.shared_prefix.as_ref().is_some_and(|p| p.groups == 0) {
                return Err("shared_prefix.groups must be at least 1".into());
            }
        }
        if self.engine.is_hosted() {
            return Err("a hosted API has no engine to simulate".into());
        }
        if let Some(m) = &self.measured {
            let given = [
                ("ttft_p50_ms", m.ttft_p50_ms),
                ("ttft_p90_ms", m.ttft_p90_ms),
                ("decode_ms_per_token", m.decode_ms_per_token),
                ("output_tokens_per_s", m.output_tokens_per_s),
            ];
            if given.iter().all(|(_, v)| v.is_none()) {
                return Err("[case.measured] gives no figure".into());
            }
            for (name, v) in given {
                if let Some(v) = v {
                    positive(&format!("measured.{name}"), v)?;
                }
            }
        }
        Ok(())
    }
}

impl CasesFile {
    /// Reads and checks a cases file; trace paths become relative to the working directory.
    pub fn load(path: &Path) -> Result<CasesFile> {
        let bad = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut file: CasesFile =
            toml::from_str(&text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
        if file.cases.is_empty() {
            return Err(bad("no [[case]]".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut ids = std::collections::HashSet::new();
        for case in &mut file.cases {
            if !ids.insert(case.id.clone()) {
                return Err(bad(format!("case id `{}` is used twice", case.id)));
            }
            case.check()
                .map_err(|m| bad(format!("case `{}`: {m}", case.id)))?;
            case.trace = case.trace.as_ref().map(|t| base.join(t));
        }
        Ok(file)
    }
}
