//! The data raft-kv keeps and sends: log entries, peer messages, and the actor's events.

use crate::protocol::{Op, Reply};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

/// What a log entry asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// Appended by every new leader, so that it commits an entry of its own term.
    Noop,
    Put {
        key: String,
        value: Value,
    },
    Cas {
        key: String,
        from: Value,
        to: Value,
    },
    /// A transaction's micro-ops, applied together (reads run at apply time).
    Txn {
        mops: Vec<crate::txn::Mop>,
    },
}

/// One log entry; its index is its position in the log (the first entry is index 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoteRequest {
    pub term: u64,
    pub candidate: String,
    pub last_log_index: u64,
    pub last_log_term: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoteResponse {
    pub term: u64,
    pub granted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendRequest {
    pub term: u64,
    pub leader: String,
    pub prev_index: u64,
    pub prev_term: u64,
    pub entries: Vec<Entry>,
    pub leader_commit: u64,
    /// The leader's heartbeat round when it sent this (echoed back; confirms read indexes).
    pub round: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendResponse {
    pub term: u64,
    pub success: bool,
    /// On success: the follower's log matches the leader's up to here.
    pub match_index: u64,
    /// On a failed consistency check: where the leader should try next.
    pub hint_next: u64,
    /// Echo of the request's round.
    pub round: u64,
}

/// Node-to-node requests (one `rpc::serve` listener carries all of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerRequest {
    Vote(VoteRequest),
    Append(AppendRequest),
    /// A client operation a follower passes to the node it believes is the leader.
    Forward {
        op: Op,
        budget_ms: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerResponse {
    Vote(VoteResponse),
    Append(AppendResponse),
    /// `None`: the node is not the leader and did nothing with the operation.
    Forwarded {
        reply: Option<Reply>,
    },
}

/// The actor's first answer to a client operation.
#[derive(Debug)]
pub enum Outcome {
    Done(Reply),
    /// Not the leader; this node believes the leader is the named peer. Nothing was appended.
    Redirect(String),
    /// Not the leader and no leader known. Nothing was appended.
    NoLeader,
}

/// Everything the Raft actor reacts to.
#[derive(Debug)]
pub enum Event {
    Client {
        op: Op,
        reply: oneshot::Sender<Outcome>,
    },
    Vote {
        request: VoteRequest,
        reply: oneshot::Sender<VoteResponse>,
    },
    Append {
        request: AppendRequest,
        reply: oneshot::Sender<AppendResponse>,
    },
    /// A vote RPC this node sent in `term` came back (`None`: no answer).
    VoteResult {
        peer: usize,
        term: u64,
        response: Option<VoteResponse>,
    },
    /// An AppendEntries RPC this node sent in `term` came back (`None`: no answer).
    AppendResult {
        peer: usize,
        term: u64,
        response: Option<AppendResponse>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip() {
        let request = PeerRequest::Forward {
            op: Op::Put {
                key: "k".into(),
                value: json!(1),
            },
            budget_ms: 5,
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<PeerRequest>(&line).unwrap(), request);
        let entry = Entry {
            term: 2,
            command: Command::Cas {
                key: "k".into(),
                from: json!(null),
                to: json!("v"),
            },
        };
        let line = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), entry);
        let response = PeerResponse::Forwarded {
            reply: Some(Reply::unknown("x")),
        };
        let line = serde_json::to_string(&response).unwrap();
        assert_eq!(
            serde_json::from_str::<PeerResponse>(&line).unwrap(),
            response
        );
    }
}
