//! The bad-input matrix: every class of bad input a lake or a pipeline file can hold, and what
//! becomes of it: a quarantine reason, a recorded skip, or an error naming the place. Row counts add
//! up exactly: rows read = valid + quarantined.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use object_store::ObjectStoreExt;
use tunelake::catalog::Catalog;
use tunelake::config::{Overrides, PipelineFile, ValidationSettings, Window};
use tunelake::ingest::import::rows::{GpuRows, GpuWindow};
use tunelake::ingest::{IngestInput, ingest};
use tunelake::storage::Location;
use tunelake::storage::parquet::write_file;

use crate::support::{Backend, Req, SupplyToml, at, location, requests_batch, write_table};

/// The window is [2026-11-07, 2026-11-10).
fn window() -> Window {
    Window::ending_at(at("2026-11-10"), 3)
}

/// A valid chat request at `ts`.
fn ok(id: &str, ts: &str) -> Req {
    Req::ok(id, ts, "chat", 100, 10)
}

/// Request rows of every row-level class, with the reason each must get (`None`: valid).
fn request_rows() -> Vec<(Req, Option<&'static str>)> {
    let day = "2026-11-07T";
    vec![
        // Out of order within the file: valid.
        (ok("a", &format!("{day}12:00:00Z")), None),
        (ok("b", &format!("{day}03:00:00Z")), None),
        (ok("c", &format!("{day}09:30:00Z")), None),
        // Nulls in required columns.
        (
            Req {
                id: None,
                ..ok("x", &format!("{day}10:00:00Z"))
            },
            Some("null_request_id"),
        ),
        (
            Req {
                ts: None,
                ..ok("n1", &format!("{day}10:00:00Z"))
            },
            Some("null_ts"),
        ),
        (
            Req {
                app: None,
                ..ok("n2", &format!("{day}10:00:00Z"))
            },
            Some("null_app_id"),
        ),
        (
            Req {
                supply: None,
                ..ok("n3", &format!("{day}10:00:00Z"))
            },
            Some("null_supply_id"),
        ),
        (
            Req {
                prompt: None,
                ..ok("n4", &format!("{day}10:00:00Z"))
            },
            Some("null_prompt_tokens"),
        ),
        (
            Req {
                completion: None,
                ..ok("n5", &format!("{day}10:00:00Z"))
            },
            Some("null_completion_tokens"),
        ),
        // Negative and absurd token counts.
        (
            Req {
                prompt: Some(-1),
                ..ok("t1", &format!("{day}10:00:00Z"))
            },
            Some("negative_tokens"),
        ),
        (
            Req {
                cached: Some(-5),
                ..ok("t2", &format!("{day}10:00:00Z"))
            },
            Some("negative_tokens"),
        ),
        (
            Req {
                prompt: Some(1_000_000_000_000),
                ..ok("t3", &format!("{day}10:00:00Z"))
            },
            Some("tokens_above_ceiling"),
        ),
        // Three rows share an id: the earliest is kept.
        (ok("dup", &format!("{day}08:00:00Z")), None),
        (
            ok("dup", &format!("{day}08:00:01Z")),
            Some("duplicate_request_id"),
        ),
        (
            ok("dup", &format!("{day}08:00:02Z")),
            Some("duplicate_request_id"),
        ),
        // A future timestamp, and one before the window, in a window partition.
        (ok("f1", "2031-01-01T00:00:00Z"), Some("ts_after_as_of")),
        (ok("f2", "2026-11-06T23:59:59Z"), Some("ts_before_window")),
        (
            Req {
                status: Some("exploded"),
                ..ok("s1", &format!("{day}10:00:00Z"))
            },
            Some("unknown_status"),
        ),
    ]
}

/// A requests file as pandas writes it: nanosecond timestamps, 32-bit counts (conformed, valid).
async fn write_pandas_file(lake: &Location, rows: usize) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("app_id", DataType::Utf8, true),
        Field::new("supply_id", DataType::Utf8, true),
        Field::new("prompt_tokens", DataType::Int32, true),
        Field::new("completion_tokens", DataType::Int32, true),
    ]));
    let ns = at("2026-11-08T01:00:00Z").timestamp_nanos_opt().unwrap();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("ns{i}")),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..rows as i64).map(|i| ns + i * 1_000_000_007),
            )),
            Arc::new(StringArray::from_iter_values((0..rows).map(|_| "chat"))),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|_| "llama-h100"),
            )),
            Arc::new(Int32Array::from_iter_values(
                (0..rows as i32).map(|i| 10 + i),
            )),
            Arc::new(Int32Array::from_iter_values((0..rows as i32).map(|_| 5))),
        ],
    )
    .unwrap();
    write_file(
        lake,
        "requests/date=2026-11-08/pandas.parquet",
        &schema,
        &[batch],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_class_of_bad_input_is_quarantined_skipped_or_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    let rows = request_rows();
    // The row classes, one file per partition they fall in (the future row lives on the last day).
    let (last_day, first_days): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|(r, _)| r.id.as_deref() == Some("f1"));
    for (date, part) in [("2026-11-07", &first_days), ("2026-11-09", &last_day)] {
        let batch = requests_batch(&part.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>());
        write_file(
            &lake,
            &format!("requests/date={date}/rows.parquet"),
            &batch.schema(),
            &[batch],
        )
        .await
        .unwrap();
    }
    write_pandas_file(&lake, 4).await;
    // An empty file and an empty partition.
    let empty = requests_batch(&[]);
    write_file(
        &lake,
        "requests/date=2026-11-08/empty.parquet",
        &empty.schema(),
        &[],
    )
    .await
    .unwrap();
    std::fs::create_dir_all(dir.path().join("lake/requests/date=2026-11-09/nothing")).unwrap();
    // A truncated file (a real one cut in half), a corrupted one, a column of the wrong type.
    let whole = lake
        .store
        .get(&lake.child("requests/date=2026-11-07/rows.parquet"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    lake.put(
        &lake.child("requests/date=2026-11-08/truncated.parquet"),
        whole.slice(..whole.len() / 2),
    )
    .await
    .unwrap();
    let mut flipped = whole.to_vec();
    let middle = flipped.len() / 2;
    flipped[middle - 64..middle + 64].fill(0xFF);
    lake.put(
        &lake.child("requests/date=2026-11-08/corrupted.parquet"),
        flipped.into(),
    )
    .await
    .unwrap();
    let strings = Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Utf8, true),
        Field::new("ts", tunelake::contracts::timestamp_type(), true),
        Field::new("app_id", DataType::Utf8, true),
        Field::new("supply_id", DataType::Utf8, true),
        Field::new("prompt_tokens", DataType::Utf8, true),
        Field::new("completion_tokens", DataType::Utf8, true),
    ]));
    let typed = RecordBatch::try_new(
        strings.clone(),
        vec![
            Arc::new(StringArray::from(vec!["w"])),
            Arc::new(
                arrow::array::TimestampMicrosecondArray::from(vec![
                    at("2026-11-08T00:00:00Z").timestamp_micros(),
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["chat"])),
            Arc::new(StringArray::from(vec!["llama-h100"])),
            Arc::new(StringArray::from(vec!["100"])),
            Arc::new(StringArray::from(vec!["ten"])),
        ],
    )
    .unwrap();
    write_file(
        &lake,
        "requests/date=2026-11-08/strings.parquet",
        &strings,
        &[typed],
    )
    .await
    .unwrap();

    // Telemetry: two valid windows and one of each bad class.
    let window_at = |instance: Option<&'static str>, kv: f64, running: Option<f64>| GpuWindow {
        ts_us: Some(at("2026-11-08T00:00:00Z").timestamp_micros()),
        supply_id: Some("llama-h100"),
        instance_id: instance,
        num_running: running,
        num_waiting: Some(0.0),
        kv_cache_usage: Some(kv),
        gpu_util: Some(0.5),
        ..Default::default()
    };
    let mut gpu = GpuRows::with_capacity(6);
    for (window, _) in [
        (window_at(Some("i0"), 0.5, Some(3.0)), None::<&str>),
        (window_at(Some("i1"), 0.2, Some(1.0)), None),
        (window_at(None, 0.5, Some(1.0)), Some("null_instance_id")),
        (
            window_at(Some("i2"), 1.7, Some(1.0)),
            Some("fraction_out_of_range"),
        ),
        (window_at(Some("i3"), 0.5, None), Some("null_num_running")),
        (
            window_at(Some("i4"), 0.5, Some(-2.0)),
            Some("negative_gauge"),
        ),
    ] {
        gpu.push(&window);
    }
    write_table(&lake, "gpu_metrics", gpu.finish().unwrap()).await;

    let input = |skip_bad_files| IngestInput {
        lake: lake.clone(),
        window: window(),
        app_ids: vec![],
        validation: ValidationSettings::default(),
        skip_bad_files,
    };
    // Without --skip-bad-files the first bad file (in path order) stops the run, named.
    let message = ingest(&input(false)).await.err().unwrap().to_string();
    assert!(message.contains("corrupted.parquet"), "{message}");

    let read = ingest(&input(true)).await.unwrap();
    let skipped: Vec<(&str, &str)> = read
        .requests
        .files_skipped
        .iter()
        .map(|s| (s.file.rsplit('/').next().unwrap(), s.error.as_str()))
        .collect();
    assert_eq!(
        skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["corrupted.parquet", "strings.parquet", "truncated.parquet"],
        "{skipped:?}"
    );
    assert!(
        skipped[1]
            .1
            .contains("column `prompt_tokens` has type Utf8, expected Int64"),
        "{skipped:?}"
    );

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for reason in rows.iter().filter_map(|(_, r)| *r) {
        *expected.entry(reason.to_string()).or_default() += 1;
    }
    let valid_rows = rows.iter().filter(|(_, r)| r.is_none()).count() as u64 + 4;
    assert_eq!(read.requests.quarantined, expected);
    assert_eq!(read.requests.rows_valid, valid_rows);
    assert_eq!(read.requests.rows_read, rows.len() as u64 + 4);
    let quarantined: u64 = expected.values().sum();
    assert_eq!(
        read.requests.rows_read,
        read.requests.rows_valid + quarantined
    );

    let gpu_expected: BTreeMap<String, u64> = [
        "fraction_out_of_range",
        "negative_gauge",
        "null_instance_id",
        "null_num_running",
    ]
    .into_iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    assert_eq!(read.gpu_metrics.quarantined, gpu_expected);
    assert_eq!(
        (read.gpu_metrics.rows_read, read.gpu_metrics.rows_valid),
        (6, 2)
    );
    // The quarantine table holds every one of them.
    let table_rows: usize = read.quarantine.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(table_rows as u64, quarantined + 4);
}

/// Pipeline files: unknown keys (in a supply and in its `config`), an unknown engine, knob values
/// and option lists out of range:
/// each refused before any data is read, naming the key.
#[test]
fn bad_pipeline_files_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let head = "[run]\nlake = \"l\"\nout = \"o\"\n";
    // (extra lines of the supply, the key the message must name)
    let cases = [
        ("config = { max_num_seqz = 4 }", "max_num_seqz"),
        ("engine_version = \"0.33\"", "engine_version"),
        (
            "config = { gpu_memory_utilization = 1.5 }",
            "gpu_memory_utilization",
        ),
        ("config = { max_num_seqs = -3 }", "max_num_seqs"),
        ("options = { max_num_seqs = [0, 64] }", "max_num_seqs"),
    ];
    for (extra, key) in cases {
        let supply = SupplyToml {
            extra: extra.to_string(),
            ..SupplyToml::new("s", "llama-3.1-8b", "h100-sxm")
        };
        let text = crate::support::pipeline_toml(head, &[supply]);
        std::fs::write(&path, &text).unwrap();
        let planned = PipelineFile::load(&path)
            .and_then(|f| f.plan(&path, &Overrides::default(), &Catalog::bundled().unwrap()));
        let message = planned.expect_err(&text).to_string();
        assert!(message.contains(key), "{key} not in: {message}");
    }
    // An engine tunelake does not know.
    let text =
        crate::support::pipeline_toml(head, &[SupplyToml::new("s", "llama-3.1-8b", "h100-sxm")])
            .replace("engine = \"vllm\"", "engine = \"vllm-nightly\"");
    std::fs::write(&path, &text).unwrap();
    let message = PipelineFile::load(&path).expect_err(&text).to_string();
    assert!(message.contains("vllm-nightly"), "{message}");
}
