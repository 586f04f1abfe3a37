//! Features: the SQL files of `sql/features/`, run by DataFusion over the ingested lake with the
//! analysis window as parameters.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::prelude::SessionContext;

use crate::config::Window;
use crate::contracts;
use crate::error::{Context, Result};

/// A named result table, ready for a sink.
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

    /// A table of serde rows under an explicit schema (`(column, type)`, all nullable), so every
    /// column has a stable type for DuckDB, pandas and Spark even when a run has no rows.
    pub fn from_rows<T: serde::Serialize>(
        name: &str,
        columns: &[(&str, arrow::datatypes::DataType)],
        rows: &[T],
    ) -> Result<Table> {
        use arrow::datatypes::{Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(
            columns
                .iter()
                .map(|(c, t)| Field::new(*c, t.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let context = format!("building the `{name}` table");
        let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .build_decoder()
            .context(context.clone())?;
        decoder.serialize(rows).context(context.clone())?;
        let batches = decoder.flush().context(context)?.into_iter().collect();
        Ok(Table {
            name: name.to_string(),
            schema,
            batches,
        })
    }
}

/// Runs every feature query of `sql/features/` over the `requests` and `gpu_metrics` tables of `ctx`.
pub async fn extract(ctx: &SessionContext, window: &Window) -> Result<Vec<Table>> {
    let mut tables = Vec::new();
    for (name, sql) in crate::sql::FEATURES {
        tables.push(run_query(ctx, name, sql, window).await?);
    }
    Ok(tables)
}

/// Runs one feature query with the window parameters bound.
pub async fn run_query(
    ctx: &SessionContext,
    name: &str,
    sql: &str,
    window: &Window,
) -> Result<Table> {
    let at = |t: chrono::DateTime<chrono::Utc>| {
        ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some(contracts::UTC.into()))
    };
    let params = ParamValues::from(vec![
        ("window_start", at(window.start)),
        ("window_end", at(window.end)),
    ]);
    let context = format!("feature query sql/features/{name}.sql");
    let df = ctx
        .sql(sql)
        .await
        .and_then(|df| df.with_param_values(params))
        .context(context.clone())?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.context(context)?;
    Ok(Table {
        name: name.to_string(),
        schema,
        batches,
    })
}
