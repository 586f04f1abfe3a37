//! tunelake: turns an LLM-serving fleet's request logs and GPU telemetry into system-level tuning
//! recommendations. The stages run in the order of [`pipeline`]: ingest → features → workloads →
//! calibration → simulation → search → recommend → sinks.

pub mod catalog;
pub mod error;
pub mod simulation;

pub use error::{Error, Result};
