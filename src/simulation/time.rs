//! Simulated time: integer nanoseconds, so event ordering and sums are exact and platform independent.

use serde::{Deserialize, Serialize};

/// A point in simulated time, in nanoseconds since the start of the trace.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// Converts seconds (non-negative, finite) to the nearest nanosecond.
    pub fn from_secs_f64(s: f64) -> SimTime {
        SimTime((s.max(0.0) * 1e9).round() as u64)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    pub fn saturating_add(self, d: u64) -> SimTime {
        SimTime(self.0.saturating_add(d))
    }
}

/// Converts a duration in seconds to whole nanoseconds (at least 1, so every step advances time).
pub fn duration_ns(s: f64) -> u64 {
    ((s * 1e9).round() as u64).max(1)
}
