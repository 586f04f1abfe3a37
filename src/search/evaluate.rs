//! Simulating one configuration on a supply's scenarios and judging it against the SLOs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::space::{self, SearchSpace};
use super::{ScenarioKind, Scenarios, SearchInput};
use crate::calibration::{EngineCoefficients, roofline_prior};
use crate::config::Supply;
use crate::deployment;
use crate::error::{Error, Result};
use crate::hash::stable_hash64;
use crate::knobs::ServingConfig;
use crate::simulation::{Deployment, SimOptions, SimReport, Trace, simulate};

/// Latency and load figures of one simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    pub requests: u64,
    /// Rejected or timed-out requests ÷ requests.
    pub failed_share: f64,
    pub ttft_p50_ms: f64,
    pub ttft_p95_ms: f64,
    pub tpot_p50_ms: f64,
    pub tpot_p95_ms: f64,
    pub e2e_p95_ms: f64,
    pub output_tokens_per_s: f64,
    pub mean_batch: f64,
    pub max_kv_utilization: f64,
    pub preemptions: u64,
    pub prefix_cache_hit_rate: f64,
}

impl Metrics {
    pub(super) fn of(r: &SimReport) -> Metrics {
        Metrics {
            requests: r.requests,
            failed_share: (r.rejected + r.timed_out) as f64 / r.requests.max(1) as f64,
            ttft_p50_ms: r.ttft_ms.p50,
            ttft_p95_ms: r.ttft_ms.p95,
            tpot_p50_ms: r.tpot_ms.p50,
            tpot_p95_ms: r.tpot_ms.p95,
            e2e_p95_ms: r.e2e_ms.p95,
            output_tokens_per_s: r.output_tokens_per_s,
            mean_batch: r.mean_batch,
            max_kv_utilization: r.max_kv_utilization,
            preemptions: r.preemptions,
            prefix_cache_hit_rate: r.prefix_cache_hit_rate,
        }
    }
}

/// Which round produced an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Round {
    Screen,
    Full,
    Baseline,
}

/// One configuration simulated on a set of scenarios.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub config: ServingConfig,
    pub round: Round,
    pub scenarios: Vec<(ScenarioKind, Metrics)>,
    /// GPUs × price per GPU-hour.
    pub cost_per_hour: f64,
    /// Every scenario meets both p95 targets and the error budget.
    pub feasible: bool,
    /// Worst ratio of a figure to its limit over scenarios (≤ 1 when feasible).
    pub slo_ratio: f64,
    /// Worst p95 end-to-end latency over scenarios, ms.
    pub e2e_p95_ms: f64,
    /// No scenario fails more requests than the error budget allows.
    pub within_error_budget: bool,
    /// Requests simulated for this evaluation.
    pub simulated_requests: u64,
}

impl Evaluation {
    pub fn metrics(&self, kind: ScenarioKind) -> Option<&Metrics> {
        self.scenarios
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, m)| m)
    }

    /// Ordering key: feasible first, then cheaper, then faster; infeasible ones by how far off.
    pub(super) fn rank(&self) -> (bool, f64, f64) {
        if self.feasible {
            (false, self.cost_per_hour, self.e2e_p95_ms)
        } else {
            (true, self.slo_ratio, self.cost_per_hour)
        }
    }
}

/// Simulates configurations of one supply on its scenarios.
pub struct Evaluator<'a> {
    pub(super) input: &'a SearchInput<'a>,
    pub(super) current: ServingConfig,
    pub(super) space: SearchSpace,
    scenarios: BTreeMap<u32, Scenarios>,
    /// Roofline coefficients of the current deployment, the denominator of the transfer ratios.
    current_prior: Option<EngineCoefficients>,
    /// Typical context (mean prompt + half the mean output) the roofline coefficients are read at,
    /// as calibration reads them.
    context_tokens: f64,
}

impl<'a> Evaluator<'a> {
    /// Builds the supply's search space and the scenarios of every block size in it.
    pub fn new(input: &'a SearchInput<'a>) -> Result<Evaluator<'a>> {
        let current = deployment::current(input.supply)?;
        let space = space::space(input.supply, &current, input.catalog)?;
        let block_sizes: Vec<u32> = space.shapes.iter().map(|s| s.block_size).collect();
        let mut scenarios = BTreeMap::new();
        let peak_seed = input.seed ^ stable_hash64(&format!("{}/peak", input.supply.id));
        for &b in block_sizes.iter().chain([&current.block_size]) {
            if let std::collections::btree_map::Entry::Vacant(slot) = scenarios.entry(b) {
                slot.insert(Scenarios::build(
                    input.traffic,
                    b,
                    input.supply.options.growth,
                    peak_seed,
                )?);
            }
        }
        let window = &scenarios[&current.block_size].window;
        let n = window.len().max(1) as f64;
        let context_tokens = window
            .requests()
            .iter()
            .map(|r| r.prompt_tokens as f64 + r.output_tokens as f64 / 2.0)
            .sum::<f64>()
            / n;
        let current_prior = match input.calibrated {
            Some(_) => Some(roofline_prior(
                &deployment::of(input.supply, &current, input.catalog)?,
                context_tokens,
            )),
            None => None,
        };
        Ok(Evaluator {
            input,
            current,
            space,
            scenarios,
            current_prior,
            context_tokens,
        })
    }

    pub fn current(&self) -> &ServingConfig {
        &self.current
    }

    pub fn scenarios(&self, block_size: u32) -> Option<&Scenarios> {
        self.scenarios.get(&block_size)
    }

    /// The simulated deployment of `config`, with the calibrated step model carried over.
    pub fn deployment(&self, config: &ServingConfig) -> Result<Deployment> {
        let mut d = deployment::of(self.input.supply, config, self.input.catalog)?;
        if let (Some(f), Some(p0)) = (self.input.calibrated, self.current_prior) {
            let p = roofline_prior(&d, self.context_tokens);
            EngineCoefficients {
                alpha_ms: f.alpha_ms * p.alpha_ms / p0.alpha_ms,
                beta_ms: f.beta_ms * p.beta_ms / p0.beta_ms,
                prefill_ms_per_token: f.prefill_ms_per_token * p.prefill_ms_per_token
                    / p0.prefill_ms_per_token,
                request_overhead_ms: f.request_overhead_ms * p.request_overhead_ms
                    / p0.request_overhead_ms,
            }
            .install(&mut d);
        }
        Ok(d)
    }

    /// Simulates `config` on one scenario (None when the scenario does not exist, e.g. no peak).
    /// `config` must use a block size of the search space (scenarios are built for those).
    pub fn simulate(
        &self,
        config: &ServingConfig,
        kind: ScenarioKind,
        keep_per_request: bool,
    ) -> Result<Option<SimReport>> {
        let scenarios = self.scenarios.get(&config.block_size).ok_or_else(|| {
            Error::Internal(format!(
                "block size {} is not in the search space of supply {}",
                config.block_size, self.input.supply.id
            ))
        })?;
        let Some(trace) = scenarios.trace(kind) else {
            return Ok(None);
        };
        self.simulate_trace(config, trace, kind.as_str(), keep_per_request)
            .map(Some)
    }

    /// Simulates `config` on `trace`, seeded by the supply and `scenario` (the same name, the same
    /// random numbers).
    pub fn simulate_trace(
        &self,
        config: &ServingConfig,
        trace: &Trace,
        scenario: &str,
        keep_per_request: bool,
    ) -> Result<SimReport> {
        let slo = &self.input.supply.slo;
        let options = SimOptions {
            seed: self.input.seed,
            scenario_id: stable_hash64(&format!("{}/{scenario}", self.input.supply.id)),
            slo: crate::simulation::Slo {
                p95_ttft_ms: slo.p95_ttft_ms,
                p95_tpot_ms: slo.p95_tpot_ms,
            },
            keep_per_request,
            request_timeout_s: Some(slo.timeout_s),
            step_by_step: false,
        };
        simulate(&self.deployment(config)?, trace, &options)
    }

    /// Whether `m` meets the supply's SLO targets and error budget.
    pub fn meets_slo(&self, m: &Metrics) -> bool {
        let slo = &self.input.supply.slo;
        m.ttft_p95_ms <= slo.p95_ttft_ms
            && m.tpot_p95_ms <= slo.p95_tpot_ms
            && m.failed_share <= slo.error_budget
    }

    /// The supply searched.
    pub fn supply(&self) -> &Supply {
        self.input.supply
    }

    /// Simulates `config` on `kinds` and judges it against the supply's SLOs.
    pub fn evaluate(
        &self,
        config: &ServingConfig,
        kinds: &[ScenarioKind],
        round: Round,
    ) -> Result<Evaluation> {
        let slo = &self.input.supply.slo;
        let mut scenarios = Vec::new();
        let mut simulated = 0;
        // A prefill/decode split needs two replicas at least: with fewer it is no deployment, and
        // its evaluation (no scenario) is infeasible.
        let splits = config
            .pd_disaggregation
            .is_none_or(|r| r.split(config.replicas).is_some());
        for &kind in kinds.iter().filter(|_| splits) {
            if let Some(report) = self.simulate(config, kind, false)? {
                simulated += report.requests;
                scenarios.push((kind, Metrics::of(&report)));
            }
        }
        let ratio = |m: &Metrics| {
            let failed = if slo.error_budget > 0.0 {
                m.failed_share / slo.error_budget
            } else if m.failed_share > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            (m.ttft_p95_ms / slo.p95_ttft_ms)
                .max(m.tpot_p95_ms / slo.p95_tpot_ms)
                .max(failed)
        };
        let slo_ratio = match splits {
            true => scenarios.iter().map(|(_, m)| ratio(m)).fold(0.0, f64::max),
            false => f64::INFINITY,
        };
        let d = deployment::of(self.input.supply, config, self.input.catalog)?;
        Ok(Evaluation {
            config: config.clone(),
            round,
            cost_per_hour: config.gpus() as f64 * d.price_per_gpu_hour,
            feasible: !scenarios.is_empty() && slo_ratio <= 1.0,
            within_error_budget: splits
                && scenarios
                    .iter()
                    .all(|(_, m)| m.failed_share <= slo.error_budget),
            slo_ratio,
            e2e_p95_ms: scenarios
                .iter()
                .map(|(_, m)| m.e2e_p95_ms)
                .fold(0.0, f64::max),
            scenarios,
            simulated_requests: simulated,
        })
    }

    /// Evaluations of `shape` at replica counts chosen by bisection for the fewest that is feasible
    /// (the last evaluation is the chosen one; if even the most replicas fail, only that one).
    pub(super) fn size_replicas(
        &self,
        shape: &ServingConfig,
        replicas: &[u32],
        kinds: &[ScenarioKind],
        round: Round,
    ) -> Result<Vec<Evaluation>> {
        let at = |i: usize| {
            self.evaluate(
                &ServingConfig {
                    replicas: replicas[i],
                    ..shape.clone()
                },
                kinds,
                round,
            )
        };
        let mut hi = replicas.len() - 1;
        let top = at(hi)?;
        let feasible_top = top.feasible;
        let mut made = vec![top];
        if !feasible_top {
            return Ok(made);
        }
        let (mut lo, mut chosen) = (0, made.len() - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = at(mid)?;
            made.push(e);
            if made[made.len() - 1].feasible {
                hi = mid;
                chosen = made.len() - 1;
            } else {
                lo = mid + 1;
            }
        }
        let best = made.remove(chosen);
        made.push(best);
        Ok(made)
    }
}
