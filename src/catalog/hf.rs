//! A model's architecture from its Hugging Face `config.json`.
//!
//! Field names are those of `transformers`' configuration classes. Architectures differ in how they
//! spell the same fact (`num_local_experts`, `num_experts`, `n_routed_experts`); each fact is read
//! from the first spelling present, and a fact no spelling gives is an error naming the field, so an
//! architecture this parser has not seen fails clearly instead of being guessed.

use serde_json::{Map, Value};

use super::model::{Mla, ModelSpec, Moe, SlidingWindow};
use super::quant::Quantization;

/// Reads a config (a parsed `config.json`, or a catalog entry's excerpt of one).
pub fn parse(
    id: &str,
    aliases: Vec<String>,
    source: &str,
    config: &Value,
) -> Result<ModelSpec, String> {
    let top = config
        .as_object()
        .ok_or("the config is not a JSON object")?;
    // Multimodal checkpoints (Llama 4, Mistral 3) nest the language model's config.
    let text = top
        .get("text_config")
        .and_then(Value::as_object)
        .unwrap_or(top);
    let c = Fields { text, top };
    let architecture = top
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .ok_or("no `architectures` list")?
        .to_string();
    let num_layers = c.req(&["num_hidden_layers", "n_layer", "num_layers"])?;
    let hidden_size = c.req(&["hidden_size", "n_embd", "d_model"])?;
    let num_attention_heads = c.req(&["num_attention_heads", "n_head"])?;
    let num_kv_heads = c
        .opt(&["num_key_value_heads", "num_kv_heads"])?
        .unwrap_or(num_attention_heads);
    let mla = match c.opt(&["kv_lora_rank"])? {
        Some(kv_lora_rank) => Some(Mla {
            q_lora_rank: c.opt(&["q_lora_rank"])?.unwrap_or(0),
            kv_lora_rank,
            qk_nope_head_dim: c.req(&["qk_nope_head_dim"])?,
            qk_rope_head_dim: c.req(&["qk_rope_head_dim"])?,
            v_head_dim: c.req(&["v_head_dim"])?,
        }),
        None => None,
    };
    let head_dim = match (&mla, c.opt(&["head_dim"])?) {
        (Some(m), _) => m.qk_nope_head_dim + m.qk_rope_head_dim,
        (None, Some(d)) => d,
        (None, None) if num_attention_heads > 0 => hidden_size / num_attention_heads,
        _ => return Err("`num_attention_heads` must be positive".into()),
    };
    let intermediate = c.req(&["intermediate_size", "ffn_dim", "n_inner"])?;
    let moe = moe(&c, &architecture, num_layers, intermediate)?;
    // Llama 4 names its dense layers' width apart from the experts'.
    let intermediate_size = c.opt(&["intermediate_size_mlp"])?.unwrap_or(intermediate);
    let max_context = c.req(&["max_position_embeddings", "n_positions", "max_seq_len"])?;
    let vocab_size = c.req(&["vocab_size"])?;
    for (name, v) in [
        ("num_hidden_layers", num_layers),
        ("hidden_size", hidden_size),
        ("num_key_value_heads", num_kv_heads),
        ("head_dim", head_dim),
        ("intermediate_size", intermediate_size),
        ("vocab_size", vocab_size),
        ("max_position_embeddings", max_context),
    ] {
        if v == 0 {
            return Err(format!("`{name}` must be positive"));
        }
    }
    if mla.is_none() && !num_attention_heads.is_multiple_of(num_kv_heads) {
        return Err(format!(
            "`num_attention_heads` ({num_attention_heads}) must be a multiple of `num_key_value_heads` ({num_kv_heads})"
        ));
    }
    Ok(ModelSpec {
        id: id.to_string(),
        aliases,
        architecture,
        num_layers,
        hidden_size,
        num_attention_heads,
        num_kv_heads,
        head_dim,
        intermediate_size,
        vocab_size,
        max_context,
        tie_word_embeddings: c.flag("tie_word_embeddings")?,
        sliding_window: sliding_window(&c, num_layers, max_context)?,
        quantization: quantization(&c)?,
        moe,
        mla,
        source: source.to_string(),
    })
}

/// The text model's fields, falling back to the top level (where multimodal configs keep
/// `quantization_config` and sometimes `tie_word_embeddings`).
struct Fields<'a> {
    text: &'a Map<String, Value>,
    top: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.text
            .get(name)
            .or_else(|| self.top.get(name))
            .filter(|v| !v.is_null())
    }

    fn opt(&self, names: &[&str]) -> Result<Option<u32>, String> {
        for name in names {
            if let Some(v) = self.get(name) {
                return v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| format!("`{name}` is {v}, expected a whole number"));
            }
        }
        Ok(None)
    }

    fn req(&self, names: &[&str]) -> Result<u32, String> {
        self.opt(names)?.ok_or_else(|| {
            format!(
                "no `{}` (needed for the model's size)",
                names.join("` or `")
            )
        })
    }

    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("`{name}` is {v}, expected true or false")),
        }
    }
}

fn moe(
    c: &Fields,
    architecture: &str,
    num_layers: u32,
    intermediate: u32,
) -> Result<Option<Moe>, String> {
    let Some(num_experts) = c.opt(&["num_local_experts", "num_experts", "n_routed_experts"])?
    else {
        return Ok(None);
    };
    if num_experts <= 1 {
        return Ok(None);
    }
    let experts_per_token = c
        .opt(&["num_experts_per_tok", "experts_per_token", "moe_topk"])?
        .ok_or("an MoE config needs `num_experts_per_tok`")?;
    if experts_per_token == 0 || experts_per_token > num_experts {
        return Err(format!(
            "`num_experts_per_tok` ({experts_per_token}) must be in 1..={num_experts}"
        ));
    }
    let expert_intermediate_size = c.opt(&["moe_intermediate_size"])?.unwrap_or(intermediate);
    // Shared experts: DeepSeek counts them in units of an expert, Qwen2-MoE gives a width, and
    // Llama 4 always has one the size of a routed expert.
    let shared_intermediate_size = match (
        c.opt(&["n_shared_experts"])?,
        c.opt(&["shared_expert_intermediate_size"])?,
    ) {
        (Some(n), _) => n * expert_intermediate_size,
        (None, Some(w)) => w,
        (None, None) if architecture.starts_with("Llama4") => expert_intermediate_size,
        (None, None) => 0,
    };
    let dense_first = c.opt(&["first_k_dense_replace"])?.unwrap_or(0);
    let step = c
        .opt(&[
            "interleave_moe_layer_step",
            "moe_layer_freq",
            "decoder_sparse_step",
        ])?
        .unwrap_or(1)
        .max(1);
    let dense_listed = c
        .get("mlp_only_layers")
        .and_then(Value::as_array)
        .map_or(0, |l| l.len() as u32);
    let moe_layers = (num_layers.saturating_sub(dense_first) / step).saturating_sub(dense_listed);
    if moe_layers == 0 {
        return Err("the MoE layer pattern leaves no layer with experts".into());
    }
    Ok(Some(Moe {
        num_experts,
        experts_per_token,
        expert_intermediate_size,
        shared_intermediate_size,
        moe_layers,
    }))
}

/// Sliding-window layers: those `layer_types` marks, else every layer when the config enables a
/// window shorter than the context (Mistral 7B v0.1); Qwen's `use_sliding_window = false` turns the
/// window off.
fn sliding_window(
    c: &Fields,
    num_layers: u32,
    max_context: u32,
) -> Result<Option<SlidingWindow>, String> {
    let Some(window) = c.opt(&["sliding_window"])? else {
        return Ok(None);
    };
    if c.get("use_sliding_window").and_then(Value::as_bool) == Some(false) || window >= max_context
    {
        return Ok(None);
    }
    let layers = match c.get("layer_types").and_then(Value::as_array) {
        Some(types) => types
            .iter()
            .filter(|t| t.as_str() == Some("sliding_attention"))
            .count() as u32,
        None => num_layers,
    };
    Ok((layers > 0).then_some(SlidingWindow {
        window,
        layers: layers.min(num_layers),
    }))
}

/// The checkpoint's weight format from `quantization_config`.
fn quantization(c: &Fields) -> Result<Quantization, String> {
    let Some(q) = c.get("quantization_config") else {
        return Ok(Quantization::None);
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_lowercase();
    let method = text(q.get("quant_method"));
    let bits = q.get("bits").and_then(Value::as_u64);
    let unsupported = || format!("quantization_config: `{method}` weights are not modelled");
    match method.as_str() {
        "fp8" | "fbgemm_fp8" => Ok(Quantization::Fp8),
        "awq" if bits.is_none_or(|b| b == 4) => Ok(Quantization::Awq),
        "gptq" if bits.is_none_or(|b| b == 4) => Ok(Quantization::Gptq),
        "mxfp4" => Ok(Quantization::Mxfp4),
        "modelopt" => match text(q.get("quant_algo")).as_str() {
            "fp8" => Ok(Quantization::Fp8),
            "nvfp4" => Ok(Quantization::Nvfp4),
            other => Err(format!(
                "quantization_config: modelopt `{other}` is not modelled"
            )),
        },
        "compressed-tensors" => compressed_tensors(q).ok_or_else(unsupported),
        _ => Err(unsupported()),
    }
}

/// compressed-tensors (llm-compressor) describes each scheme by its weight and activation types.
fn compressed_tensors(q: &Value) -> Option<Quantization> {
    let group = q.get("config_groups")?.as_object()?.values().next()?;
    let weights = group.get("weights")?;
    let bits = weights.get("num_bits")?.as_u64()?;
    let kind = weights.get("type")?.as_str()?;
    let activations = group.get("input_activations").filter(|a| !a.is_null());
    match (kind, bits, activations.is_some()) {
        ("float", 8, _) => Some(Quantization::Fp8),
        ("int", 8, true) => Some(Quantization::Int8),
        ("int", 4, false) => Some(Quantization::Gptq),
        ("float", 4, _) => Some(Quantization::Nvfp4),
        _ => None,
    }
}
