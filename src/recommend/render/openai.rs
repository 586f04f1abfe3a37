//! OpenAI-compatible client defaults (`model`, `max_completion_tokens`, `temperature`), as the JSON
//! body of a Chat Completions request and as a short Python snippet (openai-python 3.x). The
//! supply's `max_tokens` default is sent as `max_completion_tokens`: `max_tokens` is deprecated in
//! the SDK and rejected by reasoning models.

use serde_json::{Map, Value, json};

use super::{Renderer, SnippetFile, Target};
use crate::config::{Engine, Supply};
use crate::knobs::ServingConfig;

pub struct OpenAiClient;

impl Renderer for OpenAiClient {
    fn engine(&self) -> Engine {
        Engine::Openai
    }

    fn render(&self, target: &Target, _: &ServingConfig, _: &ServingConfig) -> Vec<SnippetFile> {
        client_defaults(target.supply)
    }
}

/// The client-defaults files of any supply (hosted APIs have no serving configuration).
pub fn client_defaults(s: &Supply) -> Vec<SnippetFile> {
    {
        let mut body = Map::new();
        body.insert("model".into(), json!(s.model));
        if let Some(m) = s.config.max_tokens {
            body.insert("max_completion_tokens".into(), json!(m));
        }
        if let Some(t) = s.config.temperature {
            body.insert("temperature".into(), json!(t));
        }
        let mut python = format!(
            "# tunelake: OpenAI-compatible client defaults for supply `{}`.\nfrom openai import OpenAI\n\nclient = OpenAI()\n\n\ndef complete(messages):\n    return client.chat.completions.create(\n        messages=messages,\n",
            s.id
        );
        for (key, value) in &body {
            python.push_str(&format!("        {key}={},\n", python_literal(value)));
        }
        python.push_str("    )\n");
        vec![
            SnippetFile {
                name: "openai.json".into(),
                text: serde_json::to_string_pretty(&Value::Object(body)).expect("JSON") + "\n",
            },
            SnippetFile {
                name: "openai.py".into(),
                text: python,
            },
        ]
    }
}

fn python_literal(v: &Value) -> String {
    match v {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}
