//! The data contracts: the columns tunelake reads from a lake and how foreign Parquet is conformed to
//! them. Types are chosen so DuckDB, pandas and Spark read our own tables without surprises: signed
//! 64-bit integers, `float64`, UTF-8 strings and microsecond UTC timestamps.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// The timezone every timestamp is stored in.
pub const UTC: &str = "UTC";

/// Request statuses the contract accepts; anything else is quarantined.
pub const STATUSES: [&str; 4] = ["ok", "error", "timeout", "cancelled"];

/// Microsecond UTC timestamp, the one timestamp type of every contract.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// A contract: a named table, its columns and which of them are required.
#[derive(Debug, Clone)]
pub struct Contract {
    pub table: &'static str,
    pub schema: SchemaRef,
    /// Columns every file must have.
    required: &'static [&'static str],
    /// Required columns whose values may not be null; a null there sends the row to quarantine.
    pub non_null: &'static [&'static str],
}

impl Contract {
    pub fn required(&self) -> &[&'static str] {
        self.required
    }

    pub fn is_required(&self, column: &str) -> bool {
        self.required.contains(&column)
    }
}

fn field(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

/// One row per LLM request.
pub fn requests() -> Contract {
    use DataType::*;
    let fields = vec![
        field("request_id", Utf8),
        field("ts", timestamp_type()),
        field("app_id", Utf8),
        field("supply_id", Utf8),
        field("prompt_tokens", Int64),
        field("completion_tokens", Int64),
        field("session_id", Utf8),
        field("cached_tokens", Int64),
        // Id of a shared prompt prefix (system prompt, template) and its length in tokens.
        field("prefix_hash", Utf8),
        field("prefix_tokens", Int64),
        // Mooncake-style chain: one id per `prefix_block_tokens`-token block of the prompt; equal ids at
        // equal positions mean a reusable KV prefix.
        field(
            "prefix_block_hashes",
            List(Arc::new(Field::new("item", Int64, true))),
        ),
        field("prefix_block_tokens", Int64),
        field("prompt_hash", Utf8),
        field("max_tokens", Int64),
        field("temperature", Float64),
        field("queue_ms", Float64),
        field("ttft_ms", Float64),
        field("e2e_ms", Float64),
        field("status", Utf8),
        field("finish_reason", Utf8),
        field("cost_usd", Float64),
        field("feedback", Float64),
    ];
    Contract {
        table: "requests",
        schema: Arc::new(Schema::new(fields)),
        required: &[
            "request_id",
            "ts",
            "app_id",
            "supply_id",
            "prompt_tokens",
            "completion_tokens",
        ],
        non_null: &[
            "request_id",
            "ts",
            "app_id",
            "supply_id",
            "prompt_tokens",
            "completion_tokens",
        ],
    }
}

/// One row per scrape window per serving instance. Gauges are window means; counters are turned into
/// per-second rates over the window. Meanings follow vLLM's Prometheus metrics and DCGM:
/// `num_running` = `vllm:num_requests_running`, `num_waiting` = `vllm:num_requests_waiting`,
/// `kv_cache_usage` = `vllm:kv_cache_usage_perc` (0-1), `gpu_util` = `DCGM_FI_DEV_GPU_UTIL` / 100,
/// `prompt_tokens_per_s` / `generation_tokens_per_s` = rate of `vllm:prompt_tokens_total` /
/// `vllm:generation_tokens_total`, `mean_itl_ms` = mean of `vllm:inter_token_latency_seconds`,
/// `mean_queue_ms` = mean of `vllm:request_queue_time_seconds`, `requests_per_s` = arrival rate,
/// `mem_used_bytes` = `DCGM_FI_DEV_FB_USED` (MiB in DCGM, bytes here), `power_w` =
/// `DCGM_FI_DEV_POWER_USAGE`, `preemptions` = increase of `vllm:num_preemptions_total` in the window,
/// `mean_ttft_ms` / `p95_ttft_ms` = mean and 95th percentile of `vllm:time_to_first_token_seconds`
/// over the window (optional: lakes written before they existed read them as null).
pub fn gpu_metrics() -> Contract {
    use DataType::*;
    let fields = vec![
        field("ts", timestamp_type()),
        field("supply_id", Utf8),
        field("instance_id", Utf8),
        field("num_running", Float64),
        field("num_waiting", Float64),
        field("kv_cache_usage", Float64),
        field("gpu_util", Float64),
        field("window_s", Float64),
        field("requests_per_s", Float64),
        field("prompt_tokens_per_s", Float64),
        field("generation_tokens_per_s", Float64),
        field("mean_itl_ms", Float64),
        field("mean_queue_ms", Float64),
        field("mem_used_bytes", Int64),
        field("power_w", Float64),
        field("preemptions", Float64),
        field("mean_ttft_ms", Float64),
        field("p95_ttft_ms", Float64),
    ];
    Contract {
        table: "gpu_metrics",
        schema: Arc::new(Schema::new(fields)),
        required: &[
            "ts",
            "supply_id",
            "instance_id",
            "num_running",
            "num_waiting",
            "kv_cache_usage",
            "gpu_util",
        ],
        // Exporters that do not record a gauge (no DCGM, no KV metric) write nulls rather than guesses.
        non_null: &["ts", "supply_id", "instance_id", "num_running"],
    }
}

/// How a column found in a file can become the contract's type.
fn conversion(found: &DataType, expected: &DataType) -> Option<Conversion> {
    use DataType::*;
    match (found, expected) {
        (f, e) if f == e => Some(Conversion::Same),
        (Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32, Int64) => Some(Conversion::Cast),
        // u64 and values that do not fit are caught by the checked cast.
        (UInt64, Int64) => Some(Conversion::Cast),
        (Float16 | Float32, Float64) => Some(Conversion::Cast),
        (Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32, Float64) => Some(Conversion::Cast),
        (LargeUtf8 | Utf8View, Utf8) => Some(Conversion::Cast),
        (Dictionary(_, value), Utf8) if matches!(**value, Utf8 | LargeUtf8 | Utf8View) => {
            Some(Conversion::Cast)
        }
        (Timestamp(unit, _), Timestamp(TimeUnit::Microsecond, _)) => Some(match unit {
            TimeUnit::Nanosecond => Conversion::NanosToMicros,
            _ => Conversion::Cast,
        }),
        (List(f) | LargeList(f), List(e)) if conversion(f.data_type(), e.data_type()).is_some() => {
            Some(Conversion::Cast)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Conversion {
    Same,
    Cast,
    /// Lossless only when no value carries sub-microsecond digits; checked per batch.
    NanosToMicros,
}

/// Checks a file's schema against the contract without reading data: every required column present,
/// every known column of a convertible type. Unknown extra columns are allowed and ignored.
pub fn check_schema(contract: &Contract, file: &str, found: &Schema) -> Result<()> {
    for expected in contract.schema.fields() {
        match found.field_with_name(expected.name()) {
            Ok(f) => {
                if conversion(f.data_type(), expected.data_type()).is_none() {
                    return Err(type_error(file, expected, f.data_type()));
                }
            }
            Err(_) if contract.is_required(expected.name()) => {
                return Err(Error::MissingColumn {
                    file: file.to_string(),
                    column: expected.name().clone(),
                });
            }
            Err(_) => {}
        }
    }
    Ok(())
}

fn type_error(file: &str, expected: &Field, found: &DataType) -> Error {
    Error::ColumnType {
        file: file.to_string(),
        column: expected.name().clone(),
        expected: expected.data_type().to_string(),
        found: found.to_string(),
    }
}

/// Conforms a batch to the contract: columns in contract order, lossless casts applied, absent optional
/// columns filled with nulls, extra columns dropped. A cast that would lose information is an error
/// naming the file and column.
pub fn conform(contract: &Contract, file: &str, batch: &RecordBatch) -> Result<RecordBatch> {
    check_schema(contract, file, &batch.schema())?;
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = contract
        .schema
        .fields()
        .iter()
        .map(|expected| -> Result<ArrayRef> {
            let Some(column) = batch.column_by_name(expected.name()) else {
                return Ok(arrow::array::new_null_array(
                    expected.data_type(),
                    batch.num_rows(),
                ));
            };
            let conv = conversion(column.data_type(), expected.data_type())
                .expect("checked by check_schema");
            let lossy = |_| type_error(file, expected, column.data_type());
            match conv {
                Conversion::Same => Ok(column.clone()),
                Conversion::Cast => {
                    // Naive timestamps are taken as UTC (documented in the contract).
                    cast_with_options(column, expected.data_type(), &options).map_err(lossy)
                }
                Conversion::NanosToMicros => {
                    let micros = cast_with_options(column, expected.data_type(), &options)
                        .map_err(lossy)?;
                    let nanos = cast_with_options(
                        column,
                        &DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into())),
                        &options,
                    )
                    .map_err(lossy)?;
                    let nanos = nanos
                        .as_any()
                        .downcast_ref::<arrow::array::TimestampNanosecondArray>()
                        .expect("cast to nanoseconds");
                    if let Some(row) = (0..nanos.len())
                        .find(|&i| nanos.is_valid(i) && nanos.value(i).rem_euclid(1000) != 0)
                    {
                        return Err(Error::BadRow {
                            file: file.to_string(),
                            row,
                            message: format!(
                                "column `{}` has sub-microsecond precision; tunelake stores microseconds",
                                expected.name()
                            ),
                        });
                    }
                    debug_assert!(
                        micros
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .is_some()
                    );
                    Ok(micros)
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(contract.schema.clone(), columns).map_err(|source| Error::Arrow {
        context: format!("{file}: conforming to the {} contract", contract.table),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray, TimestampNanosecondArray, UInt64Array};

    fn minimal_requests(ts: ArrayRef, tokens: ArrayRef) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("request_id", DataType::Utf8, false),
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("app_id", DataType::Utf8, false),
            Field::new("supply_id", DataType::Utf8, false),
            Field::new("prompt_tokens", tokens.data_type().clone(), true),
            Field::new("completion_tokens", tokens.data_type().clone(), true),
        ]);
        let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        RecordBatch::try_new(
            Arc::new(schema),
            vec![s("r1"), ts, s("chat"), s("llama"), tokens.clone(), tokens],
        )
        .unwrap()
    }

    #[test]
    fn integer_widths_and_nanosecond_timestamps_are_cast_when_lossless() {
        let ts = Arc::new(TimestampNanosecondArray::from(vec![
            1_700_000_000_000_000_000,
        ])) as ArrayRef;
        let tokens = Arc::new(Int32Array::from(vec![42])) as ArrayRef;
        let batch = conform(&requests(), "f.parquet", &minimal_requests(ts, tokens)).unwrap();
        assert_eq!(batch.schema(), requests().schema);
        assert_eq!(
            batch.column_by_name("cached_tokens").unwrap().null_count(),
            1
        );
    }

    #[test]
    fn sub_microsecond_timestamps_are_an_error_naming_the_row() {
        let ts = Arc::new(TimestampNanosecondArray::from(vec![
            1_700_000_000_000_000_001,
        ])) as ArrayRef;
        let tokens = Arc::new(Int32Array::from(vec![42])) as ArrayRef;
        let err = conform(&requests(), "f.parquet", &minimal_requests(ts, tokens)).unwrap_err();
        assert!(err.to_string().contains("f.parquet, row 0"), "{err}");
    }

    #[test]
    fn u64_that_does_not_fit_is_an_error_naming_file_and_column() {
        let ts = Arc::new(TimestampNanosecondArray::from(vec![0])) as ArrayRef;
        let tokens = Arc::new(UInt64Array::from(vec![u64::MAX])) as ArrayRef;
        let err = conform(&requests(), "f.parquet", &minimal_requests(ts, tokens)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("f.parquet") && msg.contains("prompt_tokens"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_types_and_missing_columns_are_named() {
        let found = Schema::new(vec![Field::new("prompt_tokens", DataType::Utf8, true)]);
        let err = check_schema(&requests(), "x.parquet", &found).unwrap_err();
        assert!(matches!(err, Error::MissingColumn { ref column, .. } if column == "request_id"));
        let mut fields: Vec<Field> = requests()
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[4] = Field::new("prompt_tokens", DataType::Float64, true);
        let err = check_schema(&requests(), "x.parquet", &Schema::new(fields)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.parquet: column `prompt_tokens` has type Float64, expected Int64"
        );
    }
}
