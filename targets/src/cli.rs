//! The node command line, shared by the `fissure-node` binary and `fissure node` (so one
//! `fissure` binary can run a whole local cluster, and `cargo run -p harness` needs nothing else).

use crate::{echo, quorum, raft, twopc};
use clap::Parser;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "fissure-node",
    version,
    about = "One node of a Fissure test system."
)]
pub enum NodeCli {
    /// A Raft-replicated key-value store (get, put, cas).
    RaftKv(raft::Args),
    /// Dynamo-style replication with configurable R and W (get, put, cas).
    Quorum(quorum::Args),
    /// Two-phase commit over bank accounts (transfer, read-all).
    Twopc(twopc::Args),
    /// One in-memory node answering get, put and cas at once: the harness's own baseline.
    Echo(echo::Args),
}

/// Runs one node to completion (SIGTERM or a fatal error) on its own runtime. Logging must be
/// set up by the caller.
pub fn run(cli: NodeCli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli {
            NodeCli::RaftKv(args) => raft::run(args).await,
            NodeCli::Quorum(args) => quorum::run(args).await,
            NodeCli::Twopc(args) => twopc::run(args).await,
            NodeCli::Echo(args) => echo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Node logs: stderr, filtered by `RUST_LOG` (default info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
