//! Load test of `tunelake serve` on loopback: `GET /v2/analysis/{id}` of a committed demo run
//! (authenticated, scope-checked, read from the run's folder) from 16 keep-alive connections for
//! 5 seconds. Prints requests per second and the p50 / p99 latency. Target (issue 12): at least
//! 2,000 req/s with p99 at most 20 ms on a 2-core machine.
//!
//! Run: `cargo bench --bench serve`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tunelake::catalog::Catalog;
use tunelake::config::Overrides;
use tunelake::serve::{Keys, ServeOptions, Server, bind, keys};

const CONNECTIONS: usize = 16;
const DURATION: Duration = Duration::from_secs(5);

/// Sends GETs of `path` on one keep-alive connection until `until`; returns each latency.
async fn client(addr: SocketAddr, path: String, key: String, until: Instant) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {key}\r\n\r\n");
    let mut latencies = Vec::new();
    let mut line = String::new();
    let mut body = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        write.write_all(request.as_bytes()).await.expect("send");
        let mut length = 0usize;
        let mut status_ok = false;
        loop {
            line.clear();
            read.read_line(&mut line).await.expect("head");
            if line == "\r\n" {
                break;
            }
            if line.starts_with("HTTP/1.1 200") {
                status_ok = true;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        assert!(status_ok, "a GET failed");
        body.resize(length, 0);
        read.read_exact(&mut body).await.expect("body");
        latencies.push(started.elapsed());
    }
    latencies
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let pipeline = dir.path().join("demo.toml");
        let text = std::fs::read_to_string(root.join("pipelines/demo.toml"))
            .expect("demo pipeline")
            .replace(
                "lake = \"../datasets/demo\"",
                &format!("lake = {:?}", root.join("datasets/demo").display().to_string()),
            )
            .replace(
                "out = \"../tunelake-out\"",
                &format!("out = {:?}", dir.path().join("out").display().to_string()),
            );
        std::fs::write(&pipeline, text).expect("write pipeline");
        let plan = tunelake::pipeline::load_plan(
            &pipeline,
            &Overrides {
                run_id: Some("bench".into()),
                ..Overrides::default()
            },
            &Catalog::bundled().expect("catalog"),
        )
        .expect("plan");
        let run = tunelake::pipeline::run(&plan, &()).await.expect("demo run");
        let (key, entry) = keys::create("bench", vec!["*".into()], u32::MAX).expect("key");
        let server = Server::new(ServeOptions {
            pipeline,
            keys: Keys::parse(&keys::entry_toml(&entry).expect("toml"), "bench").expect("keys"),
            request_timeout: Duration::from_secs(30),
            body_limit: 16 * 1024,
        })
        .await
        .expect("server");
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(server.run(listener, std::future::pending()));
        let path = format!("/v2/analysis/{}", run.analysis.analysis_id);
        let until = Instant::now() + DURATION;
        let started = Instant::now();
        let clients = (0..CONNECTIONS)
            .map(|_| tokio::spawn(client(addr, path.clone(), key.clone(), until)));
        let mut latencies: Vec<Duration> = futures::future::join_all(clients)
            .await
            .into_iter()
            .flat_map(|r| r.expect("client"))
            .collect();
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "serve/get_report: {} requests in {elapsed:.1} s over {CONNECTIONS} connections: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            latencies.len(),
            latencies.len() as f64 / elapsed,
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3
        );
    });
}
