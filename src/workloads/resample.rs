//! Synthetic traces at a target load that keep the observed workload: a moving-block bootstrap of
//! the observed trace with time rescaled.
//!
//! The observed trace is a sequence of (inter-arrival gap, request) pairs. The resampler draws
//! blocks of `block_len` consecutive pairs at seeded random offsets and concatenates them, with
//! every gap multiplied by observed rate ÷ target rate. Hence:
//! - the class mix and the length distributions are those of the observed requests (each output
//!   request is a copy of an observed one, class tag included);
//! - the inter-arrival CV is scale-free, so rescaling keeps it, and blocks keep short-range bursts
//!   (and with them the Fano factor at scales below a block) and the interleaving of classes;
//! - prefix structure is kept: copies keep their prefix hashes, so requests that shared a prefix
//!   still do; session ids are re-keyed per block copy so two copies of a session stay two sessions.
//!
//! Not kept: structure longer than a block (the diurnal cycle) — pick the source window (e.g. the
//! peak hour) to set it, and the target rate (e.g. [`peak_hour_rate`] × growth) to scale it.

use crate::rng::{Rng, hash64};
use crate::simulation::trace::{Trace, TraceRequest};
use crate::{Error, Result};

/// Target of a resampled trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResampleSpec {
    /// Mean arrivals per second of the output.
    pub rate_per_s: f64,
    /// Length of the output in seconds.
    pub duration_s: f64,
    /// Consecutive observed requests copied together (≥ 1); 64 keeps bursts of a few seconds to
    /// minutes for typical rates.
    pub block_len: usize,
}

/// The highest number of arrivals in any hour of `trace` (hours counted from its first arrival), per
/// second; for a trace shorter than an hour, its mean rate.
pub fn peak_hour_rate(trace: &Trace) -> f64 {
    let r = trace.requests();
    let (Some(first), Some(last)) = (r.first(), r.last()) else {
        return 0.0;
    };
    let span = last.arrival_s - first.arrival_s;
    if span < 3600.0 {
        return if span > 0.0 {
            (r.len() - 1) as f64 / span
        } else {
            0.0
        };
    }
    let mut counts = vec![0u64; (span / 3600.0) as usize + 1];
    for q in r {
        counts[((q.arrival_s - first.arrival_s) / 3600.0) as usize] += 1;
    }
    // The last, partial hour is not a full hour's count.
    counts.pop();
    counts.into_iter().max().unwrap_or(0) as f64 / 3600.0
}

/// Resamples `observed` to `spec` with draws from `seed` (derive it from the run seed and the
/// scenario so scenarios differ and reruns agree).
pub fn resample(observed: &Trace, spec: &ResampleSpec, seed: u64) -> Result<Trace> {
    let r = observed.requests();
    let bad = |m: String| Err(Error::Simulation(format!("resample: {m}")));
    if r.len() < 2 {
        return bad(format!(
            "needs at least 2 observed requests, got {}",
            r.len()
        ));
    }
    let span = r[r.len() - 1].arrival_s - r[0].arrival_s;
    if span <= 0.0 {
        return bad("observed arrivals span no time".into());
    }
    if !(spec.rate_per_s.is_finite() && spec.rate_per_s > 0.0) {
        return bad(format!("rate_per_s must be > 0, got {}", spec.rate_per_s));
    }
    if !(spec.duration_s.is_finite() && spec.duration_s > 0.0) {
        return bad(format!("duration_s must be > 0, got {}", spec.duration_s));
    }
    let pairs = r.len() - 1;
    let block = spec.block_len.clamp(1, pairs);
    let scale = (pairs as f64 / span) / spec.rate_per_s;
    let expected = spec.rate_per_s * spec.duration_s;
    if expected > 1e9 {
        return bad(format!("{expected:.0} requests requested; at most 1e9"));
    }
    let mut rng = Rng::new(seed, 0x7265_7361_6d70);
    let mut out = Vec::with_capacity(expected as usize + block);
    let mut t = 0.0;
    let mut copy = 0u64;
    'fill: loop {
        let start = rng.below((pairs - block + 1) as u64) as usize;
        copy += 1;
        for j in start..start + block {
            t += (r[j + 1].arrival_s - r[j].arrival_s) * scale;
            if t >= spec.duration_s {
                break 'fill;
            }
            let mut q: TraceRequest = r[j + 1].clone();
            q.arrival_s = t;
            q.session_id = q.session_id.map(|s| hash64(s ^ hash64(copy)));
            out.push(q);
        }
    }
    Trace::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_specs_are_errors_not_panics() {
        let one = Trace::new(vec![TraceRequest::new(0.0, 1, 1)]).unwrap();
        let spec = ResampleSpec {
            rate_per_s: 1.0,
            duration_s: 10.0,
            block_len: 8,
        };
        assert!(resample(&one, &spec, 1).is_err());
        let two = Trace::new(vec![
            TraceRequest::new(0.0, 1, 1),
            TraceRequest::new(1.0, 2, 2),
        ])
        .unwrap();
        assert!(
            resample(
                &two,
                &ResampleSpec {
                    rate_per_s: f64::NAN,
                    ..spec
                },
                1
            )
            .is_err()
        );
        let t = resample(&two, &spec, 1).unwrap();
        assert_eq!(t.len(), 9);
        assert_eq!(peak_hour_rate(&two), 1.0);
    }
}
