//! Importers for real public LLM-serving traces: each turns one published file (or run directory)
//! into rows of the `requests` and/or `gpu_metrics` contracts and writes them to a lake with
//! [`LakeWriter`], so the rest of tunelake can run on real data.
//!
//! | format | source | tables | default app / supply | default clock |
//! |---|---|---|---|---|
//! | [`azure`] | Azure LLM inference trace 2023 (`AzureLLMInferenceTrace_{code,conv}.csv`) | requests | `azure-code`/`azure-conv` / `azure-llm-2023` | the file's own 2023-11-16 wall clock |
//! | [`mooncake`] | Mooncake FAST'25 JSONL traces | requests | `mooncake-<trace>` / `mooncake-kimi` | relative ms from 2025-02-21T00:00:00Z |
//! | [`inferno`] | llm-inferno model-tuner offline-observer CSV | gpu_metrics | - / `inferno-opt125m-a100` | window i at 2026-03-27T00:00:00Z + i × window |
//! | [`burstgpt`] | vLLM replay of BurstGPT arrivals (vllm_log, gpu_log, detail_log) | both | `burstgpt` / `burstgpt-llama3.2-1b` | perf_counter seconds from 2024-10-27T00:00:00Z |
//! | [`blis`] | inference-sim H100 replay runs (`requests/<exp>.csv`) | requests | the run's profile / the experiment name | relative µs from the experiment name's date-time (read as UTC) |
//! | [`prometheus`] | vLLM and DCGM metrics from a Prometheus server (`--url`, no INPUT) | gpu_metrics | - / the `model_name` label | the server's, `--start ..= --end` every `--step` |
//!
//! `--start` (RFC 3339 or `YYYY-MM-DD`) moves the clock: relative clocks start there, and absolute
//! ones (azure) are shifted so that the first row lands there. Request ids are `<source>-<row>` and
//! thereby deterministic and unique per source. Every unit conversion is stated in the module of its
//! format; where a source lacks a value the column is null rather than guessed.

pub mod azure;
pub mod blis;
pub mod burstgpt;
pub mod inferno;
pub mod mooncake;
pub mod prometheus;
pub mod rows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::contracts;
use crate::error::{Error, Result};
use crate::storage::Location;
use crate::storage::parquet::LakeWriter;

/// The trace formats `import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Azure,
    Mooncake,
    Inferno,
    Burstgpt,
    Blis,
    // Queried from a server rather than read from a file: `prometheus::import`.
    Prometheus,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Azure => "azure",
            Format::Mooncake => "mooncake",
            Format::Inferno => "inferno",
            Format::Burstgpt => "burstgpt",
            Format::Blis => "blis",
            Format::Prometheus => "prometheus",
        }
    }
}

/// Options shared by the importers; `None` means the format's documented default.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub app_id: Option<String>,
    pub supply_id: Option<String>,
    pub start: Option<DateTime<Utc>>,
    /// inferno: the observation window length in seconds (not recorded in the file).
    pub window_s: f64,
    /// burstgpt: the replay scale S when INPUT is the log directory.
    pub scale: Option<u32>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            app_id: None,
            supply_id: None,
            start: None,
            window_s: 60.0,
            scale: None,
        }
    }
}

/// What an import wrote.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportSummary {
    pub format: String,
    pub input: String,
    pub out: String,
    /// Rows written per table.
    pub rows: BTreeMap<String, usize>,
    /// Conversions and measured quantities worth reporting (e.g. BurstGPT's characters per token).
    pub notes: Vec<String>,
}

/// The rows one importer produced, before they are written.
#[derive(Debug, Default)]
pub struct Imported {
    /// Distinguishes this source's files in the lake (`part-<tag>-<n>.parquet`).
    pub tag: String,
    pub requests: Option<RecordBatch>,
    pub gpu_metrics: Option<RecordBatch>,
    pub notes: Vec<String>,
}

/// Reads `input` in `format` into contract batches without writing anything.
pub fn read(format: Format, input: &Path, options: &ImportOptions) -> Result<Imported> {
    match format {
        Format::Azure => azure::read(input, options),
        Format::Mooncake => mooncake::read(input, options),
        Format::Inferno => inferno::read(input, options),
        Format::Burstgpt => burstgpt::read(input, options),
        Format::Blis => blis::read(input, options),
        Format::Prometheus => Err(Error::Setting {
            key: "INPUT".into(),
            message: "prometheus is read from a server (--url), not from a file".into(),
        }),
    }
}

/// Imports `input` into the lake at `out`: `requests` and/or `gpu_metrics`, partitioned by date.
pub async fn import(
    format: Format,
    input: &Path,
    out: &Location,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    let imported = read(format, input, options)?;
    write(format, &input.display().to_string(), imported, out).await
}

/// Writes what an importer read into the lake at `out`, each table conformed to its contract.
async fn write(
    format: Format,
    input: &str,
    imported: Imported,
    out: &Location,
) -> Result<ImportSummary> {
    let mut summary = ImportSummary {
        format: format.name().to_string(),
        input: input.to_string(),
        out: out.display.clone(),
        rows: BTreeMap::new(),
        notes: imported.notes,
    };
    for (contract, batch) in [
        (contracts::requests(), imported.requests),
        (contracts::gpu_metrics(), imported.gpu_metrics),
    ] {
        let Some(batch) = batch else { continue };
        let batch = contracts::conform(&contract, input, &batch)?;
        let mut writer = LakeWriter::new(
            out.clone(),
            contract.table,
            contract.schema.clone(),
            &imported.tag,
        );
        if batch.num_rows() > 0 {
            writer.write(batch).await?;
        }
        summary
            .rows
            .insert(contract.table.to_string(), writer.finish().await?);
    }
    Ok(summary)
}

/// Parses `--start`: RFC 3339, or `YYYY-MM-DD` for midnight UTC.
pub fn parse_start(value: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .map_err(|_| Error::Setting {
            key: "start".into(),
            message: format!("`{value}` is neither RFC 3339 nor YYYY-MM-DD"),
        })
}

/// Midnight UTC of a fixed date, for the formats' documented default clocks.
pub(crate) fn default_start(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date")
        .and_utc()
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn bad_row(path: &Path, row: usize, message: impl Into<String>) -> Error {
    Error::BadRow {
        file: path.display().to_string(),
        row,
        message: message.into(),
    }
}

/// A CSV file read whole: header names and data lines split into fields. Handles a UTF-8 BOM, CRLF
/// line ends and double-quoted fields (with `""` escapes); fields never span lines in these sources.
pub(crate) struct Csv {
    pub path: PathBuf,
    pub header: Vec<String>,
    /// (1-based data row number, fields)
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Csv {
    pub fn read(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let header = split_csv_line(lines.next().unwrap_or_default())
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| (i + 1, split_csv_line(l)))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// Index of a header column, or an error naming the file and the column.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::MissingColumn {
                file: self.path.display().to_string(),
                column: name.to_string(),
            })
    }

    pub fn field<'a>(&self, row: &'a (usize, Vec<String>), col: usize) -> Result<&'a str> {
        row.1
            .get(col)
            .map(String::as_str)
            .ok_or_else(|| bad_row(&self.path, row.0, format!("missing field {}", col + 1)))
    }

    pub fn parse<T: std::str::FromStr>(&self, row: &(usize, Vec<String>), col: usize) -> Result<T> {
        let raw = self.field(row, col)?;
        raw.trim().parse().map_err(|_| {
            bad_row(
                &self.path,
                row.0,
                format!("column `{}`: cannot parse `{raw}`", self.header[col]),
            )
        })
    }
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_with_quotes_split_correctly() {
        assert_eq!(
            split_csv_line(r#"a,"[{""x"":1},{""y"":2}]",3"#),
            vec!["a", r#"[{"x":1},{"y":2}]"#, "3"]
        );
    }

    #[test]
    fn start_accepts_rfc3339_and_dates() {
        assert_eq!(
            parse_start("2024-01-02").unwrap().to_rfc3339(),
            "2024-01-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_start("2024-01-02T03:04:05+01:00")
                .unwrap()
                .to_rfc3339(),
            "2024-01-02T02:04:05+00:00"
        );
        assert!(parse_start("yesterday").is_err());
    }
}
