//! Predicted impact: baseline and choice re-simulated on the window with per-request results, and
//! paired bootstrap intervals over its days (hours when it has fewer than 3 days).

use std::collections::BTreeMap;

use super::{LatencyProfile, PredictedImpact, RecommendInput};
use crate::error::{Error, Result};
use crate::hash::stable_hash64;
use crate::knobs::ServingConfig;
use crate::rng::Rng;
use crate::search::ScenarioKind;
use crate::simulation::{Percentiles, RequestResult, RequestStatus};

/// Bootstrap resamples.
const RESAMPLES: usize = 400;

/// Per-request figures of one configuration on the window.
pub(super) struct Outcomes {
    results: Vec<RequestResult>,
    gpus: f64,
    cost_per_hour: f64,
}

impl Outcomes {
    /// `config` simulated on the supply's window with per-request results.
    pub(super) fn simulate(input: &RecommendInput, config: &ServingConfig) -> Result<Outcomes> {
        let report = input
            .evaluator
            .simulate(config, ScenarioKind::Window, true)?
            .ok_or_else(|| {
                Error::Internal(format!("supply {} has no window scenario", input.supply.id))
            })?;
        let d = input.evaluator.deployment(config)?;
        Ok(Outcomes {
            results: report.per_request.unwrap_or_default(),
            gpus: config.gpus() as f64,
            cost_per_hour: config.gpus() as f64 * d.price_per_gpu_hour,
        })
    }

    /// TTFT and TPOT of the finished requests at each percent 1..=99 (what the report draws).
    pub(super) fn profile(&self) -> LatencyProfile {
        let mut ttft = Vec::new();
        let mut tpot = Vec::new();
        for r in self
            .results
            .iter()
            .filter(|r| r.status == RequestStatus::Finished)
        {
            ttft.push(r.ttft_ms);
            if r.tpot_ms.is_finite() {
                tpot.push(r.tpot_ms);
            }
        }
        LatencyProfile {
            ttft_ms: percents(&mut ttft),
            tpot_ms: percents(&mut tpot),
        }
    }
}

/// Nearest-rank percentiles 1..=99 of `v`; empty when `v` is.
fn percents(v: &mut [f64]) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return Vec::new();
    }
    (1..=99)
        .map(|p| v[(p * v.len()).div_ceil(100).saturating_sub(1)])
        .collect()
}

/// Predicted impact of `new` against the baseline `base`, with paired bootstrap intervals.
pub(super) fn impact(
    input: &RecommendInput,
    chosen: &ServingConfig,
    base: &Outcomes,
    new: &Outcomes,
) -> Result<PredictedImpact> {
    let scenarios = input
        .evaluator
        .scenarios(chosen.block_size)
        .ok_or_else(|| {
            Error::Internal(format!(
                "no scenarios for block size {} of supply {}",
                chosen.block_size, input.supply.id
            ))
        })?;
    let trace = &scenarios.window;
    let clock = &scenarios.window_clock_s;
    let days = clock
        .iter()
        .map(|s| (s / 86_400.0) as u32)
        .max()
        .unwrap_or(0)
        + 1;
    let unit = if days >= 3 { 86_400.0 } else { 3_600.0 };
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, s) in clock.iter().enumerate() {
        groups.entry((s / unit) as u32).or_default().push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let cost = (new.cost_per_hour / base.cost_per_hour - 1.0) * 100.0;
    let figures = |picked: &mut dyn Iterator<Item = usize>| -> [f64; 4] {
        let mut v: [[Vec<f64>; 2]; 3] = Default::default();
        let mut tokens = [0.0f64; 2];
        for i in picked {
            for (k, o) in [base, new].into_iter().enumerate() {
                let r = &o.results[i];
                if r.status != RequestStatus::Finished {
                    continue;
                }
                v[0][k].push(r.e2e_ms);
                v[1][k].push(r.ttft_ms);
                if r.tpot_ms.is_finite() {
                    v[2][k].push(r.tpot_ms);
                }
                tokens[k] += trace.requests()[i].output_tokens as f64;
            }
        }
        // Nearest-rank, as the simulator reports it; NaN without a finished request.
        let p95 = |v: &mut Vec<f64>| {
            if v.is_empty() {
                f64::NAN
            } else {
                Percentiles::from_values(v).p95
            }
        };
        let change = |pair: &mut [Vec<f64>; 2]| {
            let [a, b] = pair;
            (p95(b) / p95(a) - 1.0) * 100.0
        };
        [
            change(&mut v[0]),
            change(&mut v[1]),
            change(&mut v[2]),
            ((tokens[1] / new.gpus) / (tokens[0] / base.gpus) - 1.0) * 100.0,
        ]
    };
    let point = figures(&mut (0..trace.len()));
    let mut rng = Rng::new(
        input.seed,
        stable_hash64(&format!("{}/bootstrap", input.supply.id)),
    );
    let mut draws: [Vec<f64>; 4] = Default::default();
    for _ in 0..RESAMPLES {
        let picks: Vec<usize> = (0..groups.len())
            .flat_map(|_| {
                groups[rng.below(groups.len() as u64) as usize]
                    .iter()
                    .copied()
            })
            .collect();
        let f = figures(&mut picks.into_iter());
        for (d, x) in draws.iter_mut().zip(f) {
            if x.is_finite() {
                d.push(x);
            }
        }
    }
    let [cost_name, names @ ..] = PredictedImpact::FIGURES;
    let mut intervals = BTreeMap::from([(cost_name.to_string(), [cost, cost])]);
    for (name, mut d) in names.into_iter().zip(draws) {
        if !d.is_empty() {
            d.sort_by(f64::total_cmp);
            let at = |q: f64| d[((q * (d.len() - 1) as f64).round()) as usize];
            intervals.insert(name.to_string(), [at(0.025), at(0.975)]);
        }
    }
    Ok(PredictedImpact {
        cost_change_percent: cost,
        p95_latency_change_percent: point[0],
        p95_ttft_change_percent: point[1],
        p95_tpot_change_percent: point[2],
        throughput_change_percent: point[3],
        confidence_intervals: intervals,
    })
}
