//! The client protocol, one for all three modes: JSON lines over TCP.
//!
//! A client opens a TCP connection to a node's `--listen` address and writes one request per line;
//! the node answers each with one response line carrying the same `id` (responses to requests on
//! one connection come back in order). Ids are chosen by the client, so a history can name them.
//!
//! ```text
//! → {"id":1,"op":"put","key":"k","value":"v"}
//! ← {"id":1,"status":"ok"}
//! → {"id":2,"op":"cas","key":"k","from":"v","to":"w"}
//! ← {"id":2,"status":"fail","error":"compare failed: value is \"x\""}
//! → {"id":3,"op":"get","key":"k"}
//! ← {"id":3,"status":"unknown","error":"no leader within 2s"}
//! → {"id":4,"op":"status"}
//! ← {"id":4,"status":"ok","value":{"id":"n2","role":"follower","leader":"n1","term":3}}
//! ```
//!
//! Status is exactly one of: `ok` (it happened; `value` holds the result), `fail` (it certainly did
//! not happen), `unknown` (it may or may not have happened, e.g. a timeout after replication
//! started). These map one-to-one onto a history's `ok`, `fail` and `info`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A request line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

/// What a client asks. raft-kv and quorum serve the key-value operations; twopc serves the bank
/// operations. A node answers `fail` to an operation its mode does not serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: Value,
    },
    Cas {
        key: String,
        from: Value,
        to: Value,
    },
    /// Move `amount` from one account to another (twopc).
    Transfer {
        from: String,
        to: String,
        amount: i64,
    },
    /// A consistent snapshot of every account's balance (twopc).
    ReadAll,
    /// Micro-ops applied atomically (raft-kv, echo): `{"op":"txn","mops":[["append","t1",3],
    /// ["r","t2",null]]}`; an `ok` answer's value is the micro-ops with every read filled in
    /// (see [`crate::txn`]).
    Txn {
        mops: Vec<crate::txn::Mop>,
    },
    /// The answering node's own view of its role ([`NodeStatus`]), answered at once and locally
    /// (never forwarded, never logged), so a controller can find the primaries.
    Status,
}

impl Op {
    /// The history function name for this operation.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Cas { .. } => "cas",
            Op::Transfer { .. } => "transfer",
            Op::ReadAll => "read-all",
            Op::Txn { .. } => "txn",
            Op::Status => "status",
        }
    }
}

/// A response line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(flatten)]
    pub reply: Reply,
}

/// The outcome of one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Reply {
    /// It happened. `value`: a get's value (`null` for a missing key), a read-all's balances.
    Ok {
        #[serde(default, skip_serializing_if = "Value::is_null")]
        value: Value,
    },
    /// It certainly did not happen.
    Fail { error: String },
    /// It may or may not have happened.
    Unknown { error: String },
}

impl Reply {
    pub fn ok(value: Value) -> Reply {
        Reply::Ok { value }
    }
    pub fn ok_empty() -> Reply {
        Reply::Ok { value: Value::Null }
    }
    pub fn fail(error: impl Into<String>) -> Reply {
        Reply::Fail {
            error: error.into(),
        }
    }
    pub fn unknown(error: impl Into<String>) -> Reply {
        Reply::Unknown {
            error: error.into(),
        }
    }
}

/// What a node says about itself in answer to [`Op::Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's own id.
    pub id: String,
    /// raft-kv: `leader`, `follower` or `candidate`; quorum: `replica`; twopc: `coordinator` or
    /// `participant`.
    pub role: String,
    /// The primary this node knows of (itself included): the Raft leader, the 2PC coordinator;
    /// `null` when none is known or the system has none.
    pub leader: Option<String>,
    /// The Raft term; `null` for systems without terms.
    pub term: Option<u64>,
}

impl NodeStatus {
    /// The `ok` answer carrying this status.
    pub fn reply(&self) -> Reply {
        Reply::ok(serde_json::to_value(self).expect("a status serializes"))
    }

    /// Reads a status out of an `ok` answer's value.
    pub fn from_value(value: &Value) -> Result<NodeStatus, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("not a node status: {e}"))
    }

    /// True for the node(s) that lead: a Raft leader, a 2PC coordinator.
    pub fn is_primary(&self) -> bool {
        matches!(self.role.as_str(), "leader" | "coordinator")
    }
}

/// Balances by account, as a read-all returns them.
pub type Balances = BTreeMap<String, i64>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_format_is_as_documented() {
        let req: Request =
            serde_json::from_str(r#"{"id":2,"op":"cas","key":"k","from":"v","to":"w"}"#).unwrap();
        assert_eq!(
            req.op,
            Op::Cas {
                key: "k".into(),
                from: json!("v"),
                to: json!("w")
            }
        );
        let line = serde_json::to_string(&Response {
            id: 1,
            reply: Reply::ok_empty(),
        })
        .unwrap();
        assert_eq!(line, r#"{"id":1,"status":"ok"}"#);
        let line = serde_json::to_string(&Response {
            id: 3,
            reply: Reply::unknown("timeout"),
        })
        .unwrap();
        assert_eq!(line, r#"{"id":3,"status":"unknown","error":"timeout"}"#);
        let req: Request = serde_json::from_str(r#"{"id":9,"op":"read-all"}"#).unwrap();
        assert_eq!(req.op, Op::ReadAll);
        let req: Request = serde_json::from_str(
            r#"{"id":5,"op":"txn","mops":[["append","t1",3],["r","t2",null]]}"#,
        )
        .unwrap();
        assert_eq!(
            req.op,
            Op::Txn {
                mops: vec![
                    crate::txn::Mop::append("t1", json!(3)),
                    crate::txn::Mop::read("t2")
                ]
            }
        );
    }

    #[test]
    fn status_wire_format() {
        let req: Request = serde_json::from_str(r#"{"id":1,"op":"status"}"#).unwrap();
        assert_eq!(req.op, Op::Status);
        assert_eq!(req.op.name(), "status");
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"id":1,"op":"status"}"#
        );
        let status = NodeStatus {
            id: "n2".into(),
            role: "follower".into(),
            leader: Some("n1".into()),
            term: Some(3),
        };
        let line = serde_json::to_string(&Response {
            id: 1,
            reply: status.reply(),
        })
        .unwrap();
        // Key order inside `value` is serde_json's (sorted); compare as JSON.
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"id":1,"status":"ok",
                   "value":{"id":"n2","role":"follower","leader":"n1","term":3}})
        );
        let back: Response = serde_json::from_str(&line).unwrap();
        let Reply::Ok { value } = back.reply else {
            panic!("not ok: {line}");
        };
        assert_eq!(NodeStatus::from_value(&value).unwrap(), status);
        assert!(!status.is_primary());
        // Systems without a leader or terms send explicit nulls.
        let replica = NodeStatus {
            id: "n1".into(),
            role: "replica".into(),
            leader: None,
            term: None,
        };
        assert_eq!(
            serde_json::to_value(&replica).unwrap(),
            json!({"id":"n1","role":"replica","leader":null,"term":null})
        );
        assert!(NodeStatus::from_value(&json!({"role": "leader"})).is_err());
    }
}
