//! The workload clients against a fake node on 127.0.0.1 that speaks the targets' protocol:
//! a real key-value map, plus a per-test hook that can answer anything, stay silent or hang up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use targets::protocol::{Op, Reply, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::clients::{ADD_ATTEMPTS, BANK_KEY, COUNTER_KEY, SET_KEY};
use super::{target_client, WorkloadKind, WorkloadOptions};
use crate::client::{Client, ClientReply};
use crate::generator::{OpTemplate, Outcome};

const TIMEOUT: Duration = Duration::from_millis(300);

/// What the fake node does with one request.
enum Action {
    Reply(Reply),
    /// Never answer (the connection stays open).
    Silent,
    /// Hang up without answering.
    Close,
    /// Write this line instead of a response.
    Raw(String),
    /// Answer after a while.
    Late(Duration, Reply),
}

/// The fake's state: a linearizable map (missing keys read `null`, like raft-kv).
#[derive(Default)]
struct Kv(HashMap<String, Value>);

impl Kv {
    fn apply(&mut self, op: &Op) -> Reply {
        match op {
            Op::Get { key } => Reply::ok(self.get(key)),
            Op::Put { key, value } => {
                self.0.insert(key.clone(), value.clone());
                Reply::ok_empty()
            }
            Op::Cas { key, from, to } if self.get(key) == *from => {
                self.0.insert(key.clone(), to.clone());
                Reply::ok_empty()
            }
            Op::Cas { key, .. } => {
                Reply::fail(format!("compare failed: value is {}", self.get(key)))
            }
            other => Reply::fail(format!("the fake serves no {}", other.name())),
        }
    }

    fn get(&self, key: &str) -> Value {
        self.0.get(key).cloned().unwrap_or(Value::Null)
    }
}

type Hook = Box<dyn FnMut(&mut Kv, &Op) -> Action + Send>;

struct Shared {
    kv: Kv,
    hook: Hook,
    /// Every request received, in order.
    log: Vec<Op>,
}

struct FakeNode {
    addr: String,
    shared: Arc<Mutex<Shared>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeNode {
    async fn start(hook: impl FnMut(&mut Kv, &Op) -> Action + Send + 'static) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Mutex::new(Shared {
            kv: Kv::default(),
            hook: Box::new(hook),
            log: Vec::new(),
        }));
        let state = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, state.clone()));
            }
        });
        FakeNode {
            addr,
            shared,
            accept,
        }
    }

    /// A fake that only applies operations to its map.
    async fn kv() -> FakeNode {
        FakeNode::start(|kv, op| Action::Reply(kv.apply(op))).await
    }

    fn log(&self) -> Vec<Op> {
        self.shared.lock().unwrap().log.clone()
    }

    fn value(&self, key: &str) -> Value {
        self.shared.lock().unwrap().kv.get(key)
    }

    fn client(&self, kind: WorkloadKind, target: &str) -> Box<dyn Client> {
        target_client(kind, target, self.addr.clone(), &options())
    }
}

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Mutex<Shared>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let request: Request = serde_json::from_str(&line).expect("the client sends requests");
        if request.op == Op::Status {
            // The connection handshake, answered like a node does: at once, by itself.
            let status = Response {
                id: request.id,
                reply: Reply::ok(json!({"id": "n1", "role": "replica"})),
            };
            let line = serde_json::to_string(&status).unwrap() + "\n";
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let action = {
            let mut s = shared.lock().unwrap();
            s.log.push(request.op.clone());
            let Shared { kv, hook, .. } = &mut *s;
            hook(kv, &request.op)
        };
        let respond = |reply| {
            let response = Response {
                id: request.id,
                reply,
            };
            serde_json::to_string(&response).unwrap()
        };
        let mut out = match action {
            Action::Reply(reply) => respond(reply),
            Action::Late(wait, reply) => {
                tokio::time::sleep(wait).await;
                respond(reply)
            }
            Action::Silent => continue,
            Action::Close => return,
            Action::Raw(raw) => raw,
        };
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn options() -> WorkloadOptions {
    WorkloadOptions {
        accounts: vec!["a0".into(), "a1".into(), "a2".into()],
        initial_balance: 10,
        ..WorkloadOptions::default()
    }
}

fn op(f: &str, key: Option<u64>, value: Value) -> OpTemplate {
    OpTemplate {
        f: f.into(),
        key: key.map(Value::from),
        value,
    }
}

async fn run(client: &mut Box<dyn Client>, f: &str, key: Option<u64>, value: Value) -> ClientReply {
    client.invoke(&op(f, key, value), TIMEOUT).await
}

fn cas_count(log: &[Op]) -> usize {
    log.iter().filter(|o| matches!(o, Op::Cas { .. })).count()
}

#[tokio::test]
async fn register_ops_map_to_get_put_cas_on_key_rn() {
    let node = FakeNode::kv().await;
    let mut c = node.client(WorkloadKind::Register, "raft-kv");
    assert_eq!(
        run(&mut c, "read", Some(17), json!(null)).await,
        ClientReply::ok(json!(null))
    );
    assert_eq!(
        run(&mut c, "write", Some(17), json!(3)).await.outcome,
        Outcome::Ok
    );
    assert_eq!(
        run(&mut c, "read", Some(17), json!(null)).await,
        ClientReply::ok(json!(3))
    );
    assert_eq!(
        run(&mut c, "cas", Some(17), json!([3, 4])).await.outcome,
        Outcome::Ok
    );
    let refused = run(&mut c, "cas", Some(17), json!([3, 1])).await;
    assert_eq!(
        refused.outcome,
        Outcome::Fail,
        "a failed compare is definite"
    );
    assert!(refused.error.unwrap().contains("compare failed"));
    assert_eq!(node.value("r17"), json!(4));
    let k = || "r17".to_string();
    assert_eq!(
        node.log(),
        vec![
            Op::Get { key: k() },
            Op::Put {
                key: k(),
                value: json!(3)
            },
            Op::Get { key: k() },
            Op::Cas {
                key: k(),
                from: json!(3),
                to: json!(4)
            },
            Op::Cas {
                key: k(),
                from: json!(3),
                to: json!(1)
            },
        ]
    );
    // Malformed operations fail without reaching the node.
    for (f, key, value) in [
        ("read", None, json!(null)),
        ("cas", Some(1), json!(3)),
        ("incr", Some(1), json!(1)),
    ] {
        assert_eq!(
            run(&mut c, f, key, value).await.outcome,
            Outcome::Fail,
            "{f}"
        );
    }
    assert_eq!(node.log().len(), 5);
}

#[tokio::test]
async fn quorum_registers_have_no_cas() {
    let node = FakeNode::kv().await;
    let mut c = node.client(WorkloadKind::Register, "quorum");
    assert_eq!(
        run(&mut c, "write", Some(1), json!(2)).await.outcome,
        Outcome::Ok
    );
    let cas = run(&mut c, "cas", Some(1), json!([2, 3])).await;
    assert_eq!(cas.outcome, Outcome::Fail);
    assert_eq!(cas_count(&node.log()), 0, "nothing sent");
}

#[tokio::test]
async fn replies_map_to_outcomes_and_silence_is_info() {
    type Make = Box<dyn Fn() -> Action + Send + Sync>;
    // (what the node does, the outcome, whether the client must wait out the timeout)
    let cases: Vec<(Make, Outcome, bool)> = vec![
        (
            Box::new(|| Action::Reply(Reply::fail("no leader"))),
            Outcome::Fail,
            false,
        ),
        (
            Box::new(|| Action::Reply(Reply::unknown("timed out replicating"))),
            Outcome::Info,
            false,
        ),
        (Box::new(|| Action::Silent), Outcome::Info, true),
        (Box::new(|| Action::Close), Outcome::Info, false),
        (
            Box::new(|| Action::Raw(r#"{"id":999,"status":"ok"}"#.into())),
            Outcome::Info,
            false,
        ),
        (
            Box::new(|| Action::Raw("garbage".into())),
            Outcome::Info,
            false,
        ),
    ];
    for (i, (action, expected, waits)) in cases.into_iter().enumerate() {
        let node = FakeNode::start(move |_, _| action()).await;
        let mut c = node.client(WorkloadKind::Register, "raft-kv");
        let started = Instant::now();
        let reply = run(&mut c, "write", Some(1), json!(1)).await;
        let took = started.elapsed();
        assert_eq!(reply.outcome, expected, "case {i}: {reply:?}");
        assert!(reply.error.is_some(), "case {i}");
        assert!(
            took < TIMEOUT + Duration::from_millis(500),
            "case {i} took {took:?}"
        );
        assert_eq!(took >= TIMEOUT, waits, "case {i} took {took:?}");
    }
}

#[tokio::test]
async fn a_node_that_is_not_there_is_a_definite_fail() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = target_client(
        WorkloadKind::Register,
        "raft-kv",
        format!("127.0.0.1:{port}"),
        &options(),
    );
    let reply = run(&mut c, "write", Some(1), json!(1)).await;
    assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
}

#[tokio::test]
async fn set_adds_retry_a_lost_cas_and_read_the_array() {
    // The first two cas attempts lose to a concurrent add slipped in just before them.
    let mut raced = 0;
    let node = FakeNode::start(move |kv, op| {
        if let (Op::Cas { key, .. }, true) = (op, raced < 2) {
            let mut set = kv.get(key).as_array().cloned().unwrap_or_default();
            set.push(json!(1000 + raced));
            kv.0.insert(key.clone(), Value::Array(set));
            raced += 1;
        }
        Action::Reply(kv.apply(op))
    })
    .await;
    let mut c = node.client(WorkloadKind::Set, "raft-kv");
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await,
        ClientReply::ok(json!([]))
    );
    assert_eq!(
        run(&mut c, "add", None, json!(7)).await,
        ClientReply::ok(json!(null))
    );
    assert_eq!(node.value(SET_KEY), json!([1000, 1001, 7]));
    let log = node.log();
    assert_eq!(cas_count(&log), 3);
    assert_eq!(log.len(), 1 + 6, "get and cas per attempt");
    assert_eq!(
        log[log.len() - 1],
        Op::Cas {
            key: SET_KEY.into(),
            from: json!([1000, 1001]),
            to: json!([1000, 1001, 7])
        }
    );
    assert_eq!(
        run(&mut c, "add", None, json!(8)).await.outcome,
        Outcome::Ok
    );
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await,
        ClientReply::ok(json!([1000, 1001, 7, 8]))
    );
}

#[tokio::test]
async fn set_adds_give_up_after_a_few_lost_races_and_never_retry_an_unknown_cas() {
    let node = FakeNode::start(|kv, op| match op {
        Op::Cas { .. } => Action::Reply(Reply::fail("compare failed: value is [0]")),
        _ => Action::Reply(kv.apply(op)),
    })
    .await;
    let mut c = node.client(WorkloadKind::Set, "raft-kv");
    let reply = run(&mut c, "add", None, json!(1)).await;
    assert_eq!(reply.outcome, Outcome::Fail);
    assert_eq!(cas_count(&node.log()), ADD_ATTEMPTS);

    let node = FakeNode::start(|kv, op| match op {
        Op::Cas { .. } => Action::Reply(Reply::unknown("leader lost")),
        _ => Action::Reply(kv.apply(op)),
    })
    .await;
    let mut c = node.client(WorkloadKind::Set, "raft-kv");
    assert_eq!(
        run(&mut c, "add", None, json!(1)).await.outcome,
        Outcome::Info
    );
    assert_eq!(cas_count(&node.log()), 1);
}

#[tokio::test]
async fn counter_adds_retry_lost_races_and_reads_start_at_zero() {
    // The first two cas attempts lose to a concurrent add of 10 slipped in just before them.
    let mut raced = 0;
    let node = FakeNode::start(move |kv, op| {
        if let (Op::Cas { key, .. }, true) = (op, raced < 2) {
            let n = kv.get(key).as_i64().unwrap_or(0);
            kv.0.insert(key.clone(), json!(n + 10));
            raced += 1;
        }
        Action::Reply(kv.apply(op))
    })
    .await;
    let mut c = node.client(WorkloadKind::Counter, "raft-kv");
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await,
        ClientReply::ok(json!(0)),
        "a missing counter is 0"
    );
    assert_eq!(
        run(&mut c, "add", None, json!(3)).await,
        ClientReply::ok(json!(null))
    );
    assert_eq!(node.value(COUNTER_KEY), json!(23));
    let log = node.log();
    assert_eq!(cas_count(&log), 3);
    assert_eq!(log.len(), 1 + 6, "get and cas per attempt");
    let k = || COUNTER_KEY.to_string();
    assert_eq!(
        log[1..3],
        [
            Op::Get { key: k() },
            Op::Cas {
                key: k(),
                from: json!(null),
                to: json!(3)
            }
        ]
    );
    assert_eq!(
        log[log.len() - 1],
        Op::Cas {
            key: k(),
            from: json!(20),
            to: json!(23)
        }
    );
    assert_eq!(
        run(&mut c, "add", None, json!(2)).await.outcome,
        Outcome::Ok
    );
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await,
        ClientReply::ok(json!(25))
    );
    // Malformed operations fail without reaching the node.
    let sent = node.log().len();
    for (f, value) in [("add", json!("x")), ("incr", json!(1))] {
        assert_eq!(run(&mut c, f, None, value).await.outcome, Outcome::Fail);
    }
    assert_eq!(node.log().len(), sent);
}

#[tokio::test]
async fn counter_adds_end_fail_on_a_refusal_info_on_no_answer_and_fail_when_out_of_time() {
    // A definite refusal other than a lost race is not retried.
    let node = FakeNode::start(|kv, op| match op {
        Op::Cas { .. } => Action::Reply(Reply::fail("no leader")),
        _ => Action::Reply(kv.apply(op)),
    })
    .await;
    let mut c = node.client(WorkloadKind::Counter, "raft-kv");
    let reply = run(&mut c, "add", None, json!(1)).await;
    assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
    assert_eq!(cas_count(&node.log()), 1);

    // An unanswered cas may have happened: info, never retried.
    let node = FakeNode::start(|kv, op| match op {
        Op::Cas { .. } => Action::Reply(Reply::unknown("leader lost")),
        _ => Action::Reply(kv.apply(op)),
    })
    .await;
    let mut c = node.client(WorkloadKind::Counter, "raft-kv");
    assert_eq!(
        run(&mut c, "add", None, json!(1)).await.outcome,
        Outcome::Info
    );
    assert_eq!(cas_count(&node.log()), 1);

    // Races lost again and again are retried while there is time; the timeout then cuts a get
    // (110 ms each: the third of 300 ms), which wrote nothing, so the add fails.
    let node = FakeNode::start(|kv, op| match op {
        Op::Cas { .. } => Action::Reply(Reply::fail("compare failed: value is 7")),
        _ => Action::Late(Duration::from_millis(110), kv.apply(op)),
    })
    .await;
    let mut c = node.client(WorkloadKind::Counter, "raft-kv");
    let started = Instant::now();
    let reply = run(&mut c, "add", None, json!(1)).await;
    let took = started.elapsed();
    assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
    assert!(reply.error.unwrap().contains("2 lost races"));
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(500),
        "{took:?}"
    );
    assert_eq!(cas_count(&node.log()), 2, "retried while in time");
    assert!(node.value(COUNTER_KEY).is_null(), "nothing written");
}

#[tokio::test]
async fn one_timeout_bounds_a_whole_get_then_cas() {
    // The get takes most of the timeout and the cas is never answered: the cas gets only what
    // is left (a timeout per step would take 500 + 600 ms).
    let timeout = Duration::from_millis(600);
    let node = FakeNode::start(|kv, op| match op {
        Op::Cas { .. } => Action::Silent,
        _ => Action::Late(Duration::from_millis(500), kv.apply(op)),
    })
    .await;
    for kind in [WorkloadKind::Set, WorkloadKind::Bank, WorkloadKind::Counter] {
        let mut c = node.client(kind, "raft-kv");
        let (f, value) = match kind {
            WorkloadKind::Set | WorkloadKind::Counter => ("add", json!(1)),
            _ => ("transfer", json!({"from": "a0", "to": "a1", "amount": 1})),
        };
        let started = Instant::now();
        let reply = c.invoke(&op(f, None, value), timeout).await;
        let took = started.elapsed();
        assert_eq!(reply.outcome, Outcome::Info, "{kind}: {reply:?}");
        assert!(
            took >= timeout && took < Duration::from_millis(1_000),
            "{kind}: {took:?}"
        );
    }
    assert_eq!(cas_count(&node.log()), 3, "each sent its cas");
}

#[tokio::test]
async fn kv_bank_starts_from_initial_balances_and_moves_money_by_cas() {
    let node = FakeNode::kv().await;
    let mut c = node.client(WorkloadKind::Bank, "raft-kv");
    let initial = json!({"a0": 10, "a1": 10, "a2": 10});
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await,
        ClientReply::ok(initial.clone())
    );
    let t = |from: &str, to: &str, amount: i64| json!({"from": from, "to": to, "amount": amount});
    assert_eq!(
        run(&mut c, "transfer", None, t("a0", "a2", 4)).await,
        ClientReply::ok(json!(null))
    );
    let after = json!({"a0": 6, "a1": 10, "a2": 14});
    assert_eq!(
        node.log()[1..],
        [
            Op::Get {
                key: BANK_KEY.into()
            },
            Op::Cas {
                key: BANK_KEY.into(),
                from: json!(null),
                to: after.clone()
            },
        ]
    );
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await,
        ClientReply::ok(after.clone())
    );
    let broke = run(&mut c, "transfer", None, t("a0", "a1", 7)).await;
    assert_eq!(broke.outcome, Outcome::Fail);
    assert!(broke.error.unwrap().contains("insufficient"));
    assert_eq!(cas_count(&node.log()), 1, "a refused transfer sends no cas");
    assert_eq!(
        run(&mut c, "transfer", None, t("a0", "zz", 1))
            .await
            .outcome,
        Outcome::Fail
    );
    assert_eq!(node.value(BANK_KEY), after);
}

#[tokio::test]
async fn kv_bank_transfer_that_loses_its_cas_fails_and_an_unread_bank_writes_nothing() {
    let node = FakeNode::start(|kv, op| {
        if let Op::Cas { key, .. } = op {
            kv.0.insert(key.clone(), json!({"a0": 9, "a1": 11, "a2": 10}));
        }
        Action::Reply(kv.apply(op))
    })
    .await;
    let mut c = node.client(WorkloadKind::Bank, "raft-kv");
    let t = json!({"from": "a1", "to": "a2", "amount": 1});
    let reply = run(&mut c, "transfer", None, t.clone()).await;
    assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
    assert!(reply.error.unwrap().contains("compare failed"));

    let node = FakeNode::start(|_, _| Action::Reply(Reply::unknown("no leader"))).await;
    let mut c = node.client(WorkloadKind::Bank, "raft-kv");
    let reply = run(&mut c, "transfer", None, t).await;
    assert_eq!(
        reply.outcome,
        Outcome::Fail,
        "the get wrote nothing: {reply:?}"
    );
    assert_eq!(cas_count(&node.log()), 0);
    assert_eq!(
        run(&mut c, "read", None, json!(null)).await.outcome,
        Outcome::Info
    );
}

#[tokio::test]
async fn twopc_bank_uses_transfer_and_read_all() {
    let node = FakeNode::start(|_, op| {
        Action::Reply(match op {
            Op::Transfer { .. } => Reply::ok_empty(),
            Op::ReadAll => Reply::ok(json!({"a0": 5, "a1": 15, "a2": 10})),
            other => Reply::fail(format!("no {}", other.name())),
        })
    })
    .await;
    let mut c = node.client(WorkloadKind::Bank, "twopc");
    let t = json!({"from": "a0", "to": "a1", "amount": 5});
    assert_eq!(
        run(&mut c, "transfer", None, t).await,
        ClientReply::ok(json!(null))
    );
    let read = run(&mut c, "read", None, json!(null)).await;
    assert_eq!(read, ClientReply::ok(json!({"a0": 5, "a1": 15, "a2": 10})));
    assert_eq!(
        node.log(),
        vec![
            Op::Transfer {
                from: "a0".into(),
                to: "a1".into(),
                amount: 5
            },
            Op::ReadAll
        ]
    );
}

#[tokio::test]
async fn unsupported_pairs_get_a_client_that_refuses_without_sending() {
    let node = FakeNode::kv().await;
    for kind in [WorkloadKind::Set, WorkloadKind::Counter] {
        let mut c = node.client(kind, "quorum");
        let reply = run(&mut c, "add", None, json!(1)).await;
        assert_eq!(reply.outcome, Outcome::Fail);
        assert!(reply.error.unwrap().contains("raft-kv"));
    }
    assert!(node.log().is_empty());
}
