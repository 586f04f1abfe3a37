//! vLLM and DCGM telemetry from a Prometheus server's HTTP API (`/api/v1/query_range`), for fleets
//! whose `gpu_metrics` live in Prometheus rather than in a lake.
//!
//! The range `--start .. --end` is cut into windows of `--step`; the window `[t, t + step)` becomes
//! one row with `ts` = t (its start, so a day's import lands in that day's partition) and `window_s`
//! = step, from queries evaluated at its end. Rows exist for every (supply, instance, window) in
//! which `vllm:num_requests_running` has a sample; every other column is null where its series has
//! none (never guessed). As the contract asks, gauges are window means: `avg_over_time` of the
//! samples in the window (Prometheus 2 takes both edges, 3 only the end), then summed or averaged
//! over the instance's series.
//!
//! | column | PromQL (per supply × instance; `g` = `avg_over_time(…[step])`) | unit |
//! |---|---|---|
//! | `num_running` | `sum(g(vllm:num_requests_running))` | requests |
//! | `num_waiting` | `sum(g(vllm:num_requests_waiting))` | requests |
//! | `kv_cache_usage` | `avg(g(vllm:kv_cache_usage_perc))`, before vLLM 0.10 `vllm:gpu_cache_usage_perc` | fraction 0–1 (despite the name) |
//! | `prompt_tokens_per_s` | increase of `sum(vllm:prompt_tokens_total)` ÷ step | tokens/s |
//! | `generation_tokens_per_s` | increase of `sum(vllm:generation_tokens_total)` ÷ step | tokens/s |
//! | `requests_per_s` | increase of `sum(vllm:request_success_total)` (every `finished_reason`) ÷ step | completions/s |
//! | `preemptions` | increase of `sum(vllm:num_preemptions_total)` | count in the window |
//! | `mean_itl_ms` | Δ`_sum` ÷ Δ`_count` of `vllm:inter_token_latency_seconds`, before 0.10 `vllm:time_per_output_token_seconds` | ms |
//! | `mean_queue_ms` | Δ`_sum` ÷ Δ`_count` of `vllm:request_queue_time_seconds` | ms |
//! | `mean_ttft_ms` | Δ`_sum` ÷ Δ`_count` of `vllm:time_to_first_token_seconds` | ms |
//! | `p95_ttft_ms` | `histogram_quantile(0.95, sum by (le) (rate(…_bucket[step])))` | ms (bucket-interpolated) |
//! | `gpu_util` | `avg(g(DCGM_FI_DEV_GPU_UTIL))` ÷ 100 | fraction 0–1 |
//! | `mem_used_bytes` | `sum(g(DCGM_FI_DEV_FB_USED))` × 2²⁰ | bytes (DCGM reports MiB) |
//! | `power_w` | `sum(g(DCGM_FI_DEV_POWER_USAGE))` | W |
//!
//! Counters are read as raw values at every step and differenced here, rather than with PromQL's
//! `rate()`, because `rate()` only sees the samples inside its window and extrapolates to the window's
//! edges: consecutive windows would neither tile time nor add up to the counter's real increase. The
//! increase over `[t, t + step)` is the difference of the counters' last values at or before its two
//! edges; a drop means the process restarted with counters from zero, so the increase is then the
//! new value (Prometheus's own reset rule). A window whose start has no value (before the first
//! scrape) is null. The p95 is the one `rate()` left: `histogram_quantile` only needs the buckets' proportions.
//!
//! DCGM series are per GPU and carry no model: they are joined to the vLLM rows by instance
//! (`[prometheus] dcgm_instance_label`, default `Hostname`, whose value must equal the vLLM
//! `instance_label` value), and aggregated over the instance's GPUs: mean utilisation, summed
//! memory and power. An instance serving two supplies on separate GPUs therefore shows its whole
//! node's GPUs on both. Label names and extra selectors come from the pipeline's `[prometheus]`
//! table ([`PrometheusMapping`]); `--supply` fixes the supply for every row.
//!
//! Range queries are cut so that none exceeds Prometheus's 11,000 points per series. Credentials
//! come from the environment, never the command line: `TUNELAKE_PROMETHEUS_TOKEN` is sent as
//! `Authorization: Bearer`, or `TUNELAKE_PROMETHEUS_USER` with `TUNELAKE_PROMETHEUS_PASSWORD` as
//! basic auth; error messages name the query and the server, never the secret.
//!
//! Re-importing is idempotent per date: each date's rows go to one file named after a hash of the
//! mapping (`gpu_metrics/date=D/part-prometheus-<hash>-00000.parquet`), which a later import with
//! the same mapping overwrites. Import whole days: a shorter window replaces its dates' earlier rows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::rows::{GpuRows, GpuWindow};
use super::{Format, ImportSummary, Imported};
use crate::config::PrometheusMapping;
use crate::error::{Error, Result};
use crate::storage::Location;

/// Prometheus refuses range queries above 11,000 points per series; chunks stay below that.
const MAX_POINTS: i64 = 10_000;

/// What to import: the server, the time range and how labels map to ids.
#[derive(Debug, Clone)]
pub struct RangeImport {
    /// Base URL of the server, e.g. `http://prometheus:9090` (the API paths are appended).
    pub url: String,
    /// Start of the first window.
    pub start: DateTime<Utc>,
    /// End of the last window (exclusive); a partial last window is left out.
    pub end: DateTime<Utc>,
    pub step_s: u32,
    pub mapping: PrometheusMapping,
    pub auth: Auth,
}

/// Parses `--step`: whole seconds, minutes or hours (`30s`, `1m`, `1h`), or bare seconds.
pub fn parse_step(text: &str) -> Result<u32> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|&s| s > 0)
        .ok_or_else(|| Error::Setting {
            key: "--step".into(),
            message: format!("`{text}` is not a positive duration like 30s, 1m or 1h"),
        })
}

/// Reads the range and writes its `gpu_metrics` rows into the lake at `out`.
pub async fn import(range: &RangeImport, out: &Location) -> Result<ImportSummary> {
    let imported = read(range).await?;
    super::write(Format::Prometheus, &range.url, imported, out).await
}

/// One series per label-value key: evaluation time (ms since the epoch) → value.
type Series = BTreeMap<Vec<String>, BTreeMap<i64, f64>>;

/// Queries the server and builds the rows, without writing anything.
pub async fn read(range: &RangeImport) -> Result<Imported> {
    let m = &range.mapping;
    m.validate()?;
    let step_ms = i64::from(range.step_s) * 1000;
    let start_ms = range.start.timestamp_millis();
    let windows = (range.end.timestamp_millis() - start_ms).div_euclid(step_ms.max(1));
    if range.step_s == 0 || windows < 1 {
        return Err(Error::Setting {
            key: "--end".into(),
            message: "the range must hold at least one --step after --start".into(),
        });
    }
    let client = Client::new(&range.url, range.auth.clone())?;
    // Evaluated at every window's edge: gauges at its end, counters at both.
    let grid = Grid {
        first_ms: start_ms,
        end_ms: start_ms + windows * step_ms,
        step_ms,
    };
    let vllm_by: Vec<&str> = match &m.supply_id {
        Some(_) => vec![&m.instance_label],
        None => vec![&m.supply_label, &m.instance_label],
    };
    let by = vllm_by.join(", ");
    let sel = &m.selector;
    let step = range.step_s;
    let sum = |name: &str| format!("sum by ({by}) ({name}{{{sel}}})");
    let mean = |agg: &str, name: &str| {
        format!("{agg} by ({by}) (avg_over_time({name}{{{sel}}}[{step}s]))")
    };
    // vLLM renamed some metrics in 0.10: the newer name wins where both exist.
    let newer = |new: String, old: String| format!("{new} or {old}");
    let vllm = |expr: String| client.fetch(expr, &grid, &vllm_by);
    // A histogram's `_sum` and `_count`, under its older name where the newer one is missing.
    let histogram = |name: &'static str, older: Option<&'static str>| {
        let part = move |suffix: &str| {
            let expr = sum(&format!("{name}_{suffix}"));
            match older {
                Some(old) => newer(expr, sum(&format!("{old}_{suffix}"))),
                None => expr,
            }
        };
        async move { Ok::<_, Error>((vllm(part("sum")).await?, vllm(part("count")).await?)) }
    };
    let running = vllm(mean("sum", "vllm:num_requests_running")).await?;
    let waiting = vllm(mean("sum", "vllm:num_requests_waiting")).await?;
    let kv = vllm(newer(
        mean("avg", "vllm:kv_cache_usage_perc"),
        mean("avg", "vllm:gpu_cache_usage_perc"),
    ))
    .await?;
    let prompt = vllm(sum("vllm:prompt_tokens_total")).await?;
    let generation = vllm(sum("vllm:generation_tokens_total")).await?;
    let finished = vllm(sum("vllm:request_success_total")).await?;
    let preempted = vllm(sum("vllm:num_preemptions_total")).await?;
    let itl = histogram(
        "vllm:inter_token_latency_seconds",
        Some("vllm:time_per_output_token_seconds"),
    )
    .await?;
    let queue = histogram("vllm:request_queue_time_seconds", None).await?;
    let ttft = histogram("vllm:time_to_first_token_seconds", None).await?;
    let p95_ttft = vllm(format!(
        "histogram_quantile(0.95, sum by (le, {by}) (rate(vllm:time_to_first_token_seconds_bucket{{{sel}}}[{step}s])))"
    ))
    .await?;
    let dcgm_by = [m.dcgm_instance_label.as_str()];
    let dcgm = |agg: &str, name: &str| {
        let expr = format!(
            "{agg} by ({}) (avg_over_time({name}{{{}}}[{step}s]))",
            m.dcgm_instance_label, m.dcgm_selector
        );
        client.fetch(expr, &grid, &dcgm_by)
    };
    let util = dcgm("avg", "DCGM_FI_DEV_GPU_UTIL").await?;
    let mem = dcgm("sum", "DCGM_FI_DEV_FB_USED").await?;
    let power = dcgm("sum", "DCGM_FI_DEV_POWER_USAGE").await?;

    // `t` is a window's start: gauges and quantiles are evaluated at its end.
    let at =
        |series: &Series, key: &[String], t: i64| series.get(key)?.get(&(t + step_ms)).copied();
    let increase = |series: &Series, key: &[String], t: i64| {
        let points = series.get(key)?;
        let (before, now) = (*points.get(&t)?, *points.get(&(t + step_ms))?);
        Some(if now >= before { now - before } else { now })
    };
    let per_s = |series: &Series, key: &[String], t: i64| {
        increase(series, key, t).map(|n| n / f64::from(range.step_s))
    };
    let mean_ms = |(sum, count): &(Series, Series), key: &[String], t: i64| {
        let n = increase(count, key, t).filter(|&n| n > 0.0)?;
        Some(increase(sum, key, t)? / n * 1000.0)
    };
    let mut rows = GpuRows::default();
    let mut joined = BTreeSet::new();
    for (key, points) in &running {
        let instance = key.last().expect("the instance label is in every key");
        let supply = m.supply_id.as_deref().unwrap_or(&key[0]);
        let node = std::slice::from_ref(instance);
        for (&end, &num_running) in points.range(start_ms + step_ms..) {
            let t = end - step_ms;
            let gpu_util = at(&util, node, t).map(|pct| pct / 100.0);
            if gpu_util.is_some() {
                joined.insert(instance);
            }
            rows.push(&GpuWindow {
                ts_us: Some(t * 1000),
                supply_id: Some(supply),
                instance_id: Some(instance),
                num_running: Some(num_running),
                num_waiting: at(&waiting, key, t),
                kv_cache_usage: at(&kv, key, t),
                gpu_util,
                window_s: Some(f64::from(range.step_s)),
                requests_per_s: per_s(&finished, key, t),
                prompt_tokens_per_s: per_s(&prompt, key, t),
                generation_tokens_per_s: per_s(&generation, key, t),
                mean_itl_ms: mean_ms(&itl, key, t),
                mean_queue_ms: mean_ms(&queue, key, t),
                mem_used_bytes: at(&mem, node, t).map(|mib| (mib * 1_048_576.0).round() as i64),
                power_w: at(&power, node, t),
                preemptions: increase(&preempted, key, t),
                mean_ttft_ms: mean_ms(&ttft, key, t),
                p95_ttft_ms: at(&p95_ttft, key, t).map(|s| s * 1000.0),
            });
        }
    }
    let notes = vec![
        format!(
            "{windows} windows of {} s from {} to {}; each row's ts is its window's start",
            range.step_s,
            range.start.to_rfc3339(),
            range.end.to_rfc3339()
        ),
        format!(
            "{} vLLM series (supply × instance); DCGM series for {} instances, {} of them joined by `{}`",
            running.len(),
            util.len().max(mem.len()).max(power.len()),
            joined.len(),
            m.dcgm_instance_label
        ),
    ];
    let mapping = serde_json::to_string(m).expect("the mapping serialises");
    Ok(Imported {
        tag: format!("prometheus-{:016x}", crate::hash::stable_hash64(&mapping)),
        requests: None,
        gpu_metrics: Some(rows.finish()?),
        notes,
    })
}

/// The evaluation times: `first_ms`, `first_ms + step_ms`, … up to `end_ms`.
struct Grid {
    first_ms: i64,
    end_ms: i64,
    step_ms: i64,
}

/// How requests authenticate. Its `Debug` prints the kind only, so a secret cannot reach a log.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// Sent as `Authorization: Bearer <token>`.
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(..)",
            Auth::Basic { .. } => "Basic(..)",
        })
    }
}

impl Auth {
    /// `TUNELAKE_PROMETHEUS_TOKEN`, or `TUNELAKE_PROMETHEUS_USER` with
    /// `TUNELAKE_PROMETHEUS_PASSWORD`; neither: no authentication.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let missing = |key: &str, message: &str| Error::Setting {
            key: key.into(),
            message: message.into(),
        };
        match (
            var("TUNELAKE_PROMETHEUS_TOKEN"),
            var("TUNELAKE_PROMETHEUS_USER"),
            var("TUNELAKE_PROMETHEUS_PASSWORD"),
        ) {
            (Some(_), Some(_), _) => Err(missing(
                "TUNELAKE_PROMETHEUS_TOKEN",
                "set either a bearer token or TUNELAKE_PROMETHEUS_USER, not both",
            )),
            (Some(token), None, _) => Ok(Auth::Bearer(token)),
            (None, Some(user), Some(password)) => Ok(Auth::Basic { user, password }),
            (None, Some(_), None) => Err(missing(
                "TUNELAKE_PROMETHEUS_PASSWORD",
                "TUNELAKE_PROMETHEUS_USER is set without its password",
            )),
            (None, None, _) => Ok(Auth::None),
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

/// The API's envelope (`status` is `success` or `error`).
#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Matrix>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    result: Vec<RangeSeries>,
}

#[derive(Deserialize)]
struct RangeSeries {
    metric: BTreeMap<String, String>,
    /// `[seconds since the epoch, value as a string]`; values may be `NaN` or `±Inf`.
    values: Vec<(f64, String)>,
}

impl Client {
    fn new(url: &str, auth: Auth) -> Result<Self> {
        let bad = |message: String| Error::Setting {
            key: "--url".into(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("`{url}`: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // The URL is printed in summaries and errors; credentials must not be.
            return Err(bad(
                "credentials go in TUNELAKE_PROMETHEUS_TOKEN or TUNELAKE_PROMETHEUS_USER/PASSWORD, not the URL".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| bad(format!("HTTP client: {}", chain(&e))))?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_string(),
            auth,
        })
    }

    /// Evaluates `expr` over the grid, in chunks below [`MAX_POINTS`], and keys each result series
    /// by its values of `labels`; series lacking one of them are left out. Non-finite values (a
    /// quantile of an empty window) are left out too, so they read as null.
    async fn fetch(&self, expr: String, grid: &Grid, labels: &[&str]) -> Result<Series> {
        let mut series = Series::new();
        let mut from = grid.first_ms;
        while from <= grid.end_ms {
            let to = (from + (MAX_POINTS - 1) * grid.step_ms).min(grid.end_ms);
            for s in self.query_range(&expr, from, to, grid.step_ms).await? {
                let Some(key) = labels
                    .iter()
                    .map(|l| s.metric.get(*l).cloned())
                    .collect::<Option<Vec<_>>>()
                else {
                    continue;
                };
                let points = series.entry(key).or_default();
                for (t, value) in s.values {
                    if let Ok(v) = value.parse::<f64>()
                        && v.is_finite()
                    {
                        points.insert((t * 1000.0).round() as i64, v);
                    }
                }
            }
            from = to + grid.step_ms;
        }
        Ok(series)
    }

    async fn query_range(
        &self,
        expr: &str,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<RangeSeries>> {
        let fail = |message: String| Error::Prometheus {
            url: self.base.clone(),
            query: expr.to_string(),
            message,
        };
        let seconds = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let request = self
            .http
            .get(format!("{}/api/v1/query_range", self.base))
            .query(&[
                ("query", expr),
                ("start", &seconds(from_ms)),
                ("end", &seconds(to_ms)),
                ("step", &seconds(step_ms)),
            ]);
        let request = match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        let response = request
            .send()
            .await
            .map_err(|e| fail(chain(&e.without_url())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(chain(&e.without_url())))?;
        match serde_json::from_slice::<Envelope>(&body) {
            Ok(Envelope {
                data: Some(data), ..
            }) if status.is_success() => Ok(data.result),
            Ok(Envelope {
                status: s,
                error_type,
                error: Some(error),
                ..
            }) if s == "error" => Err(fail(format!(
                "{} ({status})",
                [error_type.unwrap_or_default(), error].join(": ")
            ))),
            _ => {
                let text = String::from_utf8_lossy(&body);
                let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                    " (check TUNELAKE_PROMETHEUS_TOKEN or TUNELAKE_PROMETHEUS_USER/PASSWORD)"
                } else {
                    ""
                };
                Err(fail(format!(
                    "HTTP {status}{hint}: {}",
                    text.trim().chars().take(200).collect::<String>()
                )))
            }
        }
    }
}

/// An error with its causes, which reqwest keeps out of its own message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_whole_seconds_minutes_or_hours() {
        assert_eq!(parse_step("60s").unwrap(), 60);
        assert_eq!(parse_step("5m").unwrap(), 300);
        assert_eq!(parse_step("1h").unwrap(), 3600);
        assert_eq!(parse_step("15").unwrap(), 15);
        for bad in ["0s", "1.5m", "1d", "", "m"] {
            assert!(parse_step(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        let err = Client::new("http://user:secret@localhost:9090", Auth::None)
            .err()
            .expect("refused");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
