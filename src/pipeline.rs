//! The one place the stages are chained: ingest → features → workloads → calibration → search
//! (simulation fanned out over candidates) → recommend → sinks. Each stage is a function from typed
//! input to typed output; only ingest and sinks touch storage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::calibration::{self, CalibrationOptions, SupplyCalibration};
use crate::catalog::Catalog;
use crate::config::eval::CasesFile;
use crate::config::{Overrides, PipelineFile, Plan, Supply};
use crate::deployment;
use crate::error::{Context, Error, Result};
use crate::eval::{self, EvalReport};
use crate::features;
use crate::ingest::{self, IngestInput, TableIngest};
use crate::opportunities;
use crate::recommend::{self, Status, SupplyRecommendation};
use crate::search::{self, SearchInput, SearchResult, Strategy};
use crate::simulation::{self, Deployment, SimOptions, SimReport, Slo};
use crate::sinks::FleetResults;
use crate::sinks::lock::{self, RunLock};
use crate::sinks::output::{self, Artifact, RunOutputs};
use crate::sinks::report;
use crate::sinks::tables::{self, RunResults};
use crate::storage::Location;
use crate::workloads;

/// What a finished run reports (also the core of its manifest).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub out: String,
    /// The apps whose data the run holds: those asked for, and those seen in the window.
    pub apps: Vec<String>,
    pub rows: BTreeMap<String, usize>,
    pub requests: TableIngest,
    pub gpu_metrics: TableIngest,
    pub stage_seconds: BTreeMap<String, f64>,
    /// Per supply: fitted coefficients and the backtest's model error on this window's data.
    pub calibration: Vec<SupplyCalibration>,
    /// The analysis response written to `report.json`.
    pub analysis: recommend::Analysis,
    /// Per supply: how the search went.
    pub search: Vec<SearchSummary>,
}

/// The search of one supply, in brief (for the manifest and the terminal).
#[derive(Debug, Clone, Serialize)]
pub struct SearchSummary {
    pub supply_id: String,
    pub status: Status,
    pub candidates: usize,
    pub pruned: usize,
    pub simulated_requests: u64,
    pub exhaustive_requests: u64,
}

/// Told when each stage starts, so a terminal can show where a long run is.
pub trait Progress {
    fn stage(&self, name: &str);
}

/// For callers that show nothing.
impl Progress for () {
    fn stage(&self, _: &str) {}
}

/// Wall time per stage, in run order.
struct Timings<'a> {
    seconds: BTreeMap<String, f64>,
    current: Option<(String, Instant)>,
    progress: &'a dyn Progress,
}

impl Timings<'_> {
    fn start(&mut self, stage: &str) {
        self.stop();
        self.current = Some((stage.to_string(), Instant::now()));
        self.progress.stage(stage);
        tracing::info!(stage, "stage started");
    }

    fn stop(&mut self) {
        if let Some((stage, at)) = self.current.take() {
            let seconds = at.elapsed().as_secs_f64();
            tracing::info!(stage, seconds, "stage finished");
            self.seconds.insert(stage, seconds);
        }
    }
}

/// `url` (the plan's lake or output) under the plan's S3 endpoint and retry budget.
pub fn location(plan: &Plan, url: &str) -> Result<Location> {
    Location::parse_with_retry(url, plan.s3_endpoint.as_deref(), plan.storage_retry_timeout)
}

/// Runs the pipeline described by `plan` and commits its outputs.
pub async fn run(plan: &Plan, progress: &dyn Progress) -> Result<RunSummary> {
    let lake = location(plan, &plan.lake)?;
    run_on(plan, lake, progress).await
}

/// [`run`] reading the lake through `lake` (the plan's lake, resolved; a test may wrap its store).
/// The run holds its run id's lock from before ingest until after the commit, so a second run of
/// the same id fails at once with [`Error::RunLocked`] instead of interleaving writes.
pub async fn run_on(plan: &Plan, lake: Location, progress: &dyn Progress) -> Result<RunSummary> {
    let out = location(plan, &plan.out)?;
    let lock = lock::acquire(&out, &plan.run_id, plan.lock_ttl).await?;
    let result = run_locked(plan, lake, &out, &lock, progress).await;
    // A lock that cannot be marked released still expires one TTL later; the run's own outcome is
    // what the caller needs.
    if let Err(e) = lock.release().await {
        tracing::warn!(error = %e, "could not release the run lock");
    }
    result
}

async fn run_locked(
    plan: &Plan,
    lake: Location,
    out: &Location,
    lock: &RunLock,
    progress: &dyn Progress,
) -> Result<RunSummary> {
    let mut timings = Timings {
        seconds: BTreeMap::new(),
        current: None,
        progress,
    };

    timings.start("ingest");
    let lake = ingest_window(plan, lake).await?;

    timings.start("features");
    let features = features::extract(&lake.ctx, &plan.window).await?;

    timings.start("workloads");
    let workloads = workloads::characterize(&lake.ctx, &plan.window, plan.seed).await?;

    // An analysis of some apps covers the supplies that served them, and only those.
    let apps = analysed_apps(plan, &workloads);
    let served: BTreeSet<&str> = workloads.mix.cells().map(|c| c.supply_id).collect();
    let supplies: Vec<Supply> = plan
        .supplies
        .iter()
        .filter(|s| plan.app_ids.is_empty() || served.contains(s.id.as_str()))
        .cloned()
        .collect();

    timings.start("opportunities");
    let findings =
        opportunities::findings(&lake.ctx, &plan.window, plan.seed, &plan.apps, &supplies).await?;

    timings.start("calibration");
    let catalog = Catalog::bundled()?;
    let calibration = calibrate_lake(plan, &supplies, &catalog, &lake).await?;

    timings.start("search");
    let analysis_id = recommend::stable_uuid(&[&plan.run_id, &plan.seed.to_string()]);
    let mut searches = Vec::new();
    let mut recommendations = Vec::new();
    let mut snippets = Vec::new();
    let mut capacity = Vec::new();
    let mut schedules = Vec::new();
    for (supply, fitted) in supplies.iter().zip(&calibration) {
        progress.stage(&format!("search: {}", supply.id));
        let traffic = workloads
            .traffic(&lake.ctx, &plan.window, Some(&supply.id))
            .await?;
        let analysed = analyse_supply(
            plan,
            &catalog,
            supply,
            fitted,
            &workloads,
            &traffic,
            &analysis_id,
        )?;
        searches.extend(analysed.search);
        snippets.extend(analysed.snippets);
        capacity.extend(analysed.capacity);
        if let Some(s) = analysed.schedule {
            let r = &analysed.recommendation;
            let error = r
                .model_error
                .unwrap_or_else(recommend::ModelError::uncalibrated);
            let rec = r
                .baseline
                .as_ref()
                .and_then(|current| recommend::schedule(supply, current, &s, &error, &analysis_id));
            schedules.push(recommend::SupplySchedule {
                supply_id: supply.id.clone(),
                schedule: s,
                recommendation: rec,
            });
        }
        recommendations.push(analysed.recommendation);
    }

    timings.start("recommend");
    let prices = supply_prices(&supplies, &catalog)?;
    let costs = opportunities::costs::cost_drivers(
        &workloads.mix,
        &workloads.classes,
        &prices,
        plan.window.days(),
    );
    let cells: Vec<workloads::MixCell> = workloads.mix.cells().collect();
    let routes = tiering_routes(
        &supplies,
        &catalog,
        &prices,
        &capacity,
        &cells,
        &workloads.classes,
        plan,
    );
    let batch_windows: Vec<recommend::BatchWindow> = findings
        .batch
        .iter()
        .filter(|b| !b.hosted)
        .filter_map(|b| {
            let plan_of = capacity
                .iter()
                .find(|c| c.supply_id == b.profile.supply_id)?;
            recommend::batch_window(b, plan_of, &cells, plan.window.start.timestamp_micros())
        })
        .collect();
    let with_feedback: BTreeSet<String> = findings
        .client_defaults
        .iter()
        .filter(|d| d.lengths.with_feedback > 0)
        .map(|d| d.lengths.app_id.clone())
        .collect();
    let hosted = |supply_id: &str| {
        supplies
            .iter()
            .any(|s| s.id == supply_id && s.engine.is_hosted())
    };
    let grades = grade_supplies(&findings, &recommendations, &costs, &hosted);
    let analysis = recommend::Analysis {
        analysis_id: analysis_id.clone(),
        recommendations: recommendations
            .iter()
            .map(|r| r.recommendation.clone())
            .chain(findings.caching.iter().filter_map(|app| {
                recommend::response_cache(app, hosted(&app.supply_id), &analysis_id)
            }))
            .chain(
                findings
                    .prefix_caching
                    .iter()
                    .filter_map(|p| recommend::prompt_caching(p, &analysis_id)),
            )
            .chain(
                findings
                    .batch
                    .iter()
                    .filter_map(|b| recommend::batch_api(b, plan.window.days(), &analysis_id)),
            )
            .chain(batch_windows.iter().filter_map(|w| {
                recommend::batch_window_recommendation(w, plan.window.days(), &analysis_id)
            }))
            .chain(
                findings
                    .client_defaults
                    .iter()
                    .filter_map(|d| recommend::client_defaults(d, &analysis_id)),
            )
            .chain(capacity.iter().filter_map(|c| {
                let supply = supplies.iter().find(|s| s.id == c.supply_id)?;
                recommend::capacity_plan(supply, c, &analysis_id)
            }))
            .chain(schedules.iter().filter_map(|s| s.recommendation.clone()))
            .chain(apps.iter().filter_map(|app| {
                recommend::router_weights(
                    app,
                    &routes,
                    &with_feedback,
                    plan.window.days(),
                    &analysis_id,
                )
            }))
            .chain(recommend::cost_budget(&costs, &analysis_id))
            .chain(supplies.iter().filter_map(|s| {
                let health = findings.health.iter().find(|h| h.supply_id == s.id)?;
                let grade = grades.iter().find(|g| g.supply_id == s.id)?;
                recommend::alerts(s, health, grade, &analysis_id)
            }))
            .collect(),
    };
    let fleet = FleetResults {
        findings: &findings,
        costs: &costs,
        grades: &grades,
        capacity: &capacity,
        schedules: &schedules,
        routes: &routes,
    };
    let mut artifacts = vec![Artifact {
        relative: "report.json".into(),
        bytes: serde_json::to_vec_pretty(&analysis)
            .context("serialising report.json")?
            .into(),
    }];
    let supply_reports = supplies
        .iter()
        .zip(&recommendations)
        .map(|(supply, recommendation)| report::SupplyReport {
            supply,
            recommendation,
            search: searches.iter().find(|s| s.supply_id == supply.id),
            snippets: snippets
                .iter()
                .filter(|a| a.relative.starts_with(&format!("snippets/{}/", supply.id)))
                .collect(),
        })
        .collect();
    artifacts.extend(report::artifacts(&report::ReportInput {
        run_id: &plan.run_id,
        analysis_id: &analysis_id,
        window: plan.window,
        supplies: supply_reports,
        workloads: &workloads,
        calibration: &calibration,
        fleet,
    })?);
    artifacts.extend(snippets);

    timings.start("sinks");
    let tables = tables::build(&RunResults {
        features: &features,
        quarantine: (&ingest::quarantine_schema(), &lake.quarantine),
        workloads: &workloads,
        calibration: &calibration,
        searches: &searches,
        analysis_id: &analysis_id,
        recommendations: &recommendations,
        fleet,
        window_start: plan.window.start,
    })?;
    let rows: BTreeMap<String, usize> = tables.iter().map(|t| (t.name.clone(), t.rows())).collect();
    let mut summary = RunSummary {
        run_id: plan.run_id.clone(),
        out: plan.out.clone(),
        apps,
        rows,
        requests: lake.requests,
        gpu_metrics: lake.gpu_metrics,
        stage_seconds: BTreeMap::new(),
        calibration,
        search: recommendations
            .iter()
            .map(|r| {
                let s = searches
                    .iter()
                    .find(|s| s.supply_id == r.recommendation.target_supply_id);
                SearchSummary {
                    supply_id: r.recommendation.target_supply_id.clone(),
                    status: r.status,
                    candidates: s.map_or(0, |s| s.candidates),
                    pruned: s.map_or(0, |s| s.pruned.values().sum()),
                    simulated_requests: s.map_or(0, |s| s.simulated_requests),
                    exhaustive_requests: s.map_or(0, |s| s.exhaustive_requests),
                }
            })
            .collect(),
        analysis,
    };
    let manifest = manifest(plan, &summary, &timings.seconds);
    lock.confirm().await?;
    output::commit(
        out,
        &RunOutputs {
            run_id: &plan.run_id,
            run_date: plan.window.end.date_naive(),
            tables: &tables,
            artifacts: &artifacts,
            manifest: &manifest,
            window: plan.window,
            format: plan.table_format,
        },
    )
    .await?;
    timings.stop();
    summary.stage_seconds = timings.seconds;
    Ok(summary)
}

/// What the search and recommend stages produced for one supply.
struct SupplyAnalysis {
    search: Option<SearchResult>,
    recommendation: SupplyRecommendation,
    snippets: Vec<Artifact>,
    capacity: Option<recommend::CapacityPlan>,
    schedule: Option<search::regimes::Schedule>,
}

/// Snippet files as run artifacts under `snippets/<supply_id>/`.
fn artifacts(
    supply: &crate::config::Supply,
    files: Vec<recommend::render::SnippetFile>,
) -> Vec<Artifact> {
    files
        .into_iter()
        .map(|f| Artifact {
            relative: format!("snippets/{}/{}", supply.id, f.name),
            bytes: f.text.into(),
        })
        .collect()
}

/// Search → recommend → snippets for one supply (a hosted API, or a supply without traffic in the
/// window, skips the search).
fn analyse_supply(
    plan: &Plan,
    catalog: &Catalog,
    supply: &crate::config::Supply,
    fitted: &SupplyCalibration,
    workloads: &workloads::Workloads,
    traffic: &workloads::Traffic,
    analysis_id: &str,
) -> Result<SupplyAnalysis> {
    let snippet = |before, after| {
        let target = recommend::render::Target { supply, catalog };
        let mut renderers = vec![recommend::render::for_engine(supply.engine)];
        if !supply.engine.is_hosted() {
            renderers.push(&recommend::render::OpenAiClient);
        }
        let files = renderers
            .into_iter()
            .flat_map(|r| r.render(&target, before, after))
            .collect();
        artifacts(supply, files)
    };
    if supply.engine.is_hosted() || traffic.is_empty() {
        return Ok(SupplyAnalysis {
            search: None,
            recommendation: recommend::unsearched(supply, analysis_id, traffic.len()),
            snippets: artifacts(supply, recommend::render::client_defaults(supply)),
            capacity: None,
            schedule: None,
        });
    }
    let input = SearchInput {
        supply,
        catalog,
        traffic,
        calibrated: fitted.coefficients,
        seed: plan.seed,
        strategy: Strategy::SuccessiveHalving,
    };
    let evaluator = search::Evaluator::new(&input)?;
    let result = search::search(&evaluator)?;
    let recommendation = recommend::recommend(&recommend::RecommendInput {
        supply,
        evaluator: &evaluator,
        search: &result,
        classes: &workloads.classes,
        request_classes: &traffic.classes,
        model_error: fitted.backtest.as_ref().map(|b| {
            recommend::ModelError::measured(
                b.ttft.error_p95_pct,
                b.tpot.error_p95_pct,
                b.e2e.error_p95_pct,
            )
        }),
        analysis_id,
        seed: plan.seed,
    })?;
    let snippets = match (&recommendation.baseline, &recommendation.recommended) {
        (Some(before), Some(after)) => snippet(before, after),
        _ => Vec::new(),
    };
    let capacity = plan_capacity(plan, catalog, &evaluator, &recommendation)?;
    let schedule = match &result.best {
        Some(best) => search::regimes::schedule(&input, best, plan.window.days())?,
        None => None,
    };
    Ok(SupplyAnalysis {
        search: Some(result),
        recommendation,
        snippets,
        capacity,
        schedule,
    })
}

/// The capacity plan of the configuration the supply will run (the recommended one, else the
/// current), sized with the model's backtest error as headroom; None when one replica cannot meet
/// the SLOs at any rate.
fn plan_capacity(
    plan: &Plan,
    catalog: &Catalog,
    evaluator: &search::Evaluator,
    recommendation: &SupplyRecommendation,
) -> Result<Option<recommend::CapacityPlan>> {
    use search::capacity::{hourly_plan, replica_capacity};
    let config = recommendation
        .recommended
        .clone()
        .unwrap_or_else(|| evaluator.current().clone());
    let Some(capacity) = replica_capacity(evaluator, &config)? else {
        return Ok(None);
    };
    let error = recommendation
        .model_error
        .unwrap_or_else(recommend::ModelError::uncalibrated);
    let headroom = error.ttft_pct.max(error.tpot_pct) / 100.0;
    let hourly = hourly_plan(
        evaluator,
        &config,
        capacity,
        headroom,
        plan.window.hours().ceil() as u32,
    )?;
    let supply = evaluator.supply();
    let price = deployment::of(supply, &config, catalog)?.price_per_gpu_hour;
    let per_replica_hour = price * config.gpus() as f64 / f64::from(config.replicas.max(1));
    Ok(Some(recommend::CapacityPlan::priced(
        &supply.id,
        hourly,
        per_replica_hour,
        plan.purchase.as_ref(),
    )))
}

/// How each supply is billed: a self-hosted one's GPUs today at its price (or the catalog's), a
/// hosted API's token prices (left out when the pipeline file gives none).
fn supply_prices(
    supplies: &[Supply],
    catalog: &Catalog,
) -> Result<Vec<opportunities::costs::SupplyPrice>> {
    use opportunities::costs::{Billing, SupplyPrice};
    let mut prices = Vec::new();
    for s in supplies {
        let billing = if s.engine.is_hosted() {
            match (s.price.per_1k_input, s.price.per_1k_output) {
                (Some(usd_per_1k_input), Some(usd_per_1k_output)) => Billing::Tokens {
                    usd_per_1k_input,
                    usd_per_1k_output,
                },
                _ => continue,
            }
        } else {
            let d = deployment::current_deployment(s, catalog)?;
            Billing::Gpus {
                gpus: d.config.gpus() as f64,
                usd_per_gpu_hour: d.price_per_gpu_hour,
            }
        };
        prices.push(SupplyPrice {
            supply_id: s.id.clone(),
            model: s.model.clone(),
            billing,
        });
    }
    Ok(prices)
}

/// Each measured supply's grade; its cost grade reads the share of its bill that the run's own
/// recommendations would save (a cheaper engine configuration, hosted caching and batch savings;
/// they may overlap, so the share is capped at the whole bill).
fn grade_supplies(
    findings: &opportunities::FleetFindings,
    recommendations: &[SupplyRecommendation],
    costs: &opportunities::costs::CostDrivers,
    hosted: &dyn Fn(&str) -> bool,
) -> Vec<opportunities::health::SupplyGrade> {
    let mut saved: BTreeMap<&str, f64> = BTreeMap::new();
    let bill = |supply_id: &str| {
        costs
            .rows
            .iter()
            .find(|r| r.dimension == "supply" && r.key == supply_id)
            .map(|r| r.cost_usd)
    };
    for r in recommendations
        .iter()
        .filter(|r| r.status == Status::Recommended)
    {
        let id = r.recommendation.target_supply_id.as_str();
        let pct = r.recommendation.predicted_impact.cost_change_percent;
        *saved.entry(id).or_default() += (-pct / 100.0).max(0.0) * bill(id).unwrap_or(0.0);
    }
    for c in &findings.caching {
        if let Some(chosen) = c.chosen.filter(|_| hosted(&c.supply_id)) {
            *saved.entry(&c.supply_id).or_default() += chosen.cost_saved_usd;
        }
    }
    for b in &findings.batch {
        *saved.entry(&b.profile.supply_id).or_default() += b.saving_usd.unwrap_or(0.0);
    }
    for p in &findings.prefix_caching {
        if let Some(i) = p.chosen {
            *saved.entry(&p.supply_id).or_default() += p.replays[i].saving_usd;
        }
    }
    findings
        .health
        .iter()
        .map(|h| {
            let share = bill(&h.supply_id)
                .filter(|b| *b > 0.0)
                .map(|b| (saved.get(h.supply_id.as_str()).copied().unwrap_or(0.0) / b).min(1.0));
            h.grade(share)
        })
        .collect()
}

/// Every route of an app's workload class to a smaller or cheaper supply, priced by token prices
/// and capacity plans (see `recommend::routes`).
fn tiering_routes(
    supplies: &[Supply],
    catalog: &Catalog,
    prices: &[opportunities::costs::SupplyPrice],
    capacity: &[recommend::CapacityPlan],
    cells: &[workloads::MixCell],
    classes: &[workloads::WorkloadClass],
    plan: &Plan,
) -> Vec<recommend::Route> {
    let tiers: Vec<recommend::TierSupply> = supplies
        .iter()
        .map(|s| recommend::TierSupply {
            id: &s.id,
            model: &s.model,
            params: catalog.model(&s.model).ok().map(|m| m.params().total()),
            billing: prices
                .iter()
                .find(|p| p.supply_id == s.id)
                .map(|p| p.billing),
            plan: capacity.iter().find(|c| c.supply_id == s.id),
        })
        .collect();
    recommend::routes(cells, classes, &tiers, plan.window.start.timestamp_micros())
}

/// The apps asked for and those whose requests the window holds, sorted.
fn analysed_apps(plan: &Plan, workloads: &workloads::Workloads) -> Vec<String> {
    let mut apps: BTreeSet<String> = plan.app_ids.iter().cloned().collect();
    apps.extend(workloads.mix.cells().map(|c| c.app_id.to_string()));
    apps.into_iter().collect()
}

async fn ingest_window(plan: &Plan, lake: Location) -> Result<ingest::Lake> {
    ingest::ingest(&IngestInput {
        lake,
        window: plan.window,
        app_ids: plan.app_ids.clone(),
        validation: plan.validation.clone(),
        skip_bad_files: plan.skip_bad_files,
    })
    .await
}

async fn calibrate_lake(
    plan: &Plan,
    supplies: &[Supply],
    catalog: &Catalog,
    lake: &ingest::Lake,
) -> Result<Vec<SupplyCalibration>> {
    calibration::calibrate(
        &lake.ctx,
        supplies,
        catalog,
        &CalibrationOptions {
            seed: plan.seed,
            ..CalibrationOptions::default()
        },
    )
    .await
}

/// Ingest and calibration only, committing nothing: what `tunelake calibrate` shows.
pub async fn calibrate(plan: &Plan) -> Result<Vec<SupplyCalibration>> {
    let lake = ingest_window(plan, location(plan, &plan.lake)?).await?;
    calibrate_lake(plan, &plan.supplies, &Catalog::bundled()?, &lake).await
}

fn manifest(
    plan: &Plan,
    summary: &RunSummary,
    stage_seconds: &BTreeMap<String, f64>,
) -> serde_json::Value {
    let quarantine = |t: &TableIngest| t.quarantined.clone();
    // Each file is fetched once (one GET), so `files_opened` is also the run's reads of the lake.
    let inputs = |t: &TableIngest| json!({"files": t.files_opened.len(), "files_opened": t.files_opened, "files_skipped": t.files_skipped, "rows_read": t.rows_read, "rows_valid": t.rows_valid});
    json!({
        "run_id": plan.run_id,
        "tunelake_version": env!("CARGO_PKG_VERSION"),
        "created_at": chrono::Utc::now().to_rfc3339(),
        "pipeline": plan.source,
        "inputs": {
            "lake": plan.lake,
            "app_ids": plan.app_ids,
            "requests": inputs(&summary.requests),
            "gpu_metrics": inputs(&summary.gpu_metrics),
        },
        "window": {"start": plan.window.start.to_rfc3339(), "end": plan.window.end.to_rfc3339()},
        "seed": plan.seed,
        "apps": summary.apps,
        "rows": summary.rows,
        "quarantine": {"requests": quarantine(&summary.requests), "gpu_metrics": quarantine(&summary.gpu_metrics)},
        "stage_seconds": stage_seconds,
        "search": summary.search,
        "analysis_id": summary.analysis.analysis_id,
        "model_error": summary.calibration.iter().map(|c| json!({
            "supply_id": c.supply_id,
            "status": c.status,
            "coefficients": c.coefficients,
            "backtest": c.backtest,
        })).collect::<Vec<_>>(),
    })
}

/// Reads a pipeline file and validates it into a plan. A name the catalog lacks is an error in
/// that file, as any other bad value in it.
pub fn load_plan(path: &Path, overrides: &Overrides, catalog: &Catalog) -> Result<Plan> {
    let in_file = |e: Error| match e {
        Error::Setting { .. } | Error::NotInCatalog { .. } => Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
        e => e,
    };
    let plan = PipelineFile::load(path)?
        .plan(path, overrides, catalog)
        .map_err(in_file)?;
    deployment::check(&plan.supplies, catalog).map_err(in_file)?;
    Ok(plan)
}

/// What `tunelake simulate` replays: a requests trace through one supply's deployment.
pub struct SimulateInput<'a> {
    /// Requests Parquet file or folder, or CSV.
    pub trace: &'a Path,
    pub pipeline: &'a Path,
    pub supply_id: &'a str,
    /// `key=value` changes to the supply's current deployment.
    pub overrides: &'a [String],
    pub seed: u64,
    /// Client timeout: requests unfinished by then are aborted.
    pub timeout_s: Option<f64>,
}

/// The deployment simulated and its report.
pub struct Simulated {
    pub deployment: Deployment,
    pub report: SimReport,
}

/// Replays the trace's requests of the supply (all of them when none names it) through the
/// supply's deployment with the overrides applied.
pub fn simulate(input: &SimulateInput) -> Result<Simulated> {
    let catalog = Catalog::bundled()?;
    let plan = load_plan(input.pipeline, &Overrides::default(), &catalog)?;
    let id = input.supply_id;
    let supply = plan
        .supplies
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::Setting {
            key: "--supply".into(),
            message: format!("{} has no supply `{id}`", input.pipeline.display()),
        })?;
    let deployment = deployment::with_overrides(supply, &catalog, input.overrides)?;
    let mut batches = ingest::trace_file::read_requests(input.trace)?;
    let of_supply = workloads::trace::of_supply(&batches, id)?;
    if of_supply.iter().any(|b| b.num_rows() > 0) {
        batches = of_supply;
    } else {
        tracing::info!(
            supply = id,
            "no request names this supply: replaying the whole trace"
        );
    }
    let trace = workloads::trace::from_requests(&batches, deployment.config.block_size)?;
    let report = simulation::simulate(
        &deployment,
        &trace,
        &SimOptions {
            seed: input.seed,
            slo: Slo {
                p95_ttft_ms: supply.slo.p95_ttft_ms,
                p95_tpot_ms: supply.slo.p95_tpot_ms,
            },
            request_timeout_s: input.timeout_s,
            ..Default::default()
        },
    )?;
    Ok(Simulated { deployment, report })
}

/// `tunelake eval`: each case's deployment and measured trace, scored by [`eval::evaluate`]; the
/// `eval_cases` table and the Markdown go to `out` when given.
pub async fn eval(cases_file: &Path, out: Option<&str>, seed: u64) -> Result<EvalReport> {
    let file = CasesFile::load(cases_file)?;
    let catalog = Catalog::bundled()?;
    let cases = file
        .cases
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let deployment = deployment::of_case(spec, &catalog)?;
            let block_size = deployment.config.block_size;
            let (trace, timings) = match (&spec.trace, &spec.workload) {
                (Some(path), _) => {
                    let requests = ingest::trace_file::read_trace(path, spec.format.as_deref())?;
                    (
                        workloads::trace::from_requests(&requests, block_size)?,
                        calibration::requests::timings(&requests)?,
                    )
                }
                (None, Some(w)) => (
                    eval::workload_trace(w, seed, i as u64, block_size)?,
                    Vec::new(),
                ),
                (None, None) => {
                    return Err(Error::Internal(format!(
                        "case `{}` passed the cases-file checks without a trace or a workload",
                        spec.id
                    )));
                }
            };
            Ok(eval::Case {
                id: spec.id.clone(),
                group: spec.group().to_string(),
                scored: spec.scored,
                note: spec.note.clone(),
                trace,
                timings,
                measured: spec.measured.as_ref().map(Into::into),
                deployment,
                request_timeout_s: spec.request_timeout_s,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let report = eval::evaluate(&cases, seed)?;
    if let Some(out) = out {
        output::write_eval(&Location::parse(out, None)?, &report).await?;
    }
    Ok(report)
}
