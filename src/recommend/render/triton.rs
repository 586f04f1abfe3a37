//! Triton Inference Server `config.pbtxt` fields of a TensorRT-LLM (`tensorrtllm` backend) model:
//! `max_batch_size`, `dynamic_batching` and the backend's `parameters`.
//!
//! Tensor parallelism, KV block size, the token budget, KV dtype and speculative decoding are fixed
//! when the TensorRT-LLM engine is built, not in `config.pbtxt`, so the search leaves them alone for
//! Triton supplies. `max_queue_delay_microseconds` is 0: the in-flight batcher the simulator models
//! schedules a request as soon as it arrives.

use super::{Renderer, SnippetFile, Target, differs, header};
use crate::config::Engine;
use crate::knobs::{Knob, ServingConfig};

pub struct Triton;

fn parameter(key: &str, value: impl std::fmt::Display) -> String {
    format!("parameters: {{\n  key: \"{key}\"\n  value: {{ string_value: \"{value}\" }}\n}}\n")
}

impl Renderer for Triton {
    fn engine(&self) -> Engine {
        Engine::Triton
    }

    fn render(
        &self,
        target: &Target,
        before: &ServingConfig,
        after: &ServingConfig,
    ) -> Vec<SnippetFile> {
        let base = Some(before);
        let mut text = header(
            "#",
            &format!(
                "config.pbtxt changes (tensorrtllm backend) for supply `{}`",
                target.supply.id
            ),
            before,
            after,
        );
        if differs(after, base, Knob::MaxNumSeqs) {
            text.push_str(&format!(
                "max_batch_size: {0}\ndynamic_batching {{\n  preferred_batch_size: [ {0} ]\n  max_queue_delay_microseconds: 0\n}}\n",
                after.max_num_seqs
            ));
        }
        if differs(after, base, Knob::GpuMemoryUtilization)
            && let Some(f) = super::trtllm::free_fraction(target, after)
        {
            text.push_str(&parameter(
                "kv_cache_free_gpu_mem_fraction",
                format!("{f:.3}"),
            ));
        }
        if differs(after, base, Knob::EnablePrefixCaching) {
            text.push_str(&parameter(
                "enable_kv_cache_reuse",
                after.enable_prefix_caching,
            ));
        }
        if differs(after, base, Knob::EnableChunkedPrefill) {
            text.push_str(&parameter(
                "enable_chunked_context",
                after.enable_chunked_prefill,
            ));
        }
        if differs(after, base, Knob::CapacitySchedulerPolicy) {
            let policy = after.capacity_scheduler_policy.trtllm_name().to_lowercase();
            text.push_str(&parameter("batch_scheduler_policy", policy));
        }
        vec![SnippetFile {
            name: "triton.pbtxt".into(),
            text,
        }]
    }
}
