//! `cargo bench -p harness`: what the runner itself costs.
//!
//! - ops/s that `fissure run` records against the `echo` target (one node that answers at once:
//!   everything measured is harness, client, proxy and loopback) and against a 3-node raft-kv,
//!   both without faults, 10 processes, no rate limit;
//! - the same echo node driven by a bare loop of protocol clients (no generator, no history, no
//!   proxy), and by the same loop through one link proxy: the difference in latency per
//!   operation is the harness's overhead, and the second line says how much of it is the proxy;
//! - time from starting `fissure run` to its first operation.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use targets::client::Client;
use targets::protocol::{Op, Reply};

const SECONDS: u64 = 5;
const CONCURRENCY: usize = 10;

struct Measured {
    ops_per_s: f64,
    mean_latency_us: f64,
    p50_us: f64,
    p99_us: f64,
    first_op_ms: f64,
}

fn fissure_run(store: &Path, args: &[&str]) -> Measured {
    let out = Command::new(env!("CARGO_BIN_EXE_fissure"))
        .arg("run")
        .args(["--store", store.to_str().unwrap()])
        .args(["--nemesis", "none", "--recovery", "0s", "--rate", "1000000"])
        .args(["--time-limit", &format!("{SECONDS}s")])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("fissure runs");
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "fissure run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = store.join("latest");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let mut open = std::collections::HashMap::new();
    let mut latencies = Vec::new();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for line in history.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let time = event["time"].as_u64().unwrap();
        let Some(process) = event["process"].as_u64() else {
            continue;
        };
        if event["type"] == "invoke" {
            open.insert(process, time);
            first = first.min(time);
        } else if let Some(start) = open.remove(&process) {
            if event["type"] == "ok" {
                latencies.push(time - start);
                last = last.max(time);
            }
        }
    }
    latencies.sort_unstable();
    let span = (last - first) as f64 / 1e9;
    Measured {
        ops_per_s: latencies.len() as f64 / span,
        mean_latency_us: latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1e3,
        p50_us: latencies[latencies.len() / 2] as f64 / 1e3,
        p99_us: latencies[latencies.len() * 99 / 100] as f64 / 1e3,
        first_op_ms: results["run"]["first_op_ms"].as_f64().unwrap_or(f64::NAN),
    }
}

/// A bare loop of protocol clients against one echo node, no harness in between (optionally
/// through one of Fissure's link proxies, to tell the proxy's cost from the runner's).
fn bare_echo(dir: &Path, through_proxy: bool) -> Measured {
    let port = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (client_port, peer_port) = (port(0), port(1));
    let addr = format!("127.0.0.1:{client_port}");
    let mut node = Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(["node", "echo", "--id", "n1", "--listen", &addr])
        .args(["--peer-listen", &format!("127.0.0.1:{peer_port}")])
        .args([
            "--data-dir",
            dir.join(format!("echo-{through_proxy}")).to_str().unwrap(),
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(Instant::now() < deadline, "echo node did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let proxy = match through_proxy {
            true => Some(nuclei::link::LinkProxy::start(addr.clone()).await.unwrap()),
            false => None,
        };
        let target = proxy
            .as_ref()
            .map_or(addr.clone(), |p| p.addr().to_string());
        let started = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|i| {
                let addr = target.clone();
                tokio::spawn(async move {
                    let mut client = Client::new(addr);
                    let mut latencies = Vec::new();
                    let key = format!("r{i}");
                    while started.elapsed() < Duration::from_secs(SECONDS) {
                        let op = Op::Put {
                            key: key.clone(),
                            value: Value::from(latencies.len()),
                        };
                        let at = Instant::now();
                        let reply = client.call(op, Duration::from_secs(1)).await;
                        assert!(matches!(reply, Reply::Ok { .. }), "{reply:?}");
                        latencies.push(at.elapsed().as_nanos() as u64);
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        (all, started.elapsed())
    });
    let _ = node.kill();
    let _ = node.wait();
    let (mut latencies, elapsed) = result;
    latencies.sort_unstable();
    Measured {
        ops_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        mean_latency_us: latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1e3,
        p50_us: latencies[latencies.len() / 2] as f64 / 1e3,
        p99_us: latencies[latencies.len() * 99 / 100] as f64 / 1e3,
        first_op_ms: f64::NAN,
    }
}

fn main() {
    // `cargo bench` passes flags such as --bench; a filter word limits the cases.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let dir = tempfile::tempdir().unwrap();
    println!(
        "{:<34} {:>9} {:>10} {:>9} {:>9} {:>12}",
        "case", "ops/s", "mean µs", "p50 µs", "p99 µs", "first op ms"
    );
    let show = |name: &str, m: &Measured| {
        println!(
            "{name:<34} {:>9.0} {:>10.0} {:>9.0} {:>9.0} {:>12.0}",
            m.ops_per_s, m.mean_latency_us, m.p50_us, m.p99_us, m.first_op_ms
        );
    };
    let mut echo_pair = (None, None);
    if wanted("echo") {
        let bare = bare_echo(dir.path(), false);
        show("echo, bare client loop", &bare);
        show(
            "echo, bare loop via a link proxy",
            &bare_echo(dir.path(), true),
        );
        let store = dir.path().join("echo-store");
        let run = fissure_run(&store, &["--target", "echo", "--nodes", "1"]);
        show("echo, fissure run", &run);
        echo_pair = (Some(bare), Some(run));
    }
    if wanted("raft") {
        let store = dir.path().join("raft-store");
        let run = fissure_run(&store, &["--target", "raft-kv", "--nodes", "3"]);
        show("raft-kv 3 nodes, fissure run", &run);
    }
    if let (Some(bare), Some(run)) = echo_pair {
        let per_op = run.mean_latency_us - bare.mean_latency_us;
        println!(
            "harness overhead per operation (mean latency, fissure run - bare loop): {per_op:.0} µs"
        );
    }
}
