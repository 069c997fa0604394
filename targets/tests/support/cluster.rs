//! Real local clusters of `fissure-node` processes for integration tests.
//!
//! Every node→node link runs through its own [`LinkProxy`] (one per ordered pair), so tests can
//! cut links for real. Dropping the [`Cluster`] SIGKILLs every node and removes its data, even
//! when the test panics.
#![allow(dead_code)]

use nuclei::link::LinkProxy;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use targets::client::Client;
use targets::protocol::{Op, Reply};

pub struct Node {
    pub id: String,
    pub client_addr: String,
    pub peer_addr: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

pub struct Cluster {
    /// Held for the cluster's life: clusters in one test binary run one at a time, so timing
    /// assertions (elections, timeouts) are not at the mercy of other tests' load.
    _turn: tokio::sync::OwnedMutexGuard<()>,
    pub nodes: Vec<Node>,
    /// `links[(from, to)]`: the proxy node `from` uses to reach node `to`.
    links: BTreeMap<(usize, usize), LinkProxy>,
    dir: tempfile::TempDir,
}

/// A loopback port nobody is listening on right now.
pub fn free_port() -> u16 {
    reserve_port()
        .local_addr()
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn reserve_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("a free loopback port")
}

impl Cluster {
    /// Starts `n` nodes of `mode` (`raft-kv`, `quorum`, `twopc`). `extra(i)` gives node i's
    /// mode-specific flags (e.g. `--bug`, `--r`, `--role`). Ids are n1..nN.
    pub async fn start(mode: &str, n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        static TURN: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
        let turn = TURN.get_or_init(Arc::default).clone().lock_owned().await;
        let dir = tempfile::tempdir().expect("a temp dir");
        // Hold the nodes' ports while the proxies bind theirs, so the kernel cannot hand a proxy
        // a node's port; release them just before the nodes start.
        let reserved: Vec<(TcpListener, TcpListener)> =
            (0..n).map(|_| (reserve_port(), reserve_port())).collect();
        let port = |l: &TcpListener| l.local_addr().expect("a bound port").port();
        let ports: Vec<(u16, u16)> = reserved.iter().map(|(c, p)| (port(c), port(p))).collect();
        let mut links = BTreeMap::new();
        for from in 0..n {
            for (to, (_, peer_port)) in ports.iter().enumerate() {
                if from != to {
                    let upstream = format!("127.0.0.1:{peer_port}");
                    let proxy = LinkProxy::start(upstream).await.expect("a link proxy");
                    links.insert((from, to), proxy);
                }
            }
        }
        let mut nodes = Vec::new();
        for i in 0..n {
            let id = format!("n{}", i + 1);
            let peers: Vec<String> = (0..n)
                .filter(|&j| j != i)
                .map(|j| format!("n{}={}", j + 1, links[&(i, j)].addr()))
                .collect();
            let data_dir = dir.path().join(&id);
            let client_addr = format!("127.0.0.1:{}", ports[i].0);
            let peer_addr = format!("127.0.0.1:{}", ports[i].1);
            let mut args = vec![
                mode.to_string(),
                "--id".into(),
                id.clone(),
                "--listen".into(),
                client_addr.clone(),
                "--peer-listen".into(),
                peer_addr.clone(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--pid-file".into(),
                dir.path().join(format!("{id}.pid")).display().to_string(),
                "--clock-offset-file".into(),
                dir.path().join(format!("{id}.clock")).display().to_string(),
            ];
            if !peers.is_empty() {
                args.push("--peers".into());
                args.push(peers.join(","));
            }
            args.extend(extra(i));
            nodes.push(Node {
                log: dir.path().join(format!("{id}.log")),
                id,
                client_addr,
                peer_addr,
                data_dir,
                args,
                child: None,
            });
        }
        drop(reserved);
        let mut cluster = Cluster {
            _turn: turn,
            nodes,
            links,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_listening(i, Duration::from_secs(10)).await;
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("a node log");
        let child = Command::new(env!("CARGO_BIN_EXE_fissure-node"))
            .args(&node.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("fissure-node starts");
        node.child = Some(child);
    }

    /// Waits until node i accepts client connections. Fails at once if the node exited (for
    /// example because another process took its port between `free_port` and its start).
    pub async fn wait_listening(&mut self, i: usize, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Some(child) = self.nodes[i].child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "node {} exited ({status}) while starting; log:\n{}",
                        self.nodes[i].id,
                        self.log_of(i)
                    );
                }
            }
            if tokio::net::TcpStream::connect(&self.nodes[i].client_addr)
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "node {} did not listen within {limit:?}; log:\n{}",
                self.nodes[i].id,
                self.log_of(i)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs node i.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node i again with the same flags and data.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_listening(i, Duration::from_secs(10)).await;
    }

    /// Sends a signal (e.g. "STOP", "CONT", "TERM") to node i.
    pub fn signal(&self, i: usize, signal: &str) {
        if let Some(child) = &self.nodes[i].child {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status();
        }
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.links[&(x, y)].set_blackholed(true);
                self.links[&(y, x)].set_blackholed(true);
            }
        }
    }

    /// Cuts node i off from every other node.
    pub fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
        self.partition(&[i], &others);
    }

    pub fn heal(&self) {
        for link in self.links.values() {
            link.set_blackholed(false);
        }
    }

    /// Skews node i's wall clock by `offset_ms` (through its clock offset file).
    pub fn skew_clock(&self, i: usize, offset_ms: i64) {
        let path = self.dir.path().join(format!("{}.clock", self.nodes[i].id));
        std::fs::write(path, offset_ms.to_string()).expect("clock file");
    }

    pub fn client(&self, i: usize) -> Client {
        Client::new(self.nodes[i].client_addr.clone())
    }

    /// One operation against node i.
    pub async fn call(&self, i: usize, op: Op) -> Reply {
        self.client(i).call(op, Duration::from_secs(3)).await
    }

    /// Retries `op` on each node in turn until one answers `ok`, for up to `limit`.
    pub async fn call_until_ok(&self, op: Op, limit: Duration) -> Reply {
        let started = Instant::now();
        let mut last = Reply::fail("never tried");
        while started.elapsed() < limit {
            for i in 0..self.nodes.len() {
                if self.nodes[i].child.is_none() {
                    continue;
                }
                last = self
                    .client(i)
                    .call(op.clone(), Duration::from_millis(1500))
                    .await;
                if matches!(last, Reply::Ok { .. }) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }

    /// Node i's log so far, for assertion messages.
    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        for link in self.links.values_mut() {
            link.shutdown();
        }
    }
}
