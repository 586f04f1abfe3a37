//! Shared fixtures: small lakes with known rows, pipeline files and their supplies, storage
//! locations for every backend under test.

use std::path::Path;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use tunelake::catalog::Catalog;
use tunelake::config::{Engine, Overrides, PipelineFile, Plan, Supply};
use tunelake::ingest::import::rows::{GpuRows, GpuWindow, Request, RequestRows};
use tunelake::storage::Location;
use tunelake::storage::parquet::LakeWriter;

/// One request row; `None` leaves the column null.
#[derive(Debug, Clone, Default)]
pub struct Req {
    pub id: Option<String>,
    pub ts: Option<DateTime<Utc>>,
    pub app: Option<&'static str>,
    pub supply: Option<&'static str>,
    pub prompt: Option<i64>,
    pub completion: Option<i64>,
    pub cached: Option<i64>,
    pub session: Option<String>,
    pub prompt_hash: Option<String>,
    /// `prefix_hash` and `prefix_tokens`.
    pub prefix: Option<(String, i64)>,
    pub status: Option<&'static str>,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub cost_usd: Option<f64>,
}

impl Req {
    /// A valid request.
    pub fn ok(id: &str, ts: &str, app: &'static str, prompt: i64, completion: i64) -> Self {
        Self {
            id: Some(id.to_string()),
            ts: Some(at(ts)),
            app: Some(app),
            supply: Some("llama-h100"),
            prompt: Some(prompt),
            completion: Some(completion),
            status: Some("ok"),
            ..Default::default()
        }
    }
}

/// Runs `command` and returns its output, failing the test with its stderr if it failed.
pub fn succeed(command: &mut std::process::Command) -> std::process::Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn at(text: &str) -> DateTime<Utc> {
    tunelake::config::parse_instant(text).unwrap_or_else(|| panic!("bad instant {text}"))
}

/// Builds a contract-conformant requests batch.
pub fn requests_batch(rows: &[Req]) -> RecordBatch {
    let mut builder = RequestRows::with_capacity(rows.len());
    for r in rows {
        builder.push(&Request {
            request_id: r.id.as_deref(),
            ts_us: r.ts.map(|t| t.timestamp_micros()),
            app_id: r.app,
            supply_id: r.supply,
            prompt_tokens: r.prompt,
            completion_tokens: r.completion,
            cached_tokens: r.cached,
            session_id: r.session.as_deref(),
            prompt_hash: r.prompt_hash.as_deref(),
            prefix_hash: r.prefix.as_ref().map(|(h, _)| h.as_str()),
            prefix_tokens: r.prefix.as_ref().map(|(_, n)| *n),
            status: r.status,
            ttft_ms: r.ttft_ms,
            e2e_ms: r.e2e_ms,
            cost_usd: r.cost_usd,
            ..Default::default()
        });
    }
    builder.finish().expect("fixture batch")
}

/// Telemetry windows `(ts, instance, num_running, num_waiting, kv_cache_usage, gpu_util)`.
pub fn gpu_batch(rows: &[(&str, &str, f64, f64, f64, f64)]) -> RecordBatch {
    let mut builder = GpuRows::with_capacity(rows.len());
    for &(ts, instance, running, waiting, kv, util) in rows {
        builder.push(&GpuWindow {
            ts_us: Some(at(ts).timestamp_micros()),
            supply_id: Some("llama-h100"),
            instance_id: Some(instance),
            num_running: Some(running),
            num_waiting: Some(waiting),
            kv_cache_usage: Some(kv),
            gpu_util: Some(util),
            ..Default::default()
        });
    }
    builder.finish().expect("fixture batch")
}

/// Every app's valid rows of `window` in the lake at `lake`, with default validation.
pub async fn ingest_window(
    lake: Location,
    window: tunelake::config::Window,
) -> tunelake::ingest::Lake {
    tunelake::ingest::ingest(&tunelake::ingest::IngestInput {
        lake,
        window,
        app_ids: vec![],
        validation: tunelake::config::ValidationSettings::default(),
        skip_bad_files: false,
    })
    .await
    .expect("ingesting the lake")
}

/// Writes batches of one table into a hive-partitioned lake.
pub async fn write_table(lake: &Location, table: &str, batch: RecordBatch) {
    let schema = batch.schema();
    let mut writer = LakeWriter::new(lake.clone(), table, schema, "fixture");
    writer.write(batch).await.expect("writing fixture");
    writer.finish().await.expect("flushing fixture");
}

/// One `[[supplies]]` table of a pipeline file. Tests spell their supplies through this one builder,
/// so a change to the file format is made in one place.
#[derive(Debug, Clone)]
pub struct SupplyToml {
    pub id: &'static str,
    pub engine: Engine,
    pub model: &'static str,
    pub gpu: &'static str,
    /// `None` leaves the key out (the file's default).
    pub gpus_per_replica: Option<u32>,
    pub replicas: Option<u32>,
    pub per_gpu_hour: f64,
    pub p95_ttft_ms: f64,
    pub p95_tpot_ms: f64,
    /// Further lines of the table (`config = {...}`, `options = {...}`, sub-tables), verbatim.
    pub extra: String,
}

impl SupplyToml {
    /// A vLLM supply of `model` on `gpu`, the other keys left to the file's defaults.
    pub fn new(id: &'static str, model: &'static str, gpu: &'static str) -> Self {
        Self {
            id,
            engine: Engine::Vllm,
            model,
            gpu,
            gpus_per_replica: None,
            replicas: None,
            per_gpu_hour: 6.88,
            p95_ttft_ms: 1000.0,
            p95_tpot_ms: 60.0,
            extra: String::new(),
        }
    }

    /// The table as TOML text.
    pub fn toml(&self) -> String {
        let mut text = format!(
            "[[supplies]]\nid = \"{}\"\nengine = {}\nmodel = \"{}\"\ngpu = \"{}\"\n",
            self.id,
            serde_json::to_string(&self.engine).expect("engine names serialise"),
            self.model,
            self.gpu
        );
        if let Some(n) = self.gpus_per_replica {
            text.push_str(&format!("gpus_per_replica = {n}\n"));
        }
        if let Some(n) = self.replicas {
            text.push_str(&format!("replicas = {n}\n"));
        }
        text.push_str(&format!(
            "price = {{ per_gpu_hour = {} }}\nslo = {{ p95_ttft_ms = {}, p95_tpot_ms = {} }}\n{}\n",
            self.per_gpu_hour, self.p95_ttft_ms, self.p95_tpot_ms, self.extra
        ));
        text
    }

    /// The supply as the pipeline file's parser reads it (alone in a file with a placeholder run).
    pub fn parse(&self) -> Supply {
        let text = pipeline_toml(
            "[run]\nlake = \"x\"\nout = \"y\"",
            std::slice::from_ref(self),
        );
        let file: PipelineFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        file.supplies.into_iter().next().expect("one supply")
    }
}

/// A pipeline file: `head` (the `[run]` table and any other tables, verbatim), then the supplies.
pub fn pipeline_toml(head: &str, supplies: &[SupplyToml]) -> String {
    supplies
        .iter()
        .fold(format!("{head}\n"), |text, supply| text + &supply.toml())
}

/// Writes `text` at `path` and plans it as `tunelake run --run-id RUN_ID` would.
pub fn plan_with(path: &Path, text: &str, run_id: &str) -> Plan {
    std::fs::write(path, text).unwrap();
    PipelineFile::load(path)
        .unwrap()
        .plan(
            path,
            &Overrides {
                run_id: Some(run_id.into()),
                ..Overrides::default()
            },
            &Catalog::bundled().unwrap(),
        )
        .unwrap()
}

/// The storage backends every storage-touching test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Local,
    S3,
}

/// A fresh, empty location on `backend`. For S3 the server comes from `TUNELAKE_TEST_S3_ENDPOINT`
/// (`bash .ci/run` starts one on loopback); without it the S3 tests fail rather than skip.
pub fn location(backend: Backend, name: &str, dir: &tempfile::TempDir) -> (String, Location) {
    match backend {
        Backend::Local => {
            let url = dir.path().join(name).to_string_lossy().into_owned();
            let loc = Location::parse(&url, None).unwrap();
            (url, loc)
        }
        Backend::S3 => {
            let endpoint = s3_endpoint();
            let bucket = "tunelake-tests";
            create_bucket(&endpoint, bucket);
            let unique = dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(['.', '_'], "-");
            let url = format!("s3://{bucket}/{unique}/{name}");
            let loc = Location::parse(&url, Some(&endpoint)).unwrap();
            (url, loc)
        }
    }
}

pub fn s3_endpoint() -> String {
    std::env::var("TUNELAKE_TEST_S3_ENDPOINT").expect(
        "TUNELAKE_TEST_S3_ENDPOINT is not set: run the tests with `bash .ci/run`, which starts a \
         local S3-compatible server, or point the variable at one",
    )
}

/// Creates a bucket with a plain S3 `PUT /bucket` (the local test server does not check signatures).
fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("S3 test server reachable");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.contains("BucketAlreadyOwnedByYou"),
        "creating bucket: {response}"
    );
}
