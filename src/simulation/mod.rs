//! Discrete-event serving-engine simulator.
//!
//! [`simulate`] replays a [`Trace`] against a [`Deployment`] (N replicas of one engine on G GPUs each,
//! tensor parallel G, behind a [`Router`]) and returns a [`SimReport`]. The engine model is vLLM v1's
//! scheduler ([`scheduler::VllmV1Scheduler`]: continuous batching, chunked prefill, paged KV cache with
//! recompute preemption, prefix caching, speculative decoding) over a pluggable [`StepTimeModel`].
//! Simulated time is integer nanoseconds ([`SimTime`]); every random draw comes from a [`crate::rng::Rng`]
//! seeded from `(SimOptions::seed, scenario_id, replica)`, so a run is bit-reproducible on any thread.

pub mod config;
pub mod engine;
pub mod kv;
pub mod report;
pub mod scheduler;
pub mod step_time;
pub mod time;
pub mod trace;

pub use config::{
    Acceptance, Deployment, EngineConfig, Router, SchedulerKind, SimOptions, Slo, Speculation,
};
pub use engine::simulate;
pub use report::{Percentiles, RequestResult, RequestStatus, SimReport};
pub use step_time::{LinearParams, RooflineParams, StepCost, StepShape, StepTimeModel};
pub use time::SimTime;
pub use trace::{Trace, TraceRequest};
