//! The seed-000 config snippet: only the changed keys, and its inverse.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::knobs::{Knob, ServingConfig};

/// The seed-000 snippet of the change from `before` to `after`: only changed keys, grouped as
/// `resource_config` (GPU, TP, replicas) and `performance_config` (engine settings).
pub fn config_snippet(before: &ServingConfig, after: &ServingConfig) -> Value {
    let mut resource = Map::new();
    let mut performance = Map::new();
    for ch in after.changes_from(before) {
        match ch.knob {
            Knob::Gpu => {
                resource.insert("gpu_type".into(), ch.after);
            }
            Knob::TensorParallelSize | Knob::Replicas => {
                resource.insert(ch.knob.to_string(), ch.after);
            }
            Knob::Speculative => {
                let value = match &after.speculative {
                    Some(s) => json!({
                        "draft_model_path": s.draft_model,
                        "num_speculative_tokens": s.num_speculative_tokens,
                    }),
                    None => Value::Null,
                };
                performance.insert("speculative_decoding".into(), value);
            }
            knob => {
                performance.insert(knob.to_string(), ch.after);
            }
        }
    }
    let mut snippet = Map::new();
    if !resource.is_empty() {
        snippet.insert("resource_config".into(), Value::Object(resource));
    }
    if !performance.is_empty() {
        snippet.insert("performance_config".into(), Value::Object(performance));
    }
    Value::Object(snippet)
}

/// `config` with a [`config_snippet`] applied: the inverse of the snippet, so a test (or a user)
/// can check that a snippet reproduces the recommended configuration.
pub fn apply_snippet(config: &ServingConfig, snippet: &Value) -> Result<ServingConfig> {
    let bad = |m: String| Error::Setting {
        key: "recommended_config_snippet".into(),
        message: m,
    };
    let mut knobs: Map<String, Value> = Knob::ALL
        .iter()
        .map(|&k| (k.to_string(), config.value(k)))
        .collect();
    for (group, values) in snippet.as_object().into_iter().flatten() {
        for (key, value) in values
            .as_object()
            .ok_or_else(|| bad(format!("`{group}` is not an object")))?
        {
            let (knob, value) = match key.as_str() {
                "gpu_type" => ("gpu".to_string(), value.clone()),
                "speculative_decoding" => (
                    "speculative".to_string(),
                    match value {
                        Value::Null => Value::Null,
                        v => json!({
                            "draft_model": v["draft_model_path"],
                            "num_speculative_tokens": v["num_speculative_tokens"],
                        }),
                    },
                ),
                other => (other.to_string(), value.clone()),
            };
            if !knobs.contains_key(&knob) {
                return Err(bad(format!("unknown key `{key}` in `{group}`")));
            }
            knobs.insert(knob, value);
        }
    }
    serde_json::from_value(Value::Object(knobs)).map_err(|e| bad(e.to_string()))
}
