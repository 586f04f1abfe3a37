//! The synthetic lake generator: realistic `requests` and `gpu_metrics` for several apps served by
//! supplies with a **known ground-truth engine**, so later stages can check that the pipeline
//! recovers what was put in, and so the product can ship a small demo lake.
//!
//! Its parts, one job each (each file documents its share of the lake): `apps` (the documented
//! apps), `arrivals` (when requests come), `requests` (what each request is), `engine` (the
//! ground-truth engine and its supplies), `telemetry` (the engine's `gpu_metrics` rows), `invalid`
//! (planted contract-breaking rows), `day` (one app's rows for one day) and `driver` (the days
//! written to the lake, the ground truth).
//!
//! # Determinism and streaming
//! Every draw comes from a [`Xoshiro256`](crate::rng::Xoshiro256) seeded by (seed, app, day
//! number), so a day's rows do not depend on the other days or on `--days`; days are generated one
//! at a time (apps in parallel with rayon) and written with
//! [`LakeWriter`](crate::storage::parquet::LakeWriter) (`part-<app>-<n>.parquet`), so memory is one
//! day.

mod apps;
mod arrivals;
mod day;
mod driver;
mod engine;
mod invalid;
mod requests;
mod telemetry;

pub use apps::{APPS, AppShape, PrefixKind};
pub use driver::{AppTruth, GenerateConfig, GroundTruth, NoiseTruth, generate};
pub use engine::{SUPPLIES, SupplyTruth};
pub use invalid::INVALID_REASONS;

/// Tokens per `prefix_block_hashes` block (as in the Mooncake traces).
pub const BLOCK_TOKENS: i64 = 512;
/// KV-cache page size used to round cached tokens.
pub const PAGE_TOKENS: i64 = 16;
/// Noise (log-σ, mean one) on TTFT and queue time.
pub const TTFT_NOISE: f64 = 0.10;
/// Noise on the decode part of E2E.
pub const DECODE_NOISE: f64 = 0.05;
/// Per-token ITL noise; a window mean over k tokens gets σ / √k.
pub const ITL_TOKEN_NOISE: f64 = 0.05;
/// Client timeout of every supply.
pub const TIMEOUT_MS: f64 = 120_000.0;
/// Telemetry window.
pub const WINDOW_S: i64 = 60;
