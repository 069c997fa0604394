//! The quorum target on real three-node clusters: durability, the R/W promise under a partition,
//! and each planted bug's effect next to the same scenario without it.

mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::cluster::Cluster;
use targets::protocol::{Op, Reply};
use tokio::time::Instant;

const TIMEOUT_MS: &str = "300";

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

fn put(key: &str, value: Value) -> Op {
    Op::Put {
        key: key.into(),
        value,
    }
}

/// A three-node cluster with short request timeouts, every node running `bug` and `extra`.
async fn cluster(bug: Option<&str>, extra: &[&str]) -> Cluster {
    let mut flags: Vec<String> = vec!["--request-timeout-ms".into(), TIMEOUT_MS.into()];
    if let Some(bug) = bug {
        flags.extend(["--bug".to_string(), bug.to_string()]);
    }
    flags.extend(extra.iter().map(|s| s.to_string()));
    // `Cluster::start` picks free ports by binding and releasing them, so with many clusters
    // starting at once a port is now and then taken before a node binds it: the node exits, and
    // `start` either panics or, when the thief listens on it, believes the node is up. That is
    // the test support's race, not the target's: check every node logged that it is up, and
    // start again otherwise.
    for attempt in 1.. {
        let flags = flags.clone();
        let started = tokio::spawn(Cluster::start("quorum", 3, move |_| flags.clone())).await;
        let cluster = match started {
            Ok(cluster) => cluster,
            Err(e) if attempt < 3 && e.is_panic() => continue,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        if all_up(&cluster).await || attempt == 3 {
            return cluster;
        }
    }
    unreachable!()
}

/// Whether every node of `cluster` has logged that it is serving (rather than an error).
async fn all_up(cluster: &Cluster) -> bool {
    let started = Instant::now();
    for i in 0..cluster.nodes.len() {
        loop {
            let log = cluster.log_of(i);
            if log.contains("quorum node up") {
                break;
            }
            if log.contains("error:") || started.elapsed() > Duration::from_secs(5) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    true
}

#[track_caller]
fn ok_value(reply: Reply) -> Value {
    match reply {
        Reply::Ok { value } => value,
        other => panic!("expected ok, got {other:?}"),
    }
}

async fn assert_reads(cluster: &Cluster, nodes: &[usize], key: &str, expected: Value) {
    for &i in nodes {
        let reply = cluster.call(i, get(key)).await;
        assert_eq!(
            reply,
            Reply::ok(expected.clone()),
            "get {key} through n{}; log:\n{}",
            i + 1,
            cluster.log_of(i)
        );
    }
}

#[tokio::test]
async fn basic_put_get_everywhere_and_survive_restarts() {
    let mut cluster = cluster(None, &[]).await;
    assert_reads(&cluster, &[0, 1, 2], "x", Value::Null).await;
    ok_value(cluster.call(0, put("x", json!("a"))).await);
    assert_reads(&cluster, &[0, 1, 2], "x", json!("a")).await;
    ok_value(cluster.call(2, put("x", json!({"b": [1, 2]}))).await);
    assert_reads(&cluster, &[0, 1, 2], "x", json!({"b": [1, 2]})).await;

    let cas = Op::Cas {
        key: "x".into(),
        from: json!("a"),
        to: json!("c"),
    };
    match cluster.call(1, cas).await {
        Reply::Fail { error } => assert!(error.contains("compare-and-set"), "{error}"),
        other => panic!("cas must fail: {other:?}"),
    }
    let transfer = Op::Transfer {
        from: "a".into(),
        to: "b".into(),
        amount: 1,
    };
    assert!(matches!(
        cluster.call(1, transfer).await,
        Reply::Fail { .. }
    ));
    assert!(matches!(
        cluster.call(1, Op::ReadAll).await,
        Reply::Fail { .. }
    ));

    // SIGKILL one node and bring it back: it serves and accepts writes at once, and the others
    // reach it again despite their pooled connections to the dead process.
    cluster.restart(1).await;
    assert_reads(&cluster, &[1], "x", json!({"b": [1, 2]})).await;
    ok_value(cluster.call(1, put("y", json!(7))).await);
    ok_value(cluster.call(0, put("z", json!(8))).await);

    // Every node SIGKILLed: nothing survives but what the replicas fsync'd.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.restart(i).await;
    }
    assert_reads(&cluster, &[0, 1, 2], "x", json!({"b": [1, 2]})).await;
    assert_reads(&cluster, &[2, 0], "y", json!(7)).await;
    assert_reads(&cluster, &[1], "z", json!(8)).await;
}

/// With R = 1 a get through a node decides on that node's own replica (its answer is always
/// counted first), so reading through a restarted node shows what its disk kept.
#[tokio::test]
async fn a_restarted_replica_serves_its_own_durable_data() {
    let mut cluster = cluster(None, &["--r", "1", "--w", "3"]).await;
    ok_value(cluster.call(0, put("k", json!("durable"))).await);
    cluster.restart(1).await;
    assert_reads(&cluster, &[1], "k", json!("durable")).await;

    // W = 3 with a replica down: phase 2 cannot reach W, but the value is on the live replicas.
    cluster.kill(2);
    let reply = cluster.call(0, put("k", json!("maybe"))).await;
    assert!(matches!(reply, Reply::Unknown { .. }), "{reply:?}");
    cluster.restart(2).await;
    // The unknown put is on n1 and n2 only. A read through n1 sees it and, W being 3, writes it
    // back to all three before answering, so from then on every node reads it, n3 included.
    assert_reads(&cluster, &[0, 2, 1], "k", json!("maybe")).await;
}

/// One operation as a client saw it.
#[derive(Clone, Copy, Debug)]
struct Observed {
    invoke: Instant,
    complete: Instant,
    value: i64,
}

/// Checks reads against writes of `initial + 1`, `initial + 2`, ... issued one after another (each
/// acknowledged) on top of `initial`. For a register with one sequential writer that is exactly
/// linearizability: every read returns a value no older than the last write completed before it
/// started and no newer than the last write started before it ended, and reads never go back in
/// real time.
fn check_single_writer(initial: i64, writes: &[Observed], reads: &[Observed]) {
    for r in reads {
        let lo = writes
            .iter()
            .filter(|w| w.complete < r.invoke)
            .map(|w| w.value)
            .max()
            .unwrap_or(initial);
        let hi = writes
            .iter()
            .filter(|w| w.invoke < r.complete)
            .map(|w| w.value)
            .max()
            .unwrap_or(initial);
        assert!(
            (lo..=hi).contains(&r.value),
            "read {r:?} returned {} but only {lo}..={hi} were possible",
            r.value
        );
    }
    for a in reads {
        for b in reads {
            assert!(
                !(a.complete < b.invoke && b.value < a.value),
                "stale read: {b:?} after {a:?}"
            );
        }
    }
}

#[test]
fn the_single_writer_check_rejects_what_is_not_linearizable() {
    let t0 = Instant::now();
    let at = |a: u64, b: u64, value: i64| Observed {
        invoke: t0 + Duration::from_millis(a),
        complete: t0 + Duration::from_millis(b),
        value,
    };
    let writes = [at(0, 10, 1), at(20, 30, 2)];
    // Concurrent with the second write, a read may see either value.
    check_single_writer(0, &writes, &[at(5, 8, 0), at(12, 25, 1), at(22, 28, 2)]);
    let caught = |reads: Vec<Observed>| {
        std::panic::catch_unwind(|| check_single_writer(0, &writes, &reads)).is_err()
    };
    assert!(caught(vec![at(31, 40, 1)]), "a stale read");
    assert!(caught(vec![at(11, 15, 2)]), "a read from the future");
    assert!(
        caught(vec![at(21, 23, 2), at(24, 26, 1)]),
        "a new-old inversion"
    );
}

/// One writer puts `key` = `initial + 1 ..= initial + count` in turn through `nodes`, while one
/// reader per node reads it until the writer is done. Every operation must be `ok`; the history is
/// then checked for linearizability.
async fn single_writer_workload(cluster: &Arc<Cluster>, nodes: &[usize], initial: i64, count: i64) {
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cluster, done) = (cluster.clone(), done.clone());
        let mut clients: Vec<_> = nodes.iter().map(|&i| cluster.client(i)).collect();
        tokio::spawn(async move {
            let mut writes = Vec::new();
            for value in initial + 1..=initial + count {
                let n = clients.len();
                let client = &mut clients[value as usize % n];
                let invoke = Instant::now();
                let reply = client
                    .call(put("r", json!(value)), Duration::from_secs(3))
                    .await;
                assert_eq!(
                    reply,
                    Reply::ok_empty(),
                    "put {value} through {}",
                    client.addr()
                );
                writes.push(Observed {
                    invoke,
                    complete: Instant::now(),
                    value,
                });
            }
            done.store(true, Ordering::SeqCst);
            writes
        })
    };
    let readers: Vec<_> = nodes
        .iter()
        .map(|&i| {
            let (mut client, done) = (cluster.client(i), done.clone());
            tokio::spawn(async move {
                let mut reads = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    let invoke = Instant::now();
                    let reply = client.call(get("r"), Duration::from_secs(3)).await;
                    let value = ok_value(reply).as_i64().expect("an integer");
                    reads.push(Observed {
                        invoke,
                        complete: Instant::now(),
                        value,
                    });
                }
                reads
            })
        })
        .collect();
    let writes = writer.await.unwrap();
    let mut reads = Vec::new();
    for reader in readers {
        reads.extend(reader.await.unwrap());
    }
    assert!(reads.len() >= nodes.len(), "readers ran: {reads:?}");
    check_single_writer(initial, &writes, &reads);
}

#[tokio::test]
async fn concurrent_clients_of_a_healthy_cluster_see_a_linearizable_register() {
    let cluster = Arc::new(cluster(None, &[]).await);
    ok_value(cluster.call(0, put("r", json!(0))).await);
    single_writer_workload(&cluster, &[0, 1, 2], 0, 40).await;
}

#[tokio::test]
async fn an_isolated_node_never_acknowledges_and_the_majority_stays_linearizable() {
    let cluster = Arc::new(cluster(None, &[]).await);
    ok_value(cluster.call(0, put("r", json!(0))).await);
    cluster.isolate(2);
    // The isolated node refuses both kinds of operation: it cannot reach R replicas, so a put
    // never gets to phase 2 (a certain `fail`) and a get cannot answer.
    let prober = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut client = cluster.client(2);
            for round in 0..2 {
                let reply = client
                    .call(put("r", json!(100 + round)), Duration::from_secs(3))
                    .await;
                assert!(
                    matches!(reply, Reply::Fail { .. }),
                    "isolated put: {reply:?}"
                );
                let reply = client.call(get("r"), Duration::from_secs(3)).await;
                assert!(
                    matches!(reply, Reply::Fail { .. }),
                    "isolated get: {reply:?}"
                );
            }
        })
    };
    // Meanwhile the two connected nodes serve everything, linearizably.
    const WRITES: i64 = 40;
    single_writer_workload(&cluster, &[0, 1], 0, WRITES).await;
    prober.await.unwrap();

    // After healing, the messages the partition held back arrive in a burst, so under load a
    // first try can still time out; but any `ok` must carry the latest value.
    cluster.heal();
    for i in [2, 0, 1] {
        let started = Instant::now();
        loop {
            match cluster.call(i, get("r")).await {
                Reply::Ok { value } => {
                    assert_eq!(value, json!(WRITES), "get through n{} after heal", i + 1);
                    break;
                }
                other if started.elapsed() > Duration::from_secs(3) => {
                    panic!("no ok through n{} after heal: {other:?}", i + 1)
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Isolates n3 after a first write through it, writes through the majority, then asks the
/// isolated node to read and to write. Returns those two replies.
async fn isolated_node_scenario(bug: Option<&str>) -> (Reply, Reply) {
    let cluster = cluster(bug, &[]).await;
    ok_value(cluster.call(2, put("s", json!("old"))).await);
    cluster.isolate(2);
    ok_value(cluster.call(0, put("s", json!("new"))).await);
    let read = cluster.call(2, get("s")).await;
    let write = cluster.call(2, put("s", json!("isolated"))).await;
    (read, write)
}

#[tokio::test]
async fn sloppy_quorum_bug_lets_an_isolated_node_acknowledge_and_read_stale() {
    let (read, write) = isolated_node_scenario(Some("sloppy-quorum")).await;
    assert_eq!(read, Reply::ok(json!("old")), "a stale read, acknowledged");
    assert_eq!(
        write,
        Reply::ok_empty(),
        "a write no majority holds, acknowledged"
    );
}

#[tokio::test]
async fn without_sloppy_quorum_an_isolated_node_acknowledges_nothing() {
    let (read, write) = isolated_node_scenario(None).await;
    assert!(matches!(read, Reply::Fail { .. }), "{read:?}");
    assert!(matches!(write, Reply::Fail { .. }), "{write:?}");
}

/// n1's clock runs a minute behind. x=1 is written through n2, then, after that completed, x=2
/// through n1. Returns what each node then reads.
async fn slow_clock_scenario(bug: Option<&str>) -> Vec<Reply> {
    let cluster = cluster(bug, &[]).await;
    cluster.skew_clock(0, -60_000);
    // Nodes re-read their clock offset file at most every 50 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cluster.call(1, put("x", json!(1))).await, Reply::ok_empty());
    assert_eq!(cluster.call(0, put("x", json!(2))).await, Reply::ok_empty());
    let mut reads = Vec::new();
    for i in [2, 0, 1] {
        reads.push(cluster.call(i, get("x")).await);
    }
    reads
}

#[tokio::test]
async fn lww_wallclock_bug_loses_a_write_from_a_node_with_a_slow_clock() {
    let reads = slow_clock_scenario(Some("lww-wallclock")).await;
    assert_eq!(
        reads,
        vec![Reply::ok(json!(1)); 3],
        "x=2 was acknowledged, then lost"
    );
}

#[tokio::test]
async fn without_lww_wallclock_the_later_write_wins_whatever_the_clocks() {
    let reads = slow_clock_scenario(None).await;
    assert_eq!(reads, vec![Reply::ok(json!(2)); 3]);
}
