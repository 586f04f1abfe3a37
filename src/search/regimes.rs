//! Load regimes and scheduled modes (seed 004): the hours of the day grouped by their load, the
//! search run on each group's traffic, and whether switching configurations on a schedule beats
//! the one static configuration.
//!
//! **Regimes.** Each hour of the day (UTC) gets its mean arrival rate over the window's days; the 24
//! rates are split, in rate order, into k contiguous groups minimising the within-group sum of
//! squares (exhaustive over the split points: 24 values). k is the smallest of 2 and 3 whose
//! split explains at least [`MIN_FIT`] of the variance (Jenks' goodness of variance fit), else 3.
//! The groups are named `low`, (`normal`,) `peak` and bounded by the midpoints between them.
//!
//! **Modes.** Each regime's requests (those arriving in its hours, on every day of the window) are
//! searched like the whole window, from the same options; a regime's mode is its cheapest feasible
//! configuration. Scheduled, the day costs Σ hours × each mode's cost per hour; the schedule is
//! recommended when it is cheaper than the static choice by more than the model's error.

use serde::Serialize;

use super::{Evaluation, Evaluator, SearchInput, search};
use crate::error::Result;

/// Share of the hour-of-day variance the regimes must explain before a third one is added.
pub const MIN_FIT: f64 = 0.9;
/// Least ratio of the busiest to the quietest hour of the day worth scheduling for.
pub const MIN_SWING: f64 = 1.5;

/// One regime and the configuration the search chose for it.
#[derive(Debug, Clone, Serialize)]
pub struct Regime {
    pub name: &'static str,
    /// Hours of the day (UTC) in the regime, ascending.
    pub hours: Vec<u32>,
    /// Mean and highest hour-of-day arrival rate, requests/s.
    pub mean_rps: f64,
    pub max_rps: f64,
    /// The search's choice on the regime's traffic (None: nothing feasible).
    pub mode: Option<Evaluation>,
}

/// A supply's regimes and what scheduling them would cost.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub regimes: Vec<Regime>,
    /// The static configuration's cost per hour (the window search's choice).
    pub static_cost_per_hour: f64,
    /// Mean cost per hour with each regime on its mode (None when a regime has no mode).
    pub scheduled_cost_per_hour: Option<f64>,
}

impl Schedule {
    /// Saving of the schedule against the static configuration, percent (None without one).
    pub fn saving_percent(&self) -> Option<f64> {
        self.scheduled_cost_per_hour
            .map(|c| (1.0 - c / self.static_cost_per_hour) * 100.0)
    }

    /// Each regime's index for each hour of the day.
    pub fn regime_of_hour(&self) -> [usize; 24] {
        let mut of = [0; 24];
        for (i, r) in self.regimes.iter().enumerate() {
            for h in &r.hours {
                of[*h as usize] = i;
            }
        }
        of
    }
}

/// Mean arrivals per second in each UTC hour of the day, over the days of the traffic's window.
pub fn hour_of_day_rates(clock_s: &[f64], window_days: f64) -> [f64; 24] {
    let mut counts = [0.0; 24];
    for c in clock_s {
        counts[((c / 3600.0).floor() as i64).rem_euclid(24) as usize] += 1.0;
    }
    counts.map(|n| n / (window_days.max(1.0 / 24.0) * 3600.0))
}

/// The hours of the day split into regimes by rate (see the module doc), quietest first.
pub fn split(rates: &[f64; 24]) -> Vec<Vec<u32>> {
    let mut order: Vec<u32> = (0..24).collect();
    order.sort_by(|a, b| {
        rates[*a as usize]
            .total_cmp(&rates[*b as usize])
            .then(a.cmp(b))
    });
    let sorted: Vec<f64> = order.iter().map(|h| rates[*h as usize]).collect();
    let sse = |lo: usize, hi: usize| {
        let part = &sorted[lo..hi];
        let mean = part.iter().sum::<f64>() / part.len() as f64;
        part.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
    };
    let total = sse(0, 24);
    let best = |k: usize| -> Vec<usize> {
        // Split points for k groups (k ≤ 3), exhaustively.
        let mut best: (f64, Vec<usize>) = (f64::INFINITY, Vec::new());
        for a in 1..24 {
            if k == 2 {
                let e = sse(0, a) + sse(a, 24);
                if e < best.0 {
                    best = (e, vec![a]);
                }
                continue;
            }
            for b in a + 1..24 {
                let e = sse(0, a) + sse(a, b) + sse(b, 24);
                if e < best.0 {
                    best = (e, vec![a, b]);
                }
            }
        }
        best.1
    };
    let fit = |cuts: &[usize]| {
        let bounds: Vec<usize> = std::iter::once(0)
            .chain(cuts.iter().copied())
            .chain([24])
            .collect();
        1.0 - bounds.windows(2).map(|w| sse(w[0], w[1])).sum::<f64>() / total.max(1e-300)
    };
    let two = best(2);
    let cuts = if fit(&two) >= MIN_FIT { two } else { best(3) };
    let bounds: Vec<usize> = std::iter::once(0).chain(cuts).chain([24]).collect();
    bounds
        .windows(2)
        .map(|w| {
            let mut hours = order[w[0]..w[1]].to_vec();
            hours.sort();
            hours
        })
        .collect()
}

/// The schedule of `input`'s supply against `static_choice`; None when the day's load swings less
/// than [`MIN_SWING`] (nothing to switch for).
pub fn schedule(
    input: &SearchInput,
    static_choice: &Evaluation,
    window_days: f64,
) -> Result<Option<Schedule>> {
    let clock = input.traffic.clock_s()?;
    let rates = hour_of_day_rates(&clock, window_days);
    let (lo, hi) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
        (lo.min(*r), hi.max(*r))
    });
    if hi <= 0.0 || hi < MIN_SWING * lo {
        return Ok(None);
    }
    let groups = split(&rates);
    let names: &[&'static str] = if groups.len() == 2 {
        &["low", "peak"]
    } else {
        &["low", "normal", "peak"]
    };
    let mut regimes = Vec::new();
    for (hours, name) in groups.into_iter().zip(names) {
        let in_regime =
            |c: f64| hours.contains(&(((c / 3600.0).floor() as i64).rem_euclid(24) as u32));
        let traffic = input.traffic.filter(in_regime)?;
        let of_hours: Vec<f64> = hours.iter().map(|h| rates[*h as usize]).collect();
        let mode = if traffic.is_empty() {
            None
        } else {
            let regime_input = SearchInput {
                traffic: &traffic,
                ..input.clone()
            };
            search(&Evaluator::new(&regime_input)?)?.best
        };
        regimes.push(Regime {
            name,
            mean_rps: of_hours.iter().sum::<f64>() / of_hours.len() as f64,
            max_rps: of_hours.iter().copied().fold(0.0, f64::max),
            hours,
            mode,
        });
    }
    let scheduled_cost_per_hour = regimes
        .iter()
        .map(|r| {
            r.mode
                .as_ref()
                .map(|m| m.cost_per_hour * r.hours.len() as f64 / 24.0)
        })
        .sum::<Option<f64>>();
    Ok(Some(Schedule {
        regimes,
        static_cost_per_hour: static_choice.cost_per_hour,
        scheduled_cost_per_hour,
    }))
}
