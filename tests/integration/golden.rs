//! Golden results: every query of `sql/` the stages run (features, workloads, calibration) runs on the
//! fixture lake and its result must equal `tests/golden/<path under sql/>.csv`. After an intended
//! change, regenerate them with `TUNELAKE_BLESS=1 cargo test --test integration golden` and review
//! the diff.

use arrow::array::{Array, Float64Array, RecordBatch};
use arrow::util::display::array_value_to_string;
use datafusion::common::ScalarValue;
use tunelake::config::{ValidationSettings, Window};
use tunelake::ingest::{IngestInput, ingest};

use crate::fixture;
use crate::support::{Backend, at, location};

/// Renders batches as CSV with floats rounded to 6 significant digits, so the expected files do not
/// depend on the summation order of a parallel aggregate.
fn render(batches: &[RecordBatch]) -> String {
    let mut out = String::new();
    let Some(first) = batches.first() else {
        return out;
    };
    let schema = first.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    out += &names.join(",");
    out += "\n";
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(row) {
                        String::new()
                    } else if let Some(f) = c.as_any().downcast_ref::<Float64Array>() {
                        format!(
                            "{}",
                            format!("{:.6e}", f.value(row)).parse::<f64>().unwrap()
                        )
                    } else {
                        array_value_to_string(c, row).unwrap()
                    }
                })
                .collect();
            out += &cells.join(",");
            out += "\n";
        }
    }
    out
}

#[tokio::test]
async fn stage_sql_matches_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    fixture::write(&lake).await;
    let window = Window::ending_at(at(fixture::AS_OF), fixture::PERIOD_DAYS);
    let ingested = ingest(&IngestInput {
        lake,
        window,
        app_ids: fixture::APPS.iter().map(|a| a.to_string()).collect(),
        validation: ValidationSettings {
            max_prompt_tokens: 100_000,
            ..Default::default()
        },
        skip_bad_files: false,
    })
    .await
    .unwrap();
    // Every query's parameters (each binds those it names): the window, the fixture's supply and a
    // backtest of every other hour from its first request.
    let mut params = tunelake::sql::window_params(window.start, window.end);
    params.extend([
        ("supply_id", ScalarValue::Utf8(Some("llama-h100".into()))),
        (
            "first_s",
            ScalarValue::Float64(Some(at("2026-11-07T10:00:00Z").timestamp() as f64)),
        ),
        ("stride", ScalarValue::Int64(Some(2))),
    ]);
    // The fixture's one supply, registered as a hosted API so that the hosted-only query has rows.
    let hosted: tunelake::config::PipelineFile = toml::from_str(
        r#"
[run]
lake = "x"
out = "y"
[[supplies]]
id = "llama-h100"
engine = "openai"
model = "llama-3.1-8b"
price = { per_1k_input = 0.0001, per_1k_output = 0.0002 }
slo = { p95_ttft_ms = 500, p95_tpot_ms = 50 }
"#,
    )
    .unwrap();
    tunelake::opportunities::register_supplies(&ingested.ctx, &hosted.supplies).unwrap();
    let bless = std::env::var_os("TUNELAKE_BLESS").is_some();
    let mut mismatches = Vec::new();
    for query in tunelake::sql::GOLDEN {
        let batches = query.collect(&ingested.ctx, params.clone()).await.unwrap();
        let actual = render(&batches);
        assert!(!actual.is_empty(), "{} returned nothing", query.path);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            query
                .path
                .replacen("sql/", "tests/golden/", 1)
                .replace(".sql", ".csv"),
        );
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Every query file the stages run has a golden result (the validation rules are checked by the
/// quarantine tests instead).
#[test]
fn every_stage_query_is_golden() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root.join("sql")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.ends_with("validate") {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            files.push(
                file.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    files.sort();
    let mut golden: Vec<String> = tunelake::sql::GOLDEN
        .iter()
        .map(|q| q.path.to_string())
        .collect();
    golden.sort();
    assert_eq!(files, golden);
}
