//! The edges of a node: client requests (with forwarding to the leader) and peer RPCs, both
//! turned into events for the actor.
//!
//! Reply semantics (see `protocol`): `ok` only after the operation committed and was applied;
//! `fail` only when it certainly never took effect (no leader took it, a cas compare failed, or
//! another entry committed in its place); `unknown` when a write may have been appended somewhere
//! and its fate is not known by the deadline. A get never changes anything, so a get that cannot
//! be answered in time is a `fail`.

use super::types::{AppendResponse, Event, Outcome, PeerRequest, PeerResponse, VoteResponse};
use super::Bug;
use crate::node::Service;
use crate::protocol::{Op, Reply};
use crate::rpc::Peer;
use crate::txn::Mop;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout_at, Instant};

/// How long to wait before asking again when no leader is known.
const RETRY: Duration = Duration::from_millis(20);

pub struct KvService {
    pub events: mpsc::UnboundedSender<Event>,
    pub peers: HashMap<String, Arc<Peer>>,
    pub request_timeout: Duration,
    /// The transaction bugs live here, in how a node turns a client's transaction into
    /// requests to its actor; the others live in the actor.
    pub bug: Bug,
}

enum Forwarded {
    Reply(Reply),
    NotLeader,
}

impl Service for KvService {
    /// A client's operation, answered within `--request-timeout-ms`. A follower forwards it to
    /// the leader it knows over the peer RPC (the leader answers for it); while no leader is
    /// known it waits and asks again, and answers `fail` at the deadline (nothing was appended).
    async fn handle(&self, op: Op) -> Reply {
        let deadline = Instant::now() + self.request_timeout;
        self.serve(op, deadline, false)
            .await
            .expect("a request that is not forwarded always gets a reply")
    }
}

impl KvService {
    /// Serves `op` by `deadline`. A `forwarded` operation is never forwarded again: if this node
    /// is not the leader, the answer is `None` (nothing done).
    pub async fn serve(&self, op: Op, deadline: Instant, forwarded: bool) -> Option<Reply> {
        if let (Op::Txn { mops }, false) = (&op, forwarded) {
            let reads = mops.iter().any(Mop::is_read);
            let writes = mops.iter().any(|m| !m.is_read());
            match self.bug {
                Bug::NonAtomicTxn if mops.len() > 1 => {
                    return Some(self.txn_piecewise(mops, deadline).await)
                }
                Bug::TxnLocalRead if reads && writes => {
                    return Some(self.txn_local_read(mops, deadline).await)
                }
                _ => {}
            }
        }
        self.serve_one(op, deadline, forwarded).await
    }

    /// Planted bug `non-atomic-txn`: each micro-op is a transaction of its own, proposed after
    /// the previous one was applied, so other transactions' entries land between them. Once a
    /// write took effect, a later failure leaves the transaction half done: `unknown`.
    async fn txn_piecewise(&self, mops: &[Mop], deadline: Instant) -> Reply {
        let mut done = Vec::with_capacity(mops.len());
        let mut wrote = false;
        for mop in mops {
            let piece = Op::Txn {
                mops: vec![mop.clone()],
            };
            match self.serve_one(piece, deadline, false).await {
                Some(Reply::Ok { value }) => match completed(value) {
                    Ok(mut one) => done.append(&mut one),
                    Err(e) => return Reply::unknown(e),
                },
                Some(Reply::Fail { error }) if !wrote => return Reply::fail(error),
                Some(Reply::Fail { error } | Reply::Unknown { error }) => {
                    return Reply::unknown(format!(
                        "part of the transaction may have applied: {error}"
                    ))
                }
                None => return Reply::unknown("a micro-op got no answer"),
            }
            wrote |= !mop.is_read();
        }
        Reply::ok(serde_json::json!(done))
    }

    /// Planted bug `txn-local-read`: the transaction runs against this node's applied state (a
    /// read-only transaction of every key it touches, answered locally by the actor), and only
    /// its writes go through the log, later. Nothing checks that what it read is still there.
    async fn txn_local_read(&self, mops: &[Mop], deadline: Instant) -> Reply {
        let mut keys: Vec<&str> = mops.iter().map(Mop::key).collect();
        keys.sort_unstable();
        keys.dedup();
        let snapshot = Op::Txn {
            mops: keys.iter().map(|k| Mop::read(*k)).collect(),
        };
        let mut local: HashMap<String, Value> = match self
            .serve_one(snapshot, deadline, false)
            .await
        {
            Some(Reply::Ok { value }) => match completed(value) {
                Ok(read) => read.into_iter().map(|Mop(_, k, v)| (k, v)).collect(),
                Err(e) => return Reply::fail(e),
            },
            Some(Reply::Fail { error } | Reply::Unknown { error }) => return Reply::fail(error),
            None => return Reply::fail("the local read got no answer"),
        };
        local.retain(|_, v| !v.is_null());
        let done = match crate::txn::apply(&mut local, mops) {
            Ok(done) => done,
            Err(e) => return Reply::fail(e),
        };
        let writes = Op::Txn {
            mops: mops.iter().filter(|m| !m.is_read()).cloned().collect(),
        };
        match self.serve_one(writes, deadline, false).await {
            Some(Reply::Ok { .. }) => Reply::ok(serde_json::json!(done)),
            Some(other) => other,
            None => Reply::unknown("the writes got no answer"),
        }
    }

    /// [`KvService::serve`] of one request to the actor, forwarding it to the leader if need be.
    async fn serve_one(&self, op: Op, deadline: Instant, forwarded: bool) -> Option<Reply> {
        let is_read = matches!(op, Op::Get { .. } | Op::Status);
        let lost = |why: String| {
            if is_read {
                Reply::fail(format!("{why} (a get has no effect)"))
            } else {
                Reply::unknown(why)
            }
        };
        loop {
            let (reply, answer) = oneshot::channel();
            let event = Event::Client {
                op: op.clone(),
                reply,
            };
            if self.events.send(event).is_err() {
                return Some(Reply::fail("the node is shutting down"));
            }
            let leader = match timeout_at(deadline, answer).await {
                Ok(Ok(Outcome::Done(reply))) => return Some(reply),
                Ok(Ok(Outcome::Redirect(leader))) => Some(leader),
                Ok(Ok(Outcome::NoLeader)) => None,
                Ok(Err(_)) => return Some(lost("the node dropped the request".into())),
                Err(_) => {
                    return Some(lost(format!(
                        "no outcome within {:?}",
                        self.request_timeout
                    )))
                }
            };
            if forwarded {
                return None;
            }
            if let Some(peer) = leader.and_then(|id| self.peers.get(&id)) {
                match self.forward(peer, &op, deadline).await {
                    Forwarded::Reply(reply) => return Some(reply),
                    Forwarded::NotLeader => {}
                }
            }
            if Instant::now() + RETRY >= deadline {
                return Some(Reply::fail(format!(
                    "no leader within {:?}",
                    self.request_timeout
                )));
            }
            sleep(RETRY).await;
        }
    }

    /// Passes `op` to the leader. Once sent, a write's fate is the leader's: any failure to hear
    /// back is `unknown`.
    async fn forward(&self, peer: &Peer, op: &Op, deadline: Instant) -> Forwarded {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < RETRY {
            return Forwarded::NotLeader; // not sent: the caller answers fail at the deadline
        }
        // The leader answers a little before our own deadline, so its answer can reach us.
        let budget_ms = (remaining.as_millis() as u64) * 9 / 10;
        let request = PeerRequest::Forward {
            op: op.clone(),
            budget_ms,
        };
        let failed = |why: String| {
            Forwarded::Reply(if matches!(op, Op::Get { .. }) {
                Reply::fail(format!("{why} (a get has no effect)"))
            } else {
                Reply::unknown(why)
            })
        };
        match peer.call::<_, PeerResponse>(&request, remaining).await {
            Ok(PeerResponse::Forwarded { reply: Some(reply) }) => Forwarded::Reply(reply),
            Ok(PeerResponse::Forwarded { reply: None }) => Forwarded::NotLeader,
            Ok(other) => failed(format!("leader {} answered {other:?}", peer.id)),
            Err(e) => failed(format!("forwarded to leader {}: {e}", peer.id)),
        }
    }

    /// Handles one peer RPC.
    pub async fn on_peer(&self, request: PeerRequest) -> PeerResponse {
        match request {
            PeerRequest::Vote(request) => {
                let (reply, answer) = oneshot::channel();
                let _ = self.events.send(Event::Vote { request, reply });
                // A stopping node refuses; term 0 is older than any real term.
                PeerResponse::Vote(answer.await.unwrap_or(VoteResponse {
                    term: 0,
                    granted: false,
                }))
            }
            PeerRequest::Append(request) => {
                let round = request.round;
                let (reply, answer) = oneshot::channel();
                let _ = self.events.send(Event::Append { request, reply });
                PeerResponse::Append(answer.await.unwrap_or(AppendResponse {
                    term: 0,
                    success: false,
                    match_index: 0,
                    hint_next: 0,
                    round,
                }))
            }
            PeerRequest::Forward { op, budget_ms } => {
                let deadline = Instant::now() + Duration::from_millis(budget_ms);
                PeerResponse::Forwarded {
                    reply: self.serve(op, deadline, true).await,
                }
            }
        }
    }
}

/// The micro-ops of a transaction's `ok` answer.
fn completed(value: Value) -> Result<Vec<Mop>, String> {
    serde_json::from_value(value)
        .map_err(|e| format!("a transaction answered with no micro-ops: {e}"))
}
