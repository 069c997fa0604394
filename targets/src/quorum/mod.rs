//! `quorum`: Dynamo-style replication over all N nodes with configurable R and W (DESIGN.md §7).
//!
//! Every node is both a replica and a coordinator: any node takes a client's get or put and runs
//! it against all N replicas (itself included), with an ABD-style protocol so that a correct
//! configuration (R + W > N) is linearizable:
//!
//! - **put**: phase 1 asks the replicas for the key's version and waits for R answers; the new
//!   version is the highest counter seen plus one, tie-broken by the coordinator's id. Phase 2
//!   sends the versioned value to every replica and answers `ok` once W have durably stored it.
//! - **get**: asks the replicas and waits for R answers; takes the highest version. If fewer than W
//!   of the answers already held exactly that version, it writes the value back (read repair) until
//!   W replicas hold it, then answers. (Skipping the write-back is safe only when W replicas are
//!   known to hold it: R agreeing replicas are enough only when R ≥ W, otherwise a later read's R
//!   replicas could all miss it.) Replicas that answered with an older version are repaired in the
//!   background either way.
//!
//! Replies are strict (see `protocol`): `ok` only when the quorum promise was met; a put whose
//! phase 2 started but did not reach W is `unknown` (it may be on some replicas and win later); a
//! put whose phase 1 could not reach R is `fail` (phase 2 never ran, nothing was stored); a get that
//! cannot reach R replicas is `fail` (a read has no effect); a get whose read repair did not reach
//! W is `unknown`. Each phase waits at most `--request-timeout-ms`. `cas` is refused: without
//! consensus, two coordinators can both see the expected value and both write. `transfer` and
//! `read-all` belong to twopc.
//!
//! Planted bugs: `sloppy-quorum` (a coordinator needs only itself: it answers after its own
//! replica plus whichever peers answer within a short grace period, effectively R = W = 1, so an
//! isolated node accepts writes and serves its own stale reads) and `lww-wallclock` (a put's
//! version is the coordinator's wall clock, so a write from a node whose clock is behind loses to
//! an older write: a lost update).

mod coordinator;
mod replica;
mod tally;
mod version;

use crate::node::{self, NodeArgs};
use crate::rpc;
use crate::storage;
use anyhow::{bail, Context};
use coordinator::Coordinator;
use replica::{PeerRequest, Replica};
use std::sync::Arc;
use std::time::Duration;

/// The planted bugs `--bug` accepts.
pub const BUGS: &[&str] = &["sloppy-quorum", "lww-wallclock"];

#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Replicas a get (and a put's first phase) must hear from [default: a majority of N].
    #[arg(long)]
    pub r: Option<usize>,
    /// Replicas a put (and a get's read repair) must have stored the value at [default: a
    /// majority of N].
    #[arg(long)]
    pub w: Option<usize>,
    /// How long a coordinator waits for replicas in each phase of a request.
    #[arg(long, default_value_t = 1000)]
    pub request_timeout_ms: u64,
}

/// A planted bug, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    None,
    SloppyQuorum,
    LwwWallclock,
}

/// The replication settings one node runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Replicas in all: the peers and this node.
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub timeout: Duration,
    pub bug: Bug,
}

impl Config {
    pub fn from_args(args: &Args) -> anyhow::Result<Config> {
        let n = args.node.peers.len() + 1;
        let r = args.r.unwrap_or(tally::majority(n));
        let w = args.w.unwrap_or(tally::majority(n));
        for (flag, value) in [("--r", r), ("--w", w)] {
            if value == 0 || value > n {
                bail!("{flag} {value} is not between 1 and N = {n} (the peers and this node)");
            }
        }
        if args.request_timeout_ms == 0 {
            bail!("--request-timeout-ms must be positive");
        }
        let bug = match args.node.bug.as_deref() {
            None => Bug::None,
            Some("sloppy-quorum") => Bug::SloppyQuorum,
            Some("lww-wallclock") => Bug::LwwWallclock,
            Some(other) => bail!("quorum has no planted bug {other:?}"),
        };
        Ok(Config {
            n,
            r,
            w,
            timeout: Duration::from_millis(args.request_timeout_ms),
            bug,
        })
    }

    /// How long a `sloppy-quorum` coordinator waits for peers once its own replica has answered.
    pub fn sloppy_grace(&self) -> Duration {
        (self.timeout / 5).min(Duration::from_millis(50))
    }
}

/// Runs one quorum node until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.node.prepare("quorum", BUGS)?;
    let result = serve(&args).await;
    args.node.finish();
    result
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let config = Config::from_args(args)?;
    let data_dir = &args.node.data_dir;
    let replica = Arc::new(
        Replica::open(data_dir)
            .with_context(|| format!("cannot open the replica in {}", data_dir.display()))?,
    );
    let incarnation = next_incarnation(data_dir)?;
    let client_listener = node::bind(&args.node.listen, "--listen").await?;
    let peer_listener = node::bind(&args.node.peer_listen, "--peer-listen").await?;
    if !tally::quorums_intersect(config.n, config.r, config.w) {
        tracing::warn!(
            n = config.n,
            r = config.r,
            w = config.w,
            "R + W <= N: reads may miss acknowledged writes (not linearizable)"
        );
    }
    tracing::info!(
        id = %args.node.id,
        n = config.n,
        r = config.r,
        w = config.w,
        timeout_ms = config.timeout.as_millis() as u64,
        bug = ?config.bug,
        incarnation,
        keys = replica.keys(),
        "quorum node up"
    );
    let coordinator = Arc::new(Coordinator::new(
        args.node.id.clone(),
        config,
        replica.clone(),
        &args.node.peers,
        incarnation,
    ));
    let clients = tokio::spawn(node::serve_clients(client_listener, coordinator));
    let peers = tokio::spawn(rpc::serve(peer_listener, move |request: PeerRequest| {
        replica::handle(replica.clone(), request)
    }));
    node::shutdown_signal().await;
    clients.abort();
    peers.abort();
    Ok(())
}

/// Bumps and returns this node's incarnation, kept durably in the data directory, so that write
/// versions stay unique across restarts (see `version::Version`).
fn next_incarnation(dir: &std::path::Path) -> anyhow::Result<u64> {
    let path = dir.join("incarnation.json");
    let previous: u64 = storage::load_json(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .unwrap_or(0);
    let next = previous + 1;
    storage::save_json(&path, &next).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec![
            "quorum",
            "--id",
            "n1",
            "--listen",
            "a:1",
            "--peer-listen",
            "a:2",
        ];
        argv.extend(["--data-dir", "/nowhere"]);
        argv.extend(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_are_majorities() {
        let one = Config::from_args(&args(&[])).unwrap();
        assert_eq!((one.n, one.r, one.w), (1, 1, 1));
        let three = Config::from_args(&args(&["--peers", "n2=a:3,n3=a:4"])).unwrap();
        assert_eq!((three.n, three.r, three.w), (3, 2, 2));
        assert_eq!(three.timeout, Duration::from_secs(1));
        assert_eq!(three.bug, Bug::None);
        let five = Config::from_args(&args(&["--peers", "n2=a:3,n3=a:4,n4=a:5,n5=a:6"])).unwrap();
        assert_eq!((five.n, five.r, five.w), (5, 3, 3));
    }

    #[test]
    fn flags_are_checked() {
        let peers = ["--peers", "n2=a:3,n3=a:4"];
        let c =
            Config::from_args(&args(&[&peers[..], &["--r", "1", "--w", "3"]].concat())).unwrap();
        assert_eq!((c.r, c.w), (1, 3));
        for bad in [["--r", "0"], ["--w", "4"]] {
            assert!(Config::from_args(&args(&[&peers[..], &bad[..]].concat())).is_err());
        }
        let bug = args(&["--bug", "lww-wallclock", "--request-timeout-ms", "300"]);
        let c = Config::from_args(&bug).unwrap();
        assert_eq!(
            (c.bug, c.timeout),
            (Bug::LwwWallclock, Duration::from_millis(300))
        );
        assert_eq!(c.sloppy_grace(), Duration::from_millis(50));
    }
}
