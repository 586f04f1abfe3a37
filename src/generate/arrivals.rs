//! Arrival times, so that each app's traffic has its documented burstiness and diurnal shape.
//!
//! For each (app, day) the number of requests is fixed (N × share ÷ days, remainders spread
//! deterministically), so realised shares are exact. Arrival times are a gamma-renewal process with
//! inter-arrival CV as in the table (shape 1/CV²; CV > 1 is burstier than Poisson), normalised to
//! the day in "operational time" and mapped through the app's diurnal profile
//! rate(h) ∝ 1 + A·cos(2π(h − peak)/24), whose peak-to-mean ratio is 1 + A.

use chrono::NaiveDate;

use super::apps::AppShape;
use crate::rng::Xoshiro256;

pub(super) fn day_start_us(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros()
}

/// Arrival times of `n` requests on `date`: gamma renewal in operational time, mapped through the
/// app's diurnal profile. Sorted.
pub(super) fn arrivals(
    rng: &mut Xoshiro256,
    app: &AppShape,
    date: NaiveDate,
    n: usize,
) -> Vec<i64> {
    let shape = 1.0 / (app.interarrival_cv * app.interarrival_cv);
    let mut cum = Vec::with_capacity(n);
    let mut acc = 0.0;
    for _ in 0..n {
        acc += rng.gamma(shape);
        cum.push(acc);
    }
    let total = acc + rng.gamma(shape);
    // Cumulative diurnal intensity per minute.
    let amplitude = app.peak_to_mean - 1.0;
    let weights: Vec<f64> = (0..1440)
        .map(|m| {
            let h = (m as f64 + 0.5) / 60.0;
            1.0 + amplitude * (std::f64::consts::TAU * (h - app.diurnal_peak_hour) / 24.0).cos()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut edges = Vec::with_capacity(1441);
    edges.push(0.0);
    let mut c = 0.0;
    for w in &weights {
        c += w / sum;
        edges.push(c);
    }
    let base = day_start_us(date);
    let mut minute = 0usize;
    cum.into_iter()
        .map(|x| {
            let u = x / total;
            while minute < 1439 && edges[minute + 1] <= u {
                minute += 1;
            }
            let frac = ((u - edges[minute]) / (edges[minute + 1] - edges[minute])).clamp(0.0, 1.0);
            base + ((minute as f64 + frac) * 60e6) as i64
        })
        .map(|t| t.min(base + 86_400_000_000 - 1))
        .collect()
}
