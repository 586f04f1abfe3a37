//! The discrete-event loop: arrivals, routing, and per-replica engine steps.
//!
//! Events are (time, replica, generation) step ends in a binary heap plus the trace's arrivals, merged in
//! time order. At equal times step ends go first (a request arriving exactly when a step ends waits for
//! the next step), then lower replica indices. Each replica alternates "schedule → step → apply". When
//! the scheduler reports a steady decode-only batch, the replica advances a whole run of identical decode
//! steps at once (O(1) per step, O(batch) per run), ending at the first completion, the last step whose KV
//! blocks fit, or a timeout; an arrival routed to the replica mid-run truncates the run at the step
//! boundary following it, so results equal the step-by-step simulation exactly.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::config::{Deployment, Router, SchedulerKind, SimOptions, Speculation};
use super::kv::KvCache;
use super::report::{Percentiles, RequestResult, RequestStatus, SimReport};
use super::scheduler::{
    Admission, Continuous, ReplicaCore, SchedLimits, Scheduler, Seq, Sglang, SglangPolicy, Tgi,
    blocks_for, drop_waiting, release_seq,
};
use super::step_time::{StepCost, StepShape};
use super::time::SimTime;
use super::trace::{Trace, TraceRequest};
use crate::knobs::{CapacityPolicy, SchedulePolicy, ServingConfig};
use crate::rng::{Rng, hash64};
use crate::{Error, Result};

const PENDING: u8 = 0;
const FINISHED: u8 = 1;
const REJECTED: u8 = 2;
const TIMED_OUT: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct ReqRec {
    arrival: SimTime,
    /// When the client gives up (`SimTime::MAX`: never).
    deadline: SimTime,
    first_sched: SimTime,
    first_token: SimTime,
    end: SimTime,
    replica: u32,
    preemptions: u16,
    status: u8,
}

/// Read-only context of a run.
struct Env<'a> {
    trace: &'a [TraceRequest],
    cost: StepCost,
    draft_cost: Option<StepCost>,
    spec: Option<Speculation<'a>>,
    /// Some client timeout is set (deadlines are then per request).
    timeouts: bool,
    /// Waiting queues stay in deadline order (arrival order): false for a decode pool (requests
    /// arrive when their KV does) and SGLang's `lpm` (it sorts the queue by cache hits).
    ordered: bool,
    /// Nanoseconds to load one KV block from the host tier.
    load_ns_per_block: f64,
    block_size: u32,
    prefix_caching: bool,
    fast_forward: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    start: SimTime,
    end: SimTime,
    steps: u32,
    /// Sequences in the step(s): `running[..n]`.
    n: usize,
    /// A decode-only run that may span several steps.
    fast: bool,
    /// KV tokens read in the first step of a fast run.
    kv0: u64,
    /// Host-tier loads before the first step, ns.
    load_ns: u64,
    used_at_start: u64,
}

struct Replica {
    core: ReplicaCore,
    sched: Box<dyn Scheduler>,
    busy: bool,
    epoch: u64,
    run: Run,
    outstanding: u32,
    rng: Rng,
    // statistics
    busy_ns: u64,
    batch_ns: f64,
    max_batch: u32,
    kv_used_ns: f64,
    peak_used: u64,
    steps: u64,
    ff_steps: u64,
    generated: u64,
    prefill_tokens: u64,
    hit_tokens: u64,
    query_tokens: u64,
    preemptions: u64,
    loaded_blocks: u64,
}

fn decode_shape(n: usize, kv: u64) -> StepShape {
    StepShape {
        num_seqs: n as u32,
        decode_seqs: n as u32,
        tokens: n as u32,
        prefill_tokens: 0,
        kv_tokens: kv,
        attn_pairs: kv as f64,
    }
}

impl Replica {
    /// Aborts requests whose client deadline has passed: waiting ones from the queue front, or all
    /// over the queue where it is not in deadline order.
    fn expire(&mut self, now: SimTime, env: &Env, recs: &mut [ReqRec], done: &mut u64) {
        let due = |s: &Seq| recs[s.req as usize].deadline <= now;
        let expired: Vec<Seq> = if env.ordered {
            let n = self.core.waiting.iter().take_while(|s| due(s)).count();
            self.core.waiting.drain(..n).collect()
        } else if self.core.waiting.iter().any(due) {
            let (gone, kept): (Vec<Seq>, Vec<Seq>) = std::mem::take(&mut self.core.waiting)
                .into_iter()
                .partition(due);
            self.core.waiting = kept.into();
            gone
        } else {
            Vec::new()
        };
        for s in expired {
            drop_waiting(&mut self.core.kv, &s, env.block_size);
            let r = &mut recs[s.req as usize];
            r.status = TIMED_OUT;
            r.end = r.deadline;
            r.preemptions = s.preemptions;
            self.outstanding -= 1;
            *done += 1;
        }
        let mut w = 0;
        for i in 0..self.core.running.len() {
            let dl = recs[self.core.running[i].req as usize].deadline;
            if dl <= now {
                let mut s = self.core.running[i].clone();
                release_seq(&mut self.core.kv, &mut s, env.trace);
                let r = &mut recs[s.req as usize];
                r.status = TIMED_OUT;
                r.end = dl;
                r.preemptions = s.preemptions;
                self.outstanding -= 1;
                *done += 1;
            } else {
                self.core.running.swap(w, i);
                w += 1;
            }
        }
        self.core.running.truncate(w);
    }

    /// Schedules the next step (or run of steps) at `now`; returns its end, or None when idle.
    fn start(
        &mut self,
        now: SimTime,
        env: &Env,
        recs: &mut [ReqRec],
        done: &mut u64,
    ) -> Option<SimTime> {
        if env.timeouts {
            self.expire(now, env, recs, done);
        }
        let out = loop {
            let out = self.sched.schedule(&mut self.core, env.trace, &mut |req| {
                let r = &mut recs[req as usize];
                if r.first_sched == SimTime::MAX {
                    r.first_sched = now;
                }
            });
            self.preemptions += out.preempted as u64;
            self.hit_tokens += out.hit_tokens;
            self.query_tokens += out.query_tokens;
            self.loaded_blocks += out.loaded_blocks;
            if out.scheduled > 0 {
                break out;
            }
            if out.preempted > 0 {
                continue;
            }
            if self.core.running.is_empty()
                && let Some(s) = self.core.waiting.pop_front()
            {
                // Cannot be scheduled even on an idle engine.
                drop_waiting(&mut self.core.kv, &s, env.block_size);
                let r = &mut recs[s.req as usize];
                r.status = REJECTED;
                r.end = now;
                r.preemptions = s.preemptions;
                self.outstanding -= 1;
                *done += 1;
                continue;
            }
            self.busy = false;
            return None;
        };

        let n = out.scheduled;
        let mut shape = StepShape::default();
        // A step that admits sequences registers their prefix blocks when it ends: never part of a
        // fast run (a readmitted parked sequence may already be decoding).
        let mut all_decode = out.admitted == 0;
        let mut min_rem = u32::MAX;
        let mut spec_seqs = 0u32;
        let mut min_deadline = SimTime::MAX;
        for s in &self.core.running[..n] {
            let ctx = s.computed + s.sched;
            shape.num_seqs += 1;
            shape.tokens += s.sched;
            shape.kv_tokens += ctx as u64;
            shape.attn_pairs += s.sched as f64 * (s.computed as f64 + (s.sched as f64 + 1.0) * 0.5);
            if s.is_decoding() {
                shape.decode_seqs += 1;
                // A 1-token prefill remainder (prefix hit or chunk boundary) computes like a decode, but
                // it emits the first token, so it is not part of a fast run.
                if s.spec > 0 || s.generated == 0 {
                    spec_seqs += 1;
                    all_decode = false;
                }
            } else {
                shape.prefill_tokens += s.sched;
                all_decode = false;
            }
            min_rem = min_rem.min(s.output - s.generated);
            min_deadline = min_deadline.min(recs[s.req as usize].deadline);
        }
        // Host-tier loads (offloaded prefix blocks, parked sequences) finish before the step runs.
        let load_ns = (out.loaded_blocks as f64 * env.load_ns_per_block) as u64;
        let mut dt = env.cost.step_ns(&shape) + load_ns;
        // A waiting request timing out may unblock the queue behind it: a run ends there too.
        if env.timeouts {
            let waiting = self
                .core
                .waiting
                .iter()
                .map(|s| recs[s.req as usize].deadline);
            let first = match env.ordered {
                true => waiting.take(1).min(),
                false => waiting.min(),
            };
            min_deadline = min_deadline.min(first.unwrap_or(SimTime::MAX));
        }
        if let (Some(dc), Some(sp)) = (&env.draft_cost, env.spec) {
            if spec_seqs > 0 {
                let k = sp.num_speculative_tokens as u64;
                dt += k * dc.step_ns(&decode_shape(spec_seqs as usize, shape.kv_tokens));
            }
            if shape.prefill_tokens > 0 {
                dt += dc.step_ns(&StepShape {
                    num_seqs: shape.num_seqs - shape.decode_seqs,
                    decode_seqs: 0,
                    ..shape
                });
            }
        }
        let used = self.core.kv.used();
        let mut run = Run {
            start: now,
            end: now.saturating_add(dt),
            steps: 1,
            n,
            fast: false,
            kv0: shape.kv_tokens,
            load_ns,
            used_at_start: used,
        };
        if env.fast_forward
            && out.steady
            && all_decode
            && n == self.core.running.len()
            && min_rem > 1
        {
            // Longest run of identical decode steps: until the first completion, while KV blocks last,
            // and until the first step ending at or after a running request's deadline.
            let free = self.core.kv.num_free();
            let bs = env.block_size;
            let extra = |k: u32| -> u64 {
                self.core.running[..n]
                    .iter()
                    .map(|s| blocks_for(s.computed + k, bs).saturating_sub(s.blocks()) as u64)
                    .sum()
            };
            let mut k = match out.max_run {
                0 => min_rem,
                cap => min_rem.min(cap),
            };
            if extra(k) > free {
                let (mut lo, mut hi) = (1u32, k);
                while lo < hi {
                    let mid = lo + (hi - lo).div_ceil(2);
                    if extra(mid) <= free {
                        lo = mid;
                    } else {
                        hi = mid - 1;
                    }
                }
                k = lo;
            }
            if k > 1 && run.end < min_deadline {
                let mut end = run.end;
                let mut steps = 1;
                while steps < k && end < min_deadline {
                    let sh = decode_shape(n, shape.kv_tokens + (n as u64) * steps as u64);
                    end = end.saturating_add(env.cost.step_ns(&sh));
                    steps += 1;
                }
                run.end = end;
                run.steps = steps;
                run.fast = steps > 1;
            }
        }
        self.run = run;
        self.busy = true;
        self.epoch += 1;
        Some(run.end)
    }

    /// Cuts a fast run at the first step boundary after `t`. Returns the new end if it changed.
    fn truncate(&mut self, t: SimTime, env: &Env) -> Option<SimTime> {
        if !self.busy || !self.run.fast {
            return None;
        }
        let r = self.run;
        let mut end = r.start.saturating_add(r.load_ns);
        for j in 0..r.steps {
            end = end.saturating_add(
                env.cost
                    .step_ns(&decode_shape(r.n, r.kv0 + r.n as u64 * j as u64)),
            );
            if end > t {
                if j + 1 < r.steps {
                    self.run.steps = j + 1;
                    self.run.end = end;
                    self.run.fast = j + 1 > 1;
                    self.epoch += 1;
                    return Some(end);
                }
                return None;
            }
        }
        None
    }

    /// Applies the finished step or run at `now` (= run end).
    fn finish(&mut self, now: SimTime, env: &Env, recs: &mut [ReqRec], done: &mut u64) {
        let r = self.run;
        let dt = (r.end.0 - r.start.0) as f64;
        let bs = env.block_size;
        self.busy_ns += r.end.0 - r.start.0;
        self.batch_ns += r.n as f64 * dt;
        self.max_batch = self.max_batch.max(r.n as u32);
        self.steps += r.steps as u64;
        let mut used_end = r.used_at_start;
        if r.fast {
            self.ff_steps += r.steps as u64 - 1;
            self.sched.advanced(r.steps - 1);
            let k = r.steps;
            let mut extra = 0u64;
            for s in &mut self.core.running[..r.n] {
                s.computed += k;
                s.generated += k;
                let need = blocks_for(s.computed, bs).saturating_sub(s.blocks());
                s.anon_blocks += need;
                extra += need as u64;
                s.sched = 0;
            }
            self.core.kv.allocate(extra);
            self.generated += k as u64 * r.n as u64;
            used_end += extra;
        } else {
            for s in &mut self.core.running[..r.n] {
                let was_decoding = s.is_decoding();
                s.computed += s.sched - s.spec;
                if !was_decoding {
                    self.prefill_tokens += s.sched as u64;
                }
                if env.prefix_caching && !s.register_stopped {
                    let hashes = &env.trace[s.req as usize].prefix_hashes;
                    let full = s.computed.min(s.prompt) / bs;
                    while s.cached_blocks < s.n_hashes.min(full) && s.anon_blocks > 0 {
                        if self.core.kv.register(hashes[s.cached_blocks as usize]) {
                            s.cached_blocks += 1;
                            s.anon_blocks -= 1;
                        } else {
                            s.register_stopped = true;
                            break;
                        }
                    }
                    if s.cached_blocks >= s.n_hashes {
                        s.register_stopped = true;
                    }
                }
                if s.computed == s.num_tokens() {
                    let mut accepted = 0;
                    if s.spec > 0 {
                        let a = env.spec.map_or(0.0, |sp| sp.acceptance_rate(s.class));
                        while accepted < s.spec && self.rng.next_f64() < a {
                            accepted += 1;
                        }
                    }
                    s.computed += accepted;
                    let emitted = (1 + accepted).min(s.output - s.generated);
                    if s.generated == 0 {
                        recs[s.req as usize].first_token = now;
                    }
                    s.generated += emitted;
                    self.generated += emitted as u64;
                }
                s.sched = 0;
                s.spec = 0;
            }
        }
        self.peak_used = self.peak_used.max(used_end);
        self.kv_used_ns += 0.5 * (r.used_at_start + used_end) as f64 * dt;

        // Remove finished sequences, keeping order.
        let mut w = 0;
        for i in 0..self.core.running.len() {
            let s = &self.core.running[i];
            if i < r.n && s.generated >= s.output {
                let mut s = s.clone();
                release_seq(&mut self.core.kv, &mut s, env.trace);
                let rec = &mut recs[s.req as usize];
                rec.status = FINISHED;
                rec.end = now;
                rec.preemptions = s.preemptions;
                self.outstanding -= 1;
                *done += 1;
            } else {
                self.core.running.swap(w, i);
                w += 1;
            }
        }
        self.core.running.truncate(w);
        self.busy = false;
    }
}

/// Simulates `dep` serving `trace`: one pool of replicas, or, when the configuration disaggregates
/// prefill and decode, a prefill pool whose finished prompts travel to a decode pool.
pub fn simulate(dep: &Deployment, trace: &Trace, opts: &SimOptions) -> Result<SimReport> {
    dep.validate()?;
    let reqs = trace.requests();
    if reqs.len() > u32::MAX as usize {
        return Err(Error::Simulation("trace longer than 2^32 requests".into()));
    }
    let timeout = opts
        .request_timeout_s
        .map(|s| SimTime::from_secs_f64(s).0.max(1));
    let deadlines: Vec<SimTime> = reqs
        .iter()
        .map(|r| match timeout {
            Some(to) => SimTime::from_secs_f64(r.arrival_s).saturating_add(to),
            None => SimTime::MAX,
        })
        .collect();
    let Some((p, d)) = dep
        .config
        .pd_disaggregation
        .and_then(|ratio| ratio.split(dep.config.replicas))
    else {
        let mut pool = run_pool(dep, reqs, &deadlines, opts, Role::Whole)?;
        let recs = std::mem::take(&mut pool.recs);
        return Ok(build_report(dep, opts, reqs, &recs, &[pool]));
    };
    let pool_of = |replicas: u32| Deployment {
        config: ServingConfig {
            replicas,
            pd_disaggregation: None,
            ..dep.config.clone()
        },
        ..dep.clone()
    };
    let (prefill, decode) = (pool_of(p), pool_of(d));
    // Prefill instances compute each prompt and its first token (vLLM's P/D proxy sends them the
    // request with max_tokens = 1); a request the decode side could never hold is refused up front.
    let first = run_pool(&prefill, reqs, &deadlines, opts, Role::Prefill(&decode))?;
    // Decode instances receive the whole request once its KV has arrived: they load the prompt's KV
    // instead of computing it, recompute the last prompt token and generate from there.
    let mut handed: Vec<(usize, TraceRequest)> = reqs
        .iter()
        .enumerate()
        .filter(|(i, _)| first.recs[*i].status == FINISHED)
        .map(|(i, r)| {
            let ready = first.recs[i].end.0 as f64 * 1e-9 + decode.kv_transfer_s(r.prompt_tokens);
            let handed = TraceRequest {
                arrival_s: ready,
                preloaded_tokens: r.prompt_tokens,
                ..r.clone()
            };
            (i, handed)
        })
        .collect();
    handed.sort_by(|a, b| a.1.arrival_s.total_cmp(&b.1.arrival_s));
    let (origin, second): (Vec<usize>, Vec<TraceRequest>) = handed.into_iter().unzip();
    let second_deadlines: Vec<SimTime> = origin.iter().map(|&i| deadlines[i]).collect();
    let mut then = run_pool(&decode, &second, &second_deadlines, opts, Role::Decode(p))?;
    let mut recs = first.recs.clone();
    for (j, &i) in origin.iter().enumerate() {
        let (a, b) = (&mut recs[i], &then.recs[j]);
        a.first_token = b.first_token;
        a.end = b.end;
        a.status = b.status;
        a.preemptions += b.preemptions;
        if b.replica != u32::MAX {
            a.replica = p + b.replica;
        }
    }
    then.recs.clear();
    Ok(build_report(dep, opts, reqs, &recs, &[first, then]))
}

/// What a pool of replicas does with its requests.
#[derive(Clone, Copy)]
enum Role<'a> {
    /// Prefill and decode: an aggregated deployment.
    Whole,
    /// Prefill only, for the decode pool of this deployment: each request ends with its first token.
    Prefill(&'a Deployment),
    /// Decode only, on replicas numbered from this one; prompts arrive computed.
    Decode(u32),
}

/// One pool of replicas after a run: what happened to each request, and the replicas' counters.
struct Pool {
    /// Its output tokens are the requests' (a prefill pool's first tokens are recomputed by the
    /// decode pool, which emits them).
    counts_output: bool,
    /// Its prefix-cache lookups are the requests' (a decode pool's prompts arrive computed).
    counts_prefix_cache: bool,
    recs: Vec<ReqRec>,
    replicas: Vec<Replica>,
    capacity: u64,
    /// ∫ requests in the pool dt, ns.
    area_ns: f64,
}

/// The scheduler `dep`'s engine runs, with the configuration's policies.
fn scheduler(dep: &Deployment) -> Box<dyn Scheduler> {
    let c = &dep.config;
    match dep.scheduler {
        SchedulerKind::VllmV1 => Box::new(Continuous::vllm()),
        SchedulerKind::Trtllm => Box::new(Continuous {
            admission: match c.capacity_scheduler_policy {
                CapacityPolicy::GuaranteedNoEvict => Admission::Reserve,
                CapacityPolicy::MaxUtilization => Admission::Optimistic,
            },
            chunk_unit: c.block_size,
        }),
        SchedulerKind::Tgi => Box::new(Tgi::new(c.waiting_served_ratio)),
        SchedulerKind::Sglang => Box::new(Sglang::new(match c.schedule_policy {
            SchedulePolicy::Fcfs => SglangPolicy::Fcfs,
            SchedulePolicy::Lpm => SglangPolicy::Lpm,
        })),
    }
}

/// Replays `reqs` (sorted by arrival) on the replicas of `dep` in `role`; replica `i` draws from the
/// stream `(run seed, scenario, first replica + i)`.
fn run_pool(
    dep: &Deployment,
    reqs: &[TraceRequest],
    deadlines: &[SimTime],
    opts: &SimOptions,
    role: Role,
) -> Result<Pool> {
    let first_replica = match role {
        Role::Decode(first) => first,
        _ => 0,
    };
    let seed = opts.seed ^ hash64(opts.scenario_id);
    let e = &dep.config;
    let capacity = dep.num_gpu_blocks()?;
    let spec = dep.speculation();
    let env = Env {
        trace: reqs,
        cost: StepCost::new(dep, &dep.model),
        draft_cost: match (spec, &dep.draft_model) {
            (Some(_), Some(m)) => Some(StepCost::new(dep, m)),
            _ => None,
        },
        spec,
        timeouts: deadlines.iter().any(|&d| d != SimTime::MAX),
        ordered: !(matches!(role, Role::Decode(_))
            || dep.scheduler == SchedulerKind::Sglang && e.schedule_policy == SchedulePolicy::Lpm),
        load_ns_per_block: dep.host_load_s(1) * 1e9,
        block_size: e.block_size,
        prefix_caching: e.enable_prefix_caching,
        fast_forward: !opts.step_by_step,
    };
    let limits = SchedLimits {
        block_size: e.block_size,
        max_num_seqs: e.max_num_seqs,
        max_num_batched_tokens: e.max_num_batched_tokens,
        prefix_caching: e.enable_prefix_caching,
        chunked_prefill: e.enable_chunked_prefill,
        long_prefill_token_threshold: e.long_prefill_token_threshold,
        num_speculative_tokens: spec.map_or(0, |s| s.num_speculative_tokens),
    };
    // An engine that prefills a prompt in one step refuses prompts above its token budget.
    let prefill_cap = match (dep.scheduler, e.enable_chunked_prefill) {
        (SchedulerKind::Tgi, _) | (_, false) => e.max_num_batched_tokens,
        _ => u32::MAX,
    };
    let host_blocks = dep.host_blocks();
    let prefill_only = matches!(role, Role::Prefill(_));
    let decode_capacity = match role {
        Role::Prefill(decode) => decode.num_gpu_blocks()?,
        _ => capacity,
    };
    let mut replicas: Vec<Replica> = (0..e.replicas)
        .map(|i| Replica {
            core: ReplicaCore {
                running: Vec::with_capacity(e.max_num_seqs.min(4096) as usize),
                waiting: VecDeque::new(),
                kv: KvCache::new(capacity, host_blocks),
                limits: limits.clone(),
            },
            sched: scheduler(dep),
            busy: false,
            epoch: 0,
            run: Run::default(),
            outstanding: 0,
            rng: Rng::new(seed, u64::from(first_replica + i)),
            busy_ns: 0,
            batch_ns: 0.0,
            max_batch: 0,
            kv_used_ns: 0.0,
            peak_used: 0,
            steps: 0,
            ff_steps: 0,
            generated: 0,
            prefill_tokens: 0,
            hit_tokens: 0,
            query_tokens: 0,
            preemptions: 0,
            loaded_blocks: 0,
        })
        .collect();

    let mut recs: Vec<ReqRec> = reqs
        .iter()
        .zip(deadlines)
        .map(|(r, &deadline)| ReqRec {
            arrival: SimTime::from_secs_f64(r.arrival_s),
            deadline,
            first_sched: SimTime::MAX,
            first_token: SimTime::MAX,
            end: SimTime::MAX,
            replica: u32::MAX,
            preemptions: 0,
            status: PENDING,
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<(SimTime, u32, u64)>> = BinaryHeap::new();
    let mut next = 0usize;
    let mut rr = 0u64;
    let mut in_system = 0u64;
    let mut done = 0u64;
    let mut area = 0.0f64;
    let mut last_t = SimTime::ZERO;
    let nrep = replicas.len();

    loop {
        let t_arr = recs.get(next).map_or(SimTime::MAX, |r| r.arrival);
        let t_step = heap.peek().map_or(SimTime::MAX, |Reverse((t, _, _))| *t);
        if t_arr == SimTime::MAX && t_step == SimTime::MAX {
            break;
        }
        let now = t_arr.min(t_step);
        area += in_system as f64 * (now.0 - last_t.0) as f64;
        last_t = now;
        if t_step <= t_arr {
            let Reverse((t, ri, epoch)) = heap.pop().expect("peeked");
            let rep = &mut replicas[ri as usize];
            if epoch != rep.epoch || !rep.busy {
                continue;
            }
            let before = done;
            rep.finish(t, &env, &mut recs, &mut done);
            if let Some(end) = rep.start(t, &env, &mut recs, &mut done) {
                heap.push(Reverse((end, ri, rep.epoch)));
            }
            in_system -= done - before;
        } else {
            let i = next;
            next += 1;
            let r = &reqs[i];
            in_system += 1;
            let total = r.prompt_tokens as u64 + r.output_tokens as u64;
            let fits = |d: &Deployment, capacity: u64| {
                total <= u64::from(d.max_model_len())
                    && blocks_for((total - 1) as u32, d.config.block_size) as u64 <= capacity
            };
            let refused = !fits(dep, capacity)
                || r.prompt_tokens - r.preloaded_tokens.min(r.prompt_tokens) > prefill_cap
                || match role {
                    Role::Prefill(decode) => !fits(decode, decode_capacity),
                    _ => false,
                };
            if refused {
                recs[i].status = REJECTED;
                recs[i].end = now;
                in_system -= 1;
                done += 1;
                continue;
            }
            let least = || {
                (0..nrep)
                    .min_by_key(|&j| (replicas[j].outstanding, j))
                    .expect("at least one replica")
            };
            let ri = match dep.router {
                Router::RoundRobin => {
                    rr += 1;
                    ((rr - 1) % nrep as u64) as usize
                }
                Router::LeastOutstanding => least(),
                Router::PrefixAffinity => match r.prefix_hashes.first() {
                    Some(&h) => (hash64(h) % nrep as u64) as usize,
                    None => least(),
                },
            };
            recs[i].replica = ri as u32;
            let rep = &mut replicas[ri];
            rep.outstanding += 1;
            rep.core
                .waiting
                .push_back(Seq::new(i as u32, r, e.block_size, prefill_only));
            let before = done;
            if !rep.busy {
                if let Some(end) = rep.start(now, &env, &mut recs, &mut done) {
                    heap.push(Reverse((end, ri as u32, rep.epoch)));
                }
            } else if let Some(end) = rep.truncate(now, &env) {
                heap.push(Reverse((end, ri as u32, rep.epoch)));
            }
            in_system -= done - before;
        }
    }

    Ok(Pool {
        counts_output: !prefill_only,
        counts_prefix_cache: !matches!(role, Role::Decode(_)),
        recs,
        replicas,
        capacity,
        area_ns: area,
    })
}

fn build_report(
    dep: &Deployment,
    opts: &SimOptions,
    reqs: &[TraceRequest],
    recs: &[ReqRec],
    pools: &[Pool],
) -> SimReport {
    let replicas: Vec<&Replica> = pools.iter().flat_map(|p| &p.replicas).collect();
    let area_ns: f64 = pools.iter().map(|p| p.area_ns).sum();
    // KV utilisation is a share of each pool's own blocks.
    let kv_used_share: f64 = pools
        .iter()
        .flat_map(|p| p.replicas.iter().map(move |r| (r, p.capacity)))
        .map(|(r, c)| if c > 0 { r.kv_used_ns / c as f64 } else { 0.0 })
        .sum();
    let peak_share = pools
        .iter()
        .flat_map(|p| p.replicas.iter().map(move |r| (r, p.capacity)))
        .map(|(r, c)| {
            if c > 0 {
                r.peak_used as f64 / c as f64
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max);
    let capacity = pools.iter().map(|p| p.capacity).max().unwrap_or(0);
    let n = recs.len();
    let ms = |d: u64| d as f64 * 1e-6;
    // A request's time outside the engine loop counts towards the latencies a client sees.
    let frontend = dep.engine.frontend_ms;
    let makespan_ns = recs
        .iter()
        .map(|r| {
            if r.end == SimTime::MAX {
                r.arrival.0
            } else {
                r.end.0
            }
        })
        .max()
        .unwrap_or(0);
    let makespan = makespan_ns as f64 * 1e-9;
    let mut queue = Vec::with_capacity(n);
    let mut ttft = Vec::with_capacity(n);
    let mut tpot = Vec::with_capacity(n);
    let mut e2e = Vec::with_capacity(n);
    let (mut finished, mut rejected, mut timed_out, mut good) = (0u64, 0u64, 0u64, 0u64);
    let mut input_tokens = 0u64;
    let mut per = opts.keep_per_request.then(|| Vec::with_capacity(n));
    for (i, (r, q)) in recs.iter().zip(reqs).enumerate() {
        let mut res = RequestResult {
            index: i as u32,
            replica: r.replica,
            status: RequestStatus::Finished,
            arrival_s: q.arrival_s,
            queue_ms: f64::NAN,
            ttft_ms: f64::NAN,
            tpot_ms: f64::NAN,
            e2e_ms: f64::NAN,
            preemptions: r.preemptions as u32,
        };
        match r.status {
            FINISHED => {
                finished += 1;
                input_tokens += q.prompt_tokens as u64;
                res.queue_ms = ms(r.first_sched.0 - r.arrival.0);
                res.ttft_ms = ms(r.first_token.0 - r.arrival.0) + frontend;
                res.e2e_ms = ms(r.end.0 - r.arrival.0) + frontend;
                queue.push(res.queue_ms);
                ttft.push(res.ttft_ms);
                e2e.push(res.e2e_ms);
                let ok_tpot = if q.output_tokens > 1 {
                    res.tpot_ms = ms(r.end.0 - r.first_token.0) / (q.output_tokens - 1) as f64;
                    tpot.push(res.tpot_ms);
                    res.tpot_ms <= opts.slo.p95_tpot_ms
                } else {
                    true
                };
                if ok_tpot && res.ttft_ms <= opts.slo.p95_ttft_ms {
                    good += 1;
                }
            }
            REJECTED => {
                rejected += 1;
                res.status = RequestStatus::Rejected;
            }
            _ => {
                timed_out += 1;
                res.status = RequestStatus::TimedOut;
                if r.first_sched != SimTime::MAX {
                    res.queue_ms = ms(r.first_sched.0 - r.arrival.0);
                }
                if r.first_token != SimTime::MAX {
                    res.ttft_ms = ms(r.first_token.0 - r.arrival.0) + frontend;
                }
            }
        }
        if let Some(p) = per.as_mut() {
            p.push(res);
        }
    }
    let queue_p = Percentiles::from_values(&mut queue);
    let ttft_p = Percentiles::from_values(&mut ttft);
    let tpot_p = Percentiles::from_values(&mut tpot);
    let e2e_p = Percentiles::from_values(&mut e2e);
    let per_s = |x: f64| if makespan > 0.0 { x / makespan } else { 0.0 };
    let sum = |f: &dyn Fn(&Replica) -> f64| replicas.iter().map(|r| f(r)).sum::<f64>();
    let sum_where = |keep: fn(&Pool) -> bool, f: fn(&Replica) -> u64| -> u64 {
        pools
            .iter()
            .filter(|p| keep(p))
            .flat_map(|p| &p.replicas)
            .map(f)
            .sum()
    };
    let generated = sum_where(|p| p.counts_output, |r| r.generated);
    let (hits, queries) = (
        sum_where(|p| p.counts_prefix_cache, |r| r.hit_tokens),
        sum_where(|p| p.counts_prefix_cache, |r| r.query_tokens),
    );
    let busy = sum(&|r| r.busy_ns as f64);
    let gpu_seconds = f64::from(dep.config.gpus()) * makespan;
    let peak = replicas.iter().map(|r| r.peak_used).max().unwrap_or(0);
    SimReport {
        requests: n as u64,
        finished,
        rejected,
        timed_out,
        makespan_s: makespan,
        queue_ms: queue_p,
        ttft_ms: ttft_p,
        tpot_ms: tpot_p,
        e2e_ms: e2e_p,
        input_tokens_per_s: per_s(input_tokens as f64),
        output_tokens_per_s: per_s(generated as f64),
        goodput_rps: per_s(good as f64),
        goodput_fraction: if n > 0 { good as f64 / n as f64 } else { 0.0 },
        slo_met: ttft_p.p95 <= opts.slo.p95_ttft_ms && tpot_p.p95 <= opts.slo.p95_tpot_ms,
        mean_batch: if busy > 0.0 {
            sum(&|r| r.batch_ns) / busy
        } else {
            0.0
        },
        max_batch: replicas.iter().map(|r| r.max_batch).max().unwrap_or(0),
        mean_kv_utilization: if makespan_ns > 0 {
            kv_used_share / (makespan_ns as f64 * replicas.len() as f64)
        } else {
            0.0
        },
        max_kv_utilization: peak_share,
        kv_blocks_per_replica: capacity,
        preemptions: replicas.iter().map(|r| r.preemptions).sum(),
        prefix_cache_hit_rate: if queries > 0 {
            hits as f64 / queries as f64
        } else {
            0.0
        },
        prefix_cache_evictions: replicas.iter().map(|r| r.core.kv.evictions).sum(),
        mean_in_system: if makespan_ns > 0 {
            area_ns / makespan_ns as f64
        } else {
            0.0
        },
        steps: replicas.iter().map(|r| r.steps).sum(),
        fast_forwarded_steps: replicas.iter().map(|r| r.ff_steps).sum(),
        generated_tokens: generated,
        prefill_tokens: replicas.iter().map(|r| r.prefill_tokens).sum(),
        host_loaded_blocks: replicas.iter().map(|r| r.loaded_blocks).sum(),
        leaked_blocks: replicas
            .iter()
            .map(|r| r.core.kv.used() + r.core.kv.host.parked())
            .sum(),
        peak_blocks_used: peak,
        gpu_seconds,
        cost_usd: gpu_seconds / 3600.0 * dep.price_per_gpu_hour,
        per_request: per,
    }
}
