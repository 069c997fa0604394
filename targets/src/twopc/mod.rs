//! `twopc`: two-phase commit over bank accounts (DESIGN.md §7).
//!
//! One node is the coordinator (`--role coordinator`); the others are participants
//! (`--role participant --accounts a1,a2 --coordinator n1`), each holding some accounts, all
//! starting at `--initial-balance`. Every peer of the coordinator is a participant.
//!
//! Clients send `transfer` and `read-all` to the coordinator. A participant forwards them to the
//! coordinator and relays the answer (a forward that gets no answer is `unknown` for a transfer,
//! `fail` for a read); other operations get `fail`.
//!
//! - **transfer** `{from, to, amount}` (amount > 0, two distinct accounts): a two-phase commit
//!   across the participants holding the accounts (one participant if it holds both). Each
//!   participant takes exclusive locks, checks the debit leaves no balance negative, logs the
//!   effects (fsync) and votes. `ok`: every participant voted yes and the commit decision is
//!   logged, so the transfer happens (participants may apply it a little later, holding the
//!   accounts locked until they do). `fail`: aborted (a no vote, insufficient funds, an unknown
//!   account, a participant silent until `--request-timeout-ms`) or never started. `unknown`:
//!   only if the commit decision could not be logged.
//! - **read-all**: `{account: balance}` for every account, read under shared locks held on all
//!   participants at once, so it never shows half of a transfer. A read that cannot get every
//!   lock in time, or whose locks lapsed, is `fail` (it changed nothing).
//!
//! Locks are granted first come, first served; a request waits at most `--lock-wait-ms` and the
//! participant then votes no, so there are no deadlocks and no unbounded waits (except behind a
//! transaction that is prepared and undecided: 2PC blocks there by design, until the decision).
//!
//! Recovery: the coordinator's log has `begin`, `decision` and `done` records; on restart it
//! re-sends logged decisions and aborts transactions begun without one (presumed abort), and it
//! answers participants' decision queries from what it knows (no record: abort). A participant's
//! log has `prepared` (with effects), `committed`, `aborted` and `snapshot` records; on restart
//! its prepared, undecided transactions keep their locks and it asks the coordinator every
//! 250 ms until it learns their fate. Transaction ids carry the coordinator's epoch, bumped
//! durably at every start, so they never repeat.
//!
//! Planted bugs (`--bug`): `no-decision-log` (coordinator) and `abort-after-yes` (participant,
//! with `--prepare-timeout-ms`); see [`coordinator`] and [`participant`].

pub mod coordinator;
pub mod locks;
pub mod messages;
pub mod participant;
pub mod recovery;
pub mod wal;

use crate::node::{self, NodeArgs};
use crate::rpc::{self, Peer};
use anyhow::{bail, Context};
use coordinator::Coordinator;
use messages::Msg;
use participant::Participant;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The planted bugs `--bug` accepts in this mode.
pub const BUGS: &[&str] = &["no-decision-log", "abort-after-yes"];

/// Timeout of background peer calls (decisions, decision queries).
pub(crate) const RPC_TIMEOUT: Duration = Duration::from_secs(1);
/// Pace of retries: decision re-sends, decision queries, read-lock expiry, done logging.
pub(crate) const RETRY: Duration = Duration::from_millis(250);
/// A log with this many records is rewritten to what is still needed.
pub(crate) const COMPACT_AFTER: usize = 10_000;
/// Decisions a participant remembers to answer late or repeated messages consistently.
pub(crate) const RECENT_DECISIONS: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Coordinator,
    Participant,
}

#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// This node's role. Every peer of the coordinator is a participant.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Participant: the accounts it holds, comma separated (created on first start).
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Participant: every account's balance on first start.
    #[arg(long, default_value_t = 100)]
    pub initial_balance: i64,
    /// Participant: the coordinator's peer id (one of --peers).
    #[arg(long)]
    pub coordinator: Option<String>,
    /// How long the coordinator gives a transfer or read-all before aborting it (participants:
    /// also how long a read may hold its locks, and forwarding waits this plus 1 s).
    #[arg(long, default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// Participant: how long a prepare or read waits for busy accounts before giving up.
    #[arg(long, default_value_t = 200)]
    pub lock_wait_ms: u64,
    /// Participant: with `--bug abort-after-yes`, abort a yes-voted transaction on its own if
    /// no decision arrives within this many ms. Unused otherwise.
    #[arg(long, default_value_t = 1000)]
    pub prepare_timeout_ms: u64,
    /// Coordinator, TEST ONLY: after logging a commit and answering `ok`, wait this long before
    /// sending the commit to participants (a deterministic window in which a test cuts links).
    #[arg(long, default_value_t = 0)]
    pub hold_commit_ms: u64,
    /// Coordinator: after one participant acknowledges a commit, wait this long before telling
    /// the next (a slow coordinator: for that long, some participants know the outcome and
    /// others do not, the window a crash must not turn into a lost decision).
    #[arg(long, default_value_t = 0)]
    pub stagger_commit_ms: u64,
}

/// Runs one twopc node until SIGTERM/SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // Catch SIGTERM/SIGINT from the very start: `node::shutdown_signal` installs its handlers
    // only when first polled, and a signal arriving before that (e.g. during recovery) would
    // kill the process with the default action, leaving the pid file behind.
    let early = EarlySignals::install()?;
    args.node.prepare("twopc", BUGS)?;
    let client_listener = node::bind(&args.node.listen, "--listen").await?;
    let peer_listener = node::bind(&args.node.peer_listen, "--peer-listen").await?;
    match args.role {
        Role::Coordinator => {
            if args.node.bug_is("abort-after-yes") {
                tracing::warn!("abort-after-yes is a participant bug; the coordinator ignores it");
            }
            let coordinator = Coordinator::open(&args).await?;
            coordinator.start_background();
            let handler = {
                let coordinator = coordinator.clone();
                move |msg: Msg| {
                    let coordinator = coordinator.clone();
                    async move { coordinator.on_peer(msg).await }
                }
            };
            tokio::select! {
                _ = node::serve_clients(client_listener, Arc::new(coordinator)) => {}
                _ = rpc::serve(peer_listener, handler) => {}
                _ = early.shutdown() => {}
            }
        }
        Role::Participant => {
            let Some(coordinator_id) = args.coordinator.clone() else {
                bail!("a participant needs --coordinator (the coordinator's peer id)");
            };
            let Some((_, addr)) = args.node.peers.iter().find(|(id, _)| *id == coordinator_id)
            else {
                bail!("--coordinator {coordinator_id} is not one of --peers");
            };
            if args.accounts.is_empty() {
                bail!("a participant needs --accounts (e.g. --accounts a1,a2)");
            }
            if args.node.bug_is("no-decision-log") {
                tracing::warn!("no-decision-log is a coordinator bug; a participant ignores it");
            }
            let coordinator = Peer::new(coordinator_id, addr.clone());
            let participant = Participant::open(&args, coordinator)
                .await
                .context("cannot start the participant")?;
            participant.start_background();
            let handler = {
                let participant = participant.clone();
                move |msg: Msg| {
                    let participant = participant.clone();
                    async move { participant.on_peer(msg).await }
                }
            };
            tokio::select! {
                _ = node::serve_clients(client_listener, participant) => {}
                _ = rpc::serve(peer_listener, handler) => {}
                _ = early.shutdown() => {}
            }
        }
    }
    args.node.finish();
    Ok(())
}

/// SIGTERM and SIGINT handlers installed at start-up.
struct EarlySignals {
    term: Signal,
    int: Signal,
}

impl EarlySignals {
    fn install() -> anyhow::Result<EarlySignals> {
        Ok(EarlySignals {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// Resolves on SIGTERM or SIGINT, including one that arrived before this was polled.
    async fn shutdown(mut self) {
        tokio::select! {
            _ = node::shutdown_signal() => {}
            _ = self.term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = self.int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
}
