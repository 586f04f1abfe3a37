//! Faults during the commit: the S3 server going away mid-run, a full disk, a read-only disk. In
//! every case the run fails with a message naming the object, nothing becomes visible to readers
//! (no `_SUCCESS`, no `runs` row), and the next run succeeds.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tunelake::sinks::output::committed_runs;
use tunelake::storage::Location;

use crate::fixture;
use crate::support::{Backend, location, s3_endpoint, succeed};

/// A TCP hop in front of the real S3 server that reads each HTTP/1.1 request's head and, from the
/// first PUT whose path contains `trip_on`, behaves as a stopped server: that request and every
/// later connection are cut without a reply, until [`Outage::restore`]. It trips once.
struct Outage {
    endpoint: String,
    down: Arc<AtomicBool>,
}

impl Outage {
    async fn start(upstream: String, trip_on: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let armed = Arc::new(AtomicBool::new(true));
        let flag = down.clone();
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                tokio::spawn(relay(
                    client,
                    upstream.clone(),
                    (trip_on, armed.clone()),
                    flag.clone(),
                ));
            }
        });
        Self { endpoint, down }
    }

    fn tripped(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// Relays one client connection request by request (responses stream back on their own task).
async fn relay(
    mut client: TcpStream,
    upstream: String,
    (trip_on, armed): (&str, Arc<AtomicBool>),
    down: Arc<AtomicBool>,
) {
    let host = upstream.trim_start_matches("http://").to_string();
    let Ok(server) = TcpStream::connect(&host).await else {
        return;
    };
    let (mut server_read, mut server_write) = server.into_split();
    let (mut client_read, mut client_write) = client.split();
    let requests = async {
        let mut buffer = Vec::new();
        loop {
            let head_end = loop {
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                let mut chunk = [0u8; 8192];
                match client_read.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
            let request_line = head.lines().next().unwrap_or_default();
            let trips = request_line.starts_with("PUT ") && request_line.contains(trip_on);
            if down.load(Ordering::SeqCst) || (trips && armed.swap(false, Ordering::SeqCst)) {
                down.store(true, Ordering::SeqCst);
                return;
            }
            let body = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buffer.len() < head_end + body {
                let mut chunk = [0u8; 65536];
                match client_read.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            if server_write
                .write_all(&buffer[..head_end + body])
                .await
                .is_err()
            {
                return;
            }
            buffer.drain(..head_end + body);
        }
    };
    let responses = tokio::io::copy(&mut server_read, &mut client_write);
    // Whichever direction ends first ends the connection.
    tokio::select! {
        _ = requests => {}
        _ = responses => {}
    }
}

/// Writes the fixture lake straight to S3 and a pipeline over it whose storage goes through
/// `outage`, with short retry and lock budgets so the test waits seconds, not minutes.
async fn pipeline_through(
    outage: &Outage,
    dir: &tempfile::TempDir,
    run_id: &str,
) -> (tunelake::config::Plan, Location) {
    let (lake_url, lake) = location(Backend::S3, "lake", dir);
    let (out_url, _) = location(Backend::S3, "out", dir);
    fixture::write(&lake).await;
    let text = fixture::pipeline_toml(&lake_url, &out_url).replacen(
        "[run]\n",
        "[run]\nstorage_retry_timeout_s = 2\nlock_ttl_s = 3\n",
        1,
    );
    let mut plan = crate::support::plan_with(&dir.path().join("p.toml"), &text, run_id);
    plan.s3_endpoint = Some(outage.endpoint.clone());
    // Readers look at the server directly.
    let out = Location::parse(&out_url, Some(&s3_endpoint())).unwrap();
    (plan, out)
}

async fn nothing_visible(out: &Location, run_id: &str) {
    assert!(committed_runs(out).await.unwrap().is_empty());
    let row = out.child(&format!("runs/{run_id}.parquet"));
    assert!(out.store.head(&row).await.is_err(), "a runs row appeared");
}

/// The S3 server stops while the run writes its tables (`trip_on` picks the moment): the retries
/// give up within the budget, the error names the object, readers see nothing; once the server is
/// back and the dead run's lock has expired, the same run id commits.
async fn s3_outage_during_commit(trip_on: &'static str, object: &str) {
    let outage = Outage::start(s3_endpoint(), trip_on).await;
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = pipeline_through(&outage, &dir, "r1").await;

    let started = Instant::now();
    let error = tunelake::pipeline::run(&plan, &())
        .await
        .expect_err("the run must fail while S3 is down")
        .to_string();
    assert!(outage.tripped());
    assert!(error.contains(object), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "retries outlived their budget"
    );
    nothing_visible(&out, "r1").await;

    outage.restore();
    tokio::time::sleep(plan.lock_ttl + Duration::from_millis(500)).await;
    tunelake::pipeline::run(&plan, &()).await.unwrap();
    assert_eq!(committed_runs(&out).await.unwrap(), vec!["r1"]);
    assert!(out.store.head(&out.child("runs/r1.parquet")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopping_at_the_first_table_loses_nothing() {
    s3_outage_during_commit(
        "/features_hourly/",
        // object_store percent-encodes the key in its message.
        "features_hourly/run_date%3D2026-11-10/run_id%3Dr1/part-00000.parquet",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopping_before_the_commit_point_loses_nothing() {
    s3_outage_during_commit("/runs/r1.parquet", "runs/r1.parquet").await;
}

/// Runs `script` in a private mount namespace (so a tmpfs mounted there needs no privileges
/// outside it and vanishes with it), with `$TUNELAKE` the binary and `$PIPELINE` and `$OUT` set.
fn in_mount_namespace(script: &str, pipeline: &std::path::Path, out: &std::path::Path) -> String {
    let output = succeed(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
            .env("TUNELAKE", env!("CARGO_BIN_EXE_tunelake"))
            .env("PIPELINE", pipeline)
            .env("OUT", out),
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The output disk fills up during the commit, or is read-only: the run exits 1 naming the file,
/// leaves no `_SUCCESS` and no `runs` row, and succeeds once there is room.
#[test]
fn a_full_or_read_only_output_disk_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (lake_url, lake) = location(Backend::Local, "lake", &dir);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fixture::write(&lake));
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        fixture::pipeline_toml(&lake_url, &out.to_string_lossy()),
    )
    .unwrap();
    // How much a run writes, in tmpfs pages: measured on a disk with room.
    let measure = in_mount_namespace(
        r#"mount -t tmpfs -o size=64m tmpfs "$OUT" && "$TUNELAKE" --log error run --run-id r1 "$PIPELINE" >/dev/null && find "$OUT" -type f -printf '%s\n'"#,
        &pipeline,
        &out,
    );
    let pages: u64 = measure
        .lines()
        .map(|l| l.parse::<u64>().unwrap().div_ceil(4096).max(1))
        .sum();
    assert!(pages > 20, "{pages} pages");
    let script = format!(
        r#"
mount -t tmpfs -o size={half}k tmpfs "$OUT"
"$TUNELAKE" --log error run --run-id r1 "$PIPELINE" >/dev/null 2>"$OUT.full.err"; echo "full=$?"
ls "$OUT/_runs/run_id=r1/_SUCCESS" "$OUT/runs/r1.parquet" 2>/dev/null | sed 's/^/visible:/'
mount -o remount,ro "$OUT"
"$TUNELAKE" --log error run --run-id r2 "$PIPELINE" >/dev/null 2>"$OUT.ro.err"; echo "read_only=$?"
mount -o remount,rw,size=64m "$OUT"
sleep 4
"$TUNELAKE" --log error run --run-id r1 "$PIPELINE" >/dev/null; echo "again=$?"
"$TUNELAKE" runs "$OUT"
"#,
        half = pages / 2 * 4
    );
    // The dead run's lock (default TTL) would hold r1 for 10 minutes: a short one for this test.
    let text = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        text.replacen("[run]\n", "[run]\nlock_ttl_s = 3\n", 1),
    )
    .unwrap();
    let report = in_mount_namespace(&script, &pipeline, &out);
    let full_err = std::fs::read_to_string(dir.path().join("out.full.err")).unwrap();
    let ro_err = std::fs::read_to_string(dir.path().join("out.ro.err")).unwrap();
    assert!(report.contains("full=1"), "{report}\n{full_err}");
    assert!(full_err.contains("No space left on device"), "{full_err}");
    assert!(full_err.contains(&*out.to_string_lossy()), "{full_err}");
    assert!(!report.contains("visible:"), "{report}");
    assert!(report.contains("read_only=1"), "{report}\n{ro_err}");
    assert!(ro_err.contains("Read-only file system"), "{ro_err}");
    assert!(report.contains("again=0"), "{report}");
    assert!(report.lines().any(|l| l.trim() == "r1"), "{report}");
}
