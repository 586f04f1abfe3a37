//! The `tunelake` binary as a user runs it: exit codes, messages, and outputs other tools can read.

use std::process::Command;

use crate::fixture;
use crate::support::{Backend, location, succeed};

fn tunelake() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tunelake"))
}

#[test]
fn unknown_keys_are_rejected_with_their_name_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "[run]\nlake = \"l\"\nout = \"o\"\nperiod_dayz = 3\n").unwrap();
    let output = tunelake().arg("validate").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `period_dayz`"), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
}

/// `validate` refuses what the simulator would refuse, as a configuration error (exit 2) naming the
/// key: a knob out of range, an option value out of range, an unknown GPU, a model that does not fit.
#[test]
fn values_the_engine_rejects_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let supply = |gpu: &str, model: &str, tp: u32, config: &str, options: &str| {
        format!(
            "[run]\nlake = \"l\"\nout = \"o\"\n[[supplies]]\nid = \"s\"\nengine = \"vllm\"\n\
             model = \"{model}\"\ngpu = \"{gpu}\"\ngpus_per_replica = {tp}\n\
             price = {{ per_gpu_hour = 2.0 }}\nslo = {{ p95_ttft_ms = 500, p95_tpot_ms = 50 }}\n\
             config = {{ {config} }}\noptions = {{ {options} }}\n"
        )
    };
    for (text, key) in [
        (
            supply("H100-SXM", "Llama-3.1-8B", 1, "max_num_seqs = 0", ""),
            "supplies[s].config.max_num_seqs",
        ),
        (
            supply(
                "H100-SXM",
                "Llama-3.1-8B",
                1,
                "",
                "gpu_memory_utilization = [0.9, 1.2]",
            ),
            "supplies[s].options.gpu_memory_utilization",
        ),
        (
            supply("H1000", "Llama-3.1-8B", 1, "", ""),
            "supplies[s].gpu",
        ),
        (
            supply("H100-SXM", "Llama-3.1-70B", 1, "", ""),
            "supplies[s]",
        ),
    ] {
        std::fs::write(&path, &text).unwrap();
        let output = tunelake().arg("validate").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}\n{stderr}");
        assert!(stderr.contains(key), "{key} not in: {stderr}");
    }
    std::fs::write(
        &path,
        supply(
            "H100-SXM",
            "Llama-3.1-8B",
            1,
            "max_num_seqs = 64",
            "max_num_seqs = [32, 128]",
        ),
    )
    .unwrap();
    succeed(tunelake().arg("validate").arg(&path));
}

#[test]
fn run_writes_tables_that_pyarrow_and_duckdb_read() {
    let dir = tempfile::tempdir().unwrap();
    let (lake_url, lake) = location(Backend::Local, "lake", &dir);
    let (out_url, _) = location(Backend::Local, "out", &dir);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fixture::write(&lake));
    let pipeline = dir.path().join("pipeline.toml");
    std::fs::write(&pipeline, fixture::pipeline_toml(&lake_url, &out_url)).unwrap();
    let output = succeed(
        tunelake()
            .args(["run", "--run-id", "cli", "--json", "--log-format", "json"])
            .arg(&pipeline),
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["requests"]["rows_valid"], fixture::VALID_REQUESTS);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first_log: serde_json::Value =
        serde_json::from_str(stderr.lines().next().unwrap()).expect("JSON logs");
    assert!(first_log["fields"]["message"].is_string());

    // The tables as analysts read them: pyarrow (pandas' engine) and DuckDB, hive partitions included.
    let python = std::env::var("TUNELAKE_TEST_PYTHON").expect(
        "TUNELAKE_TEST_PYTHON is not set: run the tests with `bash .ci/run`, which provides a Python \
         with pyarrow and duckdb",
    );
    let script = format!(
        r#"
import pyarrow.dataset as ds, duckdb
t = ds.dataset("{out}/features_hourly", format="parquet", partitioning="hive").to_table()
assert t.num_rows > 0 and str(t.schema.field("hour").type) == "timestamp[us, tz=UTC]", t.schema
assert t.column("run_id").to_pylist()[0] == "cli"
n = duckdb.sql("select sum(requests) from read_parquet('{out}/features_hourly/*/*/*.parquet', hive_partitioning=true) where run_id = 'cli'").fetchall()[0][0]
assert n == {valid}, n
q = duckdb.sql("select reason, count(*) from read_parquet('{out}/quarantine/*/*/*.parquet') group by 1").fetchall()
assert len(q) == 7, q
# A run caught half-written (its tables there, no row in `runs`): the README's committed-only query
# does not see it.
import shutil
shutil.copytree("{out}/features_hourly/run_date=2026-11-10/run_id=cli", "{out}/features_hourly/run_date=2026-11-10/run_id=dead")
committed = duckdb.sql("""
  select run_id, sum(requests) from read_parquet('{out}/features_hourly/*/*/*.parquet', hive_partitioning = true)
  where run_id in (select run_id from read_parquet('{out}/runs/*.parquet')) group by 1""").fetchall()
assert committed == [("cli", {valid})], committed
runs = duckdb.sql("select run_id, run_date, window_end from read_parquet('{out}/runs/*.parquet')").fetchall()
assert [(r[0], str(r[1])) for r in runs] == [("cli", "2026-11-10")], runs
print("ok")
"#,
        out = out_url,
        valid = fixture::VALID_REQUESTS
    );
    succeed(Command::new(python).arg("-c").arg(script));
}

/// `simulate` on a real trace: the Azure conversation trace, imported with `tunelake import`.
#[test]
fn simulate_replays_the_azure_conversation_trace() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let azure = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/datasets/azure-llm-2023/AzureLLMInferenceTrace_conv.csv"
    );
    let status = tunelake()
        .args(["import", "azure", azure, "--out"])
        .arg(&lake)
        .status()
        .unwrap();
    assert!(status.success());
    let supply = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pipelines/demo.toml#chat-llama8b-h100"
    );
    let output = succeed(
        tunelake()
            .args([
                "simulate",
                "--json",
                "--supply",
                supply,
                "--set",
                "replicas=1",
                "--trace",
            ])
            .arg(lake.join("requests")),
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["requests"], 19366);
    assert_eq!(report["finished"], 19366);
    // One hour of traffic: the makespan is the trace's span plus the last requests' service.
    let makespan = report["makespan_s"].as_f64().unwrap();
    assert!((3000.0..4000.0).contains(&makespan), "{makespan}");

    let bad = tunelake()
        .args([
            "simulate",
            "--supply",
            supply,
            "--set",
            "block_size=zero",
            "--trace",
        ])
        .arg(lake.join("requests"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("block_size"));
}

/// The README's main command on the bundled demo lake: recommendations, snippets and report.json
/// under the run's atomic commit, tables readable by DuckDB.
#[test]
fn demo_run_writes_recommendations_snippets_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = succeed(
        tunelake()
            .args(["run", "--run-id", "demo", "--out"])
            .arg(&out),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("[chat-llama8b-h100] recommended"),
        "{stdout}"
    );
    let run = out.join("_runs/run_id=demo");
    assert!(run.join("_SUCCESS").exists());
    let report: tunelake::recommend::Analysis =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    // One per supply, a response cache for each of the three apps that repeat prompts, a raised
    // output cap for the two apps whose responses are cut (rag, and the hosted summariser), and
    // the batch API for the night-time summariser, a capacity plan for each searched supply (one
    // replica, reserved), and router weights moving the summariser's classes from the hosted API
    // to the 8B supply's spare capacity, and the fleet's monthly budget. Its 150-token shared instruction is below the provider's
    // prompt-cache minimum, the generator plants no incident, and the demo's load is too light for
    // a schedule to beat one configuration: no prompt-caching, alert or schedule recommendation.
    assert_eq!(report.recommendations.len(), 4 + 3 + 2 + 1 + 3 + 1 + 1);
    for r in &report.recommendations {
        assert!(uuid::Uuid::parse_str(&r.recommendation_id).is_ok());
        assert!(!r.analysis_summary.is_empty());
    }
    // Every supply, the hosted one included, gets something a person can apply.
    for supply in [
        "chat-llama8b-h100",
        "rag-llama70b-h100",
        "code-llama70b-a100",
        "summarize-gpt4o-mini",
    ] {
        assert!(
            report
                .recommendations
                .iter()
                .any(|r| r.target_supply_id == supply
                    && r.recommended_config_snippet
                        .as_object()
                        .is_some_and(|o| !o.is_empty())),
            "{supply} has no applicable recommendation"
        );
    }
    for file in [
        "snippets/chat-llama8b-h100/vllm.sh",
        "snippets/chat-llama8b-h100/openai.json",
        "snippets/code-llama70b-a100/vllm.sh",
        "snippets/summarize-gpt4o-mini/openai.py",
    ] {
        assert!(run.join(file).exists(), "{file}");
    }
    let python = std::env::var("TUNELAKE_TEST_PYTHON").expect("run the tests with `bash .ci/run`");
    let script = format!(
        r#"
import duckdb
r = duckdb.sql("select count(*), count(distinct status) from read_parquet('{out}/recommendations/*/*/*.parquet')").fetchall()[0]
assert r[0] == 4, r
s = duckdb.sql("select count(*) from read_parquet('{out}/simulations/*/*/*.parquet') where feasible").fetchall()[0][0]
p = duckdb.sql("select count(*) from read_parquet('{out}/pareto/*/*/*.parquet')").fetchall()[0][0]
assert s > 0 and p > 0, (s, p)
print("ok")
"#,
        out = out.display()
    );
    succeed(Command::new(&python).arg("-c").arg(script));

    // report.html in a real browser: loads with no error and no fetch, every chart drawn.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("## `chat-llama8b-h100`: change recommended"),
        "{md}"
    );
    let chromium = std::env::var("TUNELAKE_TEST_CHROMIUM").expect(
        "TUNELAKE_TEST_CHROMIUM is not set: run the tests with `bash .ci/run`, which installs Chromium",
    );
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let checked = succeed(
        Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/integration/report_browser.py"
            ))
            .arg(chromium)
            .arg(run.join("report.html"))
            .arg(&screenshot),
    );
    let seen: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["requests"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["copy_label"], "Copied", "{seen}");
    let charts = seen["charts"].as_array().unwrap();
    // Three searched supplies × (frontier, TTFT, TPOT, hourly load), the hosted one's hourly
    // load, and the fleet's class mix and backtest.
    assert_eq!(charts.len(), 3 * 4 + 1 + 2, "{seen}");
    for size in charts {
        assert!(
            size[0].as_f64().unwrap() > 100.0 && size[1].as_f64().unwrap() > 100.0,
            "{seen}"
        );
    }
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

/// Runs `tunelake ARGS` and returns its exit code and stderr.
fn fails(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = tunelake().args(args).output().unwrap();
    assert!(!output.status.success());
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A name the catalog lacks is the pipeline file's fault: exit 2, naming the file and the name.
#[test]
fn an_unknown_gpu_or_model_in_a_pipeline_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    for (gpu, model, unknown) in [
        ("H1000", "llama-3.1-8b", "unknown GPU `H1000`"),
        ("h100-sxm", "llama-9", "unknown model `llama-9`"),
    ] {
        let path = dir.path().join("p.toml");
        let toml = fixture::pipeline_toml("lake", "out")
            .replace("\"h100-sxm\"", &format!("\"{gpu}\""))
            .replace("\"llama-3.1-8b\"", &format!("\"{model}\""));
        std::fs::write(&path, toml).unwrap();
        let (code, stderr) = fails(&["validate".as_ref(), path.as_os_str()]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(unknown), "{stderr}");
        assert!(stderr.contains("p.toml"), "{stderr}");
    }
}

/// `simulate`: an unknown GPU in `--set` or supply is bad usage (2); a corrupted trace fails the
/// command (1), naming the file.
#[test]
fn simulate_exit_codes_tell_bad_usage_from_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("p.toml");
    std::fs::write(&pipeline, fixture::pipeline_toml("lake", "out")).unwrap();
    let supply = format!("{}#llama-h100", pipeline.display());
    let corrupted = dir.path().join("corrupted.parquet");
    std::fs::write(&corrupted, "not parquet").unwrap();
    let run = |set: &str| {
        fails(&[
            "simulate".as_ref(),
            "--supply".as_ref(),
            supply.as_ref(),
            "--set".as_ref(),
            set.as_ref(),
            "--trace".as_ref(),
            corrupted.as_os_str(),
        ])
    };
    let (code, stderr) = run("gpu=H1000");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unknown GPU `H1000`"), "{stderr}");
    let (code, stderr) = run("gpu=h100-sxm");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("corrupted.parquet"), "{stderr}");
    let nobody = format!("{}#nobody", pipeline.display());
    let (code, stderr) = fails(&[
        "simulate".as_ref(),
        "--supply".as_ref(),
        nobody.as_ref(),
        "--trace".as_ref(),
        corrupted.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no supply `nobody`"), "{stderr}");
}
