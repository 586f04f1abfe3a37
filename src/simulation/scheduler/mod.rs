//! Engine schedulers. A [`Scheduler`] picks, between two steps, which sequences run in the next step and
//! how many tokens each computes; the replica then times and applies the step. One scheduler per
//! engine family, each documented against the engine's own source:
//!
//! - [`Continuous`]: vLLM v1, and TensorRT-LLM's in-flight batching under either capacity policy
//!   (also what Triton's TensorRT-LLM backend runs);
//! - [`Tgi`]: the TGI v3 router's batching loop (token budgets, waiting-served ratio);
//! - [`Sglang`]: SGLang's scheduler (prefill-first batches, new-token-ratio admission, retraction).
//!
//! The pieces every scheduler shares live here: the sequence state, admission from the waiting queue
//! with prefix-cache and host-tier hits, and preemption with optional KV parking in host memory.

mod continuous;
mod sglang;
mod tgi;

pub use continuous::{Admission, Continuous};
pub use sglang::{Sglang, SglangPolicy};
pub use tgi::Tgi;

use std::collections::VecDeque;

use super::kv::KvCache;
use super::trace::TraceRequest;

/// A request while it is in an engine.
#[derive(Debug, Clone)]
pub struct Seq {
    /// Index in the trace.
    pub req: u32,
    pub prompt: u32,
    pub output: u32,
    /// Output tokens generated so far (they survive preemption: vLLM recomputes them as prompt).
    pub generated: u32,
    /// Tokens whose KV is in the cache.
    pub computed: u32,
    /// Leading blocks that are prefix-cache blocks (hashes `prefix_hashes[..cached_blocks]`).
    pub cached_blocks: u32,
    /// Other blocks held.
    pub anon_blocks: u32,
    /// Usable prefix hashes: min(hashes, prompt / block_size).
    pub n_hashes: u32,
    /// Tokens scheduled in the current step (0 = not scheduled).
    pub sched: u32,
    /// Of `sched`, speculative draft tokens to verify.
    pub spec: u32,
    pub register_stopped: bool,
    pub class: u16,
    pub preemptions: u16,
    /// Tokens whose KV arrives from elsewhere (a prefill instance) instead of being computed.
    pub preloaded: u32,
    /// Tokens of KV parked in the host tier at preemption (0: none), loaded back on readmission.
    pub parked: u32,
}

impl Seq {
    /// The sequence of trace request `req`; `prefill_only` ends it with its first token (a prefill
    /// instance of a disaggregated deployment).
    pub fn new(req: u32, r: &TraceRequest, block_size: u32, prefill_only: bool) -> Seq {
        Seq {
            req,
            prompt: r.prompt_tokens,
            output: if prefill_only { 1 } else { r.output_tokens },
            generated: 0,
            computed: 0,
            cached_blocks: 0,
            anon_blocks: 0,
            n_hashes: (r.prefix_hashes.len() as u32).min(r.prompt_tokens / block_size),
            sched: 0,
            spec: 0,
            register_stopped: false,
            class: r.class,
            preemptions: 0,
            preloaded: r.preloaded_tokens.min(r.prompt_tokens.saturating_sub(1)),
            parked: 0,
        }
    }

    /// Tokens of the sequence so far (prompt + generated).
    #[inline]
    pub fn num_tokens(&self) -> u32 {
        self.prompt + self.generated
    }

    #[inline]
    pub fn blocks(&self) -> u32 {
        self.cached_blocks + self.anon_blocks
    }

    /// True when the prompt (and any recomputed output) is in the cache and the sequence decodes.
    #[inline]
    pub fn is_decoding(&self) -> bool {
        self.computed + 1 == self.num_tokens()
    }

    /// Blocks the sequence holds when it finishes: its whole prompt and output but the last token.
    #[inline]
    pub fn final_blocks(&self, block_size: u32) -> u32 {
        blocks_for(self.prompt + self.output - 1, block_size)
    }

    /// Blocks it still needs to run to completion without preemption.
    #[inline]
    pub fn blocks_to_completion(&self, block_size: u32) -> u64 {
        self.final_blocks(block_size).saturating_sub(self.blocks()) as u64
    }
}

/// Ceil-division: blocks holding `tokens` tokens.
#[inline]
pub fn blocks_for(tokens: u32, block_size: u32) -> u32 {
    tokens.div_ceil(block_size)
}

/// Scheduling limits of one replica.
#[derive(Debug, Clone)]
pub struct SchedLimits {
    pub block_size: u32,
    pub max_num_seqs: u32,
    pub max_num_batched_tokens: u32,
    pub prefix_caching: bool,
    pub chunked_prefill: bool,
    /// Most tokens one request is scheduled in a step (0: no cap), vLLM's
    /// `long_prefill_token_threshold`.
    pub long_prefill_token_threshold: u32,
    /// Draft tokens per decode step (0 = no speculative decoding).
    pub num_speculative_tokens: u32,
}

impl SchedLimits {
    /// `tokens` capped at the long-prefill threshold, as vLLM's scheduler caps a request's new
    /// tokens before the step's budget.
    fn cap_long_prefill(&self, tokens: u32) -> u32 {
        match self.long_prefill_token_threshold {
            0 => tokens,
            cap => tokens.min(cap),
        }
    }
}

/// The state a scheduler works on.
#[derive(Debug)]
pub struct ReplicaCore {
    /// Running sequences in admission order; the scheduled ones of a step are a prefix.
    pub running: Vec<Seq>,
    pub waiting: VecDeque<Seq>,
    pub kv: KvCache,
    pub limits: SchedLimits,
}

/// Counters a scheduling pass reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedOutcome {
    /// `running[..scheduled]` run in this step.
    pub scheduled: usize,
    pub preempted: u32,
    /// Prefix-cache accounting for admissions in this pass (tokens).
    pub hit_tokens: u64,
    pub query_tokens: u64,
    /// Sequences admitted for the first time in this pass (trace indices are in `running`).
    pub admitted: u32,
    /// Blocks loaded from the host tier for this step (prefix hits and parked sequences).
    pub loaded_blocks: u64,
    /// The next passes would schedule the same set of sequences as long as only decodes happen, no
    /// request arrives and none finishes (the replica may then advance whole runs of decode steps).
    pub steady: bool,
    /// With `steady`: the most steps a run may take before the scheduler would act differently on
    /// its own (0: no limit).
    pub max_run: u32,
}

/// An engine scheduler (iteration-level).
pub trait Scheduler: Send {
    /// Chooses the next step: sets `sched`/`spec` on `core.running[..scheduled]`, admits from `waiting`,
    /// allocates KV blocks, preempts if needed. `on_admit` is called with the trace index of every
    /// sequence moved from waiting to running.
    fn schedule(
        &mut self,
        core: &mut ReplicaCore,
        trace: &[TraceRequest],
        on_admit: &mut dyn FnMut(u32),
    ) -> SchedOutcome;

    /// The replica ran `steps` more identical decode steps without asking (a fast-forwarded run);
    /// schedulers that count steps catch up here.
    fn advanced(&mut self, _steps: u32) {}
}

/// Frees a sequence's blocks and resets it for recomputation.
pub fn release_seq(kv: &mut KvCache, s: &mut Seq, trace: &[TraceRequest]) {
    let hashes = &trace[s.req as usize].prefix_hashes[..s.cached_blocks as usize];
    kv.release(hashes, s.anon_blocks as u64);
    s.cached_blocks = 0;
    s.anon_blocks = 0;
    s.computed = 0;
    s.sched = 0;
    s.spec = 0;
    s.register_stopped = false;
}

/// Preempts `s`: its blocks are freed, and its KV parked in the host tier when that has room
/// (otherwise it is recomputed on readmission, as vLLM, TensorRT-LLM and SGLang do without offload).
pub fn preempt(kv: &mut KvCache, s: &mut Seq, trace: &[TraceRequest], block_size: u32) {
    let tokens = s.computed;
    release_seq(kv, s, trace);
    s.preemptions += 1;
    // KV another instance sent is gone too: it is recomputed, unless parked.
    s.preloaded = 0;
    if kv.host.park(blocks_for(tokens, block_size) as u64) {
        s.parked = tokens;
    }
}

/// Gives up a waiting sequence (timed out): its parked KV, if any, leaves the host tier.
pub fn drop_waiting(kv: &mut KvCache, s: &Seq, block_size: u32) {
    if s.parked > 0 {
        kv.host.unpark(blocks_for(s.parked, block_size) as u64);
    }
}

/// What admitting the sequence at the front of the waiting queue would reuse.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Leading prefix blocks found on the GPU, and how many of those are evictable (free).
    pub gpu_hit: u32,
    pub evictable: u32,
    /// Following prefix blocks found in the host tier.
    pub host_hit: u32,
    /// Tokens whose KV need not be computed (GPU and host hits, parked or preloaded KV).
    pub computed: u32,
    /// Tokens of the sequence.
    pub num_tokens: u32,
    /// Of `computed`, prefix-cache hit tokens (for the hit-rate counters).
    pub hit_tokens: u32,
}

impl Candidate {
    /// Blocks to allocate to compute `num_new` more tokens.
    pub fn need(&self, num_new: u32, block_size: u32) -> u64 {
        (blocks_for(self.computed + num_new, block_size) - self.gpu_hit) as u64
    }

    /// Tokens left to compute.
    pub fn remaining(&self) -> u32 {
        self.num_tokens - self.computed
    }
}

/// The candidate at the front of the waiting queue, if any.
pub fn front_candidate(core: &ReplicaCore, trace: &[TraceRequest]) -> Option<Candidate> {
    core.waiting.front().map(|s| candidate(core, s, trace))
}

/// What admitting `s` would reuse. At least one token is always computed (the one whose logits
/// give the next token), as every engine recomputes the last prompt token on a full hit.
pub fn candidate(core: &ReplicaCore, s: &Seq, trace: &[TraceRequest]) -> Candidate {
    let bs = core.limits.block_size;
    let num_tokens = s.num_tokens();
    let hashes = &trace[s.req as usize].prefix_hashes;
    let max_hit = ((num_tokens - 1) / bs).min(s.n_hashes) as usize;
    let (gpu_hit, evictable, host_hit) = if core.limits.prefix_caching && max_hit > 0 {
        let (hit, evictable) = core.kv.lookup(hashes, max_hit);
        let host = core.kv.host.hits(&hashes[hit as usize..max_hit]);
        (hit, evictable, host)
    } else {
        (0, 0, 0)
    };
    let hit_tokens = (gpu_hit + host_hit) * bs;
    Candidate {
        gpu_hit,
        evictable,
        host_hit,
        computed: hit_tokens
            .max(s.parked)
            .max(s.preloaded)
            .min(num_tokens - 1),
        num_tokens,
        hit_tokens,
    }
}

/// Moves the front waiting sequence (whose candidate is `c`) to the end of `running`, computing
/// `num_new` tokens in this step.
pub fn admit(
    core: &mut ReplicaCore,
    trace: &[TraceRequest],
    c: &Candidate,
    num_new: u32,
    out: &mut SchedOutcome,
    on_admit: &mut dyn FnMut(u32),
) {
    let bs = core.limits.block_size;
    let mut s = core
        .waiting
        .pop_front()
        .expect("a candidate is at the front");
    let hashes = &trace[s.req as usize].prefix_hashes;
    core.kv.acquire(&hashes[..c.gpu_hit as usize]);
    core.kv
        .host
        .touch(&hashes[c.gpu_hit as usize..(c.gpu_hit + c.host_hit) as usize]);
    let need = c.need(num_new, bs);
    core.kv.allocate(need);
    // Whatever is computed beyond the GPU's own blocks is loaded over PCIe, except KV that another
    // instance sends (its transfer is timed by the disaggregated deployment).
    let local = (c.gpu_hit * bs).max(s.preloaded);
    out.loaded_blocks += blocks_for(c.computed.saturating_sub(local), bs) as u64;
    if s.parked > 0 {
        core.kv.host.unpark(blocks_for(s.parked, bs) as u64);
        s.parked = 0;
    }
    s.cached_blocks = c.gpu_hit;
    s.anon_blocks = need as u32;
    s.computed = c.computed;
    s.sched = num_new;
    s.spec = 0;
    out.hit_tokens += c.hit_tokens as u64;
    out.query_tokens += c.num_tokens as u64;
    out.admitted += 1;
    on_admit(s.req);
    core.running.push(s);
}

/// Blocks one more token of `s` takes.
pub fn decode_blocks(s: &Seq, block_size: u32) -> u64 {
    blocks_for(s.computed + 1, block_size).saturating_sub(s.blocks()) as u64
}

/// Schedules one token of every running sequence (the caller checked the blocks fit).
pub fn decode_all(core: &mut ReplicaCore) {
    let bs = core.limits.block_size;
    let mut need = 0;
    for s in &mut core.running {
        let more = decode_blocks(s, bs);
        s.anon_blocks += more as u32;
        s.sched = 1;
        need += more;
    }
    core.kv.allocate(need);
}

/// Blocks every running sequence still needs to finish without preemption (what engines that
/// reserve KV up front hold back from admission).
pub fn reserved_blocks(core: &ReplicaCore) -> u64 {
    let bs = core.limits.block_size;
    core.running
        .iter()
        .map(|s| s.blocks_to_completion(bs))
        .sum()
}
