//! `import prometheus` against a real Prometheus server: the BurstGPT vLLM replay logs are turned
//! into an OpenMetrics file at test time (their licence is unclear, so nothing derived is committed),
//! backfilled with `promtool`, served by `prometheus`, imported, and the rows read back are checked
//! against values computed here from the same samples.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use serde_json::Value;
use tunelake::config::PrometheusMapping;
use tunelake::ingest::import::prometheus::{self, Auth, RangeImport};
use tunelake::storage::Location;

use crate::import::read_table;

const LOGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/vllm-burstgpt-replay-logs"
);
/// Where the replay's clock starts (the burstgpt importer's default clock).
const T0: &str = "2024-10-27T00:00:00Z";
const STEP_S: u32 = 10;
/// The run lasts about 170 s; the range covers it with room to spare.
const RANGE_S: i64 = 180;
/// TTFT bucket bounds in seconds (a subset of vLLM's), then `+Inf`.
const BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0,
];
const LABELS: &str = r#"model_name="llama-3.2-1b",instance="replica-0""#;
/// A test-only password and its bcrypt hash (cost 10), for Prometheus's `basic_auth_users`.
const PASSWORD: &str = "tunelake-test";
const PASSWORD_BCRYPT: &str = "$2b$10$H7GIdmPumjCyIV7291Pj/ucdxjnM1sdujAAnEYeAhMj/ecSlkd72K";

/// The directory holding `prometheus` and `promtool`.
fn prometheus_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TUNELAKE_TEST_PROMETHEUS").unwrap_or_else(|| {
        panic!(
            "TUNELAKE_TEST_PROMETHEUS is not set: it names the directory holding `prometheus` and \
             `promtool` (Debian's prometheus package: /usr/bin). Run the tests with `bash .ci/run`, \
             which installs it and sets the variable."
        )
    });
    Path::new(&dir).join(name)
}

/// One vLLM stats line as Prometheus would have scraped it: gauges, and counters integrated so far.
struct Scrape {
    ms: i64,
    running: f64,
    waiting: f64,
    kv: f64,
    prompt_total: f64,
    generation_total: f64,
    /// `request_success_total` for `finished_reason` `stop` and `length` (even and odd event ids,
    /// so that the importer's sum over reasons is exercised).
    success: [f64; 2],
    ttft_sum: f64,
    /// Cumulative bucket counts, `+Inf` last (= `_count`).
    ttft_buckets: [f64; 14],
}

type ScrapeValue = fn(&Scrape) -> f64;

/// (ms, GPU_utilization %, GPU_used_mem MiB)
type GpuSample = (i64, f64, f64);
type GpuValue = fn(&GpuSample) -> f64;

struct Fixture {
    start_ms: i64,
    scrapes: Vec<Scrape>,
    gpu: Vec<GpuSample>,
}

fn json(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(LOGS).join(path)).unwrap();
    let object: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    object.into_values().collect()
}

impl Fixture {
    /// Scale 500's run: vllm_log lines become scrapes, detail_log records the TTFT histogram and the
    /// finished-request counter, gpu_log samples the DCGM gauges. perf_counter seconds map to
    /// T0 + (t − first vllm_log line), rounded to Prometheus's milliseconds.
    fn read() -> Self {
        let csv = std::fs::read_to_string(
            Path::new(LOGS).join("vllm_log/vllm_log_scale500_prompt500.csv"),
        )
        .unwrap();
        let lines: Vec<Vec<f64>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
            .collect();
        let t0 = lines[0][0];
        let start_ms = crate::support::at(T0).timestamp_millis();
        let ms = |t: f64| start_ms + ((t - t0) * 1000.0).round() as i64;
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
        let details = json("detail_log/detail_log_scale500_prompt500.json");
        // (first token ms, TTFT s) and (completion ms, event id)
        let first_tokens: Vec<(i64, f64)> = details
            .iter()
            .map(|d| {
                let arrival = f(d, "record_time") - f(d, "total_chunk_time");
                let ttft = f(d, "first_chunk_time");
                (ms(arrival + ttft), ttft)
            })
            .collect();
        let completions: Vec<(i64, i64)> = details
            .iter()
            .map(|d| (ms(f(d, "record_time")), d["event_id"].as_i64().unwrap()))
            .collect();
        let mut scrapes: Vec<Scrape> = Vec::new();
        for line in &lines {
            let at = ms(line[0]);
            let (prompt_total, generation_total) = match scrapes.last() {
                Some(p) => {
                    let dt = (at - p.ms) as f64 / 1000.0;
                    (
                        p.prompt_total + line[1] * dt,
                        p.generation_total + line[2] * dt,
                    )
                }
                None => (0.0, 0.0),
            };
            let mut success = [0.0; 2];
            for (_, id) in completions.iter().filter(|(done, _)| *done <= at) {
                success[(id % 2) as usize] += 1.0;
            }
            let seen: Vec<f64> = first_tokens
                .iter()
                .filter(|(t, _)| *t <= at)
                .map(|&(_, s)| s)
                .collect();
            let mut ttft_buckets = [0.0; 14];
            for (i, bound) in BUCKETS.iter().chain([f64::INFINITY].iter()).enumerate() {
                ttft_buckets[i] = seen.iter().filter(|s| *s <= bound).count() as f64;
            }
            scrapes.push(Scrape {
                ms: at,
                running: line[3],
                waiting: line[5],
                kv: line[6] / 100.0,
                prompt_total,
                generation_total,
                success,
                ttft_sum: seen.iter().sum(),
                ttft_buckets,
            });
        }
        let mut gpu: Vec<GpuSample> = json("gpu_log/gpu_log_scale500_prompt500.json")
            .iter()
            .map(|g| {
                (
                    ms(f(g, "record_time")),
                    f(g, "GPU_utilization"),
                    f(g, "GPU_used_mem"),
                )
            })
            .collect();
        gpu.sort_by_key(|g| g.0);
        Self {
            start_ms,
            scrapes,
            gpu,
        }
    }

    /// The OpenMetrics text `promtool tsdb create-blocks-from openmetrics` reads. Rust prints the
    /// shortest text that parses back to the same f64, so Prometheus stores exactly these values.
    fn openmetrics(&self) -> String {
        let ts = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, samples: Vec<(String, f64, i64)>| {
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            for (series, v, ms) in samples {
                out.push_str(&format!("{series} {v} {}\n", ts(ms)));
            }
        };
        let each = |series: &str, value: &dyn Fn(&Scrape) -> f64| {
            let series = format!("{series}{{{LABELS}}}");
            self.scrapes
                .iter()
                .map(|s| (series.clone(), value(s), s.ms))
                .collect::<Vec<_>>()
        };
        // (family, type, sample-name suffix, value)
        let scraped: [(&str, &str, &str, ScrapeValue); 5] = [
            ("vllm:num_requests_running", "gauge", "", |s| s.running),
            ("vllm:num_requests_waiting", "gauge", "", |s| s.waiting),
            ("vllm:kv_cache_usage_perc", "gauge", "", |s| s.kv),
            ("vllm:prompt_tokens", "counter", "_total", |s| {
                s.prompt_total
            }),
            ("vllm:generation_tokens", "counter", "_total", |s| {
                s.generation_total
            }),
        ];
        for (name, kind, suffix, value) in scraped {
            family(name, kind, each(&format!("{name}{suffix}"), &value));
        }
        let mut success = Vec::new();
        for (i, reason) in ["stop", "length"].iter().enumerate() {
            let series =
                format!(r#"vllm:request_success_total{{finished_reason="{reason}",{LABELS}}}"#);
            success.extend(
                self.scrapes
                    .iter()
                    .map(|s| (series.clone(), s.success[i], s.ms)),
            );
        }
        family("vllm:request_success", "counter", success);
        let name = "vllm:time_to_first_token_seconds";
        let mut histogram = Vec::new();
        for s in &self.scrapes {
            for (i, count) in s.ttft_buckets.iter().enumerate() {
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let series = format!(r#"{name}_bucket{{{LABELS},le="{le}"}}"#);
                histogram.push((series, *count, s.ms));
            }
            histogram.push((format!("{name}_sum{{{LABELS}}}"), s.ttft_sum, s.ms));
            histogram.push((
                format!("{name}_count{{{LABELS}}}"),
                s.ttft_buckets[13],
                s.ms,
            ));
        }
        family(name, "histogram", histogram);
        let dcgm: [(&str, GpuValue); 2] = [
            ("DCGM_FI_DEV_GPU_UTIL", |g| g.1),
            ("DCGM_FI_DEV_FB_USED", |g| g.2),
        ];
        for (name, value) in dcgm {
            let series = format!(r#"{name}{{gpu="0",Hostname="replica-0"}}"#);
            let samples = self.gpu.iter().map(|g| (series.clone(), value(g), g.0));
            family(name, "gauge", samples.collect());
        }
        out.push_str("# EOF\n");
        out
    }

    /// The last scrape at or before `ms` (what Prometheus's instant lookup returns).
    fn last_at(&self, ms: i64) -> Option<&Scrape> {
        self.scrapes.iter().rev().find(|s| s.ms <= ms)
    }

    /// The scrapes of the window `[t, t + step]`: Prometheus 2's range selectors take both edges.
    fn within(&self, t: i64) -> Vec<&Scrape> {
        let end = t + i64::from(STEP_S) * 1000;
        self.scrapes
            .iter()
            .filter(|s| (t..=end).contains(&s.ms))
            .collect()
    }
}

/// A Prometheus server over a backfilled TSDB, killed when dropped (also when a test panics).
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Backfills `fixture` and serves it, behind basic auth (user `tunelake`) when `auth` is set.
    async fn start(fixture: &Fixture, auth: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("fixture.om");
        std::fs::write(&metrics, fixture.openmetrics()).unwrap();
        let data = dir.path().join("data");
        let backfill = Command::new(prometheus_bin("promtool"))
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&metrics)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            backfill.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&backfill.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "scrape_configs: []\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(prometheus_bin("prometheus"));
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap());
        if auth {
            let web = dir.path().join("web.yml");
            let mut file = std::fs::File::create(&web).unwrap();
            writeln!(file, "basic_auth_users:\n  tunelake: {PASSWORD_BCRYPT}").unwrap();
            command.arg(format!("--web.config.file={}", web.display()));
        }
        let server = Server {
            child: command.spawn().unwrap(),
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/-/ready", server.url))
                .basic_auth("tunelake", Some(PASSWORD))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 30 s; its log: {}",
                std::fs::read_to_string(server._dir.path().join("prometheus.log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn range(&self, fixture: &Fixture, auth: Auth) -> RangeImport {
        let start = chrono::DateTime::from_timestamp_millis(fixture.start_ms).unwrap();
        RangeImport {
            url: self.url.clone(),
            start,
            end: start + chrono::Duration::seconds(RANGE_S),
            step_s: STEP_S,
            mapping: PrometheusMapping::default(),
            auth,
        }
    }
}

fn basic(password: &str) -> Auth {
    Auth::Basic {
        user: "tunelake".into(),
        password: password.into(),
    }
}

fn floats(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = b
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

/// Float64 survives the text formats exactly; 1e-9 relative covers avg_over_time's incremental
/// mean, which rounds differently from a sum divided by a count.
fn close(found: Option<f64>, expected: Option<f64>, what: &str) {
    match (found, expected) {
        (Some(f), Some(e)) => assert!(
            (f - e).abs() <= 1e-9 * e.abs().max(1.0),
            "{what}: found {f}, expected {e}"
        ),
        (f, e) => assert_eq!(f, e, "{what}"),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The bucket index where `histogram_quantile(0.95, …)` lands for these cumulative counts.
fn p95_bucket(cumulative: &[f64; 14]) -> usize {
    let rank = 0.95 * cumulative[13];
    cumulative.iter().position(|&c| c >= rank).unwrap()
}

#[tokio::test]
async fn prometheus_import_matches_the_replay_logs_and_repeats_identically() {
    let fixture = Fixture::read();
    let server = Server::start(&fixture, false).await;
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = Location::parse(lake_dir.path().to_str().unwrap(), None).unwrap();
    let range = server.range(&fixture, Auth::None);
    let summary = prometheus::import(&range, &lake).await.unwrap();
    let batches = read_table(lake_dir.path(), "gpu_metrics");
    let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();

    // One row per window holding at least one vLLM scrape.
    let step_ms = i64::from(STEP_S) * 1000;
    let windows: Vec<i64> = (0..RANGE_S / i64::from(STEP_S))
        .map(|i| fixture.start_ms + i * step_ms)
        .filter(|&t| !fixture.within(t).is_empty())
        .collect();
    assert!(windows.len() >= 15, "{} windows", windows.len());
    assert_eq!(summary.rows["gpu_metrics"], windows.len());
    assert_eq!(b.num_rows(), windows.len());
    let ts = b
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    let column = |name| floats(&b, name);
    let (running, waiting, kv) = (
        column("num_running"),
        column("num_waiting"),
        column("kv_cache_usage"),
    );
    let (prompt, generation, requests) = (
        column("prompt_tokens_per_s"),
        column("generation_tokens_per_s"),
        column("requests_per_s"),
    );
    let (ttft, p95, util) = (
        column("mean_ttft_ms"),
        column("p95_ttft_ms"),
        column("gpu_util"),
    );
    let mem = b
        .column_by_name("mem_used_bytes")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let step = f64::from(STEP_S);
    let mut with_p95 = 0;
    for (i, &t) in windows.iter().enumerate() {
        assert_eq!(ts.value(i), t * 1000, "row {i}: ts is the window's start");
        let inside = fixture.within(t);
        let at = |name: &str| format!("{name} at window {i}");
        close(
            running[i],
            mean(inside.iter().map(|s| s.running)),
            &at("num_running"),
        );
        close(
            waiting[i],
            mean(inside.iter().map(|s| s.waiting)),
            &at("num_waiting"),
        );
        close(
            kv[i],
            mean(inside.iter().map(|s| s.kv)),
            &at("kv_cache_usage"),
        );
        // Counters: the increase between the last scrapes at or before the window's two edges.
        let (before, now) = (fixture.last_at(t), fixture.last_at(t + step_ms).unwrap());
        let delta = |v: &dyn Fn(&Scrape) -> f64| before.map(|b| v(now) - v(b));
        close(
            prompt[i],
            delta(&|s| s.prompt_total).map(|d| d / step),
            &at("prompt rate"),
        );
        close(
            generation[i],
            delta(&|s| s.generation_total).map(|d| d / step),
            &at("generation rate"),
        );
        close(
            requests[i],
            delta(&|s| s.success[0] + s.success[1]).map(|d| d / step),
            &at("requests_per_s"),
        );
        let count = delta(&|s| s.ttft_buckets[13]).unwrap();
        let expected_ttft = (count > 0.0).then(|| delta(&|s| s.ttft_sum).unwrap() / count * 1000.0);
        close(ttft[i], expected_ttft, &at("mean_ttft_ms"));
        // p95: rate() differences the first and last scrape inside the window; the quantile must
        // fall in the bucket where 95 % of those observations are, interpolated within it.
        if let (Some(p), [first, .., last]) = (p95[i], inside.as_slice()) {
            let mut counts = [0.0; 14];
            for (c, (l, f)) in counts
                .iter_mut()
                .zip(last.ttft_buckets.iter().zip(&first.ttft_buckets))
            {
                *c = l - f;
            }
            let k = p95_bucket(&counts);
            let lower = if k == 0 { 0.0 } else { BUCKETS[k - 1] };
            let upper = BUCKETS.get(k).copied().unwrap_or(BUCKETS[12]);
            assert!(
                (lower * 1000.0..=upper * 1000.0).contains(&p),
                "{}: {p} not in bucket ({lower}, {upper}] s",
                at("p95_ttft_ms")
            );
            with_p95 += 1;
        }
        let gpu: Vec<&GpuSample> = fixture
            .gpu
            .iter()
            .filter(|g| (t..=t + step_ms).contains(&g.0))
            .collect();
        close(
            util[i],
            mean(gpu.iter().map(|g| g.1 / 100.0)),
            &at("gpu_util"),
        );
        let mib = mean(gpu.iter().map(|g| g.2));
        assert_eq!(
            mem.is_valid(i).then(|| mem.value(i)),
            mib.map(|m| (m * 1_048_576.0).round() as i64),
            "{}",
            at("mem_used_bytes")
        );
    }
    assert!(with_p95 >= windows.len() / 2, "p95 in {with_p95} windows");
    // The fixture has no power, ITL, queue-time or preemption series: null, never guessed.
    for name in ["power_w", "mean_itl_ms", "mean_queue_ms", "preemptions"] {
        assert!(column(name).iter().all(Option::is_none), "{name}");
    }
    for (name, expected) in [("supply_id", "llama-3.2-1b"), ("instance_id", "replica-0")] {
        let ids = b
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert!(ids.iter().all(|v| v == Some(expected)), "{name}");
    }

    // A second import of the same range rewrites the same file with the same bytes.
    let files = |dir: &Path| {
        let date = dir.join("gpu_metrics/date=2024-10-27");
        let mut names: Vec<(String, Vec<u8>)> = std::fs::read_dir(&date)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        names.sort();
        names
    };
    let first = files(lake_dir.path());
    assert_eq!(first.len(), 1);
    assert!(first[0].0.starts_with("part-prometheus-"), "{}", first[0].0);
    prometheus::import(&range, &lake).await.unwrap();
    assert_eq!(files(lake_dir.path()), first);
    let again = read_table(lake_dir.path(), "gpu_metrics");
    assert_eq!(
        again.iter().map(RecordBatch::num_rows).sum::<usize>(),
        windows.len()
    );
}

#[tokio::test]
async fn prometheus_basic_auth_is_sent_and_a_wrong_password_is_refused() {
    let fixture = Fixture::read();
    let server = Server::start(&fixture, true).await;
    let lake_dir = tempfile::tempdir().unwrap();
    let lake = Location::parse(lake_dir.path().to_str().unwrap(), None).unwrap();

    let wrong = "not-the-password";
    let err = prometheus::import(&server.range(&fixture, basic(wrong)), &lake)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && err.contains(&server.url), "{err}");
    assert!(
        err.contains("vllm:num_requests_running"),
        "names the query: {err}"
    );
    assert!(!err.contains(wrong), "{err}");

    let summary = prometheus::import(&server.range(&fixture, basic(PASSWORD)), &lake)
        .await
        .unwrap();
    assert!(summary.rows["gpu_metrics"] > 0, "{summary:?}");

    // The CLI takes the credentials from the environment and never prints them.
    let cli = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_tunelake"))
            .args(["import", "prometheus", "--url", &server.url])
            .args([
                "--start",
                T0,
                "--end",
                "2024-10-27T00:03:00Z",
                "--step",
                "10s",
            ])
            .arg("--out")
            .arg(lake_dir.path())
            .env_remove("TUNELAKE_PROMETHEUS_TOKEN")
            .env("TUNELAKE_PROMETHEUS_USER", "tunelake")
            .env("TUNELAKE_PROMETHEUS_PASSWORD", password)
            .output()
            .unwrap()
    };
    let refused = cli(wrong);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && !stderr.contains(wrong),
        "{stderr}"
    );
    let ok = cli(PASSWORD);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("gpu_metrics") && stdout.contains("windows of 10 s"),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD), "{stdout}");
}

/// The prometheus format and the file formats refuse each other's arguments as usage errors.
#[test]
fn import_arguments_are_checked_per_format() {
    let dir = tempfile::tempdir().unwrap();
    for (args, named) in [
        (vec!["prometheus", "some.csv", "--url", "http://x"], "INPUT"),
        (vec!["prometheus", "--start", T0, "--end", T0], "--url"),
        (vec!["azure"], "INPUT"),
        (vec!["azure", "f.csv", "--url", "http://x"], "--url"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tunelake"))
            .arg("import")
            .args(&args)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
