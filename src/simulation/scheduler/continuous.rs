//! Continuous (in-flight) batching with chunked prefill, as vLLM v1 and TensorRT-LLM's batch manager
//! run it: every step, running requests first, in order, then waiting ones in FCFS order while the
//! token budget, the batch size and the KV cache allow.
//!
//! - vLLM v1 (`vllm/v1/core/sched/scheduler.py`, FCFS policy): each running request gets its remaining
//!   tokens (1 for a decode, 1 + k with speculative decoding, the rest of the prompt for a chunked
//!   prefill) capped by the token budget; when one cannot get KV blocks the newest running request is
//!   preempted (blocks freed, recomputed later) until it can, or it is itself preempted. Then, if
//!   nothing was preempted, waiting requests while the budget and `max_num_seqs` allow, using
//!   prefix-cache hits; without chunked prefill a prompt must fit the budget whole, otherwise it is
//!   chunked to fill it. Admission stops at the first request whose blocks do not fit.
//! - TensorRT-LLM (`cpp/tensorrt_llm/batch_manager/capacityScheduler.cpp`, `microBatchScheduler.cpp`):
//!   generation requests first, then contexts within `max_num_tokens` and `max_batch_size`; context
//!   chunks are multiples of `tokens_per_block` (the chunk unit). The capacity policy decides KV
//!   admission: `GUARANTEED_NO_EVICT` (the default) admits a request only when the blocks for its
//!   whole prompt and output fit beside what every running request still needs, so nothing is ever
//!   evicted; `MAX_UTILIZATION` needs blocks for the next step only and pauses the last started
//!   request when they run out, which recomputes it later, as vLLM does.

use super::{
    Candidate, ReplicaCore, SchedOutcome, Scheduler, admit, blocks_for, front_candidate, preempt,
    reserved_blocks,
};
use crate::simulation::trace::TraceRequest;

/// How a waiting request's KV is judged to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Blocks for the next step only; running requests are preempted when blocks run out (vLLM v1,
    /// TensorRT-LLM `MAX_UTILIZATION`).
    Optimistic,
    /// Blocks for the whole request reserved against what running ones still need (TensorRT-LLM
    /// `GUARANTEED_NO_EVICT`).
    Reserve,
}

/// The continuous-batching scheduler of vLLM v1 and TensorRT-LLM.
#[derive(Debug, Clone, Copy)]
pub struct Continuous {
    pub admission: Admission,
    /// Prefill chunks are multiples of this many tokens (1 for vLLM, `tokens_per_block` for
    /// TensorRT-LLM) unless they finish the prompt.
    pub chunk_unit: u32,
}

impl Continuous {
    /// vLLM v1's scheduler.
    pub fn vllm() -> Continuous {
        Continuous {
            admission: Admission::Optimistic,
            chunk_unit: 1,
        }
    }

    /// The tokens of a prefill of `want` tokens that fit `budget`: all of them, or the largest
    /// multiple of the chunk unit (possibly 0).
    fn chunk(&self, want: u32, budget: u32) -> u32 {
        if want <= budget {
            want
        } else {
            budget / self.chunk_unit * self.chunk_unit
        }
    }

    /// Whether the front waiting request (candidate `c`) may be admitted computing `num_new` tokens;
    /// `available` is what a reserving scheduler has left, updated when it may.
    fn fits(&self, core: &ReplicaCore, c: &Candidate, num_new: u32, available: &mut u64) -> bool {
        let bs = core.limits.block_size;
        if c.need(num_new, bs) + c.evictable as u64 > core.kv.num_free() {
            return false;
        }
        if self.admission == Admission::Optimistic {
            return true;
        }
        let whole = (core.waiting[0].final_blocks(bs) - c.gpu_hit) as u64 + c.evictable as u64;
        if whole > *available {
            return false;
        }
        *available -= whole;
        true
    }
}

impl Scheduler for Continuous {
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
                (
                    self.chunk(lim.cap_long_prefill(remaining + spec), budget),
                    spec,
                )
            };
            if num_new == 0 {
                break;
            }
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
                // Only speculative look-ahead can run a reserving scheduler out of blocks; both
                // policies then give up the newest request.
                let mut victim = core.running.pop().expect("running is non-empty");
                preempt(&mut core.kv, &mut victim, trace, bs);
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
            // What reserving admission may still promise (summed only where it is used).
            let mut available = match self.admission {
                Admission::Reserve => core.kv.num_free().saturating_sub(reserved_blocks(core)),
                Admission::Optimistic => 0,
            };
            while budget > 0 && (core.running.len() as u32) < lim.max_num_seqs {
                let Some(c) = front_candidate(core, trace) else {
                    break;
                };
                let mut num_new = lim.cap_long_prefill(c.remaining());
                // A recomputed (preempted) request is let past an unchunked budget: its prompt
                // fitted once, and it has grown by what it generated.
                let whole = !lim.chunked_prefill && core.waiting[0].preemptions > 0;
                if !lim.chunked_prefill && num_new > budget && !whole {
                    break;
                }
                if !whole {
                    num_new = self.chunk(num_new, budget);
                }
                if num_new == 0 || !self.fits(core, &c, num_new, &mut available) {
                    break;
                }
                admit(core, trace, &c, num_new, &mut out, on_admit);
                budget = budget.saturating_sub(num_new);
            }
            out.scheduled = core.running.len();
            out.steady = true;
        }
        out
    }
}
