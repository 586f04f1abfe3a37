//! Parquet encoding shared by every table tunelake writes: the run's output tables (sinks) and the
//! lakes that `generate` and `import` produce, so all of them write files the same way.

use std::collections::BTreeMap;

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, NaiveDate};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::{Context, Result};
use crate::storage::Location;

/// Row-group size: large enough for good compression, small enough that row-group statistics prune
/// time ranges usefully.
const ROW_GROUP_ROWS: usize = 256 * 1024;

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(concat!("tunelake ", env!("CARGO_PKG_VERSION")).to_string())
        .build()
}

/// Encodes batches as one Parquet file in memory.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<bytes::Bytes> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema.clone(), Some(writer_properties()))
        .context("creating Parquet writer")?;
    for batch in batches {
        writer.write(batch).context("encoding Parquet")?;
    }
    writer.close().context("finishing Parquet file")?;
    Ok(buffer.into())
}

/// Writes one Parquet file at `relative` below `location`.
pub async fn write_file(
    location: &Location,
    relative: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    let bytes = encode(schema, batches)?;
    location.put(&location.child(relative), bytes).await
}

/// Streams batches of a table into a hive-partitioned lake layout,
/// `<location>/<table>/date=YYYY-MM-DD/part-<tag>-<n>.parquet`, partitioned on the UTC date of the
/// `ts` column. Files are cut at `rows_per_file`, so memory stays bounded whatever the input size.
pub struct LakeWriter {
    location: Location,
    table: String,
    schema: SchemaRef,
    tag: String,
    rows_per_file: usize,
    pending: BTreeMap<NaiveDate, (Vec<RecordBatch>, usize)>,
    files_written: BTreeMap<NaiveDate, usize>,
    rows_written: usize,
}

impl LakeWriter {
    /// `tag` distinguishes writers that write the same partitions (e.g. one per import source).
    pub fn new(location: Location, table: &str, schema: SchemaRef, tag: &str) -> Self {
        Self {
            location,
            table: table.to_string(),
            schema,
            tag: tag.to_string(),
            rows_per_file: 1_000_000,
            pending: BTreeMap::new(),
            files_written: BTreeMap::new(),
            rows_written: 0,
        }
    }

    pub fn with_rows_per_file(mut self, rows: usize) -> Self {
        self.rows_per_file = rows.max(1);
        self
    }

    /// Buffers a batch (already conformed to the writer's schema), splitting it by date, and flushes
    /// every date partition that reached `rows_per_file`.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let ts = batch
            .column_by_name("ts")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .expect("lake tables carry a microsecond `ts` column");
        let mut dates: Vec<NaiveDate> = (0..ts.len())
            .map(|i| date_of(if ts.is_valid(i) { ts.value(i) } else { 0 }))
            .collect();
        let first = dates[0];
        if dates.iter().all(|d| *d == first) {
            self.push(first, batch).await?;
        } else {
            let mut distinct = dates.clone();
            distinct.sort();
            distinct.dedup();
            for date in distinct {
                let mask: arrow::array::BooleanArray =
                    dates.iter().map(|d| Some(*d == date)).collect();
                let part = filter_record_batch(&batch, &mask).context("splitting by date")?;
                self.push(date, part).await?;
            }
        }
        dates.clear();
        Ok(())
    }

    async fn push(&mut self, date: NaiveDate, batch: RecordBatch) -> Result<()> {
        let entry = self.pending.entry(date).or_default();
        entry.1 += batch.num_rows();
        entry.0.push(batch);
        if entry.1 >= self.rows_per_file {
            self.flush(date).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, date: NaiveDate) -> Result<()> {
        let Some((batches, rows)) = self.pending.remove(&date) else {
            return Ok(());
        };
        let n = self.files_written.entry(date).or_default();
        let relative = format!(
            "{}/date={}/part-{}-{:05}.parquet",
            self.table,
            date.format("%Y-%m-%d"),
            self.tag,
            n
        );
        *n += 1;
        write_file(&self.location, &relative, &self.schema, &batches).await?;
        self.rows_written += rows;
        Ok(())
    }

    /// Flushes what is buffered; returns the number of rows written.
    pub async fn finish(mut self) -> Result<usize> {
        let dates: Vec<NaiveDate> = self.pending.keys().copied().collect();
        for date in dates {
            self.flush(date).await?;
        }
        Ok(self.rows_written)
    }
}

fn date_of(micros: i64) -> NaiveDate {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}
