//! The one integration test binary. Storage-touching tests run against every backend (local disk and
//! a real S3 server started by `.ci/run`).

mod bad_input;
mod calibration;
mod catalog;
mod cli;
mod delta;
mod engines;
mod eval;
mod faults;
mod fixture;
mod fleet;
mod fuzz;
mod generate;
mod golden;
mod import;
mod ingest;
mod layers;
mod operations;
mod opportunities;
mod pipeline;
mod prometheus;
mod readme_tables;
mod search;
mod serve;
mod simulation;
mod snippets;
mod support;
mod workloads;
