//! Features: the SQL files of `sql/features/`, run by DataFusion over the ingested window (in
//! memory) with the analysis window as parameters.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::config::Window;
use crate::error::{Context, Result};
use crate::sql::Query;

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
    for (name, query) in crate::sql::FEATURES {
        tables.push(run_query(ctx, name, query, window).await?);
    }
    Ok(tables)
}

/// Runs one feature query with the window parameters bound; `name` names the output table.
pub async fn run_query(
    ctx: &SessionContext,
    name: &str,
    query: &Query,
    window: &Window,
) -> Result<Table> {
    let df = query
        .frame(ctx, crate::sql::window_params(window.start, window.end))
        .await?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.context(query.path)?;
    Ok(Table {
        name: name.to_string(),
        schema,
        batches,
    })
}
