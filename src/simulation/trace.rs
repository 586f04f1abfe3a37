//! Request traces replayed by the simulator.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};

use super::rng::{Rng, hash64};
use crate::{Error, Result};

/// One request of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// Arrival time in seconds from the start of the trace.
    pub arrival_s: f64,
    pub prompt_tokens: u32,
    /// Tokens to generate (the observed output length; with `ignore_eos`, `max_tokens`).
    pub output_tokens: u32,
    /// One hash per full KV block of the prompt, Mooncake-style chain (hash `i` identifies the whole
    /// prefix up to block `i`). May be empty (no prefix-cache hits possible).
    #[serde(default)]
    pub prefix_hashes: Vec<u64>,
    /// Prompt tokens the real system served from its prefix cache (observed, informational only).
    #[serde(default)]
    pub cached_tokens: u32,
    #[serde(default)]
    pub session_id: Option<u64>,
    /// Workload class id (0 if unknown); selects e.g. the speculative acceptance rate.
    #[serde(default)]
    pub class: u16,
}

impl TraceRequest {
    pub fn new(arrival_s: f64, prompt_tokens: u32, output_tokens: u32) -> TraceRequest {
        TraceRequest {
            arrival_s,
            prompt_tokens,
            output_tokens,
            prefix_hashes: Vec::new(),
            cached_tokens: 0,
            session_id: None,
            class: 0,
        }
    }
}

/// A trace sorted by arrival time (stable: equal arrivals keep their input order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Trace(Vec<TraceRequest>);

impl Trace {
    /// Validates (finite, non-negative arrivals; at least one prompt and one output token) and sorts.
    pub fn new(mut requests: Vec<TraceRequest>) -> Result<Trace> {
        for (i, r) in requests.iter().enumerate() {
            if !r.arrival_s.is_finite() || r.arrival_s < 0.0 {
                return Err(Error::Simulation(format!(
                    "trace request {i}: arrival_s must be finite and >= 0, got {}",
                    r.arrival_s
                )));
            }
            if r.prompt_tokens == 0 || r.output_tokens == 0 {
                return Err(Error::Simulation(format!(
                    "trace request {i}: prompt_tokens and output_tokens must be >= 1"
                )));
            }
        }
        requests.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        Ok(Trace(requests))
    }

    pub fn requests(&self) -> &[TraceRequest] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_inner(self) -> Vec<TraceRequest> {
        self.0
    }

    /// A Poisson-arrival trace of `n` requests at `rate` per second; `lengths` draws (prompt, output)
    /// from the same seeded generator.
    pub fn poisson(
        n: usize,
        rate: f64,
        seed: u64,
        mut lengths: impl FnMut(&mut Rng) -> (u32, u32),
    ) -> Trace {
        let mut rng = Rng::new(seed, 0x0074_7261_6365);
        let mut t = 0.0;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            t += rng.exp(rate);
            let (p, o) = lengths(&mut rng);
            v.push(TraceRequest::new(t, p.max(1), o.max(1)));
        }
        Trace(v)
    }
}

impl Trace {
    /// The trace of a `requests` table (contract columns): arrivals relative to the first request,
    /// outputs of at least one token (a request that produced none still cost its prefill), and the
    /// prompt's reusable prefix as one hash per full KV block of `block_size` tokens. A Mooncake chain
    /// (`prefix_block_hashes` of `prefix_block_tokens`-token blocks) or a shared prefix
    /// (`prefix_hash` + `prefix_tokens`) both map onto the engine's blocks: engine block `i` inherits
    /// the id of the source block that contains its last token, mixed with `i`.
    pub fn from_requests(batches: &[RecordBatch], block_size: u32) -> Result<Trace> {
        let block = u64::from(block_size.max(1));
        let mut requests = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        let mut first_ts = i64::MAX;
        for batch in batches {
            let col = |name: &str| {
                batch.column_by_name(name).ok_or_else(|| {
                    Error::Simulation(format!("trace batch lacks the `{name}` column"))
                })
            };
            let ts = col("ts")?.as_primitive::<TimestampMicrosecondType>();
            let prompt = col("prompt_tokens")?.as_primitive::<Int64Type>();
            let output = col("completion_tokens")?.as_primitive::<Int64Type>();
            let cached = col("cached_tokens")?.as_primitive::<Int64Type>();
            let session = col("session_id")?.as_string::<i32>();
            let prefix_hash = col("prefix_hash")?.as_string::<i32>();
            let prefix_tokens = col("prefix_tokens")?.as_primitive::<Int64Type>();
            let chains = col("prefix_block_hashes")?.as_list::<i32>();
            let chain_block = col("prefix_block_tokens")?.as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                let prompt_tokens = prompt.value(row).clamp(1, i64::from(u32::MAX)) as u32;
                let full_blocks = u64::from(prompt_tokens) / block;
                let mut hashes = Vec::new();
                if chains.is_valid(row) && chain_block.is_valid(row) && chain_block.value(row) > 0 {
                    let ids = chains.value(row);
                    let ids = ids.as_primitive::<Int64Type>();
                    let source = chain_block.value(row) as u64;
                    for i in 0..full_blocks {
                        let Some(j) = usize::try_from(((i + 1) * block - 1) / source)
                            .ok()
                            .filter(|&j| j < ids.len())
                        else {
                            break;
                        };
                        hashes.push(hash64(ids.value(j) as u64 ^ hash64(i)));
                    }
                } else if prefix_hash.is_valid(row) && prefix_tokens.is_valid(row) {
                    let id = crate::hash::stable_hash64(prefix_hash.value(row));
                    let shared = (prefix_tokens.value(row).max(0) as u64 / block).min(full_blocks);
                    hashes.extend((0..shared).map(|i| hash64(id ^ hash64(i))));
                }
                first_ts = first_ts.min(ts.value(row));
                requests.push((
                    ts.value(row),
                    TraceRequest {
                        arrival_s: 0.0,
                        prompt_tokens,
                        output_tokens: output.value(row).clamp(1, i64::from(u32::MAX)) as u32,
                        prefix_hashes: hashes,
                        cached_tokens: if cached.is_valid(row) {
                            cached.value(row).max(0) as u32
                        } else {
                            0
                        },
                        session_id: session
                            .is_valid(row)
                            .then(|| crate::hash::stable_hash64(session.value(row))),
                        class: 0,
                    },
                ));
            }
        }
        Trace::new(
            requests
                .into_iter()
                .map(|(ts, mut r)| {
                    r.arrival_s = (ts - first_ts) as f64 / 1e6;
                    r
                })
                .collect(),
        )
    }
}
