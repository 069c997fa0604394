//! A participant: holds some accounts, votes on prepares, applies decisions, serves snapshot
//! reads under shared locks, and forwards client operations to the coordinator.
//!
//! Durability: a yes vote is sent only after the `prepared` record (with the transaction's
//! effects) is fsync'd, and a decision is acknowledged only after its record is. On restart the
//! log is replayed; prepared transactions without a decision get their exclusive locks back
//! before anything is served and stay blocked until the coordinator's decision arrives, either
//! pushed by the coordinator or pulled by this participant's query loop.
//!
//! Planted bug `abort-after-yes`: after voting yes, the participant aborts on its own if no
//! decision arrived within `--prepare-timeout-ms`, breaking atomicity when the coordinator
//! committed.

mod forward;
mod reads;

use crate::protocol::Balances;
use crate::rpc::Peer;
use crate::twopc::locks::{LockTable, Mode};
use crate::twopc::messages::{
    Answer, Decision, Effect, Msg, Outcome, ParticipantRecord, Status, TxnId, Vote,
};
use crate::twopc::recovery::{replay_participant, Recent};
use crate::twopc::wal::{Wal, WalGuard};
use crate::twopc::{Args, COMPACT_AFTER, RECENT_DECISIONS, RETRY, RPC_TIMEOUT};
use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

struct PreparedTxn {
    effects: Vec<Effect>,
    since: Instant,
}

struct State {
    balances: Balances,
    locks: LockTable,
    prepared: BTreeMap<TxnId, PreparedTxn>,
    /// Snapshot reads holding shared locks, with when they took them.
    reads: HashMap<TxnId, Instant>,
    recent: Recent,
    /// The newest coordinator epoch seen in a message.
    epoch: u64,
    committed: u64,
    aborted: u64,
}

pub struct Participant {
    id: String,
    coordinator: Arc<Peer>,
    state: Mutex<State>,
    /// Signalled whenever locks are released or a waiter gives up.
    changed: Notify,
    wal: Wal,
    lock_wait: Duration,
    request_timeout: Duration,
    prepare_timeout: Duration,
    abort_after_yes: bool,
}

impl Participant {
    /// Opens the log (creating the accounts on first start) and recovers.
    pub async fn open(args: &Args, coordinator: Arc<Peer>) -> anyhow::Result<Arc<Participant>> {
        let path = args.node.data_dir.join("participant.jsonl");
        let (wal, mut records) = Wal::open::<ParticipantRecord>(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if records.is_empty() {
            let balances: Balances = args
                .accounts
                .iter()
                .map(|a| (a.clone(), args.initial_balance))
                .collect();
            let first = ParticipantRecord::Snapshot { balances };
            let (_guard, result) = wal.lock().await.append(vec![first.clone()]).await;
            result.context("cannot write the initial balances")?;
            records.push(first);
        }
        let recovered = replay_participant(&records);
        let configured: Vec<&String> = args.accounts.iter().collect();
        let logged: Vec<&String> = recovered.balances.keys().collect();
        if configured != logged {
            tracing::warn!(
                ?configured,
                ?logged,
                "accounts differ from --accounts; the log wins"
            );
        }
        let mut state = State {
            balances: recovered.balances,
            locks: LockTable::new(),
            prepared: BTreeMap::new(),
            reads: HashMap::new(),
            recent: Recent::new(RECENT_DECISIONS),
            epoch: 0,
            committed: 0,
            aborted: 0,
        };
        for (txn, committed) in recovered.decided {
            state.recent.insert(txn, committed);
        }
        for (txn, effects) in recovered.prepared {
            let accounts: Vec<String> = effects.iter().map(|e| e.account.clone()).collect();
            if !state.locks.acquire_now(txn, &accounts, Mode::Exclusive) {
                tracing::error!(%txn, "two recovered prepared transactions lock the same account");
            }
            tracing::info!(%txn, ?effects, "recovered a prepared transaction; asking the coordinator");
            state.prepared.insert(
                txn,
                PreparedTxn {
                    effects,
                    since: Instant::now(),
                },
            );
        }
        tracing::info!(balances = ?state.balances, prepared = state.prepared.len(), "participant ready");
        let participant = Arc::new(Participant {
            id: args.node.id.clone(),
            coordinator,
            state: Mutex::new(state),
            changed: Notify::new(),
            wal,
            lock_wait: Duration::from_millis(args.lock_wait_ms),
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            prepare_timeout: Duration::from_millis(args.prepare_timeout_ms),
            abort_after_yes: args.node.bug_is("abort-after-yes"),
        });
        if participant.abort_after_yes {
            let recovered: Vec<TxnId> = participant.state().prepared.keys().copied().collect();
            for txn in recovered {
                participant.clone().spawn_abort_timer(txn);
            }
        }
        Ok(participant)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the background loop: expire abandoned read locks, ask the coordinator about
    /// transactions prepared for a while.
    pub fn start_background(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETRY).await;
                me.expire_reads();
                me.query_decisions().await;
            }
        });
    }

    /// Answers a peer message.
    pub async fn on_peer(self: &Arc<Self>, msg: Msg) -> Answer {
        if let Msg::Prepare { txn, .. }
        | Msg::Decide { txn, .. }
        | Msg::ReadLock { txn }
        | Msg::ReadRelease { txn } = &msg
        {
            self.observe_epoch(txn.epoch);
        }
        match msg {
            Msg::Accounts => Answer::Accounts {
                accounts: self.state().balances.keys().cloned().collect(),
            },
            Msg::Prepare { txn, effects } => Answer::Vote {
                vote: self.prepare(txn, effects).await,
            },
            Msg::Decide { txn, commit } => match self.decide(txn, commit).await {
                Ok(outcome) => Answer::Decided { outcome },
                Err(error) => Answer::Error { error },
            },
            Msg::ReadLock { txn } => self.read_lock(txn).await,
            Msg::ReadRelease { txn } => self.read_release(txn),
            Msg::Inspect => Answer::Status {
                status: self.status(),
            },
            Msg::QueryDecision { .. } | Msg::Client { .. } => Answer::Error {
                error: format!("{} is a participant, not the coordinator", self.id),
            },
        }
    }

    /// Waits (at most `lock_wait`) for locks on `accounts`; false if they stayed busy.
    async fn acquire(&self, txn: TxnId, accounts: &[String], mode: Mode) -> bool {
        let deadline = Instant::now() + self.lock_wait;
        let ticket = self.state().locks.request(txn, accounts, mode);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state().locks.try_grant(ticket) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let mut state = self.state();
                if state.locks.try_grant(ticket) {
                    return true;
                }
                state.locks.cancel(ticket);
                drop(state);
                // Requests queued behind this one may go now.
                self.changed.notify_waiters();
                return false;
            }
        }
    }

    fn release(&self, txn: TxnId) {
        self.state().locks.release(txn);
        self.changed.notify_waiters();
    }

    async fn prepare(self: &Arc<Self>, txn: TxnId, effects: Vec<Effect>) -> Vote {
        let no = |reason: String| Vote::No { reason };
        {
            let state = self.state();
            if let Some(committed) = state.recent.get(txn) {
                let what = if committed { "committed" } else { "aborted" };
                return no(format!("{txn} was already {what}"));
            }
            if state.prepared.contains_key(&txn) {
                return Vote::Yes;
            }
            if effects.is_empty() {
                return no(format!("{txn} has no effects on {}", self.id));
            }
            if let Some(e) = effects
                .iter()
                .find(|e| !state.balances.contains_key(&e.account))
            {
                return no(format!("{} holds no account {}", self.id, e.account));
            }
        }
        let accounts: Vec<String> = effects.iter().map(|e| e.account.clone()).collect();
        if !self.acquire(txn, &accounts, Mode::Exclusive).await {
            return no(format!(
                "accounts {} busy on {} for {:?}",
                accounts.join(","),
                self.id,
                self.lock_wait
            ));
        }
        if let Some(reason) = self.insufficient_funds(&effects) {
            self.release(txn);
            return no(reason);
        }
        let guard = self.wal.lock().await;
        {
            let state = self.state();
            if state.recent.get(txn).is_some() {
                drop(state);
                self.release(txn);
                return no(format!("{txn} was aborted while it waited for locks"));
            }
            if txn.epoch < state.epoch {
                drop(state);
                self.release(txn);
                return no(format!("{txn} is from a coordinator epoch that has ended"));
            }
            if state.prepared.contains_key(&txn) {
                return Vote::Yes;
            }
        }
        let record = ParticipantRecord::Prepared {
            txn,
            effects: effects.clone(),
        };
        let (guard, result) = guard.append(vec![record]).await;
        if let Err(e) = result {
            drop(guard);
            self.release(txn);
            return no(format!("{} cannot log the prepare: {e}", self.id));
        }
        self.state().prepared.insert(
            txn,
            PreparedTxn {
                effects,
                since: Instant::now(),
            },
        );
        drop(guard);
        tracing::debug!(%txn, "prepared, voting yes");
        if self.abort_after_yes {
            self.clone().spawn_abort_timer(txn);
        }
        Vote::Yes
    }

    /// Why the effects would overdraw an account, if they would (locks must be held).
    fn insufficient_funds(&self, effects: &[Effect]) -> Option<String> {
        let state = self.state();
        let mut after: BTreeMap<&str, i64> = BTreeMap::new();
        for e in effects {
            let balance = state.balances.get(&e.account).copied().unwrap_or(0);
            *after.entry(&e.account).or_insert(balance) += e.delta;
        }
        after.into_iter().find(|(_, b)| *b < 0).map(|(account, b)| {
            format!(
                "insufficient funds in {account}: balance {}, would be {b}",
                state.balances.get(account).copied().unwrap_or(0)
            )
        })
    }

    /// Applies a decision durably; the answer is what this participant did with the txn.
    async fn decide(&self, txn: TxnId, commit: bool) -> Result<Outcome, String> {
        let guard = self.wal.lock().await;
        {
            let mut state = self.state();
            if let Some(committed) = state.recent.get(txn) {
                if committed != commit {
                    tracing::error!(
                        %txn,
                        commit,
                        committed,
                        "told a decision contrary to what this participant already did"
                    );
                }
                return Ok(if committed {
                    Outcome::Committed
                } else {
                    Outcome::Aborted
                });
            }
            if !state.prepared.contains_key(&txn) {
                if commit {
                    tracing::warn!(%txn, "commit for a transaction with no prepare on record");
                    return Ok(Outcome::Unknown);
                }
                // Never prepared here (or not yet): refuse a late prepare from now on.
                state.recent.insert(txn, false);
                return Ok(Outcome::Aborted);
            }
        }
        let record = if commit {
            ParticipantRecord::Committed { txn }
        } else {
            ParticipantRecord::Aborted { txn }
        };
        let (guard, result) = guard.append(vec![record]).await;
        result.map_err(|e| format!("{} cannot log the decision on {txn}: {e}", self.id))?;
        {
            let mut state = self.state();
            let prepared = state.prepared.remove(&txn).expect("checked above");
            if commit {
                for effect in prepared.effects {
                    *state.balances.entry(effect.account).or_insert(0) += effect.delta;
                }
                state.committed += 1;
            } else {
                state.aborted += 1;
            }
            state.locks.release(txn);
            state.recent.insert(txn, commit);
        }
        self.changed.notify_waiters();
        tracing::debug!(%txn, commit, "decision applied");
        self.maybe_compact(guard).await;
        Ok(if commit {
            Outcome::Committed
        } else {
            Outcome::Aborted
        })
    }

    /// Rewrites a long log as a snapshot plus the prepared transactions.
    async fn maybe_compact(&self, guard: WalGuard) {
        if guard.records() < COMPACT_AFTER {
            return;
        }
        let records = {
            let state = self.state();
            let mut records = vec![ParticipantRecord::Snapshot {
                balances: state.balances.clone(),
            }];
            records.extend(
                state
                    .prepared
                    .iter()
                    .map(|(txn, p)| ParticipantRecord::Prepared {
                        txn: *txn,
                        effects: p.effects.clone(),
                    }),
            );
            records
        };
        let (_guard, result) = guard.rewrite(records).await;
        if let Err(e) = result {
            tracing::warn!("log compaction failed (the old log stays): {e}");
        }
    }

    /// The planted bug: give up on a yes vote after `--prepare-timeout-ms`.
    fn spawn_abort_timer(self: Arc<Self>, txn: TxnId) {
        tokio::spawn(async move {
            tokio::time::sleep(self.prepare_timeout).await;
            if self.state().prepared.contains_key(&txn) {
                tracing::warn!(%txn, "abort-after-yes: no decision in time, aborting on my own");
                if let Err(e) = self.decide(txn, false).await {
                    tracing::warn!("{e}");
                }
            }
        });
    }

    /// Asks the coordinator about every transaction prepared for longer than `RETRY`.
    async fn query_decisions(self: &Arc<Self>) {
        let waiting: Vec<TxnId> = self
            .state()
            .prepared
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= RETRY)
            .map(|(txn, _)| *txn)
            .collect();
        let mut queries = JoinSet::new();
        for txn in waiting {
            let me = self.clone();
            queries.spawn(async move {
                let msg = Msg::QueryDecision { txn };
                match me.coordinator.call::<_, Answer>(&msg, RPC_TIMEOUT).await {
                    Ok(Answer::Decision { decision }) => {
                        let commit = match decision {
                            Decision::Commit => true,
                            Decision::Abort => false,
                            Decision::Pending => return,
                        };
                        tracing::info!(%txn, ?decision, "learned a decision by asking");
                        if let Err(e) = me.decide(txn, commit).await {
                            tracing::warn!("{e}");
                        }
                    }
                    Ok(other) => tracing::warn!(%txn, ?other, "unexpected answer to a query"),
                    Err(e) => tracing::debug!(%txn, "decision query failed: {e}"),
                }
            });
        }
        while queries.join_next().await.is_some() {}
    }

    fn status(&self) -> Status {
        let state = self.state();
        Status {
            id: self.id.clone(),
            role: "participant".into(),
            balances: state.balances.clone(),
            prepared: state.prepared.keys().copied().collect(),
            reads: state.reads.keys().copied().collect(),
            waiting: state.locks.waiting(),
            committed: state.committed,
            aborted: state.aborted,
            live: Vec::new(),
        }
    }
}
