//! The server's own metrics in the Prometheus text format: requests by route and status, latency
//! histograms by route, and analyses by outcome.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency histogram's buckets, seconds.
const BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS_S.len()],
    count: u64,
    sum_s: f64,
}

#[derive(Debug, Default)]
struct State {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    analyses: BTreeMap<&'static str, u64>,
}

/// What an analysis request came to.
#[derive(Debug, Clone, Copy)]
pub enum AnalysisOutcome {
    /// The pipeline ran and committed.
    Completed,
    /// The pipeline failed.
    Failed,
    /// Answered from a committed run.
    Cached,
    /// Joined an identical analysis already running.
    Shared,
}

impl AnalysisOutcome {
    fn label(self) -> &'static str {
        match self {
            AnalysisOutcome::Completed => "completed",
            AnalysisOutcome::Failed => "failed",
            AnalysisOutcome::Cached => "cached",
            AnalysisOutcome::Shared => "shared",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One answered request: its route template (not the raw path, whose ids are unbounded).
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut s = self.state();
        *s.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let h = s.latency.entry(route.to_string()).or_default();
        for (count, bound) in h.counts.iter_mut().zip(BUCKETS_S) {
            if seconds <= bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum_s += seconds;
    }

    pub fn analysis(&self, outcome: AnalysisOutcome) {
        *self.state().analyses.entry(outcome.label()).or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let s = self.state();
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "# HELP tunelake_http_requests_total HTTP requests answered, by method, route and status.\n# TYPE tunelake_http_requests_total counter"
        );
        for ((method, route, status), n) in &s.requests {
            let _ = writeln!(
                w,
                "tunelake_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            w,
            "# HELP tunelake_http_request_duration_seconds Time to answer, by route.\n# TYPE tunelake_http_request_duration_seconds histogram"
        );
        for (route, h) in &s.latency {
            for (count, bound) in h.counts.iter().zip(BUCKETS_S) {
                let _ = writeln!(
                    w,
                    "tunelake_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                w,
                "tunelake_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\ntunelake_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\ntunelake_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum_s, h.count
            );
        }
        let _ = writeln!(
            w,
            "# HELP tunelake_analyses_total Analysis requests, by outcome (completed and failed pipeline runs, answers from committed runs, joins of a running one).\n# TYPE tunelake_analyses_total counter"
        );
        for outcome in [
            AnalysisOutcome::Completed,
            AnalysisOutcome::Failed,
            AnalysisOutcome::Cached,
            AnalysisOutcome::Shared,
        ] {
            let _ = writeln!(
                w,
                "tunelake_analyses_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                s.analyses.get(outcome.label()).copied().unwrap_or(0)
            );
        }
        out
    }
}
