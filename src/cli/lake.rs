//! Commands that write or list lakes and runs: `generate`, `import`, `runs`.

use anyhow::Context as _;
use tunelake::config::{PipelineFile, PrometheusMapping};
use tunelake::generate::GenerateConfig;
use tunelake::ingest::import::prometheus::{self, RangeImport};
use tunelake::ingest::import::{self, Format, ImportOptions};
use tunelake::storage::Location;

use super::args::ImportFlags;

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

/// `import`: a file format reads INPUT, `prometheus` queries `--url`; the flags of the other kind
/// are refused (exit code 2) rather than silently ignored.
pub async fn import(flags: ImportFlags) -> anyhow::Result<()> {
    let location = Location::parse(&flags.out, None)?;
    let start = flags
        .start
        .as_deref()
        .map(import::parse_start)
        .transpose()?;
    let summary = match (flags.format, &flags.input) {
        (Format::Prometheus, Some(input)) => {
            return Err(usage(
                "INPUT",
                format!("prometheus reads --url, not a file ({})", input.display()),
            )
            .into());
        }
        (Format::Prometheus, None) => {
            let range = prometheus_range(&flags, start)?;
            // Its errors name the server and the query already.
            prometheus::import(&range, &location).await?
        }
        (format, None) => {
            return Err(usage("INPUT", format!("{} needs an input file", format.name())).into());
        }
        (format, Some(input)) => {
            let prometheus_only = [
                ("--url", flags.url.is_some()),
                ("--end", flags.end.is_some()),
                ("--step", flags.step.is_some()),
                ("--pipeline", flags.pipeline.is_some()),
            ];
            if let Some((flag, _)) = prometheus_only.iter().find(|(_, given)| *given) {
                return Err(usage(flag, "only the prometheus format takes it".into()).into());
            }
            let options = ImportOptions {
                app_id: flags.app,
                supply_id: flags.supply,
                start,
                window_s: flags.window_s,
                scale: flags.scale,
            };
            import::import(format, input, &location, &options)
                .await
                .with_context(|| format!("importing {} as {}", input.display(), format.name()))?
        }
    };
    if flags.json {
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

/// The prometheus range from the flags; the label mapping from `--pipeline`'s `[prometheus]`
/// table, with `--supply` fixing the supply.
fn prometheus_range(
    flags: &ImportFlags,
    start: Option<chrono::DateTime<chrono::Utc>>,
) -> tunelake::Result<RangeImport> {
    let url = flags
        .url
        .clone()
        .ok_or_else(|| usage("--url", "prometheus needs the server's URL".into()))?;
    let start =
        start.ok_or_else(|| usage("--start", "prometheus needs the range's start".into()))?;
    let end = flags
        .end
        .as_deref()
        .ok_or_else(|| usage("--end", "prometheus needs the range's end".into()))?;
    let end = tunelake::config::parse_instant(end).ok_or_else(|| {
        usage(
            "--end",
            format!("`{end}` is neither RFC 3339 nor YYYY-MM-DD"),
        )
    })?;
    let mut mapping = match &flags.pipeline {
        Some(path) => PipelineFile::load(path)?.prometheus.unwrap_or_default(),
        None => PrometheusMapping::default(),
    };
    if flags.supply.is_some() {
        mapping.supply_id.clone_from(&flags.supply);
    }
    Ok(RangeImport {
        url,
        start,
        end,
        step_s: prometheus::parse_step(flags.step.as_deref().unwrap_or("60s"))?,
        mapping,
        auth: prometheus::Auth::from_env()?,
    })
}

fn usage(key: &str, message: String) -> tunelake::Error {
    tunelake::Error::Setting {
        key: key.into(),
        message,
    }
}

pub async fn runs(out: &str) -> anyhow::Result<()> {
    let location = Location::parse(out, None)?;
    for run in tunelake::sinks::output::committed_runs(&location).await? {
        println!("{run}");
    }
    Ok(())
}
