//! The Raft actor: one task owns all Raft state and reacts to [`Event`]s one at a time.
//!
//! Client operations, peer RPCs and the results of RPCs this node sent all arrive on one channel;
//! timers are a deadline in the loop. The actor never awaits the network: outgoing RPCs run in
//! spawned tasks that post their result back as an event. Disk writes happen inline (fsync'd),
//! always before the answer that depends on them.
//!
//! Client writes at the leader are batched: they are appended to the in-memory log and persisted
//! with one fsync at the end of the batch (or before any other event is handled, so the log on
//! disk and in memory agree whenever anything else looks at them). Only persisted entries are
//! sent to followers or counted as the leader's own match.

use super::kv::Kv;
use super::log::{majority_value, RaftLog};
use super::store::{HardState, Store};
use super::types::{Event, Outcome};
use super::Config;
use crate::rpc::Peer;
use anyhow::Context;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

/// Events handled before the end-of-batch flush.
const BATCH: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// The leader's view of one follower.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// The next entry to send.
    pub next: u64,
    /// The highest entry known to be replicated there.
    pub matched: u64,
    /// Whether an AppendEntries is on its way (at most one at a time per follower).
    pub inflight: bool,
    /// The round of the last AppendEntries sent.
    pub sent_round: u64,
    /// The highest round the follower acknowledged in the current term.
    pub acked_round: u64,
}

/// A linearizable read waiting for its read index to be safe to serve.
pub struct PendingRead {
    pub key: String,
    pub read_index: u64,
    /// Leadership must be confirmed by a heartbeat round at least this new.
    pub round: u64,
    pub reply: oneshot::Sender<Outcome>,
}

pub struct Raft {
    pub cfg: Config,
    pub peers: Vec<Arc<Peer>>,
    /// For spawned RPC tasks to post their results.
    pub events: mpsc::UnboundedSender<Event>,
    pub store: Store,
    // Persistent state (always on disk before anything depends on it).
    pub term: u64,
    pub voted_for: Option<String>,
    pub log: RaftLog,
    /// Entries at the end of `log` not yet on disk (leader client writes in this batch).
    pub unsynced: u64,
    // Volatile state.
    pub role: Role,
    pub leader_id: Option<String>,
    pub commit: u64,
    pub applied: u64,
    pub kv: Kv,
    pub election_deadline: Instant,
    pub heartbeat_deadline: Instant,
    pub votes: BTreeSet<usize>,
    // Leader state.
    pub progress: Vec<Progress>,
    /// Heartbeat round counter of this term; a round is confirmed once a majority acked it.
    pub round: u64,
    /// The index of this leader's no-op: nothing before it may be served until it commits.
    pub term_start: u64,
    /// `lease-read` bug only: the wall-clock time (`clock::now_ms`) the lease runs until.
    pub lease_until: i64,
    pub lease_round: u64,
    /// Client writes waiting to be applied: index → (term of the entry, answer).
    pub writes: BTreeMap<u64, (u64, oneshot::Sender<Outcome>)>,
    pub reads: Vec<PendingRead>,
}

impl Raft {
    pub fn open(
        cfg: Config,
        peers: Vec<Arc<Peer>>,
        events: mpsc::UnboundedSender<Event>,
    ) -> anyhow::Result<Raft> {
        let (store, state, entries) = Store::open(&cfg.data_dir)
            .with_context(|| format!("cannot open the raft state in {}", cfg.data_dir.display()))?;
        tracing::info!(
            term = state.term,
            voted_for = ?state.voted_for,
            log_len = entries.len(),
            "recovered durable state"
        );
        let now = Instant::now();
        let mut raft = Raft {
            progress: vec![Progress::default(); peers.len()],
            cfg,
            peers,
            events,
            store,
            term: state.term,
            voted_for: state.voted_for,
            log: RaftLog::new(entries),
            unsynced: 0,
            role: Role::Follower,
            leader_id: None,
            commit: 0,
            applied: 0,
            kv: Kv::default(),
            election_deadline: now,
            heartbeat_deadline: now,
            votes: BTreeSet::new(),
            round: 0,
            term_start: 0,
            lease_until: i64::MIN,
            lease_round: 0,
            writes: BTreeMap::new(),
            reads: Vec::new(),
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    /// Runs until the channel closes or a disk write fails (then the node must stop: it can no
    /// longer keep its promises).
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) -> anyhow::Result<()> {
        loop {
            let deadline = match self.role {
                Role::Leader => self.heartbeat_deadline,
                _ => self.election_deadline,
            };
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    self.handle(event)?;
                    for _ in 0..BATCH {
                        match rx.try_recv() {
                            Ok(event) => self.handle(event)?,
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep_until(deadline) => {
                    self.sync_log()?;
                    self.on_timer()?;
                }
            }
            self.flush()?;
        }
    }

    fn handle(&mut self, event: Event) -> anyhow::Result<()> {
        if let Event::Client { op, reply } = event {
            self.on_client(op, reply);
            return Ok(());
        }
        self.sync_log()?;
        match event {
            Event::Client { .. } => unreachable!("handled above"),
            Event::Vote { request, reply } => {
                let response = self.on_vote_request(request)?;
                let _ = reply.send(response);
            }
            Event::Append { request, reply } => {
                let response = self.on_append_request(request)?;
                let _ = reply.send(response);
            }
            Event::VoteResult {
                peer,
                term,
                response,
            } => self.on_vote_result(peer, term, response)?,
            Event::AppendResult {
                peer,
                term,
                response,
            } => self.on_append_result(peer, term, response)?,
        }
        Ok(())
    }

    fn on_timer(&mut self) -> anyhow::Result<()> {
        if self.role == Role::Leader {
            self.round += 1;
            self.heartbeat_deadline = Instant::now() + self.cfg.heartbeat;
            self.writes.retain(|_, (_, reply)| !reply.is_closed());
            Ok(())
        } else {
            self.start_election()
        }
    }

    /// End of a batch: persist new entries, replicate, commit, serve reads.
    fn flush(&mut self) -> anyhow::Result<()> {
        self.sync_log()?;
        if self.role == Role::Leader {
            for peer in 0..self.peers.len() {
                self.maybe_send_append(peer);
            }
            self.advance_commit();
            self.serve_reads();
        }
        Ok(())
    }

    /// Writes the in-memory tail (leader client writes) to disk.
    pub fn sync_log(&mut self) -> anyhow::Result<()> {
        if self.unsynced > 0 {
            let from = self.log.last_index() - self.unsynced + 1;
            let tail = self.log.slice(from, self.log.last_index());
            self.store
                .append(&tail)
                .context("cannot append to the raft log")?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// The last entry on disk.
    pub fn persisted_last(&self) -> u64 {
        self.log.last_index() - self.unsynced
    }

    pub fn save_state(&mut self) -> anyhow::Result<()> {
        let state = HardState {
            term: self.term,
            voted_for: self.voted_for.clone(),
        };
        self.store
            .save_state(&state)
            .context("cannot save the raft term and vote")
    }

    /// Members needed for a majority, this node included.
    pub fn majority(&self) -> usize {
        let members = self.peers.len() + 1;
        members / 2 + 1
    }

    pub fn reset_election_timer(&mut self) {
        let base = self.cfg.election_timeout;
        let wait = rand::thread_rng().gen_range(base..base * 2);
        self.election_deadline = Instant::now() + wait;
    }

    /// Adopts a newer term seen in any message: forget the vote, become a follower. Persists.
    pub fn observe_term(&mut self, term: u64) -> anyhow::Result<()> {
        if term > self.term {
            tracing::debug!(from = self.term, to = term, "newer term seen");
            self.term = term;
            self.voted_for = None;
            self.leader_id = None;
            self.save_state()?;
            self.become_follower();
        }
        Ok(())
    }

    pub fn become_follower(&mut self) {
        if self.role != Role::Follower {
            tracing::info!("became follower for term {}", self.term);
            if self.role == Role::Leader {
                for read in self.reads.drain(..) {
                    let _ = read.reply.send(Outcome::Done(crate::protocol::Reply::fail(
                        "lost leadership before the read was confirmed",
                    )));
                }
            }
        }
        self.role = Role::Follower;
        self.votes.clear();
    }

    /// The highest heartbeat round a majority has acknowledged in this term.
    pub fn confirmed_round(&self) -> u64 {
        let acked: Vec<u64> = self.progress.iter().map(|p| p.acked_round).collect();
        majority_value(self.round, &acked, self.majority())
    }

    /// Applies newly committed entries and answers the writes waiting on them.
    ///
    /// A waiting write is identified by (index, term). If the entry committed at its index has
    /// another term, the write's entry can never commit (one entry per index commits), and it was
    /// appended nowhere else, so the answer is a definite `fail`. Waiters are not failed when a
    /// follower truncates their entry: another node may still hold it and later commit it.
    pub fn apply_committed(&mut self) {
        while self.applied < self.commit {
            self.applied += 1;
            let entry = self
                .log
                .entry(self.applied)
                .expect("committed entries are in the log")
                .clone();
            let reply = self.kv.apply(&entry.command);
            if let Some((term, waiter)) = self.writes.remove(&self.applied) {
                let reply = if term == entry.term {
                    reply
                } else {
                    crate::protocol::Reply::fail(
                        "another leader's entry committed in its place; it never took effect",
                    )
                };
                let _ = waiter.send(Outcome::Done(reply));
            }
        }
    }
}
