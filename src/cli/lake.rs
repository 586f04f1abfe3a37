//! Commands that write or list lakes and runs: `generate`, `import`, `runs`.

use std::path::Path;

use anyhow::Context as _;
use tunelake::generate::GenerateConfig;
use tunelake::ingest::import::{self, Format, ImportOptions};
use tunelake::storage::Location;

/// `--end` as a date; today (UTC) when absent.
pub fn end_date(end: Option<&str>) -> tunelake::Result<chrono::NaiveDate> {
    match end {
        Some(e) => {
            chrono::NaiveDate::parse_from_str(e, "%Y-%m-%d").map_err(|_| tunelake::Error::Setting {
                key: "--end".into(),
                message: format!("`{e}` is not YYYY-MM-DD"),
            })
        }
        None => Ok(chrono::Utc::now().date_naive()),
    }
}

pub async fn generate(out: &str, config: &GenerateConfig) -> anyhow::Result<()> {
    let location = Location::parse(out, None)?;
    let started = std::time::Instant::now();
    let truth = tunelake::generate::generate(&location, config)
        .await
        .with_context(|| format!("generating into {out}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generated {} requests ({} rows) and {} gpu_metrics rows for {} .. {} into {out} in {secs:.2} s ({:.0} requests/s)",
        truth.requests,
        truth.request_rows,
        truth.gpu_metrics_rows,
        truth.start,
        truth.end,
        truth.requests as f64 / secs
    );
    for (reason, n) in truth.invalid.iter().filter(|(_, n)| **n > 0) {
        println!("  injected {n} {reason}");
    }
    Ok(())
}

pub async fn import(
    format: Format,
    input: &Path,
    out: &str,
    options: &ImportOptions,
    json: bool,
) -> anyhow::Result<()> {
    let location = Location::parse(out, None)?;
    let summary = import::import(format, input, &location, options)
        .await
        .with_context(|| format!("importing {} as {}", input.display(), format.name()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "imported {} ({}) into {}",
        summary.input, summary.format, summary.out
    );
    for (table, rows) in &summary.rows {
        println!("  {table:<20} {rows:>10} rows");
    }
    for note in &summary.notes {
        println!("  note: {note}");
    }
    Ok(())
}

pub async fn runs(out: &str) -> anyhow::Result<()> {
    let location = Location::parse(out, None)?;
    for run in tunelake::sinks::output::committed_runs(&location).await? {
        println!("{run}");
    }
    Ok(())
}
