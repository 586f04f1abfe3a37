//! `vllm serve` launch commands (vLLM 0.33 spelling), before and after.
//!
//! Speculative decoding is set with `--speculative-config '{"model": ..., "num_speculative_tokens":
//! k}'`: the separate `--speculative-model` / `--num-speculative-tokens` flags were removed in vLLM
//! 0.8.3, so a command that still has them gets them rewritten into `--speculative-config` with the
//! same values, and they are replaced whenever speculation is changed.

use serde_json::json;

use super::{
    CommandLine, Renderer, SnippetFile, Target, differs, kv_dtype_name, launch_command,
    launch_script, note_disaggregation, quantizes_at_load, shell_quote,
};
use crate::config::Engine;
use crate::knobs::{Knob, ServingConfig};

pub struct Vllm;

/// Every way a command may already set speculative decoding.
const SPECULATIVE_FLAGS: [&str; 7] = [
    "--speculative-config",
    "-sc",
    "--speculative-model",
    "--num-speculative-tokens",
    "--spec-model",
    "--spec-tokens",
    "--spec-method",
];

/// The speculative flags vLLM 0.8.3 removed, which [`Vllm::migrate`] rewrites.
const REMOVED_SPECULATIVE_FLAGS: [&str; 2] = ["--speculative-model", "--num-speculative-tokens"];

impl Vllm {
    /// Rewrites the removed `--speculative-model M --num-speculative-tokens K` into
    /// `--speculative-config`, keeping their values.
    fn migrate(c: &mut CommandLine) {
        let value_of = |flag: &str| {
            c.0.iter()
                .position(|t| CommandLine::spells(t, &[flag]))
                .and_then(|i| match c.0[i].split_once('=') {
                    Some((_, v)) => Some(v.to_string()),
                    None => c.0.get(i + 1).cloned(),
                })
        };
        let Some(model) = value_of(REMOVED_SPECULATIVE_FLAGS[0]) else {
            return;
        };
        let mut value = json!({"method": "draft_model", "model": model});
        if let Some(k) = value_of(REMOVED_SPECULATIVE_FLAGS[1]).and_then(|k| k.parse::<u32>().ok())
        {
            value["num_speculative_tokens"] = json!(k);
        }
        c.remove(&REMOVED_SPECULATIVE_FLAGS, true);
        c.0.extend([
            "--speculative-config".to_string(),
            shell_quote(&value.to_string()),
        ]);
    }

    /// Writes every knob of `config` that differs from `base` (all of them when `base` is None).
    fn apply(c: &mut CommandLine, config: &ServingConfig, base: Option<&ServingConfig>) {
        let differs = |knob: Knob| differs(config, base, knob);
        let numbers = [
            (
                Knob::TensorParallelSize,
                &["--tensor-parallel-size", "-tp"][..],
                config.tensor_parallel_size.to_string(),
            ),
            (
                Knob::BlockSize,
                &["--block-size"],
                config.block_size.to_string(),
            ),
            (
                Knob::MaxNumSeqs,
                &["--max-num-seqs"],
                config.max_num_seqs.to_string(),
            ),
            (
                Knob::MaxNumBatchedTokens,
                &["--max-num-batched-tokens"],
                config.max_num_batched_tokens.to_string(),
            ),
            (
                Knob::LongPrefillTokenThreshold,
                &["--long-prefill-token-threshold"],
                config.long_prefill_token_threshold.to_string(),
            ),
            (
                Knob::GpuMemoryUtilization,
                &["--gpu-memory-utilization", "--device-memory-utilization"],
                config.gpu_memory_utilization.to_string(),
            ),
            (
                Knob::KvCacheDtype,
                &["--kv-cache-dtype"],
                kv_dtype_name(config).to_string(),
            ),
        ];
        for (knob, names, value) in numbers {
            if differs(knob) {
                c.set(names, &value);
            }
        }
        if differs(Knob::EnablePrefixCaching) {
            c.switch(
                config.enable_prefix_caching,
                "--enable-prefix-caching",
                "--disable-prefix-caching",
                &["--no-enable-prefix-caching"],
            );
        }
        if differs(Knob::EnableChunkedPrefill) {
            c.switch(
                config.enable_chunked_prefill,
                "--enable-chunked-prefill",
                "--disable-chunked-prefill",
                &["--no-enable-chunked-prefill"],
            );
        }
        // Off is vLLM's default: a full command leaves it out.
        if differs(Knob::EnableExpertParallel) && (base.is_some() || config.enable_expert_parallel)
        {
            c.switch(
                config.enable_expert_parallel,
                "--enable-expert-parallel",
                "--disable-expert-parallel",
                &["-ep", "--no-enable-expert-parallel"],
            );
        }
        if differs(Knob::KvOffloadGib) {
            c.remove(&["--kv-offloading-size", "--kv-offloading-backend"], true);
            if config.kv_offload_gib > 0.0 {
                c.set(
                    &["--kv-offloading-size"],
                    &config.kv_offload_gib.to_string(),
                );
                c.set(&["--kv-offloading-backend"], "native");
            }
        }
        if differs(Knob::PdDisaggregation) {
            c.remove(&["--kv-transfer-config"], true);
            if config.pd_disaggregation.is_some() {
                let value = json!({"kv_connector": "NixlConnector", "kv_role": "kv_both"});
                c.0.extend([
                    "--kv-transfer-config".to_string(),
                    shell_quote(&value.to_string()),
                ]);
            }
        }
        if differs(Knob::Speculative) {
            c.remove(&SPECULATIVE_FLAGS, true);
            if let Some(s) = &config.speculative {
                let value = json!({
                    "method": "draft_model",
                    "model": s.draft_model,
                    "num_speculative_tokens": s.num_speculative_tokens,
                });
                c.0.extend([
                    "--speculative-config".to_string(),
                    shell_quote(&value.to_string()),
                ]);
            }
        }
    }
}

impl Renderer for Vllm {
    fn engine(&self) -> Engine {
        Engine::Vllm
    }

    fn render(
        &self,
        target: &Target,
        before: &ServingConfig,
        after: &ServingConfig,
    ) -> Vec<SnippetFile> {
        let supply = target.supply;
        let old = launch_command(supply, &["vllm", "serve"], before, Self::apply);
        let mut new = old.clone();
        Self::migrate(&mut new);
        Self::apply(&mut new, after, Some(before));
        new.serve_weights(
            supply,
            (before, after),
            &["--quantization", "-q"],
            quantizes_at_load(supply, after).map(|q| q.name()),
        );
        let mut script = launch_script(
            "vllm.sh",
            "vLLM launch command (flags as vLLM 0.33 spells them)",
            supply,
            (before, after),
            (&old, &new),
        );
        note_disaggregation(
            &mut script,
            after,
            "with the same command (NixlConnector takes its role from the router)",
            "a P/D-aware router (vLLM's disaggregated proxy, llm-d or NVIDIA Dynamo) that sends \
             each request to a prefill instance with max_tokens = 1, then to a decode instance with \
             the kv_transfer_params the prefill instance returned",
        );
        vec![script]
    }
}
