//! Rendering a target file's commands for one node (Tera templates).
//!
//! What a template sees:
//!
//! | name | what |
//! |---|---|
//! | `node.name`, `node.index` | `n2`, `2` (1-based) |
//! | `node.address` | where the other nodes and clients reach this node |
//! | `node.client_port`, `node.peer_port` | its ports |
//! | `node.listen_client`, `node.listen_peer` | `address:port` to bind |
//! | `node.data_dir`, `node.log_file`, `node.dir` | its data directory, the target's log, its folder |
//! | `node.pid_file` | a file holding the daemon's pid (for `kill`, `pause`, `resume`, `stop` commands) |
//! | `peers` | the other nodes as this node reaches them: `name`, `index`, `address`, `peer_port`, `client_port` |
//! | `cluster` | every node, this one included, as everyone names it (for shared membership lists) |
//! | `nodes` | the cluster size |
//! | `options.NAME` | the run's options (`--set NAME=VALUE`, else the defaults) |
//! | `bug` | the planted bug switched on, or `""` |
//! | `fissure` | Fissure's binary on the node |
//!
//! Tera's loops and filters build cluster-wide strings, e.g. etcd's initial cluster:
//! `{% for n in cluster %}{{ n.name }}=http://{{ n.address }}:{{ n.peer_port }}{% if not loop.last %},{% endif %}{% endfor %}`.

use super::TargetDef;
use serde::Serialize;
use std::collections::BTreeMap;

/// One node as a template sees it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeValues {
    pub name: String,
    pub index: usize,
    pub address: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub listen_client: String,
    pub listen_peer: String,
    pub data_dir: String,
    pub log_file: String,
    pub pid_file: String,
    pub dir: String,
}

/// Another node, as seen from the node being rendered (or by everyone, in `cluster`).
#[derive(Clone, Debug, Serialize)]
pub struct PeerValues {
    pub name: String,
    pub index: usize,
    pub address: String,
    pub peer_port: u16,
    pub client_port: u16,
}

/// Everything a node's templates see.
#[derive(Clone, Debug, Serialize)]
pub struct Context {
    pub node: NodeValues,
    pub peers: Vec<PeerValues>,
    pub cluster: Vec<PeerValues>,
    pub nodes: usize,
    pub options: BTreeMap<String, String>,
    pub bug: String,
    pub fissure: String,
}

/// Renders `text` for one node. Errors say what Tera found (an unknown variable, a bad tag),
/// with the template's own line.
pub fn render(text: &str, context: &Context) -> anyhow::Result<String> {
    let context = tera::Context::from_serialize(context)
        .map_err(|e| anyhow::anyhow!("cannot build the template context: {e}"))?;
    tera::Tera::one_off(text, &context, false).map_err(|e| anyhow::anyhow!("{}", explain(&e)))
}

/// Tera's error and its causes in one line (the useful part is usually the innermost cause).
fn explain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.retain(|p| !p.starts_with("Failed to render '__tera_one_off'"));
    parts.join(": ").replace('\n', " ")
}

/// Splits a rendered command line into words the way a POSIX shell would, for targets started
/// without a shell.
pub fn words(command: &str) -> anyhow::Result<Vec<String>> {
    shell_words::split(command).map_err(|e| anyhow::anyhow!("cannot split {command:?}: {e}"))
}

/// Where one node is, for rendering: its name, the address the others use, the address to bind.
#[derive(Clone, Debug)]
pub struct Placement {
    pub address: String,
    pub bind: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub dir: String,
}

impl Context {
    /// Node `me`'s (0-based) context in a cluster placed as `placements` (in node order; node
    /// `i` is `n{i+1}`), everyone reaching everyone at their own addresses.
    pub fn for_node(
        placements: &[Placement],
        me: usize,
        options: &BTreeMap<String, String>,
        bug: Option<&str>,
        fissure: &str,
    ) -> Context {
        let cluster: Vec<PeerValues> = (placements.iter().enumerate())
            .map(|(i, p)| PeerValues {
                name: format!("n{}", i + 1),
                index: i + 1,
                address: p.address.clone(),
                peer_port: p.peer_port,
                client_port: p.client_port,
            })
            .collect();
        let place = &placements[me];
        let peers = (cluster.iter().enumerate())
            .filter(|(i, _)| *i != me)
            .map(|(_, p)| p.clone())
            .collect();
        Context {
            node: NodeValues {
                name: format!("n{}", me + 1),
                index: me + 1,
                address: place.address.clone(),
                client_port: place.client_port,
                peer_port: place.peer_port,
                listen_client: format!("{}:{}", place.bind, place.client_port),
                listen_peer: format!("{}:{}", place.bind, place.peer_port),
                data_dir: format!("{}/data", place.dir),
                log_file: format!("{}/node.log", place.dir),
                pid_file: format!("{}/node.pid", place.dir),
                dir: place.dir.clone(),
            },
            peers,
            cluster,
            nodes: placements.len(),
            options: options.clone(),
            bug: bug.unwrap_or_default().to_string(),
            fissure: fissure.to_string(),
        }
    }

    /// A context for what does not depend on where nodes are (a bundled target's flags, the bank's
    /// accounts): node `me` (0-based) of `nodes`, on loopback.
    pub fn placeless(
        def: &TargetDef,
        nodes: usize,
        me: usize,
        options: &BTreeMap<String, String>,
        bug: Option<&str>,
    ) -> Context {
        let placements: Vec<Placement> = (0..nodes.max(1))
            .map(|i| Placement {
                address: "127.0.0.1".into(),
                bind: "127.0.0.1".into(),
                client_port: def.ports.client,
                peer_port: def.ports.peer,
                dir: format!("n{}", i + 1),
            })
            .collect();
        Context::for_node(
            &placements,
            me.min(nodes.max(1) - 1),
            options,
            bug,
            "fissure",
        )
    }
}

/// A context for a three-node cluster (or the target's minimum) with every option at its default:
/// what `fissure target check` renders every template with.
pub fn sample(def: &TargetDef) -> Context {
    let nodes = def.min_nodes.max(3).min(def.max_nodes);
    let cluster: Vec<PeerValues> = (1..=nodes)
        .map(|i| PeerValues {
            name: format!("n{i}"),
            index: i,
            address: format!("10.0.0.{}", i + 1),
            peer_port: def.ports.peer,
            client_port: def.ports.client,
        })
        .collect();
    let me = &cluster[0];
    Context {
        node: NodeValues {
            name: me.name.clone(),
            index: 1,
            address: me.address.clone(),
            client_port: def.ports.client,
            peer_port: def.ports.peer,
            listen_client: format!("0.0.0.0:{}", def.ports.client),
            listen_peer: format!("0.0.0.0:{}", def.ports.peer),
            data_dir: "/var/lib/fissure/data".into(),
            log_file: "/var/lib/fissure/node.log".into(),
            pid_file: "/var/lib/fissure/node.pid".into(),
            dir: "/var/lib/fissure".into(),
        },
        peers: cluster[1..].to_vec(),
        cluster: cluster.clone(),
        nodes,
        options: (def.options.iter())
            .map(|(k, o)| (k.clone(), o.default.clone()))
            .collect(),
        bug: def.bugs.first().cloned().unwrap_or_default(),
        fissure: "/usr/local/bin/fissure".into(),
    }
}
