//! Client defaults (seeds 000, 001): each app's `max_completion_tokens` from its observed outputs.
//!
//! Completions are modelled as lognormal, as output lengths of LLM traffic are (the Azure 2023
//! and BurstGPT traces both fit it). The fit must survive censoring, since completions that hit
//! today's cap are cut there: μ = ln(p50), and σ from p90 when p90 lies below the cap, else from
//! the cap and the truncated share t (P(X ≥ cap) = t). The cap recommended is the fitted 99.9th
//! percentile rounded up to a multiple of 64 tokens: it cuts about one response in a thousand
//! while bounding runaway generations.

use serde::Serialize;

/// Completion percentile the recommended cap covers.
pub const COVERED_QUANTILE: f64 = 0.999;
/// Truncated share above which a cap is too tight.
pub const MAX_TRUNCATED_SHARE: f64 = 0.01;
/// A cap this many times the recommended one is slack worth lowering.
pub const SLACK_FACTOR: f64 = 2.0;
/// Caps are rounded up to a multiple of this many tokens.
const ROUND_TO: f64 = 64.0;

/// One app's completions as the request log shows them.
#[derive(Debug, Clone, Serialize)]
pub struct OutputLengths {
    pub app_id: String,
    pub supply_id: String,
    /// Successful requests.
    pub requests: u64,
    /// Of them, cut at `max_tokens` (finish_reason = length).
    pub truncated: u64,
    pub completion_p50: f64,
    pub completion_p90: f64,
    pub completion_max: f64,
    /// The cap most requests set (the median `max_tokens`), None when most set none.
    pub current_cap: Option<f64>,
    /// Requests that carry a `feedback` score (the only signal a temperature could be tuned on).
    pub with_feedback: u64,
}

/// What the client defaults of one app should change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum CapChange {
    /// The cap cuts too many responses.
    Raise,
    /// No cap, or one far above what responses use.
    Lower,
}

/// The fitted output distribution and the cap it recommends.
#[derive(Debug, Clone, Serialize)]
pub struct ClientDefaults {
    pub lengths: OutputLengths,
    /// Lognormal fit: ln-median and ln-σ of the completion length.
    pub mu: f64,
    pub sigma: f64,
    /// The fitted 99.9th percentile, rounded up to a multiple of 64.
    pub recommended_cap: f64,
    /// None when the current cap already fits.
    pub change: Option<CapChange>,
    /// Share of responses the recommended cap would cut (fitted).
    pub cut_share: f64,
    /// Extra completion tokens per window a raise lets through (fitted, for the truncated requests).
    pub extra_tokens: f64,
}

impl OutputLengths {
    pub fn truncated_share(&self) -> f64 {
        self.truncated as f64 / self.requests.max(1) as f64
    }

    /// The fit and the decision; None when the app has too few requests to fit, or when half its
    /// responses or more are cut (the median itself is censored, so nothing fits the tail).
    pub fn defaults(&self) -> Option<ClientDefaults> {
        if self.requests < 100 || self.completion_p50 <= 0.0 || self.truncated_share() >= 0.5 {
            return None;
        }
        let mu = self.completion_p50.ln();
        let t = self.truncated_share();
        let sigma = match self.current_cap {
            Some(cap) if t > 0.0 && self.completion_p90 >= cap * 0.98 => {
                (cap / self.completion_p50).ln() / normal_quantile(1.0 - t)
            }
            _ => (self.completion_p90 / self.completion_p50).ln() / normal_quantile(0.9),
        }
        .max(1e-3);
        let fitted = (mu + sigma * normal_quantile(COVERED_QUANTILE)).exp();
        let recommended_cap = (fitted / ROUND_TO).ceil() * ROUND_TO;
        let above = |x: f64| 1.0 - normal_cdf((x.ln() - mu) / sigma);
        let change = match self.current_cap {
            Some(cap) if t > MAX_TRUNCATED_SHARE && recommended_cap > cap => Some(CapChange::Raise),
            Some(cap) if cap > SLACK_FACTOR * recommended_cap => Some(CapChange::Lower),
            None => Some(CapChange::Lower),
            Some(_) => None,
        };
        // Tokens the raise lets through: E[min(X, new) − cap | X > cap] per truncated request, as
        // the integral of the survival function over (cap, new).
        let extra_tokens = match (change, self.current_cap) {
            (Some(CapChange::Raise), Some(cap)) => {
                let steps = 200;
                let dx = (recommended_cap - cap) / steps as f64;
                let area: f64 = (0..steps)
                    .map(|i| above(cap + (i as f64 + 0.5) * dx) * dx)
                    .sum();
                self.truncated as f64 * area / above(cap).max(1e-12)
            }
            _ => 0.0,
        };
        Some(ClientDefaults {
            lengths: self.clone(),
            mu,
            sigma,
            recommended_cap,
            change,
            cut_share: above(recommended_cap),
            extra_tokens,
        })
    }
}

/// Φ(z), by the complementary error function (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Φ⁻¹(p) by bisection on [`normal_cdf`] (p in (0, 1)).
fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
