//! One node of a local cluster: its files, its flags, and telling when it is up.

use super::clock::ClockMechanism;
use nuclei::control::{NodeId, NodeState};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use targets::client::Client;
use targets::protocol::{NodeStatus, Op, Reply};
use tokio::time::Instant;

/// What never changes about a node.
pub struct NodeSpec {
    pub id: NodeId,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub clock_file: PathBuf,
    pub pid_file: PathBuf,
    pub data_dir: PathBuf,
    /// Mode-specific flags from the config.
    pub extra: Vec<String>,
}

impl NodeSpec {
    pub fn new(id: NodeId, cluster_dir: &Path, clock: &ClockMechanism, extra: Vec<String>) -> Self {
        let dir = cluster_dir.join(&id);
        NodeSpec {
            log: dir.join("node.log"),
            clock_file: clock.file(&dir),
            pid_file: dir.join("node.pid"),
            data_dir: dir.join("data"),
            dir,
            id,
            extra,
        }
    }
}

/// What changes: the process, and the ports it listens on (fresh ones after a bind failure).
pub struct Proc {
    pub child: Option<Child>,
    pub state: NodeState,
    pub client_addr: String,
    pub peer_addr: String,
}

/// Everything needed to build a node's command line.
pub struct Launch<'a> {
    pub program: &'a Path,
    pub program_args: &'a [String],
    pub target: &'a str,
    pub clock: &'a ClockMechanism,
    pub peers: String,
}

impl Launch<'_> {
    pub fn command(&self, spec: &NodeSpec, client_addr: &str, peer_addr: &str) -> Command {
        let mut command = Command::new(self.program);
        command
            .args(self.program_args)
            .arg(self.target)
            .args(["--id", &spec.id, "--listen", client_addr])
            .args(["--peer-listen", peer_addr])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .arg("--pid-file")
            .arg(&spec.pid_file);
        if !self.peers.is_empty() {
            command.args(["--peers", &self.peers]);
        }
        self.clock.configure(&mut command, &spec.clock_file);
        command.args(&spec.extra);
        // Node logs are the run's evidence: info unless asked otherwise, whatever the
        // controller's own RUST_LOG says.
        let level = std::env::var("FISSURE_NODE_LOG").unwrap_or_else(|_| "info".into());
        command.env("RUST_LOG", level).stdin(Stdio::null());
        command
    }
}

/// Opens the node's log for appending, as its stdout and stderr.
pub fn attach_log(command: &mut Command, log: &Path) -> anyhow::Result<()> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    };
    let cannot = |e| anyhow::anyhow!("cannot open the node log {}: {e}", log.display());
    command.stdout(open().map_err(cannot)?);
    command.stderr(open().map_err(cannot)?);
    Ok(())
}

/// The log's length now, so a failure can quote only what this start wrote.
pub fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// The last lines the node logged since byte `from`.
pub fn log_tail(log: &Path, from: u64) -> String {
    const MAX: u64 = 4096;
    let Ok(mut file) = std::fs::File::open(log) else {
        return format!("(no log at {})", log.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(MAX));
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(start));
    let _ = file.take(MAX).read_to_string(&mut text);
    let text = text.trim_end();
    if text.is_empty() {
        "(the log is empty)".into()
    } else {
        text.to_string()
    }
}

/// A loopback port held until the listener is dropped (just before the node binds it).
pub fn reserve_port() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("cannot reserve a loopback port: {e}"))?;
    let addr = listener.local_addr()?.to_string();
    Ok((listener, addr))
}

/// Why a node did not come up.
pub enum NotReady {
    /// Its port was taken between reservation and bind: worth a retry on fresh ports.
    PortTaken(String),
    Failed(String),
}

/// The outcome of one readiness probe.
enum Probe {
    Ready,
    NotYet,
    Imposter(String),
}

/// Asks `addr` for its status: a well-formed answer from the right node means both its
/// listeners are bound (every mode binds them before serving).
async fn probe(id: &str, addr: &str) -> Probe {
    let reply = Client::new(addr)
        .call(Op::Status, Duration::from_millis(500))
        .await;
    match reply {
        Reply::Ok { value } => match NodeStatus::from_value(&value) {
            Ok(status) if status.id == id => Probe::Ready,
            Ok(status) => Probe::Imposter(format!("node {} of another cluster", status.id)),
            // A mode without a status op still answered in our protocol.
            Err(_) => Probe::Ready,
        },
        // Not listening yet, or listening but not serving yet.
        Reply::Fail { error } if error.starts_with("cannot connect") => Probe::NotYet,
        Reply::Fail { error } if error.starts_with("connecting to") => Probe::NotYet,
        Reply::Unknown { .. } => Probe::NotYet,
        // An answer in our protocol, from a mode that does not serve status.
        Reply::Fail { .. } => Probe::Ready,
    }
}

/// Waits until the node answers on `client_addr`, or fails: exited, imposter, or `limit`.
pub async fn wait_ready(
    spec: &NodeSpec,
    child: &mut Child,
    client_addr: &str,
    log_from: u64,
    limit: Duration,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_tail(&spec.log, log_from);
            let why = format!("node {} exited ({status}) while starting", spec.id);
            return Err(if tail.contains("cannot listen") {
                NotReady::PortTaken(format!("{why}; its log ends:\n{tail}"))
            } else {
                NotReady::Failed(format!("{why}; its log ends:\n{tail}"))
            });
        }
        match probe(&spec.id, client_addr).await {
            Probe::Ready => return Ok(()),
            Probe::Imposter(who) => {
                return Err(NotReady::PortTaken(format!(
                    "{client_addr}, node {}'s port, is served by {who}",
                    spec.id
                )))
            }
            Probe::NotYet => {}
        }
        if Instant::now() >= deadline {
            return Err(NotReady::Failed(format!(
                "node {} did not answer on {client_addr} within {limit:?} (raise the start \
                 timeout if the machine is slow); its log ends:\n{}",
                spec.id,
                log_tail(&spec.log, log_from)
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
