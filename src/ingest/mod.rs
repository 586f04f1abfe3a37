//! Ingest: reads the lake's `requests` and `gpu_metrics` tables for the analysis window once, checks
//! them against the contracts, splits valid rows from quarantine and hands the stages the valid rows
//! materialised in memory.
//!
//! Only the `date=YYYY-MM-DD/` partitions that can hold rows of the window are listed at all, so
//! older and newer partitions are never opened (the report's `files_opened` proves it). Every file
//! of the window is fetched with exactly one GET and decoded from memory: its footer is checked
//! first, so a corrupted file or a column of the wrong type is an error naming the file, or, with
//! `skip_bad_files`, a recorded skip. After ingest no stage touches storage: the session it returns
//! has no object store, only in-memory tables.

pub mod import;
pub mod trace_file;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{SortColumn, SortOptions};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use bytes::Bytes;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaDataReader;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{ValidationSettings, Window};
use crate::contracts::{self, Contract};
use crate::error::{Context, Error, Result};
use crate::hash::{repeated, stable_hash64};
use crate::sql::{self, Params, Query};
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
    /// Every file of the window that was fetched (each with one GET), skipped ones included.
    pub files_opened: Vec<String>,
    pub files_skipped: Vec<SkippedFile>,
    pub rows_read: u64,
    pub rows_valid: u64,
    /// Quarantined rows per reason.
    pub quarantined: BTreeMap<String, u64>,
}

/// The ingested window: a DataFusion session whose `requests` and `gpu_metrics` tables are the
/// valid rows, in memory (no object store is registered in it), plus the quarantined rows.
pub struct Lake {
    pub ctx: SessionContext,
    pub requests: TableIngest,
    pub gpu_metrics: TableIngest,
    /// Rows that broke a contract: `source_table`, `reason`, `ts`, `row` (the row as JSON).
    pub quarantine: Vec<RecordBatch>,
}

/// The `requests` columns no stage reads (features, workloads, calibration and the traces read the
/// others): only quarantined rows carry them, so the materialised table leaves them out.
const UNREAD_REQUEST_COLUMNS: &[&str] = &["temperature"];

/// Files fetched and decoded at once: enough to hide S3 latency, few enough to bound memory.
const FILES_IN_FLIGHT: usize = 4;
/// Rows per decoded batch (DataFusion's default batch size).
const BATCH_ROWS: usize = 8192;

/// Reads and validates the lake for the window.
pub async fn ingest(input: &IngestInput) -> Result<Lake> {
    let mut params = sql::window_params(input.window.start, input.window.end);
    params.extend([
        (
            "max_prompt_tokens",
            ScalarValue::Int64(Some(input.validation.max_prompt_tokens)),
        ),
        (
            "max_completion_tokens",
            ScalarValue::Int64(Some(input.validation.max_completion_tokens)),
        ),
    ]);
    let requests_contract = contracts::requests();
    let (mut requests, checked_requests) = read_table(
        input,
        &requests_contract,
        sql::VALIDATE_REQUESTS,
        &params,
        Some("app_id"),
    )
    .await?;
    let duplicates = duplicates(&checked_requests)?;
    let columns: Vec<usize> = (0..requests_contract.schema.fields().len())
        .filter(|&i| {
            !UNREAD_REQUEST_COLUMNS.contains(&requests_contract.schema.field(i).name().as_str())
        })
        .collect();
    let (valid_requests, bad_requests) = split(checked_requests, &duplicates, &columns)?;
    let gpu_contract = contracts::gpu_metrics();
    let (mut gpu_metrics, checked_gpu) = read_table(
        input,
        &gpu_contract,
        sql::VALIDATE_GPU_METRICS,
        &params,
        None,
    )
    .await?;
    let all_gpu_columns: Vec<usize> = (0..gpu_contract.schema.fields().len()).collect();
    let (valid_gpu, bad_gpu) = split(checked_gpu, &[], &all_gpu_columns)?;
    let mut quarantine = Vec::new();
    for (table, report, bad) in [
        ("requests", &mut requests, bad_requests),
        ("gpu_metrics", &mut gpu_metrics, bad_gpu),
    ] {
        let rows = quarantine_rows(table, &bad)?;
        let reasons = rows.column(1).as_string::<i32>();
        for reason in reasons.iter().flatten() {
            *report.quarantined.entry(reason.to_string()).or_default() += 1;
        }
        report.rows_valid = report.rows_read - rows.num_rows() as u64;
        if rows.num_rows() > 0 {
            quarantine.push(rows);
        }
    }
    let ctx = sql::session();
    let requests_schema = Arc::new(
        requests_contract
            .schema
            .project(&columns)
            .context("requests columns")?,
    );
    register_memory(&ctx, "requests", requests_schema, valid_requests)?;
    register_memory(&ctx, "gpu_metrics", gpu_contract.schema, valid_gpu)?;
    Ok(Lake {
        ctx,
        requests,
        gpu_metrics,
        quarantine,
    })
}

/// Registers `batches` as table `name`, split into one partition per core (in order) so scans run
/// in parallel.
fn register_memory(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    let parts = ctx.state().config().target_partitions().max(1);
    let per_part = batches.len().div_ceil(parts).max(1);
    let mut partitions: Vec<Vec<RecordBatch>> =
        batches.chunks(per_part).map(<[_]>::to_vec).collect();
    if partitions.is_empty() {
        partitions.push(Vec::new());
    }
    let table = MemTable::try_new(schema, partitions).context(format!("materialising {name}"))?;
    ctx.register_table(name, Arc::new(table))
        .context(format!("registering {name}"))?;
    Ok(())
}

/// One table of the window: every file fetched, decoded and checked row by row in its own task (so
/// files are validated in parallel), in path order. Returns the report and the checked rows:
/// contract columns and `reason`, null where the row is valid.
async fn read_table(
    input: &IngestInput,
    contract: &Contract,
    validate: Query,
    params: &Params,
    app_column: Option<&'static str>,
) -> Result<(TableIngest, Vec<RecordBatch>)> {
    let files = list_window_files(input, contract.table).await?;
    let mut report = TableIngest::default();
    let mut skipped = Vec::new();
    let mut checked_rows = Vec::new();
    let mut checked = futures::stream::iter(files)
        .map(|meta| {
            let (input, contract, params) = (input.clone(), contract.clone(), params.clone());
            tokio::spawn(async move {
                let url = input.lake.url_of(&meta.location);
                let batches = match read_file(&input.lake, &contract, &meta, url.clone()).await {
                    Ok(batches) => batches,
                    Err(e) => return Ok((url, Err(e))),
                };
                let rows = check_rows(&input, &contract, validate, &params, app_column, batches);
                Ok((url, Ok(rows.await?)))
            })
        })
        .buffered(FILES_IN_FLIGHT);
    while let Some(task) = checked.next().await {
        let (url, file) = task.map_err(|e| Error::Internal(format!("ingest task: {e}")))??;
        let file = match file {
            Ok(file) => file,
            Err(e) if input.skip_bad_files => {
                tracing::warn!(file = %url, error = %e, "skipping bad file");
                skipped.push(SkippedFile {
                    file: url,
                    error: e.to_string(),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        report.files_opened.push(url);
        report.rows_read += file.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        checked_rows.extend(file);
    }
    report
        .files_opened
        .extend(skipped.iter().map(|s| s.file.clone()));
    report.files_skipped = skipped;
    Ok((report, checked_rows))
}

/// The first date partition of the lake's `requests/` table: how far back the lake retains data.
pub async fn oldest_request_date(lake: &Location) -> Result<Option<chrono::NaiveDate>> {
    let listed = lake
        .store
        .list_with_delimiter(Some(&lake.child("requests")))
        .await
        .map_err(|e| lake.storage_error(e))?;
    Ok(listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename()?.strip_prefix("date=")?.parse().ok())
        .min())
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

/// Fetches a file with one GET and decodes it (on a blocking thread: decoding is CPU work) into
/// batches of the contract's columns.
async fn read_file(
    lake: &Location,
    contract: &Contract,
    meta: &ObjectMeta,
    url: String,
) -> Result<Vec<RecordBatch>> {
    let bytes = lake
        .store
        .get(&meta.location)
        .await
        .map_err(|e| lake.storage_error(e))?
        .bytes()
        .await
        .map_err(|e| lake.storage_error(e))?;
    let task = {
        let (contract, url) = (contract.clone(), url.clone());
        tokio::task::spawn_blocking(move || decode(&contract, &url, bytes))
    };
    task.await.map_err(|e| Error::BadFile {
        file: url,
        message: format!("decoding task failed: {e}"),
    })?
}

/// Decodes a whole Parquet file: the footer is checked against the contract before any data page is
/// read, then the contract's columns are decoded and conformed.
fn decode(contract: &Contract, url: &str, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let bad = |message: String| Error::BadFile {
        file: url.to_string(),
        message,
    };
    let metadata = footer(&bytes).map_err(bad)?;
    let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
        .map_err(|e| bad(e.to_string()))?;
    contracts::check_schema(contract, url, metadata.schema())?;
    let wanted: Vec<usize> = (0..metadata.schema().fields().len())
        .filter(|&i| {
            let name = metadata.schema().field(i).name();
            contract.schema.field_with_name(name).is_ok()
        })
        .collect();
    let mask = ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), wanted);
    ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(e.to_string()))?
        .map(|batch| conform(contract, url, &batch.map_err(|e| bad(e.to_string()))?))
        .collect()
}

/// The footer of a whole Parquet file in memory; the error says what is broken.
fn footer(bytes: &Bytes) -> std::result::Result<parquet::file::metadata::ParquetMetaData, String> {
    let size = bytes.len();
    if size < 12 {
        return Err(format!("{size} bytes is too small to be a Parquet file"));
    }
    let tail = &bytes[size - 8..];
    if &tail[4..] != b"PAR1" {
        return Err("no Parquet footer (missing PAR1 magic): truncated or not Parquet".into());
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    if len + 12 > size {
        return Err(format!(
            "footer claims {len} bytes of metadata in a {size}-byte file"
        ));
    }
    ParquetMetaDataReader::decode_metadata(&bytes[size - 8 - len..size - 8])
        .map_err(|e| e.to_string())
}

/// Conforms a decoded batch to the contract with [`contracts::conform`], except that the lake path
/// drops a digit below the microsecond (pandas writes nanoseconds by default) where `simulate`
/// rejects it: nanosecond timestamps are truncated to microseconds first.
fn conform(contract: &Contract, file: &str, batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let column = match field.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
                let micros = DataType::Timestamp(TimeUnit::Microsecond, tz.clone());
                arrow::compute::cast(column, &micros)
                    .context(format!("{file}: column `{}`", field.name()))?
            }
            _ => column.clone(),
        };
        fields.push(
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone()),
        );
        columns.push(column);
    }
    let truncated = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .context(format!("{file}: truncating to microseconds"))?;
    contracts::conform(contract, file, &truncated)
}

/// Runs the table's validation query over one file's rows of the selected apps (rows with a null
/// app still go on to validation, which quarantines them): the rows with their `reason` (null when
/// valid), the last column.
async fn check_rows(
    input: &IngestInput,
    contract: &Contract,
    validate: Query,
    params: &Params,
    app_column: Option<&str>,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    // One partition: the file is one task's work, files run in parallel.
    let ctx = sql::session_with_partitions(1);
    let raw = format!("{}_raw", contract.table);
    let table = MemTable::try_new(contract.schema.clone(), vec![batches]).context("file rows")?;
    ctx.register_table(&raw, Arc::new(table))
        .context("registering file rows")?;
    let filter = match app_column {
        Some(column) if !input.app_ids.is_empty() => {
            let list = input
                .app_ids
                .iter()
                .map(|a| sql::quoted(a))
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
    validate.collect(&ctx, params.clone()).await
}

/// Splits checked rows (columns and `reason`) into the valid rows (only `columns`), less the
/// `duplicates` (per batch, sorted row indices), and the quarantined rows (all columns and
/// `reason`; duplicates get `duplicate_request_id`). Batches are split in parallel, each copied
/// once, and not at all when every row is kept.
fn split(
    checked: Vec<RecordBatch>,
    duplicates: &[Vec<u32>],
    columns: &[usize],
) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
    let parts: Vec<(RecordBatch, Vec<RecordBatch>)> = checked
        .into_par_iter()
        .enumerate()
        .map(|(b, batch)| {
            let copies = duplicates.get(b).map_or(&[][..], Vec::as_slice);
            let reason = batch.column(batch.num_columns() - 1);
            if reason.null_count() == batch.num_rows() && copies.is_empty() {
                return Ok((batch.project(columns).context("valid rows")?, Vec::new()));
            }
            let is_valid = arrow::compute::is_null(reason).context("classifying rows")?;
            let keep: BooleanArray = is_valid
                .iter()
                .enumerate()
                .map(|(r, valid)| {
                    Some(valid == Some(true) && copies.binary_search(&(r as u32)).is_err())
                })
                .collect();
            let valid = arrow::compute::filter_record_batch(&batch, &keep).context("valid rows")?;
            let is_bad = arrow::compute::not(&is_valid).context("classifying rows")?;
            let mut bad = vec![
                arrow::compute::filter_record_batch(&batch, &is_bad).context("quarantined rows")?,
            ];
            if !copies.is_empty() {
                let taken =
                    arrow::compute::take_record_batch(&batch, &UInt32Array::from(copies.to_vec()))
                        .context("duplicate copies")?;
                let mut with_reason = taken.columns().to_vec();
                *with_reason.last_mut().expect("a reason column") =
                    Arc::new(StringArray::from(vec![
                        "duplicate_request_id";
                        copies.len()
                    ]));
                bad.push(
                    RecordBatch::try_new(taken.schema(), with_reason)
                        .context("duplicate copies")?,
                );
            }
            bad.retain(|b| b.num_rows() > 0);
            Ok((valid.project(columns).context("valid rows")?, bad))
        })
        .collect::<Result<_>>()?;
    let mut valid = Vec::with_capacity(parts.len());
    let mut bad = Vec::new();
    for (v, q) in parts {
        if v.num_rows() > 0 {
            valid.push(v);
        }
        bad.extend(q);
    }
    Ok((valid, bad))
}

/// Of several valid rows (null `reason`) of the checked rows sharing a request id, the earliest (by
/// `ts`, then `supply_id`, `prompt_tokens`, `completion_tokens`, `e2e_ms`, nulls first, then lake
/// order) is kept; returns the others, as sorted row indices per batch. Ids are compared by 64-bit
/// hash first (sorting 8 bytes a row, not the strings); only the few hashes seen twice are
/// resolved to ids.
fn duplicates(checked: &[RecordBatch]) -> Result<Vec<Vec<u32>>> {
    let ids: Vec<&StringArray> = checked
        .iter()
        .map(|b| {
            b.column_by_name("request_id")
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| missing("requests", "request_id"))
        })
        .collect::<Result<_>>()?;
    // `reason`, null where the row is valid.
    let reasons: Vec<&dyn Array> = checked
        .iter()
        .map(|b| b.column(b.num_columns() - 1).as_ref())
        .collect();
    let per_batch: Vec<Vec<u64>> = ids
        .par_iter()
        .map(|a| {
            a.iter()
                .map(|id| stable_hash64(id.unwrap_or_default()))
                .collect()
        })
        .collect();
    let hashes: Vec<u64> = per_batch
        .iter()
        .zip(&reasons)
        .flat_map(|(h, reason)| {
            h.iter()
                .enumerate()
                .filter(|(r, _)| reason.is_null(*r))
                .map(|(_, h)| *h)
        })
        .collect();
    let repeated = repeated(hashes);
    if repeated.is_empty() {
        return Ok(Vec::new());
    }
    // (request id, ordering key, batch, row) of every row whose id hash repeats.
    let mut candidates = Vec::new();
    for (b, ((batch, ids), hashes)) in checked.iter().zip(&ids).zip(&per_batch).enumerate() {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| missing("requests", name))
        };
        let ts = column("ts")?.as_primitive::<TimestampMicrosecondType>();
        let supply = column("supply_id")?.as_string::<i32>();
        let prompt = column("prompt_tokens")?.as_primitive::<Int64Type>();
        let completion = column("completion_tokens")?.as_primitive::<Int64Type>();
        let e2e = column("e2e_ms")?.as_primitive::<Float64Type>();
        for (r, hash) in hashes.iter().enumerate() {
            if reasons[b].is_null(r) && repeated.contains(hash) {
                let id = ids.value(r);
                let e2e = e2e.is_valid(r).then(|| e2e.value(r));
                let key = (
                    ts.value(r),
                    supply.value(r),
                    prompt.value(r),
                    completion.value(r),
                );
                candidates.push((id, key, e2e, b, r));
            }
        }
    }
    candidates.sort_by(|x, y| {
        (x.0, x.1)
            .cmp(&(y.0, y.1))
            .then(match (x.2, y.2) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
            .then((x.3, x.4).cmp(&(y.3, y.4)))
    });
    let mut dropped = vec![Vec::new(); checked.len()];
    for pair in candidates.windows(2) {
        if pair[0].0 == pair[1].0 {
            dropped[pair[1].3].push(pair[1].4 as u32);
        }
    }
    for rows in &mut dropped {
        rows.sort_unstable();
    }
    Ok(dropped)
}

/// A column the validation query should have produced is missing (or of another type).
fn missing(table: &str, column: &str) -> Error {
    Error::Arrow {
        context: format!("validated {table} rows"),
        source: arrow::error::ArrowError::SchemaError(format!("no `{column}` column")),
    }
}

/// Schema of the quarantine output table.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_table", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("ts", contracts::timestamp_type(), true),
        Field::new("row", DataType::Utf8, false),
    ]))
}

/// Turns classified rows (a table's columns and `reason`) into quarantine rows: the reason, the
/// timestamp and the row as JSON, ordered by reason and time.
fn quarantine_rows(table: &str, bad: &[RecordBatch]) -> Result<RecordBatch> {
    let context = "encoding quarantined rows";
    let mut parts = Vec::with_capacity(bad.len());
    for batch in bad {
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        writer.write(batch).context(context)?;
        writer.finish().context(context)?;
        let text = String::from_utf8(writer.into_inner()).expect("arrow writes UTF-8 JSON");
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| missing(table, name))
        };
        parts.push(
            RecordBatch::try_new(
                quarantine_schema(),
                vec![
                    Arc::new(StringArray::from(vec![table; batch.num_rows()])),
                    column("reason")?,
                    arrow::compute::cast(&column("ts")?, &contracts::timestamp_type())
                        .context(context)?,
                    Arc::new(text.lines().map(Some).collect::<StringArray>()),
                ],
            )
            .context(context)?,
        );
    }
    let all = arrow::compute::concat_batches(&quarantine_schema(), &parts).context(context)?;
    let ascending = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let order = arrow::compute::lexsort_to_indices(
        &[1, 2].map(|c| SortColumn {
            values: all.column(c).clone(),
            options: Some(ascending),
        }),
        None,
    )
    .context(context)?;
    arrow::compute::take_record_batch(&all, &order).context(context)
}
