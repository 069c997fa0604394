//! Log replication: AppendEntries on both sides, and the commit rule.

use super::actor::{Raft, Role};
use super::log::{majority_value, Merge};
use super::types::{AppendRequest, AppendResponse, Event, PeerRequest, PeerResponse};
use super::Bug;
use anyhow::Context;

/// Most entries sent in one AppendEntries.
const MAX_ENTRIES: u64 = 512;

impl Raft {
    /// Sends AppendEntries to a follower if none is on its way and it is missing entries or has
    /// not seen the current round yet.
    pub fn maybe_send_append(&mut self, peer: usize) {
        let last = self.persisted_last();
        let progress = &self.progress[peer];
        if progress.inflight || (progress.next > last && progress.sent_round >= self.round) {
            return;
        }
        let prev_index = progress.next - 1;
        let prev_term = self
            .log
            .term_at(prev_index)
            .expect("a follower's next index is at most one past the leader's log");
        let entries = self
            .log
            .slice(progress.next, last.min(prev_index + MAX_ENTRIES));
        let request = PeerRequest::Append(AppendRequest {
            term: self.term,
            leader: self.cfg.id.clone(),
            prev_index,
            prev_term,
            entries,
            leader_commit: self.commit,
            round: self.round,
        });
        let progress = &mut self.progress[peer];
        progress.inflight = true;
        progress.sent_round = self.round;
        let (target, events, term) = (self.peers[peer].clone(), self.events.clone(), self.term);
        let limit = self.cfg.election_timeout;
        tokio::spawn(async move {
            let response = match target.call::<_, PeerResponse>(&request, limit).await {
                Ok(PeerResponse::Append(response)) => Some(response),
                Ok(other) => {
                    tracing::warn!(peer = %target.id, ?other, "unexpected answer to an append");
                    None
                }
                Err(e) => {
                    tracing::debug!("append: {e}");
                    None
                }
            };
            let _ = events.send(Event::AppendResult {
                peer,
                term,
                response,
            });
        });
    }

    /// Answers an AppendEntries. The log (and term) are on disk before the answer leaves.
    pub fn on_append_request(&mut self, request: AppendRequest) -> anyhow::Result<AppendResponse> {
        let mut response = AppendResponse {
            term: self.term,
            success: false,
            match_index: 0,
            hint_next: 0,
            round: request.round,
        };
        if request.term < self.term {
            return Ok(response);
        }
        self.observe_term(request.term)?;
        // Same term: whoever sent this is the one leader of the term.
        self.become_follower();
        if self.leader_id.as_deref() != Some(request.leader.as_str()) {
            tracing::info!("following leader {} in term {}", request.leader, self.term);
            self.leader_id = Some(request.leader.clone());
        }
        self.reset_election_timer();
        response.term = self.term;
        if !self.log.matches(request.prev_index, request.prev_term) {
            response.hint_next = self.log.hint_next(request.prev_index);
            return Ok(response);
        }
        let last_new = request.prev_index + request.entries.len() as u64;
        match self.log.merge(request.prev_index, request.entries) {
            Merge::Unchanged => {}
            Merge::Appended { from } => {
                let added = self.log.slice(from, self.log.last_index());
                self.store
                    .append(&added)
                    .context("cannot append to the raft log")?;
            }
            Merge::Truncated { at } => {
                tracing::info!(from = at, "cut a conflicting log suffix");
                self.store
                    .rewrite(self.log.entries())
                    .context("cannot rewrite the raft log")?;
                if at <= self.commit {
                    self.forget_applied(at);
                }
            }
        }
        let commit = request.leader_commit.min(last_new);
        if commit > self.commit {
            self.commit = commit;
            self.apply_committed();
        }
        response.success = true;
        response.match_index = last_new;
        Ok(response)
    }

    pub fn on_append_result(
        &mut self,
        peer: usize,
        term: u64,
        response: Option<AppendResponse>,
    ) -> anyhow::Result<()> {
        if let Some(response) = &response {
            self.observe_term(response.term)?;
        }
        if self.role != Role::Leader || term != self.term {
            return Ok(());
        }
        self.progress[peer].inflight = false;
        let Some(response) = response else {
            return Ok(());
        };
        if response.term != self.term {
            return Ok(());
        }
        // Success or not, the follower accepted this node as the leader of the term.
        let progress = &mut self.progress[peer];
        progress.acked_round = progress.acked_round.max(response.round);
        if response.success {
            progress.matched = progress.matched.max(response.match_index);
            progress.next = progress.next.max(progress.matched + 1);
            self.advance_commit();
        } else {
            progress.next = progress
                .next
                .saturating_sub(1)
                .min(response.hint_next)
                .max(1);
        }
        if self.cfg.bug == Bug::LeaseRead {
            let confirmed = self.confirmed_round();
            if confirmed > self.lease_round {
                self.lease_round = confirmed;
                self.lease_until = crate::clock::now_ms() + self.cfg.lease_ms;
            }
        }
        self.maybe_send_append(peer);
        Ok(())
    }

    /// A leader overwrote entries this node had committed: Raft's safety is broken (only the
    /// `lost-vote` bug gets here). Say so loudly and rebuild the state machine from the entries
    /// that remain, so the loss is what clients observe.
    fn forget_applied(&mut self, at: u64) {
        tracing::error!(
            index = at,
            commit = self.commit,
            "SAFETY VIOLATION: a leader overwrote committed entries; rebuilding the state machine"
        );
        self.kv = Default::default();
        self.applied = 0;
        self.commit = at - 1;
        self.apply_committed();
    }

    /// Commits the highest index a majority has stored, if it is of the current term (entries of
    /// earlier terms commit only through it, §5.4.2).
    pub fn advance_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let matched: Vec<u64> = self.progress.iter().map(|p| p.matched).collect();
        let index = majority_value(self.persisted_last(), &matched, self.majority());
        if index > self.commit && self.log.term_at(index) == Some(self.term) {
            self.commit = index;
            self.apply_committed();
        }
    }
}
