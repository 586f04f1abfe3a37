//! Configuration search (issue 6): for one supply, the cheapest configuration that meets its SLOs
//! (p95 TTFT, p95 TPOT and the error budget) on the whole window and on its peak hour, at the
//! planned growth.
//!
//! - **Space** ([`space`]): the supply's `options` crossed, guardrails applied, infeasible shapes
//!   pruned analytically.
//! - **Performance model**: the calibrated coefficients of the supply's current deployment carry over
//!   to other GPUs, TP degrees and drafts by the roofline's ratios: a candidate's α, β, γ are the
//!   fitted ones × (candidate's roofline value ÷ current deployment's roofline value). For the
//!   current deployment this is exactly the fit; elsewhere it keeps the fitted correction.
//! - **Successive halving**: every shape is screened on the [`ScenarioKind::Sample`] slice plus the
//!   peak hour, the best quarter is re-simulated on the whole window plus the peak hour.
//! - **Replicas by bisection**: for a fixed shape, latency falls as replicas are added (the router
//!   spreads the same traffic thinner), so the fewest replicas meeting the SLOs is found by bisection
//!   over the allowed counts, which is also the cheapest for that shape.
//! - **Determinism**: every simulation of a scenario uses the same seed (common random numbers, from
//!   the run seed and the scenario's id), shapes run in parallel with rayon and results are collected
//!   in shape order, so results do not depend on the thread count.

pub mod scenarios;
pub mod space;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::calibration::{EngineCoefficients, roofline_prior};
use crate::catalog::Catalog;
use crate::config::Supply;
use crate::deployment;
use crate::error::Result;
use crate::hash::stable_hash64;
use crate::knobs::ServingConfig;
use crate::simulation::{Deployment, SimOptions, SimReport, simulate};
use crate::workloads::Traffic;

pub use scenarios::{ScenarioKind, Scenarios};
pub use space::{SearchSpace, space};

/// How the candidates are explored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Screen on a sample, keep the best quarter, re-simulate those on everything.
    SuccessiveHalving,
    /// Every shape × every replica count on everything (for tests and small spaces).
    Exhaustive,
}

/// Share of shapes that survive the screening round.
const KEEP_FRACTION: f64 = 0.25;
/// Costs within this fraction count as equal.
pub const COST_TIE: f64 = 0.005;
/// Among equally cheap configurations, p95 latencies within this fraction of the best count as
/// equal, and the one with the fewest changed knobs wins: a snippet should not carry noise.
pub const LATENCY_TIE: f64 = 0.02;

/// Everything the search of one supply needs.
#[derive(Debug, Clone)]
pub struct SearchInput<'a> {
    pub supply: &'a Supply,
    pub catalog: &'a Catalog,
    pub traffic: &'a Traffic,
    /// The fitted engine coefficients of the supply's current deployment; None: the uncalibrated
    /// roofline.
    pub calibrated: Option<EngineCoefficients>,
    pub seed: u64,
    pub strategy: Strategy,
}

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
    fn of(r: &SimReport) -> Metrics {
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
    fn rank(&self) -> (bool, f64, f64) {
        if self.feasible {
            (false, self.cost_per_hour, self.e2e_p95_ms)
        } else {
            (true, self.slo_ratio, self.cost_per_hour)
        }
    }
}

/// What the search of one supply found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub supply_id: String,
    pub strategy: Strategy,
    pub candidates: usize,
    pub enumerated: usize,
    pub pruned: BTreeMap<String, usize>,
    /// The current configuration on the full scenarios.
    pub baseline: Evaluation,
    /// Every evaluation made, screening included, in a deterministic order.
    pub evaluations: Vec<Evaluation>,
    /// The chosen configuration (the baseline itself when nothing beats it); None when no
    /// configuration meets the SLOs.
    pub best: Option<Evaluation>,
    pub simulated_requests: u64,
    /// Requests an exhaustive search of the same space would simulate.
    pub exhaustive_requests: u64,
}

/// Simulates configurations of one supply on its scenarios.
pub struct Evaluator<'a> {
    input: &'a SearchInput<'a>,
    current: ServingConfig,
    space: SearchSpace,
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
            let reserve = d.step_model.activation_reserve_bytes() / (1u64 << 30) as f64;
            d.step_model = EngineCoefficients {
                alpha_ms: f.alpha_ms * p.alpha_ms / p0.alpha_ms,
                beta_ms: f.beta_ms * p.beta_ms / p0.beta_ms,
                prefill_ms_per_token: f.prefill_ms_per_token * p.prefill_ms_per_token
                    / p0.prefill_ms_per_token,
                request_overhead_ms: f.request_overhead_ms * p.request_overhead_ms
                    / p0.request_overhead_ms,
            }
            .step_model(reserve);
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
            crate::Error::Simulation(format!(
                "block size {} is not in the search space of supply {}",
                config.block_size, self.input.supply.id
            ))
        })?;
        let Some(trace) = scenarios.trace(kind) else {
            return Ok(None);
        };
        let slo = &self.input.supply.slo;
        let options = SimOptions {
            seed: self.input.seed,
            scenario_id: stable_hash64(&format!("{}/{}", self.input.supply.id, kind.as_str())),
            slo: crate::simulation::Slo {
                p95_ttft_ms: slo.p95_ttft_ms,
                p95_tpot_ms: slo.p95_tpot_ms,
            },
            keep_per_request,
            request_timeout_s: Some(slo.timeout_s),
            step_by_step: false,
        };
        simulate(&self.deployment(config)?, trace, &options).map(Some)
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
        for &kind in kinds {
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
        let slo_ratio = scenarios.iter().map(|(_, m)| ratio(m)).fold(0.0, f64::max);
        let d = deployment::of(self.input.supply, config, self.input.catalog)?;
        Ok(Evaluation {
            config: config.clone(),
            round,
            cost_per_hour: config.gpus() as f64 * d.price_per_gpu_hour,
            feasible: !scenarios.is_empty() && slo_ratio <= 1.0,
            within_error_budget: scenarios
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
    fn size_replicas(
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

/// Runs the search of one supply.
pub fn search(evaluator: &Evaluator) -> Result<SearchResult> {
    let (input, current, space) = (evaluator.input, &evaluator.current, &evaluator.space);
    let full = [ScenarioKind::Window, ScenarioKind::Peak];
    let baseline = evaluator.evaluate(current, &full, Round::Baseline)?;
    let mut evaluations = Vec::new();
    if !space.is_empty() {
        match input.strategy {
            Strategy::Exhaustive => {
                let all: Vec<ServingConfig> = space
                    .shapes
                    .iter()
                    .flat_map(|s| {
                        space.replicas.iter().map(move |&r| ServingConfig {
                            replicas: r,
                            ..s.clone()
                        })
                    })
                    .collect();
                evaluations = all
                    .par_iter()
                    .map(|c| evaluator.evaluate(c, &full, Round::Full))
                    .collect::<Result<_>>()?;
            }
            Strategy::SuccessiveHalving => {
                let screen = [ScenarioKind::Sample, ScenarioKind::Peak];
                let screened: Vec<Vec<Evaluation>> = space
                    .shapes
                    .par_iter()
                    .map(|s| evaluator.size_replicas(s, &space.replicas, &screen, Round::Screen))
                    .collect::<Result<_>>()?;
                let mut order: Vec<usize> = (0..screened.len()).collect();
                let chosen = |i: usize| screened[i].last().expect("bisection evaluates");
                order.sort_by(|&a, &b| {
                    chosen(a)
                        .rank()
                        .partial_cmp(&chosen(b).rank())
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(a.cmp(&b))
                });
                let keep = ((order.len() as f64 * KEEP_FRACTION).ceil() as usize).max(1);
                let kept: Vec<&ServingConfig> =
                    order[..keep].iter().map(|&i| &space.shapes[i]).collect();
                let finals: Vec<Vec<Evaluation>> = kept
                    .par_iter()
                    .map(|s| evaluator.size_replicas(s, &space.replicas, &full, Round::Full))
                    .collect::<Result<_>>()?;
                evaluations = screened.into_iter().chain(finals).flatten().collect();
            }
        }
    }
    let exhaustive_requests = space
        .shapes
        .iter()
        .map(|s| {
            let sc = evaluator
                .scenarios(s.block_size)
                .expect("built for every shape");
            (sc.window.len() + sc.peak.as_ref().map_or(0, |p| p.len())) as u64
        })
        .sum::<u64>()
        * space.replicas.len() as u64;
    let best = choose(&baseline, &evaluations);
    Ok(SearchResult {
        supply_id: input.supply.id.clone(),
        strategy: input.strategy,
        candidates: space.len(),
        enumerated: space.enumerated,
        pruned: space.pruned.clone(),
        simulated_requests: baseline.simulated_requests
            + evaluations
                .iter()
                .map(|e| e.simulated_requests)
                .sum::<u64>(),
        exhaustive_requests,
        baseline,
        evaluations,
        best,
    })
}

/// The configuration to run: among full evaluations (baseline included) that meet the SLOs, the
/// cheapest; among equally cheap ones those within [`LATENCY_TIE`] of the fastest p95; among those
/// the one changing the fewest knobs.
fn choose(baseline: &Evaluation, evaluations: &[Evaluation]) -> Option<Evaluation> {
    let pool: Vec<&Evaluation> = std::iter::once(baseline)
        .chain(evaluations.iter().filter(|e| e.round == Round::Full))
        .filter(|e| e.feasible)
        .collect();
    let cheapest = pool
        .iter()
        .map(|e| e.cost_per_hour)
        .fold(f64::INFINITY, f64::min);
    let cheap: Vec<&Evaluation> = pool
        .into_iter()
        .filter(|e| e.cost_per_hour <= cheapest * (1.0 + COST_TIE))
        .collect();
    let fastest = cheap
        .iter()
        .map(|e| e.e2e_p95_ms)
        .fold(f64::INFINITY, f64::min);
    cheap
        .into_iter()
        .filter(|e| e.e2e_p95_ms <= fastest * (1.0 + LATENCY_TIE))
        .min_by(|a, b| {
            let changes = |e: &Evaluation| e.config.changes_from(&baseline.config).len();
            changes(a)
                .cmp(&changes(b))
                .then(a.e2e_p95_ms.total_cmp(&b.e2e_p95_ms))
                .then(a.cost_per_hour.total_cmp(&b.cost_per_hour))
        })
        .cloned()
}

/// Full evaluations (baseline included) on the cost vs p95 latency frontier, cheapest first: those
/// within the error budget that no other one beats on both cost and worst p95 end-to-end latency.
pub fn pareto(result: &SearchResult) -> Vec<&Evaluation> {
    let mut seen = std::collections::HashSet::new();
    let mut pool: Vec<&Evaluation> = std::iter::once(&result.baseline)
        .chain(result.evaluations.iter().filter(|e| e.round == Round::Full))
        .filter(|e| e.within_error_budget && seen.insert(e.config.id()))
        .collect();
    pool.sort_by(|a, b| {
        a.cost_per_hour
            .total_cmp(&b.cost_per_hour)
            .then(a.e2e_p95_ms.total_cmp(&b.e2e_p95_ms))
    });
    let mut frontier: Vec<&Evaluation> = Vec::new();
    for e in pool {
        if frontier.last().is_none_or(|f| e.e2e_p95_ms < f.e2e_p95_ms) {
            frontier.push(e);
        }
    }
    frontier
}

/// One row of the `simulations` table: one evaluation on one scenario.
#[derive(Serialize)]
struct SimulationRow<'a> {
    supply_id: &'a str,
    candidate_id: String,
    round: Round,
    scenario: &'static str,
    #[serde(flatten)]
    config: &'a ServingConfig,
    cost_per_hour_usd: f64,
    feasible: bool,
    slo_ratio: f64,
    #[serde(flatten)]
    metrics: &'a Metrics,
}

/// One row of the `pareto` table.
#[derive(Serialize)]
struct ParetoRow<'a> {
    supply_id: &'a str,
    rank: usize,
    candidate_id: String,
    description: String,
    is_current: bool,
    is_chosen: bool,
    feasible: bool,
    cost_per_hour_usd: f64,
    e2e_p95_ms: f64,
    slo_ratio: f64,
}

/// The columns of a flattened [`ServingConfig`].
fn config_columns() -> Vec<(&'static str, arrow::datatypes::DataType)> {
    use arrow::datatypes::DataType::*;
    vec![
        ("gpu", Utf8),
        ("tensor_parallel_size", Int64),
        ("replicas", Int64),
        ("block_size", Int64),
        ("max_num_seqs", Int64),
        ("max_num_batched_tokens", Int64),
        ("gpu_memory_utilization", Float64),
        ("enable_prefix_caching", Boolean),
        ("enable_chunked_prefill", Boolean),
        ("kv_cache_dtype", Utf8),
        (
            "speculative",
            Struct(
                vec![
                    arrow::datatypes::Field::new("draft_model", Utf8, true),
                    arrow::datatypes::Field::new("num_speculative_tokens", Int64, true),
                ]
                .into(),
            ),
        ),
    ]
}

/// The `simulations` (every evaluation, per scenario) and `pareto` tables of a run.
pub fn tables(results: &[SearchResult]) -> Result<Vec<crate::features::Table>> {
    use arrow::datatypes::DataType::*;
    let mut sim_rows = Vec::new();
    let mut pareto_rows = Vec::new();
    for r in results {
        for e in std::iter::once(&r.baseline).chain(&r.evaluations) {
            for (kind, m) in &e.scenarios {
                sim_rows.push(SimulationRow {
                    supply_id: &r.supply_id,
                    candidate_id: e.config.id(),
                    round: e.round,
                    scenario: kind.as_str(),
                    config: &e.config,
                    cost_per_hour_usd: e.cost_per_hour,
                    feasible: e.feasible,
                    slo_ratio: e.slo_ratio,
                    metrics: m,
                });
            }
        }
        for (rank, e) in pareto(r).into_iter().enumerate() {
            pareto_rows.push(ParetoRow {
                supply_id: &r.supply_id,
                rank,
                candidate_id: e.config.id(),
                description: e.config.describe(),
                is_current: e.config == r.baseline.config,
                is_chosen: r.best.as_ref().is_some_and(|b| b.config == e.config),
                feasible: e.feasible,
                cost_per_hour_usd: e.cost_per_hour,
                e2e_p95_ms: e.e2e_p95_ms,
                slo_ratio: e.slo_ratio,
            });
        }
    }
    let mut sim_columns = vec![
        ("supply_id", Utf8),
        ("candidate_id", Utf8),
        ("round", Utf8),
        ("scenario", Utf8),
    ];
    sim_columns.extend(config_columns());
    sim_columns.extend([
        ("cost_per_hour_usd", Float64),
        ("feasible", Boolean),
        ("slo_ratio", Float64),
        ("requests", Int64),
        ("failed_share", Float64),
        ("ttft_p50_ms", Float64),
        ("ttft_p95_ms", Float64),
        ("tpot_p50_ms", Float64),
        ("tpot_p95_ms", Float64),
        ("e2e_p95_ms", Float64),
        ("output_tokens_per_s", Float64),
        ("mean_batch", Float64),
        ("max_kv_utilization", Float64),
        ("preemptions", Int64),
        ("prefix_cache_hit_rate", Float64),
    ]);
    let pareto_columns = [
        ("supply_id", Utf8),
        ("rank", Int64),
        ("candidate_id", Utf8),
        ("description", Utf8),
        ("is_current", Boolean),
        ("is_chosen", Boolean),
        ("feasible", Boolean),
        ("cost_per_hour_usd", Float64),
        ("e2e_p95_ms", Float64),
        ("slo_ratio", Float64),
    ];
    Ok(vec![
        crate::features::Table::from_rows("simulations", &sim_columns, &sim_rows)?,
        crate::features::Table::from_rows("pareto", &pareto_columns, &pareto_rows)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replicas: u32, block_size: u32, max_num_seqs: u32) -> ServingConfig {
        ServingConfig {
            gpu: "H100-SXM".into(),
            tensor_parallel_size: 1,
            replicas,
            block_size,
            max_num_seqs,
            max_num_batched_tokens: 8192,
            gpu_memory_utilization: 0.9,
            enable_prefix_caching: true,
            enable_chunked_prefill: true,
            kv_cache_dtype: Default::default(),
            speculative: None,
        }
    }

    fn evaluation(
        config: ServingConfig,
        round: Round,
        e2e_p95_ms: f64,
        feasible: bool,
    ) -> Evaluation {
        Evaluation {
            cost_per_hour: config.replicas as f64,
            config,
            round,
            scenarios: vec![(
                ScenarioKind::Window,
                Metrics {
                    requests: 1,
                    failed_share: 0.0,
                    ttft_p50_ms: 0.0,
                    ttft_p95_ms: 0.0,
                    tpot_p50_ms: 0.0,
                    tpot_p95_ms: 0.0,
                    e2e_p95_ms,
                    output_tokens_per_s: 0.0,
                    mean_batch: 0.0,
                    max_kv_utilization: 0.0,
                    preemptions: 0,
                    prefix_cache_hit_rate: 0.0,
                },
            )],
            feasible,
            slo_ratio: if feasible { 0.5 } else { 2.0 },
            e2e_p95_ms,
            within_error_budget: true,
            simulated_requests: 1,
        }
    }

    fn result(baseline: Evaluation, evaluations: Vec<Evaluation>) -> SearchResult {
        SearchResult {
            supply_id: "s".into(),
            strategy: Strategy::Exhaustive,
            candidates: evaluations.len(),
            enumerated: evaluations.len(),
            pruned: BTreeMap::new(),
            best: choose(&baseline, &evaluations),
            baseline,
            evaluations,
            simulated_requests: 0,
            exhaustive_requests: 0,
        }
    }

    #[test]
    fn cheapest_feasible_wins_then_fewest_changes_among_near_ties() {
        let base = evaluation(config(3, 32, 256), Round::Baseline, 900.0, true);
        let r = result(
            base,
            vec![
                // Cheaper but infeasible.
                evaluation(config(1, 32, 256), Round::Full, 5000.0, false),
                // Cheapest feasible: two configurations 1 % apart; the one changing fewer knobs wins.
                evaluation(config(2, 16, 512), Round::Full, 1000.0, true),
                evaluation(config(2, 32, 256), Round::Full, 1010.0, true),
                // Screening results are never chosen.
                evaluation(config(2, 16, 128), Round::Screen, 100.0, true),
            ],
        );
        assert_eq!(r.best.unwrap().config, config(2, 32, 256));
    }

    #[test]
    fn pareto_keeps_only_undominated_full_evaluations() {
        let r = result(
            evaluation(config(3, 32, 256), Round::Baseline, 900.0, true),
            vec![
                evaluation(config(1, 32, 256), Round::Full, 5000.0, false),
                evaluation(config(2, 16, 512), Round::Full, 1000.0, true),
                evaluation(config(2, 32, 256), Round::Full, 1200.0, true),
                evaluation(config(3, 16, 512), Round::Full, 950.0, true),
                evaluation(config(4, 16, 512), Round::Full, 400.0, true),
            ],
        );
        let frontier: Vec<(f64, f64)> = pareto(&r)
            .iter()
            .map(|e| (e.cost_per_hour, e.e2e_p95_ms))
            .collect();
        assert_eq!(
            frontier,
            vec![(1.0, 5000.0), (2.0, 1000.0), (3.0, 900.0), (4.0, 400.0)]
        );
    }
}
