//! Engine schedulers. A [`Scheduler`] picks, between two steps, which sequences run in the next step and
//! how many tokens each computes; the replica then times and applies the step. The vLLM v1 scheduler is
//! the default; TGI, TRT-LLM in-flight batching and Triton dynamic batching can implement the trait.

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
}

impl Seq {
    pub fn new(req: u32, r: &TraceRequest, block_size: u32) -> Seq {
        Seq {
            req,
            prompt: r.prompt_tokens,
            output: r.output_tokens,
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
    /// The next passes would schedule the same set of sequences as long as only decodes happen, no
    /// request arrives and none finishes (the replica may then advance whole runs of decode steps).
    pub steady: bool,
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

/// vLLM v1's scheduler (`vllm/v1/core/sched/scheduler.py`, FCFS policy): running requests first, in
/// order, each getting its remaining tokens (1 for a decode, 1 + k with speculative decoding, the rest of
/// the prompt for a chunked prefill) capped by the token budget; when a running request cannot get KV
/// blocks the newest running request is preempted (blocks freed, recomputed later) until it can, or it is
/// itself preempted. Then, if nothing was preempted, waiting requests in FCFS order while the budget and
/// `max_num_seqs` allow, using prefix-cache hits; without chunked prefill a prompt must fit the budget
/// whole, otherwise it is chunked to fill it. Admission stops at the first request whose blocks do not fit.
#[derive(Debug, Default, Clone)]
pub struct VllmV1Scheduler;

impl Scheduler for VllmV1Scheduler {
    fn schedule(
        &mut self,
        core: &mut ReplicaCore,
        trace: &[TraceRequest],
        on_admit: &mut dyn FnMut(u32),
    ) -> SchedOutcome {
        let lim = core.limits.clone();
        let bs = lim.block_size;
        let mut out = SchedOutcome::default();
        let mut budget = lim.max_num_batched_tokens;

        let mut i = 0;
        while i < core.running.len() && budget > 0 {
            let (num_new, spec) = {
                let s = &core.running[i];
                let remaining = s.num_tokens() - s.computed;
                let spec = if remaining == 1 && lim.num_speculative_tokens > 0 {
                    lim.num_speculative_tokens
                        .min(s.output.saturating_sub(s.generated + 1))
                } else {
                    0
                };
                ((lim.cap_long_prefill(remaining + spec)).min(budget), spec)
            };
            let mut scheduled = false;
            loop {
                let s = &core.running[i];
                let need = blocks_for(s.computed + num_new, bs).saturating_sub(s.blocks()) as u64;
                if need <= core.kv.num_free() {
                    core.kv.allocate(need);
                    let s = &mut core.running[i];
                    s.anon_blocks += need as u32;
                    s.sched = num_new;
                    s.spec = spec.min(num_new.saturating_sub(1));
                    scheduled = true;
                    break;
                }
                let mut victim = core.running.pop().expect("running is non-empty");
                release_seq(&mut core.kv, &mut victim, trace);
                victim.preemptions += 1;
                out.preempted += 1;
                let was_self = core.running.len() == i;
                core.waiting.push_front(victim);
                if was_self {
                    break;
                }
            }
            if !scheduled {
                break;
            }
            budget -= num_new;
            i += 1;
        }
        let all_running = i == core.running.len();
        out.scheduled = i;

        if out.preempted == 0 && all_running {
            while budget > 0 && (core.running.len() as u32) < lim.max_num_seqs {
                let Some(s) = core.waiting.front() else { break };
                let num_tokens = s.num_tokens();
                let hashes = &trace[s.req as usize].prefix_hashes;
                let (hit, evictable) = if lim.prefix_caching && s.n_hashes > 0 {
                    let max_hit = ((num_tokens - 1) / bs).min(s.n_hashes) as usize;
                    core.kv.lookup(hashes, max_hit)
                } else {
                    (0, 0)
                };
                let computed = hit * bs;
                let mut num_new = lim.cap_long_prefill(num_tokens - computed);
                if !lim.chunked_prefill && num_new > budget {
                    break;
                }
                num_new = num_new.min(budget);
                let need = (blocks_for(computed + num_new, bs) - hit) as u64;
                if need + evictable as u64 > core.kv.num_free() {
                    break;
                }
                let mut s = core.waiting.pop_front().expect("front exists");
                core.kv.acquire(&hashes[..hit as usize]);
                core.kv.allocate(need);
                s.cached_blocks = hit;
                s.anon_blocks = need as u32;
                s.computed = computed;
                s.sched = num_new;
                s.spec = 0;
                out.hit_tokens += computed as u64;
                out.query_tokens += num_tokens as u64;
                out.admitted += 1;
                on_admit(s.req);
                budget -= num_new;
                core.running.push(s);
            }
            out.scheduled = core.running.len();
            out.steady = true;
        }
        out
    }
}
