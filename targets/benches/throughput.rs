//! Throughput and latency of each `fissure-node` mode: 3 nodes on loopback, 10 concurrent
//! clients, a few seconds each. `cargo bench -p targets` prints ops/s and p50/p99/max latency by
//! outcome. Optional filter: `cargo bench -p targets -- raft` runs only matching modes.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use cluster::Cluster;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::{Duration, Instant};
use targets::protocol::{Op, Reply};

const CLIENTS: usize = 10;
const DURATION: Duration = Duration::from_secs(5);

struct Mode {
    name: &'static str,
    mode: &'static str,
    flags: fn(usize) -> Vec<String>,
    /// The next operation for a client, and which node to send it to.
    op: fn(&mut rand::rngs::StdRng) -> (Op, usize),
}

fn kv_op(rng: &mut rand::rngs::StdRng, with_cas: bool) -> (Op, usize) {
    let key = format!("k{}", rng.gen_range(0..8));
    let node = rng.gen_range(0..3);
    let op = match rng.gen_range(0..10) {
        0..=4 => Op::Get { key },
        5..=7 => Op::Put {
            key,
            value: json!(rng.gen_range(0..5)),
        },
        _ if with_cas => Op::Cas {
            key,
            from: json!(rng.gen_range(0..5)),
            to: json!(rng.gen_range(0..5)),
        },
        _ => Op::Get { key },
    };
    (op, node)
}

fn modes() -> Vec<Mode> {
    vec![
        Mode {
            name: "raft-kv (50% get, 30% put, 20% cas)",
            mode: "raft-kv",
            flags: |_| vec![],
            op: |rng| kv_op(rng, true),
        },
        Mode {
            name: "quorum N=3 R=2 W=2 (60% get, 40% put)",
            mode: "quorum",
            flags: |_| vec![],
            op: |rng| kv_op(rng, false),
        },
        Mode {
            name: "twopc (80% transfer, 20% read-all)",
            mode: "twopc",
            flags: |i| {
                let flags = match i {
                    0 => "--role coordinator".to_string(),
                    1 => "--role participant --coordinator n1 --accounts a,b".to_string(),
                    _ => "--role participant --coordinator n1 --accounts c,d".to_string(),
                };
                flags.split(' ').map(String::from).collect()
            },
            op: |rng| {
                let accounts = ["a", "b", "c", "d"];
                let op = if rng.gen_range(0..10) < 8 {
                    let from = accounts[rng.gen_range(0..4)];
                    let mut to = accounts[rng.gen_range(0..4)];
                    while to == from {
                        to = accounts[rng.gen_range(0..4)];
                    }
                    Op::Transfer {
                        from: from.into(),
                        to: to.into(),
                        amount: rng.gen_range(1..5),
                    }
                } else {
                    Op::ReadAll
                };
                (op, 0)
            },
        },
    ]
}

#[derive(Default)]
struct Tally {
    ok: u64,
    fail: u64,
    unknown: u64,
}

async fn run_mode(mode: &Mode) -> (Histogram<u64>, Tally, Duration) {
    let cluster = Cluster::start(mode.mode, 3, mode.flags).await;
    // Let elections settle before measuring.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| n.client_addr.clone())
            .collect();
        let next = mode.op;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
            let mut clients: Vec<_> = addrs.iter().map(targets::client::Client::new).collect();
            let mut latencies = Histogram::<u64>::new(3).expect("a histogram");
            let mut tally = Tally::default();
            while started.elapsed() < DURATION {
                let (op, node) = next(&mut rng);
                let sent = Instant::now();
                let reply = clients[node].call(op, Duration::from_secs(2)).await;
                let _ = latencies.record(sent.elapsed().as_micros() as u64);
                match reply {
                    Reply::Ok { .. } => tally.ok += 1,
                    Reply::Fail { .. } => tally.fail += 1,
                    Reply::Unknown { .. } => tally.unknown += 1,
                }
            }
            (latencies, tally)
        }));
    }
    let mut all = Histogram::<u64>::new(3).expect("a histogram");
    let mut total = Tally::default();
    for task in tasks {
        let (h, t) = task.await.expect("a client task");
        all.add(h).expect("histograms add");
        total.ok += t.ok;
        total.fail += t.fail;
        total.unknown += t.unknown;
    }
    let elapsed = started.elapsed();
    drop(cluster);
    (all, total, elapsed)
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    println!(
        "{:<40} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "mode (3 nodes, 10 clients)", "ops/s", "ok", "fail", "unknown", "p50 ms", "p99 ms"
    );
    for mode in modes() {
        if filter
            .as_ref()
            .is_some_and(|f| !mode.name.contains(f.as_str()))
        {
            continue;
        }
        let (latencies, tally, elapsed) = runtime.block_on(run_mode(&mode));
        let ops = tally.ok + tally.fail + tally.unknown;
        println!(
            "{:<40} {:>9.0} {:>8} {:>8} {:>9} {:>9.2} {:>9.2}",
            mode.name,
            ops as f64 / elapsed.as_secs_f64(),
            tally.ok,
            tally.fail,
            tally.unknown,
            latencies.value_at_quantile(0.5) as f64 / 1e3,
            latencies.value_at_quantile(0.99) as f64 / 1e3,
        );
    }
}
