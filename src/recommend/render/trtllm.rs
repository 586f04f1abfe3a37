//! TensorRT-LLM `trtllm-serve` extra options: the YAML given to `--config` (alias
//! `--extra_llm_api_options`), whose keys are LlmArgs fields (unknown keys are rejected).
//!
//! TRT-LLM sizes its KV cache as a fraction of the memory *left after loading the weights*
//! (`kv_cache_config.free_gpu_memory_fraction`), vLLM as a fraction of the whole GPU; the renderer
//! converts so both leave the same number of bytes to the cache.

use super::{Renderer, SnippetFile, Target, differs, header, kv_dtype_name};
use crate::config::Engine;
use crate::deployment;
use crate::knobs::{Knob, ServingConfig};

pub struct TrtLlm;

/// TRT-LLM's free-memory fraction (`free_gpu_memory_fraction`, Triton's
/// `kv_cache_free_gpu_mem_fraction`) for the KV bytes vLLM's `gpu_memory_utilization` leaves.
pub(super) fn free_fraction(target: &Target, config: &ServingConfig) -> Option<f64> {
    let d = deployment::of(target.supply, config, target.catalog).ok()?;
    let total = d.gpu.memory_bytes();
    let used = d.model.weight_bytes(d.quantization(), d.engine.dtype)
        / d.config.tensor_parallel_size.max(1) as f64
        + d.step_model.activation_reserve_bytes();
    let free = total - used;
    (free > 0.0).then(|| ((total * config.gpu_memory_utilization - used) / free).clamp(0.01, 1.0))
}

impl Renderer for TrtLlm {
    fn engine(&self) -> Engine {
        Engine::Trtllm
    }

    fn render(
        &self,
        target: &Target,
        before: &ServingConfig,
        after: &ServingConfig,
    ) -> Vec<SnippetFile> {
        let base = Some(before);
        let mut top = Vec::new();
        let mut kv = Vec::new();
        if differs(after, base, Knob::TensorParallelSize) {
            top.push(format!(
                "tensor_parallel_size: {}",
                after.tensor_parallel_size
            ));
        }
        if differs(after, base, Knob::MaxNumSeqs) {
            top.push(format!("max_batch_size: {}", after.max_num_seqs));
        }
        if differs(after, base, Knob::MaxNumBatchedTokens) {
            top.push(format!("max_num_tokens: {}", after.max_num_batched_tokens));
        }
        if differs(after, base, Knob::EnableExpertParallel) {
            let experts = if after.enable_expert_parallel {
                after.tensor_parallel_size
            } else {
                1
            };
            top.push(format!("moe_expert_parallel_size: {experts}"));
        }
        if differs(after, base, Knob::EnableChunkedPrefill) {
            top.push(format!(
                "enable_chunked_prefill: {}",
                after.enable_chunked_prefill
            ));
        }
        if differs(after, base, Knob::BlockSize) {
            kv.push(format!("tokens_per_block: {}", after.block_size));
        }
        if differs(after, base, Knob::GpuMemoryUtilization)
            && let Some(f) = free_fraction(target, after)
        {
            kv.push(format!("free_gpu_memory_fraction: {f:.3}"));
        }
        if differs(after, base, Knob::EnablePrefixCaching) {
            kv.push(format!(
                "enable_block_reuse: {}",
                after.enable_prefix_caching
            ));
        }
        if differs(after, base, Knob::KvCacheDtype) {
            kv.push(format!("dtype: {}", kv_dtype_name(after)));
        }
        if differs(after, base, Knob::KvOffloadGib) {
            // Bytes of host memory per replica for blocks evicted from the GPU.
            let bytes = (after.kv_offload_gib * (1u64 << 30) as f64).round() as u64;
            kv.push(format!("host_cache_size: {bytes}"));
        }
        let mut text = header(
            "#",
            &format!(
                "trtllm-serve options for supply `{}`; apply with `trtllm-serve {} --config trtllm.yaml`",
                target.supply.id, target.supply.model
            ),
            before,
            after,
        );
        for line in &top {
            text.push_str(&format!("{line}\n"));
        }
        if !kv.is_empty() {
            text.push_str("kv_cache_config:\n");
            for line in &kv {
                text.push_str(&format!("  {line}\n"));
            }
        }
        if differs(after, base, Knob::CapacitySchedulerPolicy) {
            text.push_str(&format!(
                "scheduler_config:\n  capacity_scheduler_policy: {}\n",
                after.capacity_scheduler_policy.trtllm_name()
            ));
        }
        if differs(after, base, Knob::PdDisaggregation) {
            if after.pd_disaggregation.is_none() {
                text.push_str("cache_transceiver_config: null\n");
            } else {
                if let Some((p, d)) = after
                    .pd_disaggregation
                    .and_then(|r| r.split(after.replicas))
                {
                    text.push_str(&format!(
                        "# Disaggregated: {p} context and {d} generation servers with these options, \
                         listed in a `trtllm-serve disaggregated` config.\n"
                    ));
                }
                text.push_str("cache_transceiver_config:\n  backend: NIXL\n");
            }
        }
        if differs(after, base, Knob::Speculative) {
            match &after.speculative {
                Some(s) => text.push_str(&format!(
                    "speculative_config:\n  decoding_type: Draft_Target\n  max_draft_len: {}\n  speculative_model: {}\n",
                    s.num_speculative_tokens, s.draft_model
                )),
                None => text.push_str("speculative_config: null\n"),
            }
        }
        vec![SnippetFile {
            name: "trtllm.yaml".into(),
            text,
        }]
    }
}
