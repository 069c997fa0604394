//! The Vagrant layer end to end on its docker provider: `backend::vagrant` brings up nodes from
//! Fissure's node image, the hosts it returns log in over SSH (each node sees its private
//! address and may change its iptables), and `down` leaves no machine, container or network.
//!
//! These need vagrant, a Docker daemon and root (the node image is made by mmdebstrap when it is
//! not cached). Without them the test prints why it was skipped, unless
//! `FISSURE_REQUIRE_VAGRANT=1`, which makes that a failure. Whatever happens, a guard's Drop
//! runs `vagrant destroy -f` in the test's own folder and removes containers and networks
//! carrying the test's cluster label, and nothing else.
//!
//! `vagrant_five_nodes_timing` is ignored by default: run it with `--ignored` to time five.

use harness::backend::ssh::hosts::HostSpec;
use harness::backend::vagrant::{self, Provider, Request};
use nuclei::remote::{HostKeys, Remote, RemoteOptions, SshTarget};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/vagrant.rs"]
mod vagrant_support;
use vagrant_support::vagrant_available;

/// The test's cluster: its own folder and a name no other run shares, destroyed on Drop.
struct Cluster {
    name: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(test: &str) -> Cluster {
        let (name, dir) = vagrant_support::fresh_cluster("fv", test);
        Cluster { name, dir }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn labelled(&self, what: &str) -> Vec<String> {
        let filter = format!("label={}={}", vagrant::LABEL, self.name);
        let args: &[&str] = match what {
            "container" => &["ps", "-a", "-q", "--filter", &filter],
            _ => &["network", "ls", "-q", "--filter", &filter],
        };
        let out = Command::new("docker").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Only this folder's machines, then only this cluster's labelled leftovers.
        let _ = Command::new("vagrant")
            .args(["destroy", "-f"])
            .current_dir(self.dir())
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for container in self.labelled("container") {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &container])
                .output();
        }
        for network in self.labelled("network") {
            let _ = Command::new("docker")
                .args(["network", "rm", &network])
                .output();
        }
        let _ = Command::new("vagrant")
            .args(["global-status", "--prune"])
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

/// Brings up `nodes` docker-provider nodes, checks them over SSH, takes them down, checks that
/// nothing is left; returns the time `up` took.
async fn up_check_down(test: &str, nodes: usize) -> Duration {
    let cluster = Cluster::new(test);
    let request = Request::new(&cluster.name, Provider::Docker, nodes);
    let prepared = Instant::now();
    let shape = vagrant::prepare(cluster.dir(), &request).await.unwrap();
    eprintln!(
        "{test}: prepare (key, subnet {}, image {}) took {:.1} s",
        shape.subnet,
        shape.image.as_deref().unwrap_or("?"),
        prepared.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let hosts = vagrant::up(cluster.dir(), &shape)
        .await
        .unwrap_or_else(|e| panic!("{test}: up failed: {e:#}"));
    let took = started.elapsed();
    eprintln!(
        "{test}: vagrant up of {nodes} docker nodes took {:.1} s",
        took.as_secs_f64()
    );

    assert_eq!(hosts.len(), nodes, "{hosts:?}");
    let ports: HashSet<u16> = hosts.iter().map(|h| h.ssh_port).collect();
    assert_eq!(
        ports.len(),
        nodes,
        "each node its own forwarded port: {hosts:?}"
    );
    let peers: HashSet<&str> = hosts.iter().map(|h| h.peer.as_str()).collect();
    assert_eq!(peers.len(), nodes, "each node its own address: {hosts:?}");
    for (i, host) in hosts.iter().enumerate() {
        assert_eq!(host.id, format!("n{}", i + 1));
        assert_eq!(host.user, "root");
        assert!(host.key.is_file(), "{} has no key file", host.key.display());
        assert_eq!(Some(host.peer.as_str()), shape.peer(&host.id));
    }
    let again = vagrant::hosts(cluster.dir()).await.unwrap();
    assert_eq!(again, hosts, "ssh-config read twice gives the same hosts");
    let status = vagrant::status(cluster.dir()).await.unwrap();
    assert_eq!(status.len(), nodes, "{status:?}");
    assert!(
        status.iter().all(|m| m.running() && m.provider == "docker"),
        "{status:?}"
    );

    let known = tempfile::tempdir().unwrap();
    let host_keys = HostKeys::open(&known.path().join("known_hosts")).unwrap();
    let mut checks = tokio::task::JoinSet::new();
    for host in hosts.clone() {
        let remote = remote(&host, host_keys.clone());
        let other = hosts
            .iter()
            .find(|h| h.id != host.id)
            .map(|h| h.peer.clone())
            .unwrap_or_else(|| "10.9.9.9".into());
        checks.spawn(async move { check_node(&host, &remote, &other).await });
    }
    while let Some(checked) = checks.join_next().await {
        checked.unwrap();
    }

    assert!(
        vagrant::down(cluster.dir()).await.unwrap(),
        "down found machines"
    );
    let status = vagrant::status(cluster.dir()).await.unwrap();
    assert!(
        status.iter().all(|m| m.state == "not_created"),
        "{status:?}"
    );
    let global = Command::new("vagrant")
        .args(["global-status", "--prune"])
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    let global = String::from_utf8_lossy(&global.stdout);
    let dir = cluster.dir().display().to_string();
    assert!(
        !global.contains(&dir),
        "global-status still lists {dir}:\n{global}"
    );
    assert!(cluster.labelled("container").is_empty(), "containers left");
    assert!(cluster.labelled("network").is_empty(), "networks left");
    let network = format!("vagrant_network_{}", shape.subnet);
    let inspect = Command::new("docker")
        .args(["network", "inspect", &network])
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "{network} is still there");
    assert!(
        !vagrant::down(cluster.dir()).await.unwrap(),
        "a second down finds nothing"
    );
    took
}

fn remote(host: &HostSpec, host_keys: std::sync::Arc<HostKeys>) -> Remote {
    Remote::new(
        SshTarget {
            node: host.id.clone(),
            host: host.ssh_host.clone(),
            port: host.ssh_port,
            user: host.user.clone(),
            key: host.key.clone(),
        },
        host_keys,
        RemoteOptions::default(),
    )
}

/// The node answers SSH with the parsed login, has its private address, and may change its
/// iptables (what partitions need).
async fn check_node(host: &HostSpec, remote: &Remote, other_peer: &str) {
    let limit = Duration::from_secs(30);
    remote
        .wait_ready(limit)
        .await
        .unwrap_or_else(|e| panic!("{}: no SSH: {e:#}", host.id));
    let addresses = remote.exec_ok("ip -4 addr show", limit).await.unwrap();
    assert!(
        addresses.contains(&format!("inet {}/24", host.peer)),
        "{} lacks its private address {}:\n{addresses}",
        host.id,
        host.peer
    );
    let hostname = remote.exec_ok("hostname", limit).await.unwrap();
    assert_eq!(hostname.trim(), host.id);
    remote.exec_ok("iptables -L -n", limit).await.unwrap();
    let cut = format!(
        "iptables -A INPUT -s {other_peer} -j DROP && iptables -C INPUT -s {other_peer} -j DROP \
         && iptables -D INPUT -s {other_peer} -j DROP"
    );
    remote
        .exec_ok(&cut, limit)
        .await
        .unwrap_or_else(|e| panic!("{}: iptables rules cannot be changed: {e:#}", host.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vagrant_docker_nodes_come_up_answer_ssh_and_leave_nothing() {
    if !vagrant_available("vagrant_docker_nodes_come_up_answer_ssh_and_leave_nothing") {
        return;
    }
    up_check_down("three", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "timing only: run with --ignored"]
async fn vagrant_five_nodes_timing() {
    if !vagrant_available("vagrant_five_nodes_timing") {
        return;
    }
    up_check_down("five", 5).await;
}

#[tokio::test]
async fn a_missing_shape_file_is_explained_by_the_vagrantfile() {
    if !vagrant_available("a_missing_shape_file_is_explained_by_the_vagrantfile") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Vagrantfile"), vagrant::shape::VAGRANTFILE).unwrap();
    let out = Command::new("vagrant")
        .arg("status")
        .current_dir(dir.path())
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("fissure-cluster.json: the file is missing"),
        "{said}"
    );
    // Commands about no machine of the folder still work there without a shape.
    let boxes = Command::new("vagrant")
        .args(["box", "list"])
        .current_dir(dir.path())
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(
        boxes.status.success(),
        "{}",
        String::from_utf8_lossy(&boxes.stderr)
    );
    std::fs::write(dir.path().join("fissure-cluster.json"), "{\"version\": 1,").unwrap();
    let out = Command::new("vagrant")
        .arg("status")
        .current_dir(dir.path())
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not valid JSON"), "{said}");
}

#[tokio::test]
async fn doctor_passes_for_docker_and_names_fixes_for_what_is_missing() {
    if !vagrant_available("doctor_passes_for_docker_and_names_fixes_for_what_is_missing") {
        return;
    }
    let image = harness::backend::docker::image::ensure().await.unwrap();
    let checks = vagrant::doctor(Provider::Docker, Some(&image)).await;
    assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["vagrant", "docker daemon", "node image"]);
    let missing = vagrant::doctor(Provider::Docker, Some("fissure-node:000000000000")).await;
    let image_check = missing.last().unwrap();
    assert!(!image_check.ok, "{missing:#?}");
    assert!(image_check
        .fix
        .as_deref()
        .unwrap()
        .contains("fissure image ensure"));
    // Whatever this machine has, a failed check always says what to do.
    for provider in [Provider::Libvirt, Provider::Virtualbox] {
        for check in vagrant::doctor(provider, Some("no/such-box")).await {
            eprintln!("{provider}: {check:?}");
            assert!(check.ok || check.fix.is_some(), "{check:?}");
            if check.name == "box" {
                assert!(!check.ok, "{check:?}");
            }
        }
    }
}
