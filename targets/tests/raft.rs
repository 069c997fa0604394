//! raft-kv on real local clusters: durability across a leader crash, no commits in a minority,
//! and each planted bug shown against the same scenario without it.
//!
//! Elections use 150 ms timeouts and requests 1 s, so every test takes seconds. Assertions are
//! only ever about what Raft guarantees (or what a bug deterministically breaks), never about
//! timing-dependent details such as whether a cut-off write is `fail` or `unknown`.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use targets::protocol::{NodeStatus, Op, Reply};

const LIMIT: Duration = Duration::from_secs(15);

fn flags(election_ms: u64, bug: Option<&str>) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--election-timeout-ms",
        &election_ms.to_string(),
        "--heartbeat-ms",
        "30",
        "--request-timeout-ms",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(bug) = bug {
        flags.extend(["--bug".to_string(), bug.to_string()]);
    }
    flags
}

async fn start(n: usize, bug: Option<&str>) -> Cluster {
    start_with(n, move |_| flags(150, bug)).await
}

/// Starts a raft-kv cluster, trying again if a node could not bind its ports. (The support code
/// picks free ports before the nodes bind them, so a link proxy or another test can take one in
/// between; `Cluster::start` may then even see the port "listening" when it is not our node.)
async fn start_with(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
    let flags: Vec<Vec<String>> = (0..n).map(extra).collect();
    for attempt in 1.. {
        let per_node = flags.clone();
        let started = tokio::spawn(async move {
            Cluster::start("raft-kv", n, move |i| per_node[i].clone()).await
        });
        let cluster = match started.await {
            Ok(cluster) => cluster,
            Err(e) if e.is_panic() && attempt < 3 => {
                eprintln!("cluster start failed (attempt {attempt}), retrying");
                continue;
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        // Every node logs this line once both of its listeners are bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs: Vec<String> = (0..n).map(|i| cluster.log_of(i)).collect();
            if logs.iter().all(|log| log.contains("raft-kv starting")) {
                return cluster;
            }
            let failed = logs.iter().any(|log| log.contains("cannot listen"));
            if failed && attempt < 3 {
                eprintln!("a node could not bind its port (attempt {attempt}), retrying");
                break;
            }
            assert!(
                !failed && Instant::now() < deadline,
                "the cluster did not start\n{}",
                self::logs(&cluster)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    unreachable!("the loop returns or panics")
}

fn put(key: &str, value: Value) -> Op {
    Op::Put {
        key: key.into(),
        value,
    }
}

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

fn is_ok(reply: &Reply) -> bool {
    matches!(reply, Reply::Ok { .. })
}

fn logs(cluster: &Cluster) -> String {
    (0..cluster.nodes.len())
        .map(|i| format!("--- {} ---\n{}", cluster.nodes[i].id, cluster.log_of(i)))
        .collect()
}

/// The node that most recently became leader (highest term), from the nodes' logs.
fn latest_leader(cluster: &Cluster) -> Option<(usize, u64)> {
    const MARK: &str = "became leader for term ";
    let mut best: Option<(usize, u64)> = None;
    for i in 0..cluster.nodes.len() {
        for line in cluster.log_of(i).lines() {
            let Some(at) = line.find(MARK) else { continue };
            let digits: String = line[at + MARK.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let term: u64 = digits.parse().expect("a term after the mark");
            if best.is_none_or(|(_, t)| term > t) {
                best = Some((i, term));
            }
        }
    }
    best
}

/// The current leader once the cluster has committed something (call after a successful write).
fn leader(cluster: &Cluster) -> usize {
    latest_leader(cluster)
        .unwrap_or_else(|| panic!("no leader in the logs\n{}", logs(cluster)))
        .0
}

/// Retries `op` on `nodes` in turn until one answers ok.
async fn ok_via(cluster: &Cluster, nodes: &[usize], op: Op) -> Value {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < LIMIT {
        for &i in nodes {
            match cluster.call(i, op.clone()).await {
                Reply::Ok { value } => return value,
                other => last.push((i, other)),
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let tail = &last[last.len().saturating_sub(6)..];
    panic!(
        "{op:?} never ok via {nodes:?}; last replies {tail:?}\n{}",
        logs(cluster)
    );
}

/// A linearizable get through node `i` (retried until it answers ok).
async fn read_at(cluster: &Cluster, i: usize, key: &str) -> Value {
    ok_via(cluster, &[i], get(key)).await
}

fn others(n: usize, except: &[usize]) -> Vec<usize> {
    (0..n).filter(|i| !except.contains(i)).collect()
}

#[tokio::test]
async fn writes_survive_a_leader_kill_and_restart() {
    let mut cluster = start(3, None).await;
    let all = [0, 1, 2];
    for k in 0..5 {
        ok_via(&cluster, &all, put(&format!("k{k}"), json!(k))).await;
    }
    let old = leader(&cluster);
    cluster.kill(old);
    let rest = others(3, &[old]);
    for k in 5..10 {
        ok_via(&cluster, &rest, put(&format!("k{k}"), json!(k))).await;
    }
    // Overwrite one of the first keys while the old leader is down.
    ok_via(&cluster, &rest, put("k0", json!("new"))).await;
    cluster.restart(old).await;
    for i in all {
        for k in 0..10 {
            let want = if k == 0 { json!("new") } else { json!(k) };
            let got = read_at(&cluster, i, &format!("k{k}")).await;
            assert_eq!(got, want, "k{k} via n{}\n{}", i + 1, logs(&cluster));
        }
    }
    // Now kill a node other than the restarted one: every majority includes the restarted node,
    // so what it recovered from disk and caught up on is what serves the reads.
    let victim = others(3, &[old])[0];
    cluster.kill(victim);
    let rest = others(3, &[victim]);
    for k in 0..10 {
        let want = if k == 0 { json!("new") } else { json!(k) };
        let got = ok_via(&cluster, &rest, get(&format!("k{k}"))).await;
        assert_eq!(
            got,
            want,
            "k{k} with n{} down\n{}",
            victim + 1,
            logs(&cluster)
        );
    }
    ok_via(&cluster, &rest, put("after", json!(true))).await;
}

/// Every node's answer to `status` (panics on anything but a well-formed ok).
async fn statuses(cluster: &Cluster) -> Vec<NodeStatus> {
    let mut all = Vec::new();
    for i in 0..cluster.nodes.len() {
        match cluster.call(i, Op::Status).await {
            Reply::Ok { value } => all.push(NodeStatus::from_value(&value).unwrap()),
            other => panic!("status of n{}: {other:?}\n{}", i + 1, logs(cluster)),
        }
    }
    all
}

#[tokio::test]
async fn status_names_one_leader_that_the_followers_know() {
    let cluster = start(3, None).await;
    ok_via(&cluster, &[0, 1, 2], put("k", json!(1))).await;
    let started = Instant::now();
    loop {
        let all = statuses(&cluster).await;
        for (i, status) in all.iter().enumerate() {
            assert_eq!(status.id, cluster.nodes[i].id);
            assert!(
                ["leader", "follower", "candidate"].contains(&status.role.as_str()),
                "{status:?}"
            );
        }
        let leaders: Vec<&NodeStatus> = all.iter().filter(|s| s.role == "leader").collect();
        if let [leader] = leaders[..] {
            let agreed = all
                .iter()
                .all(|s| s.leader.as_deref() == Some(leader.id.as_str()) && s.term == leader.term);
            if agreed {
                assert!(leader.is_primary());
                assert_eq!(all.iter().filter(|s| s.is_primary()).count(), 1);
                return;
            }
        }
        assert!(
            started.elapsed() < LIMIT,
            "no single agreed leader: {all:?}\n{}",
            logs(&cluster)
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn a_cas_that_fails_its_compare_is_a_definite_fail() {
    let cluster = start(3, None).await;
    let all = [0, 1, 2];
    ok_via(&cluster, &all, put("c", json!(1))).await;
    let cas = |from, to| Op::Cas {
        key: "c".into(),
        from,
        to,
    };
    ok_via(&cluster, &all, cas(json!(1), json!(2))).await;
    // Through a follower too: forwarding relays the leader's definite answer.
    let follower = others(3, &[leader(&cluster)])[0];
    let reply = cluster.call(follower, cas(json!(1), json!(3))).await;
    assert!(matches!(reply, Reply::Fail { .. }), "{reply:?}");
    assert_eq!(ok_via(&cluster, &all, get("c")).await, json!(2));
    assert_eq!(ok_via(&cluster, &all, get("missing")).await, Value::Null);
}

/// 5 nodes split 2|3 with the leader on the 2 side: writes sent to the minority (the old leader
/// appends them, a follower forwards to it) never return ok, the majority elects a leader and
/// keeps going, and after healing no node ever shows the minority's writes: they were never on a
/// majority, so the new leader's log replaces them.
#[tokio::test]
async fn a_minority_cannot_commit() {
    let cluster = start(5, None).await;
    let all = [0, 1, 2, 3, 4];
    ok_via(&cluster, &all, put("k", json!("before"))).await;
    let old = leader(&cluster);
    let buddy = others(5, &[old])[0];
    let minority = [old, buddy];
    let majority = others(5, &minority);
    cluster.partition(&minority, &majority);
    let via_leader = cluster.call(old, put("k", json!("minority-leader"))).await;
    let via_follower = cluster
        .call(buddy, put("k", json!("minority-follower")))
        .await;
    assert!(!is_ok(&via_leader), "{via_leader:?}");
    assert!(!is_ok(&via_follower), "{via_follower:?}");
    ok_via(&cluster, &majority, put("k", json!("majority"))).await;
    assert_eq!(
        ok_via(&cluster, &majority, get("k")).await,
        json!("majority")
    );
    cluster.heal();
    for i in all {
        assert_eq!(
            read_at(&cluster, i, "k").await,
            json!("majority"),
            "via n{}",
            i + 1
        );
    }
    // Still so a little later, once the old leader has certainly caught up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in all {
        assert_eq!(
            read_at(&cluster, i, "k").await,
            json!("majority"),
            "via n{}",
            i + 1
        );
    }
}

/// Isolates a follower after it has applied `v0`, writes `v1` through the majority, and returns
/// what a get at the isolated follower answered.
async fn read_at_isolated_follower(bug: Option<&str>) -> Reply {
    let cluster = start(3, bug).await;
    ok_via(&cluster, &[0, 1, 2], put("k", json!("v0"))).await;
    let follower = others(3, &[leader(&cluster)])[0];
    // Let the follower learn that v0 committed (with stale-read, its local reads show it).
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.isolate(follower);
    ok_via(&cluster, &others(3, &[follower]), put("k", json!("v1"))).await;
    let reply = cluster.call(follower, get("k")).await;
    if bug.is_none() {
        // (With the bug, a get anywhere but the leader may be stale too.)
        let majority = others(3, &[follower]);
        assert_eq!(ok_via(&cluster, &majority, get("k")).await, json!("v1"));
    }
    reply
}

#[tokio::test]
async fn stale_read_bug_serves_a_stale_value_from_an_isolated_follower() {
    let reply = read_at_isolated_follower(Some("stale-read")).await;
    assert_eq!(
        reply,
        Reply::ok(json!("v0")),
        "the bug should serve the stale value"
    );
}

#[tokio::test]
async fn without_stale_read_an_isolated_follower_serves_no_stale_value() {
    let reply = read_at_isolated_follower(None).await;
    assert!(
        !is_ok(&reply),
        "an isolated follower answered a get: {reply:?}"
    );
}

/// Isolates the leader after `v0`, sets its clock back a minute, lets the others elect a leader
/// and write `v1`, waits past the old leader's real lease, and returns what a get at the old
/// leader answered.
async fn read_at_deposed_leader(bug: Option<&str>) -> Reply {
    let cluster = start(3, bug).await;
    ok_via(&cluster, &[0, 1, 2], put("k", json!("v0"))).await;
    let old = leader(&cluster);
    cluster.isolate(old);
    let isolated_at = Instant::now();
    // After the isolation, so the lease was granted by the true clock and now looks 60 s long.
    cluster.skew_clock(old, -60_000);
    let rest = others(3, &[old]);
    ok_via(&cluster, &rest, put("k", json!("v1"))).await;
    // Past the lease by the true clock: only the skew keeps it alive.
    let lease = Duration::from_millis(250 + 300); // the default --lease-ms, and a margin
    if let Some(wait) = lease.checked_sub(isolated_at.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    let reply = cluster.call(old, get("k")).await;
    assert_eq!(ok_via(&cluster, &rest, get("k")).await, json!("v1"));
    reply
}

#[tokio::test]
async fn lease_read_bug_lets_a_deposed_leader_with_a_slow_clock_serve_stale_values() {
    let reply = read_at_deposed_leader(Some("lease-read")).await;
    assert_eq!(
        reply,
        Reply::ok(json!("v0")),
        "the bug should serve the stale value"
    );
}

#[tokio::test]
async fn without_lease_read_a_deposed_leader_serves_no_stale_value() {
    let reply = read_at_deposed_leader(None).await;
    assert!(!is_ok(&reply), "a deposed leader answered a get: {reply:?}");
}

/// n1 and n3 time out fast, n2 slowly. With n1 or n3 leading, the other (S) is isolated while
/// `v1` commits on the leader and n2; S's term climbs as it keeps campaigning. Then the leader is
/// cut off and S rejoins n2: S campaigns long before n2's own timer fires, so S wins exactly when
/// n2 grants votes without the up-to-date check, and S's log (without `v1`) then overwrites n2's.
/// Returns the value of `k` read through S and n2 afterwards, and whether n2 logged that its
/// committed entries were overwritten.
async fn elect_a_stale_node(bug: Option<&str>) -> (Value, bool) {
    let cluster = start_with(3, |i| flags(if i == 1 { 1000 } else { 150 }, bug)).await;
    ok_via(&cluster, &[0, 1, 2], put("k", json!("v0"))).await;
    let old = leader(&cluster);
    assert_ne!(
        old,
        1,
        "n2 has the slow timer; n1 or n3 should lead\n{}",
        logs(&cluster)
    );
    let stale = if old == 0 { 2 } else { 0 };
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.isolate(stale);
    ok_via(&cluster, &[old, 1], put("k", json!("v1"))).await;
    // The stale node campaigns every 150-300 ms: its term passes the others' by several.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    cluster.heal();
    cluster.isolate(old);
    let value = ok_via(&cluster, &[stale, 1], get("k")).await;
    (value, cluster.log_of(1).contains("SAFETY VIOLATION"))
}

#[tokio::test]
async fn lost_vote_bug_elects_a_stale_node_and_loses_a_committed_write() {
    let (value, overwritten) = elect_a_stale_node(Some("lost-vote")).await;
    assert_eq!(
        value,
        json!("v0"),
        "the committed write v1 should have been lost"
    );
    assert!(
        overwritten,
        "n2 should have seen its committed entries overwritten"
    );
}

#[tokio::test]
async fn without_lost_vote_a_committed_write_survives() {
    let (value, overwritten) = elect_a_stale_node(None).await;
    assert_eq!(value, json!("v1"));
    assert!(!overwritten);
}

/// Not a regular test: 6 clients run random get/put/cas (unique written values) on 10 keys of a
/// 5-node cluster for `RAFT_STRESS_SECS` (15) seconds while a nemesis isolates the leader (with
/// or without setting its clock back), splits 2|3, or kills and restarts a node or the leader.
/// The history goes to the file `RAFT_HISTORY`, for
/// `fissure check --model cas-register --init null`; `RAFT_BUG` plants a bug. Run with
/// `cargo test -p targets --test raft stress_history -- --ignored`.
#[tokio::test]
#[ignore]
async fn stress_history() {
    use rand::Rng;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    let path = std::env::var("RAFT_HISTORY").expect("RAFT_HISTORY");
    let bug = std::env::var("RAFT_BUG").ok().filter(|b| !b.is_empty());
    let mut cluster = start(5, bug.as_deref()).await;
    let addrs: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.client_addr.clone())
        .collect();
    let history = Arc::new(Mutex::new((std::fs::File::create(&path).unwrap(), 0u64)));
    let started = Instant::now();
    let secs = std::env::var("RAFT_STRESS_SECS").map_or(15, |s| s.parse().unwrap());
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..6u64 {
        let (addrs, history) = (addrs.clone(), history.clone());
        tasks.push(tokio::spawn(async move {
            let mut process = worker;
            let mut seen: std::collections::HashMap<String, Value> = Default::default();
            let mut counter = 0u64;
            let log = |event: Value| {
                let mut h = history.lock().unwrap();
                h.1 += 1;
                let mut event = event;
                event["index"] = json!(h.1);
                event["time"] = json!(started.elapsed().as_nanos() as u64);
                writeln!(h.0, "{event}").unwrap();
            };
            while Instant::now() < stop {
                let (node, key, kind) = {
                    let mut rng = rand::thread_rng();
                    (
                        rng.gen_range(0..addrs.len()),
                        format!("k{}", rng.gen_range(0..10)),
                        rng.gen_range(0..3),
                    )
                };
                counter += 1;
                // Unique written values, so a write wrongly answered fail shows in later reads.
                let b = json!(worker * 1_000_000 + counter);
                let a = seen.get(&key).cloned().unwrap_or(Value::Null);
                let (f, op, value) = match kind {
                    0 => ("read", get(&key), Value::Null),
                    1 => ("write", put(&key, b.clone()), b.clone()),
                    _ => (
                        "cas",
                        Op::Cas {
                            key: key.clone(),
                            from: a.clone(),
                            to: b.clone(),
                        },
                        json!([a, b]),
                    ),
                };
                let n = format!("n{}", node + 1);
                let event = |kind: &str, value: &Value| {
                    json!({"process": process, "type": kind, "f": f, "key": key,
                           "value": value, "node": n})
                };
                log(event("invoke", &value));
                let mut client = targets::client::Client::new(addrs[node].clone());
                let reply = client.call(op, Duration::from_secs(3)).await;
                let (kind, out) = match &reply {
                    Reply::Ok { value: v } if f == "read" => {
                        seen.insert(key.clone(), v.clone());
                        ("ok", v.clone())
                    }
                    Reply::Ok { .. } => ("ok", value.clone()),
                    Reply::Fail { .. } => ("fail", value.clone()),
                    Reply::Unknown { .. } => ("info", value.clone()),
                };
                log(event(kind, &out));
                if kind == "info" {
                    process += 100;
                }
            }
        }));
    }
    let mut rounds = 0u64;
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_millis(800)).await;
        rounds += 1;
        let choice = rand::thread_rng().gen_range(0..6);
        cluster.heal();
        for i in 0..5 {
            cluster.skew_clock(i, 0);
        }
        match choice {
            0 => {
                if let Some((l, _)) = latest_leader(&cluster) {
                    cluster.isolate(l)
                }
            }
            1 => cluster.partition(&[0, 1], &[2, 3, 4]),
            2 => {
                let victim = rand::thread_rng().gen_range(0..5);
                cluster.kill(victim);
                tokio::time::sleep(Duration::from_millis(300)).await;
                cluster.restart(victim).await;
            }
            3 => {
                if let Some((l, _)) = latest_leader(&cluster) {
                    cluster.kill(l);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    cluster.restart(l).await;
                }
            }
            4 => {
                if let Some((l, _)) = latest_leader(&cluster) {
                    cluster.isolate(l);
                    cluster.skew_clock(l, -60_000);
                }
            }
            _ => {}
        }
    }
    cluster.heal();
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("nemesis rounds: {rounds}");
}
