//! Ingest: the lake's `requests` and `gpu_metrics` tables for the analysis window become DataFusion
//! listing tables, checked against the contracts and split into valid rows and quarantine.
//!
//! Only the `date=YYYY-MM-DD/` partitions that can hold rows of the window are listed at all, so
//! older and newer partitions are never opened (the report's `files_opened` proves it). Every file's
//! footer is read first: a corrupted file or a column of the wrong type is an error naming the file,
//! or, with `skip_bad_files`, a recorded skip.

pub mod import;
pub mod trace_file;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::prelude::{DataFrame, SessionContext, col, lit, not};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::ObjectStoreExt;
use parquet::file::metadata::ParquetMetaDataReader;
use serde::Serialize;

use crate::config::{ValidationSettings, Window};
use crate::contracts::{self, Contract};
use crate::error::{Context, Error, Result};
use crate::storage::Location;

/// What ingest needs to know: where the lake is and which slice of it to read.
#[derive(Debug, Clone)]
pub struct IngestInput {
    pub lake: Location,
    pub window: Window,
    pub app_ids: Vec<String>,
    pub validation: ValidationSettings,
    pub skip_bad_files: bool,
}

/// A file that was not read, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SkippedFile {
    pub file: String,
    pub error: String,
}

/// Per-table facts of the ingest, for the run manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableIngest {
    pub files_opened: Vec<String>,
    pub files_skipped: Vec<SkippedFile>,
    pub rows_read: u64,
    pub rows_valid: u64,
    /// Quarantined rows per reason.
    pub quarantined: BTreeMap<String, u64>,
}

/// The ingested lake: a DataFusion session in which `requests` and `gpu_metrics` are views of the
/// valid rows of the window, plus the quarantined rows.
pub struct Lake {
    pub ctx: SessionContext,
    pub requests: TableIngest,
    pub gpu_metrics: TableIngest,
    /// Rows that broke a contract: `source_table`, `reason`, `ts`, `row` (the row as JSON).
    pub quarantine: Vec<RecordBatch>,
}

/// Reads and validates the lake for the window.
pub async fn ingest(input: &IngestInput) -> Result<Lake> {
    let ctx = crate::sql::session();
    ctx.register_object_store(&input.lake.root, input.lake.store.clone());
    let params = ParamValues::from(vec![
        ("window_start", timestamp(input.window.start)),
        ("window_end", timestamp(input.window.end)),
        (
            "max_prompt_tokens",
            ScalarValue::Int64(Some(input.validation.max_prompt_tokens)),
        ),
        (
            "max_completion_tokens",
            ScalarValue::Int64(Some(input.validation.max_completion_tokens)),
        ),
    ]);
    let mut quarantine = Vec::new();
    let mut requests = TableIngest::default();
    let mut gpu_metrics = TableIngest::default();
    for (contract, report, sql, app_column) in [
        (
            contracts::requests(),
            &mut requests,
            crate::sql::VALIDATE_REQUESTS,
            Some("app_id"),
        ),
        (
            contracts::gpu_metrics(),
            &mut gpu_metrics,
            crate::sql::VALIDATE_GPU_METRICS,
            None,
        ),
    ] {
        let files = list_window_files(input, contract.table).await?;
        let (good, skipped) = check_files(input, &contract, files).await?;
        report.files_opened = good
            .iter()
            .map(|f| input.lake.url_of(&f.location))
            .collect();
        report
            .files_opened
            .extend(skipped.iter().map(|s| s.file.clone()));
        report.files_skipped = skipped;
        register_scoped(&ctx, input, &contract, &good, app_column).await?;
        let checked = ctx
            .sql(sql)
            .await
            .and_then(|df| df.with_param_values(params.clone()))
            .context(format!("validating {}", contract.table))?;
        let split = if contract.table == "requests" {
            dedupe(checked, &duplicate_request_ids(&ctx).await?)?
        } else {
            Split::without_duplicates(checked)?
        };
        let columns: Vec<&str> = contract
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let valid = split.valid.select_columns(&columns).context("valid rows")?;
        ctx.register_table(contract.table, valid.into_view())
            .context("registering valid rows")?;
        let bad = split
            .quarantined
            .sort(vec![
                col("reason").sort(true, true),
                col("ts").sort(true, true),
            ])
            .context("ordering quarantined rows")?
            .collect()
            .await
            .context(format!("collecting quarantined {}", contract.table))?;
        for batch in &bad {
            quarantine.push(quarantine_rows(contract.table, batch)?);
            let reasons = string_column(batch, "reason");
            for i in 0..reasons.len() {
                *report
                    .quarantined
                    .entry(reasons.value(i).to_string())
                    .or_default() += 1;
            }
        }
        report.rows_read = count(&ctx, &format!("{}_scoped", contract.table)).await?;
        let quarantined: u64 = report.quarantined.values().sum();
        report.rows_valid = report.rows_read - quarantined;
    }
    Ok(Lake {
        ctx,
        requests,
        gpu_metrics,
        quarantine,
    })
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some(contracts::UTC.into()))
}

/// Lists the Parquet files of `table` in the partitions of the window's dates, in path order.
async fn list_window_files(input: &IngestInput, table: &str) -> Result<Vec<ObjectMeta>> {
    let mut files = Vec::new();
    for date in input.window.dates() {
        let prefix = input
            .lake
            .child(&format!("{table}/date={}", date.format("%Y-%m-%d")));
        let listed: Vec<ObjectMeta> = input
            .lake
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| input.lake.storage_error(e))?;
        files.extend(listed.into_iter().filter(|m| {
            let name = m.location.filename().unwrap_or_default();
            name.ends_with(".parquet") && !name.starts_with(['.', '_'])
        }));
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// Reads every file's footer (concurrently: S3 latency dominates) and checks it against the contract.
async fn check_files(
    input: &IngestInput,
    contract: &Contract,
    files: Vec<ObjectMeta>,
) -> Result<(Vec<ObjectMeta>, Vec<SkippedFile>)> {
    let checks: Vec<(ObjectMeta, Result<()>)> = futures::stream::iter(files)
        .map(|meta| async move {
            let url = input.lake.url_of(&meta.location);
            let result = match footer_schema(&input.lake, &meta).await {
                Ok(schema) => contracts::check_schema(contract, &url, &schema),
                Err(message) => Err(Error::BadFile { file: url, message }),
            };
            (meta, result)
        })
        .buffered(16)
        .collect()
        .await;
    let mut good = Vec::new();
    let mut skipped = Vec::new();
    for (meta, result) in checks {
        match result {
            Ok(()) => good.push(meta),
            Err(e) if input.skip_bad_files => {
                tracing::warn!(file = %input.lake.url_of(&meta.location), error = %e, "skipping bad file");
                skipped.push(SkippedFile {
                    file: input.lake.url_of(&meta.location),
                    error: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok((good, skipped))
}

/// Reads a Parquet file's footer and returns its Arrow schema; the error says what is broken.
async fn footer_schema(
    lake: &Location,
    meta: &ObjectMeta,
) -> std::result::Result<arrow::datatypes::Schema, String> {
    const TAIL: u64 = 64 * 1024;
    let size = meta.size;
    if size < 12 {
        return Err(format!("{size} bytes is too small to be a Parquet file"));
    }
    let get = |range: std::ops::Range<u64>| async move {
        lake.store
            .get_range(&meta.location, range)
            .await
            .map_err(|e| e.to_string())
    };
    let tail = get(size - size.min(TAIL)..size).await?;
    let footer = &tail[tail.len() - 8..];
    if &footer[4..] != b"PAR1" {
        return Err("no Parquet footer (missing PAR1 magic): truncated or not Parquet".into());
    }
    let len = u64::from(u32::from_le_bytes(footer[..4].try_into().expect("4 bytes")));
    if len + 12 > size {
        return Err(format!(
            "footer claims {len} bytes of metadata in a {size}-byte file"
        ));
    }
    let metadata = if len + 8 <= tail.len() as u64 {
        tail.slice(tail.len() - 8 - len as usize..tail.len() - 8)
    } else {
        get(size - 8 - len..size - 8).await?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| e.to_string())?;
    let file = metadata.file_metadata();
    parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| e.to_string())
}

/// Registers `<table>_scoped`: the raw rows of the good files, restricted to the selected apps (rows
/// with a null app still go on to validation, which quarantines them).
async fn register_scoped(
    ctx: &SessionContext,
    input: &IngestInput,
    contract: &Contract,
    files: &[ObjectMeta],
    app_column: Option<&str>,
) -> Result<()> {
    let raw = format!("{}_raw", contract.table);
    if files.is_empty() {
        let empty =
            MemTable::try_new(contract.schema.clone(), vec![vec![]]).context("empty table")?;
        ctx.register_table(&raw, Arc::new(empty))
            .context("registering empty table")?;
    } else {
        let urls = files
            .iter()
            .map(|f| ListingTableUrl::parse(input.lake.url_of(&f.location)))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("file URLs")?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(contract.schema.clone());
        let table = ListingTable::try_new(config).context("listing table")?;
        ctx.register_table(&raw, Arc::new(table))
            .context("registering listing table")?;
    }
    let filter = match app_column {
        Some(column) if !input.app_ids.is_empty() => {
            let list = input
                .app_ids
                .iter()
                .map(|a| format!("'{}'", a.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ");
            format!(" WHERE {column} IN ({list}) OR {column} IS NULL")
        }
        _ => String::new(),
    };
    let scoped = ctx
        .sql(&format!("SELECT * FROM {raw}{filter}"))
        .await
        .context("scoping by app")?;
    ctx.register_table(format!("{}_scoped", contract.table), scoped.into_view())
        .context("registering scoped view")?;
    Ok(())
}

/// The (normally few) request ids that occur more than once among the scoped rows. Grouping 64-bit
/// hashes instead of the ids keeps the hash table a fraction of the size at 10M+ rows; the few
/// hashes seen twice are then resolved to their exact ids (a collision only adds a candidate, which
/// [`dedupe`] finds to have a single copy).
async fn duplicate_request_ids(ctx: &SessionContext) -> Result<Vec<String>> {
    let context = "finding duplicate request ids";
    let hashes = ctx
        .sql(
            "SELECT hash64(request_id) AS h FROM requests_scoped WHERE request_id IS NOT NULL \
             GROUP BY hash64(request_id) HAVING COUNT(*) > 1",
        )
        .await
        .context(context)?
        .collect()
        .await
        .context(context)?;
    let hashes: Vec<datafusion::prelude::Expr> = hashes
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .map(lit)
        .collect();
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ctx
        .table("requests_scoped")
        .await
        .and_then(|df| df.select_columns(&["request_id"]))
        .and_then(|df| {
            df.filter(
                crate::sql::hash64()
                    .call(vec![col("request_id")])
                    .in_list(hashes, false),
            )
        })
        .and_then(|df| df.distinct())
        .context(context)?
        .collect()
        .await
        .context(context)?;
    Ok(ids
        .iter()
        .flat_map(|b| {
            let ids = b.column(0).as_string::<i32>();
            (0..ids.len()).map(move |i| ids.value(i).to_string())
        })
        .collect())
}

/// Checked rows split into the valid ones and the quarantined ones (with their `reason`).
struct Split {
    valid: DataFrame,
    quarantined: DataFrame,
}

impl Split {
    fn without_duplicates(checked: DataFrame) -> Result<Self> {
        Ok(Split {
            valid: checked
                .clone()
                .filter(col("reason").is_null())
                .context("valid rows")?,
            quarantined: checked
                .filter(col("reason").is_not_null())
                .context("quarantined rows")?,
        })
    }
}

/// Of several rows sharing a request id that pass the row-wise rules, keeps the earliest and
/// quarantines the others as `duplicate_request_id`. The duplicate ids are matched with a hash-set
/// `IN` list, so rows with unique ids (nearly all) pay one lookup and no join.
fn dedupe(checked: DataFrame, duplicate_ids: &[String]) -> Result<Split> {
    let split = Split::without_duplicates(checked)?;
    if duplicate_ids.is_empty() {
        return Ok(split);
    }
    let is_duplicate = col("request_id").in_list(duplicate_ids.iter().map(lit).collect(), false);
    let copy = row_number()
        .partition_by(vec![col("request_id")])
        .order_by(
            [
                "ts",
                "supply_id",
                "prompt_tokens",
                "completion_tokens",
                "e2e_ms",
            ]
            .into_iter()
            .map(|c| col(c).sort(true, true))
            .collect(),
        )
        .build()
        .context("numbering duplicate copies")?
        .alias("copy");
    let copies = split
        .valid
        .clone()
        .filter(is_duplicate.clone())
        .and_then(|df| df.window(vec![copy]))
        .context("numbering duplicate copies")?;
    let keep = |first: bool| -> Result<DataFrame> {
        let predicate = if first {
            col("copy").eq(lit(1u64))
        } else {
            col("copy").gt(lit(1u64))
        };
        copies
            .clone()
            .filter(predicate)
            .and_then(|df| df.drop_columns(&["copy"]))
            .context("splitting duplicate copies")
    };
    let extra = keep(false)?
        .with_column("reason", lit("duplicate_request_id"))
        .context("marking duplicates")?;
    let first_copies = keep(true)?;
    Ok(Split {
        valid: split
            .valid
            .filter(not(is_duplicate))
            .and_then(|df| df.union(first_copies))
            .context("valid rows")?,
        quarantined: split.quarantined.union(extra).context("quarantined rows")?,
    })
}

async fn count(ctx: &SessionContext, table: &str) -> Result<u64> {
    let df = ctx.table(table).await.context("counting rows")?;
    Ok(df.count().await.context("counting rows")? as u64)
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .unwrap_or_else(|| panic!("validation SQL yields a string `{name}` column"))
}

/// Schema of the quarantine output table.
pub fn quarantine_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    Arc::new(Schema::new(vec![
        Field::new("source_table", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("ts", contracts::timestamp_type(), true),
        Field::new("row", DataType::Utf8, false),
    ]))
}

/// Turns classified rows into quarantine rows: the reason, the timestamp and the row as JSON.
fn quarantine_rows(table: &str, batch: &RecordBatch) -> Result<RecordBatch> {
    let mut buffer = Vec::new();
    {
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut buffer);
        writer.write(batch).context("encoding quarantined rows")?;
        writer.finish().context("encoding quarantined rows")?;
    }
    let text = String::from_utf8(buffer).expect("arrow writes UTF-8 JSON");
    let rows: StringArray = text.lines().map(Some).collect();
    let n = batch.num_rows();
    RecordBatch::try_new(
        quarantine_schema(),
        vec![
            Arc::new(StringArray::from(vec![table; n])),
            batch.column_by_name("reason").expect("reason").clone(),
            arrow::compute::cast(
                batch.column_by_name("ts").expect("ts"),
                &contracts::timestamp_type(),
            )
            .context("quarantine ts")?,
            Arc::new(rows),
        ],
    )
    .context("building quarantine rows")
}
