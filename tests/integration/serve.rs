//! `tunelake serve` over real HTTP on loopback: every route, every error status, key scopes that
//! keep one app's analyses and downloads from another's key, one pipeline run for many identical
//! requests, and schemathesis fuzzing the OpenAPI document against the running server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tunelake::catalog::Catalog;
use tunelake::config::Overrides;
use tunelake::serve::{Keys, ServeOptions, Server, bind, keys};

/// An HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// De-chunks a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .expect("chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One HTTP/1.1 request on a fresh connection (what curl does by default).
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    if let Some(body) = body {
        stream.write_all(body).await.unwrap();
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    Reply {
        status,
        body: if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        },
        headers,
    }
}

/// The demo pipeline with its lake made absolute and its outputs under `dir`.
fn demo_pipeline(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("pipelines/demo.toml"))
        .unwrap()
        .replace(
            "lake = \"../datasets/demo\"",
            &format!(
                "lake = {:?}",
                root.join("datasets/demo").display().to_string()
            ),
        )
        .replace(
            "out = \"../tunelake-out\"",
            &format!("out = {:?}", dir.join("out").display().to_string()),
        );
    let path = dir.join("demo.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The value of `tunelake_analyses_total{outcome=...}` on `/metrics`.
async fn analyses(addr: SocketAddr, outcome: &str) -> u64 {
    let text = call(addr, "GET", "/metrics", &[], None).await.text();
    let prefix = format!("tunelake_analyses_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_serves_every_route_to_scoped_keys_and_runs_one_analysis_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = demo_pipeline(dir.path());
    // The nightly job's run: every app of the demo lake.
    let plan = tunelake::pipeline::load_plan(
        &pipeline,
        &Overrides {
            run_id: Some("nightly".into()),
            ..Overrides::default()
        },
        &Catalog::bundled().unwrap(),
    )
    .unwrap();
    let nightly = tunelake::pipeline::run(&plan, &()).await.unwrap();
    let nightly_id = nightly.analysis.analysis_id.clone();
    assert_eq!(nightly.apps, ["chat", "code", "rag", "summarize"]);

    let (admin, admin_entry) = keys::create("admin", vec!["*".into()], 100_000).unwrap();
    let (chat, chat_entry) = keys::create("chat-team", vec!["chat".into()], 100_000).unwrap();
    let (batch, batch_entry) = keys::create("batch", vec!["summarize".into()], 100_000).unwrap();
    let (slow, slow_entry) = keys::create("slow", vec!["chat".into()], 2).unwrap();
    let keys_path = dir.path().join("keys.toml");
    let mut keys_text = String::new();
    for entry in [&admin_entry, &chat_entry, &batch_entry, &slow_entry] {
        keys_text.push_str(&keys::entry_toml(entry).unwrap());
    }
    std::fs::write(&keys_path, &keys_text).unwrap();
    assert!(
        !keys_text.contains(&admin),
        "the keys file stores hashes only"
    );

    let server = Server::new(ServeOptions {
        pipeline: pipeline.clone(),
        keys: Keys::load(&keys_path).unwrap(),
        request_timeout: Duration::from_secs(600),
        body_limit: 16 * 1024,
    })
    .await
    .unwrap();
    let listener = bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));

    let key = |k: &str| [("X-API-Key", k.to_string())];
    let get = |path: String, k: &str| {
        let headers = key(k);
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            call(addr, "GET", &path, &h, None).await
        }
    };
    let post = |body: String, k: &str, extra: Option<(&'static str, &'static str)>| {
        let headers = key(k);
        async move {
            let mut h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            h.extend(extra);
            call(
                addr,
                "POST",
                "/v2/analysis/system_recommendations",
                &h,
                Some(body.as_bytes()),
            )
            .await
        }
    };

    // Open routes.
    let health = call(addr, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    let openapi = call(addr, "GET", "/openapi.json", &[], None).await.json();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/v2/analysis/system_recommendations"]["post"].is_object());
    assert_eq!(call(addr, "GET", "/nowhere", &[], None).await.status, 404);

    // 401 without a key or with a wrong one.
    let nightly_path = format!("/v2/analysis/{nightly_id}");
    assert_eq!(
        call(addr, "GET", &nightly_path, &[], None).await.status,
        401
    );
    assert_eq!(get(nightly_path.clone(), "tl_wrong").await.status, 401);

    // The admin reads the nightly analysis and every download.
    let report = get(nightly_path.clone(), &admin).await;
    assert_eq!(report.status, 200, "{}", report.text());
    // Compared as parsed JSON on both sides: text → f64 may differ from the run's own f64 by an ulp.
    let written = serde_json::to_string(&nightly.analysis).unwrap();
    assert_eq!(
        report.json(),
        serde_json::from_str::<serde_json::Value>(&written).unwrap()
    );
    let html = get(format!("{nightly_path}/report.html"), &admin).await;
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        html.header("content-disposition")
            .unwrap()
            .contains("report.html")
    );
    assert!(html.text().contains("<svg"));
    let md = get(format!("{nightly_path}/report.md"), &admin).await;
    assert_eq!(md.status, 200);
    assert!(md.text().contains("## `chat-llama8b-h100`"));
    assert!(
        md.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    let snippet = get(
        format!("{nightly_path}/snippets/chat-llama8b-h100/vllm.sh"),
        &admin,
    )
    .await;
    assert_eq!(snippet.status, 200);
    assert!(snippet.text().contains("vllm serve"));
    let parquet = get(
        format!("{nightly_path}/tables/recommendations.parquet"),
        &admin,
    )
    .await;
    assert_eq!(parquet.status, 200);
    assert!(parquet.body.starts_with(b"PAR1"));
    let csv = get(format!("{nightly_path}/tables/recommendations.csv"), &admin).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.text().lines().count(), 5, "a header and four supplies");
    assert_eq!(
        get(format!("{nightly_path}/tables/nope.parquet"), &admin)
            .await
            .status,
        404
    );
    assert_eq!(
        get(format!("{nightly_path}/tables/recommendations.txt"), &admin)
            .await
            .status,
        400
    );
    assert_eq!(
        get(
            format!("{nightly_path}/snippets/chat-llama8b-h100/nope.sh"),
            &admin
        )
        .await
        .status,
        404
    );
    // No way out of the run's folder.
    for path in [
        format!("{nightly_path}/snippets/..%2F..%2F_SUCCESS/x"),
        format!("{nightly_path}/snippets/chat-llama8b-h100/..%2Fmanifest.json"),
        format!("{nightly_path}/snippets/chat-llama8b-h100/.."),
    ] {
        assert_eq!(get(path.clone(), &admin).await.status, 400, "{path}");
    }
    assert_eq!(
        get("/v2/analysis/not-a-uuid".into(), &admin).await.status,
        400
    );
    assert_eq!(
        get(
            "/v2/analysis/00000000-0000-8000-8000-000000000000".into(),
            &admin
        )
        .await
        .status,
        404
    );

    // A key scoped to chat cannot read the nightly run (it holds every app) nor its downloads.
    for path in [
        nightly_path.clone(),
        format!("{nightly_path}/report.html"),
        format!("{nightly_path}/report.md"),
        format!("{nightly_path}/snippets/chat-llama8b-h100/vllm.sh"),
        format!("{nightly_path}/tables/recommendations.csv"),
    ] {
        assert_eq!(get(path.clone(), &chat).await.status, 403, "{path}");
    }
    let listed = get("/v2/analyses".into(), &chat).await.json();
    assert_eq!(listed["total"], 0, "{listed}");
    // Nor analyse another app.
    let other = post(r#"{"app_ids": ["chat", "rag"]}"#.into(), &chat, None).await;
    assert_eq!(other.status, 403);
    assert!(other.text().contains("rag"));

    // Malformed and out-of-range bodies, named.
    for (body, status, field) in [
        ("{", 400, "body"),
        (r#"{"analysis_period_days": 7}"#, 400, "app_ids"),
        (r#"{"app_ids": "chat"}"#, 400, "app_ids"),
        (r#"{"app_ids": ["chat"], "period": 7}"#, 400, "period"),
        (
            r#"{"app_ids": ["chat"], "analysis_period_days": -1}"#,
            400,
            "analysis_period_days",
        ),
        (r#"{"app_ids": []}"#, 422, "app_ids"),
        (
            r#"{"app_ids": ["chat"], "analysis_period_days": 0}"#,
            422,
            "analysis_period_days",
        ),
        (
            r#"{"app_ids": ["chat"], "analysis_period_days": 100000000}"#,
            422,
            "analysis_period_days",
        ),
        // The demo lake holds 7 days.
        (
            r#"{"app_ids": ["chat"], "analysis_period_days": 8}"#,
            422,
            "analysis_period_days",
        ),
    ] {
        let reply = post(body.into(), &chat, None).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
        assert_eq!(reply.json()["field"], field, "{body}");
    }
    let huge = format!(r#"{{"app_ids": ["{}"]}}"#, "x".repeat(20_000));
    assert_eq!(post(huge, &chat, None).await.status, 413);

    // Rate limit: the third request within a minute of a 2-per-minute key.
    for _ in 0..2 {
        assert_eq!(get("/v2/analyses".into(), &slow).await.status, 200);
    }
    let limited = get("/v2/analyses".into(), &slow).await;
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );

    // The chat team's analysis: the same code path as `run`, committed, readable by its key.
    let mine = post(
        r#"{"app_ids": ["chat"], "analysis_period_days": 7}"#.into(),
        &chat,
        None,
    )
    .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    let mine = mine.json();
    let targets: Vec<&str> = mine["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target_supply_id"].as_str().unwrap())
        .collect();
    // The engine recommendation, the response cache, the capacity plan and the cost budget, all
    // for the supply serving chat.
    assert_eq!(
        targets, ["chat-llama8b-h100"; 4],
        "only the supply serving chat"
    );
    let mine_id = mine["analysis_id"].as_str().unwrap().to_string();
    assert_eq!(
        get(format!("/v2/analysis/{mine_id}"), &chat).await.json(),
        mine
    );
    assert_eq!(
        get(format!("/v2/analysis/{mine_id}/report.md"), &chat)
            .await
            .status,
        200
    );
    let listed = get("/v2/analyses?per_page=1".into(), &chat).await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["analyses"][0]["analysis_id"], mine_id.as_str());
    assert_eq!(
        listed["analyses"][0]["app_ids"],
        serde_json::json!(["chat"])
    );
    let all = get("/v2/analyses?per_page=1".into(), &admin).await.json();
    assert_eq!(all["total"], 2);
    assert_eq!(all["next_page"], 2);
    assert_eq!(
        get("/v2/analyses?per_page=0".into(), &admin).await.status,
        422
    );
    assert_eq!(get("/v2/analyses?page=x".into(), &admin).await.status, 400);
    // Asked again: answered from the committed run.
    let cached_before = analyses(addr, "cached").await;
    let again = post(
        r#"{"app_ids": ["chat"], "analysis_period_days": 7}"#.into(),
        &chat,
        None,
    )
    .await;
    assert_eq!(again.json(), mine);
    assert_eq!(analyses(addr, "cached").await, cached_before + 1);

    // 50 identical requests at once (one asking to respond async) run one analysis.
    let completed_before = analyses(addr, "completed").await;
    let body = r#"{"app_ids": ["summarize"], "analysis_period_days": 3}"#;
    let first = post(body.into(), &batch, Some(("Prefer", "respond-async"))).await;
    assert_eq!(first.status, 202, "{}", first.text());
    let location = first.header("location").unwrap().to_string();
    let waiting = (0..49).map(|_| post(body.into(), &batch, None));
    let answers = futures::future::join_all(waiting).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["analysis_id"], first.json()["analysis_id"]);
    }
    assert_eq!(analyses(addr, "completed").await, completed_before + 1);
    let polled = get(location, &batch).await;
    assert_eq!(polled.status, 200);
    assert_eq!(polled.json(), answers[0].json());

    // An analysis that outlasts the request timeout answers 202 and goes on; a server beside the
    // first one, on the same runs, times out at once.
    let impatient = Server::new(ServeOptions {
        pipeline: pipeline.clone(),
        keys: Keys::load(&keys_path).unwrap(),
        request_timeout: Duration::from_millis(1),
        body_limit: 16 * 1024,
    })
    .await
    .unwrap();
    let listener = bind("127.0.0.1:0").await.unwrap();
    let impatient_addr = listener.local_addr().unwrap();
    tokio::spawn(impatient.run(listener, std::future::pending()));
    let body = r#"{"app_ids": ["summarize"], "analysis_period_days": 2}"#;
    let headers = [("X-API-Key", batch.as_str())];
    let late = call(
        impatient_addr,
        "POST",
        "/v2/analysis/system_recommendations",
        &headers,
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(late.status, 202, "{}", late.text());
    let location = late.header("location").unwrap().to_string();
    let mut finished = None;
    for _ in 0..600 {
        let polled = get(location.clone(), &batch).await;
        if polled.status == 200 {
            finished = Some(polled);
            break;
        }
        assert_eq!(polled.status, 404, "{}", polled.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        finished.expect("the analysis finished").json()["analysis_id"],
        late.json()["analysis_id"]
    );

    let metrics = call(addr, "GET", "/metrics", &[], None).await.text();
    assert!(metrics.contains(
        "tunelake_http_requests_total{method=\"GET\",route=\"/v2/analysis/{analysis_id}\",status=\"403\"}"
    ));
    assert!(!metrics.contains(&admin) && !metrics.contains(&chat));

    schemathesis(addr, &batch, dir.path());
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

/// schemathesis fuzzes every operation of `/openapi.json` against the running server: no 5xx,
/// statuses, content types and bodies as documented.
fn schemathesis(addr: SocketAddr, key: &str, workdir: &Path) {
    let python = std::env::var("TUNELAKE_TEST_PYTHON").expect(
        "TUNELAKE_TEST_PYTHON is not set: run the tests with `bash .ci/run`, which installs schemathesis",
    );
    let st = Path::new(&python).with_file_name("st");
    // Run in `workdir`: schemathesis keeps a cache folder in its working directory.
    let output = std::process::Command::new(&st)
        .current_dir(workdir)
        .args(["run", &format!("http://{addr}/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--header",
            &format!("X-API-Key: {key}"),
            "--max-examples",
            "30",
            "--seed",
            "42",
            "--no-color",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", st.display()));
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
