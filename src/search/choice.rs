//! Which configuration to run, and the cost vs latency frontier.

use super::{Evaluation, Round, SearchResult};

/// Costs within this fraction count as equal.
pub const COST_TIE: f64 = 0.005;
/// Among equally cheap configurations, p95 latencies within this fraction of the best count as
/// equal, and the one with the fewest changed knobs wins: a snippet should not carry noise.
pub const LATENCY_TIE: f64 = 0.02;

/// The configuration to run: among full evaluations (baseline included) that meet the SLOs, the
/// cheapest; among equally cheap ones those within [`LATENCY_TIE`] of the fastest p95; among those
/// the one changing the fewest knobs.
pub(super) fn choose(baseline: &Evaluation, evaluations: &[Evaluation]) -> Option<Evaluation> {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::knobs::ServingConfig;
    use crate::search::{Metrics, ScenarioKind, Strategy};

    fn config(replicas: u32, block_size: u32, max_num_seqs: u32) -> ServingConfig {
        ServingConfig {
            block_size,
            max_num_seqs,
            ..ServingConfig::with_engine_defaults("H100-SXM".into(), 1, replicas)
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
