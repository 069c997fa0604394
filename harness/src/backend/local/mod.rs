//! The local backend (DESIGN.md §6): `fissure-node` processes on loopback, every node→node and
//! client→node connection through a Fissure [`nuclei::link::LinkProxy`], so partitions, latency
//! and loss are real at the TCP level without root.
//!
//! - Layout: per node `<dir>/<id>/data/`, `node.log` (stdout and stderr, at `RUST_LOG=info`
//!   unless `FISSURE_NODE_LOG` says otherwise), `node.pid`, and a clock file ([`clock`]).
//! - Processes never outlive the controller and ignore the terminal's Ctrl-C ([`process`]).
//! - Ports are reserved by binding them and released just before each node starts; a node that
//!   still loses its port to another process is retried on fresh ones.

mod clock;
mod file_target;
mod network;
mod node;
mod process;

pub use clock::ClockMechanism;

use crate::backend::remote::file_target::FileTarget;
use anyhow::{bail, Context};
use network::Network;
use nix::sys::signal::Signal;
use node::{Launch, NodeSpec, NotReady, Proc};
use nuclei::control::{ClusterControl, Grudge, LinkQuality, NodeId, NodeState};
use process::{Owned, Spawner};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// What to run and where.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// The fissure-node mode: "raft-kv", "quorum", "twopc", ...
    pub target: String,
    pub nodes: usize,
    /// Per node, mode-specific flags (`--bug`, `--role`, `--election-timeout-ms`, ...).
    pub node_args: Vec<Vec<String>>,
    /// The binary to run ...
    pub program: PathBuf,
    /// ... with these arguments first, e.g. `["node"]` for `fissure node`.
    pub program_args: Vec<String>,
    /// Each node's files go under `<dir>/<id>/`.
    pub dir: PathBuf,
    /// How long each node may take to answer after it is spawned.
    pub start_timeout: Duration,
    /// A target file's own commands, instead of a mode of `program` (`target` is then its name).
    pub file: Option<Box<FileTarget>>,
}

/// Fresh ports are tried this many times in all when a node cannot bind its own.
const PORT_ATTEMPTS: usize = 3;
/// How long a SIGTERMed node may take to stop cleanly before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_secs(3);

struct Node {
    spec: NodeSpec,
    /// Held for a whole operation on the node (kill, start, ...), so they never interleave.
    op: tokio::sync::Mutex<()>,
    proc: Mutex<Proc>,
}

/// A running local cluster. Dropping it SIGKILLs every node and stops every proxy.
pub struct LocalCluster {
    config: LocalConfig,
    clock: ClockMechanism,
    nodes: Vec<Node>,
    network: Mutex<Network>,
    closed: AtomicBool,
    /// Last: dropped after `Drop` has killed every node (its thread is their parent).
    spawner: Spawner,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalCluster {
    /// Starts every node, each reached through its proxies, with libfaketime when installed.
    /// Returns once all answer, or an error naming the node and quoting its log.
    pub async fn start(config: LocalConfig) -> anyhow::Result<LocalCluster> {
        LocalCluster::start_with_clock(config, ClockMechanism::detect()).await
    }

    /// [`LocalCluster::start`] with a chosen clock mechanism.
    pub async fn start_with_clock(
        config: LocalConfig,
        clock: ClockMechanism,
    ) -> anyhow::Result<LocalCluster> {
        if config.nodes == 0 {
            bail!("a local cluster needs at least one node");
        }
        if config.node_args.len() != config.nodes {
            bail!(
                "node_args has {} entries for {} nodes: give one list of flags per node",
                config.node_args.len(),
                config.nodes
            );
        }
        if config.target.is_empty() {
            bail!("no target mode given (e.g. raft-kv, quorum, twopc)");
        }
        let ids: Vec<NodeId> = (1..=config.nodes).map(|i| format!("n{i}")).collect();
        // Hold the nodes' ports while the proxies bind theirs, so the kernel cannot hand a
        // proxy a node's port; each is released just before its node starts.
        let mut reserved = Vec::new();
        let mut nodes = Vec::new();
        let (mut peer_addrs, mut client_addrs) = (Vec::new(), Vec::new());
        for (id, extra) in ids.iter().zip(&config.node_args) {
            let (client, client_addr) = node::reserve_port()?;
            let (peer, peer_addr) = node::reserve_port()?;
            reserved.push(Some((client, peer)));
            let spec = NodeSpec::new(id.clone(), &config.dir, &clock, extra.clone());
            std::fs::create_dir_all(&spec.data_dir).with_context(|| {
                format!("cannot create the node directory {}", spec.dir.display())
            })?;
            clock.write(&spec.clock_file, 0)?;
            peer_addrs.push(peer_addr.clone());
            client_addrs.push(client_addr.clone());
            nodes.push(Node {
                spec,
                op: tokio::sync::Mutex::new(()),
                proc: Mutex::new(Proc {
                    child: None,
                    state: NodeState::Killed,
                    client_addr,
                    peer_addr,
                }),
            });
        }
        let network = Network::start(ids, &peer_addrs, &client_addrs).await?;
        let cluster = LocalCluster {
            config,
            clock,
            nodes,
            network: Mutex::new(network),
            closed: AtomicBool::new(false),
            spawner: Spawner::new()?,
        };
        // Spawn all, then wait for all: a node may need another to be up before it answers.
        // On an error (or if this future is dropped), the unsettled children kill themselves and
        // dropping `cluster` kills those that had settled.
        for i in 0..cluster.nodes.len() {
            cluster.run_hook(i, "wipe").await?;
        }
        let mut children = Vec::new();
        for (i, reservation) in reserved.iter_mut().enumerate() {
            children.push(cluster.spawn(i, reservation.take()).await?);
        }
        for (i, (child, log_from)) in children.into_iter().enumerate() {
            cluster.settle(i, child, log_from).await?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.run_hook(i, "setup").await?;
        }
        Ok(cluster)
    }

    /// Where clients connect: each node's client proxy.
    pub fn client_addrs(&self) -> Vec<(NodeId, String)> {
        let network = lock(&self.network);
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.spec.id.clone(), network.client_addr(i)))
            .collect()
    }

    /// Which clock mechanism the nodes run with: "libfaketime" or "offset-file".
    pub fn clock_mechanism(&self) -> &'static str {
        self.clock.name()
    }

    /// Each node's clock file (what [`ClusterControl::set_clock_offset`] writes).
    pub fn clock_files(&self) -> Vec<(NodeId, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.spec.id.clone(), n.spec.clock_file.clone()))
            .collect()
    }

    /// Each node's log file.
    pub fn log_files(&self) -> Vec<(NodeId, PathBuf)> {
        self.nodes
            .iter()
            .map(|n| (n.spec.id.clone(), n.spec.log.clone()))
            .collect()
    }

    /// The process id of every node that has a process (running or paused).
    pub fn pids(&self) -> Vec<(NodeId, u32)> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let proc = lock(&n.proc);
                proc.child.as_ref().map(|c| (n.spec.id.clone(), c.id()))
            })
            .collect()
    }

    /// Each node's own listeners (client, peer), behind its proxies.
    pub fn node_addrs(&self) -> Vec<(NodeId, String, String)> {
        self.nodes
            .iter()
            .map(|n| {
                let proc = lock(&n.proc);
                let (client, peer) = (proc.client_addr.clone(), proc.peer_addr.clone());
                (n.spec.id.clone(), client, peer)
            })
            .collect()
    }

    /// For every ordered pair (from, to): whether from → to bytes and to → from answers are
    /// currently cut, on the proxy `from` uses to reach `to`.
    pub fn link_cuts(&self) -> Vec<(NodeId, NodeId, bool, bool)> {
        lock(&self.network).cuts()
    }

    /// Heals everything, SIGTERMs every node, SIGKILLs those still running after a grace
    /// period, and stops the proxies. Idempotent; the cluster cannot be started again after.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        lock(&self.network).heal();
        let mut guards = Vec::new();
        for node in &self.nodes {
            guards.push(node.op.lock().await);
        }
        let mut stopping = Vec::new();
        let mut failures = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if lock(&node.proc).child.is_some() {
                if let Err(e) = self.run_hook(i, "stop").await {
                    failures.push(format!("{}: {e:#}", node.spec.id));
                }
            }
        }
        for node in &self.nodes {
            let mut proc = lock(&node.proc);
            if let Some(mut child) = proc.child.take().map(Owned::new) {
                // A stopped process acts on SIGTERM only once continued.
                let pid = child.child().id();
                let signalled = process::signal(pid, Signal::SIGTERM)
                    .and_then(|()| process::signal(pid, Signal::SIGCONT));
                if let Err(e) = signalled {
                    failures.push(format!("{}: {e:#}", node.spec.id));
                }
                stopping.push((node, child));
            }
            proc.state = NodeState::Killed;
        }
        for (node, mut child) in stopping {
            let stopped = match process::wait_exit(child.child(), TERM_GRACE).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) | Err(_) => process::kill_and_reap(child.child()).await,
            };
            if let Err(e) = stopped {
                failures.push(format!("{}: {e:#}", node.spec.id));
            }
        }
        lock(&self.network).shutdown();
        failures.extend(self.collect_log_files());
        drop(guards);
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "some nodes could not be stopped (kill them by hand): {}",
                failures.join("; ")
            )
        }
    }

    fn node(&self, id: &str) -> anyhow::Result<(usize, &Node)> {
        match self.nodes.iter().position(|n| n.spec.id == id) {
            Some(i) => Ok((i, &self.nodes[i])),
            None => bail!(
                "no node {id:?} in this cluster; its nodes are {}",
                self.nodes().join(", ")
            ),
        }
    }

    /// Spawns node i on its current ports (releasing their reservation first), returning the
    /// child and where its log started.
    async fn spawn(
        &self,
        i: usize,
        reservation: Option<(TcpListener, TcpListener)>,
    ) -> anyhow::Result<(Owned, u64)> {
        let node = &self.nodes[i];
        let (client_addr, peer_addr) = {
            let proc = lock(&node.proc);
            (proc.client_addr.clone(), proc.peer_addr.clone())
        };
        let mut command = match &self.config.file {
            Some(file) => {
                let start = self.render(file, i)?.start;
                let mut command = std::process::Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("exec {start}"))
                    .current_dir(&node.spec.dir)
                    .stdin(std::process::Stdio::null());
                self.clock.configure(&mut command, &node.spec.clock_file);
                command
            }
            None => {
                let launch = Launch {
                    program: &self.config.program,
                    program_args: &self.config.program_args,
                    target: &self.config.target,
                    clock: &self.clock,
                    peers: lock(&self.network).peer_flag(i),
                };
                launch.command(&node.spec, &client_addr, &peer_addr)
            }
        };
        node::attach_log(&mut command, &node.spec.log)?;
        let log_from = node::log_len(&node.spec.log);
        drop(reservation);
        let mut child = self.spawner.spawn(command).await.with_context(|| {
            format!(
                "cannot start node {} with {} (is the program built and executable?)",
                node.spec.id,
                self.config.program.display()
            )
        })?;
        if self.config.file.is_some() {
            // Fissure's node binary writes its own; a target file's commands may read it.
            let pid = child.child().id();
            std::fs::write(&node.spec.pid_file, format!("{pid}\n"))
                .with_context(|| format!("writing {}", node.spec.pid_file.display()))?;
        }
        Ok((child, log_from))
    }

    /// Waits for node i to answer; if it lost its ports, moves it to fresh ones and retries.
    async fn settle(&self, i: usize, mut child: Owned, mut log_from: u64) -> anyhow::Result<()> {
        if self.config.file.is_some() {
            return self.settle_file(i, child, log_from).await;
        }
        let node = &self.nodes[i];
        for attempt in 1..=PORT_ATTEMPTS {
            let client_addr = lock(&node.proc).client_addr.clone();
            let outcome = node::wait_ready(
                &node.spec,
                child.child(),
                &client_addr,
                log_from,
                self.config.start_timeout,
            )
            .await;
            let why = match outcome {
                Ok(()) => {
                    let mut proc = lock(&node.proc);
                    proc.child = Some(child.into_inner());
                    proc.state = NodeState::Running;
                    return Ok(());
                }
                Err(NotReady::PortTaken(why)) if attempt < PORT_ATTEMPTS => why,
                Err(NotReady::PortTaken(why) | NotReady::Failed(why)) => {
                    let _ = process::kill_and_reap(child.child()).await;
                    bail!("{why}");
                }
            };
            tracing::warn!("{why}; retrying on fresh ports");
            process::kill_and_reap(child.child()).await?;
            let (client, client_addr) = node::reserve_port()?;
            let (peer, peer_addr) = node::reserve_port()?;
            lock(&self.network).move_node(i, &peer_addr, &client_addr);
            {
                let mut proc = lock(&node.proc);
                proc.client_addr = client_addr;
                proc.peer_addr = peer_addr;
            }
            (child, log_from) = self.spawn(i, Some((client, peer))).await?;
        }
        unreachable!("the last attempt returns")
    }

    /// The node's own client address and whether it runs, if it has a live process.
    fn running_addr(&self, node: &Node) -> Option<String> {
        let proc = lock(&node.proc);
        (proc.state == NodeState::Running && proc.child.is_some()).then(|| proc.client_addr.clone())
    }
}

#[async_trait::async_trait]
impl ClusterControl for LocalCluster {
    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.spec.id.clone()).collect()
    }

    async fn partition(&self, grudge: &Grudge) -> anyhow::Result<()> {
        lock(&self.network).partition(grudge)
    }

    async fn heal_partition(&self) -> anyhow::Result<()> {
        lock(&self.network).partition(&Grudge::default())
    }

    async fn degrade(&self, nodes: &[NodeId], quality: LinkQuality) -> anyhow::Result<()> {
        lock(&self.network).degrade(nodes, quality)
    }

    async fn restore_links(&self) -> anyhow::Result<()> {
        lock(&self.network).restore()
    }

    async fn kill(&self, id: &str) -> anyhow::Result<()> {
        let (i, node) = self.node(id)?;
        let _op = node.op.lock().await;
        if lock(&node.proc).child.is_some() {
            self.run_hook(i, "kill").await?;
        }
        let child = {
            let mut proc = lock(&node.proc);
            proc.state = NodeState::Killed;
            proc.child.take().map(Owned::new)
        };
        match child {
            Some(mut child) => process::kill_and_reap(child.child())
                .await
                .with_context(|| format!("killing {id}")),
            None => Ok(()),
        }
    }

    async fn start(&self, id: &str) -> anyhow::Result<()> {
        let (i, node) = self.node(id)?;
        let _op = node.op.lock().await;
        if self.closed.load(Ordering::SeqCst) {
            bail!("cannot start {id}: the cluster was shut down");
        }
        {
            let mut proc = lock(&node.proc);
            let exited = match proc.child.as_mut() {
                Some(child) => process::reap(child)?.is_some(),
                None => true,
            };
            if !exited {
                // Running already; a paused node is resumed.
                return signal_if(
                    &mut proc,
                    NodeState::Paused,
                    Signal::SIGCONT,
                    NodeState::Running,
                );
            }
            proc.child = None;
        }
        let (child, log_from) = self.spawn(i, None).await?;
        self.settle(i, child, log_from)
            .await
            .with_context(|| format!("restarting {id}"))
    }

    async fn pause(&self, id: &str) -> anyhow::Result<()> {
        let (i, node) = self.node(id)?;
        let _op = node.op.lock().await;
        if lock(&node.proc).state == NodeState::Running && self.run_hook(i, "pause").await? {
            lock(&node.proc).state = NodeState::Paused;
            return Ok(());
        }
        // Pausing a node that is not running is a no-op, as killing a killed one is.
        signal_if(
            &mut lock(&node.proc),
            NodeState::Running,
            Signal::SIGSTOP,
            NodeState::Paused,
        )
    }

    async fn resume(&self, id: &str) -> anyhow::Result<()> {
        let (i, node) = self.node(id)?;
        let _op = node.op.lock().await;
        if lock(&node.proc).state == NodeState::Paused && self.run_hook(i, "resume").await? {
            lock(&node.proc).state = NodeState::Running;
            return Ok(());
        }
        signal_if(
            &mut lock(&node.proc),
            NodeState::Paused,
            Signal::SIGCONT,
            NodeState::Running,
        )
    }

    async fn set_clock_offset(&self, id: &str, offset_ms: i64) -> anyhow::Result<()> {
        let (_, node) = self.node(id)?;
        self.clock.write(&node.spec.clock_file, offset_ms)
    }

    async fn primaries(&self) -> anyhow::Result<Vec<NodeId>> {
        if self.config.file.is_some() {
            return Ok(self.file_primaries().await);
        }
        let addrs = self.nodes.iter().filter_map(|n| self.running_addr(n));
        Ok(super::status::primaries_at(addrs.collect()).await)
    }

    fn node_states(&self) -> BTreeMap<NodeId, NodeState> {
        self.nodes
            .iter()
            .map(|node| {
                let mut proc = lock(&node.proc);
                // A node that died on its own is as good as killed.
                let died = proc
                    .child
                    .as_mut()
                    .is_some_and(|c| !matches!(process::reap(c), Ok(None)));
                if died {
                    tracing::warn!("node {} exited on its own", node.spec.id);
                    proc.child = None;
                    proc.state = NodeState::Killed;
                }
                (node.spec.id.clone(), proc.state)
            })
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(mut child) = lock(&node.proc).child.take() {
                process::kill_and_reap_blocking(&mut child);
            }
        }
        lock(&self.network).shutdown();
    }
}

/// Sends `signal` to the node's process and moves it to `to`, if it is in state `from`; a no-op
/// otherwise (pausing a paused node, resuming a running one).
fn signal_if(
    proc: &mut Proc,
    from: NodeState,
    signal: Signal,
    to: NodeState,
) -> anyhow::Result<()> {
    if let (true, Some(child)) = (proc.state == from, proc.child.as_ref()) {
        process::signal(child.id(), signal)?;
        proc.state = to;
    }
    Ok(())
}
