//! How the candidates are explored: successive halving (the default) or every candidate.

use rayon::prelude::*;
use serde::Serialize;

use super::choice::choose;
use super::{Evaluation, Evaluator, Round, ScenarioKind, SearchResult};
use crate::error::Result;
use crate::knobs::ServingConfig;

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
