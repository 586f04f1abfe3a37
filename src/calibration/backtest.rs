//! The backtest: replay what a supply served through the simulator with its current config and the
//! calibrated model, and compare the latency percentiles with what was measured. The relative errors
//! are the model's error on this fleet's own data; the search must not recommend a change whose
//! predicted gain is smaller.

use serde::Serialize;

use crate::error::Result;
use crate::simulation::{Deployment, Percentiles, SimOptions, Trace, simulate};

/// Predicted vs observed percentiles of one latency metric (ms) and the relative errors (%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricError {
    pub observed_p50: f64,
    pub predicted_p50: f64,
    pub observed_p95: f64,
    pub predicted_p95: f64,
    pub error_p50_pct: f64,
    pub error_p95_pct: f64,
}

impl MetricError {
    /// Compares `predicted` with the percentiles of `observed` (reordered in place; NaNs dropped).
    pub fn new(observed: &mut Vec<f64>, predicted: &Percentiles) -> MetricError {
        observed.retain(|x| x.is_finite());
        let o = Percentiles::from_values(observed);
        let err = |p: f64, o: f64| {
            if o > 0.0 {
                100.0 * (p / o - 1.0)
            } else {
                f64::NAN
            }
        };
        MetricError {
            observed_p50: o.p50,
            predicted_p50: predicted.p50,
            observed_p95: o.p95,
            predicted_p95: predicted.p95,
            error_p50_pct: err(predicted.p50, o.p50),
            error_p95_pct: err(predicted.p95, o.p95),
        }
    }
}

/// Measured latencies of the replayed requests, ms.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub ttft_ms: Vec<f64>,
    pub tpot_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
}

/// Backtest result of one supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    pub requests: usize,
    pub ttft: MetricError,
    pub tpot: MetricError,
    pub e2e: MetricError,
}

/// Replays `trace` on `deployment` (whose step model and frontend time are the calibrated ones).
pub fn run(
    deployment: &Deployment,
    trace: &Trace,
    mut observed: Observed,
    seed: u64,
) -> Result<Backtest> {
    let report = simulate(
        deployment,
        trace,
        &SimOptions {
            seed,
            ..SimOptions::default()
        },
    )?;
    Ok(Backtest {
        requests: trace.len(),
        ttft: MetricError::new(&mut observed.ttft_ms, &report.ttft_ms),
        tpot: MetricError::new(&mut observed.tpot_ms, &report.tpot_ms),
        e2e: MetricError::new(&mut observed.e2e_ms, &report.e2e_ms),
    })
}
