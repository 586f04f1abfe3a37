//! The traffic every candidate is simulated on: the whole window and its peak hour, both at the
//! supply's planned growth, plus the sample of the window that successive halving screens on.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::simulation::{Trace, TraceRequest};
use crate::workloads::Traffic;
use crate::workloads::resample::{ResampleSpec, resample};

/// Most requests in a peak-hour scenario: at high rates it covers less than an hour, which is
/// still thousands of arrivals at the peak rate (enough for a p95) and bounds the cost per candidate.
pub const MAX_PEAK_REQUESTS: usize = 20_000;
/// Successive halving screens every candidate on one time slice in this many.
pub const SAMPLE_STRIDE: usize = 8;
/// Length of those slices: 15 minutes, or 1/64 of a shorter trace.
const SLICE_S: f64 = 900.0;

/// Which traffic a simulation replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// The whole window, arrivals compressed by the growth factor.
    Window,
    /// Every [`SAMPLE_STRIDE`]-th slice of the window (screening only).
    Sample,
    /// The busiest hour, resampled at its rate × growth (class mix, burstiness and prefixes kept).
    Peak,
}

impl ScenarioKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Window => "window",
            ScenarioKind::Sample => "sample",
            ScenarioKind::Peak => "peak",
        }
    }
}

/// The traces for one KV block size (prefix hashes depend on it).
#[derive(Debug, Clone)]
pub struct Scenarios {
    pub window: Trace,
    pub sample: Trace,
    pub peak: Option<Trace>,
    /// Observed arrival of each request of `window`, seconds from the window start (for grouping
    /// requests by day in the bootstrap).
    pub window_clock_s: Vec<f64>,
}

impl Scenarios {
    /// Builds the scenarios of `traffic` at `growth`, drawing the peak resample from `seed`.
    pub fn build(traffic: &Traffic, block_size: u32, growth: f64, seed: u64) -> Result<Scenarios> {
        let observed = traffic.trace(block_size)?;
        let window_clock_s = observed
            .requests()
            .iter()
            .map(|r| traffic.offset_s + r.arrival_s)
            .collect();
        let compressed = |reqs: Vec<TraceRequest>| {
            Trace::new(
                reqs.into_iter()
                    .map(|mut r| {
                        r.arrival_s /= growth;
                        r
                    })
                    .collect(),
            )
        };
        let window = compressed(observed.requests().to_vec())?;
        let sample = compressed(sample_slices(&observed))?;
        let peak = match busiest_hour(&observed) {
            Some(hour) if hour.len() >= 2 && hour[hour.len() - 1].arrival_s > hour[0].arrival_s => {
                let span = hour[hour.len() - 1].arrival_s - hour[0].arrival_s;
                let rate = (hour.len() - 1) as f64 / span * growth;
                let duration_s = 3600.0f64.min(MAX_PEAK_REQUESTS as f64 / rate);
                Some(resample(
                    &Trace::new(hour)?,
                    &ResampleSpec {
                        rate_per_s: rate,
                        duration_s,
                        block_len: 64,
                    },
                    seed,
                )?)
            }
            _ => None,
        };
        Ok(Scenarios {
            window,
            sample,
            peak,
            window_clock_s,
        })
    }

    pub fn trace(&self, kind: ScenarioKind) -> Option<&Trace> {
        match kind {
            ScenarioKind::Window => Some(&self.window),
            ScenarioKind::Sample => Some(&self.sample),
            ScenarioKind::Peak => self.peak.as_ref(),
        }
    }
}

/// Every [`SAMPLE_STRIDE`]-th time slice of `trace` (the first one included), arrivals unchanged:
/// the system drains between slices, as it would between quiet periods.
fn sample_slices(trace: &Trace) -> Vec<TraceRequest> {
    let r = trace.requests();
    let span = r.last().map_or(0.0, |q| q.arrival_s);
    let slice = SLICE_S.min(span / 64.0).max(1e-9);
    r.iter()
        .filter(|q| ((q.arrival_s / slice) as usize).is_multiple_of(SAMPLE_STRIDE))
        .cloned()
        .collect()
}

/// The requests of the clock hour (from the first arrival) with the most arrivals.
fn busiest_hour(trace: &Trace) -> Option<Vec<TraceRequest>> {
    let mut hours: BTreeMap<u64, Vec<TraceRequest>> = BTreeMap::new();
    for r in trace.requests() {
        hours
            .entry((r.arrival_s / 3600.0) as u64)
            .or_default()
            .push(r.clone());
    }
    let (_, busiest) = hours
        .into_iter()
        .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(&a.0)))?;
    Some(busiest)
}
