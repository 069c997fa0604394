//! The docker backend end to end, on real containers controlled over SSH: a correct raft-kv
//! passes under partitions and kills, a planted bug is found, a partition really cuts peers
//! (checked from inside the containers), and `fissure heal` leaves nothing behind after the
//! controller was SIGKILLed mid-fault.
//!
//! These need a Docker daemon and root (the node image is made by mmdebstrap). Without them
//! each test prints why it was skipped, unless `FISSURE_REQUIRE_DOCKER=1` (as `.ci/run` sets
//! where Docker runs), which makes a missing daemon a failure. Every test removes its
//! containers, network and state, even when it fails (a guard's Drop).

use harness::backend::state::ClusterState;
use harness::backend::{remote, state};
use nuclei::control::Grudge;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cli.rs"]
mod cli;
use cli::{fissure, fissure_command, state_root, text};

#[path = "support/docker.rs"]
mod docker_support;
use docker_support::docker_available;

/// A 60 s docker run in the background (to be interrupted), storing into `store`.
fn spawn_run(store: &std::path::Path, args: &str) -> std::process::Child {
    let mut full = vec!["run", "--backend", "docker", "--time-limit", "60s"];
    full.extend(["--store", store.to_str().unwrap()]);
    full.extend(args.split_whitespace());
    fissure_command(&full)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A cluster that is removed when the test ends, however it ends.
struct Cluster {
    name: String,
}

impl Cluster {
    fn up(test: &str, nodes: usize) -> Cluster {
        let name = format!("ft{}-{test}", std::process::id());
        let cluster = Cluster { name };
        let out = fissure(&[
            "cluster",
            "up",
            &cluster.name,
            "--nodes",
            &nodes.to_string(),
        ]);
        assert!(out.status.success(), "cluster up: {}", text(&out));
        cluster
    }

    fn state(&self) -> ClusterState {
        state_root();
        ClusterState::load(&self.name).unwrap()
    }

    fn container(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }

    fn run(&self, store: &std::path::Path, args: &str) -> Output {
        let mut full = vec![
            "run",
            "--backend",
            "docker",
            "--cluster",
            &self.name,
            "--store",
            store.to_str().unwrap(),
        ];
        full.extend(args.split_whitespace());
        fissure(&full)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = fissure(&["cluster", "down", &self.name]);
        if !out.status.success() {
            eprintln!("cluster down {}: {}", self.name, text(&out));
        }
        // Whatever `down` could not find by its state, find by label.
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

/// `docker exec` in a node: stdout, or a panic with the output.
fn exec(container: &str, script: &str) -> (bool, String) {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Whether `from` opens a TCP connection to `to_ip`'s SSH port within a second, asked over
/// SSH from inside `from` (perl is in Debian's minbase).
async fn reaches(faults: &nuclei::ssh_faults::SshFaults, from: &str, to_ip: &str) -> bool {
    let probe = format!(
        "perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => \"{to_ip}:22\", \
         Timeout => 1) ? 0 : 1)'"
    );
    let out = faults.fleet().get(from).unwrap();
    out.exec(&probe, Duration::from_secs(10))
        .await
        .unwrap()
        .code
        == 0
}

fn results(store: &std::path::Path) -> serde_json::Value {
    let path = store.join("latest/results.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Must-show: five raft-kv nodes on docker under partitions and kills are valid, and the
/// stale-read bug is found.
#[test]
fn raft_kv_on_five_containers_is_valid_and_stale_reads_are_found() {
    if !docker_available("raft_kv_on_five_containers") {
        return;
    }
    let cluster = Cluster::up("raft", 5);
    let store = tempfile::tempdir().unwrap();
    let short = "--nodes 5 --nemesis partition,kill --nemesis-interval 1s --recovery 2s \
                 --rate 150";
    let out = cluster.run(store.path(), &format!("{short} --time-limit 8s --seed 3"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "correct raft-kv: {}",
        text(&out)
    );
    let valid = results(store.path());
    assert!(
        valid["run"]["faults_applied"].as_u64().unwrap() >= 4,
        "{valid}"
    );
    assert_eq!(valid["run"]["clock_mechanism"], "libfaketime");
    // The nodes' logs came back over SFTP.
    let log = store.path().join("latest/nodes/n1/node.log");
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "no node log at {log:?}"
    );

    // 16 s: in 8 s a stale read shows about 9 times in 10 (BENCHMARKS.md).
    let out = cluster.run(
        store.path(),
        &format!("{short} --time-limit 16s --bug stale-read --seed 1"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stale-read must be found: {}",
        text(&out)
    );
    let invalid = results(store.path());
    assert_eq!(invalid["valid"], false, "{invalid}");
}

/// Must-show: a partition cuts n1 from n2 as seen from inside the containers, a heal restores
/// it; after `kill -9` of a controller in the middle of faults, `fissure heal` leaves no
/// Fissure chain, no paused target and no skewed clock on any node.
#[test]
fn partitions_cut_peers_and_heal_cleans_up_after_a_killed_controller() {
    if !docker_available("partitions_and_heal") {
        return;
    }
    let cluster = Cluster::up("heal", 3);
    let state = cluster.state();
    let ip = |node: &str| {
        state
            .nodes
            .iter()
            .find(|n| n.id == node)
            .unwrap()
            .ip
            .clone()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let faults = remote::faults(&state).unwrap();
        assert!(
            reaches(&faults, "n1", &ip("n2")).await,
            "n1 reaches n2 at first"
        );
        let grudge = Grudge::between(&["n1".to_string()], &["n2".into(), "n3".into()]);
        faults.partition(&grudge).await.unwrap();
        assert!(
            !reaches(&faults, "n1", &ip("n2")).await,
            "partitioned n1 reaches n2"
        );
        assert!(
            reaches(&faults, "n2", &ip("n3")).await,
            "n2 and n3 are on one side"
        );
        let outstanding = faults.ledger().outstanding().unwrap();
        assert_eq!(
            outstanding.len(),
            3,
            "every cut node is in the ledger: {outstanding:?}"
        );
        faults.heal_partition().await.unwrap();
        assert!(
            reaches(&faults, "n1", &ip("n2")).await,
            "healed n1 reaches n2"
        );
        assert!(faults.ledger().outstanding().unwrap().is_empty());
    });

    // A controller SIGKILLed while partitions, pauses and clock skews are in force.
    let store = tempfile::tempdir().unwrap();
    let mut controller = spawn_run(
        store.path(),
        &format!(
            "--cluster {} --nodes 3 --nemesis partition,pause,clock --nemesis-interval 400ms",
            cluster.name
        ),
    );
    let ledger = state.ledger();
    let deadline = Instant::now() + Duration::from_secs(40);
    let wait_for_overlap = |controller: &mut std::process::Child| loop {
        let open = nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap();
        let kinds: std::collections::BTreeSet<_> = open.iter().map(|o| o.kind.name()).collect();
        if kinds.contains("partition") && kinds.len() >= 2 {
            break kinds;
        }
        assert!(
            Instant::now() < deadline,
            "faults never overlapped: {open:?}"
        );
        assert!(
            controller.try_wait().unwrap().is_none(),
            "the controller ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_for_overlap(&mut controller);
    // A live run holds the cluster: heal and down refuse to act under it.
    let refused = fissure(&["heal", &cluster.name]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(text(&refused).contains("in use"), "{}", text(&refused));
    let refused = fissure(&["cluster", "down", &cluster.name]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    // Killed right after faults are seen overlapping again; what the ledger then holds is what
    // heal must undo (a fault may have ended in the moment between).
    let seen = wait_for_overlap(&mut controller);
    controller.kill().unwrap();
    controller.wait().unwrap();
    let open = nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap();
    let in_force: std::collections::BTreeSet<_> = open.iter().map(|o| o.kind.name()).collect();
    eprintln!("killed the controller with {in_force:?} in force (seen just before: {seen:?})");
    assert!(!in_force.is_empty(), "no fault in force at the kill");

    let out = fissure(&["heal", &cluster.name]);
    assert!(out.status.success(), "heal: {}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    for kind in &in_force {
        assert!(said.contains(&format!("undid {kind}")), "{kind}: {said}");
    }
    for node in ["n1", "n2", "n3"] {
        let container = cluster.container(node);
        let (_, rules) = exec(&container, "iptables -S");
        assert!(
            !rules.contains("FISSURE"),
            "{node} keeps Fissure rules:\n{rules}"
        );
        let (_, paused) = exec(
            &container,
            "pid=$(cat /var/lib/fissure/node.pid); ps -o stat= -p $pid",
        );
        assert!(!paused.starts_with('T'), "{node}'s target is still paused");
        let (_, clock) = exec(&container, "cat /var/lib/fissure/faketime.rc");
        assert_eq!(clock, "+0.000", "{node}'s clock is still skewed");
    }
    let status = fissure(&["cluster", "status", &cluster.name]);
    assert!(
        text(&status).contains("no fault in force"),
        "{}",
        text(&status)
    );
    let doctor = fissure(&["doctor", "--backend", "docker", "--cluster", &cluster.name]);
    assert_eq!(doctor.status.code(), Some(0), "doctor: {}", text(&doctor));
    assert!(text(&doctor).contains("link daemons") || text(&doctor).contains("tc netem"));
    drop(cluster);
    assert!(
        !state::list().contains(&state.name),
        "down removes the state"
    );
}

/// Clock faults move the target's wall clock (libfaketime), not the node's nor the host's.
#[test]
fn clock_faults_move_only_the_targets_clock() {
    if !docker_available("clock_faults") {
        return;
    }
    let cluster = Cluster::up("clock", 1);
    let state = cluster.state();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let faked = "lib=$(ls /usr/lib/*/faketime/libfaketime.so.1); \
                 echo $(( $(LD_PRELOAD=$lib FAKETIME_TIMESTAMP_FILE=/var/lib/fissure/faketime.rc \
                 FAKETIME_NO_CACHE=1 date +%s) - $(date +%s) ))";
    runtime.block_on(async {
        let faults = remote::faults(&state).unwrap();
        faults.set_clock_offset("n1", 3_600_000).await.unwrap();
        let skew: i64 = exec(&cluster.container("n1"), faked).1.parse().unwrap();
        assert!((3599..=3601).contains(&skew), "skew {skew}");
        let host_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let node_now: i64 = exec(&cluster.container("n1"), "date +%s")
            .1
            .parse()
            .unwrap();
        assert!(
            (node_now - host_now).abs() < 5,
            "the node's own clock moved"
        );
        faults.set_clock_offset("n1", 0).await.unwrap();
        let skew: i64 = exec(&cluster.container("n1"), faked).1.parse().unwrap();
        assert!(skew.abs() <= 1, "reset left skew {skew}");
        assert!(faults.ledger().outstanding().unwrap().is_empty());
    });
}

/// Ctrl-C in the middle of faults on a cluster made for the run: the run heals, checks what it
/// recorded (marked interrupted), and removes its containers, network and state.
#[test]
fn ctrl_c_heals_and_removes_a_cluster_made_for_the_run() {
    if !docker_available("ctrl_c") {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let mut controller = spawn_run(
        store.path(),
        "--nodes 3 --nemesis partition,pause --nemesis-interval 400ms",
    );
    // The run names its cluster after its pid (and a random suffix).
    let prefix = format!("fissure-{}-", controller.id());
    // Generous: under a loaded machine (other docker tests building beside it), making the
    // cluster has taken over a minute.
    let deadline = Instant::now() + Duration::from_secs(180);
    let name = loop {
        if let Some(name) = state::list().into_iter().find(|n| n.starts_with(&prefix)) {
            break name;
        }
        assert!(Instant::now() < deadline, "the run made no cluster");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _cleanup = Cluster { name: name.clone() };
    let ledger = state::dir(&name).join("ledger.jsonl");
    loop {
        let open = nuclei::ssh_faults::ledger::read_outstanding(&ledger).unwrap();
        if !open.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no fault was ever applied");
        assert!(
            controller.try_wait().unwrap().is_none(),
            "the run ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(controller.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let waited = Instant::now();
    let out = controller.wait_with_output().unwrap();
    assert!(
        waited.elapsed() < Duration::from_secs(40),
        "took {:?}",
        waited.elapsed()
    );
    assert!(matches!(out.status.code(), Some(0..=2)), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["run"]["interrupted"], true, "{results}");
    assert!(results["run"]["heal_error"].is_null(), "{results}");
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=fissure.cluster={name}"),
        ])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "containers left behind");
    assert!(!state::dir(&name).exists(), "state left behind");
}

/// Latency without netem: the target's traffic runs through each node's link daemon, which a
/// latency fault slows (client and peer links) and a restore makes fast again; loss adds
/// iptables `statistic` rules that spare SSH.
#[test]
fn latency_goes_through_link_daemons_and_loss_through_iptables() {
    if !docker_available("latency_and_loss") {
        return;
    }
    use harness::backend::remote::{Launch, RemoteCluster, TargetConfig};
    use harness::backend::RunCluster;
    use nuclei::control::{ClusterControl, LinkQuality};
    let cluster = Cluster::up("lat", 2);
    let state = cluster.state();
    let logs = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let raft = harness::target::Target::find("raft-kv").unwrap().def;
        let options = raft.options_for(&[]).unwrap();
        let config = TargetConfig {
            launch: Launch::Bundled {
                mode: "raft-kv".into(),
                node_args: (0..2)
                    .map(|i| raft.bundled_args(2, i, &options, None).unwrap())
                    .collect(),
            },
            nodes: 2,
            program: harness::backend::docker::program(),
            logs_dir: logs.path().to_path_buf(),
            start_timeout: Duration::from_secs(20),
            link_faults: true,
        };
        let remote = RemoteCluster::start(state.clone(), config, None)
            .await
            .unwrap();
        let addr = format!("{}:7001", state.nodes[0].ip);
        let round_trip = || async {
            let started = Instant::now();
            harness::backend::status::status(&addr, Duration::from_secs(5))
                .await
                .unwrap();
            started.elapsed()
        };
        assert!(round_trip().await < Duration::from_millis(200));
        let slow = LinkQuality {
            latency: Duration::from_millis(300),
            jitter: Duration::ZERO,
            loss: 0.0,
        };
        if remote.faults().latency_mechanism().name() == "link-daemon" {
            remote.degrade(&["n1".to_string()], slow).await.unwrap();
            // Wait for the daemon's next poll of its faults file.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let took = round_trip().await;
            assert!(
                took >= Duration::from_millis(550),
                "degraded round trip {took:?}"
            );
            remote.restore_links().await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let took = round_trip().await;
            assert!(
                took < Duration::from_millis(200),
                "restored round trip {took:?}"
            );
        } else {
            eprintln!("this kernel has netem: the link daemon path is not exercised");
        }
        let lossy = LinkQuality {
            loss: 0.3,
            ..LinkQuality::default()
        };
        remote.degrade(&["n2".to_string()], lossy).await.unwrap();
        let (_, rules) = exec(&cluster.container("n2"), "iptables -S");
        assert!(rules.contains("--probability 0.29"), "{rules}");
        assert!(rules.contains("--dport 22 -j RETURN"), "{rules}");
        remote.restore_links().await.unwrap();
        let (_, rules) = exec(&cluster.container("n2"), "iptables -S");
        assert!(!rules.contains("statistic"), "{rules}");
        remote.shutdown().await.unwrap();
        assert!(remote.faults().leftovers().await.unwrap().is_empty());
    });
    assert!(logs.path().join("n1/links.log").is_file());
}
