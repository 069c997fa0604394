//! Leader election: campaigns, RequestVote on both sides, and taking office.

use super::actor::{Progress, Raft, Role};
use super::types::{Command, Entry, Event, PeerRequest, PeerResponse, VoteRequest, VoteResponse};
use super::Bug;
use tokio::time::Instant;

impl Raft {
    /// The election timer fired: campaign in the next term.
    pub fn start_election(&mut self) -> anyhow::Result<()> {
        self.term += 1;
        self.voted_for = Some(self.cfg.id.clone());
        self.save_state()?;
        self.role = Role::Candidate;
        self.leader_id = None;
        self.votes.clear();
        self.reset_election_timer();
        tracing::info!("became candidate for term {}", self.term);
        if self.majority() <= 1 {
            return self.become_leader();
        }
        let request = PeerRequest::Vote(VoteRequest {
            term: self.term,
            candidate: self.cfg.id.clone(),
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        });
        let limit = self.cfg.election_timeout;
        for (index, peer) in self.peers.iter().enumerate() {
            let (peer, request, events, term) = (
                peer.clone(),
                request.clone(),
                self.events.clone(),
                self.term,
            );
            tokio::spawn(async move {
                let response = match peer.call::<_, PeerResponse>(&request, limit).await {
                    Ok(PeerResponse::Vote(response)) => Some(response),
                    Ok(other) => {
                        tracing::warn!(peer = %peer.id, ?other, "unexpected answer to a vote");
                        None
                    }
                    Err(e) => {
                        tracing::debug!("vote request: {e}");
                        None
                    }
                };
                let _ = events.send(Event::VoteResult {
                    peer: index,
                    term,
                    response,
                });
            });
        }
        Ok(())
    }

    /// Answers a RequestVote. The term and vote are on disk before the answer leaves.
    pub fn on_vote_request(&mut self, request: VoteRequest) -> anyhow::Result<VoteResponse> {
        self.observe_term(request.term)?;
        let free = match &self.voted_for {
            None => true,
            Some(id) => *id == request.candidate,
        };
        // The planted bug `lost-vote` skips the up-to-date check, so a candidate missing
        // committed entries can win and overwrite them.
        let up_to_date = self.cfg.bug == Bug::LostVote
            || self
                .log
                .candidate_is_up_to_date(request.last_log_term, request.last_log_index);
        let granted = request.term == self.term && free && up_to_date;
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(request.candidate.clone());
                self.save_state()?;
            }
            self.reset_election_timer();
        }
        tracing::debug!(
            term = self.term,
            candidate = %request.candidate,
            granted,
            up_to_date,
            "vote request"
        );
        Ok(VoteResponse {
            term: self.term,
            granted,
        })
    }

    pub fn on_vote_result(
        &mut self,
        peer: usize,
        term: u64,
        response: Option<VoteResponse>,
    ) -> anyhow::Result<()> {
        let Some(response) = response else {
            return Ok(());
        };
        self.observe_term(response.term)?;
        if self.role != Role::Candidate || term != self.term || response.term != self.term {
            return Ok(());
        }
        if response.granted {
            self.votes.insert(peer);
            if self.votes.len() + 1 >= self.majority() {
                self.become_leader()?;
            }
        }
        Ok(())
    }

    /// Takes office: resets follower progress and appends a no-op of this term, which must
    /// commit before reads are served (the read index is never below it).
    pub fn become_leader(&mut self) -> anyhow::Result<()> {
        tracing::info!("became leader for term {}", self.term);
        self.role = Role::Leader;
        self.leader_id = Some(self.cfg.id.clone());
        self.votes.clear();
        let next = self.log.last_index() + 1;
        for progress in &mut self.progress {
            *progress = Progress {
                next,
                ..Progress::default()
            };
        }
        self.round = 0;
        self.lease_until = i64::MIN;
        self.lease_round = 0;
        self.term_start = self.log.push(Entry {
            term: self.term,
            command: Command::Noop,
        });
        self.unsynced += 1;
        self.sync_log()?;
        self.heartbeat_deadline = Instant::now();
        Ok(())
    }
}
