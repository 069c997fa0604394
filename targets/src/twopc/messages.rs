//! What twopc nodes say to each other (JSON lines over [`crate::rpc`]) and what they write in
//! their durable logs.
//!
//! Every peer request is a [`Msg`] and every answer an [`Answer`]; a node answers a message its
//! role does not serve with [`Answer::Error`]. [`Msg::Inspect`] is a read-only diagnostic
//! (balances, prepared transactions, undelivered decisions) used by tests and operators; it
//! takes no locks, so its balances are not a consistent snapshot while transfers run.

use crate::protocol::{Balances, Op, Reply};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A transaction id: the coordinator's incarnation (bumped durably at every start) and a
/// sequence number within it, so ids never repeat across coordinator restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    pub epoch: u64,
    pub seq: u64,
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

/// One account's change in a transfer: `delta` is negative for the debit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    pub account: String,
    pub delta: i64,
}

/// A peer request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Msg {
    /// Coordinator → participant: which accounts do you hold?
    Accounts,
    /// Coordinator → participant: lock these accounts, check the effects keep every balance
    /// non-negative, log them durably and vote.
    Prepare { txn: TxnId, effects: Vec<Effect> },
    /// Coordinator → participant: the decision on a transaction (commit or abort).
    Decide { txn: TxnId, commit: bool },
    /// Coordinator → participant: take shared locks on all your accounts and read them; hold the
    /// locks until [`Msg::ReadRelease`] (or a lease runs out).
    ReadLock { txn: TxnId },
    /// Coordinator → participant: drop a read's locks; the answer says whether they were held
    /// without a break since [`Msg::ReadLock`].
    ReadRelease { txn: TxnId },
    /// Participant → coordinator: what was decided for this transaction?
    QueryDecision { txn: TxnId },
    /// Participant → coordinator: a client operation the participant forwards.
    Client { op: Op },
    /// Anyone → any node: diagnostics (no locks taken).
    Inspect,
}

/// A participant's vote on a prepare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "vote", rename_all = "kebab-case")]
pub enum Vote {
    Yes,
    No { reason: String },
}

/// What the coordinator has decided, as it answers a participant's query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Commit,
    Abort,
    /// Still in its prepare phase: ask again later.
    Pending,
}

/// What a participant did with a transaction, as it acknowledges a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Committed,
    Aborted,
    /// A commit for a transaction the participant holds no record of (already applied and
    /// compacted away): nothing to do.
    Unknown,
}

/// A node's diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub id: String,
    pub role: String,
    /// Participant: its committed balances (not a consistent snapshot).
    pub balances: Balances,
    /// Participant: transactions prepared and not yet decided.
    pub prepared: Vec<TxnId>,
    /// Participant: snapshot reads holding shared locks.
    pub reads: Vec<TxnId>,
    /// Participant: lock requests waiting.
    pub waiting: usize,
    /// Participant: decisions applied since start.
    pub committed: u64,
    pub aborted: u64,
    /// Coordinator: transactions begun or decided whose decision is not yet acknowledged by
    /// every participant.
    pub live: Vec<TxnId>,
}

/// A peer answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Answer {
    Accounts { accounts: Vec<String> },
    Vote { vote: Vote },
    Decided { outcome: Outcome },
    Snapshot { balances: Balances },
    Released { held: bool },
    Decision { decision: Decision },
    Client { reply: Reply },
    Status { status: Status },
    Error { error: String },
}

/// A record of a participant's durable log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rec", rename_all = "kebab-case")]
pub enum ParticipantRecord {
    /// Balances as of this point (the first record; written at first start and by compaction).
    Snapshot {
        balances: Balances,
    },
    /// Voted yes: the transaction's effects on this participant's accounts.
    Prepared {
        txn: TxnId,
        effects: Vec<Effect>,
    },
    Committed {
        txn: TxnId,
    },
    Aborted {
        txn: TxnId,
    },
}

/// A record of the coordinator's durable log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rec", rename_all = "kebab-case")]
pub enum CoordinatorRecord {
    /// Written before any prepare is sent.
    Begin {
        txn: TxnId,
        participants: Vec<String>,
    },
    /// Written before the decision is acted on (a commit before the client hears `ok`).
    Decision { txn: TxnId, commit: bool },
    /// Every participant acknowledged the decision: the transactions can be forgotten.
    Done { txns: Vec<TxnId> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json_lines() {
        let txn = TxnId { epoch: 2, seq: 7 };
        let msg = Msg::Prepare {
            txn,
            effects: vec![Effect {
                account: "a1".into(),
                delta: -5,
            }],
        };
        let line = serde_json::to_string(&msg).unwrap();
        assert!(
            line.starts_with(r#"{"type":"prepare","txn":{"epoch":2,"seq":7}"#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Msg>(&line).unwrap(), msg);
        let answer = Answer::Client {
            reply: Reply::fail("no"),
        };
        let line = serde_json::to_string(&answer).unwrap();
        assert_eq!(serde_json::from_str::<Answer>(&line).unwrap(), answer);
        let forwarded = Msg::Client { op: Op::ReadAll };
        let line = serde_json::to_string(&forwarded).unwrap();
        assert_eq!(serde_json::from_str::<Msg>(&line).unwrap(), forwarded);
        assert_eq!(txn.to_string(), "2.7");
    }
}
