//! A Vagrant cluster as Fissure keeps it: the machines (brought up by this module's parent),
//! then registered and prepared as hosts by the ssh backend, which drives them from there on.
//! The cluster's state records the machines' folder, so `cluster down`, `heal` and a later
//! run find them.

use super::{default_dir, Provider, Request};
use crate::backend::docker::image;
use crate::backend::remote::{RemoteCluster, Removal, RemoveFn, RunRequest};
use crate::backend::ssh;
use crate::backend::state::{self, ClusterState, SshLogin};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which machines: the provider, the Vagrant folder (default: one in the state directory),
/// the box or image (default: the provider's).
#[derive(Clone, Debug)]
pub struct Machines {
    pub provider: Provider,
    pub dir: Option<PathBuf>,
    pub vagrant_box: Option<String>,
}

/// How long `up` took: the machines, then the hosts made ready.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpTimings {
    pub machines: Duration,
    pub hosts: ssh::UpTimings,
}

/// Brings up `nodes` machines with `provider` in `dir` (default: one folder per cluster in
/// the state directory) and registers them as cluster `name`. On failure the machines made
/// are destroyed again.
pub async fn up(
    name: &str,
    nodes: usize,
    machines: &Machines,
    packages: &[String],
    ephemeral: bool,
) -> anyhow::Result<(ClusterState, UpTimings)> {
    let provider = machines.provider;
    state::check_name(name)?;
    if state::dir(name).join("cluster.json").exists() {
        bail!(
            "a cluster named {name:?} exists already: run on it with `fissure run --backend \
             vagrant --cluster {name}`, or remove it with `fissure cluster down {name}`"
        );
    }
    let dir = absolute(machines.dir.clone().unwrap_or_else(|| default_dir(name)))?;
    let mut request = Request::new(name, provider, nodes);
    if let Some(name) = &machines.vagrant_box {
        request.machine = Some(name.clone());
    }
    if provider == Provider::Docker && machines.vagrant_box.is_none() {
        // The target's packages are baked into the node image, as for the docker backend:
        // containers have no apt mirror to install from.
        request.machine = Some(image::ensure_with(packages).await?);
    }
    let started = Instant::now();
    let shape = super::prepare(&dir, &request).await?;
    let hosts = super::up(&dir, &shape).await?;
    let machines = started.elapsed();
    match ssh::up(name, "vagrant", &hosts, packages, ephemeral).await {
        Ok((mut state, hosts)) => {
            state.vagrant_dir = Some(dir);
            state.own_clocks = provider != Provider::Docker;
            state.save()?;
            Ok((state, UpTimings { machines, hosts }))
        }
        Err(e) => {
            if let Err(down) = super::down(&dir).await {
                tracing::warn!("destroying the machines after a failed up: {down:#}");
            }
            Err(e)
        }
    }
}

fn absolute(dir: PathBuf) -> anyhow::Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir);
    }
    Ok(std::env::current_dir()
        .context("cannot find the current directory")?
        .join(dir))
}

/// Destroys the machines and forgets the cluster. The folder goes too when it is Fissure's
/// own (in the state directory); a folder the user named keeps their Vagrantfile.
pub async fn down(name: &str) -> anyhow::Result<bool> {
    let state = match ClusterState::load(name) {
        Ok(state) => state,
        Err(_) if !state::dir(name).exists() => return Ok(false),
        Err(e) => return Err(e),
    };
    let dir = state
        .vagrant_dir
        .clone()
        .unwrap_or_else(|| default_dir(name));
    super::down(&dir).await?;
    if dir == default_dir(name) {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", dir.display());
            }
        }
    }
    std::fs::remove_dir_all(state::dir(name))
        .with_context(|| format!("cannot remove {}", state::dir(name).display()))?;
    Ok(true)
}

fn remove_machines(name: String) -> Removal {
    Box::pin(async move { down(&name).await.map(drop) })
}

/// Where a run's target goes on Vagrant machines: the named cluster's (their logins read
/// again: forwarded ports change when machines are recreated), or machines made for the run
/// and destroyed after it.
pub async fn start_for_run(
    machines: Machines,
    request: RunRequest,
) -> anyhow::Result<RemoteCluster> {
    match request.cluster.clone() {
        Some(name) => {
            let mut state = ClusterState::load(&name)?;
            let Some(dir) = state.vagrant_dir.clone() else {
                bail!("cluster {name} is not a vagrant cluster (it has no Vagrant folder)");
            };
            refresh_logins(&mut state, &dir).await?;
            ssh::start_for_run(request, &[]).await
        }
        None => {
            let name = format!(
                "vagrant-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            );
            let (state, timings) =
                up(&name, request.nodes, &machines, &request.packages, true).await?;
            tracing::info!(?timings, "Vagrant machines of {name} ready for this run");
            let config = request.target_config(ssh::prepare::NODE_PROGRAM.into());
            RemoteCluster::start_for_run(state, config, Some(remove_machines as RemoveFn)).await
        }
    }
}

/// Updates the cluster's logins from `vagrant ssh-config`.
async fn refresh_logins(state: &mut ClusterState, dir: &Path) -> anyhow::Result<()> {
    let hosts = super::hosts(dir).await?;
    for node in &mut state.nodes {
        if let Some(host) = hosts.iter().find(|h| h.id == node.id) {
            node.ssh = Some(SshLogin {
                host: host.ssh_host.clone(),
                port: host.ssh_port,
                user: host.user.clone(),
                key: host.key.clone(),
            });
        }
    }
    state.save()
}
