//! Docker clusters: a bridge network with an explicit subnet and a container per node, each
//! reached only over SSH (`fissure cluster up|down|status --backend docker`).
//!
//! Containers get `NET_ADMIN` (iptables and tc inside their own network namespace) and nothing
//! more: never `SYS_TIME`, which would let a clock fault move the host's clock, and never
//! `--privileged`. Everything Fissure creates carries the label `fissure.cluster=<name>`, so
//! `down` finds it even when the state directory is gone.

use super::{engine, image};
use crate::backend::remote;
use crate::backend::state::{self, ClusterState, NodeRecord};
use crate::backend::subnets::{host_routes, overlaps};
use anyhow::{bail, Context};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The label on every container and network of a cluster.
pub const LABEL: &str = "fissure.cluster";
/// Where the `fissure` binary is mounted, read-only, in every node.
pub const BIN_MOUNT: &str = "/opt/fissure";
/// How long nodes may take from `docker run` to answering SSH.
const SSH_READY_LIMIT: Duration = Duration::from_secs(60);

/// The container of node `i` (1-based).
pub fn container_name(cluster: &str, i: usize) -> String {
    format!("{cluster}-n{i}")
}

pub fn network_name(cluster: &str) -> String {
    format!("{cluster}-net")
}

/// Timings of `up`, for the benchmark and the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpTimings {
    pub image: Duration,
    pub containers: Duration,
    pub ssh_ready: Duration,
}

/// Creates a cluster of `nodes` containers and waits until every one answers SSH. On any
/// failure, everything it created is removed again.
pub async fn up(
    name: &str,
    nodes: usize,
    ephemeral: bool,
) -> anyhow::Result<(ClusterState, UpTimings)> {
    up_with(name, nodes, ephemeral, &[]).await
}

/// [`up`] on the node image with a target's Debian packages added.
pub async fn up_with(
    name: &str,
    nodes: usize,
    ephemeral: bool,
    packages: &[String],
) -> anyhow::Result<(ClusterState, UpTimings)> {
    state::check_name(name)?;
    if !(1..=64).contains(&nodes) {
        bail!("--nodes must be between 1 and 64 for a docker cluster, got {nodes}");
    }
    if state::dir(name).join("cluster.json").exists() {
        bail!(
            "a cluster named {name:?} exists already: run on it with `fissure run --backend docker \
             --cluster {name}`, or remove it with `fissure cluster down {name}`"
        );
    }
    let mut timings = UpTimings::default();
    let started = Instant::now();
    let image = image::ensure_with(packages).await?;
    timings.image = started.elapsed();
    let mut cluster = ClusterState {
        name: name.to_string(),
        backend: "docker".into(),
        image,
        network: network_name(name),
        subnet: String::new(),
        nodes: Vec::new(),
        latency: String::new(),
        ephemeral,
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        vagrant_dir: None,
        own_clocks: false,
    };
    cluster.create_dir_and_key()?;
    let created = provision(&mut cluster, nodes, &mut timings).await;
    match created {
        Ok(()) => Ok((cluster, timings)),
        Err(e) => {
            if let Err(cleanup) = down(name).await {
                tracing::warn!("cleaning up after a failed `up`: {cleanup:#}");
            }
            Err(e.context(format!("bringing up docker cluster {name}")))
        }
    }
}

async fn provision(
    cluster: &mut ClusterState,
    nodes: usize,
    timings: &mut UpTimings,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let subnet = create_network(&cluster.name).await?;
    cluster.subnet = format!("{subnet}/24");
    let base = subnet.octets();
    cluster.nodes = (1..=nodes)
        .map(|i| NodeRecord {
            id: format!("n{i}"),
            container: container_name(&cluster.name, i),
            ip: Ipv4Addr::new(base[0], base[1], base[2], 10 + i as u8).to_string(),
            ssh: None,
        })
        .collect();
    // Saved before the containers start, so `down` and `heal` know them whatever happens next.
    cluster.save()?;
    install_binary(cluster)?;
    let public_key = cluster.public_key()?;
    let mut starts = tokio::task::JoinSet::new();
    for node in cluster.nodes.clone() {
        let args = run_args(cluster, &node, &public_key);
        starts.spawn(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            engine::docker(&args).await
        });
    }
    while let Some(started) = starts.join_next().await {
        started.context("a container start task failed")??;
    }
    timings.containers = started.elapsed();
    let ready = Instant::now();
    let fleet = remote::fleet(cluster)?;
    fleet.wait_ready(SSH_READY_LIMIT).await.with_context(|| {
        format!(
            "the nodes did not answer SSH within {SSH_READY_LIMIT:?}; see `docker logs {}`",
            container_name(&cluster.name, 1)
        )
    })?;
    timings.ssh_ready = ready.elapsed();
    cluster.latency = remote::probe_latency_mechanism(&fleet, None).await?;
    cluster.save()?;
    tracing::info!(
        cluster = %cluster.name,
        nodes,
        subnet = %cluster.subnet,
        latency = %cluster.latency,
        "docker cluster up"
    );
    Ok(())
}

fn run_args(cluster: &ClusterState, node: &NodeRecord, public_key: &str) -> Vec<String> {
    let i = node.id.trim_start_matches('n');
    vec![
        "run".into(),
        "-d".into(),
        // docker-init as PID 1 reaps the targets Fissure kills, so no zombie looks alive.
        "--init".into(),
        "--name".into(),
        node.container.clone(),
        "--hostname".into(),
        node.id.clone(),
        "--network".into(),
        cluster.network.clone(),
        "--ip".into(),
        node.ip.clone(),
        "--cap-add".into(),
        "NET_ADMIN".into(),
        "--label".into(),
        format!("{LABEL}={}", cluster.name),
        "--label".into(),
        format!("fissure.node=n{i}"),
        "-e".into(),
        format!("FISSURE_AUTHORIZED_KEY={public_key}"),
        "-v".into(),
        format!("{}:{BIN_MOUNT}:ro", cluster.bin_dir().display()),
        cluster.image.clone(),
    ]
}

/// Puts this very `fissure` binary into the cluster's bin directory (mounted read-only in
/// every node), atomically, so a node (re)started mid-run never sees half a file. Done for every
/// run, so a long-lived cluster always runs the controller's build.
///
/// A hard link where the filesystem allows it: a debug binary is tens of megabytes, and every
/// cluster holding its own copy filled small CI disks. Cargo and the linker replace a rebuilt
/// binary with a new file rather than writing into the old one, so the link keeps this build.
pub fn install_binary(cluster: &ClusterState) -> anyhow::Result<()> {
    let bin = cluster.bin_dir();
    std::fs::create_dir_all(&bin)?;
    let partial = bin.join(".fissure.partial");
    let _ = std::fs::remove_file(&partial);
    let linked = std::env::current_exe()
        .and_then(|exe| std::fs::hard_link(exe, &partial))
        .is_ok();
    if !linked {
        let source = if std::path::Path::new("/proc/self/exe").exists() {
            std::path::PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe()?
        };
        std::fs::copy(&source, &partial).with_context(|| {
            format!(
                "cannot copy the fissure binary into {} (is the disk full? `df -h` tells)",
                bin.display()
            )
        })?;
    }
    std::fs::rename(&partial, bin.join("fissure"))
        .with_context(|| format!("cannot put the fissure binary into {}", bin.display()))?;
    Ok(())
}

/// Creates the cluster's network on a free /24, retrying another when Docker says the pool
/// overlaps (another cluster took it meanwhile).
async fn create_network(name: &str) -> anyhow::Result<Ipv4Addr> {
    let used = engine::used_subnets().await?;
    let routes = host_routes().await;
    let mut last_error = None;
    let candidates = (0..=255u8)
        .map(|third| Ipv4Addr::new(10, 213, third, 0))
        .filter(|net| !used.iter().chain(&routes).any(|u| overlaps(u, *net)));
    for (tries, net) in candidates.enumerate() {
        if tries >= 8 {
            break;
        }
        let subnet = format!("{net}/24");
        let gateway = Ipv4Addr::new(net.octets()[0], net.octets()[1], net.octets()[2], 1);
        let created = engine::docker(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &subnet,
            "--gateway",
            &gateway.to_string(),
            "--label",
            &format!("{LABEL}={name}"),
            &network_name(name),
        ])
        .await;
        match created {
            Ok(_) => return Ok(net),
            Err(e) if format!("{e}").contains("overlap") => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("every subnet in 10.213.0.0/16 is in use"))
        .context("no free subnet for the cluster's network"))
}

/// Removes the cluster's containers, network and state directory. Finds them by label, so it
/// works on what a crashed `up` or a deleted state directory left behind. False if there was
/// nothing to remove.
pub async fn down(name: &str) -> anyhow::Result<bool> {
    state::check_name(name)?;
    let containers = engine::containers_labelled(LABEL, name).await?;
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        engine::docker(&args).await?;
    }
    let networks = engine::docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label={LABEL}={name}"),
    ])
    .await?;
    for network in networks.lines() {
        engine::docker(&["network", "rm", network]).await?;
    }
    let had_state = match std::fs::remove_dir_all(state::dir(name)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot remove {}", state::dir(name).display()))
        }
    };
    Ok(had_state || !containers.is_empty() || !networks.is_empty())
}

/// Each node's container state as Docker reports it ("running", "exited", "missing").
pub async fn container_states(cluster: &ClusterState) -> Vec<(String, String)> {
    let mut states = Vec::new();
    for node in &cluster.nodes {
        let state = engine::docker(&["inspect", "-f", "{{.State.Status}}", &node.container])
            .await
            .unwrap_or_else(|_| "missing".into());
        states.push((node.id.clone(), state));
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_cluster() {
        assert_eq!(container_name("c1", 3), "c1-n3");
        assert_eq!(network_name("c1"), "c1-net");
    }
}
