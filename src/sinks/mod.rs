//! Sinks: everything tunelake writes back to storage.

pub mod delta;
pub mod lock;
pub mod output;
pub mod report;
pub mod tables;

pub use tables::Table;

use crate::opportunities::FleetFindings;
use crate::opportunities::costs::CostDrivers;
use crate::opportunities::health::SupplyGrade;
use crate::recommend::{CapacityPlan, Route, SupplySchedule};

/// The fleet-wide results of a run, beside the per-supply ones: what both the reports and the
/// tables show.
#[derive(Debug, Clone, Copy)]
pub struct FleetResults<'a> {
    pub findings: &'a FleetFindings,
    pub costs: &'a CostDrivers,
    pub grades: &'a [SupplyGrade],
    pub capacity: &'a [CapacityPlan],
    pub schedules: &'a [SupplySchedule],
    pub routes: &'a [Route],
}
