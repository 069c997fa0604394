//! `fissure-node MODE --id n1 --listen ... --peer-listen ... --peers ... --data-dir ...`

use clap::Parser;
use std::process::ExitCode;
use targets::{quorum, raft, twopc};

#[derive(Debug, Parser)]
#[command(
    name = "fissure-node",
    version,
    about = "One node of a Fissure test system."
)]
enum Cli {
    /// A Raft-replicated key-value store (get, put, cas).
    RaftKv(raft::Args),
    /// Dynamo-style replication with configurable R and W (get, put, cas).
    Quorum(quorum::Args),
    /// Two-phase commit over bank accounts (transfer, read-all).
    Twopc(twopc::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
            Cli::RaftKv(args) => raft::run(args).await,
            Cli::Quorum(args) => quorum::run(args).await,
            Cli::Twopc(args) => twopc::run(args).await,
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
