//! Faults on nodes reached over SSH (docker containers, VMs, hosts), done with each node's own
//! kernel tools (DESIGN.md §5):
//!
//! - partitions: iptables DROP rules against peers' addresses, in a chain of Fissure's own;
//! - loss: the iptables `statistic` match, both ways, sparing SSH;
//! - latency: tc netem where the kernel has it, else the node's link daemon
//!   ([`crate::link::daemon`]), which the target's peers and clients are routed through;
//! - kill / start / pause / resume: signals to the pid in the node's pid file, and a launch
//!   script on the node for restarts;
//! - clock: the node's libfaketime timestamp file, or, on machines that own their clock (VMs)
//!   and for targets libfaketime cannot reach (Go reads the clock through the vDSO), the
//!   machine's real clock ([`ClockMechanism::System`]).
//!
//! Every fault goes into the [`ledger::Ledger`] before it reaches a node, so
//! [`SshFaults::heal_everything`] (run by `fissure heal`) can undo it even after the controller
//! was SIGKILLed.

pub mod commands;
pub mod ledger;

use crate::control::{Grudge, LinkQuality, NodeId, NodeState};
use crate::link::daemon::{DirectedQuality, LinkFaults};
use crate::remote::{Fleet, Remote};
use anyhow::{bail, Context};
use ledger::{FaultKind, Ledger, Outstanding};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one fault command may take on a node.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// A node as its peers see it.
#[derive(Clone, Debug)]
pub struct SshNode {
    pub id: NodeId,
    /// The address peers reach it at (and that partitions drop).
    pub ip: String,
}

/// How latency is injected on this cluster, decided when it is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LatencyMechanism {
    /// tc netem on this network device of every node.
    Netem { device: String },
    /// The kernel has no netem: the target talks through the node's link daemon, steered by
    /// its faults file.
    LinkDaemon,
    /// Neither: latency faults are refused with an explanation.
    Unavailable { why: String },
}

impl LatencyMechanism {
    pub fn name(&self) -> &'static str {
        match self {
            LatencyMechanism::Netem { .. } => "netem",
            LatencyMechanism::LinkDaemon => "link-daemon",
            LatencyMechanism::Unavailable { .. } => "unavailable",
        }
    }
}

/// What [`SshFaults::heal_everything`] did.
#[derive(Debug, Default)]
pub struct HealReport {
    /// The faults the ledger said might still be in force.
    pub undone: Vec<Outstanding>,
    /// Nodes that could not be healed, with why.
    pub failures: Vec<String>,
}

/// Fault injection over SSH on a set of nodes.
/// How clock faults move a node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClockMechanism {
    /// The target's libfaketime timestamp file: only the target's clock moves.
    #[default]
    Faketime,
    /// The machine's real clock (`date -s`), set from the controller's clock plus the offset,
    /// and back to the controller's clock to reset. Only for machines that own their clock: a
    /// container or network namespace shares the host's.
    System,
}

impl ClockMechanism {
    pub fn name(self) -> &'static str {
        match self {
            ClockMechanism::Faketime => "libfaketime",
            ClockMechanism::System => "system",
        }
    }
}

pub struct SshFaults {
    fleet: Fleet,
    nodes: Vec<SshNode>,
    ledger: Ledger,
    latency: LatencyMechanism,
    clock: ClockMechanism,
    /// The latency of each degraded node (what the link daemons' files are computed from).
    degraded: Mutex<BTreeMap<NodeId, LinkQuality>>,
    /// Fault commands on their way hold a share; a heal holds all of it.
    in_flight: Arc<tokio::sync::RwLock<()>>,
}

impl SshFaults {
    pub fn new(
        fleet: Fleet,
        nodes: Vec<SshNode>,
        ledger: Ledger,
        latency: LatencyMechanism,
    ) -> SshFaults {
        SshFaults {
            fleet,
            nodes,
            ledger,
            latency,
            clock: ClockMechanism::Faketime,
            degraded: Mutex::new(BTreeMap::new()),
            in_flight: Arc::new(tokio::sync::RwLock::new(())),
        }
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn latency_mechanism(&self) -> &LatencyMechanism {
        &self.latency
    }

    /// Clock faults by `clock` from now on.
    pub fn with_clock(mut self, clock: ClockMechanism) -> SshFaults {
        self.clock = clock;
        self
    }

    pub fn clock_mechanism(&self) -> ClockMechanism {
        self.clock
    }

    /// The command that puts the node's clock `offset_ms` from the controller's (0 resets).
    fn clock_command(&self, offset_ms: i64) -> String {
        match self.clock {
            ClockMechanism::Faketime => {
                commands::write_file(commands::CLOCK_FILE, &commands::faketime_offset(offset_ms))
            }
            ClockMechanism::System => {
                commands::set_system_clock(commands::unix_ms_now() + offset_ms as i128)
            }
        }
    }

    fn remote(&self, node: &str) -> anyhow::Result<&Remote> {
        self.fleet.get(node)
    }

    fn ip(&self, node: &str) -> anyhow::Result<&str> {
        match self.nodes.iter().find(|n| n.id == node) {
            Some(n) => Ok(&n.ip),
            None => bail!("no node {node:?} in this cluster"),
        }
    }

    /// Runs `op` to completion in a task of its own, even if the caller stops waiting (a clock
    /// strobe is aborted when its fault ends), holding a share of `in_flight`: a heal takes all
    /// of it, so no fault command can land on a node after the heal that should undo it.
    async fn guarded<T: Send + 'static>(
        &self,
        op: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        let share = self.in_flight.clone().read_owned().await;
        tokio::spawn(async move {
            let out = op.await;
            drop(share);
            out
        })
        .await
        .context("a fault task failed")?
    }

    /// Runs `command` on `node`, guarded; its stdout.
    async fn run_on(&self, node: &str, command: String) -> anyhow::Result<String> {
        let remote = self.remote(node)?.clone();
        self.guarded(async move { remote.exec_ok(&command, COMMAND_TIMEOUT).await })
            .await
    }

    /// Runs one command per node, all at once, guarded; one error naming every node that
    /// failed.
    async fn on_each(&self, commands: Vec<(NodeId, String)>) -> anyhow::Result<()> {
        let mut remotes = Vec::new();
        for (node, command) in commands {
            remotes.push((self.remote(&node)?.clone(), command));
        }
        self.guarded(run_each(remotes)).await
    }

    /// Replaces the partition: afterwards each node drops exactly the packets of the peers its
    /// grudge names.
    pub async fn partition(&self, grudge: &Grudge) -> anyhow::Result<()> {
        let mut commands = Vec::new();
        let mut healed = Vec::new();
        let mut cut = Vec::new();
        for node in &self.nodes {
            let mut drop_from = Vec::new();
            if let Some(senders) = grudge.0.get(&node.id) {
                for sender in senders {
                    drop_from.push(self.ip(sender)?.to_string());
                }
            }
            if drop_from.is_empty() {
                healed.push(node.id.clone());
            } else {
                cut.push((node.id.clone(), json!(drop_from)));
            }
            commands.push((node.id.clone(), commands::set_partition(&drop_from)));
        }
        self.ledger.apply_all(FaultKind::Partition, cut)?;
        self.on_each(commands).await?;
        self.ledger.undo_all(FaultKind::Partition, &healed)
    }

    pub async fn heal_partition(&self) -> anyhow::Result<()> {
        self.partition(&Grudge::default()).await
    }

    /// Degrades every link into and out of `nodes`: loss by iptables, latency by netem or the
    /// link daemons.
    pub async fn degrade(&self, nodes: &[NodeId], quality: LinkQuality) -> anyhow::Result<()> {
        let wants_delay = !quality.latency.is_zero() || !quality.jitter.is_zero();
        if let (true, LatencyMechanism::Unavailable { why }) = (wants_delay, &self.latency) {
            bail!("cannot add latency on this cluster: {why}");
        }
        let mut commands = Vec::new();
        for node in nodes {
            self.ip(node)?;
        }
        let each =
            |detail: serde_json::Value| nodes.iter().map(move |n| (n.clone(), detail.clone()));
        self.ledger
            .apply_all(FaultKind::Loss, each(json!(quality.loss)).collect())?;
        if wants_delay {
            let detail = serde_json::to_value(quality)?;
            self.ledger
                .apply_all(FaultKind::Latency, each(detail).collect())?;
        }
        for node in nodes {
            commands.push((node.clone(), commands::set_loss(quality.loss)));
            if let LatencyMechanism::Netem { device } = &self.latency {
                let netem = commands::set_netem(device, wants_delay.then_some(quality));
                commands.last_mut().expect("just pushed").1 += &format!(" && {netem}");
            }
        }
        self.on_each(commands).await?;
        if self.latency == LatencyMechanism::LinkDaemon {
            {
                let mut degraded = self.degraded.lock().unwrap_or_else(|e| e.into_inner());
                for node in nodes {
                    degraded.insert(node.clone(), quality);
                }
            }
            self.write_link_faults().await?;
        }
        Ok(())
    }

    /// Restores full quality on every link of every node.
    pub async fn restore_links(&self) -> anyhow::Result<()> {
        let mut commands = Vec::new();
        for node in &self.nodes {
            let mut command = commands::set_loss(0.0);
            if let LatencyMechanism::Netem { device } = &self.latency {
                command += &format!(" && {}", commands::set_netem(device, None));
            }
            commands.push((node.id.clone(), command));
        }
        self.on_each(commands).await?;
        if self.latency == LatencyMechanism::LinkDaemon {
            self.degraded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            self.write_link_faults().await?;
        }
        let all: Vec<NodeId> = self.nodes.iter().map(|n| n.id.clone()).collect();
        self.ledger.undo_all(FaultKind::Loss, &all)?;
        self.ledger.undo_all(FaultKind::Latency, &all)
    }

    /// Rewrites every node's link faults file from the degraded set: a link is as slow as the
    /// slower of its two ends.
    async fn write_link_faults(&self) -> anyhow::Result<()> {
        let degraded = self
            .degraded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let quality_of = |node: &str| {
            degraded.get(node).map(|q| LinkQuality {
                // Loss is iptables' job; the daemon only delays.
                loss: 0.0,
                ..*q
            })
        };
        let mut commands = Vec::new();
        for node in &self.nodes {
            let mut faults = LinkFaults::default();
            let own = quality_of(&node.id);
            if let Some(q) = own {
                faults.0.insert("client".into(), both_ways(q));
            }
            for peer in &self.nodes {
                if peer.id == node.id {
                    continue;
                }
                let worse = match (own, quality_of(&peer.id)) {
                    (Some(a), Some(b)) if b.latency > a.latency => Some(b),
                    (Some(a), _) => Some(a),
                    (None, b) => b,
                };
                if let Some(q) = worse {
                    faults.0.insert(peer.id.clone(), both_ways(q));
                }
            }
            let write = commands::write_file(commands::LINK_FAULTS_FILE, &faults.to_json());
            commands.push((node.id.clone(), write));
        }
        self.on_each(commands).await
    }

    /// SIGKILLs the node's target and waits until it is gone.
    pub async fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.ledger.apply(FaultKind::Kill, node, json!(null))?;
        self.run_on(node, commands::kill_process())
            .await
            .with_context(|| format!("killing {node}"))?;
        Ok(())
    }

    /// Starts the node's target from its launch script, unless it runs (a paused one is
    /// resumed). Readiness is the caller's to wait for.
    pub async fn start(&self, node: &str) -> anyhow::Result<()> {
        self.run_on(node, commands::start_process())
            .await
            .with_context(|| format!("starting {node}"))?;
        self.ledger.undo(FaultKind::Kill, node)?;
        self.ledger.undo(FaultKind::Pause, node)
    }

    pub async fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.ledger.apply(FaultKind::Pause, node, json!(null))?;
        self.run_on(node, commands::signal_process("STOP"))
            .await
            .with_context(|| format!("pausing {node}"))?;
        Ok(())
    }

    pub async fn resume(&self, node: &str) -> anyhow::Result<()> {
        self.run_on(node, commands::signal_process("CONT"))
            .await
            .with_context(|| format!("resuming {node}"))?;
        self.ledger.undo(FaultKind::Pause, node)
    }

    /// Moves the node's wall clock `offset_ms` ahead (negative: behind); 0 resets it.
    pub async fn set_clock_offset(&self, node: &str, offset_ms: i64) -> anyhow::Result<()> {
        if offset_ms != 0 {
            self.ledger
                .apply(FaultKind::Clock, node, json!(offset_ms))?;
        }
        self.run_on(node, self.clock_command(offset_ms))
            .await
            .with_context(|| format!("setting {node}'s clock"))?;
        if offset_ms == 0 {
            self.ledger.undo(FaultKind::Clock, node)?;
        }
        Ok(())
    }

    /// What the node's target process is doing.
    pub async fn process_state(&self, node: &str) -> anyhow::Result<NodeState> {
        let out = self
            .remote(node)?
            .exec_ok(&commands::process_state(), COMMAND_TIMEOUT)
            .await?;
        Ok(match out.trim() {
            "running" => NodeState::Running,
            "paused" => NodeState::Paused,
            _ => NodeState::Killed,
        })
    }

    /// Undoes every fault on every node, whatever the ledger says: removes Fissure's chains,
    /// removes netem, clears link faults, resets clocks and resumes paused targets; then starts
    /// the targets the ledger says were killed, and checks that nothing is left. Waits for fault
    /// commands still on their way first. Tries every node even when one fails, and marks the
    /// ledger healed only when everything succeeded.
    pub async fn heal_everything(&self) -> anyhow::Result<HealReport> {
        let undone = self.ledger.outstanding()?;
        let mut steps = vec![
            commands::remove_chains(),
            commands::write_file(commands::CLOCK_FILE, &commands::faketime_offset(0)),
            commands::signal_process("CONT"),
        ];
        if self.clock == ClockMechanism::System {
            steps.push(self.clock_command(0));
        }
        match &self.latency {
            LatencyMechanism::Netem { device } => steps.push(commands::set_netem(device, None)),
            LatencyMechanism::LinkDaemon => steps.push(commands::write_file(
                commands::LINK_FAULTS_FILE,
                &LinkFaults::default().to_json(),
            )),
            LatencyMechanism::Unavailable { .. } => {}
        }
        // Every step runs; the command fails if any did.
        let sweep = format!(
            "rc=0; {}; exit $rc",
            steps
                .iter()
                .map(|step| format!("{{ {step}; }} || rc=1"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let mut report = HealReport {
            undone,
            failures: Vec::new(),
        };
        {
            let _all = self.in_flight.clone().write_owned().await;
            let commands = self
                .nodes
                .iter()
                .map(|n| (self.remote(&n.id), sweep.clone()));
            let commands: anyhow::Result<Vec<(Remote, String)>> = commands
                .map(|(remote, command)| Ok((remote?.clone(), command)))
                .collect();
            if let Err(e) = run_each(commands?).await {
                report.failures.push(format!("{e:#}"));
            }
        }
        self.degraded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let killed = report.undone.iter().filter(|o| o.kind == FaultKind::Kill);
        for node in killed.map(|o| o.node.clone()).collect::<Vec<_>>() {
            if let Err(e) = self.start(&node).await {
                report.failures.push(format!("{e:#}"));
            }
        }
        if report.failures.is_empty() {
            match self.leftovers().await {
                Ok(left) if left.is_empty() => self.ledger.healed()?,
                Ok(left) => report
                    .failures
                    .push(format!("still faulted after healing: {}", left.join("; "))),
                Err(e) => report.failures.push(format!("checking the heal: {e:#}")),
            }
        }
        Ok(report)
    }

    /// What is left of Fissure's faults on each node: Fissure chains, a paused target, a clock
    /// file off zero. Empty when the cluster is clean.
    pub async fn leftovers(&self) -> anyhow::Result<Vec<String>> {
        let mut probe = format!(
            "echo chains: $({} | tr '\\n' ' '); echo state: $({}); echo clock: $(cat {} 2>/dev/null)",
            commands::list_chains(),
            commands::process_state(),
            commands::CLOCK_FILE
        );
        match &self.latency {
            LatencyMechanism::Netem { device } => probe.push_str(&format!(
                "; echo netem: $(tc qdisc show dev {device} | grep -o netem)"
            )),
            LatencyMechanism::LinkDaemon => probe.push_str(&format!(
                "; echo links: $(cat {} 2>/dev/null)",
                commands::LINK_FAULTS_FILE
            )),
            LatencyMechanism::Unavailable { .. } => {}
        }
        let mut found = Vec::new();
        for (node, out) in self.fleet.exec_ok_all(&probe, COMMAND_TIMEOUT).await? {
            for line in out.lines() {
                let (what, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.trim();
                let left = match what {
                    "chains" => !value.is_empty(),
                    "state" => value == "paused",
                    "clock" => !value.is_empty() && value != "+0.000",
                    "netem" => !value.is_empty(),
                    "links" => !value.is_empty() && value != "{}",
                    _ => false,
                };
                if left {
                    found.push(format!("{node}: {what} {value}"));
                }
            }
        }
        Ok(found)
    }
}

/// Runs one command per node, all at once; one error naming every node that failed.
async fn run_each(commands: Vec<(Remote, String)>) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (remote, command) in commands {
        tasks.spawn(async move {
            let result = remote.exec_ok(&command, COMMAND_TIMEOUT).await;
            (remote.node().to_string(), result)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(_))) => {}
            Ok((node, Err(e))) => failures.push(format!("{node}: {e:#}")),
            Err(e) => failures.push(format!("a fault task failed: {e}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        failures.sort();
        bail!("{}", failures.join("; "))
    }
}

fn both_ways(q: LinkQuality) -> DirectedQuality {
    DirectedQuality {
        forward: q,
        backward: q,
    }
}
