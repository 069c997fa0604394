//! Client operations inside the actor: writes go through the log, reads through a read index.

use super::actor::{PendingRead, Raft, Role};
use super::types::{Command, Entry, Outcome};
use super::Bug;
use crate::protocol::{NodeStatus, Op, Reply};
use crate::txn::Mop;
use tokio::sync::oneshot;

impl Raft {
    pub fn on_client(&mut self, op: Op, reply: oneshot::Sender<Outcome>) {
        let command = match op {
            Op::Get { key } => return self.on_get(key, reply),
            Op::Put { key, value } => Command::Put { key, value },
            Op::Cas { key, from, to } => Command::Cas { key, from, to },
            Op::Txn { mops }
                if self.cfg.bug == Bug::TxnLocalRead && mops.iter().all(Mop::is_read) =>
            {
                // Planted bug: a read-only transaction is answered from whatever this node has
                // applied (the service splits every transaction so that its reads come here).
                let _ = reply.send(Outcome::Done(self.kv.txn(&mops)));
                return;
            }
            // Reads included: they run when the entry is applied, so they see exactly the
            // entries before it.
            Op::Txn { mops } => Command::Txn { mops },
            Op::Status => {
                let _ = reply.send(Outcome::Done(self.status().reply()));
                return;
            }
            other => {
                let error = format!("raft-kv does not serve {}", other.name());
                let _ = reply.send(Outcome::Done(Reply::fail(error)));
                return;
            }
        };
        if self.role != Role::Leader {
            let _ = reply.send(self.not_leader());
            return;
        }
        // Persisted (fsync'd) at the end of the batch, before it is sent or counted.
        let index = self.log.push(Entry {
            term: self.term,
            command,
        });
        self.unsynced += 1;
        self.writes.insert(index, (self.term, reply));
    }

    /// This node's own view, answered at once (never through the log).
    fn status(&self) -> NodeStatus {
        let role = match self.role {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
        };
        NodeStatus {
            id: self.cfg.id.clone(),
            role: role.into(),
            leader: self.leader_id.clone(),
            term: Some(self.term),
        }
    }

    fn not_leader(&self) -> Outcome {
        match &self.leader_id {
            Some(leader) if *leader != self.cfg.id => Outcome::Redirect(leader.clone()),
            _ => Outcome::NoLeader,
        }
    }

    /// A get. Correctly: the leader records its read index (its commit index, and at least its
    /// own no-op), confirms it is still the leader with a heartbeat round a majority acknowledges,
    /// waits until it has applied up to the read index, and then reads its state machine.
    fn on_get(&mut self, key: String, reply: oneshot::Sender<Outcome>) {
        if self.cfg.bug == Bug::StaleRead {
            // Planted bug: any node answers from whatever it has applied.
            let _ = reply.send(Outcome::Done(Reply::ok(self.kv.get(&key))));
            return;
        }
        if self.role != Role::Leader {
            let _ = reply.send(self.not_leader());
            return;
        }
        if self.cfg.bug == Bug::LeaseRead
            && self.applied >= self.term_start
            && crate::clock::now_ms() < self.lease_until
        {
            // Planted bug: trust the wall clock that no other leader can exist yet. (It waits for
            // the term's no-op to apply, so the clock is the only thing it gets wrong.)
            let _ = reply.send(Outcome::Done(Reply::ok(self.kv.get(&key))));
            return;
        }
        // A new round, sent at the end of this batch, confirms leadership after this point.
        self.round += 1;
        self.reads.push(PendingRead {
            key,
            read_index: self.commit.max(self.term_start),
            round: self.round,
            reply,
        });
    }

    /// Answers the reads whose leadership round is confirmed and whose read index is applied.
    pub fn serve_reads(&mut self) {
        if self.reads.is_empty() {
            return;
        }
        let confirmed = self.confirmed_round();
        let applied = self.applied;
        let mut waiting = Vec::new();
        for read in std::mem::take(&mut self.reads) {
            if read.reply.is_closed() {
                continue;
            }
            if read.round <= confirmed && read.read_index <= applied {
                let value = self.kv.get(&read.key);
                let _ = read.reply.send(Outcome::Done(Reply::ok(value)));
            } else {
                waiting.push(read);
            }
        }
        self.reads = waiting;
    }
}
