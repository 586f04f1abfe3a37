//! Features: the SQL files of `sql/features/`, run by DataFusion over the ingested window (in
//! memory) with the analysis window as parameters.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::config::Window;
use crate::error::{Context, Result};
use crate::sql::Query;

/// The rows of one feature query, under the schema DataFusion gave them (kept for a query that
/// returns no rows, so its output table still has its columns).
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The query's file name under `sql/features/`, which is also its output table's name.
    pub name: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Runs every feature query of `sql/features/` over the `requests` and `gpu_metrics` tables of `ctx`.
pub async fn extract(ctx: &SessionContext, window: &Window) -> Result<Vec<QueryResult>> {
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
) -> Result<QueryResult> {
    let df = query
        .frame(ctx, crate::sql::window_params(window.start, window.end))
        .await?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.context(query.path)?;
    Ok(QueryResult {
        name: name.to_string(),
        schema,
        batches,
    })
}
