//! Analyses: the committed runs under the pipeline's `out` (indexed by analysis id), and the ones
//! the API starts. An API analysis is a pipeline run whose id derives from (apps, window end,
//! period, pipeline file), so an identical request finds the committed run (answered at once) or
//! joins the one still running (one pipeline run for any number of identical requests).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::metrics::{AnalysisOutcome, Metrics};
use crate::catalog::Catalog;
use crate::config::{Overrides, PipelineFile, Window};
use crate::error::{Error, Result};
use crate::hash::stable_hash64;
use crate::pipeline;
use crate::recommend::stable_uuid;
use crate::sinks::output;
use crate::storage::Location;

/// Analyses run at once; more answer 503 until one finishes.
const MAX_RUNNING: usize = 2;

/// The shortest time between two listings of `out` prompted by unknown ids.
const RELIST_AFTER: Duration = Duration::from_secs(2);

/// A committed run, as the API sees it.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub run_id: String,
    pub analysis_id: String,
    /// The apps whose data the run holds: a key must cover all of them to read it.
    pub apps: Vec<String>,
    pub window: Window,
    pub created_at: String,
}

impl RunEntry {
    /// The partition date of the run's tables.
    pub fn run_date(&self) -> NaiveDate {
        self.window.end.date_naive()
    }

    fn from_manifest(run_id: &str, m: &serde_json::Value) -> Option<RunEntry> {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let instant = |v: &serde_json::Value| {
            DateTime::parse_from_rfc3339(v.as_str()?)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        Some(RunEntry {
            run_id: run_id.to_string(),
            analysis_id: text(&m["analysis_id"])?,
            apps: m["apps"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            window: Window {
                start: instant(&m["window"]["start"])?,
                end: instant(&m["window"]["end"])?,
            },
            created_at: text(&m["created_at"]).unwrap_or_default(),
        })
    }
}

/// How an analysis request ended.
pub enum Answer {
    /// Committed (now or before).
    Done(RunEntry),
    /// Still running after the wait.
    Running { analysis_id: String },
    /// Every analysis slot is taken.
    Busy,
}

type Running = Shared<BoxFuture<'static, std::result::Result<RunEntry, String>>>;

#[derive(Default)]
struct Index {
    by_analysis: HashMap<String, RunEntry>,
    listed_at: Option<Instant>,
}

pub struct Analyses {
    pipeline: PathBuf,
    out: Location,
    lake: Location,
    /// The pipeline's `as_of` when it fixes one; else the window ends at the current hour.
    fixed_end: Option<DateTime<Utc>>,
    seed: u64,
    index: RwLock<Index>,
    /// Running analyses by analysis id, with the apps they cover.
    running: Mutex<HashMap<String, (Vec<String>, Running)>>,
    /// Pipeline runs at once: each holds a blocking thread and a share of the cores.
    slots: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
}

impl Analyses {
    /// Reads and checks the pipeline file once (a bad file stops the server at start).
    pub fn new(pipeline: PathBuf, metrics: Arc<Metrics>) -> Result<Analyses> {
        let catalog = Catalog::bundled()?;
        let plan = pipeline::load_plan(&pipeline, &Overrides::default(), &catalog)?;
        let file = PipelineFile::load(&pipeline)?;
        Ok(Analyses {
            out: pipeline::location(&plan, &plan.out)?,
            lake: pipeline::location(&plan, &plan.lake)?,
            fixed_end: file.run.as_of.is_some().then_some(plan.window.end),
            seed: plan.seed,
            pipeline,
            index: RwLock::new(Index::default()),
            running: Mutex::new(HashMap::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
            metrics,
        })
    }

    pub fn out(&self) -> &Location {
        &self.out
    }

    /// Indexes committed runs not yet known. Listing is skipped when one ran within
    /// [`RELIST_AFTER`] unless `force`, so unknown ids cannot make the server list storage at will.
    pub async fn refresh(&self, force: bool) -> Result<()> {
        {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            if !force && index.listed_at.is_some_and(|t| t.elapsed() < RELIST_AFTER) {
                return Ok(());
            }
        }
        let known: BTreeSet<String> = self.entries().into_iter().map(|e| e.run_id).collect();
        let mut found = Vec::new();
        for (run_id, manifest) in output::committed_manifests(&self.out, &known).await? {
            match manifest.map(|m| RunEntry::from_manifest(&run_id, &m)) {
                Ok(Some(entry)) => found.push(entry),
                Ok(None) => {
                    tracing::warn!(run_id, "manifest lacks the analysis fields: run not served")
                }
                Err(e) => tracing::warn!(run_id, error = %e, "unreadable manifest: run not served"),
            }
        }
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for entry in found {
            index.by_analysis.insert(entry.analysis_id.clone(), entry);
        }
        index.listed_at = Some(Instant::now());
        Ok(())
    }

    /// Every indexed run.
    pub fn entries(&self) -> Vec<RunEntry> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index.by_analysis.values().cloned().collect()
    }

    /// A committed run by analysis id (listing `out` again when unknown).
    pub async fn find(&self, analysis_id: &str) -> Result<Option<RunEntry>> {
        if let Some(e) = self.lookup(analysis_id) {
            return Ok(Some(e));
        }
        self.refresh(false).await?;
        Ok(self.lookup(analysis_id))
    }

    fn lookup(&self, analysis_id: &str) -> Option<RunEntry> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index.by_analysis.get(analysis_id).cloned()
    }

    /// The apps of a running analysis, None when it is not running.
    pub fn running_apps(&self, analysis_id: &str) -> Option<Vec<String>> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(analysis_id)
            .map(|(apps, _)| apps.clone())
    }

    /// The window an analysis of `period_days` covers now, or why the lake cannot serve it.
    pub async fn window(&self, period_days: u32) -> Result<std::result::Result<Window, String>> {
        let end = match self.fixed_end {
            Some(end) => end,
            None => Utc::now()
                .duration_trunc(TimeDelta::hours(1))
                .map_err(|e| Error::Internal(format!("truncating now to the hour: {e}")))?,
        };
        let window = Window::ending_at(end, period_days);
        let retained = match crate::ingest::oldest_request_date(&self.lake).await? {
            Some(oldest) => (end.date_naive() - oldest).num_days().max(1),
            None => return Ok(Err("the lake holds no request partitions".into())),
        };
        Ok(if i64::from(period_days) > retained {
            Err(format!(
                "the lake retains {retained} days of requests before {}",
                end.format("%Y-%m-%d")
            ))
        } else {
            Ok(window)
        })
    }

    /// Starts (or finds, or joins) the analysis of `apps` over `window`, waiting up to `wait`.
    pub async fn analyse(
        self: &Arc<Self>,
        apps: Vec<String>,
        window: Window,
        wait: Duration,
    ) -> Result<Answer> {
        // The apps as a JSON array, so ["a,b"] and ["a", "b"] are different analyses.
        let key = serde_json::json!([
            apps,
            window.start.to_rfc3339(),
            window.end.to_rfc3339(),
            self.pipeline.display().to_string()
        ]);
        let run_id = format!("api-{:016x}", stable_hash64(&key.to_string()));
        let analysis_id = stable_uuid(&[&run_id, &self.seed.to_string()]);
        if let Some(entry) = self.find(&analysis_id).await? {
            self.metrics.analysis(AnalysisOutcome::Cached);
            return Ok(Answer::Done(entry));
        }
        let running = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            // Looked up again under the lock: a run enters the index before it leaves `running`,
            // so it is always found in one of the two.
            if let Some(entry) = self.lookup(&analysis_id) {
                self.metrics.analysis(AnalysisOutcome::Cached);
                return Ok(Answer::Done(entry));
            }
            match running.get(&analysis_id) {
                Some((_, r)) => {
                    self.metrics.analysis(AnalysisOutcome::Shared);
                    r.clone()
                }
                None => {
                    let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                        return Ok(Answer::Busy);
                    };
                    let r = self.spawn(run_id, analysis_id.clone(), apps.clone(), window, slot);
                    running.insert(analysis_id.clone(), (apps, r.clone()));
                    r
                }
            }
        };
        match tokio::time::timeout(wait, running).await {
            Ok(Ok(entry)) => Ok(Answer::Done(entry)),
            Ok(Err(message)) => Err(Error::Internal(message)),
            Err(_) => Ok(Answer::Running { analysis_id }),
        }
    }

    /// Runs the pipeline on a blocking thread (the search keeps cores busy) and indexes the run.
    fn spawn(
        self: &Arc<Self>,
        run_id: String,
        analysis_id: String,
        apps: Vec<String>,
        window: Window,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Running {
        let this = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let handle = tokio::runtime::Handle::current();
            // A panic in the run is its failure: the entry must still leave `running`.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.block_on(this.run(&run_id, apps, window))
            }))
            .unwrap_or_else(|_| Err(Error::Internal(format!("analysis {run_id} panicked"))));
            drop(slot);
            this.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&analysis_id);
            let outcome = match &result {
                Ok(_) => AnalysisOutcome::Completed,
                Err(e) => {
                    tracing::error!(run_id, error = %e, "analysis failed");
                    AnalysisOutcome::Failed
                }
            };
            this.metrics.analysis(outcome);
            result.map_err(|e| e.to_string())
        });
        async move {
            task.await
                .map_err(|e| format!("analysis task: {e}"))
                .and_then(|r| r)
        }
        .boxed()
        .shared()
    }

    async fn run(&self, run_id: &str, apps: Vec<String>, window: Window) -> Result<RunEntry> {
        let catalog = Catalog::bundled()?;
        let overrides = Overrides {
            run_id: Some(run_id.to_string()),
            ..Overrides::default()
        };
        let mut plan = pipeline::load_plan(&self.pipeline, &overrides, &catalog)?;
        plan.app_ids = apps;
        plan.window = window;
        tracing::info!(run_id, apps = ?plan.app_ids, "analysis started");
        let summary = pipeline::run(&plan, &()).await?;
        self.refresh(true).await?;
        self.lookup(&summary.analysis.analysis_id).ok_or_else(|| {
            Error::Internal(format!(
                "run {run_id} committed but its manifest is unreadable"
            ))
        })
    }
}
