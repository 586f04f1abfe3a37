//! Sinks: everything tunelake writes back to storage.

pub mod output;
pub mod report;
pub mod tables;

pub use tables::Table;
