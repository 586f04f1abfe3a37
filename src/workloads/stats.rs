//! Per-class description, folded request by request in any order (one accumulator per partition
//! of the scan, merged at the end), and the class mix per app, supply and hour.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Row;
use super::gmm::Model;
use super::naming;
use super::vector::FeatureVector;
use crate::hash::IdMap;

const MICROS_PER_MINUTE: i64 = 60_000_000;
const MICROS_PER_HOUR: i64 = 3_600_000_000;
/// Histogram bins per unit of ln(1 + tokens): percentiles within 0.5 %.
const BINS_PER_LOG: f64 = 200.0;

/// Token-length percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// How bursty a class's arrivals are (1 and 1 for a Poisson process).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Burstiness {
    /// Coefficient of variation of the class's inter-arrival times.
    pub interarrival_cv: f64,
    /// Variance ÷ mean of requests per minute over every minute of the observed span (empty
    /// minutes included).
    pub fano_per_minute: f64,
}

/// Mean arrival rate per hour of day (UTC) and its peak-to-mean ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diurnal {
    pub hourly_rate_per_s: Vec<f64>,
    /// Highest hourly rate ÷ mean over the hours of day the span covers.
    pub peak_to_mean: f64,
}

/// A class's share of one app's requests and tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppShare {
    pub app_id: String,
    pub requests: u64,
    pub request_share: f64,
    pub token_share: f64,
}

/// A named workload class, for later stages and the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadClass {
    /// 1..=k, as in simulator traces.
    pub id: u16,
    pub label: String,
    /// Centroid in original units (tokens, share, session depth).
    pub centroid_prompt_tokens: f64,
    pub centroid_completion_tokens: f64,
    pub centroid_prefix_share: f64,
    pub centroid_session_depth: f64,
    pub requests: u64,
    /// Prompt tokens of the class's requests (weights [`WorkloadClass::prefix_sharing_ratio`]).
    pub prompt_tokens: u64,
    /// Share of all requests / all (prompt + completion) tokens of the window.
    pub request_share: f64,
    pub token_share: f64,
    pub apps: Vec<AppShare>,
    pub prompt: Percentiles,
    pub output: Percentiles,
    pub burstiness: Burstiness,
    pub diurnal: Diurnal,
    /// Share of the class's prompt tokens that were in an already-seen prefix.
    pub prefix_sharing_ratio: f64,
    /// Mean number of requests of the sessions the class's requests belong to (request-weighted).
    pub session_depth_mean: f64,
}

/// Counts per log-spaced bin of ln(1 + tokens).
#[derive(Debug, Default)]
struct LogHistogram(Vec<u64>);

impl LogHistogram {
    fn add(&mut self, tokens: i64) {
        let bin = ((tokens.clamp(0, 1 << 40) as f64).ln_1p() * BINS_PER_LOG).round() as usize;
        if bin >= self.0.len() {
            self.0.resize(bin + 1, 0);
        }
        self.0[bin] += 1;
    }

    fn merge(&mut self, other: &LogHistogram) {
        if other.0.len() > self.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    /// Nearest-rank percentile, at the bin's centre.
    fn percentile(&self, q: f64) -> f64 {
        let total: u64 = self.0.iter().sum();
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, &n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (bin as f64 / BINS_PER_LOG).exp_m1().round();
            }
        }
        0.0
    }

    fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.percentile(0.5),
            p90: self.percentile(0.9),
            p99: self.percentile(0.99),
        }
    }
}

#[derive(Debug, Default)]
struct ClassAcc {
    requests: u64,
    tokens: u64,
    prompt_tokens: u64,
    shared_tokens: u64,
    depth_sum: u64,
    prompt: LogHistogram,
    output: LogHistogram,
    /// Arrival times, sorted at the end: the passes see requests in any order.
    arrivals: Vec<i64>,
    minutes: IdMap<i64, u64>,
    hour_of_day: [u64; 24],
    /// (requests, tokens) per (app, supply) pair index of the accumulator.
    pairs: Vec<(u64, u64)>,
}

impl ClassAcc {
    /// Adds `other`, whose pair `i` is this accumulator's pair `remap[i]`.
    fn merge(&mut self, mut other: ClassAcc, remap: &[usize]) {
        self.requests += other.requests;
        self.tokens += other.tokens;
        self.prompt_tokens += other.prompt_tokens;
        self.shared_tokens += other.shared_tokens;
        self.depth_sum += other.depth_sum;
        self.prompt.merge(&other.prompt);
        self.output.merge(&other.output);
        self.arrivals.append(&mut other.arrivals);
        for (minute, n) in other.minutes {
            *self.minutes.entry(minute).or_default() += n;
        }
        for (a, b) in self.hour_of_day.iter_mut().zip(other.hour_of_day) {
            *a += b;
        }
        for (i, (requests, tokens)) in other.pairs.into_iter().enumerate() {
            let tally = pair_tally(&mut self.pairs, remap[i]);
            tally.0 += requests;
            tally.1 += tokens;
        }
    }
}

/// The (requests, tokens) tally of pair `index`, grown on first use.
fn pair_tally(tallies: &mut Vec<(u64, u64)>, index: usize) -> &mut (u64, u64) {
    if tallies.len() <= index {
        tallies.resize(index + 1, (0, 0));
    }
    &mut tallies[index]
}

/// (app_id, supply_id, hour in hours since the epoch, class id).
type MixKey = (String, String, i64, u16);

/// (requests, prompt tokens, completion tokens) per [`MixKey`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mix(BTreeMap<MixKey, (u64, u64, u64)>);

/// The requests and tokens of one class for one app, supply and hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixCell<'a> {
    pub app_id: &'a str,
    pub supply_id: &'a str,
    /// Start of the hour, µs since the epoch (UTC).
    pub hour_us: i64,
    pub class_id: u16,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Mix {
    /// Cells ordered by app, supply, hour and class: the keys of `features_hourly` plus the class.
    pub fn cells(&self) -> impl Iterator<Item = MixCell<'_>> {
        self.0.iter().map(
            |((app, supply, hour, class), (requests, prompt, completion))| MixCell {
                app_id: app,
                supply_id: supply,
                hour_us: hour * MICROS_PER_HOUR,
                class_id: *class,
                requests: *requests,
                prompt_tokens: *prompt,
                completion_tokens: *completion,
            },
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Folds the second pass.
pub struct Accumulator {
    classes: Vec<ClassAcc>,
    /// The (app_id, supply_id) pairs seen, interned so a request costs no string allocation.
    pairs: Vec<(String, String)>,
    /// The pair of the previous request: requests come in runs of one app and supply.
    last_pair: usize,
    /// (requests, prompt tokens, completion tokens) per (pair, hour since the epoch, class).
    cells: IdMap<(usize, i64, u16), (u64, u64, u64)>,
    first_ts: i64,
    last_ts: i64,
}

impl Accumulator {
    pub fn new(model: &Model) -> Accumulator {
        Accumulator {
            classes: (0..model.k().max(1)).map(|_| ClassAcc::default()).collect(),
            pairs: Vec::new(),
            last_pair: 0,
            cells: IdMap::default(),
            first_ts: i64::MAX,
            last_ts: i64::MIN,
        }
    }

    /// The index of the (app, supply) pair, interned on first sight.
    fn pair(&mut self, app_id: &str, supply_id: &str) -> usize {
        let is = |p: &(String, String)| p.0 == app_id && p.1 == supply_id;
        if self.pairs.get(self.last_pair).is_some_and(is) {
            return self.last_pair;
        }
        self.last_pair = self.pairs.iter().position(is).unwrap_or_else(|| {
            self.pairs.push((app_id.to_string(), supply_id.to_string()));
            self.pairs.len() - 1
        });
        self.last_pair
    }

    /// Adds one request of class `class` (1..=k) with `shared_tokens` prompt tokens in shared
    /// prefixes; rows may come in any order.
    pub fn add(&mut self, row: &Row, shared_tokens: i64, class: u16) {
        let pair = self.pair(row.app_id, row.supply_id);
        let index = usize::from(class.max(1) - 1).min(self.classes.len() - 1);
        let c = &mut self.classes[index];
        let tokens = (row.prompt_tokens + row.completion_tokens) as u64;
        c.requests += 1;
        c.tokens += tokens;
        c.prompt_tokens += row.prompt_tokens as u64;
        c.shared_tokens += shared_tokens as u64;
        c.depth_sum += row.depth.max(1) as u64;
        c.prompt.add(row.prompt_tokens);
        c.output.add(row.completion_tokens);
        c.arrivals.push(row.ts);
        *c.minutes
            .entry(row.ts.div_euclid(MICROS_PER_MINUTE))
            .or_default() += 1;
        let hour = row.ts.div_euclid(MICROS_PER_HOUR);
        c.hour_of_day[hour.rem_euclid(24) as usize] += 1;
        let tally = pair_tally(&mut c.pairs, pair);
        tally.0 += 1;
        tally.1 += tokens;
        let m = self.cells.entry((pair, hour, class)).or_default();
        m.0 += 1;
        m.1 += row.prompt_tokens as u64;
        m.2 += row.completion_tokens as u64;
        self.first_ts = self.first_ts.min(row.ts);
        self.last_ts = self.last_ts.max(row.ts);
    }

    /// Adds another partition's accumulator (of the same model): the result does not depend on
    /// how the requests were split.
    pub fn merge(&mut self, other: Accumulator) {
        let remap: Vec<usize> = other
            .pairs
            .iter()
            .map(|(app, supply)| self.pair(app, supply))
            .collect();
        for (c, o) in self.classes.iter_mut().zip(other.classes) {
            c.merge(o, &remap);
        }
        for ((pair, hour, class), (requests, prompt, completion)) in other.cells {
            let m = self.cells.entry((remap[pair], hour, class)).or_default();
            m.0 += requests;
            m.1 += prompt;
            m.2 += completion;
        }
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
    }

    /// Requests and tokens per app, of the classes `classes`.
    fn apps<'a>(&self, classes: impl Iterator<Item = &'a ClassAcc>) -> BTreeMap<&str, (u64, u64)> {
        let mut apps = BTreeMap::new();
        for c in classes {
            for (pair, (requests, tokens)) in c.pairs.iter().enumerate() {
                let tally: &mut (u64, u64) = apps.entry(self.pairs[pair].0.as_str()).or_default();
                tally.0 += requests;
                tally.1 += tokens;
            }
        }
        apps.retain(|_, (requests, _)| *requests > 0);
        apps
    }

    /// The classes (with labels from [`naming`]) and the hourly mix.
    pub fn finish(mut self, model: &Model) -> (Vec<WorkloadClass>, Mix) {
        for c in &mut self.classes {
            c.arrivals.sort_unstable();
        }
        let all_apps = self.apps(self.classes.iter());
        let total_requests: u64 = self.classes.iter().map(|c| c.requests).sum();
        let total_tokens: u64 = self.classes.iter().map(|c| c.tokens).sum();
        let minutes = (self.last_ts.div_euclid(MICROS_PER_MINUTE)
            - self.first_ts.div_euclid(MICROS_PER_MINUTE)
            + 1)
        .max(1) as f64;
        let mut hour_occurrences = [0u64; 24];
        for h in
            self.first_ts.div_euclid(MICROS_PER_HOUR)..=self.last_ts.div_euclid(MICROS_PER_HOUR)
        {
            hour_occurrences[h.rem_euclid(24) as usize] += 1;
        }
        let centroids: Vec<FeatureVector> = (1..=self.classes.len() as u16)
            .map(|id| {
                model
                    .centroid(id)
                    .unwrap_or(FeatureVector::new(0, 0, 0.0, 1))
            })
            .collect();
        let labels = naming::labels(&centroids);
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let classes = self
            .classes
            .iter()
            .zip(centroids.iter().zip(labels))
            .enumerate()
            .map(|(i, (c, (centroid, label)))| {
                let (mut gap_sum, mut gap_sq) = (0.0, 0.0);
                for pair in c.arrivals.windows(2) {
                    let gap = (pair[1] - pair[0]) as f64 / 1e6;
                    gap_sum += gap;
                    gap_sq += gap * gap;
                }
                let gaps = c.arrivals.len().saturating_sub(1) as f64;
                let gap_mean = ratio(gap_sum, gaps);
                let gap_var = ratio(gap_sq, gaps) - gap_mean * gap_mean;
                let per_minute = c.requests as f64 / minutes;
                let sq: f64 = c.minutes.values().map(|&n| (n * n) as f64).sum();
                let hourly: Vec<f64> = (0..24)
                    .map(|h| ratio(c.hour_of_day[h] as f64, hour_occurrences[h] as f64 * 3600.0))
                    .collect();
                let covered: Vec<f64> = (0..24)
                    .filter(|&h| hour_occurrences[h] > 0)
                    .map(|h| hourly[h])
                    .collect();
                let mean_rate = ratio(covered.iter().sum(), covered.len() as f64);
                let peak = covered.iter().copied().fold(0.0, f64::max);
                WorkloadClass {
                    id: i as u16 + 1,
                    label,
                    centroid_prompt_tokens: centroid.prompt_tokens(),
                    centroid_completion_tokens: centroid.completion_tokens(),
                    centroid_prefix_share: centroid.prefix_share,
                    centroid_session_depth: centroid.session_depth(),
                    requests: c.requests,
                    prompt_tokens: c.prompt_tokens,
                    request_share: ratio(c.requests as f64, total_requests as f64),
                    token_share: ratio(c.tokens as f64, total_tokens as f64),
                    apps: self
                        .apps(std::iter::once(c))
                        .into_iter()
                        .map(|(app, (requests, tokens))| {
                            let (app_requests, app_tokens) = all_apps[app];
                            AppShare {
                                app_id: app.to_string(),
                                requests,
                                request_share: ratio(requests as f64, app_requests as f64),
                                token_share: ratio(tokens as f64, app_tokens as f64),
                            }
                        })
                        .collect(),
                    prompt: c.prompt.percentiles(),
                    output: c.output.percentiles(),
                    burstiness: Burstiness {
                        interarrival_cv: ratio(gap_var.max(0.0).sqrt(), gap_mean),
                        fano_per_minute: ratio(sq / minutes - per_minute * per_minute, per_minute),
                    },
                    diurnal: Diurnal {
                        hourly_rate_per_s: hourly,
                        peak_to_mean: ratio(peak, mean_rate),
                    },
                    prefix_sharing_ratio: ratio(c.shared_tokens as f64, c.prompt_tokens as f64),
                    session_depth_mean: ratio(c.depth_sum as f64, c.requests as f64),
                }
            })
            .filter(|c| c.requests > 0)
            .collect();
        let mix = Mix(self
            .cells
            .iter()
            .map(|(&(pair, hour, class), &counts)| {
                let (app, supply) = self.pairs[pair].clone();
                ((app, supply, hour, class), counts)
            })
            .collect());
        (classes, mix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts_s: i64, app: &str) -> Row<'_> {
        Row {
            request_id: "r",
            ts: ts_s * 1_000_000,
            app_id: app,
            supply_id: "s",
            prompt_tokens: 100,
            completion_tokens: 50,
            cached_tokens: 0,
            prefix: None,
            chain: None,
            depth: 2,
        }
    }

    #[test]
    fn regular_arrivals_have_no_burstiness_and_a_flat_day() {
        let model = Model::empty();
        let mut acc = Accumulator::new(&model);
        // One request every 10 s for two full days: CV 0, 6 per minute every minute (Fano 0),
        // the same rate every hour (peak-to-mean 1).
        for i in 0..(2 * 86_400 / 10) {
            acc.add(&row(i * 10, if i % 4 == 0 { "a" } else { "b" }), 25, 1);
        }
        let (classes, mix) = acc.finish(&model);
        let c = &classes[0];
        assert_eq!(c.requests, 17_280);
        assert!(c.burstiness.interarrival_cv.abs() < 1e-9);
        assert!(c.burstiness.fano_per_minute.abs() < 1e-9);
        assert!((c.diurnal.peak_to_mean - 1.0).abs() < 1e-9);
        assert!((c.diurnal.hourly_rate_per_s[5] - 0.1).abs() < 1e-9);
        assert!((c.prefix_sharing_ratio - 0.25).abs() < 1e-12);
        assert_eq!(c.session_depth_mean, 2.0);
        assert!((c.prompt.p50 - 100.0).abs() <= 1.0 && (c.output.p99 - 50.0).abs() <= 1.0);
        assert_eq!(c.apps.len(), 2);
        assert!((c.apps[0].request_share - 1.0).abs() < 1e-12);
        assert_eq!(mix.len(), 96);
    }
}
