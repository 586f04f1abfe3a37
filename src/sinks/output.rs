//! Run outputs with an atomic commit.
//!
//! Layout under the output URL:
//! - `<table>/run_date=YYYY-MM-DD/run_id=<id>/part-00000.parquet` for every table;
//! - `_runs/run_id=<id>/manifest.json` and the reports;
//! - `runs/<id>.parquet`, one row naming the run, once every table of it is written;
//! - `_runs/run_id=<id>/_SUCCESS`, written last.
//!
//! A run is committed once its `_SUCCESS` exists. A run that dies leaves none, and readers (tunelake's
//! own included, see [`committed_runs`]) ignore it. Plain Parquet readers (DuckDB, Spark, pandas)
//! cannot test for a marker file, so they join the `runs` table instead: a run's row appears only
//! after all of its tables. Re-running a run id first withdraws its `runs` row and `_SUCCESS`, then
//! deletes its old files, then writes the new ones.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::config::{TableFormat, Window};
use crate::error::{Context, Result};
use crate::eval::EvalReport;
use crate::sinks::delta;
use crate::sinks::tables::{Table, eval_cases};
use crate::storage::Location;
use crate::storage::parquet::write_file;

/// A file written beside the tables (reports, snippets), relative to the run's `_runs` folder.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub relative: String,
    pub bytes: bytes::Bytes,
}

/// Identity of a run's outputs.
#[derive(Debug, Clone)]
pub struct RunOutputs<'a> {
    pub run_id: &'a str,
    pub run_date: NaiveDate,
    pub tables: &'a [Table],
    pub artifacts: &'a [Artifact],
    pub manifest: &'a serde_json::Value,
    pub window: Window,
    pub format: TableFormat,
}

fn table_dir(table: &str, run_date: NaiveDate, run_id: &str) -> String {
    format!(
        "{table}/run_date={}/run_id={run_id}",
        run_date.format("%Y-%m-%d")
    )
}

fn run_dir(run_id: &str) -> String {
    format!("_runs/run_id={run_id}")
}

fn runs_file(run_id: &str) -> String {
    format!("runs/{run_id}.parquet")
}

/// The `runs` table's one row for `run`.
fn runs_table(run: &RunOutputs<'_>) -> Result<(SchemaRef, RecordBatch)> {
    let utc = crate::contracts::timestamp_type;
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("run_date", DataType::Date32, false),
        Field::new("window_start", utc(), false),
        Field::new("window_end", utc(), false),
        Field::new("committed_at", utc(), false),
        Field::new("tunelake_version", DataType::Utf8, false),
    ]));
    let instant = |t: chrono::DateTime<chrono::Utc>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(vec![t.timestamp_micros()]).with_timezone("UTC"))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![run.run_id])),
            Arc::new(Date32Array::from(vec![Date32Type::from_naive_date(
                run.run_date,
            )])),
            instant(run.window.start),
            instant(run.window.end),
            instant(chrono::Utc::now()),
            Arc::new(StringArray::from(vec![env!("CARGO_PKG_VERSION")])),
        ],
    )
    .context("building the runs row")?;
    Ok((schema, batch))
}

/// Writes all tables and artifacts, then the manifest, then the `runs` row, then `_SUCCESS`.
pub async fn commit(out: &Location, run: &RunOutputs<'_>) -> Result<()> {
    let success = out.child(&format!("{}/_SUCCESS", run_dir(run.run_id)));
    let (runs_schema, runs_row) = runs_table(run)?;
    let runs = |batches: Vec<RecordBatch>| Table {
        name: "runs".into(),
        schema: runs_schema.clone(),
        batches,
    };
    match run.format {
        TableFormat::Parquet => delete_prefix(out, &out.child(&runs_file(run.run_id))).await?,
        TableFormat::Delta => {
            delta::replace_run(out, &runs(vec![]), run.run_date, run.run_id).await?
        }
    }
    delete_prefix(out, &success).await?;
    delete_prefix(out, &out.child(&run_dir(run.run_id))).await?;
    match run.format {
        TableFormat::Parquet => {
            for table in run.tables {
                let dir = table_dir(&table.name, run.run_date, run.run_id);
                delete_prefix(out, &out.child(&dir)).await?;
                let relative = format!("{dir}/part-00000.parquet");
                write_file(out, &relative, &table.schema, &table.batches).await?;
            }
        }
        TableFormat::Delta => {
            for table in run.tables {
                delta::replace_run(out, table, run.run_date, run.run_id).await?;
            }
        }
    }
    for artifact in run.artifacts {
        let path = out.child(&format!("{}/{}", run_dir(run.run_id), artifact.relative));
        out.put(&path, artifact.bytes.clone()).await?;
    }
    let manifest = serde_json::to_vec_pretty(run.manifest).expect("JSON values serialise");
    out.put(
        &out.child(&format!("{}/manifest.json", run_dir(run.run_id))),
        manifest.into(),
    )
    .await?;
    match run.format {
        TableFormat::Parquet => {
            write_file(out, &runs_file(run.run_id), &runs_schema, &[runs_row]).await?
        }
        TableFormat::Delta => {
            delta::replace_run(out, &runs(vec![runs_row]), run.run_date, run.run_id).await?
        }
    }
    out.put(&success, bytes::Bytes::new()).await
}

/// Writes `tunelake eval`'s `eval_cases.parquet` and `eval.md` under `out`.
pub async fn write_eval(out: &Location, report: &EvalReport) -> Result<()> {
    let table = eval_cases(report)?;
    write_file(out, "eval_cases.parquet", &table.schema, &table.batches).await?;
    out.put(&out.child("eval.md"), report.markdown().into())
        .await
}

/// Deletes every object at or below `prefix`.
async fn delete_prefix(out: &Location, prefix: &Path) -> Result<()> {
    let objects: Vec<Path> = out
        .store
        .list(Some(prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| out.storage_error(e))?;
    for path in objects {
        out.store
            .delete(&path)
            .await
            .map_err(|e| out.storage_error(e))?;
    }
    Ok(())
}

/// Run ids whose `_SUCCESS` marker exists, sorted.
pub async fn committed_runs(out: &Location) -> Result<Vec<String>> {
    let listed: Vec<Path> = out
        .store
        .list(Some(&out.child("_runs")))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| out.storage_error(e))?;
    let runs: BTreeSet<String> = listed
        .iter()
        .filter(|p| p.filename() == Some("_SUCCESS"))
        .filter_map(|p| {
            p.parts()
                .find_map(|part| part.as_ref().strip_prefix("run_id=").map(str::to_string))
        })
        .collect();
    Ok(runs.into_iter().collect())
}

/// A file of a run: an artifact (`report.html`, `snippets/<supply>/<file>`) when `table` is None,
/// else that table's Parquet part. `None` when it does not exist.
pub async fn read_run_file(
    out: &Location,
    run_id: &str,
    run_date: NaiveDate,
    table: Option<&str>,
    relative: &str,
) -> Result<Option<bytes::Bytes>> {
    let path = match table {
        Some(table) => out.child(&format!(
            "{}/part-00000.parquet",
            table_dir(table, run_date, run_id)
        )),
        None => out.child(&format!("{}/{relative}", run_dir(run_id))),
    };
    let got = match out.store.get(&path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(out.storage_error(e)),
    };
    Ok(Some(got.bytes().await.map_err(|e| out.storage_error(e))?))
}

/// A table's Parquet bytes as CSV with a header row (for spreadsheets).
pub fn parquet_to_csv(parquet: bytes::Bytes, table: &str) -> Result<Vec<u8>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(parquet, 8192)
        .context(format!("reading table {table}"))?;
    let mut writer = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(Vec::new());
    for batch in reader {
        writer
            .write(&batch.context(format!("decoding table {table}"))?)
            .context(format!("writing table {table} as CSV"))?;
    }
    Ok(writer.into_inner())
}

/// The manifest of a committed run, or `None` when the run is absent or uncommitted.
pub async fn read_manifest(out: &Location, run_id: &str) -> Result<Option<serde_json::Value>> {
    if !committed_runs(out).await?.iter().any(|r| r == run_id) {
        return Ok(None);
    }
    fetch_manifest(out, run_id).await.map(Some)
}

/// The manifests of the committed runs not in `known`, listing `out` once; each run's own read
/// or parse failure is kept with it, so one bad manifest does not hide the others.
pub async fn committed_manifests(
    out: &Location,
    known: &BTreeSet<String>,
) -> Result<Vec<(String, Result<serde_json::Value>)>> {
    let mut manifests = Vec::new();
    for run_id in committed_runs(out).await? {
        if !known.contains(&run_id) {
            let manifest = fetch_manifest(out, &run_id).await;
            manifests.push((run_id, manifest));
        }
    }
    Ok(manifests)
}

async fn fetch_manifest(out: &Location, run_id: &str) -> Result<serde_json::Value> {
    let path = out.child(&format!("{}/manifest.json", run_dir(run_id)));
    serde_json::from_slice(&out.get(&path).await?).map_err(|source| crate::Error::Json {
        context: format!("manifest of run {run_id}"),
        source,
    })
}
