//! The ssh backend end to end, on hosts the test makes: containers from Fissure's node image
//! that the ssh backend treats as plain hosts (it knows nothing of Docker), one of them logging
//! in as a user who reaches root through passwordless sudo. A 3-node raft-kv run under
//! partitions, kills and clock faults is valid, the stale-read bug is found, the host's clock
//! never moves, and after a SIGKILLed controller `fissure heal` leaves nothing behind.
//!
//! Like the docker tests, these need a Docker daemon and root, are skipped without them unless
//! `FISSURE_REQUIRE_DOCKER=1`, and remove everything they started, even when they fail.

use harness::backend::state::ClusterState;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

#[path = "support/cli.rs"]
mod cli;
use cli::{fissure, fissure_command, state_root, text};

#[path = "support/docker.rs"]
mod docker_support;
use docker_support::docker_available;

/// Removes the containers behind [`Hosts`] when the test ends, however it ends.
struct Guard {
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = fissure(&["cluster", "down", &self.name]);
        let filter = format!("label=fissure.cluster={}", self.name);
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker rm -f $(docker ps -aq --filter {filter}) 2>/dev/null; \
                 docker network rm $(docker network ls -q --filter {filter}) 2>/dev/null"
            ))
            .output();
    }
}

/// Three "hosts": containers of a docker cluster, of which the ssh backend is told only the
/// addresses, users and key.
struct Hosts {
    guard: Guard,
    state: ClusterState,
}

impl Hosts {
    fn up(test: &str) -> Hosts {
        Hosts::up_with(test, &[])
    }

    /// Hosts with extra flags for the containers (`--target T`: its packages installed).
    fn up_with(test: &str, flags: &[&str]) -> Hosts {
        let guard = Guard {
            name: format!("sh{}-{test}", std::process::id()),
        };
        let mut up = vec![
            "cluster",
            "up",
            &guard.name,
            "--backend",
            "docker",
            "--nodes",
            "3",
        ];
        up.extend(flags);
        let out = fissure(&up);
        assert!(out.status.success(), "hosts up: {}", text(&out));
        state_root();
        let state = ClusterState::load(&guard.name).unwrap();
        let hosts = Hosts { guard, state };
        // n3 logs in as `tester`, who becomes root only through passwordless sudo.
        let (ok, said) = hosts.exec(
            "n3",
            "useradd -m -s /bin/sh -p '*' tester && mkdir -p /home/tester/.ssh && \
             cp /root/.ssh/authorized_keys /home/tester/.ssh/ && \
             chown -R tester /home/tester/.ssh && chmod 700 /home/tester/.ssh && \
             echo 'tester ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/tester && \
             chmod 440 /etc/sudoers.d/tester",
        );
        assert!(ok, "making the sudo user: {said}");
        hosts
    }

    /// `--hosts` for the ssh backend: root on n1 and n2, tester on n3.
    fn list(&self) -> String {
        let ip = |i: usize| self.state.nodes[i].ip.clone();
        format!("root@{},{},tester@{}:22", ip(0), ip(1), ip(2))
    }

    fn key(&self) -> PathBuf {
        self.state.key()
    }

    fn exec(&self, node: &str, script: &str) -> (bool, String) {
        let out = Command::new("docker")
            .args([
                "exec",
                &format!("{}-{node}", self.guard.name),
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap();
        let mut said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        said.push_str(String::from_utf8_lossy(&out.stderr).trim());
        (out.status.success(), said)
    }

    fn run(&self, store: &Path, args: &str) -> Output {
        let (list, key) = (self.list(), self.key());
        let mut full = vec![
            "run",
            "--backend",
            "ssh",
            "--hosts",
            &list,
            "--ssh-key",
            key.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ];
        full.extend(args.split_whitespace());
        fissure(&full)
    }

    /// Nothing of Fissure's on any host: no chain, no process, no files, no leftover transfer.
    fn assert_clean(&self) {
        for node in ["n1", "n2", "n3"] {
            let (_, rules) = self.exec(node, "iptables -S");
            assert!(!rules.contains("FISSURE"), "{node} keeps rules:\n{rules}");
            let (_, processes) = self.exec(node, "pgrep -af [/]var/lib/fissure || true");
            assert!(processes.is_empty(), "{node} runs: {processes}");
            let (gone, _) = self.exec(node, "test ! -e /var/lib/fissure");
            assert!(gone, "{node} keeps /var/lib/fissure");
            let (_, left) = self.exec(node, "ls /tmp | grep fissure || true");
            assert!(left.is_empty(), "{node} keeps {left} in /tmp");
        }
    }
}

fn results(store: &Path) -> serde_json::Value {
    let path = store.join("latest/results.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// How far the wall clock moved apart from a monotonic clock since `start`.
fn clock_drift(start: (SystemTime, Instant)) -> Duration {
    let wall = start.0.elapsed().unwrap_or_default();
    let mono = start.1.elapsed();
    wall.abs_diff(mono)
}

/// The ssh clusters registered for runs (their state directories), of the controller with
/// process id `pid` if given.
fn run_clusters(pid: Option<u32>) -> Vec<String> {
    let prefix = match pid {
        Some(pid) => format!("ssh-{pid}-"),
        None => "ssh-".into(),
    };
    std::fs::read_dir(state_root().join("clusters"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Must-show: a 3-node raft-kv over SSH (one host through sudo) is valid under partitions,
/// kills and clock faults, stale-read is found, the hosts are left clean after each run, and
/// the host's clock never moves.
#[test]
fn raft_kv_on_ssh_hosts_is_valid_and_stale_reads_are_found() {
    if !docker_available("raft_kv_on_ssh_hosts") {
        return;
    }
    let hosts = Hosts::up("raft");
    let clocks = (SystemTime::now(), Instant::now());
    let store = tempfile::tempdir().unwrap();
    let short = "--nemesis partition,kill,clock --nemesis-interval 1s --recovery 2s --rate 150";
    let out = hosts.run(store.path(), &format!("{short} --time-limit 8s --seed 5"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "correct raft-kv: {}",
        text(&out)
    );
    let valid = results(store.path());
    assert!(
        valid["run"]["faults_applied"].as_u64().unwrap() >= 3,
        "{valid}"
    );
    assert_eq!(valid["run"]["clock_mechanism"], "libfaketime");
    let log = store.path().join("latest/nodes/n3/node.log");
    assert!(
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
        "no node log from the sudo host at {log:?}"
    );
    hosts.assert_clean();

    let out = hosts.run(
        store.path(),
        &format!("{short} --time-limit 16s --bug stale-read --seed 1"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stale-read must be found: {}",
        text(&out)
    );
    hosts.assert_clean();
    let drift = clock_drift(clocks);
    assert!(
        drift < Duration::from_secs(1),
        "the host's clock moved by {drift:?}"
    );
}

/// Must-show: after `kill -9` of a controller with faults in force, `fissure heal` undoes
/// them and, the cluster having been made for that run, removes everything from the hosts.
#[test]
fn heal_after_a_killed_controller_leaves_nothing_on_the_hosts() {
    if !docker_available("heal_on_ssh_hosts") {
        return;
    }
    let hosts = Hosts::up("heal");
    let store = tempfile::tempdir().unwrap();
    let (list, key) = (hosts.list(), hosts.key());
    let mut controller = fissure_command(&[
        "run",
        "--backend",
        "ssh",
        "--hosts",
        &list,
        "--ssh-key",
        key.to_str().unwrap(),
        "--store",
        store.path().to_str().unwrap(),
        "--time-limit",
        "60s",
        "--nemesis",
        "partition,pause,clock",
        "--nemesis-interval",
        "400ms",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = controller.id();
    let in_force = loop {
        let open: Vec<_> = run_clusters(Some(pid))
            .iter()
            .flat_map(|name| {
                let ledger = state_root()
                    .join("clusters")
                    .join(name)
                    .join("ledger.jsonl");
                nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap_or_default()
            })
            .collect();
        let kinds: std::collections::BTreeSet<_> = open.iter().map(|o| o.kind.name()).collect();
        if kinds.contains("partition") && kinds.len() >= 2 {
            break kinds;
        }
        if Instant::now() > deadline || controller.try_wait().unwrap().is_some() {
            let _ = controller.kill();
            let out = controller.wait_with_output().unwrap();
            panic!("faults never overlapped ({open:?}): {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let cluster = run_clusters(Some(pid)).pop().unwrap();
    controller.kill().unwrap();
    controller.wait().unwrap();
    // What the ledger holds after the kill is what heal must undo (a fault seen a moment ago
    // may have ended in between).
    let ledger = state_root()
        .join("clusters")
        .join(&cluster)
        .join("ledger.jsonl");
    let open = nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap();
    let left: std::collections::BTreeSet<_> = open.iter().map(|o| o.kind.name()).collect();
    eprintln!("killed the controller with {left:?} in force (seen just before: {in_force:?})");
    assert!(!left.is_empty(), "no fault in force at the kill");

    let out = fissure(&["heal", &cluster]);
    assert!(out.status.success(), "heal: {}", text(&out));
    for kind in &left {
        assert!(
            text(&out).contains(&format!("undid {kind}")),
            "{kind}: {}",
            text(&out)
        );
    }
    hosts.assert_clean();
    assert!(run_clusters(Some(pid)).is_empty(), "{cluster} is left");
}

/// Must-show: a target file runs over SSH as on docker. etcd (Debian's package, already on
/// these hosts, so nothing is installed) is linearizable under partitions and kills, one
/// member reached through sudo.
#[test]
fn etcd_from_its_target_file_runs_on_ssh_hosts() {
    if !docker_available("etcd_on_ssh_hosts") {
        return;
    }
    let hosts = Hosts::up_with("etcd", &["--target", "etcd"]);
    let store = tempfile::tempdir().unwrap();
    let out = hosts.run(
        store.path(),
        "--target etcd --nemesis partition,kill --time-limit 10s --nemesis-interval 3s \
         --recovery 2s --seed 4",
    );
    assert_eq!(out.status.code(), Some(0), "correct etcd: {}", text(&out));
    let valid = results(store.path());
    assert!(
        valid["run"]["faults_applied"].as_u64().unwrap() >= 2,
        "{valid}"
    );
    hosts.assert_clean();
}
