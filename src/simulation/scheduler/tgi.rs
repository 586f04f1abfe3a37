//! Hugging Face TGI's router batching loop (`backends/v3/src/backend.rs`, `batching_task`, and
//! `backends/v3/src/queue.rs`, `next_batch`), as its launcher flags describe it:
//!
//! - A new batch is taken from the queue in FIFO order while its prompts fit
//!   `--max-batch-prefill-tokens` (the `max_num_batched_tokens` knob) and every request's prompt plus
//!   output fits the KV token budget (`--max-batch-total-tokens`: the KV cache) beside what the running
//!   batch will still use, so TGI never preempts. Prefix-cache hits save blocks, not budget.
//! - While a batch runs, a new one is taken only if it has at least `waiting_served_ratio` × the
//!   running batch's size requests, unless `--max-waiting-tokens` (20) decode steps passed since the
//!   last one; `max_num_seqs` (`--max-batch-size`) caps the sum.
//! - The new batch is prefilled alone (the running batch waits), then both decode together.
//!
//! TGI 3's prefill chunking, which some attention backends add (the running batch then decodes inside
//! the new batch's prefill and the ratio is ignored), is not modelled.

use super::{ReplicaCore, SchedOutcome, Scheduler, admit, candidate, decode_all, reserved_blocks};
use crate::simulation::trace::TraceRequest;

/// TGI's `--max-waiting-tokens` default: decode steps after which any waiting request is taken.
const MAX_WAITING_TOKENS: u32 = 20;

/// The TGI router's scheduler.
#[derive(Debug, Clone)]
pub struct Tgi {
    pub waiting_served_ratio: f64,
    /// Decode steps since a batch was last added.
    waiting_tokens: u32,
}

impl Tgi {
    pub fn new(waiting_served_ratio: f64) -> Tgi {
        Tgi {
            waiting_served_ratio,
            waiting_tokens: 0,
        }
    }

    /// How many of the front waiting requests the next batch would take (from the cache as it is):
    /// the first that breaks a budget ends it.
    fn next_batch_len(&self, core: &ReplicaCore, trace: &[TraceRequest]) -> usize {
        let lim = &core.limits;
        let bs = lim.block_size;
        let room = (lim.max_num_seqs as usize).saturating_sub(core.running.len());
        let mut available = core.kv.num_free().saturating_sub(reserved_blocks(core));
        let mut prefill = 0u32;
        let mut taken = 0;
        for s in core.waiting.iter().take(room) {
            let c = candidate(core, s, trace);
            prefill += s.num_tokens().next_multiple_of(bs);
            let whole = (s.final_blocks(bs) - c.gpu_hit) as u64 + c.evictable as u64;
            if prefill > lim.max_num_batched_tokens || whole > available {
                break;
            }
            available -= whole;
            taken += 1;
        }
        taken
    }
}

impl Scheduler for Tgi {
    fn schedule(
        &mut self,
        core: &mut ReplicaCore,
        trace: &[TraceRequest],
        on_admit: &mut dyn FnMut(u32),
    ) -> SchedOutcome {
        let mut out = SchedOutcome::default();
        let taken = self.next_batch_len(core, trace);
        let min_size = if core.running.is_empty() || self.waiting_tokens >= MAX_WAITING_TOKENS {
            1
        } else {
            ((core.running.len() as f64 * self.waiting_served_ratio).floor() as usize).max(1)
        };
        if taken >= min_size {
            let before = core.running.len();
            for _ in 0..taken {
                let c = candidate(core, &core.waiting[0], trace);
                if c.need(c.remaining(), core.limits.block_size) + c.evictable as u64
                    > core.kv.num_free()
                {
                    break;
                }
                admit(core, trace, &c, c.remaining(), &mut out, on_admit);
            }
            let added = core.running.len() - before;
            if added > 0 {
                // The new batch prefills alone: it goes first, the running batch waits.
                core.running.rotate_right(added);
                out.scheduled = added;
                self.waiting_tokens = 1;
                return out;
            }
        }
        // Whole requests are reserved: the decode always fits.
        decode_all(core);
        self.waiting_tokens += 1;
        out.scheduled = core.running.len();
        // Decodes change nothing the waiting queue is judged on but the step counter: a batch too
        // small for the ratio is taken once the counter reaches `MAX_WAITING_TOKENS`, so a run of
        // decode steps ends there.
        out.steady = true;
        if taken > 0 {
            out.max_run = (MAX_WAITING_TOKENS + 1)
                .saturating_sub(self.waiting_tokens)
                .max(1);
        }
        out
    }

    fn advanced(&mut self, steps: u32) {
        self.waiting_tokens = self.waiting_tokens.saturating_add(steps);
    }
}
