//! Adapter clients against real Python adapters: `examples/adapters/broken.py` in each of its
//! ways of misbehaving, and `examples/adapters/raft_kv.py` against an in-process raft-kv node.
//! Every test skips (saying so) when `python3` is missing; every wait is bounded; temp dirs
//! and adapters go away on drop, also when an assertion fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use workloads::adapter::{AdapterClient, AdapterCommand, AdapterPool};
use workloads::client::{Client, ClientReply};
use workloads::generator::{OpTemplate, Outcome};
use workloads::workload::{WorkloadKind, WorkloadOptions};

const TIMEOUT: Duration = Duration::from_secs(5);
/// What a dead process may take to disappear from /proc (killed, then reaped).
const GONE_WITHIN: Duration = Duration::from_secs(3);

fn adapters_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/adapters")
}

/// `python3`, or `None` after printing why the test skips.
fn python3() -> Option<String> {
    match std::process::Command::new("python3")
        .arg("--version")
        .output()
    {
        Ok(out) if out.status.success() => Some("python3".into()),
        _ => {
            eprintln!("SKIPPED: python3 is not available, so no adapter can run");
            None
        }
    }
}

fn command(python: &str, script: &str, args: &[&str]) -> AdapterCommand {
    let script = adapters_dir().join(script);
    AdapterCommand {
        program: python.into(),
        args: std::iter::once(script.display().to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .collect(),
        env: vec![],
    }
}

fn pool(command: AdapterCommand, kind: WorkloadKind, dir: &tempfile::TempDir) -> AdapterPool {
    AdapterPool::new(
        command,
        kind,
        &WorkloadOptions::default(),
        dir.path().join("clients"),
    )
}

fn read(key: u64) -> OpTemplate {
    OpTemplate::new("read", Value::Null).with_key(key)
}

fn pid_of(reply: &ClientReply) -> u32 {
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:?}");
    reply.output["pid"]
        .as_u64()
        .expect("broken.py answers its pid") as u32
}

/// Whether `pid` is a live (or zombie) process.
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn assert_gone(pid: u32) {
    let deadline = Instant::now() + GONE_WITHIN;
    while exists(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still exists (alive or a zombie)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_text(client: &AdapterClient) -> String {
    std::fs::read_to_string(client.log_path()).unwrap_or_default()
}

#[tokio::test]
async fn a_crash_garbage_a_wrong_id_or_a_bad_type_is_info_then_a_fresh_adapter_answers() {
    let Some(python) = python3() else { return };
    for (mode, says) in [
        ("crash", "without answering"),
        ("garbage", "not JSON"),
        ("wrong-id", "answered id"),
        ("bad-type", "\"unknown\""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(
            command(&python, "broken.py", &[mode, "1"]),
            WorkloadKind::Register,
            &dir,
        );
        let mut client = pool.adapter_client(0, "n1".into(), "127.0.0.1:1".into());
        let first = pid_of(&client.invoke(&read(1), TIMEOUT).await);
        let bad = client.invoke(&read(1), TIMEOUT).await;
        assert_eq!(bad.outcome, Outcome::Info, "{mode}: {bad:?}");
        assert_eq!(bad.output, Value::Null, "{mode}");
        let error = bad.error.unwrap();
        assert!(error.contains(says), "{mode}: {error}");
        assert_eq!(client.adapter_pid(), None, "{mode}: given up");
        assert_gone(first).await;
        let again = client.invoke(&read(1), TIMEOUT).await;
        let second = pid_of(&again);
        assert_ne!(first, second, "{mode}: restarted");
        assert_eq!(
            again.output["answered"],
            json!(0),
            "{mode}: a fresh adapter"
        );
        let log = log_text(&client);
        assert!(
            log.contains(&format!("broken.py[{first}]: started in mode {mode}"))
                && log.contains(&format!("killing pid {first}"))
                && log.contains(&format!("broken.py[{second}]: started")),
            "{mode}: stderr and Fissure's notes are in the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn a_hung_adapter_is_info_at_the_timeout_and_its_whole_group_is_killed() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A shell in front of python: the shell is the adapter's pid, python its child, and the
    // kill must reach both.
    let script = adapters_dir().join("broken.py");
    let wrapper = AdapterCommand {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            format!("{python} '{}' hang 1; echo after >&2", script.display()),
        ],
        env: vec![],
    };
    let pool = pool(wrapper, WorkloadKind::Register, &dir);
    let mut client = pool.adapter_client(0, "n1".into(), "127.0.0.1:1".into());
    let python_pid = pid_of(&client.invoke(&read(1), TIMEOUT).await);
    let shell_pid = client.adapter_pid().unwrap();
    assert_ne!(python_pid, shell_pid);
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let hung = client.invoke(&read(1), timeout).await;
    let took = started.elapsed();
    assert_eq!(hung.outcome, Outcome::Info, "{hung:?}");
    assert!(hung.error.unwrap().contains("did not answer"));
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "{took:?}"
    );
    assert_gone(shell_pid).await;
    assert_gone(python_pid).await;
    let again = client.invoke(&read(1), TIMEOUT).await;
    assert!(![shell_pid, python_pid].contains(&pid_of(&again)));
}

#[tokio::test]
async fn junk_after_an_answer_restarts_the_adapter_before_the_next_request() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(
        command(&python, "broken.py", &["junk-after"]),
        WorkloadKind::Register,
        &dir,
    );
    let mut client = pool.adapter_client(0, "n1".into(), "127.0.0.1:1".into());
    let first = pid_of(&client.invoke(&read(1), TIMEOUT).await);
    // The junk is seen before the request is written: nothing was sent to the babbler, and
    // the operation runs on a fresh adapter.
    let second = pid_of(&client.invoke(&read(1), TIMEOUT).await);
    assert_ne!(first, second);
    assert_gone(first).await;
    let log = log_text(&client);
    assert!(log.contains("between operations"), "{log}");
}

#[tokio::test]
async fn an_adapters_fail_is_a_fail_and_it_keeps_running() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(
        command(&python, "broken.py", &["fail", "0"]),
        WorkloadKind::Register,
        &dir,
    );
    let mut client = pool.adapter_client(0, "n1".into(), "127.0.0.1:1".into());
    for _ in 0..2 {
        let reply = client.invoke(&read(1), TIMEOUT).await;
        assert_eq!(reply, ClientReply::fail("broken.py fails on purpose"));
    }
    let pid = client.adapter_pid().expect("still running");
    assert!(exists(pid));
}

#[tokio::test]
async fn a_missing_program_fails_every_operation_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = AdapterCommand {
        program: "/nonexistent/fissure-adapter".into(),
        args: vec!["x".into()],
        env: vec![],
    };
    assert!(missing.check().is_err());
    let pool = pool(missing, WorkloadKind::Register, &dir);
    let mut client = pool.client(0, "n1".into(), "127.0.0.1:1".into());
    for _ in 0..2 {
        let reply = client.invoke(&read(1), TIMEOUT).await;
        assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
        let error = reply.error.unwrap();
        assert!(
            error.contains("not found") && error.contains("/nonexistent/fissure-adapter"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn healthy_adapters_pass_to_the_next_client_of_their_node_and_die_with_the_pool() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(
        command(&python, "broken.py", &["ok"]),
        WorkloadKind::Register,
        &dir,
    );
    let mut a = pool.adapter_client(0, "n1".into(), "127.0.0.1:1".into());
    let pid = pid_of(&a.invoke(&read(1), TIMEOUT).await);
    let log = a.log_path().to_path_buf();
    drop(a);
    // The successor of a retired process, on the same node, gets the same adapter.
    let mut b = pool.adapter_client(5, "n1".into(), "127.0.0.1:1".into());
    assert_eq!(b.adapter_pid(), Some(pid));
    assert_eq!(b.log_path(), log);
    let reply = b.invoke(&read(1), TIMEOUT).await;
    assert_eq!(
        (pid_of(&reply), &reply.output["answered"]),
        (pid, &json!(1))
    );
    // Another node's client starts its own, with its own log.
    let other = pool.adapter_client(1, "n2".into(), "127.0.0.1:2".into());
    assert_eq!(other.adapter_pid(), None);
    assert_ne!(other.log_path(), log);
    drop((b, other));
    drop(pool);
    assert_gone(pid).await;
}

#[tokio::test]
async fn an_abandoned_request_kills_its_adapter_instead_of_passing_it_on() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(
        command(&python, "broken.py", &["hang", "1"]),
        WorkloadKind::Register,
        &dir,
    );
    let mut client = pool.adapter_client(0, "n1".into(), "127.0.0.1:1".into());
    let pid = pid_of(&client.invoke(&read(1), TIMEOUT).await);
    // The runner's backstop aborts an invocation that overruns; its late answer must reach
    // nobody.
    let abandoned =
        tokio::time::timeout(Duration::from_millis(200), client.invoke(&read(1), TIMEOUT)).await;
    assert!(abandoned.is_err());
    drop(client);
    let next = pool.adapter_client(1, "n1".into(), "127.0.0.1:1".into());
    assert_eq!(next.adapter_pid(), None);
    assert_gone(pid).await;
}

/// A single-node raft-kv in this process (it elects itself), stopped with the test's runtime.
async fn raft_kv_node(dir: &Path) -> String {
    let port = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let (listen, peer_listen) = (port(), port());
    let args = targets::raft::Args {
        node: targets::node::NodeArgs {
            id: "n1".into(),
            listen: listen.clone(),
            peer_listen,
            peers: vec![],
            data_dir: dir.join("n1"),
            bug: None,
            pid_file: None,
            clock_offset_file: None,
        },
        election_timeout_ms: 150,
        heartbeat_ms: 30,
        request_timeout_ms: 2000,
        lease_ms: 100,
    };
    tokio::spawn(async move {
        if let Err(e) = targets::raft::run(args).await {
            eprintln!("raft-kv stopped: {e:#}");
        }
    });
    let mut status = targets::client::Client::new(listen.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = status
            .call(targets::protocol::Op::Status, Duration::from_secs(1))
            .await;
        if let targets::protocol::Reply::Ok { value } = &reply {
            if value["role"] == "leader" {
                return listen;
            }
        }
        assert!(
            Instant::now() < deadline,
            "raft-kv did not elect itself: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(client: &mut Box<dyn Client>, op: OpTemplate) -> ClientReply {
    client.invoke(&op, TIMEOUT).await
}

#[tokio::test]
async fn raft_kv_py_runs_every_workload_against_a_real_node() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let address = raft_kv_node(dir.path()).await;
    let adapter = command(&python, "raft_kv.py", &[]);
    let client = |kind| pool(adapter.clone(), kind, &dir).client(0, "n1".into(), address.clone());
    let ok = |value: Value| ClientReply::ok(value);

    // register: read, write, cas on integer keys (rN on the node).
    let mut c = client(WorkloadKind::Register);
    assert_eq!(run(&mut c, read(1)).await, ok(Value::Null));
    let write = OpTemplate::new("write", json!(3)).with_key(1u64);
    assert_eq!(run(&mut c, write).await, ok(Value::Null));
    assert_eq!(run(&mut c, read(1)).await, ok(json!(3)));
    let cas = |from, to| OpTemplate::new("cas", json!([from, to])).with_key(1u64);
    assert_eq!(run(&mut c, cas(3, 4)).await, ok(Value::Null));
    let lost = run(&mut c, cas(3, 0)).await;
    assert_eq!(lost.outcome, Outcome::Fail, "{lost:?}");
    assert!(lost.error.unwrap().starts_with("compare failed"));
    assert_eq!(run(&mut c, read(1)).await, ok(json!(4)));
    assert_eq!(run(&mut c, read(2)).await, ok(Value::Null));
    let keyless = run(&mut c, OpTemplate::new("read", Value::Null)).await;
    assert_eq!(keyless.outcome, Outcome::Fail, "{keyless:?}");

    // set: adds, then a read of every element.
    let mut c = client(WorkloadKind::Set);
    let set_read = OpTemplate::new("read", Value::Null);
    assert_eq!(run(&mut c, set_read.clone()).await, ok(json!([])));
    for n in 0..3 {
        let add = OpTemplate::new("add", json!(n));
        assert_eq!(run(&mut c, add).await, ok(Value::Null));
    }
    assert_eq!(run(&mut c, set_read).await, ok(json!([0, 1, 2])));

    // counter: adds, reads (0 before any add).
    let mut c = client(WorkloadKind::Counter);
    let counter_read = OpTemplate::new("read", Value::Null);
    assert_eq!(run(&mut c, counter_read.clone()).await, ok(json!(0)));
    for n in [2, 3] {
        let add = OpTemplate::new("add", json!(n));
        assert_eq!(run(&mut c, add).await, ok(Value::Null));
    }
    assert_eq!(run(&mut c, counter_read).await, ok(json!(5)));

    // bank: transfers between the default accounts (a0..a4 at 100), reads of every balance.
    let mut c = client(WorkloadKind::Bank);
    let transfer = |amount| {
        OpTemplate::new(
            "transfer",
            json!({"from": "a0", "to": "a1", "amount": amount}),
        )
    };
    assert_eq!(run(&mut c, transfer(5)).await, ok(Value::Null));
    let broke = run(&mut c, transfer(1000)).await;
    assert_eq!(broke.outcome, Outcome::Fail, "{broke:?}");
    let balances = run(&mut c, OpTemplate::new("read", Value::Null)).await;
    assert_eq!(
        balances,
        ok(json!({"a0": 95, "a1": 105, "a2": 100, "a3": 100, "a4": 100}))
    );

    // A node nobody listens at: the request never left the adapter, so it is a fail.
    let mut nobody =
        pool(adapter, WorkloadKind::Register, &dir).client(0, "n9".into(), "127.0.0.1:1".into());
    let reply = run(&mut nobody, read(1)).await;
    assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
    assert!(reply.error.unwrap().contains("no node reachable"));
}

#[tokio::test]
async fn transactions_through_raft_kv_py_and_the_builtin_client_agree() {
    let Some(python) = python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let address = raft_kv_node(dir.path()).await;
    let adapter = command(&python, "raft_kv.py", &[]);
    let txn = |mops: Value| OpTemplate::new("txn", mops);
    for kind in [WorkloadKind::Append, WorkloadKind::Wr] {
        let mut py = pool(adapter.clone(), kind, &dir).client(0, "n1".into(), address.clone());
        let mut builtin = workloads::workload::target_client(
            kind,
            "raft-kv",
            address.clone(),
            &workloads::workload::WorkloadOptions::default(),
        );
        // Separate keys per workload: append's lists and wr's registers do not mix.
        let (f, k) = match kind {
            WorkloadKind::Append => ("append", 1),
            _ => ("w", 2),
        };
        let first = run(
            &mut py,
            txn(json!([[f, k, 1], ["r", k, null], ["r", 9, null]])),
        )
        .await;
        let second = run(&mut builtin, txn(json!([[f, k, 2], ["r", k, null]]))).await;
        let third = run(&mut py, txn(json!([["r", k, null]]))).await;
        let (after_first, after_second) = match kind {
            WorkloadKind::Append => (json!([1]), json!([1, 2])),
            _ => (json!(1), json!(2)),
        };
        assert_eq!(
            first,
            ClientReply::ok(json!([[f, k, 1], ["r", k, after_first], ["r", 9, null]]))
        );
        assert_eq!(
            second,
            ClientReply::ok(json!([[f, k, 2], ["r", k, after_second.clone()]]))
        );
        assert_eq!(third, ClientReply::ok(json!([["r", k, after_second]])));
        // A malformed micro-op is refused before anything is sent, by both.
        for client in [&mut py, &mut builtin] {
            let bad = run(client, txn(json!([["r", "x", null]]))).await;
            assert_eq!(bad.outcome, Outcome::Fail, "{bad:?}");
        }
    }
    // An append to a register is refused by the node, atomically: the whole txn fails.
    let mut builtin = workloads::workload::target_client(
        WorkloadKind::Append,
        "raft-kv",
        address.clone(),
        &workloads::workload::WorkloadOptions::default(),
    );
    let mixed = run(
        &mut builtin,
        txn(json!([["append", 7, 1], ["append", 2, 3]])),
    )
    .await;
    assert_eq!(mixed.outcome, Outcome::Fail, "{mixed:?}");
    let seven = run(&mut builtin, txn(json!([["r", 7, null]]))).await;
    assert_eq!(seven, ClientReply::ok(json!([["r", 7, null]])));
}
