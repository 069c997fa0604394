//! The ssh backend: hosts that exist already (a lab, cloud machines, Vagrant's VMs), given by
//! the user ([`hosts`]), made ready for Fissure ([`prepare`]), and then driven over SSH exactly
//! as docker nodes are ([`crate::backend::remote`]): the same targets, faults, ledger and heal.
//!
//! What Fissure keeps about such a cluster is its state directory (logins, pinned host keys,
//! the ledger); the private keys stay where the user keeps them. `down` stops everything
//! Fissure started on the hosts and removes its files, but never the hosts.

pub mod hosts;
pub mod prepare;

use crate::backend::remote::{self, RemoteCluster, Removal, RemoveFn, RunRequest};
use crate::backend::state::{self, ClusterState, NodeRecord, SshLogin};
use anyhow::{bail, Context};
pub use hosts::HostSpec;
use std::time::{Duration, Instant};

/// How long hosts may take to accept an SSH login.
const SSH_READY_LIMIT: Duration = Duration::from_secs(60);

/// How long `up` took: to the first SSH login on every host, then to ready hosts.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpTimings {
    pub ssh_ready: Duration,
    pub prepared: Duration,
}

/// Registers `hosts` as cluster `name` (`backend` is "ssh" or "vagrant") and makes every
/// host ready: root through sudo, the tools faults need, `packages`, Fissure's binary.
pub async fn up(
    name: &str,
    backend: &str,
    hosts: &[HostSpec],
    packages: &[String],
    ephemeral: bool,
) -> anyhow::Result<(ClusterState, UpTimings)> {
    state::check_name(name)?;
    if hosts.is_empty() || hosts.len() > 64 {
        bail!("a cluster needs 1 to 64 hosts, got {}", hosts.len());
    }
    if state::dir(name).join("cluster.json").exists() {
        bail!(
            "a cluster named {name:?} exists already: run on it with `fissure run --backend \
             {backend} --cluster {name}`, or forget it with `fissure cluster down {name}`"
        );
    }
    for host in hosts {
        if !host.key.is_file() {
            bail!(
                "{}: no SSH private key at {}: give one with --ssh-key",
                host.id,
                host.key.display()
            );
        }
    }
    let mut cluster = ClusterState {
        name: name.to_string(),
        backend: backend.to_string(),
        image: String::new(),
        network: String::new(),
        subnet: String::new(),
        nodes: hosts.iter().map(record).collect(),
        latency: String::new(),
        ephemeral,
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        vagrant_dir: None,
        own_clocks: false,
    };
    cluster.create_dir()?;
    // Saved first, so that `down` and `heal` know the hosts whatever happens next.
    cluster.save()?;
    match provision(&mut cluster, packages).await {
        Ok(ready) => Ok((cluster, ready)),
        Err(e) => {
            if let Err(cleanup) = down(name, false).await {
                tracing::warn!("cleaning up after a failed `up`: {cleanup:#}");
            }
            Err(e.context(format!("bringing up {backend} cluster {name}")))
        }
    }
}

pub fn record(host: &HostSpec) -> NodeRecord {
    NodeRecord {
        id: host.id.clone(),
        container: login_label(host),
        ip: host.peer.clone(),
        ssh: Some(SshLogin {
            host: host.ssh_host.clone(),
            port: host.ssh_port,
            user: host.user.clone(),
            key: host.key.clone(),
        }),
    }
}

/// `user@host:port`, as people write it.
fn login_label(host: &HostSpec) -> String {
    let address = match host.ssh_host.contains(':') {
        true => format!("[{}]", host.ssh_host),
        false => host.ssh_host.clone(),
    };
    format!("{}@{address}:{}", host.user, host.ssh_port)
}

async fn provision(cluster: &mut ClusterState, packages: &[String]) -> anyhow::Result<UpTimings> {
    let started = Instant::now();
    let fleet = remote::fleet(cluster)?;
    fleet.wait_ready(SSH_READY_LIMIT).await.with_context(|| {
        format!(
            "check each host's address, user and key; host keys are pinned on first use in {}",
            cluster.known_hosts().display()
        )
    })?;
    let ssh_ready = started.elapsed();
    prepare::prepare_hosts(&fleet, packages).await?;
    // Probed on the interface that carries peer traffic, not the default route: a host's
    // management network is often another one.
    let peer = cluster.nodes.get(1).unwrap_or(&cluster.nodes[0]).ip.clone();
    cluster.latency = remote::probe_latency_mechanism(&fleet, Some(&peer)).await?;
    cluster.save()?;
    let timings = UpTimings {
        ssh_ready,
        prepared: started.elapsed() - ssh_ready,
    };
    tracing::info!(cluster = %cluster.name, nodes = cluster.nodes.len(), ?timings, "hosts ready");
    Ok(timings)
}

/// Heals the faults the ledger knows, stops everything Fissure started on the hosts, removes
/// its files there, and forgets the cluster. Hosts that do not answer are named, and the state
/// is kept so that a later `down` can finish, unless `forget` (the hosts are gone for good).
/// Returns whether there was such a cluster.
pub async fn down(name: &str, forget: bool) -> anyhow::Result<bool> {
    state::check_name(name)?;
    let cluster = match ClusterState::load(name) {
        Ok(cluster) => cluster,
        Err(_) if !state::dir(name).exists() => return Ok(false),
        Err(e) => return Err(e),
    };
    let faults = remote::faults(&cluster)?;
    let fleet = faults.fleet();
    if let Err(e) = fleet.wait_ready(Duration::from_secs(10)).await {
        tracing::warn!("not every host of {name} answers: {e:#}");
    }
    let mut failures = Vec::new();
    match faults.heal_everything().await {
        Ok(report) => failures.extend(report.failures),
        Err(e) => failures.push(format!("healing: {e:#}")),
    }
    for (node, result) in fleet
        .exec_all(&prepare::clean_host(), Duration::from_secs(60))
        .await
    {
        match result {
            Ok(out) if out.code == 0 => {}
            Ok(out) => failures.push(format!("cleaning {node}: {}", out.stderr.trim())),
            Err(e) => failures.push(format!("cleaning {node}: {e:#}")),
        }
    }
    if !failures.is_empty() && !forget {
        bail!(
            "{} (the cluster's state is kept: run `fissure cluster down {name}` again once the \
             hosts answer, or forget them anyway with --force)",
            failures.join("; ")
        );
    }
    for failure in failures {
        tracing::warn!("{name}: {failure} (forgotten anyway)");
    }
    std::fs::remove_dir_all(state::dir(name))
        .with_context(|| format!("cannot remove {}", state::dir(name).display()))?;
    Ok(true)
}

/// Starts the target on the hosts: the named cluster, or one registered for this run, which
/// the run's shutdown cleans off the hosts again (also when the start fails).
pub async fn start_for_run(
    request: RunRequest,
    hosts: &[HostSpec],
) -> anyhow::Result<RemoteCluster> {
    let (state, ephemeral) = match &request.cluster {
        Some(name) => {
            let state = ClusterState::load(name)?;
            prepare::prepare_hosts(&remote::fleet(&state)?, &request.packages)
                .await
                .with_context(|| format!("cluster {name}"))?;
            (state, false)
        }
        None => {
            let name = format!("ssh-{}-{:04x}", std::process::id(), rand::random::<u16>());
            let (state, timings) = up(&name, "ssh", hosts, &request.packages, true).await?;
            tracing::info!(?timings, "hosts of {name} ready for this run");
            (state, true)
        }
    };
    let remove = ephemeral.then_some(remove_hosts as RemoveFn);
    let config = request.target_config(prepare::NODE_PROGRAM.into());
    RemoteCluster::start_for_run(state, config, remove).await
}

fn remove_hosts(name: String) -> Removal {
    Box::pin(async move { down(&name, false).await.map(drop) })
}
