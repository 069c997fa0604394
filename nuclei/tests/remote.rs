//! `nuclei::remote` against real sshds in Docker containers of the image named by
//! `FISSURE_TEST_NODE_IMAGE` (skipped when unset, unless `FISSURE_REQUIRE_DOCKER=1`).
//!
//! Each test starts its own network and containers, talks only to them, and removes them when it
//! ends, panicking or not.

use nuclei::remote::{Fleet, HostKeys, Remote, RemoteOptions, SshTarget};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// The node image, or `None` (after saying so) when the tests should be skipped.
fn image() -> Option<String> {
    match std::env::var("FISSURE_TEST_NODE_IMAGE") {
        Ok(image) if !image.is_empty() => Some(image),
        _ if std::env::var("FISSURE_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("FISSURE_REQUIRE_DOCKER=1 but FISSURE_TEST_NODE_IMAGE is not set: these tests need a node image with sshd")
        }
        _ => {
            eprintln!("skipped: set FISSURE_TEST_NODE_IMAGE to a node image with sshd (e.g. fissure-node:proto) to run the SSH tests");
            None
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn docker(args: &[&str]) -> String {
    run("docker", args).unwrap_or_else(|e| panic!("{e}"))
}

/// Containers on a private network, removed on drop.
struct Cluster {
    network: Option<String>,
    containers: Vec<String>,
    ips: Vec<String>,
    dir: tempfile::TempDir,
    key: PathBuf,
    host_keys: Arc<HostKeys>,
}

impl Cluster {
    /// `index` tells apart the tests of this process, which run side by side.
    fn start(image: &str, index: u32, nodes: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        let host_keys = HostKeys::open(&dir.path().join("known_hosts")).unwrap();
        let mut cluster = Cluster {
            network: None,
            containers: Vec::new(),
            ips: Vec::new(),
            dir,
            key,
            host_keys,
        };
        let pid = std::process::id();
        let name = format!("fissure-remote-test-{pid}-{index}");
        // A subnet of our own; another process may hold the first choice, so try a few.
        let mut octet = 0;
        for attempt in 0..8 {
            octet = 200 + ((pid + attempt * 7) % 16) * 3 + index;
            let subnet = format!("10.213.{octet}.0/24");
            if run("docker", &["network", "create", "--subnet", &subnet, &name]).is_ok() {
                cluster.network = Some(name.clone());
                break;
            }
        }
        assert!(
            cluster.network.is_some(),
            "could not create a docker network"
        );
        for i in 0..nodes {
            let container = format!("{name}-n{}", i + 1);
            let ip = format!("10.213.{octet}.{}", 10 + i);
            docker(&[
                "run",
                "-d",
                "--name",
                &container,
                "--network",
                &name,
                "--ip",
                &ip,
                "--cap-add",
                "NET_ADMIN",
                image,
            ]);
            cluster.containers.push(container.clone());
            let inspect = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
            cluster
                .ips
                .push(docker(&["inspect", "-f", inspect, &container]));
        }
        let key = cluster.key.to_str().unwrap();
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", key]).unwrap();
        let public = std::fs::read(format!("{key}.pub")).unwrap();
        for container in &cluster.containers {
            authorize(container, &public);
        }
        cluster
    }

    fn target(&self, i: usize) -> SshTarget {
        SshTarget {
            node: format!("n{}", i + 1),
            host: self.ips[i].clone(),
            port: 22,
            user: "root".into(),
            key: self.key.clone(),
        }
    }

    fn remote(&self, i: usize, options: RemoteOptions) -> Remote {
        Remote::new(self.target(i), self.host_keys.clone(), options)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = run("docker", &["rm", "-f", container]);
        }
        if let Some(network) = &self.network {
            let _ = run("docker", &["network", "rm", network]);
        }
    }
}

fn authorize(container: &str, public: &[u8]) {
    let mut child = Command::new("docker")
        .args(["exec", "-i", container, "sh", "-c"])
        .arg("mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(public).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "installing the key in {container}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_files_and_timeouts() {
    let Some(image) = image() else { return };
    let cluster = Cluster::start(&image, 0, 1);
    let remote = cluster.remote(0, RemoteOptions::default());
    remote.wait_ready(T).await.unwrap();

    // Exit code, stdout and stderr, kept apart.
    let out = remote
        .exec("echo out; echo err >&2; exit 3", T)
        .await
        .unwrap();
    assert_eq!(
        (out.code, &*out.stdout, &*out.stderr),
        (3, "out\n", "err\n")
    );
    assert_eq!(remote.exec_ok("echo hi", T).await.unwrap(), "hi\n");
    let msg = format!(
        "{:#}",
        remote
            .exec_ok("echo oops >&2; exit 2", T)
            .await
            .unwrap_err()
    );
    assert!(
        msg.contains("n1") && msg.contains("exit 2") && msg.contains("code 2"),
        "{msg}"
    );
    assert!(msg.contains("oops"), "{msg}");
    // A signal shows as 128 + its number, as in a shell.
    assert_eq!(remote.exec("kill -KILL $$", T).await.unwrap().code, 137);

    // Megabytes on both streams at once, stderr first: neither may block the other.
    let both = "head -c 3000000 /dev/zero | tr '\\0' e >&2; head -c 3000000 /dev/zero | tr '\\0' o";
    let out = remote.exec(both, T).await.unwrap();
    assert_eq!((out.stdout.len(), out.stderr.len()), (3_000_000, 3_000_000));

    // A command past its timeout errors promptly, and the node stays usable.
    let start = Instant::now();
    let err = remote
        .exec("sleep 5", Duration::from_millis(500))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        msg.contains("sleep 5") && msg.contains("n1") && msg.contains("500ms"),
        "{msg}"
    );
    assert_eq!(remote.exec_ok("echo alive", T).await.unwrap(), "alive\n");

    // The connection dying under a running command: reported, never run a second time.
    let marker = "/tmp/ran-once";
    let cmd = format!("echo x >> {marker}; kill -KILL $PPID; sleep 1");
    let msg = format!("{:#}", remote.exec(&cmd, T).await.unwrap_err());
    assert!(
        msg.contains("may or may not have run") && msg.contains("n1"),
        "{msg}"
    );
    let ran = remote.exec_ok(&format!("cat {marker}"), T).await.unwrap();
    assert_eq!(ran, "x\n");

    // Sixteen commands at once run on up to eight sessions in parallel.
    let start = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let remote = remote.clone();
            tokio::spawn(async move { remote.exec_ok("sleep 0.3", T).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "16 × sleep 0.3 took {elapsed:?}"
    );
    // Established connections to sshd, as the node sees them: never more than the pool's 8.
    let count = "awk '$2 ~ /:0016$/ && $4 == \"01\"' /proc/net/tcp /proc/net/tcp6 | wc -l";
    let sessions: usize = remote
        .exec_ok(count, T)
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((1..=8).contains(&sessions), "{sessions} sessions open");

    // Upload and download round trip, with the mode applied exactly (umask or not).
    let blob: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = cluster.dir.path().join("blob");
    std::fs::write(&local, &blob).unwrap();
    remote
        .upload(&local, "/root/blob bin", 0o750)
        .await
        .unwrap();
    let stat = remote
        .exec_ok("stat -c %a '/root/blob bin'; ls /root", T)
        .await
        .unwrap();
    assert_eq!(stat, "750\nblob bin\n");
    let back = cluster.dir.path().join("back");
    remote.download("/root/blob bin", &back).await.unwrap();
    assert!(
        std::fs::read(&back).unwrap() == blob,
        "downloaded bytes differ"
    );
    assert!(!cluster.dir.path().join("back.part").exists());
    // Replacing a file (even a running binary) works, since the new one is renamed over it.
    remote
        .upload_bytes(b"#!/bin/sh\necho new\n".to_vec(), "/root/blob bin", 0o777)
        .await
        .unwrap();
    let ran = remote
        .exec_ok("stat -c %a '/root/blob bin'; '/root/blob bin'", T)
        .await
        .unwrap();
    assert_eq!(ran, "777\nnew\n");
    // Failures the server reports come back at once, naming the path.
    let start = Instant::now();
    let msg = format!(
        "{:#}",
        remote
            .upload_bytes(vec![1], "/no/such/dir/f", 0o644)
            .await
            .unwrap_err()
    );
    assert!(
        msg.contains("/no/such/dir/f.part") && msg.contains("n1"),
        "{msg}"
    );
    let msg = format!(
        "{:#}",
        remote.download("/no/such/file", &back).await.unwrap_err()
    );
    assert!(msg.contains("/no/such/file"), "{msg}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconnects_and_pins_host_keys() {
    let Some(image) = image() else { return };
    let cluster = Cluster::start(&image, 1, 1);
    let remote = cluster.remote(0, RemoteOptions::default());
    remote.wait_ready(T).await.unwrap();
    assert_eq!(remote.exec_ok("echo before", T).await.unwrap(), "before\n");
    let recorded = std::fs::read_to_string(cluster.host_keys.path()).unwrap();
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
    assert!(
        recorded.starts_with(&format!("{}:22 ", cluster.ips[0])),
        "{recorded}"
    );

    // The pooled session dies with the restart; the next command retries on a fresh one.
    docker(&["restart", "-t", "1", &cluster.containers[0]]);
    assert_eq!(remote.exec_ok("echo after", T).await.unwrap(), "after\n");

    // A different key on record for the address: refused at once, no retry loop.
    let wrong = cluster.dir.path().join("wrong_hosts");
    let key_type = recorded.split_whitespace().nth(1).unwrap();
    std::fs::write(
        &wrong,
        format!(
            "{}:22 {key_type} AAAAC3NzaC1lZDI1NTE5AAAAIK\n",
            cluster.ips[0]
        ),
    )
    .unwrap();
    let pinned = Remote::new(
        cluster.target(0),
        HostKeys::open(&wrong).unwrap(),
        RemoteOptions::default(),
    );
    let start = Instant::now();
    let msg = format!("{:#}", pinned.connect().await.unwrap_err());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        msg.contains("host key mismatch") && msg.contains("n1"),
        "{msg}"
    );
    assert!(
        msg.contains("remove the") && msg.contains("wrong_hosts"),
        "{msg}"
    );

    // A key the node does not know: refused at once too, with what to do.
    let stranger = cluster.dir.path().join("stranger");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            stranger.to_str().unwrap(),
        ],
    )
    .unwrap();
    let target = SshTarget {
        key: stranger,
        ..cluster.target(0)
    };
    let unknown = Remote::new(target, cluster.host_keys.clone(), RemoteOptions::default());
    let start = Instant::now();
    let msg = format!("{:#}", unknown.exec("true", T).await.unwrap_err());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        msg.contains("rejected key") && msg.contains("authorized_keys"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fleet_runs_on_every_node() {
    let Some(image) = image() else { return };
    let cluster = Cluster::start(&image, 2, 2);
    let fleet = Fleet::new(vec![
        cluster.remote(0, RemoteOptions::default()),
        cluster.remote(1, RemoteOptions::default()),
    ]);
    assert_eq!(fleet.nodes(), ["n1", "n2"]);
    assert_eq!(fleet.get("n2").unwrap().node(), "n2");
    assert!(format!("{}", fleet.get("n3").unwrap_err()).contains("n1, n2"));
    fleet.wait_ready(T).await.unwrap();

    let results = fleet.exec_all("hostname -i", T).await;
    let ips: Vec<String> = results
        .into_iter()
        .map(|(_, r)| r.unwrap().stdout.trim().to_string())
        .collect();
    assert_eq!(ips, cluster.ips);

    let first = &cluster.ips[0];
    let check = format!("test \"$(hostname -i)\" = {first} || {{ echo not me >&2; exit 1; }}");
    let msg = format!("{:#}", fleet.exec_ok_all(&check, T).await.unwrap_err());
    assert!(
        msg.contains("failed on 1 of 2 nodes") && msg.contains("n2") && msg.contains("not me"),
        "{msg}"
    );
    assert!(!msg.contains("n1 ("), "{msg}");
    let all = fleet.exec_ok_all("echo ok", T).await.unwrap();
    assert_eq!(
        all,
        [
            ("n1".to_string(), "ok\n".to_string()),
            ("n2".to_string(), "ok\n".to_string())
        ]
    );
}
