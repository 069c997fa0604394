//! `--backend vagrant` end to end through the CLI, on Vagrant's docker provider (Fissure's node
//! image; libvirt VMs are `vagrant_libvirt.rs`, ignored by default): `cluster up`, `status`, a
//! 3-node raft-kv run under partitions, kills and clock faults that is valid, `heal` after a
//! SIGKILLed controller, `cluster down`, and a run on machines made for it; afterwards Vagrant
//! knows no machine of the test and no container of it is left.
//!
//! Needs vagrant, Docker and root; skipped without them unless `FISSURE_REQUIRE_VAGRANT=1`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cli.rs"]
mod cli;
use cli::{fissure, fissure_command, state_root, text};

#[path = "support/vagrant.rs"]
mod vagrant_support;
use vagrant_support::vagrant_available;

/// The containers Vagrant's docker provider made for cluster `name`.
fn containers(name: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=fissure.vagrant={name}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Every Vagrant machine whose folder is that of a cluster named `<prefix>…` of this test.
fn vagrant_machines(prefix: &str) -> Vec<String> {
    let out = Command::new("vagrant")
        .args(["global-status", "--prune"])
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    let root = state_root()
        .join("vagrant")
        .join(prefix)
        .to_string_lossy()
        .to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains(&root))
        .map(String::from)
        .collect()
}

/// Destroys whatever the test left, however it ends.
struct Guard {
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = fissure(&["cluster", "down", &self.name, "--force"]);
        let dir = state_root().join("vagrant").join(&self.name);
        if dir.join("Vagrantfile").exists() {
            let _ = Command::new("vagrant")
                .args(["destroy", "-f"])
                .current_dir(&dir)
                .env("VAGRANT_CHECKPOINT_DISABLE", "1")
                .output();
        }
        let ids = containers(&self.name);
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
    }
}

fn results(store: &std::path::Path) -> serde_json::Value {
    let path = store.join("latest/results.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Must-show: `cluster up/status/down` and `heal` on Vagrant machines, a valid run under
/// partitions, kills and clock faults, and nothing left afterwards.
#[test]
fn a_vagrant_cluster_runs_heals_and_goes_away() {
    if !vagrant_available("a_vagrant_cluster_runs_heals_and_goes_away") {
        return;
    }
    let guard = Guard {
        name: format!("vg{}", std::process::id()),
    };
    let name = guard.name.as_str();
    let out = fissure(&[
        "cluster",
        "up",
        name,
        "--backend",
        "vagrant",
        "--nodes",
        "3",
    ]);
    assert!(out.status.success(), "cluster up: {}", text(&out));
    assert_eq!(containers(name).len(), 3, "{}", text(&out));
    let status = fissure(&["cluster", "status", name]);
    assert_eq!(
        text(&status).matches("ssh ok").count(),
        3,
        "{}",
        text(&status)
    );

    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let out = fissure(&[
        "run",
        "--backend",
        "vagrant",
        "--cluster",
        name,
        "--nemesis",
        "partition,kill,clock",
        "--nemesis-interval",
        "1s",
        "--time-limit",
        "8s",
        "--recovery",
        "2s",
        "--seed",
        "2",
        "--store",
        store_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "run: {}", text(&out));
    let valid = results(store.path());
    assert!(
        valid["run"]["faults_applied"].as_u64().unwrap() >= 3,
        "{valid}"
    );
    assert_eq!(valid["run"]["clock_mechanism"], "libfaketime");

    // A controller SIGKILLed with faults in force, then `heal`.
    let mut controller = fissure_command(&[
        "run",
        "--backend",
        "vagrant",
        "--cluster",
        name,
        "--nemesis",
        "partition,pause",
        "--nemesis-interval",
        "400ms",
        "--time-limit",
        "60s",
        "--store",
        store_arg,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let ledger = state_root()
        .join("clusters")
        .join(name)
        .join("ledger.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap_or_default();
        if open.iter().any(|o| o.kind.name() == "partition") {
            break;
        }
        assert!(Instant::now() < deadline, "no partition in force: {open:?}");
        assert!(
            controller.try_wait().unwrap().is_none(),
            "the run ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    controller.kill().unwrap();
    controller.wait().unwrap();
    let open = nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap();
    assert!(!open.is_empty(), "no fault in force at the kill");
    let out = fissure(&["heal", name]);
    assert!(out.status.success(), "heal: {}", text(&out));
    for fault in &open {
        let undid = format!("undid {} on {}", fault.kind.name(), fault.node);
        assert!(text(&out).contains(&undid), "{undid}: {}", text(&out));
    }
    for id in containers(name) {
        let rules = Command::new("docker")
            .args(["exec", &id, "iptables", "-S"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout).to_string();
        assert!(!rules.contains("FISSURE"), "{id} keeps rules:\n{rules}");
    }

    let out = fissure(&["cluster", "down", name]);
    assert!(out.status.success(), "down: {}", text(&out));
    assert!(containers(name).is_empty(), "containers left");
    let left = vagrant_machines(name);
    assert!(left.is_empty(), "left: {left:?}");
    assert!(!state_root().join("clusters").join(name).exists());
}

/// A run given no cluster brings machines up for itself and destroys them after.
#[test]
fn a_run_on_machines_made_for_it_leaves_none() {
    if !vagrant_available("a_run_on_machines_made_for_it_leaves_none") {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let child = fissure_command(&[
        "run",
        "--backend",
        "vagrant",
        "--nodes",
        "3",
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "1s",
        "--time-limit",
        "5s",
        "--recovery",
        "1s",
        "--store",
        store.path().to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Its cluster is named after its pid: the guard destroys it should the test fail.
    let prefix = format!("vagrant-{}-", child.id());
    let _guard = PrefixGuard(prefix.clone());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "run: {}", text(&out));
    let left = vagrant_machines(&prefix);
    assert!(left.is_empty(), "left: {left:?}");
    assert!(
        clusters_named(&prefix).is_empty(),
        "its cluster state is left"
    );
}

/// The clusters whose names start with `prefix`.
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

/// Destroys every cluster named `<prefix>…`, however the test ends.
struct PrefixGuard(String);

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        for name in clusters_named(&self.0) {
            drop(Guard { name });
        }
    }
}
