//! Nodes reached only over SSH (docker containers today; VMs and hosts use the same code): the
//! bundled target installed and started on each, faults through
//! [`nuclei::ssh_faults::SshFaults`], logs brought back into the run's directory.

pub mod file_target;
mod install;
pub mod setup;

use crate::backend::state::ClusterState;
use crate::backend::{status, RunCluster};
use anyhow::{bail, Context};
use file_target::{FileTarget, NodeCommands, Ready};
use nuclei::control::{ClusterControl, Grudge, LinkQuality, NodeId, NodeState};
use nuclei::remote::{Fleet, HostKeys, Remote, RemoteOptions, SshTarget};
use nuclei::ssh_faults::ledger::Ledger;
use nuclei::ssh_faults::{commands, ClockMechanism, LatencyMechanism, SshFaults, SshNode};
use setup::{Peer, CLIENT_PORT};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long setup and stop commands may take on a node.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The SSH handles of every node of `cluster`, with its key and pinned host keys.
pub fn fleet(cluster: &ClusterState) -> anyhow::Result<Fleet> {
    fleet_with(cluster, RemoteOptions::default())
}

/// [`fleet`] for a quick look (status, doctor): a node that does not answer at once is
/// reported, not retried for half a minute.
pub fn probe_fleet(cluster: &ClusterState) -> anyhow::Result<Fleet> {
    fleet_with(
        cluster,
        RemoteOptions {
            connect_timeout: Duration::from_secs(2),
            retries: 0,
            ..RemoteOptions::default()
        },
    )
}

fn fleet_with(cluster: &ClusterState, options: RemoteOptions) -> anyhow::Result<Fleet> {
    let host_keys = HostKeys::open(&cluster.known_hosts())?;
    let remotes = cluster
        .nodes
        .iter()
        .map(|node| {
            let target = match &node.ssh {
                Some(login) => SshTarget {
                    node: node.id.clone(),
                    host: login.host.clone(),
                    port: login.port,
                    user: login.user.clone(),
                    key: login.key.clone(),
                },
                None => SshTarget {
                    node: node.id.clone(),
                    host: node.ip.clone(),
                    port: 22,
                    user: "root".into(),
                    key: cluster.key(),
                },
            };
            Remote::new(target, host_keys.clone(), options.clone())
        })
        .collect();
    Ok(Fleet::new(remotes))
}

/// Whether the nodes' kernel has tc netem: "netem:<device>" if so, else "link-daemon". The
/// device is the one that carries traffic to `peer` (another node's address), else the
/// default route's.
pub async fn probe_latency_mechanism(fleet: &Fleet, peer: Option<&str>) -> anyhow::Result<String> {
    let first = fleet.remotes().first().context("a cluster without nodes")?;
    let route = match peer {
        Some(peer) => format!(
            "ip -4 route get {} 2>/dev/null | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1",
            commands::shell_quote(peer)
        ),
        None => "ip -4 route show default | awk '{print $5; exit}'".to_string(),
    };
    let probe = format!(
        "dev=$({route}); \
         if {}; then echo \"netem:${{dev:-eth0}}\"; else echo link-daemon; fi",
        commands::probe_netem()
    );
    let answer = first.exec_ok(&probe, SETUP_TIMEOUT).await?;
    Ok(answer.trim().to_string())
}

/// The latency mechanism recorded in the cluster's state.
pub fn latency_mechanism(cluster: &ClusterState) -> LatencyMechanism {
    match cluster.latency.strip_prefix("netem:") {
        Some(device) => LatencyMechanism::Netem {
            device: device.into(),
        },
        None if cluster.latency == "link-daemon" => LatencyMechanism::LinkDaemon,
        None => LatencyMechanism::Unavailable {
            why: format!("unknown latency mechanism {:?}", cluster.latency),
        },
    }
}

/// Fault control over the cluster's nodes, with its ledger.
pub fn faults(cluster: &ClusterState) -> anyhow::Result<SshFaults> {
    let nodes = (cluster.nodes.iter())
        .map(|n| SshNode {
            id: n.id.clone(),
            ip: n.ip.clone(),
        })
        .collect();
    let clock = match cluster.own_clocks {
        true => ClockMechanism::System,
        false => ClockMechanism::Faketime,
    };
    Ok(SshFaults::new(
        fleet(cluster)?,
        nodes,
        Ledger::open(&cluster.ledger())?,
        latency_mechanism(cluster),
    )
    .with_clock(clock))
}

/// What to run on the nodes.
#[derive(Clone, Debug)]
pub struct TargetConfig {
    pub launch: Launch,
    pub nodes: usize,
    /// Fissure's binary on the nodes.
    pub program: String,
    /// Where each node's logs are kept: `<logs_dir>/<id>/`.
    pub logs_dir: PathBuf,
    /// How long a node may take to answer after it is started.
    pub start_timeout: Duration,
    /// The run adds latency or loss, which a target file's target can only take from netem.
    pub link_faults: bool,
}

/// What a run asks of a backend whose nodes are reached over SSH (docker, ssh, vagrant).
pub struct RunRequest {
    /// An existing cluster (`fissure cluster up`), or `None` for one made for this run.
    pub cluster: Option<String>,
    pub launch: Launch,
    pub nodes: usize,
    /// Debian packages the target needs on its nodes.
    pub packages: Vec<String>,
    pub logs_dir: PathBuf,
    /// How long a node may take to come up.
    pub start_timeout: Duration,
    /// The run adds latency or loss.
    pub link_faults: bool,
}

/// How the target is started.
#[derive(Clone, Debug)]
pub enum Launch {
    /// A mode of Fissure's node binary, with each node's mode-specific flags.
    Bundled {
        mode: String,
        node_args: Vec<Vec<String>>,
    },
    /// A target file's own commands.
    File(Box<FileTarget>),
}

impl TargetConfig {
    fn name(&self) -> &str {
        match &self.launch {
            Launch::Bundled { mode, .. } => mode,
            Launch::File(file) => &file.def.name,
        }
    }
}

/// A target running on SSH nodes.
pub struct RemoteCluster {
    cluster: ClusterState,
    config: TargetConfig,
    faults: SshFaults,
    /// What each node is doing, as far as our own actions go.
    states: Mutex<BTreeMap<NodeId, NodeState>>,
    closed: AtomicBool,
    /// Called once at the end of [`RunCluster::shutdown`]: removes a cluster made for the run.
    teardown: tokio::sync::Mutex<Option<RemoveFn>>,
    /// A target file's commands, rendered for each node (empty for a bundled target).
    commands: Vec<NodeCommands>,
    /// This run's hold on the cluster, released when the run ends (or dies).
    _lock: crate::backend::state::ClusterLock,
}

/// What removes a cluster made for one run, by name: docker's containers, an ssh cluster's files
/// on its hosts, Vagrant's machines.
pub type RemoveFn = fn(String) -> Removal;

/// A removal on its way.
pub type Removal = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

impl RunRequest {
    /// What to run, for nodes that find Fissure's binary at `program`.
    pub fn target_config(self, program: String) -> TargetConfig {
        TargetConfig {
            launch: self.launch,
            nodes: self.nodes,
            program,
            logs_dir: self.logs_dir,
            start_timeout: self.start_timeout,
            link_faults: self.link_faults,
        }
    }
}

impl RemoteCluster {
    /// [`RemoteCluster::start`] on a cluster that, when `remove` is given, was made for this
    /// run: the run's shutdown removes it, and so does a failed start.
    pub async fn start_for_run(
        cluster: ClusterState,
        config: TargetConfig,
        remove: Option<RemoveFn>,
    ) -> anyhow::Result<RemoteCluster> {
        let name = cluster.name.clone();
        match RemoteCluster::start(cluster, config, remove).await {
            Ok(cluster) => Ok(cluster),
            Err(e) => {
                if let Some(remove) = remove {
                    if let Err(down) = remove(name.clone()).await {
                        tracing::warn!("removing cluster {name} after a failed start: {down:#}");
                    }
                }
                Err(e)
            }
        }
    }

    /// Prepares every node (stops leftovers, fresh data, link daemon if needed), heals
    /// whatever an earlier controller left, starts the target everywhere and waits until every
    /// node answers.
    pub async fn start(
        cluster: ClusterState,
        config: TargetConfig,
        teardown: Option<RemoveFn>,
    ) -> anyhow::Result<RemoteCluster> {
        if config.nodes != cluster.nodes.len() {
            bail!(
                "cluster {} has {} nodes but the run asks for {}: use --nodes {} or another cluster",
                cluster.name,
                cluster.nodes.len(),
                config.nodes,
                cluster.nodes.len()
            );
        }
        let lock = cluster.lock(&format!("fissure run of {}", config.name()))?;
        let faults = faults(&cluster)?;
        let commands = match &config.launch {
            Launch::Bundled { .. } => Vec::new(),
            Launch::File(file) => {
                if config.link_faults
                    && !matches!(faults.latency_mechanism(), LatencyMechanism::Netem { .. })
                {
                    bail!(
                        "{} cannot take latency or loss on cluster {}: its kernel has no netem, and                          Fissure's link proxies need a target whose peers can be pointed at them                          (bundled targets); leave latency and loss out of --nemesis",
                        file.def.name,
                        cluster.name
                    );
                }
                let ips: Vec<String> = cluster.nodes.iter().map(|n| n.ip.clone()).collect();
                (0..ips.len())
                    .map(|i| file.render(&ips, i, &config.program))
                    .collect::<anyhow::Result<_>>()?
            }
        };
        let states = cluster
            .nodes
            .iter()
            .map(|n| (n.id.clone(), NodeState::Killed))
            .collect();
        let remote = RemoteCluster {
            cluster,
            config,
            faults,
            states: Mutex::new(states),
            closed: AtomicBool::new(false),
            teardown: tokio::sync::Mutex::new(teardown),
            commands,
            _lock: lock,
        };
        let fleet = remote.faults.fleet();
        let name = &remote.cluster.name;
        fleet
            .wait_ready(Duration::from_secs(30))
            .await
            .with_context(|| {
                format!(
                    "cannot reach every node of cluster {name} over SSH: see `fissure cluster \
                     status {name}`; if its containers are gone, `fissure cluster down {name}` \
                     and up again"
                )
            })?;
        // An earlier target's own fault commands must not act on this run's nodes, not even in
        // the heal below (the earlier target's process is stopped right after it anyway).
        fleet
            .exec_ok_all(&setup::remove_hooks(), SETUP_TIMEOUT)
            .await
            .context("preparing the nodes")?;
        let report = remote.faults.heal_everything().await?;
        if !report.failures.is_empty() {
            bail!(
                "cluster {name} has faults left from an earlier run that could not be undone: \
                 {}; try `fissure heal {name}`",
                report.failures.join("; ")
            );
        }
        if !report.undone.is_empty() {
            tracing::warn!(
                "healed {} fault(s) an earlier run left on cluster {}",
                report.undone.len(),
                remote.cluster.name
            );
        }
        fleet
            .exec_ok_all(&setup::prepare_node(), SETUP_TIMEOUT)
            .await
            .context("preparing the nodes")?;
        match &remote.config.launch {
            Launch::Bundled { mode, node_args } => remote.install_bundled(mode, node_args).await?,
            Launch::File(file) => remote.install_file_target(file).await?,
        }
        for node in remote.nodes() {
            remote.faults.start(&node).await?;
        }
        for node in remote.nodes() {
            remote.wait_ready(&node).await?;
        }
        for (node, commands) in remote.nodes().iter().zip(&remote.commands) {
            if let Some(setup) = &commands.setup {
                let remote_node = remote.faults.fleet().get(node)?;
                remote_node
                    .exec_ok(setup, SETUP_TIMEOUT)
                    .await
                    .with_context(|| format!("the target's setup on {node}"))?;
            }
        }
        Ok(remote)
    }

    fn link_daemon(&self) -> bool {
        matches!(self.config.launch, Launch::Bundled { .. })
            && matches!(
                self.faults.latency_mechanism(),
                LatencyMechanism::LinkDaemon
            )
    }

    /// Where clients reach the target on each node.
    fn client_port(&self) -> u16 {
        match &self.config.launch {
            Launch::Bundled { .. } => CLIENT_PORT,
            Launch::File(file) => file.def.ports.client,
        }
    }

    fn node_index(&self, node: &str) -> anyhow::Result<usize> {
        (self.cluster.nodes.iter())
            .position(|n| n.id == node)
            .with_context(|| format!("no node {node:?} in cluster {}", self.cluster.name))
    }

    fn peers(&self) -> Vec<Peer> {
        (self.cluster.nodes.iter())
            .map(|n| Peer {
                id: n.id.clone(),
                ip: n.ip.clone(),
            })
            .collect()
    }

    pub fn faults(&self) -> &SshFaults {
        &self.faults
    }

    fn client_addr(&self, node: &str) -> anyhow::Result<String> {
        let n = &self.cluster.nodes[self.node_index(node)?];
        Ok(format!("{}:{}", n.ip, self.client_port()))
    }

    fn set_state(&self, node: &str, state: NodeState) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.insert(node.to_string(), state);
    }

    fn state(&self, node: &str) -> NodeState {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.get(node).copied().unwrap_or(NodeState::Killed)
    }

    /// Waits until `node` answers a status request, failing early (with its log's tail) if
    /// its process is gone.
    async fn wait_ready(&self, node: &str) -> anyhow::Result<()> {
        let addr = self.client_addr(node)?;
        let deadline = Instant::now() + self.config.start_timeout;
        let mut checks = 0u32;
        let ready = (self.commands.get(self.node_index(node)?)).map(|c| match &c.ready {
            Ready::Tcp(port) => file_target::port_listening(*port),
            Ready::Command(command) => command.clone(),
        });
        loop {
            match &ready {
                None => match status::status(&addr, status::STATUS_TIMEOUT).await {
                    Ok(answer) if answer.id == node => {
                        self.set_state(node, NodeState::Running);
                        return Ok(());
                    }
                    Ok(answer) => bail!("{addr} answers as {}, not {node}", answer.id),
                    Err(_) => {}
                },
                Some(check) => {
                    let remote = self.faults.fleet().get(node)?;
                    if remote
                        .exec(check, SETUP_TIMEOUT)
                        .await
                        .is_ok_and(|out| out.code == 0)
                    {
                        self.set_state(node, NodeState::Running);
                        return Ok(());
                    }
                }
            }
            checks += 1;
            let dead = checks.is_multiple_of(10)
                && self.faults.process_state(node).await? == NodeState::Killed;
            if dead || Instant::now() >= deadline {
                let tail = self
                    .faults
                    .fleet()
                    .get(node)?
                    .exec(&format!("tail -n 20 {}", setup::NODE_LOG), SETUP_TIMEOUT)
                    .await
                    .map(|o| o.stdout)
                    .unwrap_or_default();
                bail!(
                    "node {node} {} on {addr}; its log ends:\n{}",
                    if dead {
                        "exited while starting"
                    } else {
                        "did not answer in time"
                    },
                    tail.trim_end()
                );
            }
            // A check over SSH costs a round trip and a process on the node: poll less often.
            let pause = if ready.is_some() { 200 } else { 50 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// Brings every node's logs into `<logs_dir>/<id>/`.
    async fn collect_logs(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for remote in self.faults.fleet().remotes() {
            let dir = self.config.logs_dir.join(remote.node());
            if let Err(e) = std::fs::create_dir_all(&dir) {
                failures.push(format!("{}: {e}", dir.display()));
                continue;
            }
            for (from, to) in [
                (setup::NODE_LOG, "node.log"),
                (setup::LINKS_LOG, "links.log"),
            ] {
                if let Err(e) = remote.download(from, &dir.join(to)).await {
                    if to == "node.log" {
                        failures.push(format!("{}'s {to}: {e:#}", remote.node()));
                    }
                }
            }
            // A target file's own logs, under their file names.
            let index = self.node_index(remote.node()).ok();
            let files = index
                .and_then(|i| self.commands.get(i))
                .map(|c| &c.log_files);
            for (k, from) in files.into_iter().flatten().enumerate() {
                let name = std::path::Path::new(from)
                    .file_name()
                    .map_or_else(|| "log".into(), |n| n.to_string_lossy().to_string());
                // Numbered, so that it cannot overwrite node.log or another file of that name.
                let name = format!("file{}-{name}", k + 1);
                if let Err(e) = remote.download(from, &dir.join(&name)).await {
                    failures.push(format!("{}'s {from}: {e:#}", remote.node()));
                }
            }
        }
        failures
    }
}

#[async_trait::async_trait]
impl ClusterControl for RemoteCluster {
    fn nodes(&self) -> Vec<NodeId> {
        self.cluster.nodes.iter().map(|n| n.id.clone()).collect()
    }

    async fn partition(&self, grudge: &Grudge) -> anyhow::Result<()> {
        self.faults.partition(grudge).await
    }

    async fn heal_partition(&self) -> anyhow::Result<()> {
        self.faults.heal_partition().await
    }

    async fn degrade(&self, nodes: &[NodeId], quality: LinkQuality) -> anyhow::Result<()> {
        self.faults.degrade(nodes, quality).await
    }

    async fn restore_links(&self) -> anyhow::Result<()> {
        self.faults.restore_links().await
    }

    async fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.faults.kill(node).await?;
        self.set_state(node, NodeState::Killed);
        Ok(())
    }

    async fn start(&self, node: &str) -> anyhow::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            bail!("cannot start {node}: the cluster was shut down");
        }
        if self.state(node) == NodeState::Running {
            return Ok(());
        }
        self.faults.start(node).await?;
        self.wait_ready(node)
            .await
            .with_context(|| format!("restarting {node}"))
    }

    async fn pause(&self, node: &str) -> anyhow::Result<()> {
        if self.state(node) != NodeState::Running {
            return Ok(());
        }
        self.faults.pause(node).await?;
        self.set_state(node, NodeState::Paused);
        Ok(())
    }

    async fn resume(&self, node: &str) -> anyhow::Result<()> {
        if self.state(node) != NodeState::Paused {
            return Ok(());
        }
        self.faults.resume(node).await?;
        self.set_state(node, NodeState::Running);
        Ok(())
    }

    async fn set_clock_offset(&self, node: &str, offset_ms: i64) -> anyhow::Result<()> {
        self.faults.set_clock_offset(node, offset_ms).await
    }

    async fn primaries(&self) -> anyhow::Result<Vec<NodeId>> {
        let running = self
            .nodes()
            .into_iter()
            .filter(|n| self.state(n) == NodeState::Running);
        if self.commands.is_empty() {
            let addrs: anyhow::Result<Vec<String>> =
                running.map(|n| self.client_addr(&n)).collect();
            return Ok(status::primaries_at(addrs?).await);
        }
        // A target file's primaries command, run on every running node; none: nobody knows.
        let names = self.nodes();
        let mut primaries = Vec::new();
        for node in running {
            let Some(command) = self.commands[self.node_index(&node)?].primaries.as_ref() else {
                continue;
            };
            let out = self
                .faults
                .fleet()
                .get(&node)?
                .exec(command, file_target::PRIMARIES_TIMEOUT)
                .await;
            if let Ok(out) = out {
                for name in file_target::parse_primaries(&out.stdout, &names) {
                    if !primaries.contains(&name) {
                        primaries.push(name);
                    }
                }
            }
        }
        Ok(primaries)
    }

    fn node_states(&self) -> BTreeMap<NodeId, NodeState> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One sweep over every node (chains, netem, link faults, clocks, paused targets), then
    /// every target that is not running is started again.
    async fn heal_all(&self) -> anyhow::Result<()> {
        let report = self.faults.heal_everything().await?;
        let mut failures = report.failures;
        for node in self.nodes() {
            if self.state(&node) == NodeState::Paused {
                self.set_state(&node, NodeState::Running);
            }
            if !self.closed.load(Ordering::SeqCst) {
                if let Err(e) = ClusterControl::start(self, &node).await {
                    failures.push(format!("{e:#}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("heal incomplete: {}", failures.join("; "))
        }
    }
}

#[async_trait::async_trait]
impl RunCluster for RemoteCluster {
    fn client_addrs(&self) -> Vec<(NodeId, String)> {
        let port = self.client_port();
        (self.cluster.nodes.iter())
            .map(|n| (n.id.clone(), format!("{}:{port}", n.ip)))
            .collect()
    }

    fn clock_mechanism(&self) -> &'static str {
        self.faults.clock_mechanism().name()
    }

    async fn shutdown(&self) -> anyhow::Result<()> {
        let mut teardown = self.teardown.lock().await;
        let first = !self.closed.swap(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        if first {
            match self.faults.heal_everything().await {
                Ok(report) if report.failures.is_empty() => {}
                Ok(report) => failures.push(format!(
                    "healing: {} (run `fissure heal {}`)",
                    report.failures.join("; "),
                    self.cluster.name
                )),
                Err(e) => failures.push(format!("healing: {e:#}")),
            }
            let stop_hook = commands::hook("stop");
            let stop = format!(
                "if [ -f {stop_hook} ]; then sh {stop_hook}; fi; {}; {}",
                setup::stop_process(commands::PID_FILE, 30),
                setup::stop_process(setup::LINKS_PID, 10)
            );
            for (node, result) in self.faults.fleet().exec_all(&stop, SETUP_TIMEOUT).await {
                match result {
                    Ok(_) => self.set_state(&node, NodeState::Killed),
                    Err(e) => failures.push(format!("stopping {node}: {e:#}")),
                }
            }
            failures.extend(self.collect_logs().await);
        }
        if let Some(remove) = teardown.take() {
            if let Err(e) = remove(self.cluster.name.clone()).await {
                failures.push(format!(
                    "removing cluster {}: {e:#} (run `fissure cluster down {}`)",
                    self.cluster.name, self.cluster.name
                ));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("{}", failures.join("; "))
        }
    }

    fn control(self: Arc<Self>) -> Arc<dyn ClusterControl> {
        self
    }
}
