//! Every table a run writes, defined once: its name, what one row is, and each column's type and
//! meaning. The stages hand over typed results; the builders (one file per stage) turn them into
//! Arrow under these definitions, and the tables that come from SQL or ingest are checked against
//! them before they are written. The README's list of tables is tested against [`definitions`].

mod calibration;
mod eval;
mod features;
mod opportunities;
mod recommend;
mod search;
mod workloads;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use crate::calibration::SupplyCalibration;
use crate::contracts;
use crate::error::{Context, Error, Result};
use crate::features::QueryResult;
use crate::recommend::SupplyRecommendation;
use crate::search::SearchResult;
use crate::sinks::FleetResults;
use crate::workloads::Workloads;

pub use calibration::calibration;
pub use eval::eval_cases;
pub use opportunities::{
    alerts, batch_opportunities, cache_opportunities, capacity_plan, client_defaults, cost_drivers,
    grades, prompt_caching, regimes, routing,
};
pub use recommend::recommendations;
pub use search::search;
pub use workloads::workloads;

use calibration::calibration_def;
use features::{features_hourly, gpu_hourly, quarantine, session_depth};
use opportunities::{
    alerts_def, batch_opportunities_def, cache_opportunities_def, capacity_plan_def,
    client_defaults_def, cost_drivers_def, grades_def, prompt_caching_def, regimes_def,
    routing_def,
};
use recommend::recommendations_def;
use search::{pareto_def, simulations_def};
use workloads::{app_workload_mix, app_workload_shares, workload_classes};

/// A named table, ready to be written.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// One column of an output table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// What the value means, with its unit.
    pub doc: String,
}

/// A nullable column.
fn col(name: impl Into<String>, data_type: DataType, doc: impl Into<String>) -> Column {
    Column {
        name: name.into(),
        data_type,
        nullable: true,
        doc: doc.into(),
    }
}

/// A column that always has a value.
fn required(name: &str, data_type: DataType, doc: &str) -> Column {
    Column {
        nullable: false,
        ..col(name, data_type, doc)
    }
}

/// The definition of one output table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub name: &'static str,
    /// What one row is.
    pub row: &'static str,
    pub columns: Vec<Column>,
}

impl TableDef {
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// A table computed elsewhere (SQL, ingest), checked against this definition: the same column
    /// names in the same order, of the same types and nullability.
    fn conformed(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Table> {
        let found: Vec<(&str, &DataType, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
            .collect();
        let declared: Vec<(&str, &DataType, bool)> = self
            .columns
            .iter()
            .map(|c| (c.name.as_str(), &c.data_type, c.nullable))
            .collect();
        if found != declared {
            return Err(Error::Internal(format!(
                "table `{}` has columns {found:?}, but src/sinks/tables/ defines {declared:?}",
                self.name
            )));
        }
        Ok(Table {
            name: self.name.into(),
            schema: schema.clone(),
            batches: batches.to_vec(),
        })
    }

    /// A table of named column arrays, which must be this definition's columns in order.
    fn table_of_arrays(&self, columns: Vec<(&str, ArrayRef)>) -> Result<Table> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let declared: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        if names != declared {
            return Err(Error::Internal(format!(
                "table `{}` is built with columns {names:?}, but src/sinks/tables/ defines {declared:?}",
                self.name
            )));
        }
        let schema = self.schema();
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
                .map_err(|e| Error::Internal(format!("building the `{}` table: {e}", self.name)))?;
        Ok(Table {
            name: self.name.into(),
            schema,
            batches: if batch.num_rows() > 0 {
                vec![batch]
            } else {
                vec![]
            },
        })
    }

    /// A table of serde rows, each a JSON object keyed by this definition's column names (a field
    /// the definition lacks is an error, so a new field cannot be dropped silently).
    fn table_of_rows<T: Serialize>(&self, rows: &[T]) -> Result<Table> {
        let schema = self.schema();
        let context = format!("building the `{}` table", self.name);
        let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .with_strict_mode(true)
            .build_decoder()
            .context(context.clone())?;
        decoder.serialize(rows).context(context.clone())?;
        let batches = decoder.flush().context(context)?.into_iter().collect();
        Ok(Table {
            name: self.name.into(),
            schema,
            batches,
        })
    }
}

/// Every output table, in the order the README lists them.
pub fn definitions() -> Vec<TableDef> {
    vec![
        features_hourly(),
        session_depth(),
        gpu_hourly(),
        quarantine(),
        workload_classes(),
        app_workload_shares(),
        app_workload_mix(),
        calibration_def(),
        simulations_def(),
        pareto_def(),
        recommendations_def(),
        cache_opportunities_def(),
        prompt_caching_def(),
        batch_opportunities_def(),
        client_defaults_def(),
        cost_drivers_def(),
        grades_def(),
        alerts_def(),
        capacity_plan_def(),
        regimes_def(),
        routing_def(),
    ]
}

/// What a run hands to the sinks, stage by stage.
pub struct RunResults<'a> {
    pub features: &'a [QueryResult],
    /// Quarantined rows, under ingest's quarantine schema.
    pub quarantine: (&'a SchemaRef, &'a [RecordBatch]),
    pub workloads: &'a Workloads,
    pub calibration: &'a [SupplyCalibration],
    pub searches: &'a [SearchResult],
    pub analysis_id: &'a str,
    pub recommendations: &'a [SupplyRecommendation],
    pub fleet: FleetResults<'a>,
    pub window_start: chrono::DateTime<chrono::Utc>,
}

/// Every output table of a run.
pub fn build(run: &RunResults) -> Result<Vec<Table>> {
    let mut tables = Vec::new();
    for result in run.features {
        let def = definitions()
            .into_iter()
            .find(|d| d.name == result.name)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "feature query `{}` has no output table in src/sinks/tables/",
                    result.name
                ))
            })?;
        tables.push(def.conformed(&result.schema, &result.batches)?);
    }
    tables.push(quarantine().conformed(run.quarantine.0, run.quarantine.1)?);
    tables.extend(workloads(run.workloads)?);
    tables.push(calibration(run.calibration)?);
    tables.extend(search(run.searches)?);
    tables.push(recommendations(run.analysis_id, run.recommendations)?);
    let (fleet, f) = (&run.fleet, run.fleet.findings);
    tables.push(cache_opportunities(&f.caching)?);
    tables.push(prompt_caching(&f.prefix_caching)?);
    tables.push(batch_opportunities(&f.batch)?);
    tables.push(client_defaults(&f.client_defaults)?);
    tables.push(cost_drivers(fleet.costs)?);
    tables.push(grades(&f.health, fleet.grades)?);
    tables.push(alerts(&f.health)?);
    tables.push(capacity_plan(
        fleet.capacity,
        run.window_start.timestamp_micros(),
    )?);
    tables.push(regimes(fleet.schedules)?);
    tables.push(routing(fleet.routes)?);
    Ok(tables)
}

pub(super) fn utc() -> DataType {
    contracts::timestamp_type()
}

fn f64_array(values: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn i64_array(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn str_array<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}
