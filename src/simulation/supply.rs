//! From a pipeline's supply (engine-neutral settings) to a simulated [`Deployment`], and the
//! `key=value` overrides that `tunelake simulate --set` and the search apply on top.

use super::config::{Deployment, KvCacheDtype, SpeculativeConfig};
use crate::catalog::Catalog;
use crate::config::{EngineSettings, Supply};
use crate::error::{Error, Result};

/// The deployment a supply runs today: its GPU, model, TP, replicas, price and current engine config.
pub fn deployment_for(supply: &Supply, catalog: &Catalog) -> Result<Deployment> {
    let bad = |message: String| Error::Setting {
        key: format!("supplies[{}]", supply.id),
        message,
    };
    let gpu = supply
        .gpu
        .as_deref()
        .ok_or_else(|| bad("a hosted API has no GPU deployment to simulate".into()))?;
    let mut deployment = Deployment::new(
        catalog.gpu(gpu)?.clone(),
        catalog.model(&supply.model)?.clone(),
        supply.gpus_per_replica,
        supply.replicas,
    );
    if let Some(price) = supply.price.per_gpu_hour {
        deployment.price_per_gpu_hour = price;
    }
    apply_settings(&mut deployment, &supply.config, catalog)?;
    Ok(deployment)
}

fn apply_settings(d: &mut Deployment, s: &EngineSettings, catalog: &Catalog) -> Result<()> {
    let e = &mut d.engine;
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = s.$field { e.$field = v; } )* };
    }
    set!(
        block_size,
        max_num_seqs,
        max_num_batched_tokens,
        gpu_memory_utilization,
        enable_prefix_caching,
        enable_chunked_prefill
    );
    if s.max_model_len.is_some() {
        e.max_model_len = s.max_model_len;
    }
    if let Some(dtype) = &s.kv_cache_dtype {
        e.kv_cache_dtype = parse_kv_dtype(dtype)?;
    }
    if let Some(spec) = &s.speculative {
        d.draft_model = Some(catalog.model(&spec.draft_model)?.clone());
        d.engine.speculative = Some(SpeculativeConfig::new(
            &spec.draft_model,
            spec.num_speculative_tokens,
        ));
    }
    Ok(())
}

fn parse_kv_dtype(text: &str) -> Result<KvCacheDtype> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        Error::Setting {
            key: "kv_cache_dtype".into(),
            message: format!("unknown KV cache dtype `{text}`"),
        }
    })
}

/// Applies one `key=value` override. Keys are the engine settings' names (as in the pipeline file's
/// `config` table) plus `gpu`, `tensor_parallel_size`, `replicas`, `num_gpu_blocks` and `router`.
pub fn apply_override(d: &mut Deployment, assignment: &str, catalog: &Catalog) -> Result<()> {
    let (key, value) = assignment.split_once('=').ok_or_else(|| Error::Setting {
        key: assignment.to_string(),
        message: "expected key=value".into(),
    })?;
    let (key, value) = (key.trim(), value.trim());
    let bad = |message: String| Error::Setting {
        key: key.to_string(),
        message,
    };
    fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
        value.parse().map_err(|_| Error::Setting {
            key: key.to_string(),
            message: format!("`{value}` is not a valid number here"),
        })
    }
    let bool_of = |v: &str| match v {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err(bad(format!("`{v}` is not true/false"))),
    };
    match key {
        "gpu" => {
            let gpu = catalog.gpu(value)?;
            if d.price_per_gpu_hour == d.gpu.price_per_hour_usd {
                d.price_per_gpu_hour = gpu.price_per_hour_usd;
            }
            d.gpu = gpu.clone();
        }
        "tensor_parallel_size" => d.tensor_parallel_size = num(key, value)?,
        "replicas" => d.replicas = num(key, value)?,
        "num_gpu_blocks" => d.engine.num_gpu_blocks_override = Some(num(key, value)?),
        "router" => {
            d.router =
                serde_json::from_value(serde_json::Value::String(value.into())).map_err(|_| {
                    bad("expected round_robin, least_outstanding or prefix_affinity".into())
                })?
        }
        "block_size" => d.engine.block_size = num(key, value)?,
        "max_num_seqs" => d.engine.max_num_seqs = num(key, value)?,
        "max_num_batched_tokens" => d.engine.max_num_batched_tokens = num(key, value)?,
        "gpu_memory_utilization" => d.engine.gpu_memory_utilization = num(key, value)?,
        "max_model_len" => d.engine.max_model_len = Some(num(key, value)?),
        "enable_prefix_caching" => d.engine.enable_prefix_caching = bool_of(value)?,
        "enable_chunked_prefill" => d.engine.enable_chunked_prefill = bool_of(value)?,
        "kv_cache_dtype" => d.engine.kv_cache_dtype = parse_kv_dtype(value)?,
        "num_speculative_tokens" => match &mut d.engine.speculative {
            Some(s) => s.num_speculative_tokens = num(key, value)?,
            None => return Err(bad("set speculative_model first".into())),
        },
        "speculative_model" => {
            d.draft_model = Some(catalog.model(value)?.clone());
            let k = d
                .engine
                .speculative
                .as_ref()
                .map_or(4, |s| s.num_speculative_tokens);
            d.engine.speculative = Some(SpeculativeConfig::new(value, k));
        }
        _ => return Err(bad("unknown setting".into())),
    }
    d.validate()
}
