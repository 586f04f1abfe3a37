//! Model architectures: what decides a model's memory and FLOPs.
//!
//! A [`ModelSpec`] is built from a Hugging Face `config.json` ([`super::hf`]); the bundled catalog's
//! entries are excerpts of those files, so a catalogued model and one read from a model directory go
//! through the same parser. Parameter counts are derived from the architecture ([`ModelSpec::params`]),
//! never typed in.

use serde::{Deserialize, Serialize};

use super::Dtype;
use super::quant::Quantization;

/// Mixture-of-experts layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub num_experts: u32,
    /// Routed experts each token runs through.
    pub experts_per_token: u32,
    /// FFN width of one routed expert.
    pub expert_intermediate_size: u32,
    /// FFN width of the always-on shared expert(s) summed (0: none).
    pub shared_intermediate_size: u32,
    /// Layers with experts; the others have a dense FFN of the model's `intermediate_size`.
    pub moe_layers: u32,
}

/// Multi-head latent attention (DeepSeek-V2/V3): the KV cache holds one compressed latent per token
/// and layer instead of per-head keys and values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mla {
    /// Rank of the query compression (0: queries are projected directly).
    pub q_lora_rank: u32,
    pub kv_lora_rank: u32,
    pub qk_nope_head_dim: u32,
    pub qk_rope_head_dim: u32,
    pub v_head_dim: u32,
}

/// Layers whose attention only sees the last `window` tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlidingWindow {
    pub window: u32,
    pub layers: u32,
}

/// One model architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Catalog id, or the path the supply names the model by.
    pub id: String,
    pub aliases: Vec<String>,
    /// `architectures[0]` of the config.
    pub architecture: String,
    pub num_layers: u32,
    pub hidden_size: u32,
    pub num_attention_heads: u32,
    pub num_kv_heads: u32,
    pub head_dim: u32,
    /// FFN width of the dense layers.
    pub intermediate_size: u32,
    pub vocab_size: u32,
    /// `max_position_embeddings`.
    pub max_context: u32,
    pub tie_word_embeddings: bool,
    pub moe: Option<Moe>,
    pub mla: Option<Mla>,
    pub sliding_window: Option<SlidingWindow>,
    /// The checkpoint's own weight format (its `quantization_config`).
    pub quantization: Quantization,
    /// Where the architecture comes from (the config.json URL or path).
    pub source: String,
}

/// Parameter counts by role: what memory, weight reads and FLOPs derive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Input embedding table (only the rows of the step's tokens are read).
    pub embedding: u64,
    /// Output projection (0 when tied to the embedding; its matmul runs either way).
    pub lm_head: u64,
    /// Attention projections of all layers.
    pub attention: u64,
    /// FFNs of the dense layers, shared experts and routers: read by every step.
    pub dense_ffn: u64,
    /// One routed expert of one layer.
    pub expert: u64,
    /// Routed experts over all layers (`expert` × experts × MoE layers).
    pub experts: u64,
    /// Norm weights.
    pub norms: u64,
}

impl Params {
    pub fn total(&self) -> u64 {
        self.embedding + self.lm_head + self.attention + self.dense_ffn + self.experts + self.norms
    }
}

impl ModelSpec {
    pub fn params(&self) -> Params {
        let h = u64::from(self.hidden_size);
        let heads = u64::from(self.num_attention_heads);
        let layers = u64::from(self.num_layers);
        let attention_per_layer = match &self.mla {
            Some(m) => {
                let qk = u64::from(m.qk_nope_head_dim + m.qk_rope_head_dim);
                let q = match m.q_lora_rank {
                    0 => h * heads * qk,
                    r => h * u64::from(r) + u64::from(r) * heads * qk + u64::from(r),
                };
                let kv = h * u64::from(m.kv_lora_rank + m.qk_rope_head_dim)
                    + u64::from(m.kv_lora_rank)
                        * heads
                        * u64::from(m.qk_nope_head_dim + m.v_head_dim)
                    + u64::from(m.kv_lora_rank);
                q + kv + heads * u64::from(m.v_head_dim) * h
            }
            None => {
                let q = heads * u64::from(self.head_dim);
                let kv = u64::from(self.num_kv_heads) * u64::from(self.head_dim);
                2 * h * q + 2 * h * kv
            }
        };
        let gated = |width: u32| 3 * h * u64::from(width);
        let (moe_layers, dense_ffn, expert, experts) = match &self.moe {
            Some(m) => {
                let moe_layers = u64::from(m.moe_layers);
                let expert = gated(m.expert_intermediate_size);
                let per_moe_layer =
                    gated(m.shared_intermediate_size) + h * u64::from(m.num_experts);
                (
                    moe_layers,
                    per_moe_layer * moe_layers,
                    expert,
                    expert * u64::from(m.num_experts) * moe_layers,
                )
            }
            None => (0, 0, 0, 0),
        };
        let embedding = u64::from(self.vocab_size) * h;
        Params {
            embedding,
            lm_head: if self.tie_word_embeddings {
                0
            } else {
                embedding
            },
            attention: attention_per_layer * layers,
            dense_ffn: dense_ffn + gated(self.intermediate_size) * (layers - moe_layers),
            expert,
            experts,
            norms: (2 * layers + 1) * h,
        }
    }

    /// Parameters a token runs through (routed experts counted `experts_per_token` times).
    pub fn active_params(&self) -> u64 {
        let p = self.params();
        p.total() - p.experts + self.routed_per_token() * p.expert
    }

    /// Routed expert instances one token runs through, over all layers.
    fn routed_per_token(&self) -> u64 {
        self.moe.as_ref().map_or(0, |m| {
            u64::from(m.experts_per_token) * u64::from(m.moe_layers)
        })
    }

    /// Bytes of all weights when stored as `quant`; unquantized tensors (embeddings, norms, and
    /// what the format leaves out) in `dtype`.
    pub fn weight_bytes(&self, quant: Quantization, dtype: Dtype) -> f64 {
        self.weight_bytes_with_experts(quant, dtype, self.params().experts as f64)
    }

    /// Weight bytes one forward pass over `tokens` new tokens reads: everything but the input
    /// embedding (only a few rows of it are read), with, for MoE, the expected number of distinct
    /// routed experts hit when each token picks `experts_per_token` of `num_experts` uniformly
    /// (1 − (1 − k/E)^tokens of each layer's experts).
    pub fn weight_bytes_read(&self, quant: Quantization, dtype: Dtype, tokens: u64) -> f64 {
        let p = self.params();
        let experts = match &self.moe {
            Some(m) => {
                let share = f64::from(m.experts_per_token) / f64::from(m.num_experts);
                p.experts as f64 * (1.0 - (1.0 - share).powf(tokens.max(1) as f64))
            }
            None => 0.0,
        };
        let all = self.weight_bytes_with_experts(quant, dtype, experts);
        let embedding_read = if self.tie_word_embeddings {
            0.0
        } else {
            p.embedding as f64 * dtype.bytes()
        };
        all - embedding_read
    }

    fn weight_bytes_with_experts(&self, quant: Quantization, dtype: Dtype, experts: f64) -> f64 {
        let p = self.params();
        let plain = (p.embedding + p.lm_head + p.norms) as f64 * dtype.bytes();
        let linear = (p.attention + p.dense_ffn) as f64;
        let linear_bytes = if quant.experts_only() {
            linear * dtype.bytes()
        } else {
            linear * quant.bytes_per_weight(dtype)
        };
        plain + linear_bytes + experts * quant.bytes_per_weight(dtype)
    }

    /// KV-cache bytes per token and layer: one latent (kv_lora_rank + rope dims) for MLA, K and V
    /// per KV head otherwise.
    pub fn kv_bytes_per_token_layer(&self, dtype: Dtype) -> f64 {
        let elements = match &self.mla {
            Some(m) => f64::from(m.kv_lora_rank + m.qk_rope_head_dim),
            None => 2.0 * f64::from(self.num_kv_heads) * f64::from(self.head_dim),
        };
        elements * dtype.bytes()
    }

    /// KV-cache bytes per token over all layers, for capacity. Sliding-window layers are counted
    /// like full ones: exact while contexts fit the window, conservative (less capacity) beyond.
    pub fn kv_bytes_per_token(&self, dtype: Dtype) -> f64 {
        f64::from(self.num_layers) * self.kv_bytes_per_token_layer(dtype)
    }

    /// Layers that attend to the whole context, and the sliding-window layers with their window.
    pub fn attention_layers(&self) -> (u32, Option<(u32, u32)>) {
        match &self.sliding_window {
            Some(s) => (self.num_layers - s.layers, Some((s.layers, s.window))),
            None => (self.num_layers, None),
        }
    }

    /// GPUs the KV cache is split over at tensor-parallel degree `tp`: KV heads shard (and replicate
    /// beyond the head count); an MLA latent is replicated on every rank.
    pub fn kv_shards(&self, tp: u32) -> f64 {
        if self.mla.is_some() {
            1.0
        } else {
            f64::from(tp.max(1).min(self.num_kv_heads))
        }
    }

    /// Matmul FLOPs per new token outside attention-over-context and the output projection:
    /// 2 × the projections and FFN weights a token runs through.
    pub fn flops_per_token(&self) -> f64 {
        let p = self.params();
        2.0 * (p.attention + p.dense_ffn + self.routed_per_token() * p.expert) as f64
    }

    /// FLOPs of the output projection for one sequence (vLLM computes logits only at the positions
    /// it samples: one per sequence per step).
    pub fn lm_head_flops(&self) -> f64 {
        2.0 * f64::from(self.vocab_size) * f64::from(self.hidden_size)
    }

    /// Attention FLOPs of one layer for one query token and one context token (QKᵀ and AV over
    /// every head).
    pub fn attention_flops_per_pair_layer(&self) -> f64 {
        let (qk, v) = match &self.mla {
            Some(m) => (m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim),
            None => (self.head_dim, self.head_dim),
        };
        2.0 * f64::from(self.num_attention_heads) * f64::from(qk + v)
    }

    pub fn is_moe(&self) -> bool {
        self.moe.is_some()
    }
}
