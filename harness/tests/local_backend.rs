//! The local backend against real `fissure node raft-kv` clusters: traffic through the proxies,
//! partitions, kill/start, pause/resume, clock files, and that no node outlives its cluster or
//! its controller.
//!
//! Clusters run one at a time (elections use 150 ms timeouts, which other clusters' load must
//! not disturb); every wait is bounded by seconds.

use harness::backend::local::{ClockMechanism, LocalCluster, LocalConfig};
use nuclei::control::{ClusterControl, Grudge, LinkQuality, NodeId, NodeState};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use targets::client::Client;
use targets::protocol::{Op, Reply};

const LIMIT: Duration = Duration::from_secs(15);

fn config(dir: &std::path::Path, nodes: usize, extra: &[&str]) -> LocalConfig {
    let mut flags = vec![
        "--election-timeout-ms",
        "150",
        "--heartbeat-ms",
        "30",
        "--request-timeout-ms",
        "1000",
    ];
    flags.extend(extra);
    let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    LocalConfig {
        target: "raft-kv".into(),
        file: None,
        nodes,
        node_args: vec![flags; nodes],
        program: env!("CARGO_BIN_EXE_fissure").into(),
        program_args: vec!["node".into()],
        dir: dir.to_path_buf(),
        start_timeout: Duration::from_secs(10),
    }
}

/// One cluster at a time in this binary.
fn turn_lock() -> Arc<tokio::sync::Mutex<()>> {
    static TURN: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    TURN.get_or_init(Arc::default).clone()
}

async fn turn() -> tokio::sync::OwnedMutexGuard<()> {
    turn_lock().lock_owned().await
}

fn addr_of(cluster: &LocalCluster, id: &str) -> String {
    let addrs = cluster.client_addrs();
    addrs.into_iter().find(|(n, _)| n == id).unwrap().1
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

/// Retries `op` through node `id`'s client address until it is ok.
async fn ok_via(cluster: &LocalCluster, id: &str, op: Op) -> Value {
    let addr = addr_of(cluster, id);
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < LIMIT {
        match Client::new(&addr)
            .call(op.clone(), Duration::from_secs(2))
            .await
        {
            Reply::Ok { value } => return value,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{op:?} via {id} never ok; last {last:?}\n{}", logs(cluster));
}

fn logs(cluster: &LocalCluster) -> String {
    cluster
        .log_files()
        .iter()
        .map(|(id, path)| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- {id} ---\n{}\n", tail.join("\n"))
        })
        .collect()
}

/// Polls `primaries` until `done` holds of them.
async fn primaries_until(
    cluster: &LocalCluster,
    what: &str,
    done: impl Fn(&[NodeId]) -> bool,
) -> Vec<NodeId> {
    let started = Instant::now();
    loop {
        let primaries = cluster.primaries().await.unwrap();
        if done(&primaries) {
            return primaries;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{what}: primaries stayed {primaries:?}\n{}",
            logs(cluster)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True if a process with this pid exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn exists(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test]
async fn serves_through_proxies_and_replaces_a_cut_off_leader() {
    let _turn = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(config(dir.path(), 3, &[]))
        .await
        .unwrap();
    assert_eq!(cluster.nodes(), ["n1", "n2", "n3"]);
    ok_via(&cluster, "n1", put("k", json!("v1"))).await;
    assert_eq!(ok_via(&cluster, "n2", get("k")).await, json!("v1"));

    let leaders = primaries_until(&cluster, "one leader", |p| p.len() == 1).await;
    let old = leaders[0].clone();
    let rest: Vec<NodeId> = cluster.nodes().into_iter().filter(|n| *n != old).collect();
    cluster
        .partition(&Grudge::between(std::slice::from_ref(&old), &rest))
        .await
        .unwrap();
    for (from, to, forward, backward) in cluster.link_cuts() {
        let crosses = (from == old) != (to == old);
        assert_eq!((forward, backward), (crosses, crosses), "{from} -> {to}");
    }
    // The majority elects one of its own (the old leader may still believe it leads).
    primaries_until(&cluster, "a leader on the majority side", |p| {
        p.iter().any(|n| rest.contains(n))
    })
    .await;
    ok_via(&cluster, &rest[0], put("k", json!("v2"))).await;
    // Client traffic is never partitioned: the old leader still answers (with a failure, as
    // it cannot reach a majority), rather than hanging.
    let reply = Client::new(addr_of(&cluster, &old))
        .call(get("k"), Duration::from_secs(3))
        .await;
    assert!(
        !matches!(reply, Reply::Ok { .. }),
        "a cut-off leader served a read: {reply:?}"
    );

    cluster.heal_partition().await.unwrap();
    assert!(cluster.link_cuts().iter().all(|c| !c.2 && !c.3));
    primaries_until(&cluster, "one leader after the heal", |p| p.len() == 1).await;
    assert_eq!(ok_via(&cluster, &old, get("k")).await, json!("v2"));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn kill_start_pause_resume_and_degrade() {
    let _turn = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(config(dir.path(), 3, &[]))
        .await
        .unwrap();
    ok_via(&cluster, "n1", put("a", json!(1))).await;

    let old_pid = cluster.pids()[1].1;
    cluster.kill("n2").await.unwrap();
    cluster.kill("n2").await.unwrap(); // idempotent
    assert_eq!(cluster.node_states()["n2"], NodeState::Killed);
    assert!(!exists(old_pid), "a killed node's process is still there");
    let reply = Client::new(addr_of(&cluster, "n2"))
        .call(get("a"), Duration::from_secs(1))
        .await;
    assert!(!matches!(reply, Reply::Ok { .. }), "{reply:?}");
    ok_via(&cluster, "n1", put("a", json!(2))).await;
    cluster.start("n2").await.unwrap();
    cluster.start("n2").await.unwrap(); // a no-op while it runs
    assert_eq!(cluster.node_states()["n2"], NodeState::Running);
    assert_eq!(ok_via(&cluster, "n2", get("a")).await, json!(2));

    cluster.pause("n3").await.unwrap();
    assert_eq!(cluster.node_states()["n3"], NodeState::Paused);
    let reply = Client::new(addr_of(&cluster, "n3"))
        .call(Op::Status, Duration::from_millis(500))
        .await;
    assert!(matches!(reply, Reply::Unknown { .. }), "{reply:?}");
    // A proven client's handshake gets no answer: nothing was sent, so it certainly failed.
    let reply = Client::proven(addr_of(&cluster, "n3"))
        .call(Op::Status, Duration::from_millis(500))
        .await;
    assert!(matches!(reply, Reply::Fail { .. }), "{reply:?}");
    cluster.resume("n3").await.unwrap();
    assert_eq!(cluster.node_states()["n3"], NodeState::Running);
    ok_via(&cluster, "n3", get("a")).await;

    // Latency on n1's links, its client link included: a status round trip pays both ways.
    let latency = Duration::from_millis(150);
    let slow = LinkQuality {
        latency,
        ..LinkQuality::default()
    };
    cluster.degrade(&["n1".into()], slow).await.unwrap();
    let started = Instant::now();
    ok_via(&cluster, "n1", Op::Status).await;
    assert!(started.elapsed() >= latency * 2, "{:?}", started.elapsed());
    cluster.restore_links().await.unwrap();
    // Everything healed: every node answers a linearizable read.
    cluster.heal_all().await.unwrap();
    for id in cluster.nodes() {
        assert_eq!(ok_via(&cluster, &id, get("a")).await, json!(2));
    }
    assert!(cluster
        .kill("n9")
        .await
        .unwrap_err()
        .to_string()
        .contains("n1, n2, n3"));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_that_lost_its_port_restarts_on_fresh_ones() {
    let _turn = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(config(dir.path(), 3, &[]))
        .await
        .unwrap();
    ok_via(&cluster, "n1", put("p", json!(1))).await;
    cluster.kill("n2").await.unwrap();
    let (_, _, peer_addr) = cluster.node_addrs()[1].clone();
    let _squatter = std::net::TcpListener::bind(&peer_addr).unwrap();
    cluster.start("n2").await.unwrap();
    let (_, _, moved) = cluster.node_addrs()[1].clone();
    assert_ne!(moved, peer_addr);
    let log = std::fs::read_to_string(&cluster.log_files()[1].1).unwrap();
    assert!(log.contains("cannot listen"), "n2 never hit the taken port");
    // n2 is reached at its new port: with n3 down, n1 can only commit through n2.
    cluster.kill("n3").await.unwrap();
    ok_via(&cluster, "n1", put("p", json!(2))).await;
    assert_eq!(ok_via(&cluster, "n2", get("p")).await, json!(2));
    cluster.shutdown().await.unwrap();
}

fn environment(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', "\n")
}

fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

#[tokio::test]
async fn clock_offsets_go_where_the_mechanism_reads_them() {
    let _turn = turn().await;
    let mut mechanisms = vec![ClockMechanism::OffsetFile];
    if let detected @ ClockMechanism::Faketime { .. } = ClockMechanism::detect() {
        mechanisms.push(detected);
    } else {
        eprintln!("libfaketime is not installed: testing the offset file only");
    }
    for mechanism in mechanisms {
        let dir = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::start_with_clock(config(dir.path(), 1, &[]), mechanism.clone())
            .await
            .unwrap();
        let (_, file) = cluster.clock_files()[0].clone();
        let pid = cluster.pids()[0].1;
        cluster.set_clock_offset("n1", 1500).await.unwrap();
        let written = std::fs::read_to_string(&file).unwrap();
        match &mechanism {
            ClockMechanism::OffsetFile => {
                assert_eq!(cluster.clock_mechanism(), "offset-file");
                assert_eq!(written.trim(), "1500");
                assert!(command_line(pid).contains("--clock-offset-file"));
                assert!(!environment(pid).contains("LD_PRELOAD="));
            }
            ClockMechanism::Faketime { library } => {
                assert_eq!(cluster.clock_mechanism(), "libfaketime");
                assert_eq!(written.trim(), "+1.500");
                let env = environment(pid);
                assert!(env.contains(&format!("LD_PRELOAD={}", library.display())));
                assert!(env.contains(&format!("FAKETIME_TIMESTAMP_FILE={}", file.display())));
                assert!(env.contains("FAKETIME_DONT_FAKE_MONOTONIC=1"));
                assert!(!command_line(pid).contains("--clock-offset-file"));
            }
        }
        cluster.set_clock_offset("n1", -250).await.unwrap();
        let written = std::fs::read_to_string(&file).unwrap();
        assert!(
            ["-250", "-0.250"].contains(&written.trim()),
            "{written:?} for {mechanism:?}"
        );
        // The skewed node still serves (timeouts run on the real monotonic clock).
        ok_via(&cluster, "n1", put("k", json!(1))).await;
        cluster.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn no_node_outlives_shutdown_or_drop() {
    let _turn = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(config(dir.path(), 3, &[]))
        .await
        .unwrap();
    let pids: Vec<u32> = cluster.pids().iter().map(|p| p.1).collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| exists(p)));
    cluster.pause("n2").await.unwrap(); // a stopped node must go too
    let cluster = Arc::new(cluster);
    let stopping = cluster.clone();
    tokio::spawn(async move { stopping.shutdown().await })
        .await
        .unwrap()
        .unwrap();
    cluster.shutdown().await.unwrap(); // idempotent
    for pid in &pids {
        assert!(!exists(*pid), "node process {pid} survived shutdown");
    }
    assert!(cluster.pids().is_empty());
    let error = cluster.start("n1").await.unwrap_err().to_string();
    assert!(error.contains("shut down"), "{error}");
    drop(cluster);

    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(config(dir.path(), 3, &[]))
        .await
        .unwrap();
    let pids: Vec<u32> = cluster.pids().iter().map(|p| p.1).collect();
    cluster.pause("n1").await.unwrap();
    drop(cluster);
    for pid in &pids {
        assert!(!exists(*pid), "node process {pid} survived a drop");
    }
}

/// Processes whose command line mentions `dir` (our nodes, by their data directories).
fn processes_under(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if alive(pid) && command_line(pid).contains(&needle) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn a_cancelled_start_leaves_no_process() {
    let _turn = turn().await;
    for ms in [5, 20, 40, 80, 160] {
        let dir = tempfile::tempdir().unwrap();
        let start = LocalCluster::start(config(dir.path(), 3, &[]));
        if let Ok(cluster) = tokio::time::timeout(Duration::from_millis(ms), start).await {
            drop(cluster.unwrap()); // it was quick; dropping a started cluster counts too
        }
        let left = processes_under(dir.path());
        assert!(
            left.is_empty(),
            "start cancelled after {ms} ms left {left:?}"
        );
    }
    let zombies = zombie_children();
    assert!(zombies.is_empty(), "unreaped nodes {zombies:?}");
}

/// Our children that exited and were never reaped.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the fields after the command name.
        let after = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) {
            found.extend(entry.file_name().to_string_lossy().parse::<u32>().ok());
        }
    }
    found
}

#[tokio::test]
async fn bad_configs_and_failing_nodes_are_reported() {
    let _turn = turn().await;
    let dir = tempfile::tempdir().unwrap();
    let mut short = config(dir.path(), 3, &[]);
    short.node_args.pop();
    // Spawned: the runner starts clusters from tasks, so the future must be Send.
    let started = tokio::spawn(LocalCluster::start(short)).await.unwrap();
    let error = started.err().unwrap().to_string();
    assert!(error.contains("one list of flags per node"), "{error}");

    let mut missing = config(dir.path(), 1, &[]);
    missing.program = dir.path().join("no-such-program");
    let error = format!("{:#}", LocalCluster::start(missing).await.err().unwrap());
    assert!(error.contains("cannot start node n1"), "{error}");

    let error = LocalCluster::start(config(dir.path(), 2, &["--bug", "no-such-bug"]))
        .await
        .err()
        .unwrap();
    let error = format!("{error:#}");
    assert!(error.contains("node n1 exited"), "{error}");
    assert!(
        error.contains("no planted bug"),
        "the log tail is quoted: {error}"
    );
}

/// Run by `nodes_die_with_their_controller` in a child process: starts a cluster, prints its
/// node pids and waits to be killed.
#[test]
#[ignore = "a helper, run by nodes_die_with_their_controller"]
fn orphan_controller() {
    let Ok(dir) = std::env::var("FISSURE_ORPHAN_DIR") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cluster = LocalCluster::start(config(std::path::Path::new(&dir), 2, &[]))
            .await
            .unwrap();
        let pids: Vec<String> = cluster.pids().iter().map(|p| p.1.to_string()).collect();
        println!("PIDS {}", pids.join(" "));
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
}

/// Kills the helper controller if the test fails before it does.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn nodes_die_with_their_controller() {
    let _turn = turn_lock().blocking_lock_owned();
    // Orphaned nodes are handed to us rather than to init, so this test can reap them.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "orphan_controller", "--nocapture"])
        .env("FISSURE_ORPHAN_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut controller = Reap(child);
    let (lines, found) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(pids) = line.strip_prefix("PIDS ") {
                let _ = lines.send(pids.to_string());
            }
        }
    });
    let pids: Vec<u32> = found
        .recv_timeout(LIMIT)
        .expect("the helper controller started its cluster")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&p| alive(p)));
    controller.0.kill().unwrap(); // SIGKILL: no cleanup code runs
    controller.0.wait().unwrap();
    let started = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        if started.elapsed() > Duration::from_secs(5) {
            for &pid in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("nodes {pids:?} outlived their controller");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &pids {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
    }
    assert!(pids.iter().all(|&p| !exists(p)), "zombies were left");
}
