//! Sinks: everything tunelake writes back to storage.

pub mod output;
