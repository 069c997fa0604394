//! What a remote node is given to run a bundled target: its command line, the launch script
//! that starts it under libfaketime, the link daemon's configuration when latency goes through
//! link proxies, and the scripts that prepare and stop a node. Pure text, tested without nodes.

use nuclei::link::daemon::{LinkSpec, LinksConfig};
use nuclei::ssh_faults::commands::{shell_quote, CLOCK_FILE, LINK_FAULTS_FILE, NODE_DIR, PID_FILE};

/// Where clients reach every node (directly, or through the node's link daemon).
pub const CLIENT_PORT: u16 = 7001;
/// The target's own client listener when the link daemon fronts it (loopback only).
pub const INNER_CLIENT_PORT: u16 = 7000;
/// Where peers reach every node.
pub const PEER_PORT: u16 = 7100;
/// Node `j`'s link-daemon proxy on every other node listens on `127.0.0.1:LINK_BASE + j`.
pub const LINK_BASE: u16 = 7200;

pub const DATA_DIR: &str = "/var/lib/fissure/data";
pub const NODE_LOG: &str = "/var/lib/fissure/node.log";
pub const LINKS_CONFIG: &str = "/var/lib/fissure/links.json";
pub const LINKS_LOG: &str = "/var/lib/fissure/links.log";
pub const LINKS_PID: &str = "/var/lib/fissure/links.pid";

/// One node as the others see it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub id: String,
    pub ip: String,
}

/// Everything needed to write node `me`'s files.
pub struct NodeLayout<'a> {
    /// Every node, in order; `me` indexes it.
    pub nodes: &'a [Peer],
    pub me: usize,
    /// The target binary on the node.
    pub program: &'a str,
    /// The fissure-node mode: raft-kv, quorum, twopc, echo.
    pub target: &'a str,
    /// Mode-specific flags.
    pub extra: &'a [String],
    /// Route peers and clients through the node's link daemon (no netem on this kernel).
    pub link_daemon: bool,
}

impl NodeLayout<'_> {
    fn link_port(j: usize) -> u16 {
        LINK_BASE + j as u16 + 1
    }

    /// The target's full command line.
    pub fn command(&self) -> Vec<String> {
        let me = &self.nodes[self.me];
        let listen = if self.link_daemon {
            format!("127.0.0.1:{INNER_CLIENT_PORT}")
        } else {
            format!("0.0.0.0:{CLIENT_PORT}")
        };
        let peers: Vec<String> = (self.nodes.iter().enumerate())
            .filter(|(j, _)| *j != self.me)
            .map(|(j, peer)| {
                let addr = if self.link_daemon {
                    format!("127.0.0.1:{}", Self::link_port(j))
                } else {
                    format!("{}:{PEER_PORT}", peer.ip)
                };
                format!("{}={addr}", peer.id)
            })
            .collect();
        let mut command = vec![
            self.program.to_string(),
            "node".into(),
            self.target.into(),
            "--id".into(),
            me.id.clone(),
            "--listen".into(),
            listen,
            "--peer-listen".into(),
            format!("0.0.0.0:{PEER_PORT}"),
            "--data-dir".into(),
            DATA_DIR.into(),
        ];
        if !peers.is_empty() {
            command.extend(["--peers".into(), peers.join(",")]);
        }
        command.extend(self.extra.iter().cloned());
        command
    }

    /// The launch script: starts the target in the background under libfaketime (realtime
    /// only: timers stay monotonic and real) and records its pid. Kept on the node so that a
    /// restart needs nothing from the controller.
    pub fn launch_script(&self) -> String {
        let command: Vec<String> = self.command().iter().map(|a| shell_quote(a)).collect();
        launch_script_for(&self.nodes[self.me].id, &command.join(" "))
    }

    /// The link daemon's proxies on this node: the client link in front of the target, and one
    /// link per peer.
    pub fn links(&self) -> LinksConfig {
        let me = &self.nodes[self.me];
        let mut links = vec![LinkSpec {
            name: "client".into(),
            listen: format!("{}:{CLIENT_PORT}", me.ip),
            upstream: format!("127.0.0.1:{INNER_CLIENT_PORT}"),
        }];
        for (j, peer) in self.nodes.iter().enumerate() {
            if j != self.me {
                links.push(LinkSpec {
                    name: peer.id.clone(),
                    listen: format!("127.0.0.1:{}", Self::link_port(j)),
                    upstream: format!("{}:{PEER_PORT}", peer.ip),
                });
            }
        }
        LinksConfig { links }
    }
}

/// The launch script of node `id` for a command line (already quoted for the shell): starts it in
/// the background under libfaketime (realtime only: timers stay monotonic and real) and records
/// its pid. Kept on the node so that a restart needs nothing from the controller.
pub fn launch_script_for(id: &str, command: &str) -> String {
    let level = std::env::var("FISSURE_NODE_LOG").unwrap_or_else(|_| "info".into());
    format!(
        "#!/bin/sh\n\
         # Starts node {id}'s target. Written by fissure; restarts and `fissure heal` run it.\n\
         cd {NODE_DIR} || exit 1\n\
         lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n 1)\n\
         if [ -z \"$lib\" ]; then echo 'libfaketime is not installed on this node, so clock \
         faults cannot work: install it (Debian: apt-get install faketime) or rebuild the \
         image (fissure image build)' >&2; exit 1; fi\n\
         RUST_LOG={level} LD_PRELOAD=\"$lib\" FAKETIME_TIMESTAMP_FILE={CLOCK_FILE} \
         FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_NO_CACHE=1 FAKETIME_DISABLE_SHM=1 \
         nohup {command} >> {NODE_LOG} 2>&1 < /dev/null &\n\
         echo $! > {PID_FILE}\n",
        level = shell_quote(&level),
    )
}

/// Stops the process in `pid_file`: SIGTERM (and SIGCONT, since a stopped process only acts on
/// it once continued), up to `grace_tenths` tenths of a second, then SIGKILL.
pub fn stop_process(pid_file: &str, grace_tenths: u32) -> String {
    format!(
        "pid=$(cat {pid_file} 2>/dev/null); \
         if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; then \
           kill -TERM \"$pid\" 2>/dev/null; kill -CONT \"$pid\" 2>/dev/null; i=0; \
           while [ $i -lt {grace_tenths} ]; do \
             s=$(ps -o stat= -p \"$pid\" 2>/dev/null | cut -c1); \
             case \"$s\" in ''|Z|X) break;; esac; sleep 0.1; i=$((i+1)); \
           done; \
           kill -9 \"$pid\" 2>/dev/null; \
         fi; rm -f {pid_file}; true"
    )
}

/// Removes an earlier target's own fault commands (see `commands::hook`), so that they cannot
/// act on this run's target.
pub fn remove_hooks() -> String {
    format!(
        "mkdir -p {NODE_DIR} && rm -f {NODE_DIR}/kill.sh {NODE_DIR}/pause.sh \
         {NODE_DIR}/resume.sh {NODE_DIR}/stop.sh"
    )
}

/// Prepares a node for a fresh run: stops what an earlier run left, empties the data and
/// logs, resets the clock and link faults. The launch script and links config are uploaded
/// after this.
pub fn prepare_node() -> String {
    [
        remove_hooks(),
        stop_process(PID_FILE, 0),
        stop_process(LINKS_PID, 0),
        format!("rm -rf {DATA_DIR} && mkdir -p {DATA_DIR}"),
        format!(": > {NODE_LOG}; : > {LINKS_LOG}"),
        format!("printf '+0.000\\n' > {CLOCK_FILE}"),
        format!("printf '{{}}' > {LINK_FAULTS_FILE}"),
    ]
    .join(" && ")
}

/// Starts the link daemon in the background and waits until its client link listens.
pub fn start_link_daemon(program: &str, client_listen_port: u16) -> String {
    format!(
        "cd {NODE_DIR} || exit 1; nohup {program} links --config {LINKS_CONFIG} --faults {LINK_FAULTS_FILE} \
         >> {LINKS_LOG} 2>&1 < /dev/null & echo $! > {LINKS_PID}; \
         pid=$!; i=0; while [ $i -lt 100 ]; do \
           kill -0 $pid 2>/dev/null || break; \
           awk '$2 ~ /:{port:04X}$/ && $4 == \"0A\" {{ found = 1 }} END {{ exit !found }}' \
             /proc/net/tcp && exit 0; \
           sleep 0.05; i=$((i+1)); \
         done; echo 'the link daemon did not start; {LINKS_LOG} ends:' >&2; \
         tail -n 5 {LINKS_LOG} >&2; exit 1",
        port = client_listen_port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<Peer> {
        (1..=3)
            .map(|i| Peer {
                id: format!("n{i}"),
                ip: format!("10.213.0.{}", 10 + i),
            })
            .collect()
    }

    #[test]
    fn direct_peers_and_a_public_client_port_without_the_daemon() {
        let nodes = nodes();
        let extra = vec!["--bug".to_string(), "stale-read".to_string()];
        let layout = NodeLayout {
            nodes: &nodes,
            me: 1,
            program: "/opt/fissure/fissure",
            target: "raft-kv",
            extra: &extra,
            link_daemon: false,
        };
        let command = layout.command().join(" ");
        assert!(command.starts_with("/opt/fissure/fissure node raft-kv --id n2"));
        assert!(command.contains("--listen 0.0.0.0:7001"));
        assert!(command.contains("--peers n1=10.213.0.11:7100,n3=10.213.0.13:7100"));
        assert!(command.ends_with("--bug stale-read"));
        let script = layout.launch_script();
        assert!(script.contains("FAKETIME_DONT_FAKE_MONOTONIC=1"));
        assert!(script.contains(&format!("echo $! > {PID_FILE}")));
    }

    #[test]
    fn the_daemon_fronts_clients_and_peers() {
        let nodes = nodes();
        let layout = NodeLayout {
            nodes: &nodes,
            me: 0,
            program: "/opt/fissure/fissure",
            target: "raft-kv",
            extra: &[],
            link_daemon: true,
        };
        let command = layout.command().join(" ");
        assert!(command.contains("--listen 127.0.0.1:7000"));
        assert!(command.contains("--peers n2=127.0.0.1:7202,n3=127.0.0.1:7203"));
        let links = layout.links().links;
        assert_eq!(links[0].name, "client");
        assert_eq!(links[0].listen, "10.213.0.11:7001");
        assert_eq!(links[1].name, "n2");
        assert_eq!(links[1].listen, "127.0.0.1:7202");
        assert_eq!(links[1].upstream, "10.213.0.12:7100");
    }

    #[test]
    fn the_daemon_wait_looks_for_the_port_in_hex() {
        let wait = start_link_daemon("/x", 7001);
        assert!(
            wait.contains(":1B59$/") && wait.contains("== \"0A\""),
            "{wait}"
        );
    }
}
