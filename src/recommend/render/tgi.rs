//! Hugging Face TGI `text-generation-launcher` flags (v3.3).
//!
//! TGI has no KV block size, prefix-caching or chunked-prefill switch on its command line (both are
//! always on in its v3 engine) and speculates with n-grams or Medusa heads (`--speculate N`), not
//! with a separate draft model, so the search leaves those knobs alone for TGI supplies.

use super::{
    CommandLine, Renderer, SnippetFile, Target, differs, launch_command, launch_script,
    quantizes_at_load,
};
use crate::catalog::Quantization;
use crate::config::Engine;
use crate::knobs::{Knob, KvCacheDtype, ServingConfig};

pub struct Tgi;

impl Tgi {
    fn apply(c: &mut CommandLine, config: &ServingConfig, base: Option<&ServingConfig>) {
        let differs = |knob: Knob| differs(config, base, knob);
        let settings = [
            (
                Knob::TensorParallelSize,
                "--num-shard",
                config.tensor_parallel_size.to_string(),
            ),
            (
                Knob::MaxNumSeqs,
                "--max-batch-size",
                config.max_num_seqs.to_string(),
            ),
            (
                Knob::MaxNumBatchedTokens,
                "--max-batch-prefill-tokens",
                config.max_num_batched_tokens.to_string(),
            ),
            (
                Knob::GpuMemoryUtilization,
                "--cuda-memory-fraction",
                config.gpu_memory_utilization.to_string(),
            ),
            (
                Knob::WaitingServedRatio,
                "--waiting-served-ratio",
                config.waiting_served_ratio.to_string(),
            ),
        ];
        for (knob, flag, value) in settings {
            if differs(knob) {
                c.set(&[flag], &value);
            }
        }
        if differs(Knob::KvCacheDtype) {
            c.remove(&["--kv-cache-dtype"], true);
            if config.kv_cache_dtype == KvCacheDtype::Fp8 {
                c.set(&["--kv-cache-dtype"], "fp8_e4m3fn");
            }
        }
    }
}

impl Renderer for Tgi {
    fn engine(&self) -> Engine {
        Engine::Tgi
    }

    fn render(
        &self,
        target: &Target,
        before: &ServingConfig,
        after: &ServingConfig,
    ) -> Vec<SnippetFile> {
        let supply = target.supply;
        let old = launch_command(
            supply,
            &["text-generation-launcher", "--model-id"],
            before,
            Self::apply,
        );
        let mut new = old.clone();
        Self::apply(&mut new, after, Some(before));
        // TGI reads a quantized checkpoint's format from its config; it quantizes to FP8 at load
        // only when told to.
        new.serve_weights(
            supply,
            (before, after),
            &["--quantize"],
            quantizes_at_load(supply, after)
                .filter(|&q| q == Quantization::Fp8)
                .map(|_| "fp8"),
        );
        vec![launch_script(
            "tgi.sh",
            "TGI launcher command (text-generation-launcher v3.3 flags)",
            supply,
            (before, after),
            (&old, &new),
        )]
    }
}
