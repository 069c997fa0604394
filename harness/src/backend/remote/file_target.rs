//! A target defined by its own commands (a target file with `node.start`) on SSH nodes: its
//! commands rendered for each node, with the nodes' real addresses, and what starting, finding
//! and reading it takes. Bundled targets go through [`super::setup::NodeLayout`] instead.

use super::setup::{DATA_DIR, NODE_LOG};
use crate::target::template::{self, Context, Placement};
use crate::target::TargetDef;
use nuclei::ssh_faults::commands::{shell_quote, NODE_DIR};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How long a primaries command may take on one node.
pub const PRIMARIES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A target file's target, as a run sets it up.
#[derive(Clone, Debug)]
pub struct FileTarget {
    pub def: TargetDef,
    pub options: BTreeMap<String, String>,
    pub bug: Option<String>,
    /// Where the file's relative paths (install files) start.
    pub base_dir: PathBuf,
}

/// One node's rendered commands.
#[derive(Clone, Debug)]
pub struct NodeCommands {
    pub start: String,
    pub ready: Ready,
    pub setup: Option<String>,
    pub primaries: Option<String>,
    pub wipe: Option<String>,
    /// The target's own kill, pause, resume and stop commands, by name (uploaded as hooks).
    pub hooks: Vec<(&'static str, String)>,
    pub install: Vec<String>,
    pub log_files: Vec<String>,
}

/// How to tell a started node is up.
#[derive(Clone, Debug)]
pub enum Ready {
    /// This port accepts connections on the node's address.
    Tcp(u16),
    /// This command exits 0 on the node.
    Command(String),
}

impl FileTarget {
    /// Node `me`'s commands on nodes at `ips` (in node order), all listening on the file's ports.
    pub fn render(&self, ips: &[String], me: usize, fissure: &str) -> anyhow::Result<NodeCommands> {
        let def = &self.def;
        let placements: Vec<Placement> = ips
            .iter()
            .map(|ip| Placement {
                address: ip.clone(),
                bind: "0.0.0.0".into(),
                client_port: def.ports.client,
                peer_port: def.ports.peer,
                dir: NODE_DIR.into(),
            })
            .collect();
        let mut context =
            Context::for_node(&placements, me, &self.options, self.bug.as_deref(), fissure);
        context.node.data_dir = DATA_DIR.into();
        context.node.log_file = NODE_LOG.into();
        context.node.pid_file = nuclei::ssh_faults::commands::PID_FILE.into();
        self.render_in(&context)
    }

    /// The commands in a prepared context (the local backend makes its own: loopback ports,
    /// peers through its link proxies).
    pub fn render_in(&self, context: &Context) -> anyhow::Result<NodeCommands> {
        let def = &self.def;
        let render = |key: &str, text: &String| {
            template::render(text, context)
                .map(|t| one_line(&t))
                .map_err(|e| anyhow::anyhow!("{}: {key}: {e}", def.name))
        };
        let optional = |key: &str, text: &Option<String>| -> anyhow::Result<Option<String>> {
            text.as_ref().map(|t| render(key, t)).transpose()
        };
        let start = match &def.node.start {
            Some(start) => render("node.start", start)?,
            None => anyhow::bail!("{}: node.start: missing", def.name),
        };
        let ready = match (&def.node.ready.tcp, &def.node.ready.command) {
            (_, Some(command)) => Ready::Command(render("node.ready.command", command)?),
            (Some(port), None) if port == "peer" => Ready::Tcp(def.ports.peer),
            _ => Ready::Tcp(def.ports.client),
        };
        Ok(NodeCommands {
            start,
            ready,
            setup: optional("node.setup", &def.node.setup)?,
            primaries: optional("node.primaries", &def.node.primaries)?,
            wipe: optional("node.wipe", &def.node.wipe)?,
            hooks: [
                ("kill", &def.node.kill),
                ("pause", &def.node.pause),
                ("resume", &def.node.resume),
                ("stop", &def.node.stop),
            ]
            .into_iter()
            .filter_map(|(name, text)| {
                optional(&format!("node.{name}"), text)
                    .transpose()
                    .map(|r| r.map(|t| (name, t)))
            })
            .collect::<anyhow::Result<_>>()?,
            install: (def.install.commands.iter().enumerate())
                .map(|(i, c)| render(&format!("install.commands[{i}]"), c))
                .collect::<anyhow::Result<_>>()?,
            log_files: (def.node.log_files.iter().enumerate())
                .map(|(i, f)| render(&format!("node.log-files[{i}]"), f))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// A multi-line command from a TOML string as one shell line (continuations need no `\`).
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts `start` in the background under libfaketime, as the bundled targets are, keeping its
/// pid: `exec` makes the pid the target's own, so signals reach it and not a shell.
pub fn launch_script(node: &str, start: &str) -> String {
    super::setup::launch_script_for(
        node,
        &format!("sh -c {}", shell_quote(&format!("exec {start}"))),
    )
}

/// A command that succeeds once `port` accepts connections on this node (bash's /dev/tcp would
/// need bash; the image has a shell and procps, so look for a listening socket instead).
pub fn port_listening(port: u16) -> String {
    format!(
        "awk '$2 ~ /:{port:04X}$/ && $4 == \"0A\" {{ found = 1 }} END {{ exit !found }}' \
         /proc/net/tcp /proc/net/tcp6"
    )
}

/// Node names out of a primaries command's output: one per line or comma separated.
pub fn parse_primaries(output: &str, nodes: &[String]) -> Vec<String> {
    output
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|name| nodes.iter().any(|n| n == name))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    #[test]
    fn etcd_renders_with_the_nodes_addresses() {
        let def = Target::find("etcd").unwrap().def;
        let target = FileTarget {
            options: def.options_for(&[]).unwrap(),
            def,
            bug: None,
            base_dir: ".".into(),
        };
        let ips: Vec<String> = (1..=3).map(|i| format!("10.9.0.{i}")).collect();
        let n2 = target.render(&ips, 1, "/opt/fissure").unwrap();
        assert!(
            n2.start.starts_with("/usr/bin/etcd --name n2 "),
            "{}",
            n2.start
        );
        assert!(n2
            .start
            .contains("--advertise-client-urls http://10.9.0.2:2379"));
        assert!(n2.start.contains(
            "--initial-cluster n1=http://10.9.0.1:2380,n2=http://10.9.0.2:2380,n3=http://10.9.0.3:2380"
        ));
        assert!(n2.start.contains(&format!("--data-dir {DATA_DIR}")));
        assert!(matches!(n2.ready, Ready::Tcp(2379)));
        let script = launch_script("n2", &n2.start);
        assert!(
            script.contains("sh -c 'exec /usr/bin/etcd --name n2"),
            "{script}"
        );
        assert!(n2.primaries.unwrap().contains("print \"n2\""));
    }

    #[test]
    fn primaries_are_read_leniently() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        assert_eq!(parse_primaries("n2\n", &nodes), ["n2"]);
        assert_eq!(parse_primaries("n1, n3", &nodes), ["n1", "n3"]);
        assert!(parse_primaries("leader unknown", &nodes).is_empty());
    }

    #[test]
    fn the_port_check_looks_in_hex() {
        assert!(port_listening(2379).contains(":094B$/"));
    }
}
