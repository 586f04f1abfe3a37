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
//! Cases of one `group` (default: the model) are one setup measured under different loads:
//! calibrated scores fit each case on the other scored cases of its group (leave one run out).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::Dtype;
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
    pub trace: PathBuf,
    #[serde(default)]
    pub format: Option<String>,
    /// What a reader should know about the run.
    #[serde(default)]
    pub note: Option<String>,
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
            if case.tensor_parallel_size == 0 {
                return Err(bad(format!(
                    "case `{}`: tensor_parallel_size must be at least 1",
                    case.id
                )));
            }
            if case
                .request_timeout_s
                .is_some_and(|t| !(t.is_finite() && t > 0.0))
            {
                return Err(bad(format!(
                    "case `{}`: request_timeout_s must be positive",
                    case.id
                )));
            }
            case.trace = base.join(&case.trace);
        }
        Ok(file)
    }
}
