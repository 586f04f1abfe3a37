//! The calibration pipeline stage: per self-hosted supply, read its telemetry and requests from the
//! ingested session, fit, track and backtest.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::backtest::{self, Backtest, Observed};
use super::{
    CalibrationStatus, DecodeFit, EkfOptions, EngineCoefficients, FitOptions, PrefillFit,
    PrefillSample, fit_decode, fit_prefill, roofline_prior, track, windows_from_batches,
};
use crate::catalog::Catalog;
use crate::config::Supply;
use crate::deployment;
use crate::error::{Error, Result};
use crate::sql;
use crate::workloads::trace;

/// Calibration settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationOptions {
    pub fit: FitOptions,
    pub ekf: EkfOptions,
    /// Prior standard deviation of every coefficient, relative to its roofline value. 0.5: the
    /// published errors of uncalibrated simulators are tens of percent.
    pub prior_rel_sd: f64,
    /// The backtest replays at most about this many requests per supply: whole hours at a fixed
    /// stride, so the load inside each replayed hour is the real one.
    pub max_backtest_requests: u64,
    pub seed: u64,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        CalibrationOptions {
            fit: FitOptions::default(),
            ekf: EkfOptions::default(),
            prior_rel_sd: 0.5,
            max_backtest_requests: 20_000,
            seed: 42,
        }
    }
}

/// The EKF's final state for a supply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EkfSummary {
    pub alpha_ms: f64,
    pub beta_ms: f64,
    pub alpha_sd: f64,
    pub beta_sd: f64,
    pub updates: usize,
    pub rejected: usize,
    pub unidentified: usize,
}

/// Everything calibration found for one supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupplyCalibration {
    pub supply_id: String,
    pub status: CalibrationStatus,
    pub prior: Option<EngineCoefficients>,
    /// The coefficients the simulator uses from now on.
    pub coefficients: Option<EngineCoefficients>,
    pub decode: Option<DecodeFit>,
    pub prefill: Option<PrefillFit>,
    pub ekf: Option<EkfSummary>,
    pub backtest: Option<Backtest>,
}

/// Runs one of calibration's `sql/calibration/` queries for `supply_id` with `extra` parameters.
async fn query(
    ctx: &SessionContext,
    query: sql::Query,
    supply_id: &str,
    extra: sql::Params,
) -> Result<Vec<RecordBatch>> {
    let mut params = vec![("supply_id", ScalarValue::Utf8(Some(supply_id.to_string())))];
    params.extend(extra);
    query.collect(ctx, params).await
}

fn f64_values(batches: &[RecordBatch], column: usize) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(column).as_primitive::<Float64Type>();
            (0..a.len()).map(move |i| if a.is_valid(i) { a.value(i) } else { f64::NAN })
        })
        .collect()
}

/// Calibrates every supply of `supplies` on the `requests` and `gpu_metrics` tables of `ctx` (the
/// ingested window, in memory).
pub async fn calibrate(
    ctx: &SessionContext,
    supplies: &[Supply],
    catalog: &Catalog,
    options: &CalibrationOptions,
) -> Result<Vec<SupplyCalibration>> {
    let mut out = Vec::with_capacity(supplies.len());
    for supply in supplies {
        out.push(calibrate_supply(ctx, supply, catalog, options).await?);
        tracing::info!(supply = %supply.id, status = %out.last().map_or("", |c| c.status.as_str()), "calibrated");
    }
    Ok(out)
}

async fn calibrate_supply(
    ctx: &SessionContext,
    supply: &Supply,
    catalog: &Catalog,
    options: &CalibrationOptions,
) -> Result<SupplyCalibration> {
    let mut result = SupplyCalibration {
        supply_id: supply.id.clone(),
        status: CalibrationStatus::Skipped,
        prior: None,
        coefficients: None,
        decode: None,
        prefill: None,
        ekf: None,
        backtest: None,
    };
    if supply.engine.is_hosted() {
        return Ok(result);
    }
    let id = supply.id.as_str();
    let mut deployment = deployment::current_deployment(supply, catalog)?;
    let shape = query(ctx, sql::CALIBRATION_REQUEST_SHAPE, id, vec![]).await?;
    let [prompt, output, count, first_s] =
        [0, 1, 2, 3].map(|c| f64_values(&shape, c).first().copied().unwrap_or(f64::NAN));
    let context = if prompt.is_finite() {
        prompt + output / 2.0
    } else {
        1024.0
    };
    let prior = roofline_prior(&deployment, context);
    result.prior = Some(prior);

    let telemetry = query(ctx, sql::CALIBRATION_TELEMETRY, id, vec![]).await?;
    let windows = windows_from_batches(&telemetry)?;
    let decode = fit_decode(&windows, &prior, options.prior_rel_sd, &options.fit)?;
    let samples = query(ctx, sql::CALIBRATION_PREFILL_SAMPLES, id, vec![]).await?;
    let (uncached, service) = (f64_values(&samples, 0), f64_values(&samples, 1));
    let samples: Vec<PrefillSample> = uncached
        .iter()
        .zip(&service)
        .map(|(&u, &s)| PrefillSample {
            uncached_tokens: u,
            service_ms: s,
        })
        .collect();
    let prefill = fit_prefill(&samples, &prior, options.prior_rel_sd, &options.fit)?;
    let coefficients = EngineCoefficients {
        alpha_ms: decode.alpha.value,
        beta_ms: decode.beta.value,
        prefill_ms_per_token: prefill.per_token.value,
        request_overhead_ms: prefill.overhead.value,
    };
    result.status = if decode.windows_used > 0 {
        CalibrationStatus::Fitted
    } else {
        CalibrationStatus::PriorOnly
    };
    if decode.windows_used > 0 {
        let mean_uncached =
            uncached.iter().filter(|x| x.is_finite()).sum::<f64>() / uncached.len().max(1) as f64;
        let ekf = track(
            &windows,
            (prior.alpha_ms, prior.beta_ms),
            options.prior_rel_sd,
            coefficients.request_overhead_ms + coefficients.prefill_ms_per_token * mean_uncached,
            deployment.config.max_num_seqs,
            &options.ekf,
        );
        let (alpha_sd, beta_sd) = ekf.sd();
        result.ekf = Some(EkfSummary {
            alpha_ms: ekf.alpha,
            beta_ms: ekf.beta,
            alpha_sd,
            beta_sd,
            updates: ekf.updates,
            rejected: ekf.rejected,
            unidentified: ekf.unidentified,
        });
    }
    result.decode = Some(decode);
    result.prefill = Some(prefill);
    result.coefficients = Some(coefficients);

    if count.is_finite() && count >= 1.0 {
        let stride = ((count / options.max_backtest_requests.max(1) as f64).ceil() as i64).max(1);
        let rows = query(
            ctx,
            sql::CALIBRATION_BACKTEST_REQUESTS,
            id,
            vec![
                ("first_s", ScalarValue::Float64(Some(first_s))),
                ("stride", ScalarValue::Int64(Some(stride))),
            ],
        )
        .await?;
        coefficients.install(&mut deployment);
        let trace = trace::from_requests(&rows, deployment.config.block_size)?;
        if !trace.is_empty() {
            result.backtest = Some(backtest::run(
                &deployment,
                &trace,
                observed(&rows)?,
                options.seed,
            )?);
        }
    }
    Ok(result)
}

/// Measured TTFT, TPOT and E2E of the successful requests among `rows`.
fn observed(rows: &[RecordBatch]) -> Result<Observed> {
    let mut o = Observed::default();
    for b in rows {
        let col = |n: &str| {
            b.column_by_name(n)
                .ok_or_else(|| Error::Calibration(format!("requests lack `{n}`")))
        };
        let ttft = col("ttft_ms")?.as_primitive::<Float64Type>();
        let e2e = col("e2e_ms")?.as_primitive::<Float64Type>();
        let out = col("completion_tokens")?.as_primitive::<Int64Type>();
        let status = col("status")?.as_string::<i32>();
        for i in 0..b.num_rows() {
            if (status.is_valid(i) && status.value(i) != "ok") || !ttft.is_valid(i) {
                continue;
            }
            o.ttft_ms.push(ttft.value(i));
            if e2e.is_valid(i) {
                o.e2e_ms.push(e2e.value(i));
                if out.value(i) > 1 {
                    o.tpot_ms
                        .push((e2e.value(i) - ttft.value(i)) / (out.value(i) - 1) as f64);
                }
            }
        }
    }
    Ok(o)
}
