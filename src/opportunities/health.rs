//! Grades and alerts (seed 004): how each supply did over the window, graded A+ to D, and the hours
//! that need a person's attention, each with its evidence.
//!
//! # Grades
//! Each dimension is graded on its own; the supply's grade is its weakest dimension (a fast supply
//! that fails requests is not a good one). Hosted APIs have no utilisation grade.
//!
//! | dimension | measure | A+ | A | B | C | D |
//! |---|---|---|---|---|---|---|
//! | SLO | requests meeting both p95 targets (TTFT, TPOT) | ≥ 99 % | ≥ 95 % | ≥ 90 % | ≥ 80 % | below |
//! | errors | errors + timeouts | ≤ 0.1 % | ≤ 1 % | ≤ 2 % | ≤ 5 % | above |
//! | utilisation | mean GPU utilisation (telemetry) | ≥ 60 % | ≥ 45 % | ≥ 30 % or over 90 % | ≥ 15 % | below |
//! | cost | share of the bill the run's own recommendations would save | ≤ 2 % | ≤ 5 % | ≤ 15 % | ≤ 30 % | above |
//!
//! A supply meeting each p95 target has at least 95 % of requests within that target (and, the two
//! misses overlapping or not, at least 90 % within both); A asks for 95 % within both. Utilisation
//! over 90 % is graded B: no headroom for a burst. Latencies are those of requests that did not
//! fail; failures are graded on their own.
//!
//! # Alerts
//! Flagged hours; consecutive hours of one kind merge into one alert, whose evidence is its worst
//! hour.
//! - `slo_miss`: an hour in which significantly more than 5 % of requests miss the TTFT target, or
//!   the TPOT target (a p95 target allows 5 % each): at least [`MIN_SLO_MISSES`] misses of that
//!   target, [`SPIKE_Z`] binomial standard deviations over 5 % of the hour's requests (an hour's
//!   p95 over a few dozen requests is too noisy to judge on its own);
//! - `saturation`: requests waiting (mean `num_waiting` ≥ 1), the KV cache full (peak
//!   `kv_cache_usage` ≥ [`KV_FULL`]) or preemptions;
//! - `error_spike`: at least [`MIN_SPIKE_FAILURES`] failures, at least twice the window's failure
//!   rate and [`SPIKE_Z`] binomial standard deviations above it;
//! - `cost_jump`: a whole UTC day of the window whose logged cost (`cost_usd`) is over
//!   [`COST_JUMP`] × the median whole day's (at least three whole days; the partial days at the
//!   window's ends are left out; a self-hosted bill is the GPUs', which do not jump).

use std::collections::BTreeMap;

use arrow::array::{Array, RecordBatch};
use serde::Serialize;

use super::Columns;
use crate::config::Window;
use crate::error::Result;

/// Requests missing a target that an hour needs to be an SLO miss.
pub const MIN_SLO_MISSES: u64 = 3;
/// Peak KV-cache usage from which the cache counts as full.
pub const KV_FULL: f64 = 0.95;
/// Failures an hour needs to be a spike.
pub const MIN_SPIKE_FAILURES: u64 = 5;
/// Binomial z-score of a spike.
pub const SPIKE_Z: f64 = 4.0;
/// Day-over-median cost ratio of a jump.
pub const COST_JUMP: f64 = 1.5;

/// One supply-hour of `sql/opportunities/supply_hours.sql`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupplyHour {
    pub supply_id: String,
    pub hour_us: i64,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    pub with_latency: u64,
    pub ttft_misses: u64,
    pub tpot_misses: u64,
    pub met_slo: u64,
    pub ttft_ms_p95: Option<f64>,
    pub tpot_ms_p95: Option<f64>,
    pub num_waiting_mean: Option<f64>,
    pub kv_cache_usage_max: Option<f64>,
    pub preemptions: Option<f64>,
    pub gpu_util_mean: Option<f64>,
}

impl SupplyHour {
    fn failures(&self) -> u64 {
        self.errors + self.timeouts
    }
}

/// Reads the rows of `sql/opportunities/supply_hours.sql`.
pub(super) fn supply_hours(batches: &[RecordBatch]) -> Result<Vec<SupplyHour>> {
    let mut out = Vec::new();
    for b in batches {
        let c = Columns::new(b, crate::sql::SUPPLY_HOURS.path);
        let supply = c.text("supply_id")?;
        let hour = c.timestamp("hour")?;
        let (requests, errors, timeouts, tokens) = (
            c.int("requests")?,
            c.int("errors")?,
            c.int("timeouts")?,
            c.int("tokens")?,
        );
        let (with_latency, ttft_misses, tpot_misses, met_slo) = (
            c.int("with_latency")?,
            c.int("ttft_misses")?,
            c.int("tpot_misses")?,
            c.int("met_slo")?,
        );
        let (cost, ttft, tpot) = (
            c.real("cost_usd")?,
            c.real("ttft_ms_p95")?,
            c.real("tpot_ms_p95")?,
        );
        let (waiting, kv, preemptions, util) = (
            c.real("num_waiting_mean")?,
            c.real("kv_cache_usage_max")?,
            c.real("preemptions")?,
            c.real("gpu_util_mean")?,
        );
        let opt = |a: &arrow::array::Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        for i in 0..b.num_rows() {
            out.push(SupplyHour {
                supply_id: supply.value(i).to_string(),
                hour_us: hour.value(i),
                requests: Columns::count(requests, i),
                errors: Columns::count(errors, i),
                timeouts: Columns::count(timeouts, i),
                tokens: Columns::count(tokens, i),
                cost_usd: opt(cost, i),
                with_latency: Columns::count(with_latency, i),
                ttft_misses: Columns::count(ttft_misses, i),
                tpot_misses: Columns::count(tpot_misses, i),
                met_slo: Columns::count(met_slo, i),
                ttft_ms_p95: opt(ttft, i),
                tpot_ms_p95: opt(tpot, i),
                num_waiting_mean: opt(waiting, i),
                kv_cache_usage_max: opt(kv, i),
                preemptions: opt(preemptions, i),
                gpu_util_mean: opt(util, i),
            });
        }
    }
    Ok(out)
}

/// A letter grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Grade {
    #[serde(rename = "D")]
    D,
    #[serde(rename = "C")]
    C,
    #[serde(rename = "B")]
    B,
    #[serde(rename = "A")]
    A,
    #[serde(rename = "A+")]
    APlus,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::APlus => "A+",
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }

    /// The grade of `value` against thresholds for A+, A, B and C (higher is better).
    fn at_least(value: f64, [a_plus, a, b, c]: [f64; 4]) -> Grade {
        [
            (a_plus, Grade::APlus),
            (a, Grade::A),
            (b, Grade::B),
            (c, Grade::C),
        ]
        .into_iter()
        .find(|(t, _)| value >= *t)
        .map_or(Grade::D, |(_, g)| g)
    }

    /// The grade of `value` against thresholds for A+, A, B and C (lower is better).
    fn at_most(value: f64, limits: [f64; 4]) -> Grade {
        Grade::at_least(-value, limits.map(|l| -l))
    }
}

/// One supply's window, measured: the grade inputs the lake gives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupplyHealth {
    pub supply_id: String,
    pub requests: u64,
    /// Requests meeting both SLO targets, of those with latencies.
    pub slo_attainment: Option<f64>,
    /// Errors and timeouts, of all requests.
    pub failure_share: f64,
    /// Mean GPU utilisation over the hours with telemetry.
    pub gpu_util: Option<f64>,
    pub alerts: Vec<Alert>,
}

/// A supply's grade, by dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupplyGrade {
    pub supply_id: String,
    pub grade: Grade,
    pub slo: Option<Grade>,
    pub errors: Grade,
    pub utilisation: Option<Grade>,
    pub cost: Option<Grade>,
    /// Share of the supply's bill the run's recommendations would save (the cost grade's input).
    pub avoidable_cost_share: Option<f64>,
}

impl SupplyHealth {
    /// The grade, given the share of the bill the run's recommendations would save.
    pub fn grade(&self, avoidable_cost_share: Option<f64>) -> SupplyGrade {
        let slo = self
            .slo_attainment
            .map(|a| Grade::at_least(a, [0.99, 0.95, 0.90, 0.80]));
        let errors = Grade::at_most(self.failure_share, [0.001, 0.01, 0.02, 0.05]);
        let utilisation = self.gpu_util.map(|u| {
            if u > 0.9 {
                Grade::B
            } else {
                Grade::at_least(u, [0.60, 0.45, 0.30, 0.15])
            }
        });
        let cost = avoidable_cost_share.map(|s| Grade::at_most(s, [0.02, 0.05, 0.15, 0.30]));
        let grade = [slo, Some(errors), utilisation, cost]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Grade::D);
        SupplyGrade {
            supply_id: self.supply_id.clone(),
            grade,
            slo,
            errors,
            utilisation,
            cost,
            avoidable_cost_share,
        }
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    SloMiss,
    Saturation,
    ErrorSpike,
    CostJump,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::SloMiss => "slo_miss",
            AlertKind::Saturation => "saturation",
            AlertKind::ErrorSpike => "error_spike",
            AlertKind::CostJump => "cost_jump",
        }
    }
}

/// Consecutive flagged hours (or days) of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub supply_id: String,
    pub kind: AlertKind,
    /// First flagged hour, and the end of the last (exclusive), µs since the epoch.
    pub start_us: i64,
    pub end_us: i64,
    pub hours: u32,
    /// The worst hour's figures.
    pub evidence: String,
}

/// A flagged span: its severity (for the worst) and evidence.
struct Flag {
    start_us: i64,
    end_us: i64,
    severity: f64,
    evidence: String,
}

/// Each supply's measures and alerts over its hours of `window`; `targets` gives each supply's
/// (p95 TTFT, p95 TPOT) targets, ms.
pub fn supply_health(
    hours: &[SupplyHour],
    targets: &BTreeMap<String, (f64, f64)>,
    window: &Window,
) -> Vec<SupplyHealth> {
    const HOUR_US: i64 = 3_600_000_000;
    let mut by_supply: BTreeMap<&str, Vec<&SupplyHour>> = BTreeMap::new();
    for h in hours {
        by_supply.entry(&h.supply_id).or_default().push(h);
    }
    by_supply
        .into_iter()
        .map(|(supply_id, mut hours)| {
            hours.sort_by_key(|h| h.hour_us);
            let sum = |f: fn(&SupplyHour) -> u64| hours.iter().map(|h| f(h)).sum::<u64>();
            let (requests, failures) = (sum(|h| h.requests), sum(SupplyHour::failures));
            let (with_latency, met) = (sum(|h| h.with_latency), sum(|h| h.met_slo));
            let failure_rate = failures as f64 / requests.max(1) as f64;
            let utils: Vec<f64> = hours.iter().filter_map(|h| h.gpu_util_mean).collect();
            let (ttft_target, tpot_target) = targets
                .get(supply_id)
                .copied()
                .unwrap_or((f64::INFINITY, f64::INFINITY));
            let mut flags: BTreeMap<AlertKind, Vec<Flag>> = BTreeMap::new();
            let mut flag = |kind, h: &SupplyHour, severity, evidence| {
                flags.entry(kind).or_default().push(Flag {
                    start_us: h.hour_us,
                    end_us: h.hour_us + HOUR_US,
                    severity,
                    evidence,
                })
            };
            for h in &hours {
                let z = |misses| {
                    if misses >= MIN_SLO_MISSES {
                        excess_z(misses, h.with_latency, 0.05)
                    } else {
                        0.0
                    }
                };
                let worst = z(h.ttft_misses).max(z(h.tpot_misses));
                if worst >= SPIKE_Z {
                    flag(
                        AlertKind::SloMiss,
                        h,
                        worst,
                        format!(
                            "of {} requests, {} over the TTFT target ({ttft_target:.0} ms) and {} over the TPOT target ({tpot_target:.0} ms); p95 TTFT {:.0} ms, p95 TPOT {:.1} ms",
                            h.with_latency,
                            h.ttft_misses,
                            h.tpot_misses,
                            h.ttft_ms_p95.unwrap_or(0.0),
                            h.tpot_ms_p95.unwrap_or(0.0),
                        ),
                    );
                }
                let waiting = h.num_waiting_mean.unwrap_or(0.0);
                let kv = h.kv_cache_usage_max.unwrap_or(0.0);
                let preempted = h.preemptions.unwrap_or(0.0);
                if waiting >= 1.0 || kv >= KV_FULL || preempted > 0.0 {
                    flag(
                        AlertKind::Saturation,
                        h,
                        waiting + kv + preempted,
                        format!(
                            "{waiting:.1} requests waiting on average, KV cache peak {:.0} %, {preempted:.0} preemptions",
                            kv * 100.0
                        ),
                    );
                }
                let (n, f) = (h.requests as f64, h.failures());
                let z = excess_z(f, h.requests, failure_rate);
                if f >= MIN_SPIKE_FAILURES && f as f64 >= 2.0 * n * failure_rate && z >= SPIKE_Z {
                    flag(
                        AlertKind::ErrorSpike,
                        h,
                        z,
                        format!(
                            "{f} of {} requests failed ({} errors, {} timeouts): {:.1} % against {:.2} % over the window",
                            h.requests,
                            h.errors,
                            h.timeouts,
                            f as f64 / n * 100.0,
                            failure_rate * 100.0
                        ),
                    );
                }
            }
            flags.extend(cost_jumps(&hours, window));
            SupplyHealth {
                supply_id: supply_id.to_string(),
                requests,
                slo_attainment: (with_latency > 0).then(|| met as f64 / with_latency as f64),
                failure_share: failure_rate,
                gpu_util: (!utils.is_empty())
                    .then(|| utils.iter().sum::<f64>() / utils.len() as f64),
                alerts: flags
                    .into_iter()
                    .flat_map(|(kind, spans)| merge(supply_id, kind, spans))
                    .collect(),
            }
        })
        .collect()
}

/// How many binomial standard deviations `k` of `n` lie above the rate `p`.
fn excess_z(k: u64, n: u64, p: f64) -> f64 {
    let n = n as f64;
    (k as f64 - n * p) / (n * p * (1.0 - p)).sqrt().max(1e-9)
}

/// Whole days whose logged cost jumps over the median whole day's (see the module doc).
fn cost_jumps(hours: &[&SupplyHour], window: &Window) -> Option<(AlertKind, Vec<Flag>)> {
    const DAY_US: i64 = 86_400_000_000;
    let (start, end) = (
        window.start.timestamp_micros(),
        window.end.timestamp_micros(),
    );
    let whole = |day: i64| day * DAY_US >= start && (day + 1) * DAY_US <= end;
    let mut days: BTreeMap<i64, f64> = BTreeMap::new();
    for h in hours {
        let day = h.hour_us.div_euclid(DAY_US);
        if let (Some(c), true) = (h.cost_usd, whole(day)) {
            *days.entry(day).or_default() += c;
        }
    }
    if days.len() < 3 {
        return None;
    }
    let mut costs: Vec<f64> = days.values().copied().collect();
    costs.sort_by(f64::total_cmp);
    let median = costs[costs.len() / 2];
    let flags = days
        .into_iter()
        .filter(|(_, c)| median > 0.0 && *c > COST_JUMP * median)
        .map(|(day, c)| Flag {
            start_us: day * DAY_US,
            end_us: (day + 1) * DAY_US,
            severity: c / median,
            evidence: format!("${c:.2} in the day against a median day of ${median:.2}"),
        })
        .collect();
    Some((AlertKind::CostJump, flags))
}

/// Adjacent spans of one kind merged into alerts, each with its worst span's evidence.
fn merge(supply_id: &str, kind: AlertKind, spans: Vec<Flag>) -> Vec<Alert> {
    let mut alerts: Vec<(Alert, f64)> = Vec::new();
    for s in spans {
        match alerts.last_mut() {
            Some((a, worst)) if a.end_us == s.start_us => {
                a.end_us = s.end_us;
                if s.severity > *worst {
                    *worst = s.severity;
                    a.evidence = s.evidence;
                }
            }
            _ => alerts.push((
                Alert {
                    supply_id: supply_id.to_string(),
                    kind,
                    start_us: s.start_us,
                    end_us: s.end_us,
                    hours: 0,
                    evidence: s.evidence,
                },
                s.severity,
            )),
        }
    }
    alerts
        .into_iter()
        .map(|(mut a, _)| {
            a.hours = ((a.end_us - a.start_us) / 3_600_000_000) as u32;
            a
        })
        .collect()
}
