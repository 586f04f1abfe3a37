//! The candidate space of a supply: complete serving configurations built from its `options`,
//! filtered by the guardrails (seed 001's per-knob `max_delta` and hard `bounds`) and pruned
//! analytically before anything is simulated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::config::{Speculative, Supply};
use crate::error::{Error, Result};
use crate::hash::stable_hash64;
use crate::simulation::{Deployment, KvCacheDtype, deployment_for};

/// One complete serving configuration, in the engine-neutral vocabulary (vLLM's names) that the
/// simulator and the snippet renderers share. Replicas are kept apart from the rest (the "shape"),
/// because the search sizes replicas by bisection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// Catalog GPU id.
    pub gpu: String,
    pub tensor_parallel_size: u32,
    pub replicas: u32,
    pub block_size: u32,
    pub max_num_seqs: u32,
    pub max_num_batched_tokens: u32,
    pub gpu_memory_utilization: f64,
    pub enable_prefix_caching: bool,
    pub enable_chunked_prefill: bool,
    pub kv_cache_dtype: KvCacheDtype,
    pub speculative: Option<Speculative>,
}

/// A knob whose value differs between two configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub knob: &'static str,
    pub before: Value,
    pub after: Value,
}

impl Change {
    /// `knob: before -> after`, values as a person writes them.
    pub fn describe(&self) -> String {
        let show = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "off".into(),
            Value::Object(o) if o.contains_key("draft_model") => format!(
                "{} drafting {} tokens",
                o["draft_model"].as_str().unwrap_or("?"),
                o["num_speculative_tokens"]
            ),
            other => other.to_string(),
        };
        format!(
            "{}: {} -> {}",
            self.knob,
            show(&self.before),
            show(&self.after)
        )
    }
}

impl ServingConfig {
    /// What the supply runs today, engine defaults filled in.
    pub fn current(supply: &Supply, catalog: &Catalog) -> Result<ServingConfig> {
        let d = deployment_for(supply, catalog)?;
        let e = &d.engine;
        Ok(ServingConfig {
            gpu: d.gpu.id.clone(),
            tensor_parallel_size: d.tensor_parallel_size,
            replicas: d.replicas,
            block_size: e.block_size,
            max_num_seqs: e.max_num_seqs,
            max_num_batched_tokens: e.max_num_batched_tokens,
            gpu_memory_utilization: e.gpu_memory_utilization,
            enable_prefix_caching: e.enable_prefix_caching,
            enable_chunked_prefill: e.enable_chunked_prefill,
            kv_cache_dtype: e.kv_cache_dtype,
            speculative: supply.config.speculative.clone(),
        })
    }

    /// The simulated deployment of this configuration for `supply` (step model still the default
    /// one: the search sets the calibrated one). The supply's `per_gpu_hour` prices its own GPU; any
    /// other GPU is priced from the catalog.
    pub fn deployment(&self, supply: &Supply, catalog: &Catalog) -> Result<Deployment> {
        let mut d = deployment_for(supply, catalog)?;
        let gpu = catalog.gpu(&self.gpu)?;
        if gpu.id != d.gpu.id {
            d.price_per_gpu_hour = gpu.price_per_hour_usd;
            d.gpu = gpu.clone();
        }
        d.tensor_parallel_size = self.tensor_parallel_size;
        d.replicas = self.replicas;
        let e = &mut d.engine;
        e.block_size = self.block_size;
        e.max_num_seqs = self.max_num_seqs;
        e.max_num_batched_tokens = self.max_num_batched_tokens;
        e.gpu_memory_utilization = self.gpu_memory_utilization;
        e.enable_prefix_caching = self.enable_prefix_caching;
        e.enable_chunked_prefill = self.enable_chunked_prefill;
        e.kv_cache_dtype = self.kv_cache_dtype;
        match &self.speculative {
            Some(s) => {
                d.draft_model = Some(catalog.model(&s.draft_model)?.clone());
                d.engine.speculative = Some(crate::simulation::SpeculativeConfig::new(
                    &s.draft_model,
                    s.num_speculative_tokens,
                ));
            }
            None => {
                d.draft_model = None;
                d.engine.speculative = None;
            }
        }
        Ok(d)
    }

    /// GPUs the configuration occupies.
    pub fn gpus(&self) -> u32 {
        self.replicas * self.tensor_parallel_size
    }

    /// The knobs as (name, JSON value), in a fixed order.
    pub fn knobs(&self) -> [(&'static str, Value); 11] {
        [
            ("gpu", json!(self.gpu)),
            ("tensor_parallel_size", json!(self.tensor_parallel_size)),
            ("replicas", json!(self.replicas)),
            ("block_size", json!(self.block_size)),
            ("max_num_seqs", json!(self.max_num_seqs)),
            ("max_num_batched_tokens", json!(self.max_num_batched_tokens)),
            ("gpu_memory_utilization", json!(self.gpu_memory_utilization)),
            ("enable_prefix_caching", json!(self.enable_prefix_caching)),
            ("enable_chunked_prefill", json!(self.enable_chunked_prefill)),
            ("kv_cache_dtype", json!(self.kv_cache_dtype)),
            ("speculative", json!(self.speculative)),
        ]
    }

    /// Knobs whose value differs from `base`.
    pub fn changes_from(&self, base: &ServingConfig) -> Vec<Change> {
        self.knobs()
            .into_iter()
            .zip(base.knobs())
            .filter(|((_, a), (_, b))| a != b)
            .map(|((knob, after), (_, before))| Change {
                knob,
                before,
                after,
            })
            .collect()
    }

    /// A short, stable, human-readable description (also hashed into the candidate id).
    pub fn describe(&self) -> String {
        let spec = self.speculative.as_ref().map_or("off".to_string(), |s| {
            format!("{}×{}", s.draft_model, s.num_speculative_tokens)
        });
        format!(
            "{}×{} tp{} block{} seqs{} batched{} mem{} prefix{} chunked{} kv-{} spec-{}",
            self.replicas,
            self.gpu,
            self.tensor_parallel_size,
            self.block_size,
            self.max_num_seqs,
            self.max_num_batched_tokens,
            self.gpu_memory_utilization,
            u8::from(self.enable_prefix_caching),
            u8::from(self.enable_chunked_prefill),
            json!(self.kv_cache_dtype).as_str().unwrap_or("auto"),
            spec
        )
    }

    /// Stable id of the configuration within its supply.
    pub fn id(&self) -> String {
        format!("{:016x}", stable_hash64(&self.describe()))
    }

    fn numeric(&self, knob: &str) -> Option<f64> {
        Some(match knob {
            "replicas" => self.replicas as f64,
            "tensor_parallel_size" => self.tensor_parallel_size as f64,
            "block_size" => self.block_size as f64,
            "max_num_seqs" => self.max_num_seqs as f64,
            "max_num_batched_tokens" => self.max_num_batched_tokens as f64,
            "gpu_memory_utilization" => self.gpu_memory_utilization,
            "num_speculative_tokens" => self
                .speculative
                .as_ref()
                .map_or(0.0, |s| s.num_speculative_tokens as f64),
            _ => return None,
        })
    }
}

/// The configurations to search: shapes (everything but replicas) × replica counts.
#[derive(Debug, Clone)]
pub struct SearchSpace {
    /// Shapes that passed guardrails and pruning; `replicas` is set to the current count.
    pub shapes: Vec<ServingConfig>,
    /// Replica counts allowed by the guardrails, ascending.
    pub replicas: Vec<u32>,
    /// Configurations enumerated before guardrails and pruning.
    pub enumerated: usize,
    /// Configurations removed, per reason.
    pub pruned: BTreeMap<String, usize>,
}

impl SearchSpace {
    /// Candidates in the space (shapes × replica counts).
    pub fn len(&self) -> usize {
        self.shapes.len() * self.replicas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `options` if given, else the current value; the current value always stays in the list so the
/// search can conclude "keep it".
fn values<T: Clone + PartialEq>(options: &[T], current: T) -> Vec<T> {
    let mut v = vec![current];
    for o in options {
        if !v.contains(o) {
            v.push(o.clone());
        }
    }
    v
}

/// Why `candidate` breaks a guardrail relative to `current`, if it does.
fn guardrail(
    supply: &Supply,
    current: &ServingConfig,
    candidate: &ServingConfig,
) -> Option<String> {
    for (knob, max) in &supply.options.max_delta {
        let (Some(old), Some(new)) = (current.numeric(knob), candidate.numeric(knob)) else {
            continue;
        };
        // Symmetric in ratio: max_delta 1.0 allows ×2 and ÷2.
        if old > 0.0 && new > 0.0 && (new / old).max(old / new) - 1.0 > max + 1e-9 {
            return Some(format!("guardrail: {knob} max_delta"));
        }
    }
    for (knob, [lo, hi]) in &supply.options.bounds {
        if let Some(v) = candidate.numeric(knob)
            && (v < *lo || v > *hi)
            && !(knob == "num_speculative_tokens" && v == 0.0)
        {
            return Some(format!("guardrail: {knob} bounds"));
        }
    }
    None
}

/// Why a shape cannot run at all, if it cannot (checked without simulating).
fn infeasible(shape: &ServingConfig, supply: &Supply, catalog: &Catalog) -> Result<Option<String>> {
    let d = shape.deployment(supply, catalog)?;
    if d.model.num_attention_heads % shape.tensor_parallel_size != 0 {
        return Ok(Some(
            "tensor parallel size does not divide the heads".into(),
        ));
    }
    let Ok(blocks) = d.num_gpu_blocks() else {
        return Ok(Some("weights do not fit in GPU memory".into()));
    };
    let max_len = u64::from(d.max_model_len());
    if blocks * u64::from(shape.block_size) < max_len {
        return Ok(Some(
            "KV cache smaller than one max_model_len sequence".into(),
        ));
    }
    if !shape.enable_chunked_prefill && u64::from(shape.max_num_batched_tokens) < max_len {
        return Ok(Some(
            "max_num_batched_tokens below max_model_len without chunked prefill".into(),
        ));
    }
    Ok(None)
}

/// Builds the search space of `supply` around `current`.
pub fn space(supply: &Supply, current: &ServingConfig, catalog: &Catalog) -> Result<SearchSpace> {
    let o = &supply.options;
    let gpus = o
        .gpu
        .iter()
        .map(|g| catalog.gpu(g).map(|s| s.id.clone()))
        .collect::<Result<Vec<_>>>()?;
    let kv_dtypes = o
        .kv_cache_dtype
        .iter()
        .map(|t| {
            serde_json::from_value::<KvCacheDtype>(Value::String(t.clone())).map_err(|_| {
                Error::Setting {
                    key: format!("supplies[{}].options.kv_cache_dtype", supply.id),
                    message: format!("unknown KV cache dtype `{t}`"),
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let speculative = {
        let mut v: Vec<Option<Speculative>> = vec![current.speculative.clone()];
        for s in &o.speculative {
            if !v.contains(&Some(s.clone())) {
                v.push(Some(s.clone()));
            }
        }
        v
    };
    let mut shapes = vec![ServingConfig {
        replicas: current.replicas,
        ..current.clone()
    }];
    macro_rules! expand {
        ($field:ident, $values:expr) => {{
            let vals = $values;
            shapes = shapes
                .into_iter()
                .flat_map(|s| {
                    vals.iter().map(move |v| ServingConfig {
                        $field: v.clone(),
                        ..s.clone()
                    })
                })
                .collect();
        }};
    }
    expand!(gpu, values(&gpus, current.gpu.clone()));
    expand!(
        tensor_parallel_size,
        values(&o.tensor_parallel_size, current.tensor_parallel_size)
    );
    expand!(block_size, values(&o.block_size, current.block_size));
    expand!(max_num_seqs, values(&o.max_num_seqs, current.max_num_seqs));
    expand!(
        max_num_batched_tokens,
        values(&o.max_num_batched_tokens, current.max_num_batched_tokens)
    );
    expand!(
        gpu_memory_utilization,
        values(&o.gpu_memory_utilization, current.gpu_memory_utilization)
    );
    expand!(
        enable_prefix_caching,
        values(&o.enable_prefix_caching, current.enable_prefix_caching)
    );
    expand!(
        enable_chunked_prefill,
        values(&o.enable_chunked_prefill, current.enable_chunked_prefill)
    );
    expand!(kv_cache_dtype, values(&kv_dtypes, current.kv_cache_dtype));
    expand!(speculative, speculative);

    let mut replicas = values(&o.replicas, current.replicas);
    replicas.sort_unstable();
    let enumerated = shapes.len() * replicas.len();
    let mut pruned: BTreeMap<String, usize> = BTreeMap::new();
    replicas.retain(|&r| {
        let c = ServingConfig {
            replicas: r,
            ..current.clone()
        };
        match guardrail(supply, current, &c) {
            Some(reason) => {
                *pruned.entry(reason).or_default() += shapes.len();
                false
            }
            None => r > 0,
        }
    });
    let mut kept = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let reason = match guardrail(supply, current, &shape) {
            Some(r) => Some(r),
            None => infeasible(&shape, supply, catalog)?,
        };
        match reason {
            Some(r) => *pruned.entry(r).or_default() += replicas.len(),
            None => kept.push(shape),
        }
    }
    Ok(SearchSpace {
        shapes: kept,
        replicas,
        enumerated,
        pruned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PipelineFile;

    fn supply(options: &str) -> Supply {
        let text = format!(
            r#"
[run]
lake = "x"
out = "y"
[[supplies]]
id = "s"
engine = "vllm"
model = "Llama-3.1-70B"
gpu = "H100-SXM"
gpus_per_replica = 4
replicas = 2
price = {{ per_gpu_hour = 1.0 }}
slo = {{ p95_ttft_ms = 1, p95_tpot_ms = 1 }}
config = {{ max_num_seqs = 128, max_model_len = 8192 }}
options = {{ {options} }}
"#
        );
        toml::from_str::<PipelineFile>(&text)
            .unwrap()
            .supplies
            .remove(0)
    }

    #[test]
    fn prunes_what_cannot_start_and_what_breaks_guardrails() {
        let catalog = Catalog::bundled().unwrap();
        let s = supply(
            "tensor_parallel_size = [1, 3, 4, 8], max_num_seqs = [32, 128, 512], replicas = [1, 2, 8], max_delta = { max_num_seqs = 1.0 }, bounds = { replicas = [1, 4] }",
        );
        let current = ServingConfig::current(&s, &catalog).unwrap();
        let space = space(&s, &current, &catalog).unwrap();
        // 4 TP × 3 max_num_seqs × 3 replicas enumerated; replicas 8 breaks the bound, max_num_seqs
        // 32 and 512 the ×2 delta, TP 3 does not divide 64 heads, TP 1 cannot hold 70B weights.
        assert_eq!(space.enumerated, 36);
        assert_eq!(space.replicas, vec![1, 2]);
        let tps: Vec<u32> = space
            .shapes
            .iter()
            .map(|c| c.tensor_parallel_size)
            .collect();
        assert_eq!(tps, vec![4, 8]);
        assert!(space.shapes.iter().all(|c| c.max_num_seqs == 128));
        assert_eq!(space.len(), 4);
        let reasons: Vec<&str> = space.pruned.keys().map(String::as_str).collect();
        assert_eq!(
            reasons,
            [
                "guardrail: max_num_seqs max_delta",
                "guardrail: replicas bounds",
                "tensor parallel size does not divide the heads",
                "weights do not fit in GPU memory",
            ]
        );
    }
}
