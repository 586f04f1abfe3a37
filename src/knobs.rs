//! The serving knobs: one definition each, shared by the pipeline file (a supply's current `config`
//! and its search `options`), the search space, the simulated deployment, the snippet renderers and the
//! report. Names are vLLM's, the engine-neutral vocabulary the renderers translate from.
//!
//! Adding a knob is one line in [`knobs!`] below (name, type, default, valid range) plus the code that
//! gives it meaning: the simulator's use of it and each renderer's flag.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::catalog::{Dtype, Quantization};
use crate::error::{Error, Result};
use crate::hash::stable_hash64;

/// KV-cache element type (vLLM `--kv-cache-dtype`). `Auto` follows the model dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvCacheDtype {
    #[default]
    Auto,
    Fp16,
    Bf16,
    Fp8,
}

impl KvCacheDtype {
    pub fn resolve(self, model_dtype: Dtype) -> Dtype {
        match self {
            KvCacheDtype::Auto => model_dtype,
            KvCacheDtype::Fp16 => Dtype::Fp16,
            KvCacheDtype::Bf16 => Dtype::Bf16,
            KvCacheDtype::Fp8 => Dtype::Fp8,
        }
    }
}

/// TensorRT-LLM's capacity scheduler policy (`scheduler_config.capacity_scheduler_policy`; Triton's
/// `batch_scheduler_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityPolicy {
    /// Admit a request only when KV for its whole prompt and output is free: never evicts.
    #[default]
    GuaranteedNoEvict,
    /// Admit while the next step fits; pause (and later recompute) the newest request when full.
    MaxUtilization,
}

impl CapacityPolicy {
    /// The policy as TensorRT-LLM spells it.
    pub fn trtllm_name(self) -> &'static str {
        match self {
            CapacityPolicy::GuaranteedNoEvict => "GUARANTEED_NO_EVICT",
            CapacityPolicy::MaxUtilization => "MAX_UTILIZATION",
        }
    }
}

/// SGLang's `--schedule-policy` (the two the simulator models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulePolicy {
    /// First come, first served (SGLang's default).
    #[default]
    Fcfs,
    /// Longest cached prefix first.
    Lpm,
}

/// Prefill/decode disaggregation: of a deployment's replicas, `prefill` in every `prefill + decode`
/// run prefills only and hand their KV to the others, which only decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdRatio {
    pub prefill: u32,
    pub decode: u32,
}

impl PdRatio {
    /// Prefill and decode instances among `replicas`: the prefill share rounded to the nearest count,
    /// each pool at least one; `None` when fewer than two replicas.
    pub fn split(self, replicas: u32) -> Option<(u32, u32)> {
        if replicas < 2 || self.prefill == 0 || self.decode == 0 {
            return None;
        }
        let share = f64::from(self.prefill) / f64::from(self.prefill + self.decode);
        let p = ((f64::from(replicas) * share).round() as u32).clamp(1, replicas - 1);
        Some((p, replicas - p))
    }
}

impl fmt::Display for PdRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.prefill, self.decode)
    }
}

impl FromStr for PdRatio {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<PdRatio, String> {
        let parse = || {
            let (p, d) = text.split_once(':')?;
            Some(PdRatio {
                prefill: p.trim().parse().ok()?,
                decode: d.trim().parse().ok()?,
            })
        };
        parse().ok_or_else(|| format!("`{text}` is not PREFILL:DECODE (e.g. \"1:3\")"))
    }
}

impl Serialize for PdRatio {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PdRatio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<PdRatio, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Speculative decoding with a draft model: `num_speculative_tokens` drafted per step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speculative {
    /// Catalog id (or alias) of the draft model.
    pub draft_model: String,
    pub num_speculative_tokens: u32,
}

/// The shape of a knob's value, which decides its column type in the output tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Integer,
    Real,
    Flag,
    /// A draft model and a token count, or nothing (off).
    Speculative,
}

/// What every knob's value type provides: parsing as `--set knob=value` writes it, a numeric view
/// for the guardrails, and the text a person reads in a snippet header.
pub trait KnobValue: Clone + PartialEq + Serialize + DeserializeOwned {
    /// Whether guardrails (`max_delta`, `bounds`) apply to the knob.
    const NUMERIC: bool = false;
    const KIND: ValueKind;
    fn parse(text: &str) -> Option<Self>;
    fn numeric(&self) -> Option<f64> {
        None
    }
    fn show(&self) -> String {
        json!(self).to_string()
    }
    /// The value in a configuration's one-line description (and so in its id).
    fn brief(&self) -> String {
        self.show()
    }
}

impl KnobValue for u32 {
    const NUMERIC: bool = true;
    const KIND: ValueKind = ValueKind::Integer;
    fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
    fn numeric(&self) -> Option<f64> {
        Some(f64::from(*self))
    }
}

impl KnobValue for f64 {
    const NUMERIC: bool = true;
    const KIND: ValueKind = ValueKind::Real;
    fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
    fn numeric(&self) -> Option<f64> {
        Some(*self)
    }
    fn brief(&self) -> String {
        self.to_string()
    }
}

impl KnobValue for bool {
    const KIND: ValueKind = ValueKind::Flag;
    fn parse(text: &str) -> Option<Self> {
        match text {
            "true" | "on" | "1" => Some(true),
            "false" | "off" | "0" => Some(false),
            _ => None,
        }
    }
    fn brief(&self) -> String {
        u8::from(*self).to_string()
    }
}

impl KnobValue for String {
    const KIND: ValueKind = ValueKind::Text;
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl KnobValue for KvCacheDtype {
    const KIND: ValueKind = ValueKind::Text;
    fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_string())).ok()
    }
    fn show(&self) -> String {
        json!(self).as_str().unwrap_or("auto").to_string()
    }
}

impl KnobValue for CapacityPolicy {
    const KIND: ValueKind = ValueKind::Text;
    fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_lowercase())).ok()
    }
    fn show(&self) -> String {
        json!(self).as_str().unwrap_or_default().to_string()
    }
}

impl KnobValue for SchedulePolicy {
    const KIND: ValueKind = ValueKind::Text;
    fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_string())).ok()
    }
    fn show(&self) -> String {
        json!(self).as_str().unwrap_or_default().to_string()
    }
}

/// `off` (aggregated), or `PREFILL:DECODE` instances.
impl KnobValue for Option<PdRatio> {
    const KIND: ValueKind = ValueKind::Text;
    fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(None),
            _ => text.parse().ok().map(Some),
        }
    }
    fn show(&self) -> String {
        self.map_or("off".to_string(), |r| r.to_string())
    }
}

/// `auto` (the checkpoint's own format, as vLLM detects it), or a format name.
impl KnobValue for Option<Quantization> {
    const KIND: ValueKind = ValueKind::Text;
    fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(None),
            _ => text.parse().ok().map(Some),
        }
    }
    fn show(&self) -> String {
        self.map_or("auto", Quantization::name).to_string()
    }
}

/// `off`, or `MODEL:K` on the command line; the guardrails see K (0 when off).
impl KnobValue for Option<Speculative> {
    const NUMERIC: bool = true;
    const KIND: ValueKind = ValueKind::Speculative;
    fn parse(text: &str) -> Option<Self> {
        if text == "off" {
            return Some(None);
        }
        let (model, k) = text.rsplit_once(':')?;
        Some(Some(Speculative {
            draft_model: model.to_string(),
            num_speculative_tokens: k.parse().ok()?,
        }))
    }
    fn numeric(&self) -> Option<f64> {
        Some(
            self.as_ref()
                .map_or(0.0, |s| f64::from(s.num_speculative_tokens)),
        )
    }
    fn show(&self) -> String {
        match self {
            Some(s) => format!(
                "{} drafting {} tokens",
                s.draft_model, s.num_speculative_tokens
            ),
            None => "off".into(),
        }
    }
    fn brief(&self) -> String {
        self.as_ref().map_or("off".to_string(), |s| {
            format!("{}×{}", s.draft_model, s.num_speculative_tokens)
        })
    }
}

/// Generates, from one list of knobs: [`Knob`], [`ServingConfig`] (complete values), [`EngineSettings`]
/// (a pipeline file's `config`: engine knobs, each optional) and [`SearchOptions`] (a pipeline file's
/// `options`: candidate values per knob). Deployment knobs (GPU, TP, replicas) have no engine default:
/// a supply states them at its top level.
macro_rules! knobs {
    (
        deployment { $( $(#[doc = $ddoc:literal])* $dfield:ident : $dty:ty, $dvariant:ident, $dlabel:literal, valid($dv:ident) = $dvalid:expr, $dwhy:literal; )* }
        engine { $( $(#[doc = $edoc:literal])* $efield:ident : $ety:ty = $edefault:expr, $evariant:ident, $elabel:literal, valid($ev:ident) = $evalid:expr, $ewhy:literal; )* }
        settings_extra { $( $(#[doc = $sdoc:literal])* $sfield:ident : $sty:ty, )* }
        options_extra { $( $(#[doc = $odoc:literal])* $ofield:ident : $oty:ty = $odefault:expr, )* }
    ) => {
        /// A serving knob, named as in pipeline files, `--set`, guardrails and the report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Knob { $($dvariant,)* $($evariant,)* }

        impl Knob {
            /// Every knob, in the order the search expands them and the report lists them.
            pub const ALL: &[Knob] = &[$(Knob::$dvariant,)* $(Knob::$evariant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Knob::$dvariant => stringify!($dfield),)* $(Knob::$evariant => stringify!($efield),)* }
            }

            /// Whether the guardrails (`max_delta`, `bounds`) apply to it.
            pub fn is_numeric(self) -> bool {
                match self {
                    $(Knob::$dvariant => <$dty as KnobValue>::NUMERIC,)*
                    $(Knob::$evariant => <$ety as KnobValue>::NUMERIC,)*
                }
            }

            pub fn kind(self) -> ValueKind {
                match self {
                    $(Knob::$dvariant => <$dty as KnobValue>::KIND,)*
                    $(Knob::$evariant => <$ety as KnobValue>::KIND,)*
                }
            }

            /// The knob's tag in a configuration's one-line description.
            fn label(self) -> &'static str {
                match self { $(Knob::$dvariant => $dlabel,)* $(Knob::$evariant => $elabel,)* }
            }

            /// What the knob means (its doc comment), for the output tables' column docs.
            pub fn doc(self) -> &'static str {
                match self {
                    $(Knob::$dvariant => concat!($($ddoc),*).trim(),)*
                    $(Knob::$evariant => concat!($($edoc),*).trim(),)*
                }
            }
        }

        /// One complete serving configuration. Replicas are part of it, but the search sizes them
        /// apart from the rest (the "shape") by bisection.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ServingConfig {
            $( $(#[doc = $ddoc])* pub $dfield: $dty, )*
            $( $(#[doc = $edoc])* pub $efield: $ety, )*
        }

        impl ServingConfig {
            /// `gpu` × `tensor_parallel_size` × `replicas` with every engine knob at its default.
            pub fn with_engine_defaults($($dfield: $dty),*) -> ServingConfig {
                ServingConfig { $($dfield,)* $($efield: $edefault,)* }
            }

            /// A knob's value as JSON (the report's and the tables' form).
            pub fn value(&self, knob: Knob) -> Value {
                match knob {
                    $(Knob::$dvariant => json!(self.$dfield),)*
                    $(Knob::$evariant => json!(self.$efield),)*
                }
            }

            /// A knob's value as a person reads it.
            pub fn show(&self, knob: Knob) -> String {
                match knob {
                    $(Knob::$dvariant => self.$dfield.show(),)*
                    $(Knob::$evariant => self.$efield.show(),)*
                }
            }

            /// A knob's value as its configuration's description writes it.
            fn brief(&self, knob: Knob) -> String {
                match knob {
                    $(Knob::$dvariant => self.$dfield.brief(),)*
                    $(Knob::$evariant => self.$efield.brief(),)*
                }
            }

            /// A numeric knob's value (`None` for the others).
            pub fn numeric(&self, knob: Knob) -> Option<f64> {
                match knob {
                    $(Knob::$dvariant => self.$dfield.numeric(),)*
                    $(Knob::$evariant => self.$efield.numeric(),)*
                }
            }

            /// Sets a knob from its command-line text (`--set knob=value`).
            pub fn set(&mut self, knob: Knob, text: &str) -> Result<()> {
                let bad = || Error::Setting {
                    key: knob.name().to_string(),
                    message: format!("`{text}` is not a valid value"),
                };
                match knob {
                    $(Knob::$dvariant => self.$dfield = KnobValue::parse(text).ok_or_else(bad)?,)*
                    $(Knob::$evariant => self.$efield = KnobValue::parse(text).ok_or_else(bad)?,)*
                }
                Ok(())
            }

            /// The first knob whose value the engine cannot run with, and why.
            pub fn invalid(&self) -> Option<(Knob, &'static str)> {
                $( { let $dv = &self.$dfield; if !($dvalid) { return Some((Knob::$dvariant, $dwhy)); } } )*
                $( { let $ev = &self.$efield; if !($evalid) { return Some((Knob::$evariant, $ewhy)); } } )*
                None
            }

            /// Applies a pipeline file's engine settings (unset ones keep their value).
            pub fn apply(&mut self, settings: &EngineSettings) {
                $( if let Some(v) = &settings.$efield { self.$efield = v.clone(); } )*
            }
        }

        /// A supply's current engine configuration as its pipeline file's `config` table writes it.
        /// Unset knobs take the engine's defaults.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct EngineSettings {
            $( $(#[doc = $sdoc])* pub $sfield: $sty, )*
            $( #[serde(default)] pub $efield: Option<$ety>, )*
        }

        /// What the search may try for a supply (its pipeline file's `options`). An empty list keeps
        /// the current value.
        #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct SearchOptions {
            $( $(#[doc = $odoc])* pub $ofield: $oty, )*
            $( pub $dfield: Vec<$dty>, )*
            $( pub $efield: Vec<$ety>, )*
        }

        impl Default for SearchOptions {
            fn default() -> Self {
                SearchOptions { $($ofield: $odefault,)* $($dfield: Vec::new(),)* $($efield: Vec::new(),)* }
            }
        }

        impl SearchOptions {
            /// Knobs the search may vary (a non-empty list).
            pub fn given(&self) -> Vec<Knob> {
                let mut given = Vec::new();
                $( if !self.$dfield.is_empty() { given.push(Knob::$dvariant); } )*
                $( if !self.$efield.is_empty() { given.push(Knob::$evariant); } )*
                given
            }

            /// Every combination of the listed values around `current` (which always stays in: the
            /// search may conclude "keep it"), knobs in [`Knob::ALL`] order, `except` kept as is.
            pub fn expand(&self, current: &ServingConfig, except: Knob) -> Vec<ServingConfig> {
                let mut configs = vec![current.clone()];
                $( if except != Knob::$dvariant {
                    let values = choices(&self.$dfield, &current.$dfield);
                    configs = configs.into_iter().flat_map(|c| values.iter().map(move |v| ServingConfig { $dfield: v.clone(), ..c.clone() })).collect();
                } )*
                $( if except != Knob::$evariant {
                    let values = choices(&self.$efield, &current.$efield);
                    configs = configs.into_iter().flat_map(|c| values.iter().map(move |v| ServingConfig { $efield: v.clone(), ..c.clone() })).collect();
                } )*
                configs
            }

            /// Every listed value of every knob, checked as the engine would check it.
            pub fn invalid(&self, current: &ServingConfig) -> Option<(Knob, &'static str)> {
                $( for v in &self.$dfield { let c = ServingConfig { $dfield: v.clone(), ..current.clone() }; if let Some(bad) = c.invalid() { return Some(bad); } } )*
                $( for v in &self.$efield { let c = ServingConfig { $efield: v.clone(), ..current.clone() }; if let Some(bad) = c.invalid() { return Some(bad); } } )*
                None
            }
        }
    };
}

knobs! {
    deployment {
        /// Catalog GPU id.
        gpu: String, Gpu, "gpu", valid(v) = !v.is_empty(), "names a GPU";
        /// GPUs per replica (tensor parallelism).
        tensor_parallel_size: u32, TensorParallelSize, "tp", valid(v) = *v >= 1, "must be at least 1";
        /// Serving replicas.
        replicas: u32, Replicas, "replicas", valid(v) = *v >= 1, "must be at least 1";
    }
    // Defaults are vLLM v1's online-serving defaults (vLLM docs, "Engine Arguments"): block_size 16,
    // max_num_batched_tokens 8192 with chunked prefill, gpu_memory_utilization 0.9, prefix caching and
    // chunked prefill on, long_prefill_token_threshold 0 (no cap). `max_num_seqs` 256 is vLLM's generic
    // default; vLLM >= 0.8 raises it to 1024 for the OpenAI server on H100-class GPUs, so set it when
    // modelling such a deployment.
    engine {
        /// Tokens per paged-KV block.
        block_size: u32 = 16, BlockSize, "block", valid(v) = *v >= 1, "must be at least 1";
        /// Most sequences in one batch.
        max_num_seqs: u32 = 256, MaxNumSeqs, "seqs", valid(v) = *v >= 1, "must be at least 1";
        /// Token budget of one scheduler step.
        max_num_batched_tokens: u32 = 8192, MaxNumBatchedTokens, "batched", valid(v) = *v >= 1, "must be at least 1";
        /// Share of GPU memory the engine may use (weights, activations, KV cache).
        gpu_memory_utilization: f64 = 0.9, GpuMemoryUtilization, "mem", valid(v) = *v > 0.0 && *v <= 1.0, "must be in (0, 1]";
        /// Reuse of cached KV blocks across requests that share a prefix.
        enable_prefix_caching: bool = true, EnablePrefixCaching, "prefix", valid(_v) = true, "";
        /// Long prompts split across steps so decodes keep running.
        enable_chunked_prefill: bool = true, EnableChunkedPrefill, "chunked", valid(_v) = true, "";
        /// Most prompt tokens one request prefills in a step (0: no cap), so long prompts share steps.
        long_prefill_token_threshold: u32 = 0, LongPrefillTokenThreshold, "longprefill", valid(_v) = true, "";
        /// KV-cache element type (`auto` follows the model).
        kv_cache_dtype: KvCacheDtype = KvCacheDtype::Auto, KvCacheDtype, "kv-", valid(_v) = true, "";
        /// Speculative decoding with a draft model (`None`: off).
        speculative: Option<Speculative> = None, Speculative, "spec-",
            valid(v) = v.as_ref().is_none_or(|s| s.num_speculative_tokens >= 1 && !s.draft_model.is_empty()),
            "needs a draft model and at least 1 speculative token";
        /// Weight format served (`auto`: the checkpoint's own); a format other than the checkpoint's
        /// needs a checkpoint in `options.checkpoints`, except fp8, which vLLM quantizes at load.
        quantization: Option<Quantization> = None, Quantization, "q-", valid(_v) = true, "";
        /// MoE experts spread whole over the TP group's GPUs instead of each split across them.
        enable_expert_parallel: bool = false, EnableExpertParallel, "ep", valid(_v) = true, "";
        /// Host memory for KV offloading, GiB per replica (0: off): prefix blocks evicted from the
        /// GPU and preempted requests' KV are kept there and loaded back over PCIe.
        kv_offload_gib: f64 = 0.0, KvOffloadGib, "offload", valid(v) = v.is_finite() && *v >= 0.0, "must be a number >= 0";
        /// Prefill/decode disaggregation as `PREFILL:DECODE` instances (`off`: every replica does both).
        pd_disaggregation: Option<PdRatio> = None, PdDisaggregation, "pd",
            valid(v) = v.is_none_or(|r| r.prefill >= 1 && r.decode >= 1), "needs at least one prefill and one decode instance";
        /// TensorRT-LLM's KV admission: reserve whole requests (`guaranteed_no_evict`) or fill and
        /// pause (`max_utilization`).
        capacity_scheduler_policy: CapacityPolicy = CapacityPolicy::GuaranteedNoEvict, CapacitySchedulerPolicy, "cap-", valid(_v) = true, "";
        /// SGLang's admission order: `fcfs` or `lpm` (longest cached prefix first).
        schedule_policy: SchedulePolicy = SchedulePolicy::Fcfs, SchedulePolicy, "policy-", valid(_v) = true, "";
        /// TGI: a new batch joins a running one only with at least this share of its size.
        waiting_served_ratio: f64 = 0.3, WaitingServedRatio, "wsr", valid(v) = v.is_finite() && *v >= 0.0, "must be a number >= 0";
    }
    settings_extra {
        /// The command that starts the engine today (renderers show it before and after).
        launch_command: Option<String>,
        /// Longest prompt + output the engine accepts (None: the model's context); not searched.
        max_model_len: Option<u32>,
        /// Network catalog id of the link between prefill and decode instances (None: the catalog's
        /// default), used when the deployment is disaggregated.
        kv_transfer_link: Option<String>,
        /// Client-side defaults for hosted APIs (OpenAI-compatible).
        max_tokens: Option<u32>,
        temperature: Option<f64>,
    }
    options_extra {
        /// Traffic to plan for, as a multiple of the observed: every candidate is simulated on the
        /// window and on its peak hour with arrival rates multiplied by this.
        growth: f64 = 1.0,
        /// Guardrail (seed 001): largest allowed relative change per numeric knob, as
        /// max(new/old, old/new) − 1; `max_num_seqs = 1.0` allows at most doubling or halving it.
        max_delta: std::collections::BTreeMap<Knob, f64> = Default::default(),
        /// Guardrail: hard `[min, max]` per numeric knob, whatever the lists say.
        bounds: std::collections::BTreeMap<Knob, [f64; 2]> = Default::default(),
        /// The checkpoint (path or repo id) that serves each weight format the search may try: a
        /// quantized model is different weights, whose quality is the user's call.
        checkpoints: std::collections::BTreeMap<Quantization, String> = Default::default(),
    }
}

/// `options` if given, else the current value; the current value always comes first.
pub fn choices<T: Clone + PartialEq>(options: &[T], current: &T) -> Vec<T> {
    let mut v = vec![current.clone()];
    for o in options {
        if !v.contains(o) {
            v.push(o.clone());
        }
    }
    v
}

impl ServingConfig {
    /// GPUs the configuration occupies.
    pub fn gpus(&self) -> u32 {
        self.replicas * self.tensor_parallel_size
    }

    /// Knobs whose value differs from `base`, in [`Knob::ALL`] order.
    pub fn changes_from(&self, base: &ServingConfig) -> Vec<Change> {
        Knob::ALL
            .iter()
            .filter(|&&k| self.value(k) != base.value(k))
            .map(|&knob| Change {
                knob,
                before: base.value(knob),
                after: self.value(knob),
                text: format!("{}: {} -> {}", knob, base.show(knob), self.show(knob)),
            })
            .collect()
    }

    /// A short, stable, human-readable description (also hashed into the candidate id):
    /// `replicas×gpu`, then every other knob as its label and value, in [`Knob::ALL`] order.
    pub fn describe(&self) -> String {
        let mut text = format!("{}×{}", self.replicas, self.gpu);
        for &knob in Knob::ALL {
            // Knobs one engine has, and features off by default, appear only when set, so adding
            // one leaves every other configuration's description (and id) as it was.
            let quiet = knob.engine_specific() && self.value(knob) == knob.default_value();
            if !matches!(knob, Knob::Gpu | Knob::Replicas) && !quiet {
                text.push_str(&format!(" {}{}", knob.label(), self.brief(knob)));
            }
        }
        text
    }

    /// Stable id of the configuration within its supply.
    pub fn id(&self) -> String {
        format!("{:016x}", stable_hash64(&self.describe()))
    }
}

/// A knob whose value differs between two configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub knob: Knob,
    pub before: Value,
    pub after: Value,
    #[serde(skip)]
    text: String,
}

impl Change {
    /// `knob: before -> after`, values as a person writes them.
    pub fn describe(&self) -> &str {
        &self.text
    }
}

impl ServingConfig {
    /// `schedule_policy` as SGLang spells it.
    pub fn schedule_policy_name(&self) -> &'static str {
        match self.schedule_policy {
            SchedulePolicy::Fcfs => "fcfs",
            SchedulePolicy::Lpm => "lpm",
        }
    }
}

impl Knob {
    /// The knob's default (vLLM's, for the knobs every engine has).
    pub fn default_value(self) -> Value {
        ServingConfig::with_engine_defaults(String::new(), 1, 1).value(self)
    }

    /// Knobs of one engine (or an optional feature) rather than of every engine.
    pub fn engine_specific(self) -> bool {
        matches!(
            self,
            Knob::KvOffloadGib
                | Knob::PdDisaggregation
                | Knob::CapacitySchedulerPolicy
                | Knob::SchedulePolicy
                | Knob::WaitingServedRatio
        )
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Knob {
    type Err = Error;

    /// A knob's name; `num_speculative_tokens` is accepted for `speculative` (its numeric view), as
    /// guardrails have always spelt it.
    fn from_str(text: &str) -> Result<Knob> {
        if text == "num_speculative_tokens" {
            return Ok(Knob::Speculative);
        }
        Knob::ALL
            .iter()
            .copied()
            .find(|k| k.name() == text)
            .ok_or_else(|| Error::Setting {
                key: text.to_string(),
                message: format!(
                    "unknown knob; knobs are {}",
                    Knob::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

impl Serialize for Knob {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Knob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Knob, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> ServingConfig {
        ServingConfig::with_engine_defaults("H100-SXM".into(), 1, 2)
    }

    /// The description, and so every candidate id, is pinned: a knob added later appends its part.
    #[test]
    fn describe_lists_every_knob_in_order() {
        let mut c = current();
        c.gpu_memory_utilization = 1.0;
        assert_eq!(
            c.describe(),
            "2×H100-SXM tp1 block16 seqs256 batched8192 mem1 prefix1 chunked1 longprefill0 kv-auto spec-off q-auto ep0"
        );
        assert_eq!(c.id(), format!("{:016x}", stable_hash64(&c.describe())));
    }

    #[test]
    fn every_knob_round_trips_through_its_name_and_text() {
        for &knob in Knob::ALL {
            assert_eq!(knob.name().parse::<Knob>().unwrap(), knob);
            let mut c = current();
            let text = c.show(knob);
            if knob != Knob::Speculative {
                c.set(knob, &text).unwrap();
                assert_eq!(c, current(), "{knob}");
            }
        }
        let mut c = current();
        c.set(Knob::Speculative, "Llama-3.2-1B:4").unwrap();
        assert_eq!(c.numeric(Knob::Speculative), Some(4.0));
        c.set(Knob::Speculative, "off").unwrap();
        assert_eq!(c.speculative, None);
        assert!(c.set(Knob::MaxNumSeqs, "many").is_err());
        assert!("max_num_sequences".parse::<Knob>().is_err());
    }

    #[test]
    fn expansion_keeps_the_current_value_first_and_skips_the_excepted_knob() {
        let options: SearchOptions = toml::from_str(
            "max_num_seqs = [128, 256]\nreplicas = [1, 4]\nkv_cache_dtype = [\"fp8\"]",
        )
        .unwrap();
        let configs = options.expand(&current(), Knob::Replicas);
        let seen: Vec<(u32, KvCacheDtype)> = configs
            .iter()
            .map(|c| (c.max_num_seqs, c.kv_cache_dtype))
            .collect();
        use KvCacheDtype::*;
        assert_eq!(seen, [(256, Auto), (256, Fp8), (128, Auto), (128, Fp8)]);
        assert!(configs.iter().all(|c| c.replicas == 2));
        assert_eq!(
            options.given(),
            [Knob::Replicas, Knob::MaxNumSeqs, Knob::KvCacheDtype]
        );
    }

    #[test]
    fn validity_is_checked_per_knob_for_current_values_and_options() {
        let mut c = current();
        assert_eq!(c.invalid(), None);
        c.max_num_seqs = 0;
        assert_eq!(c.invalid().map(|(k, _)| k), Some(Knob::MaxNumSeqs));
        let options: SearchOptions = toml::from_str("gpu_memory_utilization = [0.8, 1.5]").unwrap();
        assert_eq!(
            options.invalid(&current()).map(|(k, _)| k),
            Some(Knob::GpuMemoryUtilization)
        );
        assert!(
            toml::from_str::<SearchOptions>(
                "max_delta = { enable_prefix_caching = 1.0, typo = 1 }"
            )
            .is_err()
        );
    }
}
