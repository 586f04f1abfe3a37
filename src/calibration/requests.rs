//! Calibrating the step model from request logs alone (no engine telemetry): every request's decode
//! phase is a window in which we know its own per-token time and, from the other requests' logged
//! timestamps, how many sequences were decoding beside it and how many prompt tokens were prefilled
//! in the meantime.
//!
//! With chunked prefill a prompt chunk rides in the same engine step as the decodes, so a request
//! that generates T tokens (T − 1 decode steps) while P prompt tokens of other requests are prefilled
//! and n sequences run on average spends D = (T − 1)·(α + β·n) + γ·P. Divided by T − 1 this is linear
//! in (α, β, γ): per-token time = α + β·n + γ·P/(T − 1). Fitting it this way keeps prefill
//! interference out of α and β, which the simulator would otherwise count twice (once in the
//! coefficients and again through γ when it co-schedules prefill chunks).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use serde::Serialize;

use super::EngineCoefficients;
use super::fit::{FitOptions, LinearFit, Prior, fit_linear};
use crate::error::{Error, Result};

/// One finished request's logged timing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RequestTiming {
    pub arrival_ms: f64,
    pub ttft_ms: f64,
    pub e2e_ms: f64,
    pub prompt_tokens: f64,
    pub output_tokens: f64,
}

/// The logged timing of every request of a `requests` table (contract columns) in arrival order,
/// the order of its simulated trace: `None` where the request did not succeed or has no TTFT/E2E.
pub fn timings(batches: &[RecordBatch]) -> Result<Vec<Option<RequestTiming>>> {
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for b in batches {
        let col = |n: &str| {
            b.column_by_name(n)
                .ok_or_else(|| Error::Calibration(format!("requests lack `{n}`")))
        };
        let ts = col("ts")?.as_primitive::<TimestampMicrosecondType>();
        let ttft = col("ttft_ms")?.as_primitive::<Float64Type>();
        let e2e = col("e2e_ms")?.as_primitive::<Float64Type>();
        let prompt = col("prompt_tokens")?.as_primitive::<Int64Type>();
        let output = col("completion_tokens")?.as_primitive::<Int64Type>();
        let status = col("status")?.as_string::<i32>();
        for i in 0..b.num_rows() {
            let ok = (!status.is_valid(i) || status.value(i) == "ok")
                && ttft.is_valid(i)
                && e2e.is_valid(i);
            rows.push((
                ts.value(i),
                ok.then(|| RequestTiming {
                    arrival_ms: 0.0,
                    ttft_ms: ttft.value(i),
                    e2e_ms: e2e.value(i),
                    prompt_tokens: prompt.value(i) as f64,
                    output_tokens: output.value(i) as f64,
                }),
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    let first = rows.first().map_or(0, |r| r.0);
    Ok(rows
        .into_iter()
        .map(|(ts, t)| {
            t.map(|t| RequestTiming {
                arrival_ms: (ts - first) as f64 / 1e3,
                ..t
            })
        })
        .collect())
}

/// The regressors and response of one request's decode phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DecodeSample {
    /// (E2E − TTFT) / (output − 1), ms.
    pub per_token_ms: f64,
    /// Time-averaged number of requests in their decode phase during this one's (itself included).
    pub batch: f64,
    /// Prompt tokens of other requests whose first token fell inside this decode phase, per decode
    /// step of this request.
    pub prefill_tokens_per_step: f64,
}

/// Builds the decode samples of `requests` (those with at least two output tokens and a positive
/// decode duration). O(N log N).
pub fn decode_samples(requests: &[RequestTiming]) -> Vec<DecodeSample> {
    let phases: Vec<(f64, f64)> = requests
        .iter()
        .map(|r| (r.arrival_ms + r.ttft_ms, r.arrival_ms + r.e2e_ms))
        .collect();
    // n(t): +1 at each decode start, −1 at each end; its integral at the event times.
    let mut events: Vec<(f64, f64)> = phases
        .iter()
        .filter(|(s, e)| e > s)
        .flat_map(|&(s, e)| [(s, 1.0), (e, -1.0)])
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut times = Vec::with_capacity(events.len());
    let mut integral = Vec::with_capacity(events.len());
    let mut level_after = Vec::with_capacity(events.len());
    let (mut acc, mut level, mut last) = (0.0, 0.0, f64::NEG_INFINITY);
    for &(t, d) in &events {
        if last.is_finite() {
            acc += level * (t - last);
        }
        level += d;
        last = t;
        times.push(t);
        integral.push(acc);
        level_after.push(level);
    }
    let area_to = |t: f64| {
        // Last event at or before t.
        let i = times.partition_point(|&x| x <= t);
        if i == 0 {
            0.0
        } else {
            integral[i - 1] + level_after[i - 1] * (t - times[i - 1])
        }
    };
    // First-token times with cumulative prompt tokens, for the prefill sums.
    let mut firsts: Vec<(f64, f64)> = requests
        .iter()
        .map(|r| (r.arrival_ms + r.ttft_ms, r.prompt_tokens))
        .collect();
    firsts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cum = Vec::with_capacity(firsts.len() + 1);
    cum.push(0.0);
    for &(_, p) in &firsts {
        cum.push(cum.last().copied().unwrap_or(0.0) + p);
    }
    // Prompt tokens whose first token fell strictly inside (s, e): the request's own is at s.
    let prompts_within = |s: f64, e: f64| {
        cum[firsts.partition_point(|x| x.0 < e)] - cum[firsts.partition_point(|x| x.0 <= s)]
    };
    requests
        .iter()
        .zip(&phases)
        .filter(|(r, (s, e))| r.output_tokens >= 2.0 && e > s && s.is_finite() && e.is_finite())
        .map(|(r, &(s, e))| {
            let steps = r.output_tokens - 1.0;
            DecodeSample {
                per_token_ms: (e - s) / steps,
                batch: (area_to(e) - area_to(s)) / (e - s),
                prefill_tokens_per_step: prompts_within(s, e).max(0.0) / steps,
            }
        })
        .collect()
}

/// Fits per-token decode time = α + β·batch + γ·prefill tokens per step over `samples`, with the
/// prior's α, β and prefill γ (relative sd `prior_rel_sd`). Coefficients come back in that order;
/// γ is constrained to be non-negative.
pub fn fit_step_model(
    samples: &[DecodeSample],
    prior: &EngineCoefficients,
    prior_rel_sd: f64,
    options: &FitOptions,
) -> Result<LinearFit> {
    let rows: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| vec![1.0, s.batch, s.prefill_tokens_per_step])
        .collect();
    let y: Vec<f64> = samples.iter().map(|s| s.per_token_ms).collect();
    let priors = [prior.alpha_ms, prior.beta_ms, prior.prefill_ms_per_token]
        .map(|mean| Prior::relative(mean, prior_rel_sd));
    let weights = vec![1.0; y.len()];
    let mut fit = fit_linear(&rows, &y, &weights, &priors, options)?;
    // A step cost cannot be negative: when the unconstrained optimum has γ < 0, the constrained
    // (γ ≥ 0) least-squares optimum lies on the boundary, γ = 0, with α and β refitted. (Pinning γ
    // to the roofline instead was tried and is worse: vLLM's chunked prefill interferes with decode
    // far less than the roofline's FLOP count says.)
    if fit.coefficients[2].value < 0.0 {
        let mut pinned = priors;
        pinned[2] = Prior {
            mean: 0.0,
            sd: 1e-12,
        };
        fit = fit_linear(&rows, &y, &weights, &pinned, options)?;
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_and_prefill_are_reconstructed_from_timestamps() {
        // Two requests decode over [10, 110] and [60, 160]; a third's first token lands at 80.
        let r = |arrival_ms, ttft_ms, e2e_ms, prompt_tokens| RequestTiming {
            arrival_ms,
            ttft_ms,
            e2e_ms,
            prompt_tokens,
            output_tokens: 11.0,
        };
        let s = decode_samples(&[
            r(0.0, 10.0, 110.0, 100.0),
            r(50.0, 10.0, 110.0, 200.0),
            r(70.0, 10.0, 10.5, 300.0),
        ]);
        assert_eq!(s.len(), 3);
        // First: alone for 50 ms, with the second for 50 ms (the third's 0.5 ms too).
        assert!(
            (s[0].batch - (50.0 + 2.0 * 50.0 + 0.5) / 100.0).abs() < 1e-9,
            "{s:?}"
        );
        // Prefills inside [10, 110]: the second's (60) and the third's (80).
        assert!((s[0].prefill_tokens_per_step - 500.0 / 10.0).abs() < 1e-9);
        assert!((s[0].per_token_ms - 10.0).abs() < 1e-12);
    }
}
