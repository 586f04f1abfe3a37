//! tunelake: turns an LLM-serving fleet's request logs and GPU telemetry into system-level tuning
//! recommendations. The stages run in the order of [`pipeline`]: ingest → features → workloads →
//! calibration → simulation → search → recommend → sinks.

pub mod backfill;
pub mod calibration;
pub mod catalog;
pub mod config;
pub mod contracts;
pub mod deployment;
pub mod error;
pub mod eval;
pub mod features;
pub mod generate;
pub mod hash;
pub mod ingest;
pub mod knobs;
pub mod opportunities;
pub mod pipeline;
pub mod recommend;
pub mod rng;
pub mod search;
pub mod serve;
pub mod simulation;
pub mod sinks;
pub mod sql;
pub mod storage;
pub mod workloads;

pub use error::{Error, Result};
