//! Snapshot reads on a participant: shared locks on every account, held until the coordinator
//! releases them, a lease runs out, or a newer coordinator epoch shows the reader is gone.

use super::Participant;
use crate::twopc::locks::Mode;
use crate::twopc::messages::{Answer, TxnId};
use tokio::time::Instant;

impl Participant {
    /// A message from a newer coordinator epoch means the coordinator restarted: reads of
    /// older epochs will never be released by anyone, so their locks go now instead of lapsing.
    pub(super) fn observe_epoch(&self, epoch: u64) {
        let released: Vec<TxnId> = {
            let mut state = self.state();
            if epoch <= state.epoch {
                return;
            }
            state.epoch = epoch;
            let stale: Vec<TxnId> = state
                .reads
                .keys()
                .filter(|txn| txn.epoch < epoch)
                .copied()
                .collect();
            for txn in &stale {
                state.reads.remove(txn);
                state.locks.release(*txn);
            }
            stale
        };
        if !released.is_empty() {
            tracing::info!(
                ?released,
                "released the reads of a previous coordinator epoch"
            );
            self.changed.notify_waiters();
        }
    }

    pub(super) async fn read_lock(&self, txn: TxnId) -> Answer {
        if self.state().recent.get(txn).is_some() {
            return Answer::Error {
                error: format!("read {txn} was already released"),
            };
        }
        let accounts: Vec<String> = self.state().balances.keys().cloned().collect();
        if !self.acquire(txn, &accounts, Mode::Shared).await {
            return Answer::Error {
                error: format!("accounts busy on {} for {:?}", self.id, self.lock_wait),
            };
        }
        let mut state = self.state();
        // Released while it waited, or its coordinator restarted meanwhile (nobody would ever
        // release it).
        if state.recent.get(txn).is_some() || txn.epoch < state.epoch {
            state.locks.release(txn);
            drop(state);
            self.changed.notify_waiters();
            return Answer::Error {
                error: format!("read {txn} was released or abandoned while it waited"),
            };
        }
        state.reads.insert(txn, Instant::now());
        Answer::Snapshot {
            balances: state.balances.clone(),
        }
    }

    pub(super) fn read_release(&self, txn: TxnId) -> Answer {
        let held = {
            let mut state = self.state();
            let held = state.reads.remove(&txn).is_some();
            state.locks.release(txn);
            state.recent.insert(txn, false);
            held
        };
        self.changed.notify_waiters();
        Answer::Released { held }
    }

    /// Read locks whose coordinator never released them lapse after a request timeout.
    pub(super) fn expire_reads(&self) {
        let expired: Vec<TxnId> = {
            let mut state = self.state();
            let limit = self.request_timeout;
            let expired: Vec<TxnId> = state
                .reads
                .iter()
                .filter(|(_, since)| since.elapsed() > limit)
                .map(|(txn, _)| *txn)
                .collect();
            for txn in &expired {
                state.reads.remove(txn);
                state.locks.release(*txn);
            }
            expired
        };
        if !expired.is_empty() {
            tracing::info!(?expired, "read locks lapsed");
            self.changed.notify_waiters();
        }
    }
}
