//! Output tables as Delta Lake tables (`[run] table_format = "delta"`): `<out>/<table>/` is a Delta
//! table partitioned by `run_date` and `run_id`, and a run's rows of it are replaced in one commit
//! (`replaceWhere run_id = '<id>'`), so a Delta reader sees all of a run's rows of a table or
//! none, and every earlier version stays readable (time travel). The commit's `commitInfo` carries
//! `tunelake.run_id`, so `DESCRIBE HISTORY` says which version each run wrote.
//!
//! Commits go through the table's `_delta_log/` with a create-if-absent PUT (`If-None-Match: *` on
//! S3, a no-clobber link on local disk): two writers of one version cannot both succeed, with no
//! DynamoDB lock or unsafe rename.

use std::sync::{Arc, Once};

use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use deltalake_core::datafusion::prelude::{col, lit};
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaResult, DeltaTableBuilder, DeltaTableError};
use url::Url;

use crate::error::{Context, Error, Result};
use crate::sinks::tables::Table;
use crate::storage::Location;

/// The partition columns every Delta output table carries.
const PARTITIONS: [&str; 2] = ["run_date", "run_id"];

/// Replaces `run_id`'s rows of `table` under `out` with the table's rows, in one commit (an empty
/// table withdraws the run's rows). Creates the Delta table on first use.
pub async fn replace_run(
    out: &Location,
    table: &Table,
    run_date: NaiveDate,
    run_id: &str,
) -> Result<()> {
    register_s3_log_store();
    let failed = |source: DeltaTableError| Error::Delta {
        table: out.url_of(&out.child(&table.name)),
        source: Box::new(source),
    };
    let url = Url::parse(&format!("{}/", out.url_of(&out.child(&table.name))))
        .map_err(|e| Error::Internal(format!("table URL: {e}")))?;
    // delta-rs opens local tables only in an existing directory.
    if let Ok(dir) = url.to_file_path() {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
    }
    let mut delta = DeltaTableBuilder::from_url(url)
        .map_err(failed)?
        .with_storage_backend(out.store.clone(), out.root.clone())
        .build()
        .map_err(failed)?;
    match delta.load().await {
        Ok(()) | Err(DeltaTableError::NotATable(_)) => {}
        Err(e) => return Err(failed(e)),
    }
    let batches = with_run_columns(table, run_date, run_id)?;
    delta
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(col("run_id").eq(lit(run_id)))
        .with_partition_columns(PARTITIONS)
        .with_commit_properties(
            CommitProperties::default()
                .with_metadata([("tunelake.run_id".to_string(), run_id.into())]),
        )
        .await
        .map_err(failed)?;
    Ok(())
}

/// The table's batches with `run_date` and `run_id` appended where they are not columns already;
/// at least one batch, so an empty table still has a schema.
fn with_run_columns(table: &Table, run_date: NaiveDate, run_id: &str) -> Result<Vec<RecordBatch>> {
    let mut fields: Vec<Arc<Field>> = table.schema.fields().iter().cloned().collect();
    let added: Vec<&str> = PARTITIONS
        .into_iter()
        .filter(|name| table.schema.field_with_name(name).is_err())
        .collect();
    for name in &added {
        let data_type = match *name {
            "run_date" => DataType::Date32,
            _ => DataType::Utf8,
        };
        fields.push(Arc::new(Field::new(*name, data_type, false)));
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let empty = RecordBatch::new_empty(table.schema.clone());
    let batches = if table.batches.is_empty() {
        std::slice::from_ref(&empty)
    } else {
        &table.batches[..]
    };
    batches
        .iter()
        .map(|batch| {
            let rows = batch.num_rows();
            let mut columns = batch.columns().to_vec();
            for name in &added {
                let column: ArrayRef = match *name {
                    "run_date" => {
                        Arc::new(Date32Array::from(vec![
                            Date32Type::from_naive_date(run_date);
                            rows
                        ]))
                    }
                    _ => Arc::new(StringArray::from(vec![run_id; rows])),
                };
                columns.push(column);
            }
            RecordBatch::try_new(schema.clone(), columns)
                .context(format!("adding the run columns to {}", table.name))
        })
        .collect()
}

/// delta-rs registers log stores for local disk and memory only; S3 tables use its default log
/// store too, which commits with a create-if-absent PUT (S3 conditional writes).
fn register_s3_log_store() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        logstore_factories().insert(
            Url::parse("s3://").expect("static URL"),
            Arc::new(ConditionalPutLogStore),
        );
    });
}

struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
