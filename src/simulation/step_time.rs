//! Step-time models: how long one engine iteration (one forward pass over the scheduled batch) takes.
//!
//! Both models are plain data so calibration can fit their coefficients; [`StepCost`] is the prepared,
//! allocation-free evaluator the simulator calls once per step.

use serde::{Deserialize, Serialize};

use super::config::Deployment;
use super::time::duration_ns;
use crate::catalog::{Dtype, GpuSpec, ModelSpec};

/// Roofline coefficients. Defaults are uncalibrated engineering guesses, documented here so a fit can
/// replace them: kernels reach ~80 % of HBM bandwidth on large GEMV/attention reads and ~60 % of dense
/// tensor peak on the mixed GEMMs of a serving step; NCCL/custom all-reduce reaches ~70 % of the link
/// bandwidth; each all-reduce costs ~5 µs of latency; the scheduler, sampling and launch overhead of a
/// vLLM v1 step with CUDA graphs is ~0.3 ms; activations, CUDA graphs and the allocator take ~1.5 GiB per GPU
/// beyond weights (this reproduces the KV block counts logged by vLLM 0.15 on H100 within ~1 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RooflineParams {
    pub mem_efficiency: f64,
    pub compute_efficiency: f64,
    pub comm_efficiency: f64,
    pub allreduce_latency_s: f64,
    pub step_overhead_s: f64,
    pub activation_reserve_gib: f64,
}

impl Default for RooflineParams {
    fn default() -> Self {
        RooflineParams {
            mem_efficiency: 0.8,
            compute_efficiency: 0.6,
            comm_efficiency: 0.7,
            allreduce_latency_s: 5e-6,
            step_overhead_s: 3e-4,
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
    kv_bytes_per_token: f64,
    flops_per_token: f64,
    attn_flops_per_pair: f64,
    inv_bw: f64,
    inv_flops: f64,
    comm_s_per_token: f64,
    comm_fixed_s: f64,
    overhead_s: f64,
}

impl StepCost {
    /// Prepares the evaluator for `model` on the deployment's GPU and TP degree. A linear model is
    /// fitted to the deployment's own model; for another one (a speculative draft) its coefficients
    /// are scaled by the ratio of weight bytes, since small-batch steps are bound by reading weights.
    pub fn new(dep: &Deployment, model: &ModelSpec) -> StepCost {
        match &dep.step_model {
            StepTimeModel::Linear(p) if model.id != dep.model.id => {
                let r =
                    model.weight_bytes(dep.engine.dtype) / dep.model.weight_bytes(dep.engine.dtype);
                StepCost::Linear(LinearParams {
                    alpha_ms: p.alpha_ms * r,
                    beta_ms: p.beta_ms * r,
                    gamma_ms: p.gamma_ms * r,
                    delta_ms: p.delta_ms * r,
                    activation_reserve_gib: p.activation_reserve_gib,
                })
            }
            StepTimeModel::Linear(p) => StepCost::Linear(p.clone()),
            StepTimeModel::Roofline(p) => StepCost::Roofline(RooflineCost::new(
                p,
                &dep.gpu,
                model,
                dep.config.tensor_parallel_size,
                dep.engine.dtype,
                dep.kv_dtype(),
            )),
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

impl RooflineCost {
    pub fn new(
        p: &RooflineParams,
        gpu: &GpuSpec,
        model: &ModelSpec,
        tp: u32,
        dtype: Dtype,
        kv_dtype: Dtype,
    ) -> RooflineCost {
        let g = tp.max(1) as f64;
        let kv_shards = g.min(model.num_kv_heads as f64);
        let weight_bytes = if model.num_experts.is_some_and(|e| e > 1) {
            (0..=1024u64)
                .map(|t| model.weight_bytes_read_for_batch(dtype, t) / g)
                .collect()
        } else {
            vec![model.weight_bytes(dtype) / g]
        };
        // NVLink figures are quoted bidirectional; a ring all-reduce streams one direction per link.
        let link = match gpu.interconnect {
            crate::catalog::Interconnect::Nvlink => gpu.interconnect_bytes_per_s() / 2.0,
            crate::catalog::Interconnect::Pcie => gpu.interconnect_bytes_per_s(),
        };
        let n_allreduce = if tp > 1 {
            2.0 * model.num_layers as f64
        } else {
            0.0
        };
        let ring = 2.0 * (g - 1.0) / g;
        RooflineCost {
            weight_bytes,
            kv_bytes_per_token: model.kv_bytes_per_token(kv_dtype) / kv_shards,
            flops_per_token: model.flops_per_token() / g,
            attn_flops_per_pair: model.attention_flops(1.0) / g,
            inv_bw: 1.0 / (gpu.hbm_bytes_per_s() * p.mem_efficiency),
            inv_flops: 1.0 / (gpu.peak_flops(dtype) * p.compute_efficiency),
            comm_s_per_token: n_allreduce * ring * model.hidden_size as f64 * dtype.bytes()
                / (link * p.comm_efficiency),
            comm_fixed_s: n_allreduce * p.allreduce_latency_s,
            overhead_s: p.step_overhead_s,
        }
    }

    #[inline]
    pub fn step_s(&self, s: &StepShape) -> f64 {
        let t = s.tokens as usize;
        let w = self.weight_bytes[t.min(self.weight_bytes.len() - 1)];
        let bytes = w + (s.kv_tokens as f64 + s.tokens as f64) * self.kv_bytes_per_token;
        let flops =
            s.tokens as f64 * self.flops_per_token + s.attn_pairs * self.attn_flops_per_pair;
        let mem = bytes * self.inv_bw;
        let comp = flops * self.inv_flops;
        mem.max(comp)
            + self.comm_fixed_s
            + s.tokens as f64 * self.comm_s_per_token
            + self.overhead_s
    }
}
