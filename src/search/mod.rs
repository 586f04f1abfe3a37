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

pub mod capacity;
mod choice;
mod evaluate;
pub mod regimes;
pub mod scenarios;
pub mod space;
mod strategy;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::calibration::EngineCoefficients;
use crate::catalog::Catalog;
use crate::config::Supply;
use crate::workloads::Traffic;

pub use choice::{COST_TIE, LATENCY_TIE, pareto};
pub use evaluate::{Evaluation, Evaluator, Metrics, Round};
pub use scenarios::{ScenarioKind, Scenarios};
pub use space::{SearchSpace, space};
pub use strategy::{Strategy, search};

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
