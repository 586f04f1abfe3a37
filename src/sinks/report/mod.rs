//! The run's human-readable reports, beside `report.json`: `report.html`, one self-contained page
//! (inline CSS, inline SVG charts, no network fetch) a platform lead reads in two minutes, and
//! `report.md`, the same findings for a pull request or a chat message.

mod charts;
mod html;
mod markdown;

use std::collections::BTreeMap;

use crate::calibration::SupplyCalibration;
use crate::config::{Supply, Window};
use crate::opportunities::costs::CostDrivers;
use crate::recommend::{PredictedImpact, Status, SupplyRecommendation};
use crate::search::SearchResult;
use crate::sinks::FleetResults;
use crate::sinks::output::Artifact;
use crate::workloads::Workloads;

pub use html::html;
pub use markdown::markdown;

/// Everything the reports show.
pub struct ReportInput<'a> {
    pub run_id: &'a str,
    pub analysis_id: &'a str,
    pub window: Window,
    pub supplies: Vec<SupplyReport<'a>>,
    pub workloads: &'a Workloads,
    pub calibration: &'a [SupplyCalibration],
    pub fleet: FleetResults<'a>,
}

/// One supply's part of the reports.
pub struct SupplyReport<'a> {
    pub supply: &'a Supply,
    pub recommendation: &'a SupplyRecommendation,
    pub search: Option<&'a SearchResult>,
    /// The snippet files written for the supply.
    pub snippets: Vec<&'a Artifact>,
}

impl SupplyReport<'_> {
    /// Requests per hour of the window served by this supply, hour start (µs) ascending.
    fn hourly_requests(&self, workloads: &Workloads) -> Vec<(i64, u64)> {
        let mut hours: BTreeMap<i64, u64> = BTreeMap::new();
        for cell in workloads
            .mix
            .cells()
            .filter(|c| c.supply_id == self.supply.id)
        {
            *hours.entry(cell.hour_us).or_default() += cell.requests;
        }
        hours.into_iter().collect()
    }

    /// The file name of a snippet artifact (its path below `snippets/<supply>/`).
    fn snippet_name(artifact: &Artifact) -> &str {
        artifact
            .relative
            .rsplit('/')
            .next()
            .unwrap_or(&artifact.relative)
    }
}

/// Report files for the run's `_runs` folder.
pub fn artifacts(input: &ReportInput) -> crate::Result<Vec<Artifact>> {
    Ok(vec![
        Artifact {
            relative: "report.html".into(),
            bytes: html(input)?.into(),
        },
        Artifact {
            relative: "report.md".into(),
            bytes: markdown(input).into(),
        },
    ])
}

/// A change in percent with its sign ("+3.2 %"), or "n/a" when not a number.
fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{x:+.1} %")
    } else {
        "n/a".into()
    }
}

/// Figures of the impact with their 95 % intervals, in display order.
fn impact_rows(impact: &PredictedImpact) -> Vec<(&'static str, String, String)> {
    let labels = [
        "cost",
        "p95 end-to-end latency",
        "p95 TTFT",
        "p95 TPOT",
        "throughput per GPU",
    ];
    let values = [
        impact.cost_change_percent,
        impact.p95_latency_change_percent,
        impact.p95_ttft_change_percent,
        impact.p95_tpot_change_percent,
        impact.throughput_change_percent,
    ];
    labels
        .into_iter()
        .zip(values)
        .zip(PredictedImpact::FIGURES)
        .map(|((label, value), key)| {
            let interval = impact
                .confidence_intervals
                .get(key)
                .map_or("n/a".to_string(), |[lo, hi]| {
                    format!("{} to {}", pct(*lo), pct(*hi))
                });
            (label, pct(value), interval)
        })
        .collect()
}

/// A fleet-wide findings table of the reports: title, header and rows of text.
struct Findings {
    title: &'static str,
    header: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

/// The findings tables with at least one row.
fn findings(input: &ReportInput) -> Vec<Findings> {
    let fleet = &input.fleet;
    let f = fleet.findings;
    let caching = f
        .caching
        .iter()
        .map(|a| {
            let best = a.replays.iter().map(|r| r.hit_rate()).fold(0.0, f64::max);
            match (a.chosen, a.hit_rate_interval) {
                (Some(c), Some([lo, hi])) => vec![
                    a.app_id.clone(),
                    a.supply_id.clone(),
                    c.policy.name(),
                    format!(
                        "{:.1} % ({:.1}–{:.1} %)",
                        c.hit_rate() * 100.0,
                        lo * 100.0,
                        hi * 100.0
                    ),
                    (c.prompt_tokens_saved + c.completion_tokens_saved).to_string(),
                    format!("${:.2}", c.cost_saved_usd),
                ],
                _ => vec![
                    a.app_id.clone(),
                    a.supply_id.clone(),
                    format!("none: at most {:.1} % of requests repeat", best * 100.0),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                ],
            }
        })
        .collect();
    let client = f
        .client_defaults
        .iter()
        .map(|d| {
            let l = &d.lengths;
            vec![
                l.app_id.clone(),
                l.current_cap.map_or("none".into(), |c| format!("{c:.0}")),
                format!("{:.1} %", l.truncated_share() * 100.0),
                match d.change {
                    Some(_) => format!(
                        "max_completion_tokens = {:.0} (cuts ≈ {:.2} %)",
                        d.recommended_cap,
                        d.cut_share * 100.0
                    ),
                    None => "none: the cap fits the outputs".into(),
                },
            ]
        })
        .collect();
    let money = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("${x:.2}"));
    let prompt_caching = f
        .prefix_caching
        .iter()
        .map(|p| {
            let share =
                |t: u64| format!("{:.1} %", t as f64 / p.prompt_tokens.max(1) as f64 * 100.0);
            let chosen = p.chosen.map(|i| &p.replays[i]);
            vec![
                p.app_id.clone(),
                p.supply_id.clone(),
                share(p.long_prefix_tokens),
                share(p.reported_cached_tokens),
                chosen.map_or("none: saves under 1 % of the input bill".into(), |r| {
                    format!(
                        "{} ({})",
                        r.retention.as_deref().unwrap_or("default retention"),
                        share(r.cached_tokens)
                    )
                }),
                money(chosen.map(|r| r.saving_usd)),
            ]
        })
        .collect();
    let batch = f
        .batch
        .iter()
        .map(|b| {
            let p = &b.profile;
            vec![
                p.app_id.clone(),
                p.supply_id.clone(),
                format!("{:.0} %", p.night_share() * 100.0),
                format!("{:.0} %", p.session_share() * 100.0),
                format!("{:.0}", p.prompt_p50),
                match b.tolerance {
                    Some(t) => format!("{t:?}").to_lowercase(),
                    None => "no".into(),
                },
                money(b.saving_usd),
            ]
        })
        .collect();
    let grades = fleet
        .grades
        .iter()
        .map(|g| {
            vec![
                g.supply_id.clone(),
                g.grade.as_str().to_string(),
                crate::recommend::grade_parts(g),
            ]
        })
        .collect();
    let when = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map_or(String::new(), |t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    let alerts = f
        .health
        .iter()
        .flat_map(|h| &h.alerts)
        .map(|a| {
            vec![
                a.supply_id.clone(),
                a.kind.as_str().to_string(),
                when(a.start_us),
                a.hours.to_string(),
                a.evidence.clone(),
            ]
        })
        .collect();
    let capacity = fleet
        .capacity
        .iter()
        .map(|c| {
            vec![
                c.supply_id.clone(),
                format!("{:.3}", c.plan.capacity.requests_per_s),
                format!("{}–{}", c.min_replicas, c.max_replicas),
                c.concurrency_threshold.to_string(),
                format!(
                    "{} ({} of {} hours alone)",
                    if c.plan.window.slo_met { "yes" } else { "no" },
                    c.hours_meeting_slo(),
                    c.plan.hours.len()
                ),
                format!("${:.2}", c.static_cost_usd),
                format!("${:.2}", c.autoscaled_cost_usd),
                c.mix.map_or("–".into(), |m| {
                    format!("${:.2} ({} reserved)", m.cost_usd, m.reserved_replicas)
                }),
            ]
        })
        .collect();
    let regimes = fleet
        .schedules
        .iter()
        .flat_map(|sched| {
            let (s, recommended) = (&sched.schedule, sched.recommendation.is_some());
            s.regimes.iter().map(move |r| {
                vec![
                    sched.supply_id.clone(),
                    r.name.to_string(),
                    crate::recommend::hour_ranges(&r.hours),
                    format!("{:.3}", r.mean_rps),
                    r.mode.as_ref().map_or("none feasible".into(), |m| {
                        format!("{} (${:.2}/h)", m.config.describe(), m.cost_per_hour)
                    }),
                    s.saving_percent()
                        .map_or("–".into(), |x| format!("{x:.1} %")),
                    if recommended { "yes" } else { "no" }.into(),
                ]
            })
        })
        .collect();
    let routing = fleet
        .routes
        .iter()
        .filter(|r| r.worth_it())
        .map(|r| {
            vec![
                r.app_id.clone(),
                r.label.clone(),
                format!("{} → {}", r.from, r.to),
                r.requests.to_string(),
                format!("${:.2}", r.saving_usd()),
            ]
        })
        .collect();
    [
        Findings {
            title: "Model tiering (worthwhile routes)",
            header: &["app", "class", "route", "requests", "saving in window"],
            rows: routing,
        },
        Findings {
            title: "Load regimes and scheduled modes",
            header: &[
                "supply",
                "regime",
                "hours (UTC)",
                "mean requests/s",
                "mode",
                "schedule saves",
                "recommended",
            ],
            rows: regimes,
        },
        Findings {
            title: "Capacity plan",
            header: &[
                "supply",
                "requests/s per replica",
                "replicas",
                "in flight per replica",
                "plan meets the SLOs",
                "static",
                "autoscaled",
                "purchase mix",
            ],
            rows: capacity,
        },
        Findings {
            title: "Grades",
            header: &["supply", "grade", "by dimension"],
            rows: grades,
        },
        Findings {
            title: "Alerts",
            header: &["supply", "kind", "from (UTC)", "hours", "worst hour"],
            rows: alerts,
        },
        Findings {
            title: "Response caching",
            header: &[
                "app",
                "supply",
                "response cache",
                "hit rate (95 % interval)",
                "tokens saved",
                "cost saved",
            ],
            rows: caching,
        },
        Findings {
            title: "Cost drivers (top 3 per dimension)",
            header: &[
                "dimension",
                "key",
                "cost in window",
                "per month",
                "share",
                "per 1k requests",
                "per 1M tokens",
            ],
            rows: cost_rows(fleet.costs),
        },
        Findings {
            title: "Prompt caching on hosted APIs",
            header: &[
                "app",
                "supply",
                "input in long shared prefixes",
                "reported cached",
                "recommended retention (cached)",
                "saving",
            ],
            rows: prompt_caching,
        },
        Findings {
            title: "Batch opportunities",
            header: &[
                "app",
                "supply",
                "night share",
                "in sessions",
                "prompt p50",
                "latency-tolerant",
                "batch API saving",
            ],
            rows: batch,
        },
        Findings {
            title: "Client defaults",
            header: &["app", "max_tokens today", "responses cut", "recommended"],
            rows: client,
        },
    ]
    .into_iter()
    .filter(|f| !f.rows.is_empty())
    .collect()
}

/// The three costliest keys of each dimension but days.
fn cost_rows(costs: &CostDrivers) -> Vec<Vec<String>> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    costs
        .rows
        .iter()
        .filter(|r| r.dimension != "day")
        .filter(|r| {
            let n = seen.entry(r.dimension).or_default();
            *n += 1;
            *n <= 3
        })
        .map(|r| {
            vec![
                r.dimension.to_string(),
                r.key.clone(),
                format!("${:.2}", r.cost_usd),
                format!("${:.0}", costs.per_month(r.cost_usd)),
                format!("{:.1} %", r.share * 100.0),
                format!("${:.3}", r.cost_usd / r.requests.max(1) as f64 * 1e3),
                format!("${:.2}", r.cost_usd / r.tokens.max(1) as f64 * 1e6),
            ]
        })
        .collect()
}

/// How a status reads in a heading.
fn verdict(status: Status) -> &'static str {
    match status {
        Status::Recommended => "change recommended",
        Status::NoChange => "no change",
        Status::NoFeasible => "no configuration meets the SLOs",
        Status::Hosted => "hosted API",
    }
}
