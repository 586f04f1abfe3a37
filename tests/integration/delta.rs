//! Delta Lake output (`table_format = "delta"`), on local disk and on the S3 server: each run is one
//! commit per table, a re-run replaces its rows, and the Python `deltalake` package (what pandas,
//! Polars and DuckDB users reach Delta through) reads every table, each run and past versions.

use std::process::Command;

use tunelake::sinks::output::committed_runs;

use crate::fixture;
use crate::support::{Backend, location, plan_with, s3_endpoint, succeed};

async fn delta_output(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (lake_url, lake) = location(backend, "lake", &dir);
    let (out_url, out) = location(backend, "out", &dir);
    fixture::write(&lake).await;
    let text = fixture::pipeline_toml(&lake_url, &out_url).replacen(
        "[run]\n",
        "[run]\ntable_format = \"delta\"\n",
        1,
    );
    let path = dir.path().join("p.toml");
    for run_id in ["r1", "r1", "r2"] {
        let mut plan = plan_with(&path, &text, run_id);
        plan.s3_endpoint = Some(s3_endpoint()).filter(|_| matches!(backend, Backend::S3));
        tunelake::pipeline::run(&plan, &()).await.unwrap();
    }
    assert_eq!(committed_runs(&out).await.unwrap(), vec!["r1", "r2"]);

    let python = std::env::var("TUNELAKE_TEST_PYTHON").expect(
        "TUNELAKE_TEST_PYTHON is not set: run the tests with `bash .ci/run`, which provides a Python \
         with deltalake",
    );
    let options = match backend {
        Backend::Local => "{}".to_string(),
        Backend::S3 => format!(
            "{{'AWS_ENDPOINT_URL': '{}', 'AWS_ALLOW_HTTP': 'true', 'AWS_REGION': 'us-east-1', \
             'AWS_ACCESS_KEY_ID': 'testing', 'AWS_SECRET_ACCESS_KEY': 'testing'}}",
            s3_endpoint()
        ),
    };
    let script = format!(
        r#"
from deltalake import DeltaTable
import pyarrow.compute as pc
options = {options}
t = DeltaTable("{out}/features_hourly", storage_options=options)
assert t.metadata().partition_columns == ["run_date", "run_id"], t.metadata().partition_columns
rows = t.to_pyarrow_table()
for run in ("r1", "r2"):
    mine = rows.filter(pc.equal(rows["run_id"], run))
    assert pc.sum(mine["requests"]).as_py() == {valid}, (run, mine.num_rows)
# One commit per run: r1, r1 again (replacing its rows), r2.
history = t.history()
assert [h.get("tunelake.run_id") for h in history[:3]] == ["r2", "r1", "r1"], history
assert t.version() == 2, t.version()
# Time travel: version 0 holds the first run of r1 only.
first = DeltaTable("{out}/features_hourly", version=0, storage_options=options).to_pyarrow_table()
assert set(first["run_id"].to_pylist()) == {{"r1"}}
assert pc.sum(first["requests"]).as_py() == {valid}
runs = DeltaTable("{out}/runs", storage_options=options).to_pyarrow_table()
assert sorted(runs["run_id"].to_pylist()) == ["r1", "r2"], runs
q = DeltaTable("{out}/quarantine", storage_options=options).to_pyarrow_table()
assert q.filter(pc.equal(q["run_id"], "r2")).num_rows == 7
print("ok", flush=True)
# deltalake's and pyarrow's native threads can abort the interpreter's teardown ("terminate called
# without an active exception") after everything above has passed: leave without it.
import os
os._exit(0)
"#,
        out = out_url,
        valid = fixture::VALID_REQUESTS
    );
    succeed(Command::new(python).arg("-c").arg(script));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_output_on_local_disk() {
    delta_output(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_output_on_s3() {
    delta_output(Backend::S3).await;
}
