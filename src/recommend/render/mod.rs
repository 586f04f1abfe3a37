//! Snippet renderers: a configuration change written the way each engine (or client) takes it, with
//! flag and key names as the current versions spell them (checked against the lists in
//! `../shared/reference/engine-flags/` by the conformance tests).

mod openai;
mod sglang;
mod tgi;
mod triton;
mod trtllm;
mod vllm;

use crate::catalog::{Catalog, Quantization};
use crate::config::{Engine, Supply};
use crate::knobs::{Knob, ServingConfig};

pub use openai::{OpenAiClient, client_defaults};
pub use sglang::Sglang;
pub use tgi::Tgi;
pub use triton::Triton;
pub use trtllm::TrtLlm;
pub use vllm::Vllm;

/// What a snippet is for: the supply, and the catalog to size memory fractions with.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub supply: &'a Supply,
    pub catalog: &'a Catalog,
}

/// One rendered file, written to `snippets/<supply_id>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnippetFile {
    pub name: String,
    pub text: String,
}

/// Renders the change from `before` to `after` for one engine or client.
pub trait Renderer: Sync {
    /// The engine whose settings it writes (`Openai` for the client defaults).
    fn engine(&self) -> Engine;
    /// The files that apply `after` to a supply running `before`.
    fn render(
        &self,
        target: &Target,
        before: &ServingConfig,
        after: &ServingConfig,
    ) -> Vec<SnippetFile>;
}

/// Every renderer, for the conformance suite.
pub fn all() -> [&'static dyn Renderer; 6] {
    [&Vllm, &Tgi, &TrtLlm, &Triton, &Sglang, &OpenAiClient]
}

/// The renderer of a supply's engine.
pub fn for_engine(engine: Engine) -> &'static dyn Renderer {
    match engine {
        Engine::Vllm => &Vllm,
        Engine::Tgi => &Tgi,
        Engine::Trtllm => &TrtLlm,
        Engine::Triton => &Triton,
        Engine::Sglang => &Sglang,
        Engine::Openai => &OpenAiClient,
    }
}

/// The comment header of a snippet: what it is, then one line per changed knob; GPU type and
/// replica count are marked as the orchestrator's to apply.
fn header(prefix: &str, title: &str, before: &ServingConfig, after: &ServingConfig) -> String {
    let mut text = format!("{prefix} tunelake: {title}\n");
    for ch in after.changes_from(before) {
        let note = if matches!(ch.knob, Knob::Gpu | Knob::Replicas) {
            " (set in the orchestrator, not the engine)"
        } else {
            ""
        };
        text.push_str(&format!("{prefix} {}{note}\n", ch.describe()));
    }
    text
}

/// Whether `config` must set `knob`: when it differs from `base`; with no `base` (a full command),
/// always, except a knob of one engine or an optional feature left at its default.
fn differs(config: &ServingConfig, base: Option<&ServingConfig>, knob: Knob) -> bool {
    match base {
        Some(b) => config.value(knob) != b.value(knob),
        None => !(knob.engine_specific() && config.value(knob) == knob.default_value()),
    }
}

/// vLLM's name for a KV-cache dtype (TRT-LLM shares the `fp8` / `auto` spellings).
fn kv_dtype_name(config: &ServingConfig) -> &'static str {
    use crate::knobs::KvCacheDtype::*;
    match config.kv_cache_dtype {
        Auto => "auto",
        Fp16 => "float16",
        Bf16 => "bfloat16",
        Fp8 => "fp8",
    }
}

/// A launch command as tokens, edited flag by flag. Quoted arguments (a JSON value) stay one token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CommandLine(Vec<String>);

impl CommandLine {
    /// Splits on whitespace outside single or double quotes; line continuations are dropped.
    fn parse(text: &str) -> CommandLine {
        let mut tokens = Vec::new();
        let mut token = String::new();
        let mut quote = None;
        for c in text.replace("\\\n", " ").chars() {
            match (quote, c) {
                (None, '\'' | '"') => {
                    quote = Some(c);
                    token.push(c);
                }
                (Some(q), _) if c == q => {
                    quote = None;
                    token.push(c);
                }
                (None, c) if c.is_whitespace() => {
                    if !token.is_empty() {
                        tokens.push(std::mem::take(&mut token));
                    }
                }
                _ => token.push(c),
            }
        }
        if !token.is_empty() {
            tokens.push(token);
        }
        CommandLine(tokens)
    }

    /// Whether `token` spells one of `names` (also as `name=value`, or with underscores for dashes).
    fn spells(token: &str, names: &[&str]) -> bool {
        let flag = token.split('=').next().unwrap_or(token);
        let dashed = format!("--{}", flag.trim_start_matches('-').replace('_', "-"));
        names
            .iter()
            .any(|n| flag == *n || (flag.starts_with("--") && dashed == *n))
    }

    /// Removes every occurrence of the flags `names`, with their value when `takes_value`.
    fn remove(&mut self, names: &[&str], takes_value: bool) {
        let mut out = Vec::with_capacity(self.0.len());
        let mut skip_value = false;
        for t in self.0.drain(..) {
            if skip_value {
                skip_value = false;
                if !t.starts_with('-') {
                    continue;
                }
            }
            if Self::spells(&t, names) {
                skip_value = takes_value && !t.contains('=');
                continue;
            }
            out.push(t);
        }
        self.0 = out;
    }

    /// Sets flag `names[0]` (aliases after it) to `value`, replacing any earlier setting in place.
    fn set(&mut self, names: &[&str], value: &str) {
        let at = self.0.iter().position(|t| Self::spells(t, names));
        match at {
            Some(i) => {
                let has_separate_value = !self.0[i].contains('=')
                    && self.0.get(i + 1).is_some_and(|v| !v.starts_with("--"));
                self.0[i] = names[0].to_string();
                if has_separate_value {
                    self.0[i + 1] = value.to_string();
                } else {
                    self.0.insert(i + 1, value.to_string());
                }
                let rest: Vec<String> = self.0.split_off(i + 2);
                let mut tail = CommandLine(rest);
                tail.remove(names, true);
                self.0.extend(tail.0);
            }
            None => self.0.extend([names[0].to_string(), value.to_string()]),
        }
    }

    /// Sets a boolean flag pair: `on` when true, `off` when false; `others` are removed too.
    fn switch(&mut self, value: bool, on: &str, off: &str, others: &[&str]) {
        let mut all = vec![on, off];
        all.extend_from_slice(others);
        self.remove(&all, false);
        self.0.push(if value { on } else { off }.to_string());
    }

    /// Serves the weights of `after` where the command serves those of `before` (the model path,
    /// positional or a flag's value).
    fn swap_checkpoint(&mut self, supply: &Supply, before: &ServingConfig, after: &ServingConfig) {
        let (old, new) = (checkpoint(supply, before), checkpoint(supply, after));
        for t in self.0.iter_mut().filter(|t| *t == old) {
            *t = new.to_string();
        }
    }

    /// Serves `after`'s weights where the command serves `before`'s: the checkpoint swapped, the
    /// weight-format flag (`flags`) removed, then set to `at_load` when the engine quantizes at load.
    fn serve_weights(
        &mut self,
        supply: &Supply,
        (before, after): (&ServingConfig, &ServingConfig),
        flags: &[&str],
        at_load: Option<&str>,
    ) {
        if !differs(after, Some(before), Knob::Quantization) {
            return;
        }
        self.swap_checkpoint(supply, before, after);
        self.remove(flags, true);
        if let Some(value) = at_load {
            self.set(flags, value);
        }
    }

    /// One token per line after the program and its positional arguments, joined by `\`.
    fn pretty(&self) -> String {
        let mut out = String::new();
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(if t.starts_with('-') { " \\\n    " } else { " " });
            }
            out.push_str(t);
        }
        out
    }
}

/// The weights `config` serves: the checkpoint the supply lists for its weight format, else the
/// supply's model.
fn checkpoint<'a>(supply: &'a Supply, config: &ServingConfig) -> &'a str {
    config
        .quantization
        .and_then(|q| supply.options.checkpoints.get(&q))
        .map_or(supply.model.as_str(), String::as_str)
}

/// Whether `config` quantizes its checkpoint at load (vLLM's and TGI's online FP8).
fn quantizes_at_load(supply: &Supply, config: &ServingConfig) -> Option<Quantization> {
    config
        .quantization
        .filter(|q| !supply.options.checkpoints.contains_key(q))
}

/// Single-quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Writes every knob of a configuration that differs from a base (all of them without one) on a
/// launch command: each command-line renderer's own.
type Apply = fn(&mut CommandLine, &ServingConfig, Option<&ServingConfig>);

/// The supply's launch command, or `program` followed by the model with `before`'s settings.
fn launch_command(
    supply: &Supply,
    program: &[&str],
    before: &ServingConfig,
    apply: Apply,
) -> CommandLine {
    if let Some(text) = &supply.config.launch_command {
        return CommandLine::parse(text);
    }
    let mut c = CommandLine(program.iter().map(|t| t.to_string()).collect());
    c.0.push(supply.model.clone());
    apply(&mut c, before, None);
    c
}

/// Appends to a launch script how a disaggregated configuration runs: which instances prefill,
/// which decode (`decode`: how their command differs), and `router`, what sits in front of them.
fn note_disaggregation(
    script: &mut SnippetFile,
    config: &ServingConfig,
    decode: &str,
    router: &str,
) {
    let Some((p, d)) = config
        .pd_disaggregation
        .and_then(|r| r.split(config.replicas))
    else {
        return;
    };
    let text = format!(
        "Disaggregated: run {p} prefill instance(s) with the command above and {d} decode \
         instance(s) {decode}, behind {router}."
    );
    for line in wrap(&text, 96) {
        script.text.push_str(&format!("# {line}\n"));
    }
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// A shell script showing a launch command before (commented out) and after the change.
fn launch_script(
    file: &str,
    title: &str,
    supply: &Supply,
    (before, after): (&ServingConfig, &ServingConfig),
    (old, new): (&CommandLine, &CommandLine),
) -> SnippetFile {
    let mut text = "#!/bin/sh\n".to_string();
    text.push_str(&header(
        "#",
        &format!("{title} for supply `{}`.", supply.id),
        before,
        after,
    ));
    text.push_str("#\n# Before:\n");
    for line in old.pretty().lines() {
        text.push_str(&format!("#   {line}\n"));
    }
    text.push_str("# After:\n");
    text.push_str(&new.pretty());
    text.push('\n');
    SnippetFile {
        name: file.into(),
        text,
    }
}
