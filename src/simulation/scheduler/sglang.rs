//! SGLang's scheduler (`python/sglang/srt/managers/scheduler.py`, `schedule_policy.py`,
//! `schedule_batch.py`):
//!
//! - **Prefill first**: each iteration builds a prefill batch if anything can be admitted (a request
//!   whose chunked prefill is in progress goes first) and runs it alone; otherwise the running batch
//!   decodes (`--enable-mixed-chunk`, off by default, is not modelled).
//! - **Admission** (`PrefillAdder`): a request fits when its uncached prompt plus its output (clipped at
//!   4,096 tokens, `SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION`) fits the free and evictable KV less what the
//!   running requests are expected to still generate: their remaining output × `new_token_ratio`.
//!   The ratio starts at 0.7 (`SGLANG_INIT_NEW_TOKEN_RATIO`), decays linearly to 0.098 (× 0.14,
//!   `SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR`) over 600 decode steps, and resets when the engine idles.
//!   The batch's prompt tokens are bounded by `--chunked-prefill-size` (`max_num_batched_tokens`); a
//!   longer prompt is chunked. `--max-running-requests` is `max_num_seqs`.
//! - **Policy** (`--schedule-policy`): `fcfs` (the default) keeps arrival order; `lpm` admits the
//!   longest cached prefix first, falling back to FCFS when more than 128 requests wait.
//! - **Retraction**: when decode runs out of KV, the running requests with the fewest generated tokens
//!   (ties: the longest prompt) go back to the queue and are recomputed later, and the ratio is reset
//!   to (tokens generated + 20 per remaining request) ÷ (output tokens asked for), at most 1.
//! - The radix cache is modelled by the block-hash prefix cache at the block size's granularity
//!   (SGLang matches single tokens; a hit loses less than one block).

use super::{
    ReplicaCore, SchedOutcome, Scheduler, admit, blocks_for, candidate, decode_all, decode_blocks,
    preempt,
};
use crate::simulation::trace::TraceRequest;

const INIT_NEW_TOKEN_RATIO: f64 = 0.7;
const MIN_NEW_TOKEN_RATIO_FACTOR: f64 = 0.14;
const NEW_TOKEN_RATIO_DECAY_STEPS: f64 = 600.0;
const CLIP_MAX_NEW_TOKENS: u32 = 4096;
const RETRACT_DECODE_STEPS: u32 = 20;
/// Above this many waiting requests `lpm` falls back to FCFS.
const LPM_MAX_QUEUE: usize = 128;

/// SGLang's `--schedule-policy` values the simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SglangPolicy {
    Fcfs,
    Lpm,
}

/// SGLang's scheduler.
#[derive(Debug, Clone)]
pub struct Sglang {
    pub policy: SglangPolicy,
    /// The ratio at its last reset, and the decode steps since: counted, so a fast-forwarded run
    /// and the same steps taken one by one give the same ratio to the bit.
    ratio_base: f64,
    steps_since: u64,
}

impl Sglang {
    pub fn new(policy: SglangPolicy) -> Sglang {
        Sglang {
            policy,
            ratio_base: INIT_NEW_TOKEN_RATIO,
            steps_since: 0,
        }
    }

    /// The ratio's fall per decode step.
    fn decay_step() -> f64 {
        INIT_NEW_TOKEN_RATIO * (1.0 - MIN_NEW_TOKEN_RATIO_FACTOR) / NEW_TOKEN_RATIO_DECAY_STEPS
    }

    /// The new-token ratio now.
    fn ratio(&self) -> f64 {
        let min = INIT_NEW_TOKEN_RATIO * MIN_NEW_TOKEN_RATIO_FACTOR;
        (self.ratio_base - Self::decay_step() * self.steps_since as f64).max(min)
    }

    fn reset(&mut self, ratio: f64) {
        self.ratio_base = ratio;
        self.steps_since = 0;
    }

    fn decay(&mut self, steps: u32) {
        self.steps_since += u64::from(steps);
    }

    /// Blocks admitting `s` (candidate `c`) is expected to take: its prompt's blocks beyond the GPU
    /// hits, its remaining output (clipped) and the evictable hits it pins.
    fn expected_blocks(s: &super::Seq, c: &super::Candidate, block_size: u32) -> u64 {
        c.need(c.remaining(), block_size)
            + blocks_for(
                (s.output - s.generated).min(CLIP_MAX_NEW_TOKENS),
                block_size,
            ) as u64
            + c.evictable as u64
    }

    /// Decode steps that certainly pass before a waiting request can be admitted (0: none can be
    /// until a request finishes or arrives), bounding a fast-forwarded run. Called before this
    /// step's allocation and decay. Per step the room for admission grows by at most
    /// (running × ratio + expected output × decay) ÷ block size (the expected output shrinks and the
    /// ratio decays; free blocks only fall), plus one block of rounding.
    fn quiet_steps(&self, core: &ReplicaCore, trace: &[TraceRequest]) -> u32 {
        let lim = &core.limits;
        if core.running.len() as u32 >= lim.max_num_seqs {
            return 0;
        }
        let bs = f64::from(lim.block_size);
        let room = core.kv.num_free() as f64 - self.expected_growth(core) as f64;
        let lpm = self.policy == SglangPolicy::Lpm && core.waiting.len() <= LPM_MAX_QUEUE;
        let shown = if lpm { core.waiting.len() } else { 1 };
        let least = core
            .waiting
            .iter()
            .take(shown)
            .map(|s| Self::expected_blocks(s, &candidate(core, s, trace), lim.block_size))
            .min()
            .map_or(f64::INFINITY, |b| b as f64);
        let expected_output: f64 = core
            .running
            .iter()
            .map(|s| f64::from((s.output - s.generated).min(CLIP_MAX_NEW_TOKENS)))
            .sum();
        let growth =
            (core.running.len() as f64 * self.ratio() + expected_output * Self::decay_step()) / bs;
        let gap = least - room;
        if gap <= 0.0 {
            1
        } else if growth <= 0.0 || !gap.is_finite() {
            0
        } else {
            (gap / growth).ceil().min(f64::from(u32::MAX - 1)) as u32
        }
    }

    /// Blocks the running requests are expected to still need.
    fn expected_growth(&self, core: &ReplicaCore) -> u64 {
        let tokens: f64 = core
            .running
            .iter()
            .map(|s| f64::from((s.output - s.generated).min(CLIP_MAX_NEW_TOKENS)))
            .sum();
        (tokens * self.ratio() / f64::from(core.limits.block_size)).ceil() as u64
    }

    /// Schedules a prefill batch (chunked prefills in progress, then admissions); false if empty.
    fn prefill(
        &mut self,
        core: &mut ReplicaCore,
        trace: &[TraceRequest],
        out: &mut SchedOutcome,
        on_admit: &mut dyn FnMut(u32),
    ) -> bool {
        let lim = core.limits.clone();
        let bs = lim.block_size;
        let mut budget = lim.max_num_batched_tokens;
        let mut scheduled = 0;
        for i in 0..core.running.len() {
            let s = &core.running[i];
            if s.is_decoding() || budget == 0 {
                continue;
            }
            let num_new = (s.num_tokens() - s.computed).min(budget);
            let need = blocks_for(s.computed + num_new, bs).saturating_sub(s.blocks()) as u64;
            if need > core.kv.num_free() {
                continue;
            }
            core.kv.allocate(need);
            let s = &mut core.running[i];
            s.anon_blocks += need as u32;
            s.sched = num_new;
            budget -= num_new;
            scheduled += 1;
        }
        if self.policy == SglangPolicy::Lpm
            && lim.prefix_caching
            && (2..=LPM_MAX_QUEUE).contains(&core.waiting.len())
        {
            let mut queue = std::mem::take(&mut core.waiting);
            // Ties in arrival order: the order is a function of the cache alone, however many
            // steps passed since the last sort.
            queue.make_contiguous().sort_by_cached_key(|s| {
                (std::cmp::Reverse(candidate(core, s, trace).gpu_hit), s.req)
            });
            core.waiting = queue;
        }
        let mut room = core
            .kv
            .num_free()
            .saturating_sub(self.expected_growth(core));
        while budget > 0 && (core.running.len() as u32) < lim.max_num_seqs {
            let Some(s) = core.waiting.front() else { break };
            let c = candidate(core, s, trace);
            let extend = c.remaining();
            // A recomputed (preempted) request is let past an unchunked budget, as SGLang does.
            let whole = !lim.chunked_prefill && s.preemptions > 0;
            if !lim.chunked_prefill && extend > budget && !whole {
                break;
            }
            let num_new = if whole { extend } else { extend.min(budget) };
            let expected = Self::expected_blocks(s, &c, bs);
            let need = c.need(num_new, bs) + c.evictable as u64;
            if expected + 1 > room || need > core.kv.num_free() {
                break;
            }
            room -= expected;
            admit(core, trace, &c, num_new, out, on_admit);
            budget = budget.saturating_sub(num_new);
            scheduled += 1;
        }
        if scheduled > 0 {
            // The prefill batch runs alone: its requests go first.
            core.running.sort_by_key(|s| s.sched == 0);
            out.scheduled = scheduled;
        }
        scheduled > 0
    }

    /// Schedules one decode step of the whole running batch, retracting requests until it fits.
    fn decode(&mut self, core: &mut ReplicaCore, trace: &[TraceRequest], out: &mut SchedOutcome) {
        let bs = core.limits.block_size;
        let quiet = match core.waiting.is_empty() {
            true => 0,
            false => self.quiet_steps(core, trace),
        };
        let more = |s: &super::Seq| decode_blocks(s, bs);
        while !core.running.is_empty()
            && core.running.iter().map(more).sum::<u64>() > core.kv.num_free()
        {
            let victim = (0..core.running.len())
                .min_by_key(|&i| {
                    let s = &core.running[i];
                    (
                        s.generated,
                        std::cmp::Reverse(s.prompt),
                        std::cmp::Reverse(i),
                    )
                })
                .expect("running is non-empty");
            let mut s = core.running.remove(victim);
            preempt(&mut core.kv, &mut s, trace, bs);
            core.waiting.push_front(s);
            out.preempted += 1;
        }
        if out.preempted > 0 {
            let generated: u64 = core.running.iter().map(|s| u64::from(s.generated)).sum();
            let asked: u64 = core.running.iter().map(|s| u64::from(s.output)).sum();
            let left = core.running.len() as u64 * u64::from(RETRACT_DECODE_STEPS);
            self.reset(((generated + left) as f64 / (asked + 1) as f64).min(1.0));
        } else {
            self.decay(1);
        }
        decode_all(core);
        out.scheduled = core.running.len();
        out.steady = out.preempted == 0 && (core.waiting.is_empty() || quiet != 1);
        out.max_run = quiet;
    }
}

impl Scheduler for Sglang {
    fn schedule(
        &mut self,
        core: &mut ReplicaCore,
        trace: &[TraceRequest],
        on_admit: &mut dyn FnMut(u32),
    ) -> SchedOutcome {
        let mut out = SchedOutcome::default();
        if core.running.is_empty() && core.waiting.is_empty() {
            self.reset(INIT_NEW_TOKEN_RATIO);
            return out;
        }
        if !self.prefill(core, trace, &mut out, on_admit) {
            self.decode(core, trace, &mut out);
        }
        out
    }

    fn advanced(&mut self, steps: u32) {
        self.decay(steps);
    }
}
