//! The sentences of a recommendation's summary.

use std::collections::BTreeMap;

use super::RecommendInput;
use crate::knobs::ServingConfig;
use crate::search::ScenarioKind;

/// "Traffic of <supply>: N requests, 78 % short chat (...), 22 % ...; peak hour M requests."
pub(super) fn context_sentence(input: &RecommendInput) -> String {
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for c in input.request_classes {
        *counts.entry(*c).or_default() += 1;
    }
    let total = input.request_classes.len().max(1) as f64;
    let mut shares: Vec<(u16, usize)> = counts.into_iter().collect();
    shares.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mix: Vec<String> = shares
        .iter()
        .filter(|(_, n)| *n as f64 / total >= 0.01)
        .take(3)
        .map(|(id, n)| {
            let label = input
                .classes
                .iter()
                .find(|c| c.id == *id)
                .map_or("unclassified", |c| c.label.as_str());
            format!("{:.0} % {label}", *n as f64 / total * 100.0)
        })
        .collect();
    let peak = input
        .search
        .baseline
        .metrics(ScenarioKind::Peak)
        .map(|m| format!(" The peak hour is simulated with {} requests.", m.requests))
        .unwrap_or_default();
    format!(
        "Supply `{}` served {} requests in the window: {}.{peak}",
        input.supply.id,
        input.request_classes.len(),
        mix.join(", ")
    )
}

pub(super) fn describe_changes(before: &ServingConfig, after: &ServingConfig) -> String {
    let changes: Vec<String> = after
        .changes_from(before)
        .iter()
        .map(|c| c.describe().to_string())
        .collect();
    format!("Recommended: {}.", changes.join("; "))
}
