//! Targets defined in files: what a system under test is, how it is installed, started, found,
//! faulted and read, and which client drives it (`fissure target list|show|check`).
//!
//! Every target is a TOML file. Fissure ships six (`targets/defs/`: its own raft-kv, quorum,
//! twopc and echo, and etcd and PostgreSQL from Debian's packages), and `--target path.toml` takes any other. A
//! bundled target (`bundled = "raft-kv"`) runs a mode of Fissure's own node binary, whose common
//! flags (id, listen addresses, peers, data dir) the backend adds; its file gives the rest (`args`).
//! Any other target gives its whole `start` command. Commands are Tera templates rendered per node
//! ([`template`]).
//!
//! The file also says what the target cannot take (`[limits]`: a fault and why), and whether its
//! peers can be given per-node addresses (`peer-addresses`), which link-level faults on the local
//! backend need. A run that asks for a fault its target or backend cannot do is refused before
//! anything starts ([`TargetDef::check_faults`]).

mod shipped;
pub mod template;

use anyhow::{bail, Context};
use nuclei::nemesis::FaultKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use shipped::{shipped_names, text as shipped_text};

/// A target definition, as its TOML file says it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TargetDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A mode of Fissure's own node binary (`raft-kv`, `quorum`, `twopc`, `echo`): the backend
    /// starts `fissure node <mode>` with the common flags, then `node.args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundled: Option<String>,
    #[serde(default = "one")]
    pub min_nodes: usize,
    #[serde(default = "sixty_four")]
    pub max_nodes: usize,
    /// Planted bugs `--bug` may switch on (rendered as `{{ bug }}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bugs: Vec<String>,
    /// The workloads its client can run.
    pub workloads: Vec<String>,
    /// bank workload: how many accounts (a template giving a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_accounts: Option<String>,
    /// append, wr: the consistency model the isolation checker holds this target's histories
    /// to, a template over the options (so an option choosing the isolation level a target is
    /// run at can choose what it is judged by) [default: strict-serializable].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_model: Option<String>,
    /// Whether each node may be given its own address for each peer (`per-node`), as Fissure's
    /// link proxies need, or every node must see the same peer addresses (`shared`: the peers
    /// are named in shared cluster membership, like etcd's `--initial-cluster`).
    /// Default: `per-node` for bundled targets, `shared` for any other (so that a membership
    /// list built from `cluster` is never given partitions its proxies would not cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_addresses: Option<PeerAddresses>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, OptionDef>,
    #[serde(default, skip_serializing_if = "Install::is_empty")]
    pub install: Install,
    #[serde(default)]
    pub ports: Ports,
    pub node: NodeDef,
    pub client: ClientDef,
    /// Faults this target cannot take, each with the reason (shown when a run asks for it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

fn one() -> usize {
    1
}

fn sixty_four() -> usize {
    64
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerAddresses {
    #[default]
    PerNode,
    Shared,
}

/// An option: set per run with `--set NAME=VALUE`, rendered as `{{ options.NAME }}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDef {
    pub default: String,
    /// The only values allowed, when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default)]
    pub help: String,
}

/// What a node needs before the target can start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// Debian packages: the docker backend adds them to its node image.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Files to copy onto every node (`from` relative to the target file).
    #[serde(default)]
    pub files: Vec<InstallFile>,
    /// Shell commands run once on every node after the packages and files, as root.
    #[serde(default)]
    pub commands: Vec<String>,
}

impl Install {
    fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.files.is_empty() && self.commands.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallFile {
    pub from: PathBuf,
    pub to: String,
    #[serde(default = "file_mode")]
    pub mode: String,
}

fn file_mode() -> String {
    "0644".into()
}

/// The ports the target listens on, on every node (the local backend picks free ones instead).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub client: u16,
    pub peer: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            client: 7001,
            peer: 7100,
        }
    }
}

/// How each node's target is run. Every command is a template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeDef {
    /// The daemon's command line (not for bundled targets). Fissure runs it in the background,
    /// keeps its pid, and preloads libfaketime for clock faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Bundled targets: flags after the common ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// Run once on every node after all are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Stop the target (default: SIGTERM to its pid, SIGKILL after a grace period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Crash it (default: SIGKILL to its pid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
    /// Pause and resume it (default: SIGSTOP and SIGCONT to its pid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    pub ready: Ready,
    /// Prints the names of the nodes that currently lead (one per line or comma separated), for
    /// faults aimed at `primaries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primaries: Option<String>,
    /// Files to bring back into the run's store besides the target's own output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_files: Vec<String>,
    /// Remove the target's data before a run (default: the data directory is made anew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wipe: Option<String>,
    /// How clock faults can reach it: `libfaketime` (the default: only its clock moves), or
    /// `system` for programs libfaketime cannot reach (Go reads the clock through the vDSO):
    /// their clock faults move the machine's real clock, so they need machines that own
    /// their clock (Vagrant VMs).
    #[serde(default, skip_serializing_if = "TargetClock::is_default")]
    pub clock: TargetClock,
}

/// See [`NodeDef::clock`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetClock {
    #[default]
    Libfaketime,
    System,
}

impl TargetClock {
    fn is_default(&self) -> bool {
        *self == TargetClock::Libfaketime
    }
}

/// Why a target whose clock only the machine's clock moves cannot take clock faults on
/// machines that do not own their clock.
pub fn system_clock_needed(name: &str) -> String {
    format!(
        "{name} reads the clock where libfaketime cannot (node.clock = \"system\"), so its clock \
         faults move the machine's real clock, and only VMs own theirs: use --backend vagrant \
         --provider libvirt (or virtualbox); containers and namespaces share the host's clock"
    )
}

/// When a started node counts as up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// A port that must accept connections: `client` or `peer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// A command that must exit 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// How long a node may take [default: 30s].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Which client drives the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientDef {
    /// A client built into Fissure: `fissure-node` (the bundled targets' protocol), `etcd` or
    /// `postgres`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// A program speaking the adapter protocol (docs/adapters.md), relative paths from the
    /// target file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterDef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterDef {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The built-in clients.
pub const BUILTIN_CLIENTS: &[&str] = &["fissure-node", "etcd", "postgres"];
/// The modes of Fissure's node binary.
pub const BUNDLED_MODES: &[&str] = &["raft-kv", "quorum", "twopc", "echo"];

/// A loaded target: its definition and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub def: TargetDef,
    /// The file it was read from (`None`: shipped with Fissure).
    pub file: Option<PathBuf>,
}

impl Target {
    /// A shipped target by name, or any target file by path (anything with a `/` or ending in
    /// `.toml`).
    pub fn find(name_or_path: &str) -> anyhow::Result<Target> {
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            let path = Path::new(name_or_path);
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the target file {}", path.display()))?;
            let def = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            return Ok(Target {
                def,
                file: Some(file),
            });
        }
        match shipped::text(name_or_path) {
            Some(text) => Ok(Target {
                def: parse(text)
                    .map_err(|e| anyhow::anyhow!("shipped target {name_or_path}: {e}"))?,
                file: None,
            }),
            None => bail!(
                "unknown target {name_or_path:?}: the shipped ones are {}; or give a target \
                 file's path (e.g. ./mydb.toml)",
                shipped::shipped_names().join(", ")
            ),
        }
    }

    /// The folder relative paths in the file are taken from.
    pub fn base_dir(&self) -> PathBuf {
        match &self.file {
            Some(file) => file.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => PathBuf::from("."),
        }
    }
}

/// Parses and validates a target file's text. Errors name the key and, for syntax and unknown
/// or missing keys, the line.
pub fn parse(text: &str) -> anyhow::Result<TargetDef> {
    let def: TargetDef = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim_end().to_string();
        match line {
            Some(line) => anyhow::anyhow!("line {line}: {message}"),
            None => anyhow::anyhow!("{message}"),
        }
    })?;
    def.validate()?;
    Ok(def)
}

impl TargetDef {
    /// Whether each node may be given its own address for each peer (see the field).
    pub fn peer_addresses(&self) -> PeerAddresses {
        self.peer_addresses.unwrap_or(match self.bundled {
            Some(_) => PeerAddresses::PerNode,
            None => PeerAddresses::Shared,
        })
    }

    /// Checks what the types alone do not: one way to start and one client, known names,
    /// defaults among their choices, templates that render.
    pub fn validate(&self) -> anyhow::Result<()> {
        // The name names runs and folders in the store.
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self.name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && (self.name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            bail!(
                "name: {:?}: use 1 to 40 letters, digits, '-' or '_', starting with a letter or \
                 digit (it names the runs in the store)",
                self.name
            );
        }
        if self.node.pause.is_some() != self.node.resume.is_some() {
            bail!(
                "node.pause, node.resume: give both or neither (a pause of its own needs a resume \
                 of its own, and the other way round)"
            );
        }
        match (&self.bundled, &self.node.start) {
            (Some(mode), None) => {
                if !BUNDLED_MODES.contains(&mode.as_str()) {
                    bail!(
                        "bundled: {mode:?} is not a mode of Fissure's node binary; it has {}",
                        BUNDLED_MODES.join(", ")
                    );
                }
            }
            (Some(_), Some(_)) => {
                bail!("node.start: a bundled target is started by Fissure; give node.args instead")
            }
            (None, None) => bail!("node.start: missing: the command that starts the target"),
            (None, Some(_)) if self.node.args.is_some() => {
                bail!("node.args: only for bundled targets; put the flags in node.start")
            }
            (None, Some(_)) => {}
        }
        if self.min_nodes == 0 || self.min_nodes > self.max_nodes {
            bail!(
                "min-nodes, max-nodes: need 1 <= min-nodes <= max-nodes, got {} and {}",
                self.min_nodes,
                self.max_nodes
            );
        }
        for w in &self.workloads {
            w.parse::<workloads::workload::WorkloadKind>()
                .map_err(|e| anyhow::anyhow!("workloads: {e}"))?;
        }
        if self.workloads.is_empty() {
            bail!("workloads: name at least one workload its client runs (e.g. [\"register\"])");
        }
        for (name, option) in &self.options {
            if !option.choices.is_empty() && !option.choices.contains(&option.default) {
                bail!(
                    "options.{name}.default: {:?} is not one of its choices ({})",
                    option.default,
                    option.choices.join(", ")
                );
            }
        }
        match (&self.client.builtin, &self.client.adapter) {
            (Some(b), None) if b == "fissure-node" && self.bundled.is_none() => bail!(
                "client.builtin: fissure-node speaks only to Fissure's bundled targets (`bundled = \
                 ...`); give client.adapter for a target of your own"
            ),
            (Some(b), None) if b == "etcd" => {
                if let Some(w) = (self.workloads.iter()).find(|w| *w != "register" && *w != "set") {
                    bail!("workloads: the etcd client runs register and set, not {w}");
                }
            }
            (Some(b), None) if b == "postgres" => {
                if let Some(w) = (self.workloads.iter()).find(|w| *w != "append" && *w != "wr") {
                    bail!("workloads: the postgres client runs append and wr, not {w}");
                }
            }
            (Some(b), None) if !BUILTIN_CLIENTS.contains(&b.as_str()) => bail!(
                "client.builtin: no built-in client {b:?}; there are {} (or give client.adapter)",
                BUILTIN_CLIENTS.join(", ")
            ),
            (Some(_), Some(_)) => bail!("client: give either builtin or adapter, not both"),
            (None, None) => {
                bail!("client: missing: builtin = \"...\" or adapter = {{ program = ... }}")
            }
            _ => {}
        }
        let ready = &self.node.ready;
        match (&ready.tcp, &ready.command) {
            (Some(port), None) if port != "client" && port != "peer" => {
                bail!("node.ready.tcp: {port:?}: use \"client\" or \"peer\"")
            }
            (None, None) => bail!("node.ready: give tcp = \"client\" or command = \"...\""),
            (Some(_), Some(_)) => bail!("node.ready: give tcp or command, not both"),
            _ => {}
        }
        self.ready_timeout()?;
        for fault in self.limits.keys() {
            fault
                .parse::<FaultKind>()
                .map_err(|e| anyhow::anyhow!("limits.{fault}: {e}"))?;
        }
        // Every template must render for a small cluster with every option at its default.
        let context = template::sample(self);
        for (key, text) in self.templates() {
            template::render(text, &context).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        }
        if self.consistency_model.is_some() {
            let options: BTreeMap<String, String> = (self.options.iter())
                .map(|(k, o)| (k.clone(), o.default.clone()))
                .collect();
            self.consistency_model(&options)?;
        }
        if let Some(accounts) = &self.bank_accounts {
            let rendered = template::render(accounts, &context)
                .map_err(|e| anyhow::anyhow!("bank-accounts: {e}"))?;
            rendered.trim().parse::<usize>().map_err(|_| {
                anyhow::anyhow!("bank-accounts: must give a number, gave {rendered:?}")
            })?;
        }
        Ok(())
    }

    /// Every template in the file, with its key.
    pub fn templates(&self) -> Vec<(String, &String)> {
        let n = &self.node;
        let mut all: Vec<(String, &String)> = [
            ("node.start", &n.start),
            ("node.args", &n.args),
            ("node.setup", &n.setup),
            ("node.stop", &n.stop),
            ("node.kill", &n.kill),
            ("node.pause", &n.pause),
            ("node.resume", &n.resume),
            ("node.ready.command", &n.ready.command),
            ("node.primaries", &n.primaries),
            ("node.wipe", &n.wipe),
        ]
        .into_iter()
        .filter_map(|(key, t)| t.as_ref().map(|t| (key.to_string(), t)))
        .collect();
        for (i, f) in n.log_files.iter().enumerate() {
            all.push((format!("node.log-files[{i}]"), f));
        }
        for (i, c) in self.install.commands.iter().enumerate() {
            all.push((format!("install.commands[{i}]"), c));
        }
        all
    }

    pub fn ready_timeout(&self) -> anyhow::Result<Duration> {
        match &self.node.ready.timeout {
            Some(t) => crate::spec::parse_duration(t)
                .map_err(|e| anyhow::anyhow!("node.ready.timeout: {e}")),
            None => Ok(Duration::from_secs(30)),
        }
    }

    /// The options for a run: every default, overridden by `set` (`NAME=VALUE`), each checked.
    pub fn options_for(&self, set: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
        let mut options: BTreeMap<String, String> = (self.options.iter())
            .map(|(k, o)| (k.clone(), o.default.clone()))
            .collect();
        for item in set {
            let Some((key, value)) = item.split_once('=') else {
                bail!("set: {item:?} is not NAME=VALUE");
            };
            let (key, value) = (key.trim(), value.trim());
            let Some(def) = self.options.get(key) else {
                let known: Vec<&str> = self.options.keys().map(String::as_str).collect();
                bail!(
                    "set: {} has no option {key:?}; {}",
                    self.name,
                    if known.is_empty() {
                        "it has none".to_string()
                    } else {
                        format!("it has {}", known.join(", "))
                    }
                );
            };
            if !def.choices.is_empty() && !def.choices.iter().any(|c| c == value) {
                bail!(
                    "set: {key}={value:?} is not allowed; choose one of {}",
                    def.choices.join(", ")
                );
            }
            options.insert(key.to_string(), value.to_string());
        }
        Ok(options)
    }

    pub fn check_bug(&self, bug: &str) -> anyhow::Result<()> {
        if !self.bugs.iter().any(|b| b == bug) {
            if self.bugs.is_empty() {
                bail!("{} has no planted bugs", self.name);
            }
            bail!(
                "{} has no planted bug {bug:?}; it has {}",
                self.name,
                self.bugs.join(", ")
            );
        }
        Ok(())
    }

    pub fn check_nodes(&self, nodes: usize) -> anyhow::Result<()> {
        if nodes < self.min_nodes || nodes > self.max_nodes {
            if self.min_nodes == self.max_nodes {
                bail!(
                    "{} runs on exactly {} node(s): use --nodes {}",
                    self.name,
                    self.min_nodes,
                    self.min_nodes
                );
            }
            bail!(
                "{} runs on {} to {} nodes, not {nodes}",
                self.name,
                self.min_nodes,
                self.max_nodes
            );
        }
        Ok(())
    }

    pub fn check_workload(
        &self,
        workload: workloads::workload::WorkloadKind,
    ) -> anyhow::Result<()> {
        if !self.workloads.iter().any(|w| w == workload.name()) {
            bail!(
                "the {workload} workload cannot run on {}: its client runs {}",
                self.name,
                self.workloads.join(", ")
            );
        }
        Ok(())
    }

    /// Refuses faults the target, or the target on `backend`, cannot take; the error names each
    /// and why.
    pub fn check_faults(
        &self,
        faults: &[FaultKind],
        backend: crate::spec::BackendKind,
    ) -> anyhow::Result<()> {
        let mut refused = Vec::new();
        for fault in faults {
            if let Some(why) = self.cannot(*fault, backend) {
                refused.push(format!("{}: {why}", fault.name()));
            }
        }
        if !refused.is_empty() {
            bail!(
                "{} cannot take {}; leave {} out of --nemesis",
                self.name,
                refused.join("; "),
                if refused.len() == 1 { "it" } else { "them" }
            );
        }
        Ok(())
    }

    /// Why `fault` cannot be done to this target on `backend`, if it cannot.
    pub fn cannot(&self, fault: FaultKind, backend: crate::spec::BackendKind) -> Option<String> {
        use crate::spec::BackendKind;
        // A composed fault is refused where any of its parts is.
        let limited = std::iter::once(fault).chain(fault.parts().iter().copied());
        if let Some(why) = limited.filter_map(|f| self.limits.get(f.name())).next() {
            return Some(why.clone());
        }
        let link_level =
            fault.cuts_links() || matches!(fault, FaultKind::Latency | FaultKind::Loss);
        if fault.skews_clocks()
            && self.node.clock == TargetClock::System
            && backend != BackendKind::Vagrant
        {
            return Some(system_clock_needed(&self.name));
        }
        match backend {
            BackendKind::Local if link_level && self.peer_addresses() == PeerAddresses::Shared => {
                Some(
                    "the local backend cuts links with a proxy per pair of nodes, and this \
                     target's peers must all see the same addresses (peer-addresses = \"shared\"); \
                     use --backend docker"
                        .into(),
                )
            }
            _ => None,
        }
    }

    /// A bundled target's flags for node `me` (0-based) of `nodes`, after the common ones.
    pub fn bundled_args(
        &self,
        nodes: usize,
        me: usize,
        options: &BTreeMap<String, String>,
        bug: Option<&str>,
    ) -> anyhow::Result<Vec<String>> {
        let Some(args) = &self.node.args else {
            return Ok(Vec::new());
        };
        let context = template::Context::placeless(self, nodes, me, options, bug);
        let rendered = template::render(args, &context)
            .map_err(|e| anyhow::anyhow!("{}: node.args: {e}", self.name))?;
        template::words(&rendered).map_err(|e| anyhow::anyhow!("{}: node.args: {e}", self.name))
    }

    /// The bank workload's accounts on a cluster of `nodes`: `a0`, `a1`, ... (five unless the
    /// file says otherwise).
    pub fn bank_accounts(
        &self,
        nodes: usize,
        options: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<String>> {
        let count = match &self.bank_accounts {
            Some(t) => {
                let context = template::Context::placeless(self, nodes, 0, options, None);
                let rendered = template::render(t, &context)
                    .map_err(|e| anyhow::anyhow!("{}: bank-accounts: {e}", self.name))?;
                rendered.trim().parse::<usize>().map_err(|_| {
                    anyhow::anyhow!(
                        "{}: bank-accounts gave {rendered:?}, not a number",
                        self.name
                    )
                })?
            }
            None => 5,
        };
        Ok((0..count.max(1)).map(|i| format!("a{i}")).collect())
    }

    /// The consistency model its transactional histories are held to, with `options` (see the
    /// field).
    pub fn consistency_model(
        &self,
        options: &BTreeMap<String, String>,
    ) -> anyhow::Result<checkers::txn::ConsistencyModel> {
        let Some(t) = &self.consistency_model else {
            return Ok(checkers::txn::ConsistencyModel::StrictSerializable);
        };
        let context = template::Context::placeless(self, 1, 0, options, None);
        let rendered =
            template::render(t, &context).map_err(|e| anyhow::anyhow!("consistency-model: {e}"))?;
        parse_consistency_model(&rendered).map_err(|e| anyhow::anyhow!("consistency-model: {e}"))
    }

    /// The template that finds primaries, if the target has one or is bundled (bundled nodes
    /// answer a status request).
    pub fn knows_primaries(&self) -> bool {
        self.bundled.is_some() || self.node.primaries.is_some()
    }
}

/// A consistency model by the name the isolation checker gives it (`strict-serializable`,
/// `serializable`, `snapshot-isolation`, `repeatable-read`, `read-committed`, Elle's aliases
/// such as `PL-2`, ...).
pub fn parse_consistency_model(name: &str) -> Result<checkers::txn::ConsistencyModel, String> {
    name.trim().parse()
}

#[cfg(test)]
mod tests;
