//! Rebuilding state from durable logs, and the rules for what a crash leaves decided. Pure
//! functions, so the rules are unit-tested without processes.
//!
//! - A participant's log replays to its balances (snapshot plus committed effects), the
//!   transactions it prepared and has no decision for (they keep their locks and the participant
//!   asks the coordinator), and the decisions it applied.
//! - The coordinator's log replays to the transactions not yet known to be done: a logged
//!   decision stands; a transaction begun without a logged decision is aborted (presumed abort:
//!   nobody was ever told it committed, because `ok` and commit messages come only after the
//!   commit record is durable).
//! - A decision query for a transaction the coordinator has no record of is answered abort.

use super::messages::{CoordinatorRecord, Decision, Effect, ParticipantRecord, TxnId};
use crate::protocol::Balances;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// A participant's state as its log leaves it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParticipantState {
    pub balances: Balances,
    /// Prepared (voted yes) and not decided.
    pub prepared: BTreeMap<TxnId, Vec<Effect>>,
    /// Decisions applied, oldest first: (txn, committed).
    pub decided: Vec<(TxnId, bool)>,
}

pub fn replay_participant(records: &[ParticipantRecord]) -> ParticipantState {
    let mut state = ParticipantState::default();
    for record in records {
        match record {
            ParticipantRecord::Snapshot { balances } => {
                state = ParticipantState {
                    balances: balances.clone(),
                    ..ParticipantState::default()
                };
            }
            ParticipantRecord::Prepared { txn, effects } => {
                state.prepared.insert(*txn, effects.clone());
            }
            ParticipantRecord::Committed { txn } => {
                // A commit always follows its prepare in the log; one without is ignored.
                if let Some(effects) = state.prepared.remove(txn) {
                    for effect in effects {
                        *state.balances.entry(effect.account).or_insert(0) += effect.delta;
                    }
                    state.decided.push((*txn, true));
                }
            }
            ParticipantRecord::Aborted { txn } => {
                state.prepared.remove(txn);
                state.decided.push((*txn, false));
            }
        }
    }
    state
}

/// A coordinator transaction still to be carried through after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredTxn {
    pub txn: TxnId,
    pub participants: Vec<String>,
    pub commit: bool,
    /// No decision was logged: aborted now by presumption (and to be logged as such).
    pub presumed: bool,
}

/// Replays the coordinator's log: the transactions not done, and the highest epoch seen.
pub fn replay_coordinator(records: &[CoordinatorRecord]) -> (Vec<RecoveredTxn>, u64) {
    let mut txns: BTreeMap<TxnId, (Vec<String>, Option<bool>)> = BTreeMap::new();
    let mut max_epoch = 0;
    for record in records {
        match record {
            CoordinatorRecord::Begin { txn, participants } => {
                max_epoch = max_epoch.max(txn.epoch);
                txns.insert(*txn, (participants.clone(), None));
            }
            CoordinatorRecord::Decision { txn, commit } => {
                max_epoch = max_epoch.max(txn.epoch);
                txns.entry(*txn).or_insert_with(|| (Vec::new(), None)).1 = Some(*commit);
            }
            CoordinatorRecord::Done { txns: done } => {
                for txn in done {
                    txns.remove(txn);
                }
            }
        }
    }
    let recovered = txns
        .into_iter()
        .map(|(txn, (participants, decision))| RecoveredTxn {
            txn,
            participants,
            commit: decision == Some(true),
            presumed: decision.is_none(),
        })
        .collect();
    (recovered, max_epoch)
}

/// The coordinator's answer to "what was decided for this transaction?": `live` is what it
/// knows (`None`: no record at all; `Some(None)`: begun, undecided).
pub fn answer_query(live: Option<Option<bool>>) -> Decision {
    match live {
        None | Some(Some(false)) => Decision::Abort,
        Some(Some(true)) => Decision::Commit,
        Some(None) => Decision::Pending,
    }
}

/// The most recent decisions a participant applied (or aborts it was told of before any
/// prepare arrived), so a late or repeated message is answered consistently. Bounded: the
/// oldest are forgotten first.
#[derive(Debug)]
pub struct Recent {
    map: HashMap<TxnId, bool>,
    order: VecDeque<TxnId>,
    cap: usize,
}

impl Recent {
    pub fn new(cap: usize) -> Recent {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub fn insert(&mut self, txn: TxnId, committed: bool) {
        if self.map.insert(txn, committed).is_none() {
            self.order.push_back(txn);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Some(true) committed, Some(false) aborted, None unknown.
    pub fn get(&self, txn: TxnId) -> Option<bool> {
        self.map.get(&txn).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seq: u64) -> TxnId {
        TxnId { epoch: 1, seq }
    }

    fn effect(account: &str, delta: i64) -> Effect {
        Effect {
            account: account.into(),
            delta,
        }
    }

    #[test]
    fn participant_replay_applies_only_committed_effects() {
        let records = vec![
            ParticipantRecord::Snapshot {
                balances: Balances::from([("a1".into(), 100), ("a2".into(), 100)]),
            },
            ParticipantRecord::Prepared {
                txn: t(1),
                effects: vec![effect("a1", -10)],
            },
            ParticipantRecord::Prepared {
                txn: t(2),
                effects: vec![effect("a2", -30), effect("a1", 30)],
            },
            ParticipantRecord::Committed { txn: t(1) },
            ParticipantRecord::Prepared {
                txn: t(3),
                effects: vec![effect("a2", 5)],
            },
            ParticipantRecord::Aborted { txn: t(3) },
            // A stray commit with no prepare changes nothing.
            ParticipantRecord::Committed { txn: t(9) },
        ];
        let state = replay_participant(&records);
        assert_eq!(state.balances["a1"], 90);
        assert_eq!(state.balances["a2"], 100);
        assert_eq!(
            state.prepared.keys().copied().collect::<Vec<_>>(),
            vec![t(2)]
        );
        assert_eq!(state.decided, vec![(t(1), true), (t(3), false)]);
    }

    #[test]
    fn a_snapshot_resets_the_replay() {
        let records = vec![
            ParticipantRecord::Prepared {
                txn: t(1),
                effects: vec![effect("a1", -10)],
            },
            ParticipantRecord::Snapshot {
                balances: Balances::from([("a1".into(), 7)]),
            },
        ];
        let state = replay_participant(&records);
        assert_eq!(state.balances["a1"], 7);
        assert!(state.prepared.is_empty());
    }

    #[test]
    fn coordinator_replay_keeps_decisions_and_presumes_abort() {
        let parts = vec!["n2".to_string(), "n3".to_string()];
        let records = vec![
            CoordinatorRecord::Begin {
                txn: t(1),
                participants: parts.clone(),
            },
            CoordinatorRecord::Begin {
                txn: t(2),
                participants: parts.clone(),
            },
            CoordinatorRecord::Begin {
                txn: TxnId { epoch: 3, seq: 0 },
                participants: parts.clone(),
            },
            CoordinatorRecord::Decision {
                txn: t(1),
                commit: true,
            },
            CoordinatorRecord::Begin {
                txn: t(4),
                participants: parts.clone(),
            },
            CoordinatorRecord::Decision {
                txn: t(4),
                commit: false,
            },
            CoordinatorRecord::Done {
                txns: vec![TxnId { epoch: 3, seq: 0 }],
            },
        ];
        let (recovered, max_epoch) = replay_coordinator(&records);
        assert_eq!(max_epoch, 3);
        let view: Vec<(u64, bool, bool)> = recovered
            .iter()
            .map(|r| (r.txn.seq, r.commit, r.presumed))
            .collect();
        assert_eq!(
            view,
            vec![(1, true, false), (2, false, true), (4, false, false)]
        );
        assert_eq!(recovered[0].participants, parts);
    }

    #[test]
    fn queries_without_a_record_are_aborts() {
        assert_eq!(answer_query(None), Decision::Abort);
        assert_eq!(answer_query(Some(None)), Decision::Pending);
        assert_eq!(answer_query(Some(Some(true))), Decision::Commit);
        assert_eq!(answer_query(Some(Some(false))), Decision::Abort);
    }

    #[test]
    fn recent_decisions_are_bounded() {
        let mut recent = Recent::new(2);
        recent.insert(t(1), true);
        recent.insert(t(2), false);
        recent.insert(t(2), false);
        assert_eq!(recent.get(t(1)), Some(true));
        recent.insert(t(3), true);
        assert_eq!(recent.get(t(1)), None);
        assert_eq!(recent.get(t(2)), Some(false));
        assert_eq!(recent.get(t(3)), Some(true));
    }
}
