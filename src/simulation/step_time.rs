//! Step-time models: how long one engine iteration (one forward pass over the scheduled batch) takes.
//!
//! Both models are plain data so calibration can fit their coefficients; [`StepCost`] is the prepared,
//! allocation-free evaluator the simulator calls once per step.

use serde::{Deserialize, Serialize};

use super::config::Deployment;
use super::time::duration_ns;
use crate::catalog::{Dtype, GpuSpec, Interconnect, ModelSpec, Quantization};

/// Roofline coefficients, each with its public source; calibration replaces them where telemetry
/// allows. The operator figures come from Vidur's measured H100 and A100 profiles of Llama-2-7B/70B
/// and Llama-3-8B linear layers at TP 1–4 (Agrawal et al., MLSys 2024; microsoft/vidur
/// `data/profiling`, MIT):
///
/// - `compute_efficiency` 0.75 and `gemm_half_tokens` 128: a matmul of n rows (tokens) runs at
///   0.75 · n / (n + 128) of the dense tensor peak, the best fit of this form with a max roofline to
///   those 4,500 timings (mean |log error| 7 %): 0.6 at a 512-token prefill chunk, 0.69 at 2048, and
///   slower per FLOP for small matmuls such as an MoE expert's share of a step or the output
///   projection of a few sequences.
/// - `mem_efficiency` 0.8: weight reads of 1–64-token matmuls reach 75–87 % of HBM bandwidth (the
///   joint fit gives 0.75 and 0.8 equally well).
/// - `gemm_half_width` 250: a matmul whose narrower weight dimension on one GPU is w (the split one
///   under TP) runs at w / (w + 250) of the wide rate: the best fit of that factor to Vidur's
///   per-projection timings across TP 1–4 (mean |log error| 9.5 % against 10.0 % without it). It is
///   what makes TP scale sub-linearly for small models and what expert parallelism buys MoE models
///   with narrow experts (Qwen3-30B-A3B's 768-wide experts are 192 wide per GPU at TP 4).
/// - `comm_efficiency` 0.7: a ring all-reduce reaches 70 % of the one-direction link bandwidth
///   (Vidur's H100 DGX all-reduce profile: 290–380 GB/s bus bandwidth for 16–64 MB over 450 GB/s).
/// - `allreduce_latency_s` 5 µs: the fixed cost of one all-reduce inside a CUDA graph, where vLLM
///   runs its steps: 3.7–5.9 µs for messages up to 32 KB with a custom one-shot kernel on 2–8 H100s
///   (sgl-project/sglang PR #2904), ~6 µs for NCCL's NVLS on 2 H100s with graphs (NVIDIA/nccl
///   issue #1259); without graphs the launch adds 4–5 µs.
/// - `step_overhead_s` 0.3 ms: scheduler, input preparation and sampling of a vLLM v1 step, mostly
///   hidden by its persistent batch (vLLM blog, "vLLM V1: A Major Upgrade", January 2025).
/// - `dequant_efficiency` 0.8: W4A16 kernels (Marlin) run compute-bound matmuls at about 80 % of the
///   16-bit rate because of the dequantization (Frantar et al., "MARLIN", 2024: near-ideal speed-up
///   at small batch, below the fp16 GEMM from batch ~128).
/// - `activation_reserve_gib` 1.5: activations, CUDA graphs and the allocator beyond weights;
///   reproduces the KV block counts vLLM 0.15 logged on H100 within ~1 %.
///
/// A step takes the longer of its memory and compute times (their overlap), plus all-reduces and
/// the fixed overhead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RooflineParams {
    pub mem_efficiency: f64,
    pub compute_efficiency: f64,
    pub gemm_half_tokens: f64,
    pub gemm_half_width: f64,
    pub comm_efficiency: f64,
    pub allreduce_latency_s: f64,
    pub step_overhead_s: f64,
    pub dequant_efficiency: f64,
    pub activation_reserve_gib: f64,
}

impl Default for RooflineParams {
    fn default() -> Self {
        RooflineParams {
            mem_efficiency: 0.8,
            compute_efficiency: 0.75,
            gemm_half_tokens: 128.0,
            gemm_half_width: 250.0,
            comm_efficiency: 0.7,
            allreduce_latency_s: 5e-6,
            step_overhead_s: 3e-4,
            dequant_efficiency: 0.8,
            activation_reserve_gib: 1.5,
        }
    }
}

/// The linear step model of llm-inferno: step time (ms) = α + β·batch + γ·prefill tokens + δ·KV tokens
/// read, where batch is the number of sequences in the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearParams {
    pub alpha_ms: f64,
    pub beta_ms: f64,
    pub gamma_ms: f64,
    #[serde(default)]
    pub delta_ms: f64,
    #[serde(default = "default_reserve")]
    pub activation_reserve_gib: f64,
}

fn default_reserve() -> f64 {
    1.5
}

/// Pluggable step-time model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepTimeModel {
    Roofline(RooflineParams),
    Linear(LinearParams),
}

impl Default for StepTimeModel {
    fn default() -> Self {
        StepTimeModel::Roofline(RooflineParams::default())
    }
}

impl StepTimeModel {
    pub fn activation_reserve_bytes(&self) -> f64 {
        let gib = match self {
            StepTimeModel::Roofline(p) => p.activation_reserve_gib,
            StepTimeModel::Linear(p) => p.activation_reserve_gib,
        };
        gib * (1u64 << 30) as f64
    }
}

/// What one step computes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepShape {
    /// Sequences in the step.
    pub num_seqs: u32,
    /// Sequences that decode (one new token, or k + 1 when verifying speculative tokens).
    pub decode_seqs: u32,
    /// New tokens computed in total (prefill chunk tokens + decode tokens).
    pub tokens: u32,
    /// Of which prefill tokens.
    pub prefill_tokens: u32,
    /// KV tokens read by attention: Σ over sequences of their context including the new tokens.
    pub kv_tokens: u64,
    /// Σ over new tokens of the context each attends to (for attention FLOPs).
    pub attn_pairs: f64,
}

/// A prepared evaluator for one (model, GPU, TP, dtype) and one step model.
#[derive(Debug, Clone)]
pub enum StepCost {
    Roofline(RooflineCost),
    Linear(LinearParams),
}

#[derive(Debug, Clone)]
pub struct RooflineCost {
    /// Weight bytes read per GPU, indexed by tokens in the step for MoE (saturates at the last entry).
    weight_bytes: Vec<f64>,
    /// KV bytes per token and GPU of the full-attention layers.
    kv_full_bytes: f64,
    /// Sliding-window layers: KV bytes per token and GPU, and the window.
    kv_sliding: Option<(f64, f64)>,
    /// Matmul FLOPs per token and GPU outside the routed experts.
    dense_flops: f64,
    /// Routed-expert FLOPs per token and GPU.
    expert_flops: f64,
    /// Share of the step's tokens one expert's matmul sees (k / E).
    expert_share: f64,
    /// Expert parallelism: the GPUs of the group (whose busiest one sets the experts' pace) and the
    /// experts each token is routed to.
    expert_parallel: Option<(f64, f64)>,
    lm_head_flops: f64,
    attn_full_flops: f64,
    attn_sliding_flops: f64,
    inv_bw: f64,
    inv_flops: f64,
    half_tokens: f64,
    allreduces: f64,
    allreduce_s: f64,
    comm_s_per_token: f64,
    overhead_s: f64,
}

impl StepCost {
    /// Prepares the evaluator for `model` on the deployment's GPU and TP degree. A linear model is
    /// fitted to the deployment's own model; for another one (a speculative draft) its coefficients
    /// are scaled by the ratio of weight bytes, since small-batch steps are bound by reading weights.
    pub fn new(dep: &Deployment, model: &ModelSpec) -> StepCost {
        let dtype = dep.engine.dtype;
        match &dep.step_model {
            StepTimeModel::Linear(p) if model.id != dep.model.id => {
                let r = model.weight_bytes(model.quantization, dtype)
                    / dep.model.weight_bytes(dep.quantization(), dtype);
                StepCost::Linear(LinearParams {
                    alpha_ms: p.alpha_ms * r,
                    beta_ms: p.beta_ms * r,
                    gamma_ms: p.gamma_ms * r,
                    delta_ms: p.delta_ms * r,
                    activation_reserve_gib: p.activation_reserve_gib,
                })
            }
            StepTimeModel::Linear(p) => StepCost::Linear(p.clone()),
            StepTimeModel::Roofline(p) => {
                let quant = if model.id == dep.model.id {
                    dep.quantization()
                } else {
                    model.quantization
                };
                StepCost::Roofline(RooflineCost::new(
                    p,
                    &dep.gpu,
                    model,
                    Parallelism {
                        tensor: dep.config.tensor_parallel_size,
                        experts: dep.config.enable_expert_parallel,
                    },
                    quant,
                    dtype,
                    dep.kv_dtype(),
                ))
            }
        }
    }

    /// Step time in seconds.
    #[inline]
    pub fn step_s(&self, s: &StepShape) -> f64 {
        match self {
            StepCost::Roofline(r) => r.step_s(s),
            StepCost::Linear(p) => {
                (p.alpha_ms
                    + p.beta_ms * s.num_seqs as f64
                    + p.gamma_ms * s.prefill_tokens as f64
                    + p.delta_ms * s.kv_tokens as f64)
                    * 1e-3
            }
        }
    }

    /// Step time in whole nanoseconds (at least 1).
    #[inline]
    pub fn step_ns(&self, s: &StepShape) -> u64 {
        duration_ns(self.step_s(s))
    }
}

/// How a replica's GPUs split the model.
#[derive(Debug, Clone, Copy)]
pub struct Parallelism {
    /// GPUs of the tensor-parallel group.
    pub tensor: u32,
    /// Whether MoE experts are spread whole over those GPUs instead of split across them.
    pub experts: bool,
}

impl RooflineCost {
    pub fn new(
        p: &RooflineParams,
        gpu: &GpuSpec,
        model: &ModelSpec,
        parallel: Parallelism,
        quant: Quantization,
        dtype: Dtype,
        kv_dtype: Dtype,
    ) -> RooflineCost {
        let tp = parallel.tensor.max(1);
        let g = f64::from(tp);
        let weight_bytes = if model.is_moe() {
            (0..=1024u64)
                .map(|t| model.weight_bytes_read(quant, dtype, t) / g)
                .collect()
        } else {
            vec![model.weight_bytes_read(quant, dtype, 1) / g]
        };
        let kv_per_layer = model.kv_bytes_per_token_layer(kv_dtype) / model.kv_shards(tp);
        let (full_layers, sliding) = model.attention_layers();
        let attn_per_layer = model.attention_flops_per_pair_layer() / g;
        let params = model.params();
        // Time per FLOP of a matmul whose split dimension is `width` wide before TP splits it.
        let narrow = |width: u32, split: f64| {
            let w = f64::from(model.hidden_size).min(f64::from(width) / split);
            (w + p.gemm_half_width) / w
        };
        let (attention, dense) = (params.attention as f64, params.dense_ffn as f64);
        let dense_narrow = (attention * narrow(model.num_attention_heads * model.head_dim, g)
            + dense * narrow(model.intermediate_size, g))
            / (attention + dense).max(1.0);
        let expert_parallel = parallel.experts && model.is_moe() && tp > 1;
        let (expert_flops, expert_share, expert_narrow) = match &model.moe {
            Some(m) => (
                2.0 * f64::from(m.experts_per_token * m.moe_layers) * params.expert as f64 / g,
                f64::from(m.experts_per_token) / f64::from(m.num_experts),
                narrow(
                    m.expert_intermediate_size,
                    if expert_parallel { 1.0 } else { g },
                ),
            ),
            None => (0.0, 1.0, 1.0),
        };
        // NVLink figures are quoted bidirectional; a ring all-reduce streams one direction per link.
        let link = match gpu.interconnect {
            Interconnect::Nvlink | Interconnect::Xgmi => gpu.interconnect_bytes_per_s() / 2.0,
            Interconnect::Pcie => gpu.interconnect_bytes_per_s(),
        };
        let allreduces = if tp > 1 {
            2.0 * f64::from(model.num_layers)
        } else {
            0.0
        };
        let ring = 2.0 * (g - 1.0) / g;
        let (matmul_dtype, dequant) = quant.matmul(gpu, dtype);
        let dequant = if dequant { p.dequant_efficiency } else { 1.0 };
        RooflineCost {
            weight_bytes,
            kv_full_bytes: f64::from(full_layers) * kv_per_layer,
            kv_sliding: sliding
                .map(|(layers, window)| (f64::from(layers) * kv_per_layer, f64::from(window))),
            dense_flops: (model.flops_per_token() / g - expert_flops) * dense_narrow,
            expert_flops: expert_flops * expert_narrow,
            expert_share,
            expert_parallel: model
                .moe
                .as_ref()
                .filter(|_| expert_parallel)
                .map(|m| (g, f64::from(m.experts_per_token))),
            lm_head_flops: model.lm_head_flops() / g,
            attn_full_flops: f64::from(full_layers) * attn_per_layer,
            attn_sliding_flops: sliding
                .map_or(0.0, |(layers, _)| f64::from(layers) * attn_per_layer),
            inv_bw: 1.0 / (gpu.hbm_bytes_per_s() * p.mem_efficiency),
            inv_flops: 1.0 / (gpu.peak_flops(matmul_dtype) * p.compute_efficiency * dequant),
            half_tokens: p.gemm_half_tokens,
            allreduces,
            allreduce_s: p.allreduce_latency_s,
            comm_s_per_token: ring * f64::from(model.hidden_size) * dtype.bytes()
                / (link * p.comm_efficiency),
            overhead_s: p.step_overhead_s,
        }
    }

    /// Time per FLOP of a matmul of `rows` rows (tokens) relative to the peak efficiency.
    #[inline]
    fn slowdown(&self, rows: f64) -> f64 {
        (rows + self.half_tokens) / rows
    }

    /// Under expert parallelism, the busiest GPU's share of the step's routed tokens over the mean
    /// share: each of the t·k routings lands on one of g GPUs, so the maximum of g binomial counts,
    /// about mean + σ·√(2 ln g).
    #[inline]
    fn imbalance(&self, tokens: f64) -> f64 {
        match self.expert_parallel {
            Some((g, k)) => 1.0 + (2.0 * g.ln() * (g - 1.0) / (tokens * k).max(1.0)).sqrt(),
            None => 1.0,
        }
    }

    #[inline]
    pub fn step_s(&self, s: &StepShape) -> f64 {
        let t = f64::from(s.tokens);
        let w = self.weight_bytes[(s.tokens as usize).min(self.weight_bytes.len() - 1)];
        let kv_read = s.kv_tokens as f64 + t;
        let window = self.kv_sliding.map_or(0.0, |(bytes, window)| {
            bytes * kv_read.min(f64::from(s.num_seqs) * window)
        });
        let bytes = w + kv_read * self.kv_full_bytes + window;
        let flops = if s.tokens == 0 {
            0.0
        } else {
            let seqs = f64::from(s.num_seqs.max(1));
            let sliding_pairs = self
                .kv_sliding
                .map_or(0.0, |(_, w)| s.attn_pairs.min(t * w));
            (self.dense_flops * t
                + self.attn_full_flops * s.attn_pairs
                + self.attn_sliding_flops * sliding_pairs)
                * self.slowdown(t)
                + self.expert_flops * t * self.slowdown(t * self.expert_share) * self.imbalance(t)
                + self.lm_head_flops * seqs * self.slowdown(seqs)
        };
        (bytes * self.inv_bw).max(flops * self.inv_flops)
            + self.allreduces * (self.allreduce_s + t * self.comm_s_per_token)
            + self.overhead_s
    }
}
