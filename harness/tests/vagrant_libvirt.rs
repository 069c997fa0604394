//! The Vagrant layer on its libvirt provider, with real VMs: `backend::vagrant` brings up three
//! VMs from a locally built box, each answers SSH as Vagrant's user `vagrant` (root through
//! passwordless sudo), has its private address on eth1 and reaches its peers there, may change
//! its iptables, its tc qdiscs (netem, from the VM's own kernel) and its own clock (the host's
//! never moves), and `down` leaves no VM, volume or network behind. Then the whole CLI:
//! `fissure run --backend vagrant --provider libvirt --nodes 3 --nemesis partition,kill,clock
//! --time-limit 20s` on VMs it brings up for the run is valid and leaves nothing. A third test
//! times five VMs. The tests take turns.
//!
//! Slow (minutes: on a machine without working KVM the VMs run under qemu's software emulation),
//! so ignored by default:
//!
//! ```sh
//! sudo vagrant/start-libvirtd.sh             # where there is no systemd
//! cargo test -p harness --test vagrant_libvirt -- --ignored --nocapture
//! ```
//!
//! Needs root, vagrant with vagrant-libvirt, a libvirtd answering at `qemu:///system`
//! (`apt-get install -y vagrant vagrant-libvirt libvirt-daemon-system qemu-system-x86`), and the
//! box `$FISSURE_LIBVIRT_BOX` (default `fissure/bookworm`). A missing box is built with
//! `vagrant/make-libvirt-box.sh` (mmdebstrap, e2fsprogs, qemu-utils; about four minutes). When
//! something is missing the test says what and passes, unless `FISSURE_REQUIRE_VAGRANT=1`, which
//! makes that a failure. Whatever happens, a guard's Drop runs `vagrant destroy -f` in the test's
//! own folder, then removes any libvirt domain, volume or network named after the test's cluster
//! (and nothing else).

use harness::backend::ssh::hosts::HostSpec;
use harness::backend::vagrant::{self, Provider, Request};
use nuclei::remote::{HostKeys, Remote, RemoteOptions, SshTarget};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/vagrant.rs"]
mod vagrant_support;

#[path = "support/cli.rs"]
mod cli;
use cli::{fissure, fissure_command, state_root, text};

const DEFAULT_BOX: &str = "fissure/bookworm";
/// Memory per VM: enough for Debian and a node, modest enough for five on a small machine.
const MEMORY_MB: u32 = 640;

fn box_name() -> String {
    std::env::var("FISSURE_LIBVIRT_BOX").unwrap_or_else(|_| DEFAULT_BOX.to_string())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command and returns its stdout, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .env("VAGRANT_NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("no {program} command: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn virsh(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-q", "-c", "qemu:///system"];
    all.extend_from_slice(args);
    run("virsh", &all)
}

/// Prints why the test cannot run here and returns false, or fails under
/// `FISSURE_REQUIRE_VAGRANT=1`.
fn skip(test: &str, why: &str) -> bool {
    let required = std::env::var("FISSURE_REQUIRE_VAGRANT").is_ok_and(|v| v == "1");
    assert!(!required, "{test}: FISSURE_REQUIRE_VAGRANT=1 but {why}");
    eprintln!("skipped {test}: {why} (set FISSURE_REQUIRE_VAGRANT=1 to make this a failure)");
    false
}

/// Whether vagrant, vagrant-libvirt, libvirtd and the box are there; builds the box when only
/// it is missing and its script can run.
fn libvirt_ready(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        return skip(
            test,
            "not root (libvirt's system connection and the box build need it)",
        );
    }
    if let Err(why) = run("vagrant", &["--version"]) {
        return skip(test, &format!("{why}: apt-get install -y vagrant"));
    }
    match run("vagrant", &["plugin", "list"]) {
        Ok(list) if list.lines().any(|l| l.starts_with("vagrant-libvirt")) => {}
        Ok(_) => {
            return skip(
                test,
                "vagrant-libvirt is not in `vagrant plugin list`: apt-get install -y \
                 vagrant-libvirt",
            )
        }
        Err(why) => return skip(test, &why),
    }
    if let Err(why) = virsh(&["version"]) {
        return skip(
            test,
            &format!(
                "libvirtd does not answer ({why}): apt-get install -y libvirt-daemon-system \
                 qemu-system-x86, then start it (vagrant/start-libvirtd.sh where there is no \
                 systemd)"
            ),
        );
    }
    let wanted = box_name();
    if has_box(&wanted) {
        return true;
    }
    let missing: Vec<&str> = ["mmdebstrap", "mke2fs", "qemu-img"]
        .into_iter()
        .filter(|tool| run("sh", &["-c", &format!("command -v {tool}")]).is_err())
        .collect();
    if !missing.is_empty() {
        return skip(
            test,
            &format!(
                "the box {wanted} is missing and cannot be built here ({} missing: apt-get \
                 install -y mmdebstrap e2fsprogs qemu-utils)",
                missing.join(", ")
            ),
        );
    }
    eprintln!("{test}: building the box {wanted} with vagrant/make-libvirt-box.sh");
    let started = Instant::now();
    let script = repo_root().join("vagrant/make-libvirt-box.sh");
    let status = Command::new("sh")
        .arg(&script)
        .arg(&wanted)
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{} failed: {status}", script.display());
    eprintln!(
        "{test}: box built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        has_box(&wanted),
        "{wanted} is still not in `vagrant box list`"
    );
    true
}

fn has_box(name: &str) -> bool {
    run("vagrant", &["box", "list"]).is_ok_and(|list| {
        list.lines()
            .any(|l| l.split_whitespace().next() == Some(name) && l.contains("(libvirt"))
    })
}

/// The test's cluster: its own folder and a name no other run shares. Drop destroys its VMs
/// and removes whatever libvirt still holds under its name.
struct Cluster {
    name: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(test: &str) -> Cluster {
        let (name, dir) = vagrant_support::fresh_cluster("fl", test);
        Cluster { name, dir }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn leftovers(&self) -> Vec<String> {
        libvirt_leftovers(&self.name)
    }
}

/// libvirt's domains, volumes (default pool) and networks of clusters named `prefix…`.
fn libvirt_leftovers(prefix: &str) -> Vec<String> {
    let mine = |list: Result<String, String>, prefix: &str| -> Vec<String> {
        list.unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .filter(|n| n.starts_with(prefix))
            .collect()
    };
    let mut all = Vec::new();
    all.extend(
        mine(virsh(&["list", "--all", "--name"]), prefix)
            .into_iter()
            .map(|d| format!("domain {d}")),
    );
    all.extend(
        mine(virsh(&["vol-list", "default"]), prefix)
            .into_iter()
            .map(|v| format!("volume {v}")),
    );
    all.extend(
        mine(
            virsh(&["net-list", "--all", "--name"]),
            &format!("fissure-{prefix}"),
        )
        .into_iter()
        .map(|n| format!("network {n}")),
    );
    all
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("vagrant")
            .args(["destroy", "-f"])
            .current_dir(self.dir())
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        clean_libvirt(&self.name);
        let _ = run("vagrant", &["global-status", "--prune"]);
    }
}

/// Removes what a killed `up` or a failed destroy left of clusters named `prefix…`, and
/// nothing else.
fn clean_libvirt(prefix: &str) {
    for thing in libvirt_leftovers(prefix) {
        let (kind, name) = thing.split_once(' ').unwrap();
        eprintln!("cleaning up libvirt {kind} {name}");
        match kind {
            "domain" => {
                let _ = virsh(&["destroy", name]);
                let _ = virsh(&["undefine", name, "--remove-all-storage"]);
            }
            "volume" => {
                let _ = virsh(&["vol-delete", name, "--pool", "default"]);
            }
            _ => {
                let _ = virsh(&["net-destroy", name]);
                let _ = virsh(&["net-undefine", name]);
            }
        }
    }
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

/// Everything a node must allow for Fissure's faults, as root through the login's sudo.
async fn check_node(host: &HostSpec, remote: &Remote, peers: &[String]) {
    let limit = Duration::from_secs(60);
    let id = &host.id;
    remote
        .wait_ready(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{id}: no SSH: {e:#}"));
    let whoami = remote.exec_ok("id -un", limit).await.unwrap();
    assert_eq!(whoami.trim(), "root", "{id}: sudo does not give root");
    let hostname = remote.exec_ok("hostname", limit).await.unwrap();
    assert_eq!(hostname.trim(), id.as_str());
    let eth1 = remote
        .exec_ok("ip -4 -o addr show dev eth1", limit)
        .await
        .unwrap();
    assert!(
        eth1.contains(&format!("inet {}/24", host.peer)),
        "{id}: eth1 lacks the private address {}:\n{eth1}",
        host.peer
    );
    for peer in peers {
        // sshd listens on every address: a TCP connect over the private network proves reach.
        remote
            .exec_ok(
                &format!("timeout 10 bash -c 'exec 3<>/dev/tcp/{peer}/22'"),
                limit,
            )
            .await
            .unwrap_or_else(|e| panic!("{id}: cannot reach the peer {peer}: {e:#}"));
    }
    remote.exec_ok("iptables -L -n", limit).await.unwrap();
    let peer = &peers[0];
    remote
        .exec_ok(
            &format!(
                "iptables -A INPUT -s {peer} -j DROP && iptables -C INPUT -s {peer} -j DROP && \
                 iptables -D INPUT -s {peer} -j DROP"
            ),
            limit,
        )
        .await
        .unwrap_or_else(|e| panic!("{id}: iptables rules cannot be changed: {e:#}"));
    let qdisc = remote
        .exec_ok(
            "tc qdisc add dev eth1 root netem delay 10ms && tc qdisc show dev eth1 && \
             tc qdisc del dev eth1 root",
            limit,
        )
        .await
        .unwrap_or_else(|e| panic!("{id}: no netem: {e:#}"));
    assert!(qdisc.contains("netem"), "{id}: {qdisc}");
    // The VM's clock is its own: set it back 20 years, read it, put it right again.
    let host_year_before = year_now();
    let skewed = remote
        .exec_ok(
            "date -u -s '2004-02-29 12:00:00' >/dev/null && date -u +%Y",
            limit,
        )
        .await
        .unwrap_or_else(|e| panic!("{id}: date -s failed: {e:#}"));
    assert_eq!(skewed.trim(), "2004", "{id}: the clock did not move");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    remote
        .exec_ok(&format!("date -u -s @{now} >/dev/null"), limit)
        .await
        .unwrap();
    assert!(
        year_now() >= host_year_before && year_now() > 2004,
        "the host's clock moved"
    );
}

fn year_now() -> u64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    1970 + secs / 31_556_952
}

/// One test at a time: `--ignored` runs both, and eight VMs at once would starve a small
/// machine (and time nothing); the box is built once.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Brings up `nodes` libvirt VMs through the module, checks each over SSH, takes them down and
/// checks nothing is left; returns the time `up` took.
async fn up_check_down(test: &str, nodes: usize) -> Duration {
    let cluster = Cluster::new(test);
    let mut request = Request::new(&cluster.name, Provider::Libvirt, nodes);
    request.machine = Some(box_name());
    request.memory_mb = MEMORY_MB;
    let shape = vagrant::prepare(cluster.dir(), &request).await.unwrap();
    eprintln!(
        "{test}: cluster {} in {}, subnet {}",
        cluster.name,
        cluster.dir().display(),
        shape.subnet
    );
    let started = Instant::now();
    let hosts = vagrant::up(cluster.dir(), &shape)
        .await
        .unwrap_or_else(|e| panic!("{test}: up failed: {e:#}"));
    let up_took = started.elapsed();
    eprintln!(
        "{test}: vagrant up of {nodes} libvirt VMs took {:.1} s",
        up_took.as_secs_f64()
    );
    assert_eq!(hosts.len(), nodes, "{hosts:?}");
    for (i, host) in hosts.iter().enumerate() {
        assert_eq!(host.id, format!("n{}", i + 1));
        assert_eq!(host.user, "vagrant");
        assert_eq!(host.ssh_port, 22, "{host:?}");
        assert!(host.key.is_file(), "{} has no key file", host.key.display());
        assert_eq!(Some(host.peer.as_str()), shape.peer(&host.id));
    }
    let status = vagrant::status(cluster.dir()).await.unwrap();
    assert!(
        status
            .iter()
            .all(|m| m.running() && m.provider == "libvirt"),
        "{status:?}"
    );

    let known = tempfile::tempdir().unwrap();
    let host_keys = HostKeys::open(&known.path().join("known_hosts")).unwrap();
    let started = Instant::now();
    let mut checks = tokio::task::JoinSet::new();
    for host in hosts.clone() {
        let remote = remote(&host, host_keys.clone());
        let peers: Vec<String> = hosts
            .iter()
            .filter(|h| h.id != host.id)
            .map(|h| h.peer.clone())
            .collect();
        checks.spawn(async move { check_node(&host, &remote, &peers).await });
    }
    while let Some(checked) = checks.join_next().await {
        checked.unwrap();
    }
    eprintln!(
        "{test}: the SSH checks took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    assert!(
        vagrant::down(cluster.dir()).await.unwrap(),
        "down found machines"
    );
    eprintln!("{test}: down took {:.1} s", started.elapsed().as_secs_f64());
    assert_nothing_left(&cluster);
    assert!(
        !vagrant::down(cluster.dir()).await.unwrap(),
        "a second down finds nothing"
    );
    up_took
}

fn assert_nothing_left(cluster: &Cluster) {
    let left = cluster.leftovers();
    assert!(left.is_empty(), "libvirt still has {left:?}");
    let global = run("vagrant", &["global-status", "--prune"]).unwrap();
    let dir = cluster.dir().display().to_string();
    assert!(
        !global.contains(&dir),
        "global-status still lists {dir}:\n{global}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "boots real VMs (minutes): run with --ignored"]
async fn vagrant_libvirt_vms_come_up_allow_faults_and_leave_nothing() {
    let test = "vagrant_libvirt_vms_come_up_allow_faults_and_leave_nothing";
    let _turn = ONE_AT_A_TIME.lock().await;
    if !libvirt_ready(test) {
        return;
    }
    up_check_down("three", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "boots five real VMs, for timing: run with --ignored"]
async fn vagrant_libvirt_five_vms_timing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    if !libvirt_ready("vagrant_libvirt_five_vms_timing") {
        return;
    }
    up_check_down("five", 5).await;
}

/// The clusters of this test's state directory whose names start with `prefix`.
fn clusters_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir(state_root().join("clusters"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Destroys the VMs of every cluster named `<prefix>…`, however the test ends: through
/// Fissure, then Vagrant in each folder, then libvirt by name.
struct RunGuard(String);

impl Drop for RunGuard {
    fn drop(&mut self) {
        for name in clusters_named(&self.0) {
            let _ = fissure(&["cluster", "down", &name, "--force"]);
        }
        if let Ok(entries) = std::fs::read_dir(state_root().join("vagrant")) {
            for entry in entries.filter_map(Result::ok) {
                let dir = entry.path();
                let mine = entry.file_name().to_string_lossy().starts_with(&self.0);
                if mine && dir.join("Vagrantfile").exists() {
                    let _ = Command::new("vagrant")
                        .args(["destroy", "-f"])
                        .current_dir(&dir)
                        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
                        .stdin(Stdio::null())
                        .output();
                }
            }
        }
        clean_libvirt(&self.0);
    }
}

/// `fissure run --backend vagrant --provider libvirt` on three VMs it brings up for the run:
/// raft-kv under partitions, kills and clock faults is valid, and no VM, volume, network or
/// Vagrant machine is left afterwards.
#[test]
#[ignore = "boots real VMs (minutes): run with --ignored"]
fn a_libvirt_run_is_valid_and_leaves_nothing() {
    let test = "a_libvirt_run_is_valid_and_leaves_nothing";
    let _turn = ONE_AT_A_TIME.blocking_lock();
    if !libvirt_ready(test) {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = fissure_command(&[
        "run",
        "--backend",
        "vagrant",
        "--provider",
        "libvirt",
        "--nodes",
        "3",
        "--nemesis",
        "partition,kill,clock",
        "--time-limit",
        "20s",
        "--seed",
        "3",
        "--store",
        store.path().to_str().unwrap(),
    ])
    .env(vagrant::shape::BOX_ENV, box_name())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The run names its cluster after its pid: the guard destroys it should the test fail.
    let prefix = format!("vagrant-{}-", child.id());
    let _guard = RunGuard(prefix.clone());
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "{test}: the run took {:.0} s in all\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(0), "run: {}", text(&out));
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.path().join("latest/results.json")).unwrap(),
    )
    .unwrap();
    eprintln!("{test}: results {results}");
    assert!(
        results["run"]["faults_applied"].as_u64().unwrap_or(0) >= 3,
        "{results}"
    );
    let left = libvirt_leftovers(&prefix);
    assert!(left.is_empty(), "libvirt still has {left:?}");
    assert!(
        clusters_named(&prefix).is_empty(),
        "its cluster state is left"
    );
    let global = run("vagrant", &["global-status", "--prune"]).unwrap();
    let root = state_root().join("vagrant").join(&prefix);
    assert!(
        !global.contains(&*root.to_string_lossy()),
        "global-status still lists {}:\n{global}",
        root.display()
    );
}
