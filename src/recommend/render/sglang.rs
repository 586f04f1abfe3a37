//! SGLang `python -m sglang.launch_server` flags (as its current `server_args.py` spells them).
//!
//! SGLang's page size is left to it (the radix cache matches single tokens) and its draft-model
//! speculation is not modelled, so the search leaves those knobs alone. Disaggregation runs the same
//! command twice, with `--disaggregation-mode prefill` and `decode`; KV offloading is SGLang's
//! hierarchical cache, sized per TP rank.

use super::{
    CommandLine, Renderer, SnippetFile, Target, differs, launch_command, launch_script,
    quantizes_at_load,
};
use crate::config::Engine;
use crate::knobs::{Knob, KvCacheDtype, ServingConfig};

pub struct Sglang;

impl Sglang {
    fn apply(c: &mut CommandLine, config: &ServingConfig, base: Option<&ServingConfig>) {
        let differs = |knob: Knob| differs(config, base, knob);
        let settings = [
            (
                Knob::TensorParallelSize,
                &["--tp-size", "--tensor-parallel-size"][..],
                config.tensor_parallel_size.to_string(),
            ),
            (
                Knob::MaxNumSeqs,
                &["--max-running-requests"],
                config.max_num_seqs.to_string(),
            ),
            (
                Knob::GpuMemoryUtilization,
                &["--mem-fraction-static"],
                config.gpu_memory_utilization.to_string(),
            ),
            (
                Knob::SchedulePolicy,
                &["--schedule-policy"],
                config.schedule_policy_name().to_string(),
            ),
        ];
        for (knob, flags, value) in settings {
            if differs(knob) {
                c.set(flags, &value);
            }
        }
        if differs(Knob::MaxNumBatchedTokens) {
            c.set(
                &["--chunked-prefill-size"],
                &config.max_num_batched_tokens.to_string(),
            );
        }
        if differs(Knob::EnablePrefixCaching) {
            c.remove(&["--disable-radix-cache"], false);
            if !config.enable_prefix_caching {
                c.0.push("--disable-radix-cache".into());
            }
        }
        // A full command leaves SGLang's defaults (auto KV dtype, no expert parallelism) out.
        if differs(Knob::KvCacheDtype)
            && (base.is_some() || config.kv_cache_dtype != KvCacheDtype::Auto)
        {
            let dtype = match config.kv_cache_dtype {
                KvCacheDtype::Fp8 => "fp8_e4m3",
                KvCacheDtype::Bf16 => "bf16",
                KvCacheDtype::Auto | KvCacheDtype::Fp16 => "auto",
            };
            c.set(&["--kv-cache-dtype"], dtype);
        }
        if differs(Knob::EnableExpertParallel) && (base.is_some() || config.enable_expert_parallel)
        {
            let ep = if config.enable_expert_parallel {
                config.tensor_parallel_size
            } else {
                1
            };
            c.set(
                &["--ep-size", "--ep", "--expert-parallel-size"],
                &ep.to_string(),
            );
        }
        if differs(Knob::KvOffloadGib) {
            c.remove(&["--enable-hierarchical-cache"], false);
            c.remove(&["--hicache-size"], true);
            if config.kv_offload_gib > 0.0 {
                // `--hicache-size` is GB of host memory per TP rank.
                let per_rank = config.kv_offload_gib / f64::from(config.tensor_parallel_size);
                c.0.push("--enable-hierarchical-cache".into());
                c.set(&["--hicache-size"], &format!("{}", per_rank.ceil()));
            }
        }
        if differs(Knob::PdDisaggregation) {
            c.remove(
                &["--disaggregation-mode", "--disaggregation-transfer-backend"],
                true,
            );
            if config.pd_disaggregation.is_some() {
                c.set(&["--disaggregation-mode"], "prefill");
                c.set(&["--disaggregation-transfer-backend"], "nixl");
            }
        }
    }
}

impl Renderer for Sglang {
    fn engine(&self) -> Engine {
        Engine::Sglang
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
            &["python", "-m", "sglang.launch_server", "--model-path"],
            before,
            Self::apply,
        );
        let mut new = old.clone();
        Self::apply(&mut new, after, Some(before));
        new.serve_weights(
            supply,
            (before, after),
            &["--quantization"],
            quantizes_at_load(supply, after).map(|q| q.name()),
        );
        let mut script = launch_script(
            "sglang.sh",
            "SGLang server command (sglang.launch_server flags)",
            supply,
            (before, after),
            (&old, &new),
        );
        super::note_disaggregation(
            &mut script,
            after,
            "with `--disaggregation-mode decode` instead",
            "SGLang's router in its prefill/decode mode, which pairs a prefill and a decode \
             instance for each request (they hand the KV over through the bootstrap port)",
        );
        vec![script]
    }
}
