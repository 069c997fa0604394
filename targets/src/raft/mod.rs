//! `raft-kv`: a key-value store replicated with Raft, written small enough to audit
//! (DESIGN.md §7).
//!
//! - **Election**: randomized timeouts in [t, 2t) (`--election-timeout-ms` t), RequestVote with the
//!   up-to-date check (§5.4.1); term and vote are fsync'd before a vote is answered.
//! - **Replication**: AppendEntries with the consistency check and conflict truncation; the log
//!   is fsync'd before a follower answers and before the leader counts its own entry. The leader
//!   commits the highest index a majority stores, only if it is of its own term (§5.4.2).
//!   Heartbeats every `--heartbeat-ms`.
//! - **Recovery**: term, vote and log are reloaded from `--data-dir`; the commit index is not
//!   stored, so the state machine is rebuilt by re-applying the committed prefix as the node
//!   learns it again from the leader (or commits its own no-op as leader).
//! - **Clients**: get, put, cas on string keys with JSON values (a missing key reads `null`).
//!   put and cas go through the log and are answered after they are applied; a cas whose compare
//!   fails is applied as a no-op and answered `fail`. Gets are linearizable through a read index:
//!   the leader takes its commit index (never below its own term's no-op), confirms it still leads
//!   with a heartbeat round a majority acknowledges, waits to have applied that far, then reads.
//!   **Followers forward** client requests to the leader they know over the peer RPC and relay its
//!   answer. Answers follow `protocol` strictly; see [`service`] for what each status means here.
//!   Requests are answered within `--request-timeout-ms`.
//! - **Structure**: one actor task owns all Raft state (`actor`), fed by one channel; timers are
//!   tokio deadlines; outgoing RPCs run in spawned tasks that post results back as events.
//!
//! Planted bugs (`--bug`): `stale-read` (every node answers gets from its own state machine: no
//! read index, no forwarding), `lease-read` (the leader answers gets locally while its lease,
//! judged by `clock::now_ms`, has not expired; the lease is extended to now + `--lease-ms` whenever
//! a majority acknowledges a heartbeat round, so a leader whose clock runs behind keeps serving
//! after it was deposed), `lost-vote` (votes are granted without the up-to-date check, so a node
//! missing committed entries can be elected and overwrite them).
//!
//! Transactions (`txn`: micro-ops appending to list keys, writing and reading keys) are one log
//! entry, applied at once with their reads run at apply time: strict serializable. Two planted
//! bugs break that: `non-atomic-txn` (the node that takes the transaction proposes each micro-op
//! as an entry of its own, one after the other, so other transactions interleave between them
//! and can see half of it, and it can see theirs: G1c, G-single, G1b); `txn-local-read` (the node
//! that takes the transaction runs it against its own applied state, without the log, and
//! proposes only its writes: a write-after-read loses a concurrent update, and a follower's
//! reads lag; G-single, lost update, G2, realtime cycles).

mod actor;
mod election;
mod kv;
mod log;
mod replication;
mod requests;
mod service;
mod store;
mod types;

use crate::node::{self, NodeArgs};
use crate::rpc::{self, Peer};
use actor::Raft;
use anyhow::bail;
use service::KvService;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use types::PeerRequest;

/// The planted bugs `--bug` accepts.
pub const BUGS: &[&str] = &[
    "stale-read",
    "lease-read",
    "lost-vote",
    "non-atomic-txn",
    "txn-local-read",
];

#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Base election timeout t; each wait is drawn from [t, 2t).
    #[arg(long, default_value_t = 300)]
    pub election_timeout_ms: u64,
    /// How often a leader sends heartbeats (a heartbeat round).
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// How long a client request may take before it is answered fail or unknown.
    #[arg(long, default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// `lease-read` bug only: how long a majority-acknowledged heartbeat round extends the
    /// leader's read lease, by its wall clock. Shorter than the election timeout, so the lease
    /// is safe while clocks are right and only clock skew makes it lie.
    #[arg(long, default_value_t = 250)]
    pub lease_ms: u64,
}

/// A planted bug, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    None,
    StaleRead,
    LeaseRead,
    LostVote,
    NonAtomicTxn,
    TxnLocalRead,
}

/// What the actor needs from the flags.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: String,
    pub data_dir: PathBuf,
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    pub lease_ms: i64,
    pub bug: Bug,
}

impl Args {
    fn config(&self) -> anyhow::Result<Config> {
        if self.election_timeout_ms == 0 || self.heartbeat_ms == 0 || self.request_timeout_ms == 0 {
            bail!("--election-timeout-ms, --heartbeat-ms and --request-timeout-ms must be > 0");
        }
        if self.heartbeat_ms >= self.election_timeout_ms {
            bail!("--heartbeat-ms must be below --election-timeout-ms");
        }
        let mut seen = vec![self.node.id.as_str()];
        for (id, _) in &self.node.peers {
            if seen.contains(&id.as_str()) {
                bail!("node id {id} appears twice among --id and --peers");
            }
            seen.push(id);
        }
        let bug = match self.node.bug.as_deref() {
            None => Bug::None,
            Some("stale-read") => Bug::StaleRead,
            Some("lease-read") => Bug::LeaseRead,
            Some("lost-vote") => Bug::LostVote,
            Some("non-atomic-txn") => Bug::NonAtomicTxn,
            Some("txn-local-read") => Bug::TxnLocalRead,
            Some(other) => bail!("raft-kv has no planted bug {other:?}"),
        };
        Ok(Config {
            id: self.node.id.clone(),
            data_dir: self.node.data_dir.clone(),
            election_timeout: Duration::from_millis(self.election_timeout_ms),
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            lease_ms: self.lease_ms as i64,
            bug,
        })
    }
}

/// Runs one raft-kv node until SIGTERM/SIGINT (or a fatal disk error).
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.node.prepare("raft-kv", BUGS)?;
    let result = serve(&args).await;
    args.node.finish();
    result
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let clients = node::bind(&args.node.listen, "--listen").await?;
    let peer_listener = node::bind(&args.node.peer_listen, "--peer-listen").await?;
    let peers: Vec<Arc<Peer>> = args
        .node
        .peers
        .iter()
        .map(|(id, addr)| Peer::new(id.clone(), addr.clone()))
        .collect();
    tracing::info!(
        id = %cfg.id,
        peers = ?args.node.peers,
        bug = ?cfg.bug,
        "raft-kv starting"
    );
    let (events, rx) = mpsc::unbounded_channel();
    let bug = cfg.bug;
    let raft = Raft::open(cfg, peers.clone(), events.clone())?;
    let service = Arc::new(KvService {
        events,
        peers: peers
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect::<HashMap<_, _>>(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        bug,
    });
    let actor = tokio::spawn(raft.run(rx));
    let client_task = tokio::spawn(node::serve_clients(clients, service.clone()));
    let peer_service = service.clone();
    let peer_task = tokio::spawn(rpc::serve(peer_listener, move |request: PeerRequest| {
        let service = peer_service.clone();
        async move { service.on_peer(request).await }
    }));
    let result = tokio::select! {
        _ = node::shutdown_signal() => Ok(()),
        finished = actor => match finished {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.context("the raft actor stopped")),
            Err(e) => Err(anyhow::anyhow!("the raft actor panicked: {e}")),
        },
    };
    client_task.abort();
    peer_task.abort();
    result
}
