//! Response caching (seed 003): each app's requests replayed, in arrival order, through response
//! caches keyed by `prompt_hash`, an LRU of each candidate size and a TTL of each candidate age, so
//! the hit rate is known as a function of capacity. A hit is a request whose prompt an earlier
//! successful request of the same app sent and the cache still holds; it would be answered
//! without the model: its tokens and, on a hosted API, its price are saved, and its load leaves
//! the supply.

use std::collections::VecDeque;

use serde::Serialize;

use crate::hash::IdMap;

/// LRU capacities tried, in entries (one response each).
pub const LRU_ENTRIES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// TTLs tried, in seconds (unbounded capacity): an hour, a day, a week.
pub const TTL_SECONDS: [u64; 3] = [3_600, 86_400, 604_800];
/// A cache is recommended when it would answer at least this share of an app's requests: below
/// it, the cache's own operation (a store, invalidation, stale answers) outweighs the saving.
pub const MIN_HIT_RATE: f64 = 0.01;
/// The smallest cache that reaches this share of the best candidate's hits is the one recommended.
pub const NEAR_BEST: f64 = 0.95;

/// One request as the replay sees it.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    pub ts_us: i64,
    pub prompt: u64,
    /// Whether its response may be stored (the request succeeded).
    pub cacheable: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

/// A cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// At most this many responses, least recently used evicted first.
    Lru { entries: u64 },
    /// Every response kept this many seconds.
    Ttl { seconds: u64 },
}

impl Policy {
    pub fn name(self) -> String {
        match self {
            Policy::Lru { entries } => format!("lru-{entries}"),
            Policy::Ttl { seconds } => format!("ttl-{seconds}s"),
        }
    }

    /// The candidates, LRUs first.
    pub fn candidates() -> Vec<Policy> {
        LRU_ENTRIES
            .into_iter()
            .map(|entries| Policy::Lru { entries })
            .chain(
                TTL_SECONDS
                    .into_iter()
                    .map(|seconds| Policy::Ttl { seconds }),
            )
            .collect()
    }
}

/// What one policy saves on one app's requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Replay {
    pub policy: Policy,
    pub requests: u64,
    pub hits: u64,
    pub prompt_tokens_saved: u64,
    pub completion_tokens_saved: u64,
    pub cost_saved_usd: f64,
}

impl Replay {
    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.requests.max(1) as f64
    }
}

/// Replays `requests` (in arrival order) through `policy`; returns the totals and which requests hit.
pub fn replay(requests: &[Lookup], policy: Policy) -> (Replay, Vec<bool>) {
    let mut totals = Replay {
        policy,
        requests: requests.len() as u64,
        hits: 0,
        prompt_tokens_saved: 0,
        completion_tokens_saved: 0,
        cost_saved_usd: 0.0,
    };
    let mut hit = vec![false; requests.len()];
    // prompt → (stored at, last use sequence). Uses are queued in order; an entry whose sequence
    // is no longer its prompt's last use is stale and skipped when evicting (amortised O(1) per
    // request, where a sorted map of uses costs a tree operation each).
    let mut stored: IdMap<u64, (i64, u64)> = IdMap::default();
    let mut uses: VecDeque<(u64, u64)> = VecDeque::new();
    let lru = matches!(policy, Policy::Lru { .. });
    for (i, r) in requests.iter().enumerate() {
        let seq = i as u64;
        let fresh = match (stored.get(&r.prompt), policy) {
            (Some(&(at, _)), Policy::Ttl { seconds }) => r.ts_us - at <= seconds as i64 * 1_000_000,
            (Some(_), Policy::Lru { .. }) => true,
            (None, _) => false,
        };
        if fresh {
            hit[i] = true;
            totals.hits += 1;
            totals.prompt_tokens_saved += r.prompt_tokens;
            totals.completion_tokens_saved += r.completion_tokens;
            totals.cost_saved_usd += r.cost_usd;
            // A use refreshes the LRU position; a TTL still counts from when it was stored.
            if lru && let Some((_, last)) = stored.get_mut(&r.prompt) {
                *last = seq;
                uses.push_back((seq, r.prompt));
            }
            continue;
        }
        if !r.cacheable {
            continue;
        }
        stored.insert(r.prompt, (r.ts_us, seq));
        let Policy::Lru { entries } = policy else {
            continue;
        };
        uses.push_back((seq, r.prompt));
        if stored.len() as u64 > entries {
            while let Some((at, prompt)) = uses.pop_front() {
                if stored.get(&prompt).is_some_and(|&(_, last)| last == at) {
                    stored.remove(&prompt);
                    break;
                }
            }
        }
        if uses.len() > 2 * stored.len() + 1024 {
            uses.retain(|(at, prompt)| stored.get(prompt).is_some_and(|&(_, last)| last == *at));
        }
    }
    (totals, hit)
}
