//! What every `fissure-node` mode shares: its command-line flags, start-up (data directory, pid
//! file, clock), the client listener, and shutdown on SIGTERM.

use crate::protocol::{Op, Reply, Request, Response};
use anyhow::{bail, Context};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Flags common to every mode.
#[derive(Clone, Debug, clap::Args)]
pub struct NodeArgs {
    /// This node's id, e.g. n1.
    #[arg(long)]
    pub id: String,
    /// Address for clients (JSON lines, see `targets::protocol`).
    #[arg(long)]
    pub listen: String,
    /// Address for other nodes.
    #[arg(long)]
    pub peer_listen: String,
    /// The other nodes as id=address (their peer address, or a proxy in front of it), comma
    /// separated: n2=127.0.0.1:7102,n3=127.0.0.1:7103.
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<(String, String)>,
    /// Where this node keeps its durable state.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A planted bug to switch on (each mode lists its own).
    #[arg(long)]
    pub bug: Option<String>,
    /// Write the process id here at start; removed on clean shutdown.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A file holding a clock offset in milliseconds, re-read while running (see `clock`).
    #[arg(long)]
    pub clock_offset_file: Option<PathBuf>,
}

fn parse_peer(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((id, addr)) if !id.is_empty() && !addr.is_empty() => {
            Ok((id.to_string(), addr.to_string()))
        }
        _ => Err(format!(
            "{text:?} is not id=address (e.g. n2=127.0.0.1:7102)"
        )),
    }
}

impl NodeArgs {
    /// Checks the planted bug against the mode's list, creates the data directory, writes the pid
    /// file and points the clock at its offset file.
    pub fn prepare(&self, mode: &str, known_bugs: &[&str]) -> anyhow::Result<()> {
        install_signal_handlers()?;
        if let Some(bug) = &self.bug {
            if !known_bugs.contains(&bug.as_str()) {
                bail!(
                    "{mode} has no planted bug {bug:?}; it has: {}",
                    known_bugs.join(", ")
                );
            }
            tracing::warn!(%bug, "planted bug switched on");
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create data dir {}", self.data_dir.display()))?;
        if let Some(pid_file) = &self.pid_file {
            std::fs::write(pid_file, format!("{}\n", std::process::id()))
                .with_context(|| format!("cannot write pid file {}", pid_file.display()))?;
        }
        if let Some(path) = &self.clock_offset_file {
            crate::clock::use_offset_file(path.clone());
        }
        Ok(())
    }

    pub fn bug_is(&self, name: &str) -> bool {
        self.bug.as_deref() == Some(name)
    }

    /// Removes the pid file after a clean shutdown.
    pub fn finish(&self) {
        if let Some(pid_file) = &self.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

/// A mode's answer to client operations.
pub trait Service: Send + Sync + 'static {
    fn handle(&self, op: Op) -> impl Future<Output = Reply> + Send;
}

/// Serves clients on `listener` until the task is dropped. Requests on one connection are
/// answered in order; a line that is not a request gets a `fail` with id 0.
pub async fn serve_clients<S: Service>(listener: TcpListener, service: Arc<S>) {
    crate::rpc::serve_lines(listener, move |line: String| {
        let service = service.clone();
        async move {
            Some(match serde_json::from_str::<Request>(&line) {
                Ok(request) => Response {
                    id: request.id,
                    reply: service.handle(request.op).await,
                },
                Err(e) => Response {
                    id: 0,
                    reply: Reply::fail(format!("bad request: {e}")),
                },
            })
        }
    })
    .await
}

/// Binds a listener, naming the flag in the error.
pub async fn bind(addr: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({flag})"))
}

/// SIGTERM and SIGINT streams, installed by [`NodeArgs::prepare`] so that a signal arriving
/// during start-up is caught too, not left to the default action (which would skip cleanup).
static SIGNALS: OnceLock<tokio::sync::Mutex<(Signal, Signal)>> = OnceLock::new();

fn install_signal_handlers() -> anyhow::Result<()> {
    if SIGNALS.get().is_none() {
        let term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let _ = SIGNALS.set(tokio::sync::Mutex::new((term, int)));
    }
    Ok(())
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    if let Err(e) = install_signal_handlers() {
        tracing::error!("{e:#}; the node can only be killed");
        std::future::pending::<()>().await;
    }
    let mut signals = SIGNALS.get().expect("installed above").lock().await;
    let (term, int) = &mut *signals;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
