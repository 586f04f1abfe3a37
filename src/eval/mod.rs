//! How good is the engine model on measured runs? Each case (a deployment, its measured requests and
//! their arrival trace) is replayed through the simulator, and its TTFT p50/p90 and decode time per
//! token are compared with what was measured:
//!
//! - **uncalibrated**: the roofline with its public defaults, as for a GPU or model the fleet never
//!   ran;
//! - **calibrated** (leave one run out): the step model fitted, from request logs alone, on the other
//!   scored cases of the case's group (same model and setup), and the frontend time as the median
//!   TTFT those runs have beyond the fitted engine. The case itself is never fitted on.

use rayon::prelude::*;
use serde::Serialize;

use crate::calibration::requests::{RequestTiming, decode_samples, fit_step_model};
use crate::calibration::roofline_prior;
use crate::config::eval::{LengthSpec, MeasuredSpec, WorkloadSpec};
use crate::error::Result;
use crate::rng::{Rng, mix};
use crate::simulation::{
    Deployment, LinearParams, Percentiles, RequestStatus, SimOptions, SimReport, StepTimeModel,
    Trace, TraceRequest, simulate,
};

/// One measured run.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub group: String,
    /// False for stress runs: reported, never scored or fitted on.
    pub scored: bool,
    pub note: Option<String>,
    pub deployment: Deployment,
    pub trace: Trace,
    /// Logged timing of each trace request, in trace order (`None`: it failed); empty for a case
    /// described by its workload.
    pub timings: Vec<Option<RequestTiming>>,
    /// Measured aggregates given with the case, in place of those of `timings`.
    pub measured: Option<Latencies>,
    pub request_timeout_s: Option<f64>,
}

/// A figure not measured is NaN, and scored nowhere.
impl From<&MeasuredSpec> for Latencies {
    fn from(m: &MeasuredSpec) -> Latencies {
        let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        Latencies {
            ttft_p50_ms: or_nan(m.ttft_p50_ms),
            ttft_p90_ms: or_nan(m.ttft_p90_ms),
            decode_ms_per_token: or_nan(m.decode_ms_per_token),
            output_tokens_per_s: or_nan(m.output_tokens_per_s),
            failed: m.failed,
        }
    }
}

/// The trace of a described workload: Poisson arrivals stage by stage, lengths drawn lognormal with
/// the given mean and coefficient of variation, and each prompt opening with one of the shared
/// prefixes (one block hash per full `block_size`-token block), all from one seeded stream.
pub fn workload_trace(w: &WorkloadSpec, seed: u64, stream: u64, block_size: u32) -> Result<Trace> {
    let mut rng = Rng::new(seed, stream);
    let draw = |rng: &mut Rng, l: &LengthSpec| {
        let tokens = if l.cv > 0.0 {
            let sigma2 = (1.0 + l.cv * l.cv).ln();
            rng.lognormal(l.mean * (-sigma2 / 2.0).exp(), sigma2.sqrt())
        } else {
            l.mean
        };
        tokens.round().clamp(1.0, f64::from(u32::MAX)) as u32
    };
    let block = block_size.max(1);
    let mut requests = Vec::new();
    let mut start = 0.0;
    for stage in &w.stages {
        let end = start + stage.duration_s;
        let mut t = start + rng.exp(stage.rate_rps);
        while t < end {
            let prompt = draw(&mut rng, &w.prompt_tokens);
            let mut r = TraceRequest::new(t, prompt, draw(&mut rng, &w.output_tokens));
            if let Some(p) = &w.shared_prefix {
                let group = rng.below(p.groups);
                let blocks = p.tokens.min(prompt) / block;
                r.prefix_hashes = (0..u64::from(blocks)).map(|i| mix(&[group, i])).collect();
            }
            requests.push(r);
            t += rng.exp(stage.rate_rps);
        }
        start = end;
    }
    Trace::new(requests)
}

/// A scored quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TtftP50Ms,
    TtftP90Ms,
    DecodeMsPerToken,
    OutputTokensPerS,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::TtftP50Ms,
        Metric::TtftP90Ms,
        Metric::DecodeMsPerToken,
        Metric::OutputTokensPerS,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::TtftP50Ms => "ttft_p50_ms",
            Metric::TtftP90Ms => "ttft_p90_ms",
            Metric::DecodeMsPerToken => "decode_ms_per_token",
            Metric::OutputTokensPerS => "output_tokens_per_s",
        }
    }

    /// The metric's heading in the Markdown table.
    fn heading(self) -> &'static str {
        match self {
            Metric::TtftP50Ms => "TTFT p50 ms",
            Metric::TtftP90Ms => "TTFT p90 ms",
            Metric::DecodeMsPerToken => "decode ms/token",
            Metric::OutputTokensPerS => "output tokens/s",
        }
    }
}

/// Which engine model predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Uncalibrated,
    Calibrated,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Uncalibrated, Mode::Calibrated];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Uncalibrated => "uncalibrated",
            Mode::Calibrated => "calibrated",
        }
    }
}

/// The scored quantities of one run, measured or predicted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latencies {
    pub ttft_p50_ms: f64,
    pub ttft_p90_ms: f64,
    /// Mean over successful requests of (E2E − TTFT) / (output tokens − 1).
    pub decode_ms_per_token: f64,
    /// Output tokens generated per second of the run (NaN where a request log does not say).
    pub output_tokens_per_s: f64,
    /// Requests that failed (timed out or were rejected).
    pub failed: usize,
}

impl Latencies {
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::TtftP50Ms => self.ttft_p50_ms,
            Metric::TtftP90Ms => self.ttft_p90_ms,
            Metric::DecodeMsPerToken => self.decode_ms_per_token,
            Metric::OutputTokensPerS => self.output_tokens_per_s,
        }
    }

    /// (TTFT, output tokens, E2E) of the successful requests; `output_tokens_per_s` as given.
    fn of(
        finished: impl Iterator<Item = (f64, f64, f64)>,
        failed: usize,
        output_tokens_per_s: f64,
    ) -> Latencies {
        let (mut ttft, mut decode) = (Vec::new(), Vec::new());
        for (t, output, e2e) in finished {
            ttft.push(t);
            if output >= 2.0 {
                decode.push((e2e - t) / (output - 1.0));
            }
        }
        let p = Percentiles::from_values(&mut ttft);
        Latencies {
            ttft_p50_ms: p.p50,
            ttft_p90_ms: p.p90,
            decode_ms_per_token: decode.iter().sum::<f64>() / decode.len().max(1) as f64,
            output_tokens_per_s,
            failed,
        }
    }
}

/// One case's measured and predicted latencies.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub group: String,
    pub scored: bool,
    pub note: Option<String>,
    pub requests: usize,
    pub measured: Latencies,
    pub uncalibrated: Latencies,
    /// `None` when the group has no other scored case to fit on.
    pub calibrated: Option<Latencies>,
}

impl CaseResult {
    pub fn predicted(&self, mode: Mode) -> Option<&Latencies> {
        match mode {
            Mode::Uncalibrated => Some(&self.uncalibrated),
            Mode::Calibrated => self.calibrated.as_ref(),
        }
    }

    /// Signed relative error in percent (`None` without a prediction or a measurement).
    pub fn error_pct(&self, mode: Mode, metric: Metric) -> Option<f64> {
        let measured = self.measured.get(metric);
        self.predicted(mode)
            .filter(|_| measured.is_finite())
            .map(|p| 100.0 * (p.get(metric) / measured - 1.0))
    }

    /// The prediction fails requests the measured run served, or puts its median TTFT 10× above
    /// the measured one: the model saw saturation the engine did not have.
    pub fn falsely_saturated(&self, mode: Mode) -> bool {
        self.predicted(mode).is_some_and(|p| {
            (p.failed > 0 && self.measured.failed == 0)
                || p.ttft_p50_ms > 10.0 * self.measured.ttft_p50_ms
        })
    }

    /// Whether the run measured `metric`.
    pub fn measures(&self, metric: Metric) -> bool {
        self.measured.get(metric).is_finite()
    }
}

/// Error statistics of one metric under one mode, over the scored cases.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: Mode,
    pub metric: Metric,
    pub cases: usize,
    /// Nearest-rank median and p90 of |error|, in percent.
    pub median_abs_error_pct: f64,
    pub p90_abs_error_pct: f64,
    pub falsely_saturated: usize,
}

/// Every case's result and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub cases: Vec<CaseResult>,
    pub summary: Vec<Summary>,
}

/// Scores every case, uncalibrated and calibrated; cases run in parallel, each with its own seed
/// stream (`seed`, case index), so results do not depend on the thread count.
pub fn evaluate(cases: &[Case], seed: u64) -> Result<EvalReport> {
    let results = (0..cases.len())
        .into_par_iter()
        .map(|i| score(cases, i, seed))
        .collect::<Result<Vec<_>>>()?;
    let measured: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|&m| results.iter().any(|r| r.measures(m)))
        .collect();
    let summary = Mode::ALL
        .into_iter()
        .flat_map(|mode| measured.iter().map(move |&metric| (mode, metric)))
        .map(|(mode, metric)| summarize(&results, mode, metric))
        .filter(|s| s.cases > 0)
        .collect();
    Ok(EvalReport {
        cases: results,
        summary,
    })
}

fn score(cases: &[Case], i: usize, seed: u64) -> Result<CaseResult> {
    let case = &cases[i];
    let measured = case.measured.unwrap_or_else(|| {
        Latencies::of(
            case.timings
                .iter()
                .flatten()
                .map(|t| (t.ttft_ms, t.output_tokens, t.e2e_ms)),
            case.timings.iter().filter(|t| t.is_none()).count(),
            f64::NAN,
        )
    });
    let options = SimOptions {
        seed,
        scenario_id: i as u64,
        keep_per_request: true,
        request_timeout_s: case.request_timeout_s,
        ..SimOptions::default()
    };
    let uncalibrated = predict(case, &case.deployment, &options)?;
    let train: Vec<&Case> = cases
        .iter()
        .enumerate()
        .filter(|&(j, c)| j != i && c.scored && c.group == case.group)
        .map(|(_, c)| c)
        .collect();
    let calibrated = match calibrate(case, &train, &options)? {
        Some(d) => Some(predict(case, &d, &options)?),
        None => None,
    };
    Ok(CaseResult {
        id: case.id.clone(),
        group: case.group.clone(),
        scored: case.scored,
        note: case.note.clone(),
        requests: case.trace.len(),
        measured,
        uncalibrated,
        calibrated,
    })
}

fn replay(case: &Case, deployment: &Deployment, options: &SimOptions) -> Result<SimReport> {
    simulate(deployment, &case.trace, options)
}

fn predict(case: &Case, deployment: &Deployment, options: &SimOptions) -> Result<Latencies> {
    let report = replay(case, deployment, options)?;
    let requests = case.trace.requests();
    let per = report.per_request.unwrap_or_default();
    let finished = per
        .iter()
        .filter(|q| q.status == RequestStatus::Finished)
        .map(|q| {
            let output = f64::from(requests[q.index as usize].output_tokens);
            (q.ttft_ms, output, q.e2e_ms)
        });
    Ok(Latencies::of(
        finished,
        (report.timed_out + report.rejected) as usize,
        report.output_tokens_per_s,
    ))
}

/// The case's deployment with the step model fitted on `train` and their frontend time, or `None`
/// without training runs.
fn calibrate(case: &Case, train: &[&Case], options: &SimOptions) -> Result<Option<Deployment>> {
    let logged = |c: &Case| c.timings.iter().flatten().copied().collect::<Vec<_>>();
    let samples: Vec<_> = train
        .iter()
        .flat_map(|c| decode_samples(&logged(c)))
        .collect();
    if samples.is_empty() {
        return Ok(None);
    }
    let (context, count) = train
        .iter()
        .flat_map(|c| logged(c))
        .fold((0.0, 0usize), |(sum, n), t| {
            (sum + t.prompt_tokens + t.output_tokens / 2.0, n + 1)
        });
    let prior = roofline_prior(&case.deployment, context / count as f64);
    let fit = fit_step_model(&samples, &prior, 0.5, &Default::default())?;
    let c = &fit.coefficients;
    let reserve_gib = case.deployment.step_model.activation_reserve_bytes() / (1u64 << 30) as f64;
    let model = StepTimeModel::Linear(LinearParams {
        alpha_ms: c[0].value,
        beta_ms: c[1].value,
        gamma_ms: c[2].value,
        delta_ms: 0.0,
        activation_reserve_gib: reserve_gib,
    });
    // The frontend time: the median TTFT the training runs have beyond the fitted engine (robust to
    // the queueing tail of a busy run).
    let mut residuals = Vec::new();
    for run in train {
        let mut d = run.deployment.clone();
        d.step_model = model.clone();
        d.engine.frontend_ms = 0.0;
        let report = replay(run, &d, options)?;
        for q in report.per_request.unwrap_or_default() {
            if let Some(Some(t)) = run.timings.get(q.index as usize)
                && q.ttft_ms.is_finite()
            {
                residuals.push(t.ttft_ms - q.ttft_ms);
            }
        }
    }
    let mut d = case.deployment.clone();
    d.step_model = model;
    d.engine.frontend_ms = Percentiles::from_values(&mut residuals).p50.max(0.0);
    Ok(Some(d))
}

fn summarize(results: &[CaseResult], mode: Mode, metric: Metric) -> Summary {
    let scored: Vec<&CaseResult> = results.iter().filter(|r| r.scored).collect();
    let mut errors: Vec<f64> = scored
        .iter()
        .filter_map(|r| r.error_pct(mode, metric))
        .map(f64::abs)
        .collect();
    let p = Percentiles::from_values(&mut errors);
    Summary {
        mode,
        metric,
        cases: errors.len(),
        median_abs_error_pct: p.p50,
        p90_abs_error_pct: p.p90,
        falsely_saturated: scored.iter().filter(|r| r.falsely_saturated(mode)).count(),
    }
}

impl EvalReport {
    /// The per-case table and the summary, as Markdown (what `tunelake eval` prints and writes).
    pub fn markdown(&self) -> String {
        let cell = |r: &CaseResult, mode: Mode, metric: Metric| match r.predicted(mode) {
            Some(p) => format!(
                "{:.1} ({:+.0}%)",
                p.get(metric),
                r.error_pct(mode, metric).unwrap_or(f64::NAN)
            ),
            None => "–".into(),
        };
        // Columns for the metrics some case measured.
        let metrics: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter(|&m| self.cases.iter().any(|r| r.measures(m)))
            .collect();
        let mut out = String::from("| case | requests |");
        for m in &metrics {
            out.push_str(&format!(
                " {}: measured | uncalibrated | calibrated |",
                m.heading()
            ));
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|---:|---:|".repeat(metrics.len()));
        out.push('\n');
        for r in &self.cases {
            let name = if r.scored {
                r.id.clone()
            } else {
                format!("{} (stress, not scored)", r.id)
            };
            out.push_str(&format!("| {name} | {} |", r.requests));
            for &metric in &metrics {
                out.push_str(&format!(
                    " {:.1} | {} | {} |",
                    r.measured.get(metric),
                    cell(r, Mode::Uncalibrated, metric),
                    cell(r, Mode::Calibrated, metric)
                ));
            }
            out.push('\n');
        }
        out.push_str(
            "\n| metric | mode | scored cases | median \\|error\\| | p90 \\|error\\| | falsely saturated |\n|---|---|---:|---:|---:|---:|\n",
        );
        for s in &self.summary {
            out.push_str(&format!(
                "| {} | {} | {} | {:.1} % | {:.1} % | {} |\n",
                s.metric.name(),
                s.mode.name(),
                s.cases,
                s.median_abs_error_pct,
                s.p90_abs_error_pct,
                s.falsely_saturated
            ));
        }
        out
    }
}
