//! Golden results: every `sql/features/*.sql` file runs on the fixture lake and its result must equal
//! `tests/golden/<name>.csv`. After an intended change, regenerate them with
//! `TUNELAKE_BLESS=1 cargo test --test integration golden` and review the diff.

use arrow::array::{Array, Float64Array, RecordBatch};
use arrow::util::display::array_value_to_string;
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
async fn feature_sql_matches_golden_files() {
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
    let bless = std::env::var_os("TUNELAKE_BLESS").is_some();
    let mut mismatches = Vec::new();
    for (name, sql) in tunelake::sql::FEATURES {
        let table = tunelake::features::run_query(&ingested.ctx, name, sql, &window)
            .await
            .unwrap();
        let actual = render(&table.batches);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{name}.csv"));
        if bless {
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
