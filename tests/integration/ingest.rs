//! Ingest: bad files are named, or skipped and recorded on request; other types are conformed.

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use tunelake::config::{ValidationSettings, Window};
use tunelake::ingest::{IngestInput, ingest};
use tunelake::storage::parquet::write_file;

use crate::fixture;
use crate::support::{Backend, at, location};

fn input(lake: tunelake::storage::Location, skip_bad_files: bool) -> IngestInput {
    IngestInput {
        lake,
        window: Window::ending_at(at(fixture::AS_OF), fixture::PERIOD_DAYS),
        app_ids: vec![],
        validation: ValidationSettings::default(),
        skip_bad_files,
    }
}

#[tokio::test]
async fn a_corrupt_file_in_the_window_is_named_or_skipped_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    fixture::write(&lake).await;
    let bad = lake.child("requests/date=2026-11-08/truncated.parquet");
    lake.put(&bad, bytes::Bytes::from_static(b"PAR1\x00\x00truncated"))
        .await
        .unwrap();

    let err = ingest(&input(lake.clone(), false)).await.err().unwrap();
    let message = err.to_string();
    assert!(message.contains("truncated.parquet"), "{message}");
    assert!(
        message.contains("unreadable or corrupted Parquet"),
        "{message}"
    );

    let lake_read = ingest(&input(lake, true)).await.unwrap();
    assert_eq!(lake_read.requests.files_skipped.len(), 1);
    assert!(
        lake_read.requests.files_skipped[0]
            .file
            .contains("truncated.parquet")
    );
    assert_eq!(
        lake_read.requests.rows_valid,
        fixture::VALID_REQUESTS + 2,
        "without an app filter the other app's row counts, and 200k tokens pass the default ceiling"
    );
}

#[tokio::test]
async fn a_column_of_the_wrong_type_names_file_column_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    let schema = Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Utf8, true),
        Field::new("ts", tunelake::contracts::timestamp_type(), true),
        Field::new("app_id", DataType::Utf8, true),
        Field::new("supply_id", DataType::Utf8, true),
        Field::new("prompt_tokens", DataType::Float64, true),
        Field::new("completion_tokens", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(
                arrow::array::TimestampMicrosecondArray::from(vec![
                    at("2026-11-08T00:00:00Z").timestamp_micros(),
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["chat"])),
            Arc::new(StringArray::from(vec!["s"])),
            Arc::new(Float64Array::from(vec![1.5])),
            Arc::new(Float64Array::from(vec![2.0])),
        ],
    )
    .unwrap();
    write_file(
        &lake,
        "requests/date=2026-11-08/floats.parquet",
        &schema,
        &[batch],
    )
    .await
    .unwrap();
    let message = ingest(&input(lake, false)).await.err().unwrap().to_string();
    assert!(
        message
            .ends_with("floats.parquet: column `prompt_tokens` has type Float64, expected Int64"),
        "{message}"
    );
}

/// A file as pandas writes it: nanosecond timestamps without a time zone and 32-bit counts. The lake
/// path reads it as UTC microseconds (the digit below the microsecond dropped) and 64-bit counts.
#[tokio::test]
async fn nanosecond_timestamps_and_narrow_integers_are_conformed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    let schema = Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None),
            true,
        ),
        Field::new("app_id", DataType::Utf8, true),
        Field::new("supply_id", DataType::Utf8, true),
        Field::new("prompt_tokens", DataType::Int32, true),
        Field::new("completion_tokens", DataType::Int32, true),
    ]));
    let micros = at("2026-11-08T00:00:00Z").timestamp_micros() + 1;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(arrow::array::TimestampNanosecondArray::from(vec![
                micros * 1000 + 999,
            ])),
            Arc::new(StringArray::from(vec!["chat"])),
            Arc::new(StringArray::from(vec!["s"])),
            Arc::new(arrow::array::Int32Array::from(vec![7])),
            Arc::new(arrow::array::Int32Array::from(vec![3])),
        ],
    )
    .unwrap();
    write_file(
        &lake,
        "requests/date=2026-11-08/pandas.parquet",
        &schema,
        &[batch],
    )
    .await
    .unwrap();
    let read = ingest(&input(lake, false)).await.unwrap();
    assert_eq!(read.requests.rows_valid, 1);
    let rows = read
        .ctx
        .sql("SELECT ts, prompt_tokens FROM requests")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let ts = rows[0]
        .column(0)
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(ts.value(0), micros);
    assert_eq!(ts.timezone(), Some("UTC"));
    assert_eq!(
        rows[0]
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        7
    );
}
