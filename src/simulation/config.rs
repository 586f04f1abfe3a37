//! Deployment and engine configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::step_time::StepTimeModel;
use crate::catalog::{Dtype, GpuSpec, ModelSpec, NetworkSpec, Quantization};
use crate::knobs::ServingConfig;
use crate::{Error, Result};

/// How often speculative draft tokens are accepted.
///
/// Per step, each decoding sequence proposes k draft tokens; each is accepted with probability α given
/// all earlier ones were (the i.i.d. model of Leviathan et al., "Fast Inference from Transformers via
/// Speculative Decoding", ICML 2023), so a step emits (accepted + 1) tokens and E[tokens/step] =
/// (1 − α^(k+1)) / (1 − α). The simulator **draws** the accepted count per sequence per step from the
/// seeded RNG (not the expectation), so tails are realistic; runs stay deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// α used for classes without an entry. Default 0.7: the middle of the 0.5–0.8 range Leviathan et al.
    /// (2023, Table 3) measure for small same-family drafts; calibrate per workload class from logs.
    #[serde(default = "default_acceptance")]
    pub default_rate: f64,
    /// α per workload class id.
    #[serde(default)]
    pub by_class: BTreeMap<u16, f64>,
}

fn default_acceptance() -> f64 {
    0.7
}

impl Default for Acceptance {
    fn default() -> Self {
        Acceptance {
            default_rate: default_acceptance(),
            by_class: BTreeMap::new(),
        }
    }
}

/// Speculative decoding as one replica runs it: k draft tokens per step and their acceptance.
#[derive(Debug, Clone, Copy)]
pub struct Speculation<'a> {
    pub num_speculative_tokens: u32,
    pub acceptance: &'a Acceptance,
}

impl Speculation<'_> {
    pub fn acceptance_rate(&self, class: u16) -> f64 {
        *self
            .acceptance
            .by_class
            .get(&class)
            .unwrap_or(&self.acceptance.default_rate)
    }

    /// Expected tokens emitted per verification step: (1 − α^(k+1)) / (1 − α).
    pub fn expected_tokens_per_step(&self, class: u16) -> f64 {
        let a = self.acceptance_rate(class);
        let k = self.num_speculative_tokens as i32;
        if (1.0 - a).abs() < 1e-12 {
            (k + 1) as f64
        } else {
            (1.0 - a.powi(k + 1)) / (1.0 - a)
        }
    }
}

/// What the engine is besides its knobs ([`ServingConfig`]): facts of the deployment that the search
/// does not vary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Weight / activation dtype.
    pub dtype: Dtype,
    /// None = the model's max context. Requests with prompt + output above it are rejected (vLLM's 400).
    pub max_model_len: Option<u32>,
    /// Replaces the computed number of GPU KV blocks (real runs log it: "# GPU blocks").
    pub num_gpu_blocks_override: Option<u64>,
    /// Speculative acceptance, used when the configuration drafts.
    pub acceptance: Acceptance,
    /// Time a request spends outside the engine's step loop (HTTP, tokenization, detokenization,
    /// streaming), added to its TTFT and E2E. Default 10 ms: client-side minus server-side TTFT of
    /// vLLM's OpenAI server measured 8.4–12.2 ms (vllm-project/vllm PR #54628); calibration fits it
    /// from the request log where TTFT and queue time are logged.
    pub frontend_ms: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            dtype: Dtype::Bf16,
            max_model_len: None,
            num_gpu_blocks_override: None,
            acceptance: Acceptance::default(),
            frontend_ms: 10.0,
        }
    }
}

/// How requests are spread over replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Router {
    RoundRobin,
    /// Fewest outstanding (queued + running) requests; ties go to the lowest replica index.
    #[default]
    LeastOutstanding,
    /// Hash of the first prefix block picks the replica; requests without prefix hashes fall back to
    /// least outstanding.
    PrefixAffinity,
}

/// Which engine's scheduler to model ([`super::scheduler`]); its policy knobs come from the
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    #[default]
    VllmV1,
    /// TensorRT-LLM's batch manager (also behind Triton's TensorRT-LLM backend).
    Trtllm,
    Tgi,
    Sglang,
}

/// One deployment: `replicas` copies of one engine, each on `tensor_parallel_size` GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The GPU named by `config.gpu`.
    pub gpu: GpuSpec,
    pub model: ModelSpec,
    /// The serving knobs: GPU, TP, replicas and the engine's settings.
    pub config: ServingConfig,
    pub engine: EngineConfig,
    #[serde(default)]
    pub scheduler: SchedulerKind,
    pub router: Router,
    pub step_model: StepTimeModel,
    /// Draft model for speculative decoding (required when `config.speculative` is set).
    #[serde(default)]
    pub draft_model: Option<ModelSpec>,
    /// The link KV travels over from prefill to decode instances (required when
    /// `config.pd_disaggregation` is set).
    #[serde(default)]
    pub kv_link: Option<NetworkSpec>,
    pub price_per_gpu_hour: f64,
}

impl Deployment {
    /// A deployment with vLLM defaults, the default roofline step model, least-outstanding routing and
    /// the GPU's catalog price (NaN, which `validate` refuses, where the catalog has none).
    pub fn new(
        gpu: GpuSpec,
        model: ModelSpec,
        tensor_parallel_size: u32,
        replicas: u32,
    ) -> Deployment {
        // A GPU without a list price stays unpriced until the supply's own price is set.
        let price = gpu.price_per_hour_usd.unwrap_or(f64::NAN);
        Deployment {
            config: ServingConfig::with_engine_defaults(
                gpu.id.clone(),
                tensor_parallel_size,
                replicas,
            ),
            gpu,
            model,
            engine: EngineConfig::default(),
            scheduler: SchedulerKind::VllmV1,
            router: Router::default(),
            step_model: StepTimeModel::default(),
            draft_model: None,
            kv_link: None,
            price_per_gpu_hour: price,
        }
    }

    /// The weight format served: the `quantization` knob, else the checkpoint's own.
    pub fn quantization(&self) -> Quantization {
        self.config.quantization.unwrap_or(self.model.quantization)
    }

    pub fn kv_dtype(&self) -> Dtype {
        self.config.kv_cache_dtype.resolve(self.engine.dtype)
    }

    /// Speculative decoding as configured, `None` when off.
    pub fn speculation(&self) -> Option<Speculation<'_>> {
        self.config.speculative.as_ref().map(|s| Speculation {
            num_speculative_tokens: s.num_speculative_tokens,
            acceptance: &self.engine.acceptance,
        })
    }

    pub fn max_model_len(&self) -> u32 {
        self.engine.max_model_len.unwrap_or(self.model.max_context)
    }

    /// Bytes of one KV block summed over the TP group (block_size × KV bytes per token).
    pub fn block_bytes_total(&self) -> f64 {
        self.config.block_size as f64 * self.model.kv_bytes_per_token(self.kv_dtype())
    }

    /// Bytes of one KV block on one GPU of the TP group.
    pub fn block_bytes_per_gpu(&self) -> f64 {
        self.block_bytes_total() / self.model.kv_shards(self.config.tensor_parallel_size)
    }

    /// Blocks the host tier holds per replica (`kv_offload_gib` is the replica's total over its
    /// GPUs, as vLLM's `--kv-offloading-size` counts it).
    pub fn host_blocks(&self) -> u64 {
        (self.config.kv_offload_gib * (1u64 << 30) as f64 / self.block_bytes_total()).floor() as u64
    }

    /// Seconds to load `blocks` KV blocks from host memory: every GPU loads its shard over its own
    /// host link.
    pub fn host_load_s(&self, blocks: u64) -> f64 {
        let link = self.gpu.host_link_gbps.unwrap_or(f64::INFINITY) * 1e9;
        blocks as f64 * self.block_bytes_per_gpu() / link
    }

    /// Seconds to send the KV of `tokens` tokens from a prefill to a decode instance of this
    /// deployment: each GPU sends its shard over its own link.
    pub fn kv_transfer_s(&self, tokens: u32) -> f64 {
        let Some(link) = &self.kv_link else {
            return 0.0;
        };
        let bytes = f64::from(tokens) * self.model.kv_bytes_per_token(self.kv_dtype());
        link.transfer_s(
            bytes,
            self.model.kv_shards(self.config.tensor_parallel_size),
        )
    }

    /// Number of GPU KV blocks per replica: `num_gpu_blocks_override`, or
    /// (memory × gpu_memory_utilization − weights/TP (draft included) − activation reserve) / (block
    /// bytes per GPU), KV heads sharded over TP (replicated beyond the KV head count; an MLA latent
    /// on every GPU).
    pub fn num_gpu_blocks(&self) -> Result<u64> {
        if let Some(n) = self.engine.num_gpu_blocks_override {
            return Ok(n);
        }
        let tp = self.config.tensor_parallel_size.max(1) as f64;
        // A speculative draft model lives on the same GPUs, sharded the same way.
        let dtype = self.engine.dtype;
        let weights = (self.model.weight_bytes(self.quantization(), dtype)
            + self
                .draft_model
                .as_ref()
                .map_or(0.0, |m| m.weight_bytes(m.quantization, dtype)))
            / tp;
        let reserve = self.step_model.activation_reserve_bytes();
        let avail =
            self.gpu.memory_bytes() * self.config.gpu_memory_utilization - weights - reserve;
        let blocks = (avail / self.block_bytes_per_gpu()).floor();
        if blocks < 1.0 {
            return Err(Error::Simulation(format!(
                "{} does not fit on {} × {} with gpu_memory_utilization {}: no memory left for the KV cache",
                self.model.id,
                self.config.tensor_parallel_size,
                self.gpu.id,
                self.config.gpu_memory_utilization
            )));
        }
        Ok(blocks as u64)
    }

    /// Checks what the engine itself would refuse to start with: the same per-knob rules that
    /// `tunelake validate` applies to pipeline files, then the deployment's own consistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Simulation(m));
        if let Some((knob, why)) = self.config.invalid() {
            return bad(format!("{knob} {why}"));
        }
        let c = &self.config;
        if self.scheduler == SchedulerKind::VllmV1
            && !c.enable_chunked_prefill
            && c.max_num_batched_tokens < self.max_model_len()
        {
            return bad(format!(
                "without chunked prefill max_num_batched_tokens ({}) must be >= max_model_len ({}), as vLLM requires",
                c.max_num_batched_tokens,
                self.max_model_len()
            ));
        }
        if self.config.gpu != self.gpu.id {
            return bad(format!(
                "config.gpu `{}` is not the deployment's GPU `{}`",
                self.config.gpu, self.gpu.id
            ));
        }
        if self.config.enable_expert_parallel && !self.model.is_moe() {
            return bad(format!(
                "enable_expert_parallel: {} has no experts",
                self.model.id
            ));
        }
        match (&self.config.speculative, &self.draft_model) {
            (Some(s), None) => {
                return bad(format!(
                    "speculative decoding with draft `{}` needs Deployment::draft_model",
                    s.draft_model
                ));
            }
            (None, Some(m)) => {
                return bad(format!(
                    "draft model `{}` without speculative decoding",
                    m.id
                ));
            }
            _ => {}
        }
        let acceptance = &self.engine.acceptance;
        for a in
            std::iter::once(acceptance.default_rate).chain(acceptance.by_class.values().copied())
        {
            if !(0.0..=1.0).contains(&a) {
                return bad(format!("acceptance rate must be in [0, 1], got {a}"));
            }
        }
        if c.kv_offload_gib > 0.0 && self.gpu.host_link_gbps.is_none() {
            return bad(format!(
                "kv_offload_gib: the catalog gives {} no host_link_gbps to load offloaded KV over",
                self.gpu.id
            ));
        }
        if let Some(ratio) = c.pd_disaggregation {
            if ratio.split(c.replicas).is_none() {
                return bad(format!(
                    "pd_disaggregation {ratio} needs at least 2 replicas, got {}",
                    c.replicas
                ));
            }
            if self.kv_link.is_none() {
                return bad("pd_disaggregation needs Deployment::kv_link".into());
            }
        }
        if !(self.engine.frontend_ms.is_finite() && self.engine.frontend_ms >= 0.0) {
            return bad("frontend_ms must be finite and >= 0".into());
        }
        if !(self.price_per_gpu_hour.is_finite() && self.price_per_gpu_hour >= 0.0) {
            return bad(format!(
                "price_per_gpu_hour must be finite and >= 0, got {} ({} has no list price in the catalog: give the supply's price.per_gpu_hour)",
                self.price_per_gpu_hour, self.gpu.id
            ));
        }
        self.num_gpu_blocks().map(|_| ())
    }
}

/// Latency objectives for goodput.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub p95_ttft_ms: f64,
    pub p95_tpot_ms: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            p95_ttft_ms: 2000.0,
            p95_tpot_ms: 100.0,
        }
    }
}

/// Per-run simulation options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimOptions {
    pub seed: u64,
    /// Scenario id, mixed with `seed` into every random stream.
    #[serde(default)]
    pub scenario_id: u64,
    #[serde(default)]
    pub slo: Slo,
    #[serde(default)]
    pub keep_per_request: bool,
    /// Client timeout: a request not finished `request_timeout_s` after arrival is aborted (its blocks
    /// freed) at the next scheduler step and counted in `timed_out`.
    #[serde(default)]
    pub request_timeout_s: Option<f64>,
    /// Simulate every decode step individually instead of advancing steady decode runs analytically.
    /// The results are identical (a test checks it); this only exists for validation and is slower.
    #[serde(default)]
    pub step_by_step: bool,
}
