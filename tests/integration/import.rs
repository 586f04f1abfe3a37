//! Importers on the real public traces in `../shared/datasets`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tunelake::contracts;
use tunelake::ingest::import::{self, Format, ImportOptions};
use tunelake::storage::Location;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets");

fn data(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

/// Reads every Parquet file of `table` below `lake`, checking each against the contract.
pub fn read_table(lake: &Path, table: &str) -> Vec<RecordBatch> {
    let contract = match table {
        "requests" => contracts::requests(),
        _ => contracts::gpu_metrics(),
    };
    let mut files = Vec::new();
    let mut stack = vec![lake.join(table)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut batches = Vec::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            assert_eq!(b.schema(), contract.schema, "{}", f.display());
            let conformed = contracts::conform(&contract, &f.display().to_string(), &b).unwrap();
            batches.push(conformed);
        }
    }
    batches
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

async fn run(
    format: Format,
    input: &Path,
    options: &ImportOptions,
) -> (tempfile::TempDir, tunelake::ingest::import::ImportSummary) {
    let dir = tempfile::tempdir().unwrap();
    let out = Location::parse(dir.path().to_str().unwrap(), None).unwrap();
    let summary = import::import(format, input, &out, options).await.unwrap();
    (dir, summary)
}

fn assert_unique_ids(b: &RecordBatch) {
    let ids = col::<StringArray>(b, "request_id");
    assert_eq!(ids.null_count(), 0);
    let set: HashSet<&str> = ids.iter().flatten().collect();
    assert_eq!(set.len(), b.num_rows(), "request ids are unique");
}

#[tokio::test]
async fn azure_code_and_conv_import_whole() {
    for (file, rows, app, first_in, first_out) in [
        (
            "AzureLLMInferenceTrace_code.csv",
            8819,
            "azure-code",
            4808,
            10,
        ),
        (
            "AzureLLMInferenceTrace_conv.csv",
            19366,
            "azure-conv",
            374,
            44,
        ),
    ] {
        let input = data(&format!("azure-llm-2023/{file}"));
        let (dir, summary) = run(Format::Azure, &input, &ImportOptions::default()).await;
        assert_eq!(summary.rows["requests"], rows);
        let b = concat(&read_table(dir.path(), "requests"));
        assert_eq!(b.num_rows(), rows);
        assert_unique_ids(&b);
        assert!(dir.path().join("requests/date=2023-11-16").is_dir());
        let ids = col::<StringArray>(&b, "request_id");
        let row = (0..b.num_rows())
            .find(|&i| ids.value(i) == format!("{app}-1"))
            .unwrap();
        assert_eq!(col::<StringArray>(&b, "app_id").value(row), app);
        assert_eq!(col::<Int64Array>(&b, "prompt_tokens").value(row), first_in);
        assert_eq!(
            col::<Int64Array>(&b, "completion_tokens").value(row),
            first_out
        );
        let ts = col::<TimestampMicrosecondArray>(&b, "ts").value(row);
        let expected = if app == "azure-code" {
            "2023-11-16T18:17:03.979960Z"
        } else {
            "2023-11-16T18:15:46.680590Z"
        };
        assert_eq!(
            chrono::DateTime::from_timestamp_micros(ts)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            expected
        );
    }
}

#[tokio::test]
async fn azure_start_shifts_the_first_row() {
    let input = data("azure-llm-2023/AzureLLMInferenceTrace_code.csv");
    let options = ImportOptions {
        start: Some(import::parse_start("2025-01-01").unwrap()),
        app_id: Some("code".into()),
        ..Default::default()
    };
    let (dir, _) = run(Format::Azure, &input, &options).await;
    let b = concat(&read_table(dir.path(), "requests"));
    let ts = col::<TimestampMicrosecondArray>(&b, "ts");
    let min = (0..ts.len()).map(|i| ts.value(i)).min().unwrap();
    assert_eq!(
        min,
        import::parse_start("2025-01-01")
            .unwrap()
            .timestamp_micros()
    );
    assert_eq!(col::<StringArray>(&b, "app_id").value(0), "code");
}

#[tokio::test]
async fn mooncake_conversation_keeps_prefix_blocks() {
    let input = data("mooncake-fast25/conversation_trace.jsonl");
    let (dir, summary) = run(Format::Mooncake, &input, &ImportOptions::default()).await;
    assert_eq!(summary.rows["requests"], 12031);
    let b = concat(&read_table(dir.path(), "requests"));
    assert_eq!(b.num_rows(), 12031);
    assert_unique_ids(&b);
    let ids = col::<StringArray>(&b, "request_id");
    let row = (0..b.num_rows())
        .find(|&i| ids.value(i) == "mooncake-conversation-1")
        .unwrap();
    assert_eq!(col::<Int64Array>(&b, "prompt_tokens").value(row), 6758);
    assert_eq!(col::<Int64Array>(&b, "completion_tokens").value(row), 500);
    assert_eq!(col::<StringArray>(&b, "prefix_hash").value(row), "0");
    assert_eq!(col::<Int64Array>(&b, "prefix_block_tokens").value(row), 512);
    let blocks = b
        .column_by_name("prefix_block_hashes")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::ListArray>()
        .unwrap()
        .value(row);
    let blocks = blocks.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(blocks.values().to_vec(), (0..14).collect::<Vec<i64>>());
    assert_eq!(
        col::<Int64Array>(&b, "cached_tokens").null_count(),
        b.num_rows()
    );
    let ts = col::<TimestampMicrosecondArray>(&b, "ts");
    assert_eq!(
        ts.value(row),
        import::parse_start("2025-02-21")
            .unwrap()
            .timestamp_micros()
    );
}

#[tokio::test]
async fn inferno_windows_follow_littles_law() {
    let input = data("llm-inferno-tuner/tuner-exp13.csv");
    let (dir, summary) = run(Format::Inferno, &input, &ImportOptions::default()).await;
    assert_eq!(summary.rows["gpu_metrics"], 86);
    assert!(summary.notes.iter().any(|n| n.contains("max_num_seqs")));
    let b = concat(&read_table(dir.path(), "gpu_metrics"));
    assert_eq!(b.num_rows(), 86);
    let ts = col::<TimestampMicrosecondArray>(&b, "ts");
    let mut times: Vec<i64> = (0..86).map(|i| ts.value(i)).collect();
    times.sort();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 60_000_000));
    let first = (0..86).position(|i| ts.value(i) == times[0]).unwrap();
    let f = |name| col::<Float64Array>(&b, name).value(first);
    assert_eq!(f("num_running"), 29.0);
    assert!((f("requests_per_s") - 636.05 / 60.0).abs() < 1e-9);
    assert!((f("generation_tokens_per_s") - 636.05 / 60.0 * 1015.23).abs() < 1e-6);
    assert!((f("num_waiting") - 636.05 / 60.0 * 0.00336 / 1000.0).abs() < 1e-12);
    assert!((f("mean_itl_ms") - 2.713109).abs() < 1e-12);
    assert_eq!(col::<Float64Array>(&b, "kv_cache_usage").null_count(), 86);
    assert_eq!(col::<Float64Array>(&b, "gpu_util").null_count(), 86);
}

#[tokio::test]
async fn burstgpt_run_measures_characters_per_token() {
    for (input, scale) in [
        (data("vllm-burstgpt-replay-logs"), Some(500)),
        (
            data("vllm-burstgpt-replay-logs/detail_log/detail_log_scale1000_prompt500.json"),
            None,
        ),
    ] {
        let options = ImportOptions {
            scale,
            ..Default::default()
        };
        let (dir, summary) = run(Format::Burstgpt, &input, &options).await;
        assert_eq!(summary.rows["requests"], 500);
        let ratio = import::burstgpt::chars_per_token(&summary.notes).unwrap();
        assert!((2.0..8.0).contains(&ratio), "chars/token {ratio}");
        let r = concat(&read_table(dir.path(), "requests"));
        assert_eq!(r.num_rows(), 500);
        assert_unique_ids(&r);
        let g = concat(&read_table(dir.path(), "gpu_metrics"));
        let expected_windows = if scale == Some(500) { 290 } else { 269 };
        assert_eq!(g.num_rows(), expected_windows);
        let kv = col::<Float64Array>(&g, "kv_cache_usage");
        let max_kv = kv.iter().flatten().fold(0.0, f64::max);
        assert!(
            max_kv > 0.0 && max_kv <= 0.474 + 1e-9,
            "kv fraction {max_kv}"
        );
        let util = col::<Float64Array>(&g, "gpu_util");
        assert!(util.iter().flatten().all(|u| (0.0..=1.0).contains(&u)));
        let mem = col::<Int64Array>(&g, "mem_used_bytes");
        assert!(
            mem.iter()
                .flatten()
                .all(|m| m % 1_048_576 == 0 && m > 1 << 30)
        );
        if scale == Some(500) {
            let ids = col::<StringArray>(&r, "request_id");
            let row = (0..500)
                .find(|&i| ids.value(i) == "burstgpt-s500-0")
                .unwrap();
            assert_eq!(col::<Int64Array>(&r, "prompt_tokens").value(row), 476);
            let ttft = col::<Float64Array>(&r, "ttft_ms").value(row);
            assert!((ttft - 26.48049220442772).abs() < 1e-9);
            let completion = col::<Int64Array>(&r, "completion_tokens").value(row);
            assert_eq!(completion, (409.0_f64 / ratio).round() as i64);
            assert_eq!(col::<Int64Array>(&r, "max_tokens").value(row), 1024);
        }
    }
}

#[tokio::test]
async fn blis_uses_max_tokens_and_timeouts() {
    let file = "20260217-155451-llama-2-7b-tp1-codegen";
    let input = data(&format!("blis-vllm-h100-replay/requests/{file}.csv"));
    let (dir, summary) = run(Format::Blis, &input, &ImportOptions::default()).await;
    assert_eq!(summary.rows["requests"], 9000);
    let b = concat(&read_table(dir.path(), "requests"));
    assert_unique_ids(&b);
    let ids = col::<StringArray>(&b, "request_id");
    let row = (0..b.num_rows())
        .find(|&i| ids.value(i) == format!("blis-{file}-0"))
        .unwrap();
    assert_eq!(col::<StringArray>(&b, "app_id").value(row), "codegen");
    assert_eq!(col::<StringArray>(&b, "supply_id").value(row), file);
    assert_eq!(col::<Int64Array>(&b, "prompt_tokens").value(row), 591);
    assert_eq!(col::<Int64Array>(&b, "completion_tokens").value(row), 247);
    assert!((col::<Float64Array>(&b, "ttft_ms").value(row) - 130.22364300013578).abs() < 1e-9);
    assert_eq!(
        col::<TimestampMicrosecondArray>(&b, "ts").value(row),
        import::parse_start("2026-02-17T15:54:51Z")
            .unwrap()
            .timestamp_micros()
    );

    // An overloaded run: every failure is a timeout with no tokens.
    let file = "20260217-170634-llama-2-7b-tp1-reasoning";
    let input = data(&format!("blis-vllm-h100-replay/requests/{file}.csv"));
    let (dir, summary) = run(Format::Blis, &input, &ImportOptions::default()).await;
    assert_eq!(summary.rows["requests"], 4800);
    let b = concat(&read_table(dir.path(), "requests"));
    let status = col::<StringArray>(&b, "status");
    let timeouts: Vec<usize> = (0..b.num_rows())
        .filter(|&i| status.value(i) == "timeout")
        .collect();
    assert!(!timeouts.is_empty());
    let completion = col::<Int64Array>(&b, "completion_tokens");
    assert!(timeouts.iter().all(|&i| completion.value(i) == 0));
    assert!(
        (0..b.num_rows())
            .filter(|&i| status.value(i) == "ok")
            .all(|i| completion.value(i) == 1448)
    );
}

/// A clock beyond the calendar is a row error naming the line, not an overflow (found by the fuzz
/// test: `start + ms` overflowed i64).
#[test]
fn mooncake_timestamps_beyond_the_calendar_are_row_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.jsonl");
    std::fs::write(
        &path,
        "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [1]}\n\
         {\"timestamp\": 1e300, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [1]}\n",
    )
    .unwrap();
    let Err(error) = import::read(Format::Mooncake, &path, &ImportOptions::default()) else {
        panic!("the trace was accepted");
    };
    let message = error.to_string();
    assert!(message.contains("row 2"), "{message}");
    assert!(message.contains("within the calendar"), "{message}");
}
