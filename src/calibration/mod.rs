//! Calibration: fitting the engine's step-time model to the fleet's own history, and a backtest that
//! says how well the calibrated simulator reproduces that history ("model error on your data").
//!
//! Per self-hosted supply:
//! - **Decode**: per-token decode time (ITL) = α + β·batch, fitted by weighted least squares over the
//!   `gpu_metrics` windows (`num_running` as batch; `mean_itl_ms`, or `num_running` ÷
//!   `generation_tokens_per_s` when the exporter has no ITL histogram), weighted by the tokens each
//!   window decoded (a window mean over k tokens has variance ∝ 1/k), with outlier rejection and a
//!   Gaussian prior centred on the catalog roofline ([`fit`]).
//! - **Prefill**: TTFT − queue wait = c₀ + γ·uncached prompt tokens over the `requests`, where c₀ is
//!   the fixed per-request cost (first step, tokenisation, the HTTP path) and γ the prefill time per
//!   token.
//! - **Tracking**: an EKF over the windows in time order ([`ekf`]), reported next to the LS fit.
//! - **Backtest** ([`backtest`]): the supply's requests replayed through the simulator with its current
//!   config and the calibrated linear step model; predicted vs observed p50 / p95 TTFT, TPOT, E2E.
//!
//! A supply without telemetry keeps the roofline prior for its decode coefficients (status
//! `prior_only`); hosted APIs are skipped.

pub mod backtest;
pub mod ekf;
pub mod fit;
pub mod requests;
pub mod stage;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::simulation::{Deployment, LinearParams, StepCost, StepShape, StepTimeModel};

pub use backtest::{Backtest, MetricError};
pub use ekf::{Ekf, EkfObservation, EkfOptions, QueueInputs, QueuePrediction};
pub use fit::{Coefficient, FitOptions, LinearFit, Prior};
pub use stage::{CalibrationOptions, EkfSummary, SupplyCalibration, calibrate};

/// Where a supply's engine model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationStatus {
    /// Fitted to the window's telemetry and requests.
    Fitted,
    /// No usable telemetry: the decode coefficients are the roofline's.
    PriorOnly,
    /// A hosted API, or nothing served in the window.
    Skipped,
}

impl CalibrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CalibrationStatus::Fitted => "fitted",
            CalibrationStatus::PriorOnly => "prior_only",
            CalibrationStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for CalibrationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One telemetry window of one instance, as calibration reads it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TelemetryWindow {
    pub ts_us: i64,
    /// Mean running sequences.
    pub batch: f64,
    /// Mean inter-token latency, ms (from `mean_itl_ms`, or batch ÷ generation throughput).
    pub itl_ms: Option<f64>,
    /// Tokens decoded in the window (the fit's weight), when known.
    pub tokens: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub tokens_per_request: Option<f64>,
    pub queue_ms: Option<f64>,
}

/// Reads windows from `gpu_metrics` contract batches (rows with a null or non-positive batch are
/// kept: they carry no decode information and the fit ignores them).
pub fn windows_from_batches(batches: &[RecordBatch]) -> Result<Vec<TelemetryWindow>> {
    let mut out = Vec::new();
    for batch in batches {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::Calibration(format!("gpu_metrics lacks `{name}`")))
        };
        let f64s = |name: &str| -> Result<_> {
            col(name)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| Error::Calibration(format!("gpu_metrics `{name}` is not float64")))
        };
        let ts = col("ts")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| Error::Calibration("gpu_metrics `ts` is not a timestamp".into()))?;
        let (n, itl, gen_tps, window, rps, queue) = (
            f64s("num_running")?,
            f64s("mean_itl_ms")?,
            f64s("generation_tokens_per_s")?,
            f64s("window_s")?,
            f64s("requests_per_s")?,
            f64s("mean_queue_ms")?,
        );
        let get = |a: &arrow::array::Float64Array, i: usize| {
            (a.is_valid(i) && a.value(i).is_finite()).then(|| a.value(i))
        };
        for i in 0..batch.num_rows() {
            let batch_size = get(n, i).unwrap_or(0.0);
            let tps = get(gen_tps, i).filter(|&x| x > 0.0);
            let itl_ms = get(itl, i).filter(|&x| x > 0.0).or_else(|| {
                tps.filter(|_| batch_size > 0.0)
                    .map(|t| 1000.0 * batch_size / t)
            });
            let rps_i = get(rps, i).filter(|&x| x > 0.0);
            out.push(TelemetryWindow {
                ts_us: if ts.is_valid(i) { ts.value(i) } else { 0 },
                batch: batch_size,
                itl_ms,
                tokens: tps.map(|t| t * get(window, i).filter(|&w| w > 0.0).unwrap_or(60.0)),
                requests_per_s: rps_i,
                tokens_per_request: tps.zip(rps_i).map(|(t, r)| t / r),
                queue_ms: get(queue, i).filter(|&x| x >= 0.0),
            });
        }
    }
    Ok(out)
}

/// The engine model's coefficients in ms: decode step α + β·batch, prefill γ per token and c₀ per
/// request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EngineCoefficients {
    pub alpha_ms: f64,
    pub beta_ms: f64,
    pub prefill_ms_per_token: f64,
    pub request_overhead_ms: f64,
}

/// The roofline's coefficients for a deployment, read off its step-time model at a typical context
/// length: α and β are the line through the decode step times at batch 1 and 64, γ the marginal cost
/// of a prefill token in a 2048-token chunk, c₀ one decode step at batch 1 (the first-token step).
pub fn roofline_prior(dep: &Deployment, context_tokens: f64) -> EngineCoefficients {
    let cost = StepCost::new(dep, &dep.model);
    let ctx = context_tokens.max(1.0);
    let decode = |n: u32| {
        cost.step_s(&StepShape {
            num_seqs: n,
            decode_seqs: n,
            tokens: n,
            prefill_tokens: 0,
            kv_tokens: (n as f64 * ctx) as u64,
            attn_pairs: n as f64 * ctx,
        }) * 1e3
    };
    let prefill = |t: u32| {
        cost.step_s(&StepShape {
            num_seqs: 1,
            decode_seqs: 0,
            tokens: t,
            prefill_tokens: t,
            kv_tokens: t as u64,
            attn_pairs: t as f64 * t as f64 / 2.0,
        }) * 1e3
    };
    let beta = ((decode(64) - decode(1)) / 63.0).max(1e-6);
    EngineCoefficients {
        alpha_ms: (decode(1) - beta).max(1e-3),
        beta_ms: beta,
        prefill_ms_per_token: ((prefill(2048) - prefill(1)) / 2047.0).max(1e-6),
        request_overhead_ms: decode(1),
    }
}

/// The decode fit of one supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodeFit {
    pub alpha: Coefficient,
    pub beta: Coefficient,
    /// Windows read, windows with decode data (a running batch and an ITL) used by the fit, and
    /// those of them rejected as outliers.
    pub windows_total: usize,
    pub windows_used: usize,
    pub windows_rejected: usize,
    pub batch_min: f64,
    pub batch_max: f64,
    /// Residual standard deviation of ITL at a window of average weight, ms.
    pub sigma_ms: f64,
}

/// Fits ITL = α + β·batch over `windows`, shrunk toward `prior` (relative prior sd `prior_rel_sd`).
pub fn fit_decode(
    windows: &[TelemetryWindow],
    prior: &EngineCoefficients,
    prior_rel_sd: f64,
    options: &FitOptions,
) -> Result<DecodeFit> {
    let usable: Vec<&TelemetryWindow> = windows
        .iter()
        .filter(|w| w.batch > 0.0 && w.itl_ms.is_some())
        .collect();
    let rows: Vec<Vec<f64>> = usable.iter().map(|w| vec![1.0, w.batch]).collect();
    let y: Vec<f64> = usable
        .iter()
        .map(|w| w.itl_ms.unwrap_or(f64::NAN))
        .collect();
    let weights: Vec<f64> = usable.iter().map(|w| w.tokens.unwrap_or(1.0)).collect();
    let priors = [
        Prior::relative(prior.alpha_ms, prior_rel_sd),
        Prior::relative(prior.beta_ms, prior_rel_sd),
    ];
    let fit = fit::fit_linear(&rows, &y, &weights, &priors, options)?;
    let (lo, hi) = usable.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), w| {
        (lo.min(w.batch), hi.max(w.batch))
    });
    Ok(DecodeFit {
        alpha: fit.coefficients[0],
        beta: fit.coefficients[1],
        windows_used: fit.used,
        windows_total: windows.len(),
        windows_rejected: fit.rejected,
        batch_min: if lo.is_finite() { lo } else { 0.0 },
        batch_max: hi,
        sigma_ms: fit.sigma,
    })
}

/// One request as the prefill fit reads it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrefillSample {
    pub uncached_tokens: f64,
    /// TTFT minus the queue wait (TTFT when the wait is not logged), ms.
    pub service_ms: f64,
}

/// The prefill fit of one supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefillFit {
    pub overhead: Coefficient,
    pub per_token: Coefficient,
    pub requests_used: usize,
    pub requests_rejected: usize,
}

/// Fits service TTFT = c₀ + γ·uncached tokens, shrunk toward `prior`.
pub fn fit_prefill(
    samples: &[PrefillSample],
    prior: &EngineCoefficients,
    prior_rel_sd: f64,
    options: &FitOptions,
) -> Result<PrefillFit> {
    let rows: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| vec![1.0, s.uncached_tokens])
        .collect();
    let y: Vec<f64> = samples.iter().map(|s| s.service_ms).collect();
    let priors = [
        Prior::relative(prior.request_overhead_ms, prior_rel_sd),
        Prior::relative(prior.prefill_ms_per_token, prior_rel_sd),
    ];
    let fit = fit::fit_linear(&rows, &y, &vec![1.0; y.len()], &priors, options)?;
    Ok(PrefillFit {
        overhead: fit.coefficients[0],
        per_token: fit.coefficients[1],
        requests_used: fit.used,
        requests_rejected: fit.rejected,
    })
}

/// Runs the EKF over `windows` (in the order given, normally time order) from the prior `(α, β)`.
/// `prefill_ms` is the mean non-decode service time per request; `max_batch` the engine's
/// max_num_seqs. Windows without an ITL or an arrival rate are skipped.
pub fn track(
    windows: &[TelemetryWindow],
    prior: (f64, f64),
    prior_rel_sd: f64,
    prefill_ms: f64,
    max_batch: u32,
    options: &EkfOptions,
) -> Ekf {
    let mut ekf = Ekf::new(prior.0, prior.1, prior_rel_sd, options.clone());
    for w in windows {
        let (Some(itl), Some(rps)) = (w.itl_ms, w.requests_per_s) else {
            continue;
        };
        if w.batch <= 0.0 {
            continue;
        }
        ekf.step(&EkfObservation {
            inputs: QueueInputs {
                lambda_per_ms: rps / 1000.0,
                tokens_per_request: w.tokens_per_request.unwrap_or(1.0),
                prefill_ms,
                max_batch,
                batch: Some(w.batch),
            },
            itl_ms: itl,
            wait_ms: w.queue_ms,
        });
    }
    ekf
}

impl EngineCoefficients {
    /// The simulator's linear step model with these coefficients: step = α + β·sequences + γ·prefill
    /// tokens. (c₀ beyond one step is the frontend time: [`EngineCoefficients::frontend_ms`].)
    pub fn step_model(&self, activation_reserve_gib: f64) -> StepTimeModel {
        StepTimeModel::Linear(LinearParams {
            alpha_ms: self.alpha_ms,
            beta_ms: self.beta_ms,
            gamma_ms: self.prefill_ms_per_token,
            delta_ms: 0.0,
            activation_reserve_gib,
        })
    }

    /// Puts this linear step model into `deployment` in place of its own, keeping the activation
    /// memory the deployment reserves, and sets its frontend time: how calibrated coefficients drive
    /// every simulation of a supply (the backtest, the search).
    pub fn install(&self, deployment: &mut Deployment) {
        let reserve = deployment.step_model.activation_reserve_bytes() / (1u64 << 30) as f64;
        deployment.step_model = self.step_model(reserve);
        deployment.engine.frontend_ms = self.frontend_ms();
    }

    /// A request alone takes one step (α + β + γ·p) to its first token; what the measured c₀ has
    /// beyond that is spent outside the engine loop.
    pub fn frontend_ms(&self) -> f64 {
        (self.request_overhead_ms - self.alpha_ms - self.beta_ms).max(0.0)
    }
}

/// Mean absolute percentage error of `predicted` against `observed` (pairs with a zero observation
/// are skipped), in percent.
pub fn mape(observed: &[f64], predicted: &[f64]) -> f64 {
    let pairs: Vec<f64> = observed
        .iter()
        .zip(predicted)
        .filter(|(o, p)| o.abs() > 0.0 && o.is_finite() && p.is_finite())
        .map(|(o, p)| ((p - o) / o).abs())
        .collect();
    100.0 * pairs.iter().sum::<f64>() / pairs.len().max(1) as f64
}
