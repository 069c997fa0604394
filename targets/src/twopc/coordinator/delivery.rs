//! Carrying decisions to participants, and forgetting transactions once they all have them.

use super::{lock, Coordinator};
use crate::twopc::messages::{Answer, CoordinatorRecord, Msg, Outcome, TxnId};
use crate::twopc::{COMPACT_AFTER, RETRY, RPC_TIMEOUT};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Abort decisions are pushed this many rounds at most; after that presumed abort covers any
/// participant still prepared (it asks and hears abort).
const ABORT_ROUNDS: u32 = 3;

impl Coordinator {
    /// Pushes a decision to the participants until each acknowledges it (aborts: a few rounds),
    /// after `hold`, waiting `stagger` after each acknowledgement before the next participant.
    pub(super) async fn deliver(
        self: Arc<Self>,
        txn: TxnId,
        participants: Vec<String>,
        commit: bool,
        hold: Duration,
        stagger: Duration,
    ) {
        if !hold.is_zero() {
            tracing::info!(%txn, ?hold, "holding the commit (--hold-commit-ms)");
            tokio::time::sleep(hold).await;
        }
        let mut pending: BTreeSet<String> = participants.into_iter().collect();
        let mut rounds = 0;
        while !pending.is_empty() {
            // With a stagger, one participant at a time, each acknowledged before the next is
            // told: for that long some participants know the outcome and others do not, the
            // window the decision log is for. Otherwise all at once.
            let answers: Vec<(String, Result<Answer, _>)> = if stagger.is_zero() {
                let mut calls = JoinSet::new();
                for participant in &pending {
                    if let Some(peer) = self.known_peer(txn, participant) {
                        calls.spawn(async move {
                            let msg = Msg::Decide { txn, commit };
                            (
                                peer.id.clone(),
                                peer.call::<_, Answer>(&msg, RPC_TIMEOUT).await,
                            )
                        });
                    }
                }
                let mut answers = Vec::new();
                while let Some(Ok(answer)) = calls.join_next().await {
                    answers.push(answer);
                }
                answers
            } else {
                let mut answers = Vec::new();
                for participant in &pending {
                    if let Some(peer) = self.known_peer(txn, participant) {
                        let msg = Msg::Decide { txn, commit };
                        let answer = peer.call::<_, Answer>(&msg, RPC_TIMEOUT).await;
                        let told = answer.is_ok();
                        answers.push((participant.clone(), answer));
                        if told && answers.len() < pending.len() {
                            tokio::time::sleep(stagger).await;
                        }
                    }
                }
                answers
            };
            let mut acked = Vec::new();
            for (participant, answer) in answers {
                match answer {
                    Ok(Answer::Decided { outcome }) => {
                        let contrary = match outcome {
                            Outcome::Committed => !commit,
                            Outcome::Aborted => commit,
                            Outcome::Unknown => false,
                        };
                        if contrary {
                            tracing::error!(
                                %txn, %participant, commit, ?outcome,
                                "ATOMICITY BROKEN: a participant did the opposite of the decision"
                            );
                        }
                        acked.push(participant);
                    }
                    Ok(other) => tracing::warn!(%txn, %participant, ?other, "decision not taken"),
                    Err(e) => tracing::debug!(%txn, "decision to {participant}: {e}"),
                }
            }
            for participant in acked {
                pending.remove(&participant);
            }
            if pending.is_empty() || !self.peers.keys().any(|p| pending.contains(p)) {
                break;
            }
            rounds += 1;
            if !commit && rounds >= ABORT_ROUNDS {
                tracing::info!(%txn, ?pending, "abort not acknowledged; presumed abort covers it");
                break;
            }
            tokio::time::sleep(RETRY).await;
        }
        lock(&self.live).remove(&txn);
        lock(&self.done).push(txn);
    }

    /// The peer of `participant`, or `None` (logged) for a participant nobody knows.
    fn known_peer(&self, txn: TxnId, participant: &str) -> Option<Arc<crate::rpc::Peer>> {
        let peer = self.peers.get(participant).cloned();
        if peer.is_none() {
            tracing::error!(%txn, %participant, "decision for an unknown participant");
        }
        peer
    }

    /// Logs finished transactions as done, compacting the log when it has grown long.
    pub(super) async fn log_done(&self) {
        let done: Vec<TxnId> = std::mem::take(&mut *lock(&self.done));
        if done.is_empty() {
            return;
        }
        let guard = self.wal.lock().await;
        let (guard, result) = guard
            .append(vec![CoordinatorRecord::Done { txns: done }])
            .await;
        if let Err(e) = result {
            tracing::warn!("cannot log finished transactions: {e}");
        }
        if guard.records() < COMPACT_AFTER {
            return;
        }
        let mut keep = Vec::new();
        for (txn, t) in lock(&self.live).iter() {
            keep.push(CoordinatorRecord::Begin {
                txn: *txn,
                participants: t.participants.clone(),
            });
            if let (Some(commit), false) = (t.decision, self.no_decision_log) {
                keep.push(CoordinatorRecord::Decision { txn: *txn, commit });
            }
        }
        let (_guard, result) = guard.rewrite(keep).await;
        if let Err(e) = result {
            tracing::warn!("coordinator log compaction failed (the old log stays): {e}");
        }
    }
}
