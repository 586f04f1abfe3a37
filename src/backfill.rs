//! `tunelake backfill`: one run per day over a date range, each exactly the run a daily scheduler
//! makes for that day (window ending at 00:00 UTC of the day, run id `YYYYMMDD`, as
//! `pipelines/airflow/tunelake_dag.py` passes `{{ ds }}` and `{{ ds_nodash }}`), so a backfilled day
//! and a scheduled one are the same run and replace each other.

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::Overrides;
use crate::error::{Error, Result};
use crate::pipeline::{self, Progress};
use crate::sinks::output;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub pipeline: PathBuf,
    /// First and last day, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Re-run days that are already committed (each replaces its earlier run).
    pub force: bool,
    /// Output location, overriding the pipeline's.
    pub out: Option<String>,
    pub skip_bad_files: bool,
}

/// How one day went.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DayOutcome {
    Committed,
    /// Committed before this backfill; not run again without `force`.
    AlreadyCommitted,
    /// Another process holds the day's run lock.
    Locked {
        message: String,
    },
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct DayResult {
    pub date: NaiveDate,
    pub run_id: String,
    #[serde(flatten)]
    pub outcome: DayOutcome,
    pub seconds: f64,
}

/// The run id a daily scheduler gives `date`.
pub fn run_id(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Runs every day of the request in order. A day that fails or is locked is recorded and the
/// backfill goes on; only an unusable pipeline file or output location stops it. `on_day` is told
/// when each day starts (its index) and `progress` each stage of its run.
pub async fn backfill(
    request: &BackfillRequest,
    catalog: &Catalog,
    on_day: &dyn Fn(usize, NaiveDate),
    progress: &dyn Progress,
) -> Result<Vec<DayResult>> {
    if request.from > request.to {
        return Err(Error::Setting {
            key: "--from".into(),
            message: format!("{} is after --to {}", request.from, request.to),
        });
    }
    let plan_for = |date: NaiveDate| {
        pipeline::load_plan(
            &request.pipeline,
            &Overrides {
                as_of: Some(date.to_string()),
                out: request.out.clone(),
                run_id: Some(run_id(date)),
                skip_bad_files: request.skip_bad_files,
            },
            catalog,
        )
    };
    let first = plan_for(request.from)?;
    let out = pipeline::location(&first, &first.out)?;
    let committed = output::committed_runs(&out).await?;
    let mut results = Vec::new();
    for (index, date) in request
        .from
        .iter_days()
        .take_while(|d| *d <= request.to)
        .enumerate()
    {
        on_day(index, date);
        let started = Instant::now();
        let id = run_id(date);
        let outcome = if !request.force && committed.contains(&id) {
            DayOutcome::AlreadyCommitted
        } else {
            match pipeline::run(&plan_for(date)?, progress).await {
                Ok(_) => DayOutcome::Committed,
                Err(e @ Error::RunLocked { .. }) => DayOutcome::Locked {
                    message: e.to_string(),
                },
                Err(e) => {
                    tracing::error!(date = %date, error = %e, "backfill day failed");
                    DayOutcome::Failed {
                        message: e.to_string(),
                    }
                }
            }
        };
        results.push(DayResult {
            date,
            run_id: id,
            outcome,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(results)
}

/// The days of `results` that did not end committed, for the exit status.
pub fn unfinished(results: &[DayResult]) -> impl Iterator<Item = &DayResult> {
    results.iter().filter(|r| {
        !matches!(
            r.outcome,
            DayOutcome::Committed | DayOutcome::AlreadyCommitted
        )
    })
}

/// Reads `--from`/`--to` (`YYYY-MM-DD`).
pub fn parse_day(key: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| Error::Setting {
        key: key.into(),
        message: format!("`{text}` is not YYYY-MM-DD: {e}"),
    })
}
