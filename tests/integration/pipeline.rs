//! End to end: the same suite runs against local disk and against a real S3 server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, Int64Array};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tunelake::catalog::Catalog;
use tunelake::config::{Overrides, PipelineFile, Plan};
use tunelake::sinks::output::{committed_runs, read_manifest};
use tunelake::storage::Location;

use crate::fixture;
use crate::support::{Backend, location};

fn plan(dir: &tempfile::TempDir, lake: &str, out: &str, run_id: &str) -> Plan {
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, fixture::pipeline_toml(lake, out)).unwrap();
    let mut plan = PipelineFile::load(&path)
        .unwrap()
        .plan(
            &path,
            &Overrides {
                run_id: Some(run_id.into()),
                ..Default::default()
            },
            &Catalog::bundled().unwrap(),
        )
        .unwrap();
    // The S3 endpoint comes from the test environment, as a user would set AWS_ENDPOINT_URL.
    plan.s3_endpoint = std::env::var("TUNELAKE_TEST_S3_ENDPOINT").ok();
    plan
}

/// Reads one output table of a run back with DataFusion, as an analyst's tool would.
async fn read_back(out: &Location, table: &str, run_id: &str) -> Vec<arrow::array::RecordBatch> {
    let ctx = tunelake::sql::session();
    ctx.register_object_store(&out.root, out.store.clone());
    let dir = out.child(&format!("{table}/run_date=2026-11-10/run_id={run_id}"));
    let url = format!("{}/", out.url_of(&dir));
    ctx.read_parquet(url, Default::default())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

async fn end_to_end(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (lake_url, lake) = location(backend, "lake", &dir);
    let (out_url, out) = location(backend, "out", &dir);
    fixture::write(&lake).await;

    let summary = tunelake::pipeline::run(&plan(&dir, &lake_url, &out_url, "r1"), &())
        .await
        .unwrap();

    assert_eq!(summary.requests.quarantined, fixture::expected_quarantine());
    assert!(summary.rows.contains_key("calibration"));
    assert_eq!(summary.calibration.len(), summary.rows["calibration"]);
    assert_eq!(summary.requests.rows_valid, fixture::VALID_REQUESTS);
    // The workloads stage ran and its tables were written with the others.
    for table in [
        "workload_classes",
        "app_workload_shares",
        "app_workload_mix",
    ] {
        assert!(summary.rows.get(table).is_some_and(|&n| n > 0), "{table}");
    }
    assert_eq!(
        summary.gpu_metrics.quarantined.get("fraction_out_of_range"),
        Some(&1)
    );
    // Partition pruning: only the window's dates were opened, so the corrupt files beside it
    // (dates 2026-11-06 and 2026-11-10) never caused an error.
    assert_eq!(
        summary.requests.files_opened.len(),
        4,
        "{:?}",
        summary.requests.files_opened
    );
    for file in &summary.requests.files_opened {
        assert!(
            ["date=2026-11-07", "date=2026-11-08", "date=2026-11-09"]
                .iter()
                .any(|d| file.contains(d)),
            "opened {file} outside the window"
        );
    }
    assert_eq!(committed_runs(&out).await.unwrap(), vec!["r1".to_string()]);
    let manifest = read_manifest(&out, "r1").await.unwrap().unwrap();
    assert_eq!(
        manifest["quarantine"]["requests"]["duplicate_request_id"],
        1
    );
    assert_eq!(manifest["rows"]["quarantine"], 7);

    let hourly = read_back(&out, "features_hourly", "r1").await;
    let requests: i64 = hourly
        .iter()
        .map(|b| {
            let c = b.column_by_name("requests").unwrap();
            arrow::compute::sum(c.as_any().downcast_ref::<Int64Array>().unwrap()).unwrap()
        })
        .sum();
    assert_eq!(requests as u64, fixture::VALID_REQUESTS);
    let quarantine = read_back(&out, "quarantine", "r1").await;
    assert_eq!(quarantine.iter().map(|b| b.num_rows()).sum::<usize>(), 7);

    // Re-running a run id replaces it; a run that died (no _SUCCESS) is ignored by readers.
    tunelake::pipeline::run(&plan(&dir, &lake_url, &out_url, "r1"), &())
        .await
        .unwrap();
    let dead = out.child("features_hourly/run_date=2026-11-10/run_id=dead/part-00000.parquet");
    out.put(&dead, bytes::Bytes::from_static(b"partial"))
        .await
        .unwrap();
    assert_eq!(committed_runs(&out).await.unwrap(), vec!["r1".to_string()]);
    assert!(read_manifest(&out, "dead").await.unwrap().is_none());
    let hourly_again = read_back(&out, "features_hourly", "r1").await;
    assert_eq!(
        hourly_again.iter().map(|b| b.num_rows()).sum::<usize>(),
        hourly.iter().map(|b| b.num_rows()).sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_on_local_disk() {
    end_to_end(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_on_s3() {
    end_to_end(Backend::S3).await;
}

/// A generated lake through the whole pipeline: every contract-breaking row the generator planted is
/// found, per reason, and nothing else is quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_finds_exactly_the_rows_the_generator_planted() {
    let dir = tempfile::tempdir().unwrap();
    let (lake_url, lake) = location(Backend::Local, "lake", &dir);
    let (out_url, _) = location(Backend::Local, "out", &dir);
    let truth = tunelake::generate::generate(
        &lake,
        &tunelake::generate::GenerateConfig {
            requests: 20_000,
            days: 3,
            seed: 7,
            end: chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap(),
            invalid_share: 0.002,
        },
    )
    .await
    .unwrap();
    let mut plan = plan(&dir, &lake_url, &out_url, "gen");
    plan.app_ids.clear();
    let summary = tunelake::pipeline::run(&plan, &()).await.unwrap();
    let planted: BTreeMap<String, u64> =
        truth.invalid.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(planted.len(), 4, "every reason planted: {planted:?}");
    assert_eq!(summary.requests.quarantined, planted);
    assert_eq!(summary.requests.rows_read, truth.request_rows);
    assert_eq!(summary.gpu_metrics.rows_valid, truth.gpu_metrics_rows);
}

/// A store that counts the GETs of every path and delegates everything to the real store (the
/// methods are `async_trait`'s expansion, written out).
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    gets: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl ObjectStore for CountingStore {
    fn put_opts<'a, 'b, 'r>(
        &'a self,
        location: &'b Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> BoxFuture<'r, object_store::Result<PutResult>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        self.inner.put_opts(location, payload, opts)
    }

    fn put_multipart_opts<'a, 'b, 'r>(
        &'a self,
        location: &'b Path,
        opts: PutMultipartOptions,
    ) -> BoxFuture<'r, object_store::Result<Box<dyn MultipartUpload>>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        self.inner.put_multipart_opts(location, opts)
    }

    fn get_opts<'a, 'b, 'r>(
        &'a self,
        location: &'b Path,
        options: GetOptions,
    ) -> BoxFuture<'r, object_store::Result<GetResult>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        *self
            .gets
            .lock()
            .unwrap()
            .entry(location.to_string())
            .or_default() += 1;
        self.inner.get_opts(location, options)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_delimiter<'a, 'b, 'r>(
        &'a self,
        prefix: Option<&'b Path>,
    ) -> BoxFuture<'r, object_store::Result<ListResult>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        self.inner.list_with_delimiter(prefix)
    }

    fn copy_opts<'a, 'b, 'c, 'r>(
        &'a self,
        from: &'b Path,
        to: &'c Path,
        options: CopyOptions,
    ) -> BoxFuture<'r, object_store::Result<()>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        Self: 'r,
    {
        self.inner.copy_opts(from, to, options)
    }
}

/// The lake is read once per run: across a whole pipeline run every Parquet file of the window is
/// fetched with exactly one GET, nothing else of the lake is read, and the manifest lists the files.
async fn every_lake_file_is_read_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (lake_url, lake) = location(backend, "lake", &dir);
    let (out_url, out) = location(backend, "out", &dir);
    fixture::write(&lake).await;
    let gets = Arc::new(Mutex::new(BTreeMap::new()));
    let counted = Location {
        store: Arc::new(CountingStore {
            inner: lake.store.clone(),
            gets: gets.clone(),
        }),
        ..lake.clone()
    };
    let summary =
        tunelake::pipeline::run_on(&plan(&dir, &lake_url, &out_url, "once"), counted, &())
            .await
            .unwrap();

    let opened: Vec<String> = [&summary.requests, &summary.gpu_metrics]
        .iter()
        .flat_map(|t| t.files_opened.clone())
        .collect();
    assert_eq!(opened.len(), 6, "4 request files and 2 telemetry files");
    let read: BTreeMap<String, usize> = gets
        .lock()
        .unwrap()
        .iter()
        .map(|(path, &n)| (lake.url_of(&Path::from(path.as_str())), n))
        .collect();
    let once: BTreeMap<String, usize> = opened.iter().map(|f| (f.clone(), 1)).collect();
    assert_eq!(read, once);
    let manifest = read_manifest(&out, "once").await.unwrap().unwrap();
    let listed: Vec<String> = ["requests", "gpu_metrics"]
        .iter()
        .flat_map(|t| {
            serde_json::from_value::<Vec<String>>(manifest["inputs"][t]["files_opened"].clone())
                .unwrap()
        })
        .collect();
    assert_eq!(listed, opened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lake_file_is_read_once_on_local_disk() {
    every_lake_file_is_read_once(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lake_file_is_read_once_on_s3() {
    every_lake_file_is_read_once(Backend::S3).await;
}
