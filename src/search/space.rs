//! The candidate space of a supply: complete serving configurations built from its `options`,
//! filtered by the guardrails (seed 001's per-knob `max_delta` and hard `bounds`) and pruned
//! analytically before anything is simulated.

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::config::{Engine, Supply};
use crate::deployment;
use crate::error::Result;
use crate::knobs::{self, Knob, ServingConfig};
use crate::simulation::SchedulerKind;

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

/// Why `candidate` breaks a guardrail relative to `current`, if it does.
fn guardrail(
    supply: &Supply,
    current: &ServingConfig,
    candidate: &ServingConfig,
) -> Option<String> {
    for (&knob, max) in &supply.options.max_delta {
        let (Some(old), Some(new)) = (current.numeric(knob), candidate.numeric(knob)) else {
            continue;
        };
        // Symmetric in ratio: max_delta 1.0 allows ×2 and ÷2.
        if old > 0.0 && new > 0.0 && (new / old).max(old / new) - 1.0 > max + 1e-9 {
            return Some(format!("guardrail: {knob} max_delta"));
        }
    }
    for (&knob, [lo, hi]) in &supply.options.bounds {
        // Speculation off (0 draft tokens) is always within bounds.
        if let Some(v) = candidate.numeric(knob)
            && (v < *lo || v > *hi)
            && !(knob == Knob::Speculative && v == 0.0)
        {
            return Some(format!("guardrail: {knob} bounds"));
        }
    }
    None
}

/// Why a shape cannot run at all, if it cannot (checked without simulating).
fn infeasible(shape: &ServingConfig, supply: &Supply, catalog: &Catalog) -> Result<Option<String>> {
    let d = deployment::of(supply, shape, catalog)?;
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
    if shape.kv_offload_gib > 0.0 && d.gpu.host_link_gbps.is_none() {
        return Ok(Some(
            "KV offload on a GPU without a host-link figure".into(),
        ));
    }
    if supply.engine == Engine::Sglang && shape.kv_offload_gib > 0.0 && !shape.enable_prefix_caching
    {
        return Ok(Some(
            "SGLang's hierarchical cache needs its radix cache".into(),
        ));
    }
    // vLLM refuses to start so; the other engines refuse only the prompts above the budget.
    if d.scheduler == SchedulerKind::VllmV1
        && !shape.enable_chunked_prefill
        && u64::from(shape.max_num_batched_tokens) < max_len
    {
        return Ok(Some(
            "max_num_batched_tokens below max_model_len without chunked prefill".into(),
        ));
    }
    Ok(None)
}

/// Builds the search space of `supply` around `current`.
pub fn space(supply: &Supply, current: &ServingConfig, catalog: &Catalog) -> Result<SearchSpace> {
    let o = &supply.options;
    let shapes = o.expand(current, Knob::Replicas);
    let mut replicas = knobs::choices(&o.replicas, &current.replicas);
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
        let current = deployment::current(&s).unwrap();
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
