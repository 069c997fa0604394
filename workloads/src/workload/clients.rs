//! The workloads' clients: each maps a workload's operations onto a target's protocol.
//!
//! On key-value targets (raft-kv, echo) the bank, the set and the counter each live in one key,
//! changed by get then cas: the cas makes the read-modify-write atomic, and a cas whose compare
//! fails changed nothing, so it is a definite `fail`. A step before the final cas that gets no
//! answer wrote nothing either, so it is a `fail` too; only an unanswered final cas is `info`.

use std::time::Duration;

use serde_json::{json, Value};
use targets::protocol::{Balances, Op, Reply};
use targets::txn::Mop;
use tokio::time::Instant;

use crate::bank::Transfer;
use crate::client::{Client, ClientReply, Conn};
use crate::generator::OpTemplate;

/// The key holding the whole bank on a key-value target.
pub(crate) const BANK_KEY: &str = "bank";
/// The key holding the whole set on a key-value target.
pub(crate) const SET_KEY: &str = "set";
/// Attempts of a set add whose cas keeps losing to concurrent adds.
pub(crate) const ADD_ATTEMPTS: usize = 5;
/// The key holding the counter on a key-value target.
pub(crate) const COUNTER_KEY: &str = "counter";
/// How raft-kv and echo begin the error of a cas whose compare failed (it changed nothing).
const COMPARE_FAILED: &str = "compare failed";

fn unsupported(workload: &str, op: &OpTemplate) -> ClientReply {
    ClientReply::fail(format!(
        "the {workload} workload has no operation {:?}",
        op.f
    ))
}

/// The target key of register `key` N: `rN`.
fn register_key(key: Option<&Value>) -> Result<String, String> {
    match key {
        Some(Value::Number(n)) if n.is_u64() => Ok(format!("r{n}")),
        other => Err(format!(
            "a register operation needs an integer key, not {other:?}"
        )),
    }
}

/// Registers on raft-kv, echo (with cas) or quorum (without).
pub(crate) struct RegisterClient {
    conn: Conn,
    has_cas: bool,
}

impl RegisterClient {
    pub(crate) fn new(addr: String, has_cas: bool) -> Self {
        Self {
            conn: Conn::new(addr),
            has_cas,
        }
    }
}

#[async_trait::async_trait]
impl Client for RegisterClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        let key = match register_key(op.key.as_ref()) {
            Ok(key) => key,
            Err(e) => return ClientReply::fail(e),
        };
        let request = match op.f.as_str() {
            "read" => Op::Get { key },
            "write" => Op::Put {
                key,
                value: op.value.clone(),
            },
            "cas" if !self.has_cas => {
                return ClientReply::fail("this target has no cas (quorum: use raft-kv for cas)")
            }
            "cas" => match op.value.as_array().map(Vec::as_slice) {
                Some([from, to]) => Op::Cas {
                    key,
                    from: from.clone(),
                    to: to.clone(),
                },
                _ => return ClientReply::fail(format!("cas needs [from, to], not {}", op.value)),
            },
            _ => return unsupported("register", op),
        };
        ClientReply::from_reply(self.conn.call(request, deadline).await)
    }
}

/// The bank on twopc: its own transfer and read-all.
pub(crate) struct TwopcBankClient {
    conn: Conn,
}

impl TwopcBankClient {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            conn: Conn::new(addr),
        }
    }
}

#[async_trait::async_trait]
impl Client for TwopcBankClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        let request = match op.f.as_str() {
            "transfer" => match Transfer::parse(&op.value) {
                Ok(t) => Op::Transfer {
                    from: t.from,
                    to: t.to,
                    amount: t.amount,
                },
                Err(e) => return ClientReply::fail(e),
            },
            "read" => Op::ReadAll,
            _ => return unsupported("bank", op),
        };
        ClientReply::from_reply(self.conn.call(request, deadline).await)
    }
}

/// The bank in one key-value key, [`BANK_KEY`], as a JSON map of balances. The key starts
/// missing and a missing key means every account at its initial balance, so the first transfer
/// initialises it with its own cas from `null`: no set-up step, and no write outside the history.
pub(crate) struct KvBankClient {
    conn: Conn,
    initial: Balances,
}

impl KvBankClient {
    pub(crate) fn new(addr: String, initial: Balances) -> Self {
        Self {
            conn: Conn::new(addr),
            initial,
        }
    }

    async fn transfer(&mut self, op: &OpTemplate, deadline: Instant) -> ClientReply {
        let transfer = match Transfer::parse(&op.value) {
            Ok(t) => t,
            Err(e) => return ClientReply::fail(e),
        };
        let get = Op::Get {
            key: BANK_KEY.into(),
        };
        let stored = match self.conn.call(get, deadline).await {
            Reply::Ok { value } => value,
            Reply::Fail { error } | Reply::Unknown { error } => {
                return ClientReply::fail(format!("reading the balances: {error}"))
            }
        };
        let mut balances = match &stored {
            Value::Null => self.initial.clone(),
            other => match serde_json::from_value::<Balances>(other.clone()) {
                Ok(balances) => balances,
                Err(e) => return ClientReply::fail(format!("the bank holds {other}: {e}")),
            },
        };
        if let Err(e) = transfer.apply(&mut balances) {
            return ClientReply::fail(e);
        }
        let cas = Op::Cas {
            key: BANK_KEY.into(),
            from: stored,
            to: json!(balances),
        };
        match self.conn.call(cas, deadline).await {
            Reply::Ok { .. } => ClientReply::ok(Value::Null),
            other => ClientReply::from_reply(other),
        }
    }
}

#[async_trait::async_trait]
impl Client for KvBankClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        match op.f.as_str() {
            "transfer" => self.transfer(op, deadline).await,
            "read" => {
                let get = Op::Get {
                    key: BANK_KEY.into(),
                };
                match self.conn.call(get, deadline).await {
                    Reply::Ok { value: Value::Null } => ClientReply::ok(json!(self.initial)),
                    // Whatever else is there is what the read saw: the checker judges it.
                    other => ClientReply::from_reply(other),
                }
            }
            _ => unsupported("bank", op),
        }
    }
}

/// The set in one key-value key, [`SET_KEY`], as a JSON array (a missing key is the empty
/// set). An add is get then cas(old, old + [x]), tried again on a failed cas: every failed
/// attempt certainly did not happen, so retrying cannot add twice.
pub(crate) struct KvSetClient {
    conn: Conn,
}

impl KvSetClient {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            conn: Conn::new(addr),
        }
    }

    async fn add(&mut self, element: &Value, deadline: Instant) -> ClientReply {
        let mut last = String::new();
        for _ in 0..ADD_ATTEMPTS {
            let get = Op::Get {
                key: SET_KEY.into(),
            };
            let stored = match self.conn.call(get, deadline).await {
                Reply::Ok { value } => value,
                Reply::Fail { error } | Reply::Unknown { error } => {
                    return ClientReply::fail(format!("reading the set: {error}"))
                }
            };
            let mut elements = match &stored {
                Value::Null => Vec::new(),
                Value::Array(elements) => elements.clone(),
                other => return ClientReply::fail(format!("the set holds {other}, not an array")),
            };
            elements.push(element.clone());
            let cas = Op::Cas {
                key: SET_KEY.into(),
                from: stored,
                to: Value::Array(elements),
            };
            match self.conn.call(cas, deadline).await {
                Reply::Ok { .. } => return ClientReply::ok(Value::Null),
                Reply::Fail { error } => last = error,
                Reply::Unknown { error } => return ClientReply::info(error),
            }
        }
        ClientReply::fail(format!("{ADD_ATTEMPTS} cas attempts failed; last: {last}"))
    }
}

#[async_trait::async_trait]
impl Client for KvSetClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        match op.f.as_str() {
            "add" => self.add(&op.value, deadline).await,
            "read" => self.conn.read_key(SET_KEY, json!([]), deadline).await,
            _ => unsupported("set", op),
        }
    }
}

/// The counter in one key-value key, [`COUNTER_KEY`], as a JSON integer (a missing key is 0).
/// An add of n is get then cas(old, old + n), tried again while the cas loses a race (its
/// compare failed, so it certainly did not happen) until the op's timeout: retrying cannot add
/// twice. Any other failed cas is a `fail`, an unanswered one `info`.
pub(crate) struct KvCounterClient {
    conn: Conn,
}

impl KvCounterClient {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            conn: Conn::new(addr),
        }
    }

    async fn add(&mut self, increment: &Value, deadline: Instant) -> ClientReply {
        let Some(increment) = increment.as_i64() else {
            return ClientReply::fail(format!("an add needs an integer, not {increment}"));
        };
        let mut lost = 0usize;
        loop {
            if lost > 0 && Instant::now() >= deadline {
                return ClientReply::fail(format!(
                    "{lost} cas attempts lost to concurrent adds before the timeout"
                ));
            }
            let get = Op::Get {
                key: COUNTER_KEY.into(),
            };
            let stored = match self.conn.call(get, deadline).await {
                Reply::Ok { value } => value,
                Reply::Fail { error } | Reply::Unknown { error } if lost > 0 => {
                    return ClientReply::fail(format!(
                        "reading the counter after {lost} lost races: {error}"
                    ))
                }
                Reply::Fail { error } | Reply::Unknown { error } => {
                    return ClientReply::fail(format!("reading the counter: {error}"))
                }
            };
            let current = match &stored {
                Value::Null => 0,
                other => match other.as_i64() {
                    Some(n) => n,
                    None => {
                        return ClientReply::fail(format!(
                            "the counter holds {other}, not an integer"
                        ))
                    }
                },
            };
            let Some(next) = current.checked_add(increment) else {
                return ClientReply::fail(format!(
                    "the counter would overflow: {current} + {increment}"
                ));
            };
            let cas = Op::Cas {
                key: COUNTER_KEY.into(),
                from: stored,
                to: json!(next),
            };
            match self.conn.call(cas, deadline).await {
                Reply::Ok { .. } => return ClientReply::ok(Value::Null),
                Reply::Fail { error } if error.starts_with(COMPARE_FAILED) => lost += 1,
                other => return ClientReply::from_reply(other),
            }
        }
    }
}

#[async_trait::async_trait]
impl Client for KvCounterClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        match op.f.as_str() {
            "add" => self.add(&op.value, deadline).await,
            // Whatever is there is what the read saw: the checker judges it.
            "read" => self.conn.read_key(COUNTER_KEY, json!(0), deadline).await,
            _ => unsupported("counter", op),
        }
    }
}

/// The target key of transactional key N: `tN` (apart from the register workload's `rN`).
fn txn_key(key: &Value) -> Result<String, String> {
    match key.as_i64() {
        Some(n) => Ok(format!("t{n}")),
        None => Err(format!("a micro-op's key must be an integer, not {key}")),
    }
}

/// Transactions (append, wr) on raft-kv and echo: one `txn` request, keys N as `tN`. The
/// answer maps one to one: ok (committed, reads filled in), fail (certainly not applied),
/// unknown (`info`).
pub(crate) struct KvTxnClient {
    conn: Conn,
}

impl KvTxnClient {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            conn: Conn::new(addr),
        }
    }

    /// The history's micro-ops as the target's.
    fn request(value: &Value) -> Result<Vec<Mop>, String> {
        let mops = value
            .as_array()
            .ok_or_else(|| format!("a txn needs a list of micro-ops, not {value}"))?;
        mops.iter()
            .map(|m| match m.as_array().map(Vec::as_slice) {
                Some([Value::String(f), key, v]) => Ok(Mop(f.clone(), txn_key(key)?, v.clone())),
                _ => Err(format!("micro-op {m} is not [f, key, value]")),
            })
            .collect()
    }

    /// The target's completed micro-ops as the history's (`tN` back to N).
    fn completed(value: Value) -> Result<Value, String> {
        let done: Vec<Mop> = serde_json::from_value(value)
            .map_err(|e| format!("the txn answer holds no micro-ops: {e}"))?;
        done.into_iter()
            .map(|Mop(f, key, v)| {
                let n: i64 = key
                    .strip_prefix('t')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("the txn answer names key {key:?}, not tN"))?;
                Ok(json!([f, n, v]))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Client for KvTxnClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        if op.f != "txn" {
            return unsupported("transactional", op);
        }
        let mops = match Self::request(&op.value) {
            Ok(mops) => mops,
            Err(e) => return ClientReply::fail(e),
        };
        match self.conn.call(Op::Txn { mops }, deadline).await {
            Reply::Ok { value } => match Self::completed(value) {
                Ok(done) => ClientReply::ok(done),
                // It committed, but what it read cannot be told: not an ok the checker can use.
                Err(e) => ClientReply::info(e),
            },
            other => ClientReply::from_reply(other),
        }
    }
}
