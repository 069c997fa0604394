//! The coordinator: runs a client's get or put against all N replicas and decides its reply.
//!
//! Replicas are numbered 0..N: 0 is this node's own replica, i ≥ 1 is `peers[i - 1]`. Every round
//! sends its request to its replicas at once (each in its own task, so the requests still reach
//! slow replicas after the coordinator has answered) and collects answers until the round's quorum
//! is met, cannot be met any more, or the phase times out.

use super::replica::{PeerRequest, PeerResponse, Replica};
use super::tally::Tally;
use super::version::{self, Entry, Version};
use super::{Bug, Config};
use crate::clock;
use crate::node::Service;
use crate::protocol::{NodeStatus, Op, Reply};
use crate::rpc::{Peer, RpcError};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

/// Immediate retries of a peer call that failed on the connection (a pooled connection to a
/// restarted peer, a refused connect). Reads and stores are idempotent, so a retry is harmless.
const ATTEMPTS: usize = 10;

/// How a round decides it is done.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Until this many replicas answered, too many failed, or the phase timed out.
    Quorum(usize),
    /// `sloppy-quorum`: until this node's replica answered and the grace period is over (or every
    /// replica answered). Done when the local replica answered.
    Sloppy,
}

/// What one round collected.
struct Round<T> {
    answers: Vec<(usize, T)>,
    errors: Vec<String>,
    reached: bool,
    needed: usize,
}

impl<T> Round<T> {
    fn summary(&self) -> String {
        let mut text = format!(
            "{} of {} needed replicas answered",
            self.answers.len(),
            self.needed
        );
        if !self.errors.is_empty() {
            text.push_str(": ");
            text.push_str(&self.errors.join("; "));
        }
        text
    }
}

type Sender<T> = mpsc::UnboundedSender<(usize, Result<T, String>)>;
type Receiver<T> = mpsc::UnboundedReceiver<(usize, Result<T, String>)>;

pub struct Coordinator {
    id: String,
    config: Config,
    replica: Arc<Replica>,
    peers: Vec<Arc<Peer>>,
    next_seq: AtomicU64,
}

impl Coordinator {
    pub fn new(
        id: String,
        config: Config,
        replica: Arc<Replica>,
        peers: &[(String, String)],
        incarnation: u64,
    ) -> Coordinator {
        Coordinator {
            id,
            config,
            replica,
            peers: peers
                .iter()
                .map(|(id, addr)| Peer::new(id.clone(), addr.clone()))
                .collect(),
            next_seq: AtomicU64::new(incarnation << 32),
        }
    }

    fn sloppy(&self) -> bool {
        self.config.bug == Bug::SloppyQuorum
    }

    fn read_wait(&self) -> Wait {
        if self.sloppy() {
            Wait::Sloppy
        } else {
            Wait::Quorum(self.config.r)
        }
    }

    /// How many replicas must hold a value before a put or a read repair is done.
    fn write_quorum(&self) -> usize {
        if self.sloppy() {
            1
        } else {
            self.config.w
        }
    }

    async fn put(&self, key: String, value: Value) -> Reply {
        let read = self.read_round(&key).await;
        if !read.reached {
            tracing::debug!(%key, "put failed in phase 1: {}", read.summary());
            return Reply::fail(format!(
                "put not attempted: could not learn the key's version ({}); nothing was written",
                read.summary()
            ));
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let version = match self.config.bug {
            // Blind last-writer-wins: the first phase's answer is ignored.
            Bug::LwwWallclock => Version::wall_clock(clock::now_ms(), &self.id, seq),
            _ => {
                let seen = version::highest(read.answers.iter().map(|(_, e)| e.as_ref()));
                Version::after(seen.map(|e| &e.version), &self.id, seq)
            }
        };
        let entry = Entry { version, value };
        let all: Vec<usize> = (0..self.config.n).collect();
        let wait = if self.sloppy() {
            Wait::Sloppy
        } else {
            Wait::Quorum(self.config.w)
        };
        let stored = self
            .gather(self.send_stores(&key, &entry, &all), all.len(), wait)
            .await;
        if stored.reached {
            tracing::debug!(%key, version = ?entry.version, "put ok");
            Reply::ok_empty()
        } else {
            tracing::debug!(%key, "put unknown in phase 2: {}", stored.summary());
            Reply::unknown(format!(
                "the value may or may not have been stored: {}",
                stored.summary()
            ))
        }
    }

    async fn get(&self, key: String) -> Reply {
        let read = self.read_round(&key).await;
        if !read.reached {
            tracing::debug!(%key, "get failed: {}", read.summary());
            return Reply::fail(format!("could not read a quorum: {}", read.summary()));
        }
        let Some(best) = version::highest(read.answers.iter().map(|(_, e)| e.as_ref())).cloned()
        else {
            return Reply::ok(Value::Null);
        };
        let holds_best =
            |entry: &Option<Entry>| entry.as_ref().is_some_and(|e| e.version == best.version);
        let holders: Vec<usize> = read
            .answers
            .iter()
            .filter(|(_, e)| holds_best(e))
            .map(|(i, _)| *i)
            .collect();
        let needed = self.write_quorum().saturating_sub(holders.len());
        if needed == 0 {
            let stale: Vec<usize> = read
                .answers
                .iter()
                .filter(|(_, e)| !holds_best(e))
                .map(|(i, _)| *i)
                .collect();
            if !stale.is_empty() {
                // Background read repair; nothing waits for it.
                drop(self.send_stores(&key, &best, &stale));
            }
            return Reply::ok(best.value);
        }
        let targets: Vec<usize> = (0..self.config.n)
            .filter(|i| !holders.contains(i))
            .collect();
        let repaired = self
            .gather(
                self.send_stores(&key, &best, &targets),
                targets.len(),
                Wait::Quorum(needed),
            )
            .await;
        if repaired.reached {
            Reply::ok(best.value)
        } else {
            tracing::debug!(%key, "get's read repair fell short: {}", repaired.summary());
            Reply::unknown(format!(
                "read version {:?} but could not write it back to a quorum: {}",
                best.version,
                repaired.summary()
            ))
        }
    }

    /// Asks every replica for `key`; this node's own answer comes first.
    async fn read_round(&self, key: &str) -> Round<Option<Entry>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send((0, Ok(self.replica.read(key))));
        let deadline = Instant::now() + self.config.timeout;
        for (i, peer) in self.peers.iter().enumerate() {
            let request = PeerRequest::Read {
                key: key.to_string(),
            };
            let (peer, tx) = (peer.clone(), tx.clone());
            tokio::spawn(async move {
                let answer = match call(&peer, &request, deadline).await {
                    Ok(PeerResponse::Read { entry }) => Ok(entry),
                    Ok(other) => Err(format!("{}: unexpected answer {other:?}", peer.id)),
                    Err(e) => Err(e),
                };
                let _ = tx.send((i + 1, answer));
            });
        }
        drop(tx);
        self.gather(rx, self.config.n, self.read_wait()).await
    }

    /// Sends `entry` to the `targets` replicas; answers arrive on the returned channel.
    fn send_stores(&self, key: &str, entry: &Entry, targets: &[usize]) -> Receiver<Version> {
        let (tx, rx): (Sender<Version>, _) = mpsc::unbounded_channel();
        let deadline = Instant::now() + self.config.timeout;
        for &i in targets {
            let tx = tx.clone();
            if i == 0 {
                let (replica, key, entry) = (self.replica.clone(), key.to_string(), entry.clone());
                tokio::spawn(async move {
                    let answer = replica
                        .store(&key, &entry)
                        .await
                        .map_err(|e| format!("local replica: {e}"));
                    let _ = tx.send((0, answer));
                });
            } else {
                let peer = self.peers[i - 1].clone();
                let request = PeerRequest::Store {
                    key: key.to_string(),
                    entry: entry.clone(),
                };
                tokio::spawn(async move {
                    let answer = match call(&peer, &request, deadline).await {
                        Ok(PeerResponse::Stored { current }) => Ok(current),
                        Ok(other) => Err(format!("{}: unexpected answer {other:?}", peer.id)),
                        Err(e) => Err(e),
                    };
                    let _ = tx.send((i, answer));
                });
            }
        }
        rx
    }

    /// Collects a round's answers as `wait` says.
    async fn gather<T>(&self, mut rx: Receiver<T>, total: usize, wait: Wait) -> Round<T> {
        let start = Instant::now();
        let deadline = start + self.config.timeout;
        let grace_end = start + self.config.sloppy_grace();
        let needed = match wait {
            Wait::Quorum(k) => k,
            Wait::Sloppy => 1,
        };
        let mut tally = Tally::new(needed, total);
        let mut round = Round {
            answers: Vec::new(),
            errors: Vec::new(),
            reached: false,
            needed,
        };
        let (mut local_ok, mut local_failed) = (false, false);
        loop {
            let done = match wait {
                Wait::Quorum(_) => tally.reached() || tally.impossible(),
                Wait::Sloppy => {
                    tally.all_in() || local_failed || (local_ok && Instant::now() >= grace_end)
                }
            };
            if done {
                break;
            }
            let until = match wait {
                Wait::Sloppy if local_ok => grace_end,
                _ => deadline,
            };
            match timeout_at(until, rx.recv()).await {
                Ok(Some((i, Ok(answer)))) => {
                    tally.ack();
                    local_ok |= i == 0;
                    round.answers.push((i, answer));
                }
                Ok(Some((i, Err(error)))) => {
                    tally.failure();
                    local_failed |= i == 0;
                    round.errors.push(error);
                }
                // Every request answered, or time is up.
                Ok(None) | Err(_) => break,
            }
        }
        round.reached = match wait {
            Wait::Quorum(_) => tally.reached(),
            Wait::Sloppy => local_ok,
        };
        let missing = total - round.answers.len() - round.errors.len();
        if !round.reached && missing > 0 {
            round.errors.push(format!(
                "{missing} did not answer within {:?}",
                self.config.timeout
            ));
        }
        round
    }
}

/// Calls a peer, retrying at once on connection errors, until an answer or `deadline`.
async fn call(
    peer: &Peer,
    request: &PeerRequest,
    deadline: Instant,
) -> Result<PeerResponse, String> {
    let mut last = format!("peer {}: no answer in time", peer.id);
    for _ in 0..ATTEMPTS {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match peer.call::<_, PeerResponse>(request, deadline - now).await {
            Ok(PeerResponse::Error { error }) => return Err(format!("peer {}: {error}", peer.id)),
            Ok(response) => return Ok(response),
            Err(e @ RpcError::Io(..)) => last = e.to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

impl Service for Coordinator {
    async fn handle(&self, op: Op) -> Reply {
        match op {
            Op::Get { key } => self.get(key).await,
            Op::Put { key, value } => self.put(key, value).await,
            Op::Status => NodeStatus {
                id: self.id.clone(),
                role: "replica".into(),
                leader: None,
                term: None,
            }
            .reply(),
            Op::Cas { .. } => Reply::fail(
                "quorum replication cannot compare-and-set atomically: without consensus two \
                 coordinators can both see the expected value and both write (use raft-kv for cas)",
            ),
            other => Reply::fail(format!("quorum serves get and put, not {}", other.name())),
        }
    }
}
