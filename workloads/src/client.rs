//! Clients: what runs one [`OpTemplate`] against a system under test and says how it ended.
//!
//! The runner owns one [`Client`] per logical process and replaces it after an `info`, so a
//! client may keep a connection and state between operations but never has two open at once.
//! A client answers `ok` only on a reply that says the operation happened; anything it cannot
//! rule out (a timeout, a connection lost after sending) is `info` (DESIGN.md §3).

use std::time::Duration;

use serde_json::Value;
use targets::protocol::{Op, Reply};
use tokio::time::Instant;

use crate::generator::{OpTemplate, Outcome};

/// How one invocation ended, as the history records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientReply {
    pub outcome: Outcome,
    /// What the operation returned (a read's value); `null` if nothing.
    pub output: Value,
    /// Why it failed or is unknown; `None` when it is `ok`.
    pub error: Option<String>,
}

impl ClientReply {
    /// It happened and returned `output`.
    pub fn ok(output: Value) -> Self {
        Self {
            outcome: Outcome::Ok,
            output,
            error: None,
        }
    }

    /// It certainly did not happen.
    pub fn fail(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Fail,
            output: Value::Null,
            error: Some(error.into()),
        }
    }

    /// It may or may not have happened.
    pub fn info(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Info,
            output: Value::Null,
            error: Some(error.into()),
        }
    }

    /// The one-to-one mapping of a node's reply: ok → `ok` with its value, fail → `fail`,
    /// unknown → `info`.
    pub fn from_reply(reply: Reply) -> Self {
        match reply {
            Reply::Ok { value } => Self::ok(value),
            Reply::Fail { error } => Self::fail(error),
            Reply::Unknown { error } => Self::info(error),
        }
    }
}

/// Runs operations of one logical process against a system.
#[async_trait::async_trait]
pub trait Client: Send {
    /// Runs one operation; never panics; anything ambiguous (timeout, connection lost after
    /// sending) is [`Outcome::Info`]. Returns within about `timeout`.
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply;
}

/// A connection to one `fissure-node` whose calls all end by a deadline, so an operation made
/// of several calls (get, then cas) stays within its timeout as a whole.
pub(crate) struct Conn {
    addr: String,
    inner: targets::client::Client,
}

impl Conn {
    pub(crate) fn new(addr: String) -> Self {
        Self {
            inner: targets::client::Client::proven(addr.clone()),
            addr,
        }
    }

    /// Sends `op` and waits for its reply until `deadline`. Out of time before sending: `fail`
    /// (nothing was sent). Cut off by the deadline: `unknown`, and the connection is replaced so
    /// that a late reply cannot be read as the next call's.
    pub(crate) async fn call(&mut self, op: Op, deadline: Instant) -> Reply {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Reply::fail(format!("out of time before sending {}", op.name()));
        }
        match tokio::time::timeout(left, self.inner.call(op, left)).await {
            Ok(reply) => reply,
            Err(_) => {
                self.inner = targets::client::Client::proven(self.addr.clone());
                Reply::unknown(format!("no answer from {} within {left:?}", self.addr))
            }
        }
    }

    /// Reads `key` as an operation's result: a missing key reads as `absent` (the workload's
    /// empty value), anything else as it came.
    pub(crate) async fn read_key(
        &mut self,
        key: &str,
        absent: Value,
        deadline: Instant,
    ) -> ClientReply {
        let get = Op::Get { key: key.into() };
        match self.call(get, deadline).await {
            Reply::Ok { value: Value::Null } => ClientReply::ok(absent),
            other => ClientReply::from_reply(other),
        }
    }
}

/// The client of a workload the target cannot run: every operation fails with the reason, and
/// nothing is sent.
pub struct Refuse {
    pub why: String,
}

#[async_trait::async_trait]
impl Client for Refuse {
    async fn invoke(&mut self, _op: &OpTemplate, _timeout: Duration) -> ClientReply {
        ClientReply::fail(self.why.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_map_one_to_one() {
        assert_eq!(
            ClientReply::from_reply(Reply::ok(json!(3))),
            ClientReply::ok(json!(3))
        );
        let fail = ClientReply::from_reply(Reply::fail("no"));
        assert_eq!(
            (fail.outcome, fail.error.as_deref()),
            (Outcome::Fail, Some("no"))
        );
        let info = ClientReply::from_reply(Reply::unknown("maybe"));
        assert_eq!(
            (info.outcome, info.output, info.error.as_deref()),
            (Outcome::Info, Value::Null, Some("maybe"))
        );
    }

    #[tokio::test]
    async fn a_spent_deadline_fails_without_sending() {
        // Nothing listens on port 1; a sent request would be a connect error, not this one.
        let mut conn = Conn::new("127.0.0.1:1".into());
        let reply = conn.call(Op::Get { key: "k".into() }, Instant::now()).await;
        assert_eq!(reply, Reply::fail("out of time before sending get"));
    }
}
