//! The coordinator: runs transfers as two-phase commits and snapshot reads, logs decisions, and
//! carries decisions through crashes.
//!
//! A transfer: find which participants hold the two accounts (asked once, then cached), log
//! `begin` (so a restart knows to abort it), send `prepare` to each, and decide: commit if every
//! participant voted yes within `--request-timeout-ms`, else abort. A commit is logged (fsync)
//! before the client hears `ok` and before any participant hears `commit`; an abort needs no log
//! record to be safe (presumed abort) but gets one to speed recovery, and the client hears
//! `fail`. Decisions are then pushed to participants until each acknowledges; participants also
//! pull (`query-decision`), answered from memory and the log (no record: abort).
//!
//! Planted bug `no-decision-log`: decisions are kept only in memory, so after a crash a committed
//! transaction looks undecided, is presumed aborted, and a participant that missed the commit
//! aborts it while another already applied it.
//!
//! Test-only `--hold-commit-ms`: wait this long after logging a commit (and answering `ok`)
//! before sending it to participants, to open a window in which tests cut links.

mod delivery;
mod directory;
mod snapshot;

use crate::node::Service;
use crate::protocol::{NodeStatus, Op, Reply};
use crate::rpc::Peer;
use crate::storage::{load_json, save_json};
use crate::twopc::messages::{Answer, CoordinatorRecord, Effect, Msg, Status, TxnId, Vote};
use crate::twopc::recovery::{answer_query, replay_coordinator};
use crate::twopc::wal::Wal;
use crate::twopc::{Args, RETRY};
use anyhow::Context;
use directory::{Directory, DIRECTORY_TIMEOUT};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

struct LiveTxn {
    participants: Vec<String>,
    /// None while preparing.
    decision: Option<bool>,
}

pub struct Coordinator {
    id: String,
    epoch: u64,
    next_seq: AtomicU64,
    peers: BTreeMap<String, Arc<Peer>>,
    directory: Mutex<Directory>,
    live: Mutex<BTreeMap<TxnId, LiveTxn>>,
    /// Transactions every participant acknowledged, to be logged as done.
    done: Mutex<Vec<TxnId>>,
    wal: Wal,
    request_timeout: Duration,
    hold_commit: Duration,
    stagger_commit: Duration,
    no_decision_log: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Coordinator {
    /// Opens the log, bumps the epoch and recovers: logged decisions are re-sent, transactions
    /// without one are aborted.
    pub async fn open(args: &Args) -> anyhow::Result<Arc<Coordinator>> {
        let dir = &args.node.data_dir;
        let path = dir.join("coordinator.jsonl");
        let (wal, records) = Wal::open::<CoordinatorRecord>(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let (recovered, max_epoch) = replay_coordinator(&records);
        let epoch_path = dir.join("epoch.json");
        let last_epoch: u64 = load_json(&epoch_path)?.unwrap_or(0);
        let epoch = last_epoch.max(max_epoch) + 1;
        save_json(&epoch_path, &epoch).context("cannot store the epoch")?;
        let no_decision_log = args.node.bug_is("no-decision-log");
        // Compact: keep only what is not done, with presumed aborts now explicit.
        let mut keep = Vec::new();
        for r in &recovered {
            keep.push(CoordinatorRecord::Begin {
                txn: r.txn,
                participants: r.participants.clone(),
            });
            if !no_decision_log {
                keep.push(CoordinatorRecord::Decision {
                    txn: r.txn,
                    commit: r.commit,
                });
            }
            if r.presumed {
                tracing::info!(txn = %r.txn, "no logged decision: presumed abort");
            } else {
                tracing::info!(txn = %r.txn, commit = r.commit, "re-sending a logged decision");
            }
        }
        let (_guard, result) = wal.lock().await.rewrite(keep).await;
        result.context("cannot compact the coordinator log")?;
        let peers = args
            .node
            .peers
            .iter()
            .map(|(id, addr)| (id.clone(), Peer::new(id.clone(), addr.clone())))
            .collect();
        let coordinator = Arc::new(Coordinator {
            id: args.node.id.clone(),
            epoch,
            next_seq: AtomicU64::new(0),
            peers,
            directory: Mutex::new(Directory::default()),
            live: Mutex::new(BTreeMap::new()),
            done: Mutex::new(Vec::new()),
            wal,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            hold_commit: Duration::from_millis(args.hold_commit_ms),
            stagger_commit: Duration::from_millis(args.stagger_commit_ms),
            no_decision_log,
        });
        {
            let mut live = lock(&coordinator.live);
            for r in &recovered {
                live.insert(
                    r.txn,
                    LiveTxn {
                        participants: r.participants.clone(),
                        decision: Some(r.commit),
                    },
                );
            }
        }
        for r in recovered {
            let me = coordinator.clone();
            tokio::spawn(me.deliver(
                r.txn,
                r.participants,
                r.commit,
                Duration::ZERO,
                Duration::ZERO,
            ));
        }
        tracing::info!(epoch, "coordinator ready");
        Ok(coordinator)
    }

    /// Learns the participants' accounts, and logs finished transactions as done.
    pub fn start_background(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            while !me.directory_complete() {
                me.refresh_directory(DIRECTORY_TIMEOUT).await;
                tokio::time::sleep(RETRY).await;
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETRY).await;
                me.log_done().await;
            }
        });
    }

    fn next_txn(&self) -> TxnId {
        TxnId {
            epoch: self.epoch,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Answers a peer message.
    pub async fn on_peer(self: &Arc<Self>, msg: Msg) -> Answer {
        match msg {
            Msg::QueryDecision { txn } => {
                let known = lock(&self.live).get(&txn).map(|t| t.decision);
                Answer::Decision {
                    decision: answer_query(known),
                }
            }
            Msg::Client { op } => Answer::Client {
                reply: self.handle(op).await,
            },
            Msg::Inspect => Answer::Status {
                status: Status {
                    id: self.id.clone(),
                    role: "coordinator".into(),
                    live: lock(&self.live).keys().copied().collect(),
                    ..Status::default()
                },
            },
            other => Answer::Error {
                error: format!("{} is the coordinator; cannot serve {other:?}", self.id),
            },
        }
    }

    async fn transfer(self: &Arc<Self>, from: String, to: String, amount: i64) -> Reply {
        if amount <= 0 {
            return Reply::fail(format!("amount must be positive, not {amount}"));
        }
        if from == to {
            return Reply::fail("from and to are the same account");
        }
        let deadline = Instant::now() + self.request_timeout;
        let owners = match self.locate(&[&from, &to], deadline).await {
            Ok(owners) => owners,
            Err(reply) => return reply,
        };
        let mut effects: BTreeMap<String, Vec<Effect>> = BTreeMap::new();
        for (account, owner, delta) in [(from, &owners[0], -amount), (to, &owners[1], amount)] {
            effects
                .entry(owner.clone())
                .or_default()
                .push(Effect { account, delta });
        }
        let participants: Vec<String> = effects.keys().cloned().collect();
        let txn = self.next_txn();
        {
            let guard = self.wal.lock().await;
            lock(&self.live).insert(
                txn,
                LiveTxn {
                    participants: participants.clone(),
                    decision: None,
                },
            );
            let record = CoordinatorRecord::Begin {
                txn,
                participants: participants.clone(),
            };
            let (_guard, result) = guard.append(vec![record]).await;
            if let Err(e) = result {
                lock(&self.live).remove(&txn);
                return Reply::fail(format!("cannot log the transaction's start: {e}"));
            }
        }
        let refusal = self.prepare_all(txn, effects, deadline).await;
        let commit = refusal.is_none();
        let guard = self.wal.lock().await;
        let guard = if self.no_decision_log {
            guard
        } else {
            let record = CoordinatorRecord::Decision { txn, commit };
            let (guard, result) = guard.append(vec![record]).await;
            if let Err(e) = result {
                if commit {
                    // It may or may not be on disk: leave the txn undecided (participants stay
                    // blocked, asking) until a restart reads the log and settles it.
                    tracing::error!(%txn, "cannot log a commit decision: {e}");
                    return Reply::unknown(format!("cannot log the commit decision: {e}"));
                }
                tracing::warn!(%txn, "cannot log an abort decision (presumed anyway): {e}");
            }
            guard
        };
        if let Some(t) = lock(&self.live).get_mut(&txn) {
            t.decision = Some(commit);
        }
        drop(guard);
        let (hold, stagger) = if commit {
            (self.hold_commit, self.stagger_commit)
        } else {
            (Duration::ZERO, Duration::ZERO)
        };
        tokio::spawn(
            self.clone()
                .deliver(txn, participants, commit, hold, stagger),
        );
        match refusal {
            None => {
                tracing::debug!(%txn, "committed");
                Reply::ok_empty()
            }
            Some(reason) => {
                tracing::debug!(%txn, %reason, "aborted");
                Reply::fail(reason)
            }
        }
    }

    /// Sends the prepares; None if every participant voted yes, else why not.
    async fn prepare_all(
        &self,
        txn: TxnId,
        effects: BTreeMap<String, Vec<Effect>>,
        deadline: Instant,
    ) -> Option<String> {
        let mut votes = JoinSet::new();
        for (participant, effects) in effects {
            let peer = self.peers[&participant].clone();
            let limit = deadline.saturating_duration_since(Instant::now());
            votes.spawn(async move {
                let msg = Msg::Prepare { txn, effects };
                (participant, peer.call::<_, Answer>(&msg, limit).await)
            });
        }
        while let Some(joined) = votes.join_next().await {
            let (participant, answer) = joined.expect("vote tasks do not panic");
            let refusal = match answer {
                Ok(Answer::Vote { vote: Vote::Yes }) => continue,
                Ok(Answer::Vote {
                    vote: Vote::No { reason },
                }) => reason,
                Ok(other) => format!("{participant} answered {other:?}"),
                Err(e) => format!("{participant} did not vote: {e}"),
            };
            // Dropping the set abandons the other votes: the txn aborts either way.
            return Some(refusal);
        }
        None
    }
}

impl Service for Arc<Coordinator> {
    async fn handle(&self, op: Op) -> Reply {
        match op {
            Op::Transfer { from, to, amount } => self.transfer(from, to, amount).await,
            Op::ReadAll => self.read_all().await,
            Op::Status => NodeStatus {
                id: self.id.clone(),
                role: "coordinator".into(),
                leader: Some(self.id.clone()),
                term: None,
            }
            .reply(),
            other => Reply::fail(format!(
                "twopc serves transfer and read-all, not {}",
                other.name()
            )),
        }
    }
}
