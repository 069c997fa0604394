//! The Vagrant layer of `--backend vagrant`: brings up N machines `n1..nN` on a private
//! network with Vagrant and says how to log in to each ([`HostSpec`]), for the SSH backend to
//! drive exactly like hosts a user lists. Nothing here talks SSH; it only runs `vagrant`.
//!
//! A cluster is a folder (default `<state root>/vagrant/<name>/`, or one the user names) with
//! the `Vagrantfile` (embedded in the binary, written when the folder has none), the shape
//! file `fissure-cluster.json` it reads ([`shape`]), the cluster's key pair, and Vagrant's own
//! `.vagrant/`. Everything is in the folder, so a plain `vagrant status` or `vagrant destroy -f`
//! there works without Fissure.
//!
//! - [`prepare`] turns a [`Request`] into a [`Shape`]: key pair, a free subnet
//!   ([`network`]), the box or the node image.
//! - [`up`] writes the shape, runs `vagrant up`, and returns the hosts; [`hosts`] reads them
//!   again (the forwarded SSH ports change whenever machines are recreated); [`down`] destroys
//!   everything, [`status`] tells each machine's state.
//! - Failures of `vagrant` are classified from its output with the fix ([`failure`]);
//!   [`doctor`] checks a provider up front.
//!
//! Providers: `docker` (containers from Fissure's node image, seconds to start), `libvirt` and
//! `virtualbox` (VMs from a Debian box). See docs/vagrant.md.

pub mod cluster;
pub mod command;
pub mod doctor;
pub mod failure;
pub mod network;
pub mod parse;
pub mod shape;

pub use doctor::{doctor, Check};
pub use parse::MachineStatus;
pub use shape::{Provider, Request, Shape, ShapeNode};

use crate::backend::docker::{engine, image};
use crate::backend::ssh::hosts::HostSpec;
use crate::backend::state;
use anyhow::{bail, Context as _};
use command::{vagrant, Context};
use std::path::{Path, PathBuf};

/// The label on the docker provider's containers and network: `fissure.vagrant=<cluster>`.
pub const LABEL: &str = "fissure.vagrant";

/// The folder of a cluster when the user names none: `<state root>/vagrant/<name>/`, outside
/// the store (it holds the private key).
pub fn default_dir(name: &str) -> PathBuf {
    state::root().join("vagrant").join(name)
}

/// Makes the folder ready and works out the cluster's shape: the folder (owner only), its
/// Vagrantfile if it has none, the key pair, the subnet, and the box or image (building the
/// node image when docker needs it and none is named). A folder whose machines exist keeps its
/// subnet and must be asked for the same provider, name and node count.
pub async fn prepare(dir: &Path, request: &Request) -> anyhow::Result<Shape> {
    state::check_name(&request.name)?;
    if !(1..=64).contains(&request.nodes) {
        bail!(
            "a Vagrant cluster has 1 to 64 nodes, {} were asked for",
            request.nodes
        );
    }
    if request.cpus == 0 || request.memory_mb < 128 {
        bail!("each machine needs at least 1 CPU and 128 MB of memory");
    }
    shape::create_dir(dir)?;
    shape::install_vagrantfile(dir)?;
    let existing = Shape::read(dir)?;
    let running = shape::machines_created(dir);
    let subnet = match &existing {
        Some(old) if running => {
            if old.name != request.name
                || old.provider != request.provider
                || old.nodes.len() != request.nodes
            {
                bail!(
                    "{} already has machines of cluster {} ({} {} nodes): take them down first \
                     (`vagrant destroy -f` there), or use another folder",
                    dir.display(),
                    old.name,
                    old.nodes.len(),
                    old.provider
                );
            }
            let net = old.subnet.trim_end_matches("/24");
            net.parse().with_context(|| {
                format!(
                    "the shape in {} has a bad subnet {:?}",
                    dir.display(),
                    old.subnet
                )
            })?
        }
        _ => network::choose(request.provider).await?,
    };
    let (private_key, public_key) = shape::ensure_key(dir, &request.name).await?;
    let nodes = (1..=request.nodes)
        .map(|i| {
            Ok(ShapeNode {
                id: format!("n{i}"),
                ip: network::node_address(subnet, i)?.to_string(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (image, vm_box) = match request.provider {
        Provider::Docker => {
            let image = match &request.machine {
                Some(image) => image.clone(),
                None => image::ensure().await?,
            };
            (Some(image), None)
        }
        _ => (
            None,
            Some(
                request
                    .machine
                    .clone()
                    .unwrap_or_else(|| shape::DEFAULT_BOX.to_string()),
            ),
        ),
    };
    Ok(Shape {
        version: shape::SHAPE_VERSION,
        name: request.name.clone(),
        provider: request.provider,
        image,
        vm_box,
        subnet: format!("{subnet}/24"),
        nodes,
        private_key,
        public_key,
        cpus: request.cpus,
        memory: request.memory_mb,
    })
}

fn context(shape: &Shape) -> Context<'_> {
    Context {
        provider: shape.provider,
        machine: shape.image.as_deref().or(shape.vm_box.as_deref()),
    }
}

/// Writes the shape into `dir` (and the Vagrantfile if it has none), brings every machine up
/// (side by side where the provider allows), and returns how to log in to each, in node order.
/// If this `up` made the first machines of the folder and fails, it destroys them again.
pub async fn up(dir: &Path, shape: &Shape) -> anyhow::Result<Vec<HostSpec>> {
    shape::create_dir(dir)?;
    shape::install_vagrantfile(dir)?;
    let fresh = !shape::machines_created(dir);
    shape.write(dir)?;
    let provider = shape.provider.name();
    let parallel = if shape.provider.parallel() {
        "--parallel"
    } else {
        "--no-parallel"
    };
    let args = ["up", "--provider", provider, parallel, "--no-tty"];
    tracing::info!(dir = %dir.display(), nodes = shape.nodes.len(), provider, "vagrant up");
    let result = match vagrant(dir, &args, context(shape)).await {
        Ok(_) => hosts(dir).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(hosts) => Ok(hosts),
        Err(e) if fresh => {
            let undone = match down(dir).await {
                Ok(_) => "the machines it made were destroyed again".to_string(),
                Err(down) => format!(
                    "destroying what it made failed too ({down:#}); run `vagrant destroy -f` in {}",
                    dir.display()
                ),
            };
            Err(e.context(format!(
                "bringing up the Vagrant cluster {} in {} ({undone})",
                shape.name,
                dir.display()
            )))
        }
        Err(e) => Err(e.context(format!(
            "bringing up the Vagrant cluster {} in {}",
            shape.name,
            dir.display()
        ))),
    }
}

/// How to log in to each machine of the cluster in `dir` now, from `vagrant ssh-config` (read
/// every time: forwarded ports change when machines are recreated). Peers are the shape's
/// private addresses.
pub async fn hosts(dir: &Path) -> anyhow::Result<Vec<HostSpec>> {
    let shape = read_shape(dir)?;
    let out = vagrant(dir, &["ssh-config", "--no-tty"], context(&shape)).await?;
    let entries = parse::ssh_config(&out.stdout)?;
    host_specs(&shape, &entries)
}

/// Pairs the shape's nodes with their `ssh-config` entries. Docker nodes log in with the
/// shape's key (Vagrant's entry names it too); VMs with Vagrant's own per-machine key, the
/// first of the entry's keys that exists.
fn host_specs(shape: &Shape, entries: &[parse::SshEntry]) -> anyhow::Result<Vec<HostSpec>> {
    shape
        .nodes
        .iter()
        .map(|node| {
            let entry = entries.iter().find(|e| e.host == node.id).ok_or_else(|| {
                anyhow::anyhow!(
                    "`vagrant ssh-config` does not list {}: is its Vagrantfile one that defines \
                     n1..n{}? (a folder's own edited Vagrantfile is kept as it is)",
                    node.id,
                    shape.nodes.len()
                )
            })?;
            let key = match shape.provider {
                Provider::Docker => shape.private_key.clone(),
                _ => entry
                    .identity_files
                    .iter()
                    .find(|k| k.is_file())
                    .or(entry.identity_files.first())
                    .cloned()
                    .unwrap_or_else(|| shape.private_key.clone()),
            };
            Ok(HostSpec {
                id: node.id.clone(),
                ssh_host: entry.hostname.clone(),
                ssh_port: entry.port,
                user: entry.user.clone(),
                key,
                peer: node.ip.clone(),
            })
        })
        .collect()
}

/// Each machine's state (`vagrant status --machine-readable`).
pub async fn status(dir: &Path) -> anyhow::Result<Vec<MachineStatus>> {
    let shape = read_shape(dir)?;
    // Not with --no-tty, which turns --machine-readable off.
    let out = vagrant(dir, &["status", "--machine-readable"], context(&shape)).await?;
    Ok(parse::status(&out.stdout))
}

/// Destroys every machine of the cluster in `dir` (`vagrant destroy -f`), and with the docker
/// provider also any container or network labelled with the cluster that a failed `up` left.
/// The folder stays (its Vagrantfile may be the user's); a second `down` finds nothing. False
/// if there was nothing to destroy.
pub async fn down(dir: &Path) -> anyhow::Result<bool> {
    let Some(shape) = Shape::read(dir)? else {
        if shape::machines_created(dir) {
            bail!(
                "{} has Vagrant machines but no {}: restore that file, or destroy the machines \
                 by hand (`vagrant global-status`)",
                dir.display(),
                shape::SHAPE_FILE
            );
        }
        return Ok(false);
    };
    let had_machines = shape::machines_created(dir);
    if had_machines {
        // One at a time for VMs: vagrant-libvirt's parallel destroy races loading its actions
        // (seen here); a few seconds slower, and certain.
        let parallel = if shape.provider == Provider::Docker {
            "--parallel"
        } else {
            "--no-parallel"
        };
        vagrant(
            dir,
            &["destroy", "-f", parallel, "--no-tty"],
            context(&shape),
        )
        .await
        .with_context(|| format!("taking down the Vagrant cluster {}", shape.name))?;
    }
    let swept = match shape.provider {
        Provider::Docker => sweep_docker(&shape.name).await?,
        _ => false,
    };
    Ok(had_machines || swept)
}

/// Removes containers and networks labelled `fissure.vagrant=<name>` that Vagrant no longer
/// knows (an `up` killed half-way). True if there were any.
async fn sweep_docker(name: &str) -> anyhow::Result<bool> {
    let containers = engine::containers_labelled(LABEL, name).await?;
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        engine::docker(&args).await?;
    }
    let filter = format!("label={LABEL}={name}");
    let networks = engine::docker(&["network", "ls", "-q", "--filter", &filter]).await?;
    for network in networks.lines() {
        engine::docker(&["network", "rm", network]).await?;
    }
    Ok(!containers.is_empty() || !networks.is_empty())
}

fn read_shape(dir: &Path) -> anyhow::Result<Shape> {
    Shape::read(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} holds no Fissure Vagrant cluster (no {}): bring one up first",
            dir.display(),
            shape::SHAPE_FILE
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(provider: Provider) -> Shape {
        Shape {
            version: shape::SHAPE_VERSION,
            name: "c1".into(),
            provider,
            image: Some("fissure-node:abc".into()),
            vm_box: None,
            subnet: "10.214.3.0/24".into(),
            nodes: vec![
                ShapeNode {
                    id: "n1".into(),
                    ip: "10.214.3.11".into(),
                },
                ShapeNode {
                    id: "n2".into(),
                    ip: "10.214.3.12".into(),
                },
            ],
            private_key: "/c/id_ed25519".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            cpus: 1,
            memory: 1024,
        }
    }

    const CONFIG: &str = "Host n2\n HostName 127.0.0.1\n User root\n Port 2201\n \
                          IdentityFile /c/id_ed25519\n\
                          Host n1\n HostName 127.0.0.1\n User root\n Port 2200\n \
                          IdentityFile /c/id_ed25519\n";

    #[test]
    fn hosts_follow_the_shapes_order_and_addresses() {
        let entries = parse::ssh_config(CONFIG).unwrap();
        let hosts = host_specs(&shape(Provider::Docker), &entries).unwrap();
        assert_eq!(
            hosts[0],
            HostSpec {
                id: "n1".into(),
                ssh_host: "127.0.0.1".into(),
                ssh_port: 2200,
                user: "root".into(),
                key: "/c/id_ed25519".into(),
                peer: "10.214.3.11".into(),
            }
        );
        assert_eq!(
            (hosts[1].ssh_port, hosts[1].peer.as_str()),
            (2201, "10.214.3.12")
        );
    }

    #[test]
    fn a_machine_missing_from_ssh_config_is_named() {
        let entries = parse::ssh_config(&CONFIG[..CONFIG.find("Host n1").unwrap()]).unwrap();
        let error = format!(
            "{:#}",
            host_specs(&shape(Provider::Docker), &entries).unwrap_err()
        );
        assert!(error.contains("does not list n1"), "{error}");
    }

    #[test]
    fn vms_log_in_with_vagrants_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("private_key");
        std::fs::write(&own, "k").unwrap();
        let config = format!(
            "Host n1\n HostName 192.168.121.5\n User vagrant\n Port 22\n \
             IdentityFile /nowhere/insecure\n IdentityFile \"{}\"\n\
             Host n2\n HostName 192.168.121.6\n User vagrant\n IdentityFile /only\n",
            own.display()
        );
        let entries = parse::ssh_config(&config).unwrap();
        let hosts = host_specs(&shape(Provider::Libvirt), &entries).unwrap();
        assert_eq!(hosts[0].key, own);
        assert_eq!(hosts[0].user, "vagrant");
        assert_eq!(hosts[1].key, PathBuf::from("/only"));
        assert_eq!(hosts[1].peer, "10.214.3.12");
    }

    #[tokio::test]
    async fn a_folder_without_a_cluster_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let error = format!("{:#}", hosts(dir.path()).await.unwrap_err());
        assert!(error.contains("no fissure-cluster.json"), "{error}");
        assert!(!down(dir.path()).await.unwrap());
    }

    #[test]
    fn the_default_folder_is_under_the_state_root() {
        assert!(default_dir("c1").ends_with("vagrant/c1"));
    }
}
