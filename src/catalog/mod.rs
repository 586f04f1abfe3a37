//! GPU and model catalogs.
//!
//! The shipped catalogs live in `datasets/catalog/{gpus,models}.toml` and are embedded in the binary with
//! `include_str!` ([`Catalog::bundled`]), so tunelake works from any directory. A user may ship their own
//! catalog with the same schema ([`Catalog::from_dir`]). Lookups ([`Catalog::gpu`], [`Catalog::model`]) are
//! case-insensitive over ids and aliases.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const BUNDLED_GPUS: &str = include_str!("../../datasets/catalog/gpus.toml");
const BUNDLED_MODELS: &str = include_str!("../../datasets/catalog/models.toml");

/// Numeric formats for weights, activations and the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Fp32,
    Fp16,
    Bf16,
    Fp8,
    Int8,
    Int4,
}

impl Dtype {
    /// Bytes per element (0.5 for int4).
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::Fp32 => 4.0,
            Dtype::Fp16 | Dtype::Bf16 => 2.0,
            Dtype::Fp8 | Dtype::Int8 => 1.0,
            Dtype::Int4 => 0.5,
        }
    }
}

/// How GPUs of one node talk to each other (what a tensor-parallel all-reduce runs over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interconnect {
    Nvlink,
    Pcie,
}

/// One GPU model. Figures are vendor datasheet figures (see `source`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Nominal memory size, read as GiB.
    pub memory_gib: f64,
    /// Memory bandwidth in GB/s (10^9 bytes per second).
    pub hbm_bandwidth_gbps: f64,
    /// Dense (no sparsity) bf16 tensor-core TFLOPS.
    pub bf16_tflops: f64,
    /// Dense fp8 tensor-core TFLOPS; `None` where the GPU has no fp8 tensor cores.
    #[serde(default)]
    pub fp8_tflops: Option<f64>,
    pub interconnect: Interconnect,
    /// Per-GPU interconnect bandwidth in GB/s (NVLink total, or PCIe x16 per direction).
    pub interconnect_gbps: f64,
    /// Hourly on-demand list price per GPU in USD.
    pub price_per_hour_usd: f64,
    /// Which public price list `price_per_hour_usd` comes from.
    pub price_source: String,
    /// Datasheet name / URL.
    pub source: String,
}

impl GpuSpec {
    /// Memory in bytes (`memory_gib` × 2^30).
    pub fn memory_bytes(&self) -> f64 {
        self.memory_gib * (1u64 << 30) as f64
    }

    /// Memory bandwidth in bytes per second.
    pub fn hbm_bytes_per_s(&self) -> f64 {
        self.hbm_bandwidth_gbps * 1e9
    }

    /// Interconnect bandwidth in bytes per second.
    pub fn interconnect_bytes_per_s(&self) -> f64 {
        self.interconnect_gbps * 1e9
    }

    /// Peak dense FLOP/s for a compute dtype. fp8 falls back to bf16 where the GPU has no fp8 units
    /// (the kernels then upcast); fp32 is not modelled separately and uses the bf16 figure too.
    pub fn peak_flops(&self, dtype: Dtype) -> f64 {
        let tflops = match dtype {
            Dtype::Fp8 | Dtype::Int8 | Dtype::Int4 => self.fp8_tflops.unwrap_or(self.bf16_tflops),
            _ => self.bf16_tflops,
        };
        tflops * 1e12
    }
}

/// One model architecture, from its Hugging Face `config.json` (see `source`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub num_layers: u32,
    pub hidden_size: u32,
    pub num_attention_heads: u32,
    pub num_kv_heads: u32,
    pub head_dim: u32,
    pub intermediate_size: u32,
    /// Number of MoE experts per layer (absent = dense).
    #[serde(default)]
    pub num_experts: Option<u32>,
    /// Experts routed per token (MoE only).
    #[serde(default)]
    pub experts_per_token: Option<u32>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Total parameter count.
    pub params_total: u64,
    /// Parameters used per token (= total for dense models).
    pub params_active: u64,
    pub vocab_size: u32,
    /// `max_position_embeddings`.
    pub max_context: u32,
    /// The Hugging Face config.json URL.
    pub source: String,
}

impl ModelSpec {
    /// Bytes of all weights for a weight dtype.
    pub fn weight_bytes(&self, dtype: Dtype) -> f64 {
        self.params_total as f64 * dtype.bytes()
    }

    /// Bytes of weights read per forward pass of one token (active parameters; for MoE this is a
    /// lower bound, a batch touches up to all experts: see [`ModelSpec::weight_bytes_read_for_batch`]).
    pub fn active_weight_bytes(&self, dtype: Dtype) -> f64 {
        self.params_active as f64 * dtype.bytes()
    }

    /// Expected weight bytes read by one forward pass over `tokens` tokens. Dense: all weights. MoE: the
    /// shared weights plus the expected number of distinct experts hit when each token picks
    /// `experts_per_token` of `num_experts` uniformly (1 − (1 − k/E)^tokens per expert).
    pub fn weight_bytes_read_for_batch(&self, dtype: Dtype, tokens: u64) -> f64 {
        match (self.num_experts, self.experts_per_token) {
            (Some(e), Some(k)) if e > 1 && k >= 1 => {
                let e = e as f64;
                let k = k as f64;
                let per_expert = (self.params_total - self.params_active) as f64 / (e - k);
                let shared = self.params_total as f64 - e * per_expert;
                let frac_hit = 1.0 - (1.0 - k / e).powf(tokens.max(1) as f64);
                (shared + e * frac_hit * per_expert) * dtype.bytes()
            }
            _ => self.weight_bytes(dtype),
        }
    }

    /// KV-cache bytes per token: 2 (K and V) × layers × KV heads × head dim × dtype bytes.
    pub fn kv_bytes_per_token(&self, dtype: Dtype) -> f64 {
        2.0 * self.num_layers as f64
            * self.num_kv_heads as f64
            * self.head_dim as f64
            * dtype.bytes()
    }

    /// Approximate forward FLOPs per token, excluding attention over the context: 2 × active params.
    pub fn flops_per_token(&self) -> f64 {
        2.0 * self.params_active as f64
    }

    /// Attention FLOPs for one query token attending to `context` tokens (QKᵀ and AV: 4 × layers ×
    /// heads × head dim × context).
    pub fn attention_flops(&self, context: f64) -> f64 {
        4.0 * self.num_layers as f64
            * self.num_attention_heads as f64
            * self.head_dim as f64
            * context
    }

    /// Parameter count recomputed from the architecture fields (Llama/Mistral/Mixtral layout: untied or
    /// tied embeddings, q/k/v/o projections, gated MLP per expert, router, RMSNorms; no biases).
    pub fn architecture_params(&self) -> (u64, u64) {
        let h = self.hidden_size as u64;
        let q = self.num_attention_heads as u64 * self.head_dim as u64;
        let kv = self.num_kv_heads as u64 * self.head_dim as u64;
        let inter = self.intermediate_size as u64;
        let e = self.num_experts.unwrap_or(1) as u64;
        let k = self.experts_per_token.unwrap_or(1) as u64;
        let emb = self.vocab_size as u64 * h * if self.tie_word_embeddings { 1 } else { 2 };
        let attn = 2 * h * q + 2 * h * kv;
        let router = if e > 1 { h * e } else { 0 };
        let layers = self.num_layers as u64;
        let total = emb + layers * (attn + 3 * h * inter * e + 2 * h + router) + h;
        let active = emb + layers * (attn + 3 * h * inter * k + 2 * h + router) + h;
        (total, active)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFile {
    #[serde(default)]
    gpu: Vec<GpuSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    #[serde(default)]
    model: Vec<ModelSpec>,
}

/// The GPU and model catalogs.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub gpus: Vec<GpuSpec>,
    pub models: Vec<ModelSpec>,
    gpu_index: HashMap<String, usize>,
    model_index: HashMap<String, usize>,
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The ids a failed look-up could have used, for its error message.
fn known<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.collect::<Vec<_>>().join(", ")
}

impl Catalog {
    /// The catalog shipped with tunelake (embedded at compile time).
    pub fn bundled() -> Result<Catalog> {
        Catalog::from_strs(
            BUNDLED_GPUS,
            "bundled gpus.toml",
            BUNDLED_MODELS,
            "bundled models.toml",
        )
    }

    /// Reads `gpus.toml` and `models.toml` from a directory.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Catalog> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
        };
        let gpus = read("gpus.toml")?;
        let models = read("models.toml")?;
        Catalog::from_strs(
            &gpus,
            &dir.join("gpus.toml").display().to_string(),
            &models,
            &dir.join("models.toml").display().to_string(),
        )
    }

    /// Parses catalog TOML text; `*_name` names the source in errors.
    pub fn from_strs(
        gpus: &str,
        gpus_name: &str,
        models: &str,
        models_name: &str,
    ) -> Result<Catalog> {
        let gf: GpuFile = toml::from_str(gpus).map_err(|e| Error::Catalog {
            catalog: gpus_name.to_string(),
            message: e.to_string(),
        })?;
        let mf: ModelFile = toml::from_str(models).map_err(|e| Error::Catalog {
            catalog: models_name.to_string(),
            message: e.to_string(),
        })?;
        let mut gpu_index = HashMap::new();
        for (i, g) in gf.gpu.iter().enumerate() {
            validate_gpu(g).map_err(|message| Error::Catalog {
                catalog: gpus_name.to_string(),
                message: format!("gpu `{}`: {message}", g.id),
            })?;
            for name in std::iter::once(&g.id).chain(&g.aliases) {
                if gpu_index.insert(key(name), i).is_some_and(|j| j != i) {
                    return Err(Error::Catalog {
                        catalog: gpus_name.to_string(),
                        message: format!("name `{name}` is used by more than one GPU"),
                    });
                }
            }
        }
        let mut model_index = HashMap::new();
        for (i, m) in mf.model.iter().enumerate() {
            validate_model(m).map_err(|message| Error::Catalog {
                catalog: models_name.to_string(),
                message: format!("model `{}`: {message}", m.id),
            })?;
            for name in std::iter::once(&m.id).chain(&m.aliases) {
                if model_index.insert(key(name), i).is_some_and(|j| j != i) {
                    return Err(Error::Catalog {
                        catalog: models_name.to_string(),
                        message: format!("name `{name}` is used by more than one model"),
                    });
                }
            }
        }
        Ok(Catalog {
            gpus: gf.gpu,
            models: mf.model,
            gpu_index,
            model_index,
        })
    }

    /// Looks a GPU up by id or alias, case-insensitively.
    pub fn gpu(&self, name: &str) -> Result<&GpuSpec> {
        match self.gpu_index.get(&key(name)) {
            Some(&i) => Ok(&self.gpus[i]),
            None => Err(Error::NotInCatalog {
                kind: "GPU",
                name: name.to_string(),
                known: known(self.gpus.iter().map(|g| g.id.as_str())),
            }),
        }
    }

    /// Looks a model up by id or alias (e.g. a Hugging Face repo id), case-insensitively.
    pub fn model(&self, name: &str) -> Result<&ModelSpec> {
        match self.model_index.get(&key(name)) {
            Some(&i) => Ok(&self.models[i]),
            None => Err(Error::NotInCatalog {
                kind: "model",
                name: name.to_string(),
                known: known(self.models.iter().map(|m| m.id.as_str())),
            }),
        }
    }
}

fn positive(name: &str, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{name} must be a positive number, got {v}"))
    }
}

fn validate_gpu(g: &GpuSpec) -> std::result::Result<(), String> {
    positive("memory_gib", g.memory_gib)?;
    positive("hbm_bandwidth_gbps", g.hbm_bandwidth_gbps)?;
    positive("bf16_tflops", g.bf16_tflops)?;
    if let Some(f) = g.fp8_tflops {
        positive("fp8_tflops", f)?;
    }
    positive("interconnect_gbps", g.interconnect_gbps)?;
    positive("price_per_hour_usd", g.price_per_hour_usd)?;
    Ok(())
}

fn validate_model(m: &ModelSpec) -> std::result::Result<(), String> {
    for (name, v) in [
        ("num_layers", m.num_layers),
        ("hidden_size", m.hidden_size),
        ("num_attention_heads", m.num_attention_heads),
        ("num_kv_heads", m.num_kv_heads),
        ("head_dim", m.head_dim),
        ("intermediate_size", m.intermediate_size),
        ("vocab_size", m.vocab_size),
        ("max_context", m.max_context),
    ] {
        if v == 0 {
            return Err(format!("{name} must be positive"));
        }
    }
    if !m.num_attention_heads.is_multiple_of(m.num_kv_heads) {
        return Err("num_attention_heads must be a multiple of num_kv_heads".into());
    }
    if m.params_active == 0 || m.params_active > m.params_total {
        return Err("params_active must be in 1..=params_total".into());
    }
    if m.num_experts.is_some() != m.experts_per_token.is_some() {
        return Err("num_experts and experts_per_token go together".into());
    }
    if let (Some(e), Some(k)) = (m.num_experts, m.experts_per_token)
        && (k == 0 || k > e)
    {
        return Err("experts_per_token must be in 1..=num_experts".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_parses_and_is_sane() {
        let c = Catalog::bundled().unwrap();
        assert!(c.gpus.len() >= 8);
        assert!(c.models.len() >= 12);
        for m in &c.models {
            // Every catalogued architecture (Llama/Mistral/Mixtral/Qwen2 layouts) has heads × head_dim == hidden.
            assert_eq!(
                m.num_attention_heads * m.head_dim,
                m.hidden_size,
                "{}",
                m.id
            );
            let (total, active) = m.architecture_params();
            // Qwen2 has q/k/v biases the formula leaves out: allow 0.1 %.
            let rel = |a: u64, b: u64| (a as f64 - b as f64).abs() / b as f64;
            assert!(rel(total, m.params_total) < 1e-3, "{} total {total}", m.id);
            assert!(
                rel(active, m.params_active) < 1e-3,
                "{} active {active}",
                m.id
            );
            assert!(m.source.starts_with("https://huggingface.co/"), "{}", m.id);
        }
        for g in &c.gpus {
            assert!(g.hbm_bandwidth_gbps > 100.0 && g.hbm_bandwidth_gbps < 20_000.0);
            assert!(g.memory_gib >= 16.0 && g.memory_gib <= 300.0);
            if let Some(f8) = g.fp8_tflops {
                assert!((f8 / g.bf16_tflops - 2.0).abs() < 0.05, "{}", g.id);
            }
        }
    }

    #[test]
    fn lookups_are_case_insensitive_and_errors_list_known() {
        let c = Catalog::bundled().unwrap();
        assert_eq!(c.gpu("h100-sxm-80gb").unwrap().id, "H100-SXM");
        assert_eq!(c.gpu("H100").unwrap().hbm_bandwidth_gbps, 3350.0);
        assert_eq!(
            c.model("META-LLAMA/llama-2-7b-HF").unwrap().id,
            "Llama-2-7B"
        );
        let err = c.model("gpt-5").unwrap_err().to_string();
        assert!(err.contains("gpt-5") && err.contains("Llama-3-8B"), "{err}");
        let err = c.gpu("tpu-v5").unwrap_err().to_string();
        assert!(err.contains("tpu-v5") && err.contains("H200"), "{err}");
    }

    #[test]
    fn derived_sizes() {
        let c = Catalog::bundled().unwrap();
        let l2 = c.model("Llama-2-7B").unwrap();
        // 2 × 32 layers × 32 heads × 128 × 2 bytes = 512 KiB per token.
        assert_eq!(l2.kv_bytes_per_token(Dtype::Fp16), 524_288.0);
        let l3 = c.model("llama-3-8b").unwrap();
        assert_eq!(l3.kv_bytes_per_token(Dtype::Bf16), 131_072.0);
        assert!((l3.weight_bytes(Dtype::Bf16) / 1e9 - 16.06).abs() < 0.01);
        let mx = c.model("mistralai/Mixtral-8x7B-v0.1").unwrap();
        assert!((mx.flops_per_token() / 2.0 - 12.88e9).abs() < 0.01e9);
        // One token reads shared + 2 experts; a big batch reads all experts.
        let one = mx.weight_bytes_read_for_batch(Dtype::Bf16, 1);
        assert!((one - mx.active_weight_bytes(Dtype::Bf16)).abs() / one < 1e-9);
        let many = mx.weight_bytes_read_for_batch(Dtype::Bf16, 512);
        assert!((many - mx.weight_bytes(Dtype::Bf16)).abs() / many < 1e-6);
    }

    #[test]
    fn rejects_unknown_fields_and_duplicates() {
        let bad = "[[gpu]]\nid='x'\nbogus=1\n";
        assert!(Catalog::from_strs(bad, "g", "", "m").is_err());
        let one = "[[gpu]]\nid='A'\nmemory_gib=1\nhbm_bandwidth_gbps=1\nbf16_tflops=1\ninterconnect='pcie'\ninterconnect_gbps=1\nprice_per_hour_usd=1\nprice_source='p'\nsource='s'\n";
        let two = format!("{one}{}", one.replace("id='A'", "id='B'\naliases=['a']"));
        let err = Catalog::from_strs(&two, "g", "", "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than one"), "{err}");
    }
}
