//! Which participant holds which account: asked of each participant once, then cached
//! (accounts never move).

use super::{lock, Coordinator};
use crate::protocol::Reply;
use crate::rpc::Peer;
use crate::twopc::messages::{Answer, Msg};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long a lookup of participants' accounts may take.
pub(super) const DIRECTORY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(super) struct Directory {
    /// account → participant id
    owners: HashMap<String, String>,
    /// participants that told us their accounts
    answered: HashSet<String>,
}

impl Coordinator {
    pub(super) fn directory_complete(&self) -> bool {
        let directory = lock(&self.directory);
        self.peers.keys().all(|p| directory.answered.contains(p))
    }

    /// Asks every participant that has not yet said which accounts it holds.
    pub(super) async fn refresh_directory(&self, limit: Duration) {
        let unanswered: Vec<Arc<Peer>> = {
            let directory = lock(&self.directory);
            self.peers
                .values()
                .filter(|p| !directory.answered.contains(&p.id))
                .cloned()
                .collect()
        };
        let mut asks = JoinSet::new();
        for peer in unanswered {
            asks.spawn(async move {
                let answer = peer.call::<_, Answer>(&Msg::Accounts, limit).await;
                (peer.id.clone(), answer)
            });
        }
        while let Some(Ok((peer, answer))) = asks.join_next().await {
            match answer {
                Ok(Answer::Accounts { accounts }) => {
                    tracing::info!(%peer, ?accounts, "learned a participant's accounts");
                    let mut directory = lock(&self.directory);
                    for account in accounts {
                        if let Some(other) = directory.owners.get(&account) {
                            tracing::warn!(%account, %peer, %other, "an account held twice");
                            continue;
                        }
                        directory.owners.insert(account, peer.clone());
                    }
                    directory.answered.insert(peer);
                }
                Ok(other) => tracing::warn!(%peer, ?other, "unexpected answer to accounts"),
                Err(e) => tracing::debug!("accounts of {peer}: {e}"),
            }
        }
    }

    /// Which participant holds each account; `Err` is the client's `fail`.
    pub(super) async fn locate(
        &self,
        accounts: &[&str],
        deadline: Instant,
    ) -> Result<Vec<String>, Reply> {
        let find = |directory: &Directory| -> Option<Vec<String>> {
            accounts
                .iter()
                .map(|a| directory.owners.get(*a).cloned())
                .collect()
        };
        if let Some(found) = find(&lock(&self.directory)) {
            return Ok(found);
        }
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .min(DIRECTORY_TIMEOUT);
        self.refresh_directory(limit).await;
        let directory = lock(&self.directory);
        if let Some(found) = find(&directory) {
            return Ok(found);
        }
        let missing: Vec<&str> = accounts
            .iter()
            .copied()
            .filter(|a| !directory.owners.contains_key(*a))
            .collect();
        let silent: Vec<&String> = self
            .peers
            .keys()
            .filter(|p| !directory.answered.contains(*p))
            .collect();
        Err(Reply::fail(format!(
            "no participant is known to hold {missing:?} (participants not answering: {silent:?})"
        )))
    }
}
