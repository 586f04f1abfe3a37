//! The capacity plan's simulations (seed 003): what one replica sustains under the SLOs, and how
//! many replicas each hour of the window needs, checked hour by hour.
//!
//! **Capacity.** The peak-hour scenario (the window's when it has none) is replayed on one replica
//! with its arrivals compressed by a factor m; the largest m meeting the SLO targets and error
//! budget, found by bisection on log m in [1/256, 256] ([`BISECTION_STEPS`] steps), gives the
//! sustainable rate: m × the scenario's rate. The traffic keeps its class mix and burstiness.
//!
//! **Plan.** Hour h needs ⌈demand_h × (1 + headroom) ÷ capacity⌉ replicas, at least one (an LLM
//! replica takes minutes to start, so the fleet never scales to zero) and within the supply's
//! `bounds` on replicas; headroom is the model's backtest error. Each hour is replayed from an empty
//! engine and without replica start-up time, so the verdict is optimistic about hour boundaries. Each hour's requests are then replayed on its replicas, so the verdict is a
//! simulation, not an extrapolation: the plan holds when the window's requests, so replayed, meet
//! the SLO targets and error budget (the search's criterion); each hour's own verdict is kept too,
//! though an hour's p95 over a few dozen requests is noisy.

use serde::Serialize;

use super::{Evaluator, Metrics, ScenarioKind};
use crate::error::Result;
use crate::knobs::ServingConfig;
use crate::simulation::{Percentiles, RequestStatus, Trace, TraceRequest};

/// Bisection steps on log m (2^(16/2^12) ≈ 0.3 % precision over a 65,536× range).
pub const BISECTION_STEPS: usize = 12;
const HOUR_S: f64 = 3600.0;

/// What one replica sustains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplicaCapacity {
    /// Arrivals per second one replica serves within the SLOs.
    pub requests_per_s: f64,
    /// Requests in that replica (running or waiting, time-averaged) at that rate: the autoscaler's
    /// per-replica target.
    pub concurrency_per_replica: f64,
}

/// One hour of the window, planned and simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourPlan {
    /// Hours since the window start.
    pub hour: u32,
    /// Requests observed in the hour (replayed at the supply's planned growth).
    pub requests: u64,
    pub replicas: u32,
    /// Simulated on those replicas (None for an hour without requests).
    pub metrics: Option<Metrics>,
    pub slo_met: bool,
}

/// The replicas each hour needs, for one configuration of one supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourlyPlan {
    pub config: ServingConfig,
    pub capacity: ReplicaCapacity,
    pub headroom: f64,
    pub hours: Vec<HourPlan>,
    /// All hours' requests together, as replayed.
    pub window: WindowVerdict,
}

/// The window's requests replayed hour by hour on the plan's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowVerdict {
    pub ttft_p95_ms: f64,
    pub tpot_p95_ms: f64,
    pub failed_share: f64,
    pub slo_met: bool,
}

/// One replica of `config`: the largest compression of the peak scenario it serves within the
/// SLOs; None when it misses them even at 1/256 of the peak rate, or when `config` disaggregates
/// prefill and decode (one replica is not a deployment then; the search sized it whole).
pub fn replica_capacity(
    evaluator: &Evaluator,
    config: &ServingConfig,
) -> Result<Option<ReplicaCapacity>> {
    if config.pd_disaggregation.is_some() {
        return Ok(None);
    }
    let one = ServingConfig {
        replicas: 1,
        ..config.clone()
    };
    let Some(scenarios) = evaluator.scenarios(config.block_size) else {
        return Ok(None);
    };
    let base = scenarios.peak.as_ref().unwrap_or(&scenarios.window);
    let Some(span) = span_s(base) else {
        return Ok(None);
    };
    let rate = base.len() as f64 / span;
    let at = |log2_m: f64| -> Result<(bool, f64)> {
        let m = log2_m.exp2();
        let trace = compressed(base, m)?;
        let report = evaluator.simulate_trace(
            &one,
            &trace,
            &format!("capacity/{}", ScenarioKind::Peak.as_str()),
            false,
        )?;
        Ok((
            evaluator.meets_slo(&Metrics::of(&report)),
            report.mean_in_system,
        ))
    };
    let (mut lo, mut hi) = (-8.0, 8.0);
    let (ok, mut waiting) = at(lo)?;
    if !ok {
        return Ok(None);
    }
    let (ok_at_top, at_top) = at(hi)?;
    if ok_at_top {
        // Even 256× the peak fits: the bound is what can be claimed.
        lo = hi;
        waiting = at_top;
    }
    for _ in 0..BISECTION_STEPS {
        if lo >= hi {
            break;
        }
        let mid = (lo + hi) / 2.0;
        let (ok, w) = at(mid)?;
        if ok {
            lo = mid;
            waiting = w;
        } else {
            hi = mid;
        }
    }
    Ok(Some(ReplicaCapacity {
        requests_per_s: lo.exp2() * rate,
        concurrency_per_replica: waiting,
    }))
}

/// Plans each of the window's `hours` for `config` at `capacity` with `headroom`, and simulates
/// each hour's requests (the window scenario's, placed by their observed clock) on its replicas.
pub fn hourly_plan(
    evaluator: &Evaluator,
    config: &ServingConfig,
    capacity: ReplicaCapacity,
    headroom: f64,
    hours: u32,
) -> Result<HourlyPlan> {
    let scenarios = evaluator.scenarios(config.block_size).ok_or_else(|| {
        crate::error::Error::Internal("no scenarios for the plan's block size".into())
    })?;
    let options = &evaluator.supply().options;
    let growth = options.growth;
    let [min_replicas, max_replicas] = options
        .bounds
        .get(&crate::knobs::Knob::Replicas)
        .map_or([1.0, f64::from(u32::MAX)], |[lo, hi]| {
            [lo.max(1.0), hi.max(1.0)]
        });
    let mut by_hour: Vec<Vec<TraceRequest>> = vec![Vec::new(); hours as usize];
    for (r, clock) in scenarios
        .window
        .requests()
        .iter()
        .zip(&scenarios.window_clock_s)
    {
        let h = (clock / HOUR_S).floor();
        if h >= 0.0 && (h as usize) < by_hour.len() {
            let mut r = r.clone();
            r.arrival_s = (clock - h * HOUR_S) / growth;
            by_hour[h as usize].push(r);
        }
    }
    let (mut ttft, mut tpot, mut failed, mut n_all) = (Vec::new(), Vec::new(), 0u64, 0u64);
    let plans = by_hour
        .into_iter()
        .enumerate()
        .map(|(h, requests)| {
            let demand = requests.len() as f64 / (HOUR_S / growth);
            let needed = (demand * (1.0 + headroom) / capacity.requests_per_s).ceil();
            let replicas = needed.clamp(min_replicas, max_replicas) as u32;
            let n = requests.len() as u64;
            if requests.is_empty() {
                return Ok(HourPlan {
                    hour: h as u32,
                    requests: 0,
                    replicas,
                    metrics: None,
                    slo_met: true,
                });
            }
            let planned = ServingConfig {
                replicas,
                ..config.clone()
            };
            let report = evaluator.simulate_trace(
                &planned,
                &Trace::new(requests)?,
                &format!("hour/{h}"),
                true,
            )?;
            for r in report.per_request.iter().flatten() {
                n_all += 1;
                match r.status {
                    RequestStatus::Finished => {
                        ttft.push(r.ttft_ms);
                        if r.tpot_ms.is_finite() {
                            tpot.push(r.tpot_ms);
                        }
                    }
                    _ => failed += 1,
                }
            }
            let metrics = Metrics::of(&report);
            Ok(HourPlan {
                hour: h as u32,
                requests: n,
                replicas,
                slo_met: evaluator.meets_slo(&metrics),
                metrics: Some(metrics),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let slo = &evaluator.supply().slo;
    let (ttft_p95_ms, tpot_p95_ms) = (
        Percentiles::from_values(&mut ttft).p95,
        Percentiles::from_values(&mut tpot).p95,
    );
    let failed_share = failed as f64 / n_all.max(1) as f64;
    Ok(HourlyPlan {
        config: config.clone(),
        capacity,
        headroom,
        hours: plans,
        window: WindowVerdict {
            ttft_p95_ms,
            tpot_p95_ms,
            failed_share,
            slo_met: ttft_p95_ms <= slo.p95_ttft_ms
                && tpot_p95_ms <= slo.p95_tpot_ms
                && failed_share <= slo.error_budget,
        },
    })
}

/// Seconds from the first to the last arrival (None for fewer than two distinct arrivals).
fn span_s(trace: &Trace) -> Option<f64> {
    let r = trace.requests();
    let span = r.last()?.arrival_s - r.first()?.arrival_s;
    (span > 0.0).then_some(span)
}

/// `trace` with its arrivals `m` times as dense.
fn compressed(trace: &Trace, m: f64) -> Result<Trace> {
    Trace::new(
        trace
            .requests()
            .iter()
            .map(|r| TraceRequest {
                arrival_s: r.arrival_s / m,
                ..r.clone()
            })
            .collect(),
    )
}
