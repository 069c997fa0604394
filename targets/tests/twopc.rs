//! twopc on real local clusters: n1 the coordinator, n2 holding a1,a2 and n3 holding a3,a4, every
//! account starting at 100 (total 400). Node state is inspected through the diagnostic
//! `inspect` peer message sent straight to a node's peer address (bypassing the link proxies,
//! so partitions do not hide it).

mod support;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use targets::protocol::{Balances, Op, Reply};
use targets::rpc::Peer;
use targets::twopc::messages::{Answer, Msg, Status};

const ACCOUNTS: [&str; 4] = ["a1", "a2", "a3", "a4"];
const TOTAL: i64 = 400;

async fn start(coordinator: &[&str], n2: &[&str], n3: &[&str]) -> Cluster {
    let flags = |base: &[&str], extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let participant = |accounts| {
        [
            "--role",
            "participant",
            "--coordinator",
            "n1",
            "--accounts",
            accounts,
        ]
    };
    let per_node = vec![
        flags(&["--role", "coordinator"], coordinator),
        flags(&participant("a1,a2"), n2),
        flags(&participant("a3,a4"), n3),
    ];
    // `Cluster::start` picks ports by binding and closing them, so another test (or a link
    // proxy on an ephemeral port) can take one before the node binds it. Retry a cluster whose
    // nodes are not all really ours.
    for attempt in 1..=3 {
        let per_node = per_node.clone();
        let started =
            tokio::spawn(
                async move { Cluster::start("twopc", 3, move |i| per_node[i].clone()).await },
            )
            .await;
        match started {
            Ok(cluster) if all_ours(&cluster).await => return cluster,
            Ok(_) => eprintln!("attempt {attempt}: a node is not up (port taken?); retrying"),
            Err(e) => eprintln!("attempt {attempt}: cluster did not start ({e}); retrying"),
        }
    }
    panic!("no twopc cluster came up in 3 attempts");
}

/// Whether every node answers as itself on both its addresses.
async fn all_ours(cluster: &Cluster) -> bool {
    for i in 0..cluster.nodes.len() {
        let mut ok = false;
        for _ in 0..50 {
            let reply = cluster.call(i, Op::Get { key: "k".into() }).await;
            let is_twopc =
                matches!(&reply, Reply::Fail { error } if error.contains("twopc serves"));
            let status = inspect(cluster, i).await;
            if is_twopc && status.is_some_and(|s| s.id == cluster.nodes[i].id) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !ok {
            return false;
        }
    }
    true
}

fn transfer(from: &str, to: &str, amount: i64) -> Op {
    Op::Transfer {
        from: from.into(),
        to: to.into(),
        amount,
    }
}

/// A node's diagnostics, asked directly at its peer address.
async fn inspect(cluster: &Cluster, i: usize) -> Option<Status> {
    let node = &cluster.nodes[i];
    let peer = Peer::new(node.id.clone(), node.peer_addr.clone());
    match peer
        .call::<_, Answer>(&Msg::Inspect, Duration::from_millis(500))
        .await
    {
        Ok(Answer::Status { status }) => Some(status),
        _ => None,
    }
}

/// Waits until node i's status satisfies `done`.
async fn wait_status(
    cluster: &Cluster,
    i: usize,
    limit: Duration,
    what: &str,
    done: impl Fn(&Status) -> bool,
) -> Status {
    let started = Instant::now();
    loop {
        let status = inspect(cluster, i).await;
        if let Some(status) = status.filter(|s| done(s)) {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "n{} never got to: {what} within {limit:?}; last status {:?}; log:\n{}",
            i + 1,
            inspect(cluster, i).await,
            cluster.log_of(i)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until no participant holds a prepared transaction and the coordinator has delivered
/// every decision.
async fn settle(cluster: &Cluster, limit: Duration) {
    wait_status(cluster, 1, limit, "nothing prepared", |s| {
        s.prepared.is_empty()
    })
    .await;
    wait_status(cluster, 2, limit, "nothing prepared", |s| {
        s.prepared.is_empty()
    })
    .await;
    wait_status(cluster, 0, limit, "every decision delivered", |s| {
        s.live.is_empty()
    })
    .await;
}

fn balances_of(reply: &Reply) -> Balances {
    match reply {
        Reply::Ok { value } => serde_json::from_value(value.clone()).expect("read-all balances"),
        other => panic!("read-all did not succeed: {other:?}"),
    }
}

async fn read_all(cluster: &Cluster) -> Balances {
    balances_of(
        &cluster
            .call_until_ok(Op::ReadAll, Duration::from_secs(5))
            .await,
    )
}

fn check_snapshot(balances: &Balances) {
    assert_eq!(balances.len(), 4, "{balances:?}");
    assert_eq!(
        balances.values().sum::<i64>(),
        TOTAL,
        "torn or wrong snapshot {balances:?}"
    );
    assert!(
        balances.values().all(|b| *b >= 0),
        "negative balance {balances:?}"
    );
}

#[derive(Clone, Debug)]
struct Done {
    from: String,
    to: String,
    amount: i64,
    reply: Reply,
}

/// Runs `writers` clients doing random transfers against node `target` and one client doing
/// read-alls, until `stop` is set. Returns the transfers and the successful snapshots.
fn spawn_load(
    cluster: &Cluster,
    target: usize,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Vec<Done>, Vec<Balances>)> {
    let seed: u64 = rand::thread_rng().gen();
    eprintln!("load seed {seed}");
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut client = cluster.client(target);
        let stop = stop.clone();
        let mut rng = StdRng::seed_from_u64(seed + w as u64);
        tasks.push(tokio::spawn(async move {
            let mut history = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let from = ACCOUNTS[rng.gen_range(0..4)];
                let to = ACCOUNTS
                    [(ACCOUNTS.iter().position(|a| *a == from).unwrap() + rng.gen_range(1..4)) % 4];
                let amount = rng.gen_range(1..=30);
                let reply = client
                    .call(transfer(from, to, amount), Duration::from_secs(3))
                    .await;
                if matches!(reply, Reply::Fail { .. }) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                history.push(done(from, to, amount, reply));
            }
            (history, Vec::new())
        }));
    }
    let mut reader = cluster.client(target);
    tasks.push(tokio::spawn(async move {
        let mut snapshots = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let reply = reader.call(Op::ReadAll, Duration::from_secs(3)).await;
            if matches!(reply, Reply::Ok { .. }) {
                snapshots.push(balances_of(&reply));
            } else {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        (Vec::new(), snapshots)
    }));
    tokio::spawn(async move {
        let mut all = (Vec::new(), Vec::new());
        for task in tasks {
            let (done, snapshots) = task.await.expect("load task");
            all.0.extend(done);
            all.1.extend(snapshots);
        }
        all
    })
}

fn done(from: &str, to: &str, amount: i64, reply: Reply) -> Done {
    Done {
        from: from.into(),
        to: to.into(),
        amount,
        reply,
    }
}

fn effects(d: &Done) -> [(usize, i64); 2] {
    let index = |a: &str| ACCOUNTS.iter().position(|x| *x == a).unwrap();
    [(index(&d.from), -d.amount), (index(&d.to), d.amount)]
}

/// Whether `last` is exactly 100 each, plus every `ok` transfer, plus some subset of the
/// `unknown` ones (never a `fail`ed one). Exact for up to 16 unknowns, bounds beyond that.
fn explainable(last: &Balances, history: &[Done]) -> Result<(), String> {
    let mut base = [100i64; 4];
    let mut unknown = Vec::new();
    for d in history {
        match d.reply {
            Reply::Ok { .. } => {
                for (i, delta) in effects(d) {
                    base[i] += delta;
                }
            }
            Reply::Unknown { .. } => unknown.push(effects(d)),
            Reply::Fail { .. } => {}
        }
    }
    let last: Vec<i64> = ACCOUNTS.iter().map(|a| last[*a]).collect();
    if unknown.len() <= 16 {
        for mask in 0u32..(1 << unknown.len()) {
            let mut state = base;
            for (bit, effect) in unknown.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    for (i, delta) in effect {
                        state[*i] += delta;
                    }
                }
            }
            if state[..] == last[..] {
                return Ok(());
            }
        }
        return Err(format!(
            "final {last:?} is not 100s + ok transfers ({base:?}) + any subset of {} unknown",
            unknown.len()
        ));
    }
    for i in 0..4 {
        let low: i64 = unknown
            .iter()
            .flat_map(|e| e.iter())
            .filter(|(j, d)| *j == i && *d < 0)
            .map(|(_, d)| d)
            .sum();
        let high: i64 = unknown
            .iter()
            .flat_map(|e| e.iter())
            .filter(|(j, d)| *j == i && *d > 0)
            .map(|(_, d)| d)
            .sum();
        if last[i] < base[i] + low || last[i] > base[i] + high {
            return Err(format!(
                "{}: {} outside [{}, {}]",
                ACCOUNTS[i],
                last[i],
                base[i] + low,
                base[i] + high
            ));
        }
    }
    Ok(())
}

fn count(history: &[Done], pick: fn(&Reply) -> bool) -> usize {
    history.iter().filter(|d| pick(&d.reply)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_the_total_and_snapshots_are_consistent() {
    let cluster = start(&[], &[], &[]).await;
    let ok = |r: &Reply| matches!(r, Reply::Ok { .. });
    let r = cluster.call(0, transfer("a1", "a3", 30)).await;
    assert!(ok(&r), "across participants: {r:?}");
    let r = cluster.call(0, transfer("a1", "a2", 20)).await;
    assert!(ok(&r), "within one participant: {r:?}");
    let r = cluster.call(0, transfer("a2", "a4", 500)).await;
    assert!(
        matches!(&r, Reply::Fail { error } if error.contains("insufficient")),
        "overdraft: {r:?}"
    );
    let r = cluster.call(0, transfer("a1", "zz", 1)).await;
    assert!(matches!(r, Reply::Fail { .. }), "unknown account: {r:?}");
    let r = cluster.call(0, transfer("a1", "a2", 0)).await;
    assert!(matches!(r, Reply::Fail { .. }), "zero amount: {r:?}");
    // A participant forwards to the coordinator.
    let r = cluster.call(1, transfer("a4", "a1", 5)).await;
    assert!(ok(&r), "forwarded by n2: {r:?}");
    let snapshot = balances_of(&cluster.call(2, Op::ReadAll).await);
    let expected = Balances::from([
        ("a1".into(), 55),
        ("a2".into(), 120),
        ("a3".into(), 130),
        ("a4".into(), 95),
    ]);
    assert_eq!(snapshot, expected);

    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(&cluster, 0, 4, stop.clone());
    let forwarded = spawn_load(&cluster, 2, 1, stop.clone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut history, mut snapshots) = load.await.unwrap();
    let (more, more_snapshots) = forwarded.await.unwrap();
    history.extend(more);
    snapshots.extend(more_snapshots);
    let oks = count(&history, |r| matches!(r, Reply::Ok { .. }));
    let unknowns = count(&history, |r| matches!(r, Reply::Unknown { .. }));
    eprintln!(
        "{} transfers: {oks} ok, {unknowns} unknown; {} snapshots",
        history.len(),
        snapshots.len()
    );
    assert_eq!(unknowns, 0, "no faults, so no unknowns");
    assert!(oks >= 20, "too few transfers went through: {oks}");
    assert!(
        snapshots.len() >= 5,
        "too few snapshots: {}",
        snapshots.len()
    );
    for s in &snapshots {
        check_snapshot(s);
    }
    settle(&cluster, Duration::from_secs(3)).await;
    let last = read_all(&cluster).await;
    check_snapshot(&last);
    // Replay from 100s: the three opening transfers that succeeded, then the load.
    let mut opening = vec![
        done("a1", "a3", 30, Reply::ok_empty()),
        done("a1", "a2", 20, Reply::ok_empty()),
        done("a4", "a1", 5, Reply::ok_empty()),
    ];
    opening.extend(history);
    explainable(&last, &opening).unwrap();
}

/// Random transfers and reads; SIGKILL node `victim` at an arbitrary point and restart it.
async fn crash_during_load(victim: usize) {
    let mut cluster = start(&[], &[], &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(&cluster, 0, 4, stop.clone());
    let kill_at = rand::thread_rng().gen_range(150..600);
    eprintln!("killing n{} after {kill_at} ms", victim + 1);
    tokio::time::sleep(Duration::from_millis(kill_at)).await;
    cluster.kill(victim);
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.restart(victim).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let (history, snapshots) = load.await.unwrap();
    eprintln!(
        "{} transfers: {} ok, {} fail, {} unknown; {} snapshots",
        history.len(),
        count(&history, |r| matches!(r, Reply::Ok { .. })),
        count(&history, |r| matches!(r, Reply::Fail { .. })),
        count(&history, |r| matches!(r, Reply::Unknown { .. })),
        snapshots.len()
    );
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for d in &history {
        if let Reply::Fail { error } | Reply::Unknown { error } = &d.reply {
            let key: String = error.chars().take(40).collect();
            *reasons.entry(key).or_default() += 1;
        }
    }
    eprintln!("fail/unknown reasons: {reasons:#?}");
    for s in &snapshots {
        check_snapshot(s);
    }
    settle(&cluster, Duration::from_secs(5)).await;
    let last = read_all(&cluster).await;
    check_snapshot(&last);
    if let Err(e) = explainable(&last, &history) {
        panic!("{e}\nn1 log:\n{}", cluster.log_of(0));
    }
    // And it keeps working: move 1 from the richest account to one on the other participant.
    let (from, _) = last.iter().max_by_key(|(_, b)| **b).unwrap();
    let to = if ["a1", "a2"].contains(&from.as_str()) {
        "a3"
    } else {
        "a1"
    };
    let r = cluster.call(0, transfer(from, to, 1)).await;
    assert!(
        matches!(r, Reply::Ok { .. }),
        "after recovery: {r:?}; n2 {:?}; n3 {:?}\nn2 log:\n{}",
        inspect(&cluster, 1).await,
        inspect(&cluster, 2).await,
        cluster.log_of(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_crash_mid_transfers_loses_no_money() {
    crash_during_load(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_participant_crash_mid_transfers_loses_no_money() {
    crash_during_load(2).await;
}

/// n3 votes yes for a1→a3 10, then loses its link to the coordinator before the commit reaches
/// it (`--hold-commit-ms` delays the commit until the link is cut); n2 commits. Then the
/// coordinator is SIGKILLed and restarted, and the link heals.
async fn commit_missed_then_coordinator_crash(bug: bool) -> Balances {
    let mut flags = vec!["--hold-commit-ms", "1000"];
    if bug {
        flags.extend(["--bug", "no-decision-log"]);
    }
    let mut cluster = start(&flags, &[], &[]).await;
    let r = cluster.call(0, transfer("a1", "a3", 10)).await;
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    cluster.partition(&[0], &[2]);
    let limit = Duration::from_secs(5);
    wait_status(&cluster, 1, limit, "n2 committed", |s| {
        s.balances["a1"] == 90 && s.prepared.is_empty()
    })
    .await;
    let n3 = inspect(&cluster, 2).await.unwrap();
    assert_eq!(n3.prepared.len(), 1, "n3 is prepared and undecided: {n3:?}");
    cluster.kill(0);
    cluster.restart(0).await;
    cluster.heal();
    settle(&cluster, limit).await;
    read_all(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_no_decision_log_loses_a_commit_in_a_coordinator_crash() {
    let last = commit_missed_then_coordinator_crash(true).await;
    assert_eq!(last["a1"], 90, "n2 applied the commit");
    assert_eq!(
        last["a3"], 100,
        "n3 was told abort by the amnesiac coordinator"
    );
    assert_eq!(last.values().sum::<i64>(), TOTAL - 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logged_decision_survives_a_coordinator_crash() {
    let last = commit_missed_then_coordinator_crash(false).await;
    assert_eq!(last["a1"], 90);
    assert_eq!(last["a3"], 110);
    check_snapshot(&last);
}

/// n3 (prepare timeout 200 ms) votes yes for a1→a3 10 and is then cut off from the coordinator
/// for about a second; n2 commits meanwhile. Then the link heals.
async fn cut_off_after_voting_yes(bug: bool) -> (Status, Balances) {
    let mut n3 = vec!["--prepare-timeout-ms", "200"];
    if bug {
        n3.extend(["--bug", "abort-after-yes"]);
    }
    let cluster = start(&["--hold-commit-ms", "1000"], &[], &n3).await;
    let r = cluster.call(0, transfer("a1", "a3", 10)).await;
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    cluster.partition(&[0], &[2]);
    let limit = Duration::from_secs(5);
    wait_status(&cluster, 1, limit, "n2 committed", |s| {
        s.balances["a1"] == 90 && s.prepared.is_empty()
    })
    .await;
    // n3 has now been undecided for about five prepare timeouts.
    let n3_while_cut = inspect(&cluster, 2).await.unwrap();
    cluster.heal();
    settle(&cluster, limit).await;
    (n3_while_cut, read_all(&cluster).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_abort_after_yes_breaks_atomicity() {
    let (n3, last) = cut_off_after_voting_yes(true).await;
    assert!(
        n3.prepared.is_empty() && n3.aborted == 1,
        "n3 gave up: {n3:?}"
    );
    assert_eq!(last["a1"], 90);
    assert_eq!(last["a3"], 100);
    assert_eq!(last.values().sum::<i64>(), TOTAL - 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prepared_participant_waits_out_a_partition() {
    let (n3, last) = cut_off_after_voting_yes(false).await;
    assert_eq!(n3.prepared.len(), 1, "n3 still waits: {n3:?}");
    assert_eq!(last["a1"], 90);
    assert_eq!(last["a3"], 110);
    check_snapshot(&last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_participant_makes_transfers_fail_not_hang() {
    let cluster = start(&["--request-timeout-ms", "500"], &[], &[]).await;
    cluster.partition(&[0], &[2]);
    let started = Instant::now();
    let r = cluster.call(0, transfer("a1", "a3", 10)).await;
    assert!(matches!(r, Reply::Fail { .. }), "{r:?}");
    let r = cluster.call(0, Op::ReadAll).await;
    assert!(matches!(r, Reply::Fail { .. }), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // n2 prepared and then heard abort; nothing is left locked.
    let r = cluster.call(0, transfer("a1", "a2", 10)).await;
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    cluster.heal();
    settle(&cluster, Duration::from_secs(3)).await;
    let last = read_all(&cluster).await;
    assert_eq!(last["a1"], 90);
    assert_eq!(last["a2"], 110);
    check_snapshot(&last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_shuts_down_cleanly() {
    let cluster = start(&[], &[], &[]).await;
    let pid_file = |i: usize| {
        let node = &cluster.nodes[i];
        node.data_dir
            .parent()
            .unwrap()
            .join(format!("{}.pid", node.id))
    };
    for i in 0..3 {
        assert!(pid_file(i).exists());
        cluster.signal(i, "TERM");
    }
    let started = Instant::now();
    while (0..3).any(|i| pid_file(i).exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "pid files not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn explainable_accepts_exactly_ok_plus_some_unknown() {
    let history = vec![
        done("a1", "a2", 10, Reply::ok_empty()),
        done("a3", "a4", 5, Reply::unknown("?")),
        done("a1", "a3", 7, Reply::fail("no")),
    ];
    let bal = |v: [i64; 4]| -> Balances { ACCOUNTS.iter().map(|a| a.to_string()).zip(v).collect() };
    assert!(explainable(&bal([90, 110, 100, 100]), &history).is_ok());
    assert!(explainable(&bal([90, 110, 95, 105]), &history).is_ok());
    assert!(explainable(&bal([100, 100, 100, 100]), &history).is_err());
    assert!(explainable(&bal([83, 110, 107, 100]), &history).is_err());
}
