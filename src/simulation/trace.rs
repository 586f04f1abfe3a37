//! Request traces replayed by the simulator.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
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
    /// Prompt tokens whose KV arrives from another instance instead of being computed (a decode
    /// instance of a disaggregated deployment); 0 for ordinary requests.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preloaded_tokens: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
            preloaded_tokens: 0,
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
