//! A target file's target on the local backend: its commands rendered with loopback ports (its
//! peers through the link proxies when it allows per-node addresses), readiness by port or
//! command, and its own kill, pause, resume, stop and primaries commands.

use super::{lock, node, process, LocalCluster, Owned};
use crate::backend::remote::file_target::{self, FileTarget, Ready};
use crate::target::template::{Context as TemplateContext, Placement};
use crate::target::PeerAddresses;
use anyhow::bail;
use nuclei::control::{NodeId, NodeState};
use std::time::Duration;

/// How long a target's own fault or primaries command may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl LocalCluster {
    /// Node i's commands from its target file: loopback, its current ports, and its peers as
    /// it must reach them (through its link proxies when the target allows per-node addresses).
    pub(super) fn render(
        &self,
        file: &FileTarget,
        i: usize,
    ) -> anyhow::Result<file_target::NodeCommands> {
        let placements: Vec<Placement> = (self.nodes.iter())
            .map(|n| {
                let proc = lock(&n.proc);
                Placement {
                    address: "127.0.0.1".into(),
                    bind: "127.0.0.1".into(),
                    client_port: port_of(&proc.client_addr),
                    peer_port: port_of(&proc.peer_addr),
                    dir: n.spec.dir.display().to_string(),
                }
            })
            .collect();
        let mut context = TemplateContext::for_node(
            &placements,
            i,
            &file.options,
            file.bug.as_deref(),
            &self.config.program.display().to_string(),
        );
        let spec = &self.nodes[i].spec;
        context.node.data_dir = spec.data_dir.display().to_string();
        context.node.log_file = spec.log.display().to_string();
        context.node.pid_file = spec.pid_file.display().to_string();
        if file.def.peer_addresses() == PeerAddresses::PerNode {
            let network = lock(&self.network);
            for peer in &mut context.peers {
                let proxy = network.peer_addr(i, peer.index - 1);
                peer.peer_port = port_of(&proxy);
            }
        }
        file.render_in(&context)
    }

    /// Waits until a target file's node i is ready (its port listens, or its ready command
    /// succeeds), failing early if it exits.
    pub(super) async fn settle_file(
        &self,
        i: usize,
        mut child: Owned,
        log_from: u64,
    ) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        let file = self.config.file.as_ref().expect("a target file");
        let ready = self.render(file, i)?.ready;
        let (client_addr, peer_addr) = {
            let proc = lock(&node.proc);
            (proc.client_addr.clone(), proc.peer_addr.clone())
        };
        let deadline = tokio::time::Instant::now() + self.config.start_timeout;
        loop {
            if let Ok(Some(status)) = child.child().try_wait() {
                bail!(
                    "node {} exited ({status}) while starting; its log ends:\n{}",
                    node.spec.id,
                    node::log_tail(&node.spec.log, log_from)
                );
            }
            let up = match &ready {
                Ready::Tcp(port) if *port == file.def.ports.peer => {
                    tokio::net::TcpStream::connect(&peer_addr).await.is_ok()
                }
                Ready::Tcp(_) => tokio::net::TcpStream::connect(&client_addr).await.is_ok(),
                Ready::Command(check) => {
                    let status = shell(check).status();
                    matches!(
                        tokio::time::timeout(HOOK_TIMEOUT, status).await,
                        Ok(Ok(s)) if s.success()
                    )
                }
            };
            if up {
                let mut proc = lock(&node.proc);
                proc.child = Some(child.into_inner());
                proc.state = NodeState::Running;
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = process::kill_and_reap(child.child()).await;
                bail!(
                    "node {} was not ready within {:?}; its log ends:\n{}",
                    node.spec.id,
                    self.config.start_timeout,
                    node::log_tail(&node.spec.log, log_from)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the target file's own `name` command (kill, pause, resume, stop, setup, wipe) for
    /// node i; false when it has none (for the fault commands, the caller signals the process).
    pub(super) async fn run_hook(&self, i: usize, name: &str) -> anyhow::Result<bool> {
        let Some(file) = &self.config.file else {
            return Ok(false);
        };
        let commands = self.render(file, i)?;
        let command = match name {
            "setup" => commands.setup,
            "wipe" => commands.wipe,
            _ => (commands.hooks.into_iter())
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c),
        };
        let Some(command) = command else {
            return Ok(false);
        };
        let command = &command;
        let id = &self.nodes[i].spec.id;
        let run = shell(command).current_dir(&self.nodes[i].spec.dir).output();
        let out = match tokio::time::timeout(HOOK_TIMEOUT, run).await {
            Ok(out) => out?,
            Err(_) => bail!("{id}: the target's {name} command took over {HOOK_TIMEOUT:?}"),
        };
        if !out.status.success() {
            bail!(
                "{id}: the target's {name} command failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(true)
    }

    /// Copies a target file's `log-files` that live outside the node's folder into it (those
    /// inside are in the run's store already). Returns what could not be copied.
    pub(super) fn collect_log_files(&self) -> Vec<String> {
        let Some(file) = &self.config.file else {
            return Vec::new();
        };
        let mut failures = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let Ok(commands) = self.render(file, i) else {
                continue;
            };
            for from in commands.log_files {
                let from = std::path::PathBuf::from(from);
                if from.starts_with(&node.spec.dir) {
                    continue;
                }
                let name = from
                    .file_name()
                    .map_or_else(|| "log".into(), |n| n.to_string_lossy().to_string());
                // Prefixed, so that it cannot overwrite node.log.
                if let Err(e) = std::fs::copy(&from, node.spec.dir.join(format!("file-{name}"))) {
                    failures.push(format!("{}'s {}: {e}", node.spec.id, from.display()));
                }
            }
        }
        failures
    }

    /// The nodes whose `primaries` command names them (run on every running node).
    pub(super) async fn file_primaries(&self) -> Vec<NodeId> {
        let Some(file) = &self.config.file else {
            return Vec::new();
        };
        let names: Vec<NodeId> = self.nodes.iter().map(|n| n.spec.id.clone()).collect();
        let mut primaries = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if lock(&node.proc).state != NodeState::Running {
                continue;
            }
            let Ok(commands) = self.render(file, i) else {
                continue;
            };
            let Some(command) = commands.primaries else {
                continue;
            };
            let run = shell(&command).output();
            if let Ok(Ok(out)) = tokio::time::timeout(HOOK_TIMEOUT, run).await {
                for name in
                    file_target::parse_primaries(&String::from_utf8_lossy(&out.stdout), &names)
                {
                    if !primaries.contains(&name) {
                        primaries.push(name);
                    }
                }
            }
        }
        primaries
    }
}

/// The port of a `host:port` address (0 when there is none).
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(0)
}

/// `sh -c command`, with no input, killed if the caller stops waiting for it.
fn shell(command: &str) -> tokio::process::Command {
    let mut sh = tokio::process::Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    sh
}
