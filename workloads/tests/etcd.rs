//! The etcd client against real etcd members on loopback (`/usr/bin/etcd`, Debian's
//! `etcd-server`). Each test starts its own members in a temporary directory and kills them on
//! drop, even when it fails. Without etcd these tests fail, saying what to install, unless
//! `FISSURE_SKIP_ETCD=1`.
//!
//! `cargo test -p workloads --test etcd -- --ignored --nocapture register_throughput` measures
//! the register workload through the client.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::time::Instant;
use workloads::client::{Client, ClientReply};
use workloads::etcd::{etcd_client, EtcdOptions, EtcdReads};
use workloads::generator::{OpTemplate, Outcome};
use workloads::workload::WorkloadKind;

const ETCD: &str = "/usr/bin/etcd";
const TIMEOUT: Duration = Duration::from_secs(2);
/// How late past its timeout an operation may end on a loaded machine.
const SLACK: Duration = Duration::from_secs(1);

/// Whether to run: false (with a note) under `FISSURE_SKIP_ETCD=1`; a panic that names the
/// package if etcd is missing.
fn etcd_wanted() -> bool {
    if std::env::var("FISSURE_SKIP_ETCD").as_deref() == Ok("1") {
        eprintln!("skipped: FISSURE_SKIP_ETCD=1");
        return false;
    }
    assert!(
        Path::new(ETCD).exists(),
        "{ETCD} is missing: apt-get install etcd-server (or set FISSURE_SKIP_ETCD=1 to skip)"
    );
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One etcd member, killed on drop.
struct Member {
    name: String,
    client_url: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Member {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Members of one cluster, with the directory that holds their data and logs.
struct Cluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` members on loopback and waits until each serves a linearizable read.
    async fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let peers: Vec<(String, String)> = (0..n)
            .map(|i| (format!("m{i}"), format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let initial_cluster = peers
            .iter()
            .map(|(name, url)| format!("{name}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (name, peer_url) in &peers {
            let client_url = format!("http://127.0.0.1:{}", free_port());
            let log = dir.path().join(format!("{name}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new(ETCD)
                .arg("--name")
                .arg(name)
                .arg("--data-dir")
                .arg(dir.path().join(format!("{name}.etcd")))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", peer_url])
                .args(["--initial-advertise-peer-urls", peer_url])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "fissure-test"])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("starting etcd");
            members.push(Member {
                name: name.clone(),
                client_url,
                child: Some(child),
                log,
            });
        }
        let cluster = Cluster { members, _dir: dir };
        for m in &cluster.members {
            cluster.wait_ready(m).await;
        }
        cluster
    }

    async fn wait_ready(&self, m: &Member) {
        let give_up = Instant::now() + Duration::from_secs(30);
        let mut c = client(
            WorkloadKind::Register,
            &m.client_url,
            EtcdReads::Linearizable,
        );
        loop {
            let reply = c.invoke(&read(0), Duration::from_secs(1)).await;
            if reply.outcome == Outcome::Ok {
                return;
            }
            if Instant::now() > give_up {
                let log = std::fs::read_to_string(&m.log).unwrap_or_default();
                panic!("etcd {} never served a read: {reply:?}\n{log}", m.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, i: usize) -> &str {
        &self.members[i].client_url
    }
}

fn client(kind: WorkloadKind, url: &str, reads: EtcdReads) -> Box<dyn Client> {
    let options = EtcdOptions {
        reads,
        ..EtcdOptions::default()
    };
    etcd_client(kind, url.to_string(), &options)
}

fn read(key: u64) -> OpTemplate {
    OpTemplate::new("read", Value::Null).with_key(key)
}

fn write(key: u64, v: Value) -> OpTemplate {
    OpTemplate::new("write", v).with_key(key)
}

fn cas(key: u64, from: Value, to: Value) -> OpTemplate {
    OpTemplate::new("cas", json!([from, to])).with_key(key)
}

async fn ok(c: &mut Box<dyn Client>, op: OpTemplate) -> Value {
    let reply = c.invoke(&op, TIMEOUT).await;
    assert_eq!(reply.outcome, Outcome::Ok, "{op:?}: {reply:?}");
    reply.output
}

async fn fails(c: &mut Box<dyn Client>, op: OpTemplate) -> ClientReply {
    let reply = c.invoke(&op, TIMEOUT).await;
    assert_eq!(reply.outcome, Outcome::Fail, "{op:?}: {reply:?}");
    reply
}

#[tokio::test]
async fn register_reads_writes_and_cas() {
    if !etcd_wanted() {
        return;
    }
    let cluster = Cluster::start(1).await;
    let mut c = client(
        WorkloadKind::Register,
        cluster.url(0),
        EtcdReads::Linearizable,
    );
    assert_eq!(ok(&mut c, read(1)).await, Value::Null, "a missing key");
    ok(&mut c, write(1, json!(3))).await;
    assert_eq!(ok(&mut c, read(1)).await, json!(3));
    ok(&mut c, cas(1, json!(3), json!(4))).await;
    assert_eq!(ok(&mut c, read(1)).await, json!(4));
    let failed = fails(&mut c, cas(1, json!(3), json!(0))).await;
    assert!(failed.error.unwrap().contains("compare failed"));
    assert_eq!(
        ok(&mut c, read(1)).await,
        json!(4),
        "a failed cas wrote nothing"
    );
    // Keys are independent registers.
    assert_eq!(ok(&mut c, read(2)).await, Value::Null);
    // cas from null: only while the key is missing.
    ok(&mut c, cas(2, Value::Null, json!(1))).await;
    fails(&mut c, cas(2, Value::Null, json!(2))).await;
    assert_eq!(ok(&mut c, read(2)).await, json!(1));
    fails(&mut c, cas(1, Value::Null, json!(2))).await;
    // Writing null deletes: it reads as null and a cas from null succeeds again.
    ok(&mut c, write(2, Value::Null)).await;
    assert_eq!(ok(&mut c, read(2)).await, Value::Null);
    ok(&mut c, cas(2, Value::Null, json!(0))).await;
    ok(&mut c, cas(2, json!(0), Value::Null)).await;
    assert_eq!(ok(&mut c, read(2)).await, Value::Null);
    // Another client (another process) sees the same registers.
    let mut other = client(
        WorkloadKind::Register,
        cluster.url(0),
        EtcdReads::Linearizable,
    );
    assert_eq!(ok(&mut other, read(1)).await, json!(4));
    // Malformed operations fail without harm.
    let reply = c
        .invoke(&OpTemplate::new("cas", json!(1)).with_key(1), TIMEOUT)
        .await;
    assert_eq!(reply.outcome, Outcome::Fail);
    assert_eq!(ok(&mut c, read(1)).await, json!(4));
}

#[tokio::test]
async fn set_adds_and_reads_and_prefixes_separate_tests() {
    if !etcd_wanted() {
        return;
    }
    let cluster = Cluster::start(1).await;
    let add = |v: u64| OpTemplate::new("add", json!(v));
    let read_all = || OpTemplate::new("read", Value::Null);
    let mut a = client(WorkloadKind::Set, cluster.url(0), EtcdReads::Linearizable);
    let mut b = client(WorkloadKind::Set, cluster.url(0), EtcdReads::Serializable);
    assert_eq!(ok(&mut a, read_all()).await, json!([]));
    for v in [10, 2, 33, 1] {
        ok(&mut a, add(v)).await;
    }
    ok(&mut b, add(7)).await;
    assert_eq!(ok(&mut a, read_all()).await, json!([1, 2, 7, 10, 33]));
    assert_eq!(ok(&mut b, read_all()).await, json!([1, 2, 7, 10, 33]));
    // Register keys are not set elements, and another prefix is another set.
    let mut r = client(
        WorkloadKind::Register,
        cluster.url(0),
        EtcdReads::Linearizable,
    );
    ok(&mut r, write(5, json!(5))).await;
    let other = EtcdOptions {
        prefix: "other/".into(),
        ..EtcdOptions::default()
    };
    let mut o = etcd_client(WorkloadKind::Set, cluster.url(0).into(), &other);
    assert_eq!(ok(&mut o, read_all()).await, json!([]));
    ok(&mut o, add(99)).await;
    assert_eq!(ok(&mut o, read_all()).await, json!([99]));
    assert_eq!(ok(&mut a, read_all()).await, json!([1, 2, 7, 10, 33]));
    // Many elements in one read, in numeric order.
    let mut c = client(WorkloadKind::Set, cluster.url(0), EtcdReads::Linearizable);
    for v in 100..300 {
        ok(&mut c, add(v)).await;
    }
    let all = ok(&mut a, read_all()).await;
    let all: Vec<u64> = serde_json::from_value(all).unwrap();
    let mut expected = vec![1, 2, 7, 10, 33];
    expected.extend(100..300);
    assert_eq!(all, expected);
    // The etcd client refuses what it cannot run, without sending anything.
    let mut bank = client(WorkloadKind::Bank, cluster.url(0), EtcdReads::Linearizable);
    let reply = bank.invoke(&read_all(), TIMEOUT).await;
    assert_eq!(reply.outcome, Outcome::Fail);
    assert!(reply.error.unwrap().contains("not bank"));
}

#[tokio::test]
async fn serializable_reads_see_writes_on_one_member() {
    if !etcd_wanted() {
        return;
    }
    let cluster = Cluster::start(1).await;
    let mut w = client(
        WorkloadKind::Register,
        cluster.url(0),
        EtcdReads::Linearizable,
    );
    let mut s = client(
        WorkloadKind::Register,
        cluster.url(0),
        EtcdReads::Serializable,
    );
    assert_eq!(ok(&mut s, read(9)).await, Value::Null);
    ok(&mut w, write(9, json!(2))).await;
    assert_eq!(ok(&mut s, read(9)).await, json!(2));
    ok(&mut s, cas(9, json!(2), json!(3))).await;
    assert_eq!(ok(&mut w, read(9)).await, json!(3));
}

/// Nothing listens: the connection is refused before anything is sent, so every operation is a
/// definite `fail`, well within its timeout.
#[tokio::test]
async fn a_dead_endpoint_fails_within_the_timeout() {
    if !etcd_wanted() {
        return;
    }
    let url = format!("http://127.0.0.1:{}", free_port());
    for kind in [WorkloadKind::Register, WorkloadKind::Set] {
        let mut c = client(kind, &url, EtcdReads::Linearizable);
        let ops = match kind {
            WorkloadKind::Register => vec![read(1), write(1, json!(1)), cas(1, json!(1), json!(2))],
            _ => vec![
                OpTemplate::new("add", json!(1)),
                OpTemplate::new("read", Value::Null),
            ],
        };
        for op in ops {
            let started = Instant::now();
            let reply = c.invoke(&op, TIMEOUT).await;
            assert_eq!(reply.outcome, Outcome::Fail, "{op:?}: {reply:?}");
            assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
        }
    }
}

/// Something accepts connections but never answers (a paused node): writes may have been
/// received, so they are `info`; reads are `fail`; both end by the timeout.
#[tokio::test]
async fn a_silent_endpoint_is_info_for_writes_and_fail_for_reads() {
    if !etcd_wanted() {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(700);
    let mut c = client(WorkloadKind::Register, &url, EtcdReads::Linearizable);
    for (op, want) in [
        (read(1), vec![Outcome::Fail]),
        (write(1, json!(1)), vec![Outcome::Info, Outcome::Fail]),
        (
            cas(1, json!(1), json!(2)),
            vec![Outcome::Info, Outcome::Fail],
        ),
    ] {
        let started = Instant::now();
        let reply = c.invoke(&op, timeout).await;
        let took = started.elapsed();
        assert!(want.contains(&reply.outcome), "{op:?}: {reply:?}");
        assert!(took >= timeout && took < timeout + SLACK, "{took:?}");
    }
    accepted.abort();
}

/// A member killed under a client: no operation is ever `ok`; the first one after the kill
/// may have been sent, the later ones find the connection refused and are `fail`.
#[tokio::test]
async fn a_killed_member_never_answers_ok() {
    if !etcd_wanted() {
        return;
    }
    let mut cluster = Cluster::start(1).await;
    let url = cluster.url(0).to_string();
    let mut c = client(WorkloadKind::Register, &url, EtcdReads::Linearizable);
    ok(&mut c, write(1, json!(1))).await;
    cluster.members[0].kill();
    for (i, op) in [
        write(1, json!(2)),
        read(1),
        cas(1, json!(1), json!(2)),
        write(1, json!(3)),
    ]
    .into_iter()
    .enumerate()
    {
        let started = Instant::now();
        let reply = c.invoke(&op, TIMEOUT).await;
        assert_ne!(reply.outcome, Outcome::Ok, "{op:?}: {reply:?}");
        assert!(started.elapsed() <= TIMEOUT + SLACK);
        if i == 0 {
            // Sent on the old connection: it may have reached etcd (unless it is a read).
            continue;
        }
        // The failed connection was dropped; connecting again is refused: nothing was sent.
        assert_eq!(reply.outcome, Outcome::Fail, "{op:?}: {reply:?}");
        assert!(
            reply.error.as_deref().unwrap().contains("refused"),
            "{reply:?}"
        );
    }
}

/// Three members: a write on one is read on the others; with two of them gone, the last one
/// cannot serve linearizable reads or writes, but serves serializable reads from its own
/// state.
#[tokio::test]
async fn three_members_and_a_lost_quorum() {
    if !etcd_wanted() {
        return;
    }
    let mut cluster = Cluster::start(3).await;
    let mut w = client(
        WorkloadKind::Register,
        cluster.url(0),
        EtcdReads::Linearizable,
    );
    ok(&mut w, write(4, json!(4))).await;
    let mut expected = 4;
    for i in 1..3 {
        let mut r = client(
            WorkloadKind::Register,
            cluster.url(i),
            EtcdReads::Linearizable,
        );
        assert_eq!(ok(&mut r, read(4)).await, json!(expected), "member {i}");
        ok(&mut r, cas(4, json!(expected), json!(i))).await;
        expected = i;
    }
    let mut last = client(
        WorkloadKind::Register,
        cluster.url(2),
        EtcdReads::Linearizable,
    );
    assert_eq!(ok(&mut last, read(4)).await, json!(2));
    // Member 2 keeps its state; the quorum is gone.
    cluster.members[0].kill();
    cluster.members[1].kill();
    let timeout = Duration::from_secs(1);
    let reply = last.invoke(&read(4), timeout).await;
    assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
    let mut writer = client(
        WorkloadKind::Register,
        cluster.url(2),
        EtcdReads::Linearizable,
    );
    let reply = writer.invoke(&write(4, json!(9)), timeout).await;
    assert_eq!(
        reply.outcome,
        Outcome::Info,
        "a write without quorum: {reply:?}"
    );
    let mut stale = client(
        WorkloadKind::Register,
        cluster.url(2),
        EtcdReads::Serializable,
    );
    let reply = stale.invoke(&read(4), timeout).await;
    assert_eq!(reply, ClientReply::ok(json!(2)), "a serializable read");
}

/// The register workload's mix through the client: `clients` processes for `secs` seconds
/// against one member. Prints ops/s and latencies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn register_throughput() {
    if !etcd_wanted() {
        return;
    }
    let clients: u64 = env_or("FISSURE_ETCD_BENCH_CLIENTS", 10);
    let secs: u64 = env_or("FISSURE_ETCD_BENCH_SECS", 5);
    let reads = match std::env::var("FISSURE_ETCD_BENCH_READS").as_deref() {
        Ok("serializable") => EtcdReads::Serializable,
        _ => EtcdReads::Linearizable,
    };
    let cluster = Cluster::start(1).await;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for p in 0..clients {
        let url = cluster.url(0).to_string();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(p);
            let mut c = client(WorkloadKind::Register, &url, reads);
            let mut samples: Vec<(&'static str, Duration, Outcome)> = Vec::new();
            while Instant::now() < end {
                let key = rng.gen_range(0..10u64);
                let op = match rng.gen_range(0..3) {
                    0 => read(key),
                    1 => write(key, json!(rng.gen_range(0..5))),
                    _ => cas(key, json!(rng.gen_range(0..5)), json!(rng.gen_range(0..5))),
                };
                let f = match op.f.as_str() {
                    "read" => "read",
                    "write" => "write",
                    _ => "cas",
                };
                let started = Instant::now();
                let reply = c.invoke(&op, TIMEOUT).await;
                samples.push((f, started.elapsed(), reply.outcome));
                if reply.outcome == Outcome::Info {
                    c = client(WorkloadKind::Register, &url, reads);
                }
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let infos = all.iter().filter(|s| s.2 == Outcome::Info).count();
    let fails = all.iter().filter(|s| s.2 == Outcome::Fail).count();
    println!(
        "etcd register workload, {clients} clients, {secs} s, {reads:?} reads: {} ops, {:.0} ops/s, \
         {fails} fail (cas compares that failed), {infos} info",
        all.len(),
        all.len() as f64 / secs as f64
    );
    for f in ["all", "read", "write", "cas"] {
        let mut lat: Vec<Duration> = all
            .iter()
            .filter(|s| f == "all" || s.0 == f)
            .map(|s| s.1)
            .collect();
        lat.sort_unstable();
        let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {f:>5}: {:>6} ops  p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            lat.len(),
            at(0.5),
            at(0.99),
            lat[lat.len() - 1]
        );
    }
    assert_eq!(infos, 0, "no faults, so no info");
    let other_fails = all
        .iter()
        .filter(|s| s.2 == Outcome::Fail && s.0 != "cas")
        .count();
    assert_eq!(other_fails, 0, "only a cas can fail without faults");
    assert!(all.len() as u64 > clients, "{} ops", all.len());
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
