//! Running unattended: the run lock (on every backend), backfills, and what a scheduler sees.

use std::process::Command;
use std::time::Duration;

use object_store::{PutMode, PutOptions, PutPayload};
use tunelake::Error;
use tunelake::sinks::lock;
use tunelake::sinks::output::committed_runs;

use crate::fixture;
use crate::support::{Backend, location, succeed};

fn tunelake() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tunelake"))
}

/// Eight writers race for one run id: the conditional PUT lets exactly one in. Released, the lock
/// passes on; abandoned (holder killed: no heartbeat, no release), it expires one TTL later.
async fn one_writer_per_run_id(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = location(backend, "out", &dir);
    // What the lock rests on: the store refuses to create an object twice.
    let path = out.child("probe");
    let create = || {
        out.store.put_opts(
            &path,
            PutPayload::from_static(b"x"),
            PutOptions::from(PutMode::Create),
        )
    };
    create().await.unwrap();
    assert!(matches!(
        create().await,
        Err(object_store::Error::AlreadyExists { .. })
    ));

    let ttl = Duration::from_secs(60);
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let out = out.clone();
            tokio::spawn(async move { lock::acquire(&out, "r1", ttl).await })
        })
        .collect();
    let mut held = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(lock) => held.push(lock),
            Err(Error::RunLocked { run_id, owner, .. }) => {
                assert_eq!(run_id, "r1");
                assert!(owner.starts_with("pid "), "{owner}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((held.len(), refused), (1, 7));
    // Another run id is independent.
    lock::acquire(&out, "r2", ttl)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();

    held.pop().unwrap().release().await.unwrap();
    let second = lock::acquire(&out, "r1", ttl).await.unwrap();
    second.confirm().await.unwrap();
    drop(second);
    assert!(matches!(
        lock::acquire(&out, "r1", ttl).await,
        Err(Error::RunLocked { .. })
    ));

    let short = Duration::from_secs(3);
    drop(lock::acquire(&out, "r3", short).await.unwrap());
    assert!(lock::acquire(&out, "r3", short).await.is_err());
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    let taken_over = lock::acquire(&out, "r3", short).await.unwrap();
    taken_over.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_run_id_on_local_disk() {
    one_writer_per_run_id(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_run_id_on_s3() {
    one_writer_per_run_id(Backend::S3).await;
}

/// A holder whose heartbeat keeps it alive past its TTL is not taken over, and a holder that was
/// taken over cannot commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_long_run_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = location(Backend::Local, "out", &dir);
    let ttl = Duration::from_secs(3);
    let held = lock::acquire(&out, "long", ttl).await.unwrap();
    tokio::time::sleep(ttl * 2).await;
    assert!(matches!(
        lock::acquire(&out, "long", ttl).await,
        Err(Error::RunLocked { .. })
    ));
    held.confirm().await.unwrap();
    held.release().await.unwrap();
}

/// Writes the fixture lake and a pipeline file over it; returns the pipeline's path and the output.
fn fixture_pipeline(dir: &tempfile::TempDir) -> (std::path::PathBuf, tunelake::storage::Location) {
    let (lake_url, lake) = location(Backend::Local, "lake", dir);
    let (out_url, out) = location(Backend::Local, "out", dir);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fixture::write(&lake));
    let pipeline = dir.path().join("pipeline.toml");
    std::fs::write(&pipeline, fixture::pipeline_toml(&lake_url, &out_url)).unwrap();
    (pipeline, out)
}

/// `run` of a run id another process holds exits 75 at once, naming the holder, and writes
/// nothing; once the lock is released the same command commits.
#[test]
fn a_locked_run_id_exits_75_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, out) = fixture_pipeline(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = rt
        .block_on(lock::acquire(&out, "daily", Duration::from_secs(60)))
        .unwrap();
    let run = || {
        let mut command = tunelake();
        command
            .args(["--log", "warn", "run", "--run-id", "daily"])
            .arg(&pipeline);
        command
    };
    let refused = run().output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("run daily is already running (pid "),
        "{stderr}"
    );
    assert!(rt.block_on(committed_runs(&out)).unwrap().is_empty());
    assert!(!dir.path().join("out/runs").exists());

    rt.block_on(held.release()).unwrap();
    succeed(&mut run());
    assert_eq!(rt.block_on(committed_runs(&out)).unwrap(), vec!["daily"]);
}

/// `backfill` runs each day as the daily schedule would (run id YYYYMMDD), skips committed days
/// unless `--force`, reports locked days and exits 75 when only locks kept it from finishing. The
/// fixture lake has corrupt files on some days, so the days run with `--skip-bad-files`.
#[test]
fn backfill_runs_each_day_once() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, out) = fixture_pipeline(&dir);
    let backfill = |from: &str, to: &str, extra: &[&str]| {
        let output = tunelake()
            .args([
                "--log",
                "warn",
                "backfill",
                "--json",
                "--skip-bad-files",
                "--from",
                from,
                "--to",
                to,
            ])
            .args(extra)
            .arg(&pipeline)
            .output()
            .unwrap();
        let days: Vec<serde_json::Value> = match output.stdout.is_empty() {
            true => Vec::new(),
            false => serde_json::from_slice(&output.stdout).unwrap(),
        };
        let outcomes: Vec<(String, String)> = days
            .iter()
            .map(|d| {
                (
                    d["run_id"].as_str().unwrap().to_string(),
                    d["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (output.status.code(), outcomes)
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };

    let (code, days) = backfill("2026-11-09", "2026-11-10", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        days,
        pairs(&[("20261109", "committed"), ("20261110", "committed")])
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = rt
        .block_on(lock::acquire(&out, "20261111", Duration::from_secs(60)))
        .unwrap();
    let (code, days) = backfill("2026-11-09", "2026-11-11", &[]);
    assert_eq!(code, Some(75));
    assert_eq!(
        days,
        pairs(&[
            ("20261109", "already_committed"),
            ("20261110", "already_committed"),
            ("20261111", "locked"),
        ])
    );
    rt.block_on(held.release()).unwrap();

    let (code, days) = backfill("2026-11-10", "2026-11-11", &["--force"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        days,
        pairs(&[("20261110", "committed"), ("20261111", "committed")])
    );
    assert_eq!(
        rt.block_on(committed_runs(&out)).unwrap(),
        vec!["20261109", "20261110", "20261111"]
    );

    let (code, _) = backfill("2026-11-11", "2026-11-10", &[]);
    assert_eq!(code, Some(2), "--from after --to is a usage error");
}

/// The shipped Airflow DAG as Airflow 3 loads it (a `DagBag` from `apache-airflow` on PyPI): no
/// import error, no deprecation warning, one run at a time. Its task's command, rendered for a
/// logical date, then runs here and commits that day.
#[test]
fn the_airflow_dag_parses_and_its_command_commits_the_day() {
    let python = std::env::var("TUNELAKE_TEST_AIRFLOW_PYTHON").expect(
        "TUNELAKE_TEST_AIRFLOW_PYTHON is not set: run the tests with `bash .ci/run`, which installs \
         apache-airflow in .ci/.airflow-venv",
    );
    let airflow_home = tempfile::tempdir().unwrap();
    let script = r#"
import json, sys, warnings
from airflow.dag_processing.dagbag import DagBag
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
assert not bag.captured_warnings, bag.captured_warnings
deprecated = [str(w.message) for w in caught if "deprecat" in str(w.message).lower()]
assert not deprecated, deprecated
dag = bag.dags["tunelake_daily"]
task = dag.get_task("tunelake_run")
print(json.dumps({"max_active_runs": dag.max_active_runs, "retries": task.retries,
                  "operator": type(task).__module__, "command": task.bash_command}))
"#;
    let output = succeed(
        Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/airflow"))
            .env("AIRFLOW_HOME", airflow_home.path())
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dag: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(dag["max_active_runs"], 1);
    assert_eq!(dag["retries"], 2);
    assert_eq!(dag["operator"], "airflow.providers.standard.operators.bash");

    // The command as Airflow renders it for logical date 2026-11-10, on the fixture lake.
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, out) = fixture_pipeline(&dir);
    let command = dag["command"]
        .as_str()
        .unwrap()
        .replace("{{ ds }}", "2026-11-10")
        .replace("{{ ds_nodash }}", "20261110");
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("tunelake"));
    let args: Vec<String> = words
        .map(|w| match w.ends_with(".toml") {
            true => pipeline.to_string_lossy().into_owned(),
            false => w.to_string(),
        })
        .collect();
    succeed(tunelake().args(&args));
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(committed_runs(&out)).unwrap(), vec!["20261110"]);
}
