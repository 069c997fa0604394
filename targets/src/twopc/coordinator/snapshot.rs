//! `read-all` on the coordinator.

use super::Coordinator;
use crate::protocol::{Balances, Reply};
use crate::twopc::messages::{Answer, Msg};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

impl Coordinator {
    /// A snapshot of every balance: shared locks on every account of every participant, all
    /// held at once, then released; `ok` only if every participant confirms it held its locks
    /// from its read until the release.
    pub(super) async fn read_all(self: &Arc<Self>) -> Reply {
        let deadline = Instant::now() + self.request_timeout;
        let txn = self.next_txn();
        let mut reads = JoinSet::new();
        for peer in self.peers.values().cloned() {
            let limit = deadline.saturating_duration_since(Instant::now());
            reads.spawn(async move {
                let answer = peer.call::<_, Answer>(&Msg::ReadLock { txn }, limit).await;
                (peer.id.clone(), answer)
            });
        }
        let mut balances = Balances::new();
        let mut failure = None;
        while let Some(joined) = reads.join_next().await {
            let (participant, answer) = joined.expect("read tasks do not panic");
            match answer {
                Ok(Answer::Snapshot { balances: part }) => balances.extend(part),
                Ok(other) => failure = Some(format!("{participant} answered {other:?}")),
                Err(e) => failure = Some(format!("{participant} did not answer: {e}")),
            }
            if failure.is_some() {
                break;
            }
        }
        drop(reads);
        let release_limit = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200));
        let mut releases = JoinSet::new();
        for peer in self.peers.values().cloned() {
            releases.spawn(async move {
                let answer = peer
                    .call::<_, Answer>(&Msg::ReadRelease { txn }, release_limit)
                    .await;
                (peer.id.clone(), answer)
            });
        }
        if let Some(reason) = failure {
            // Release in the background; participants' read locks also lapse on their own.
            tokio::spawn(async move { while releases.join_next().await.is_some() {} });
            return Reply::fail(format!("read-all: {reason}"));
        }
        // Every release is waited for (each is bounded): returning early would drop the set and
        // cancel the releases still in flight, leaving those participants' locks to lapse.
        let mut unconfirmed = None;
        while let Some(joined) = releases.join_next().await {
            let (participant, answer) = joined.expect("release tasks do not panic");
            match answer {
                Ok(Answer::Released { held: true }) => {}
                Ok(other) => unconfirmed = Some(format!("{participant} answered {other:?}")),
                Err(e) => unconfirmed = Some(format!("{participant}: {e}")),
            }
        }
        if let Some(reason) = unconfirmed {
            return Reply::fail(format!("read-all not confirmed: {reason}"));
        }
        Reply::ok(serde_json::to_value(&balances).expect("balances serialize"))
    }
}
