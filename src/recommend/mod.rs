//! Recommendations in seed 000's shape: per supply, what to change, why, and its predicted impact
//! with bootstrap intervals; plus the engine snippets that apply it.
//!
//! **Decision.** The search's choice is recommended when it differs from the current configuration
//! and either (a) the current one misses its SLOs and the choice meets them, (b) it is cheaper and
//! meets the SLOs with a margin of the calibrated model's backtest error (p95 × (1 + error) within
//! the targets), or (c) it costs the same and improves a p95 latency by more than that error, with
//! a bootstrap interval that excludes zero. Otherwise nothing is recommended and the summary says
//! why.
//!
//! **Impact.** Baseline and choice are re-simulated on the window with per-request results (same
//! seed: common random numbers). Point figures are over all requests; 95 % intervals come from a
//! paired bootstrap that resamples the days of the window (hours when it has fewer than 3 days).

mod analysis;
mod batch;
mod caching;
mod capacity;
mod client;
mod costs;
mod decide;
mod health;
mod impact;
mod prompt_cache;
mod prose;
pub mod render;
mod schedule;
mod snippet;
mod tiering;

pub use analysis::{
    Analysis, LatencyProfile, LatencyProfiles, ModelError, PredictedImpact, Status,
    SupplyRecommendation, SystemRecommendation, UNCALIBRATED_ERROR_PCT, stable_uuid,
};
pub use batch::{BatchWindow, batch_api, batch_window, batch_window_recommendation};
pub use caching::response_cache;
pub use capacity::{CapacityPlan, PurchaseMix, capacity_plan};
pub use client::client_defaults;
pub use costs::cost_budget;
pub use decide::{RecommendInput, recommend, unsearched};
pub use health::{alerts, grade_parts};
pub use prompt_cache::prompt_caching;
pub use schedule::{SupplySchedule, hour_ranges, schedule};
pub use snippet::{apply_snippet, config_snippet};
pub use tiering::{Route, TierSupply, router_weights, routes};
