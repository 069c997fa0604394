//! What one test run is (DESIGN.md §8): the `fissure run` flags, also readable from a TOML file
//! (`--spec file.toml`, flags override), resolved into a [`RunSpec`] with every default filled in.
//!
//! The resolved spec is stored in the run's `test.json` with the same keys as the TOML file, so
//! `fissure run --spec <run-dir>` reruns a stored test exactly, seed included.

mod text;

pub use text::{format_duration, parse_duration};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Every setting of a run, as the `fissure run` flags or a TOML spec file give them; `None`
/// means "not said here". TOML keys are the flag names without the dashes (`time-limit = "30s"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SpecFile {
    /// The test's name in the store [default: <target>-<workload>].
    #[arg(long)]
    pub name: Option<String>,
    /// The system under test: a shipped target (raft-kv, quorum, twopc, echo, etcd: see
    /// `fissure target list`) or a target file's path [default: raft-kv].
    #[arg(long)]
    pub target: Option<String>,
    /// A target option, NAME=VALUE (repeatable; see `fissure target show TARGET`).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    #[serde(default, deserialize_with = "text::list_opt")]
    pub set: Option<Vec<String>>,
    /// Target options as a table (spec and campaign files: `[options]` or
    /// `options = { reads = "serializable" }`); `set` and `--set` win over it.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<std::collections::BTreeMap<String, String>>,
    /// register, bank, set, counter, append or wr [default: register; bank on twopc].
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults, comma separated: partition, kill, pause, clock, latency, loss, suspend; or none
    /// [default: partition,kill].
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "text::list_opt")]
    pub nemesis: Option<Vec<String>>,
    /// Where nodes run: local, docker, ssh (--hosts), vagrant, or none (a system you already
    /// run, at --endpoints: clients only, no faults) [default: local].
    #[arg(long)]
    pub backend: Option<String>,
    /// --backend none: the nodes' client addresses, comma separated (host:port).
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "text::list_opt")]
    pub endpoints: Option<Vec<String>>,
    /// docker, ssh, vagrant: run on this cluster (from `fissure cluster up`) instead of one
    /// made for the run and removed after it.
    #[arg(long)]
    pub cluster: Option<String>,
    /// --backend ssh: the hosts, comma separated, each `[user@]host[:port][=peer-address]`
    /// (user root and port 22 by default; the peer address where the other nodes reach it,
    /// when not the SSH host).
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "text::list_opt")]
    pub hosts: Option<Vec<String>>,
    /// --backend ssh: a hosts file (TOML, `[[host]] ssh = "user@host:port"`, optional `peer`
    /// and `key`) instead of --hosts.
    #[arg(long)]
    pub hosts_file: Option<PathBuf>,
    /// --backend ssh: the private key that logs in to every host (its path is recorded, never
    /// the key).
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// --backend vagrant: the folder of the Vagrantfile [default: one per cluster in
    /// Fissure's state directory].
    #[arg(long)]
    pub vagrant_dir: Option<PathBuf>,
    /// --backend vagrant: docker, libvirt or virtualbox [default: docker].
    #[arg(long)]
    pub provider: Option<String>,
    /// --backend vagrant: the box of libvirt and VirtualBox machines, or the image of docker
    /// ones [default: $FISSURE_VAGRANT_BOX, else debian/bookworm64; Fissure's node image].
    #[arg(long)]
    pub vagrant_box: Option<String>,
    /// Cluster size [default: 5, or the nearest size the target runs on: 1 for postgres and
    /// echo].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// How long faults and clients run (then heal, recovery, final reads) [default: 30s].
    #[arg(long, value_parser = parse_duration)]
    #[serde(default, with = "text::duration_opt")]
    pub time_limit: Option<Duration>,
    /// Client processes [default: 10].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Client operations per second, all processes together [default: 100].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of every random choice (operations and faults) [default: random, recorded].
    #[arg(long)]
    pub seed: Option<u64>,
    /// A planted bug to switch on in the target.
    #[arg(long)]
    pub bug: Option<String>,
    /// Time between a fault's start and stop, and between faults [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    #[serde(default, with = "text::duration_opt")]
    pub nemesis_interval: Option<Duration>,
    /// Which nodes faults aim at, comma separated: one, minority, majority, all, primaries
    /// [default: those of one, minority, majority, primaries that fit the cluster].
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "text::list_opt")]
    pub nemesis_targets: Option<Vec<String>>,
    /// Partition shapes, comma separated: halves, random-halves, majorities-ring, bridge,
    /// isolate-one, isolate-primary [default: all that fit the cluster].
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "text::list_opt")]
    pub partitions: Option<Vec<String>>,
    /// Added latency of the latency fault [default: 100ms].
    #[arg(long, value_parser = parse_duration)]
    #[serde(default, with = "text::duration_opt")]
    pub latency: Option<Duration>,
    /// Jitter of the latency fault, uniform ± [default: 50ms].
    #[arg(long, value_parser = parse_duration)]
    #[serde(default, with = "text::duration_opt")]
    pub jitter: Option<Duration>,
    /// Share of packets the loss fault loses, 0 to 1 [default: 0.2].
    #[arg(long)]
    pub loss: Option<f64>,
    /// How long clients go on after everything is healed [default: 3s].
    #[arg(long, value_parser = parse_duration)]
    #[serde(default, with = "text::duration_opt")]
    pub recovery: Option<Duration>,
    /// A client operation with no answer after this long is `info` [default: 3s].
    #[arg(long, value_parser = parse_duration)]
    #[serde(default, with = "text::duration_opt")]
    pub op_timeout: Option<Duration>,
    /// register: keys written at once [default: 4].
    #[arg(long)]
    pub keys_per_window: Option<usize>,
    /// register: operations per key before a fresh key replaces it [default: 100].
    #[arg(long)]
    pub ops_per_key: Option<u64>,
    /// append, wr: the consistency model the isolation checker holds the history to
    /// (strict-serializable, serializable, snapshot-isolation, repeatable-read, read-committed,
    /// ...) [default: the target's `consistency-model`, else strict-serializable].
    #[arg(long)]
    pub consistency_model: Option<String>,
    /// Where runs are stored [default: store].
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Service levels the run must keep (spec and campaign files only): `[slo] p99_ms = 250,
    /// availability = 0.99, max_recovery_s = 10, max_error_rate = 0.01`, per operation kind
    /// under `[slo.ops.read]`. A breach fails the run's SLO verdict (exit code 4 when it is
    /// otherwise valid).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<checkers::SloSpec>,
}

impl SpecFile {
    /// Reads a TOML spec, or a stored run's spec (a run directory or its `test.json`).
    pub fn load(path: &Path) -> anyhow::Result<SpecFile> {
        let file = if path.is_dir() {
            path.join("test.json")
        } else {
            path.to_path_buf()
        };
        let shown = file.display();
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("cannot read spec {shown}"))?;
        if file.extension().is_some_and(|e| e == "json") {
            #[derive(Deserialize)]
            struct Stored {
                spec: SpecFile,
            }
            let stored: Stored = serde_json::from_str(&text)
                .with_context(|| format!("{shown}: not a stored run's test.json"))?;
            return Ok(stored.spec);
        }
        SpecFile::from_toml(&text).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
    }

    /// Reads a TOML spec from its text (what [`SpecFile::load`] does with a `.toml` file).
    pub fn from_toml(text: &str) -> anyhow::Result<SpecFile> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// `self` with every setting `over` gives replaced (flags override the file).
    pub fn overridden_by(self, over: SpecFile) -> SpecFile {
        // Options add up, key by key: this file's table and list, then the other's (a later
        // NAME wins). Another target drops this file's options: they were the old target's.
        let other_target = over.target.is_some() && over.target != self.target;
        let mut set = Vec::new();
        if !other_target {
            set.extend(table_as_set(self.options.as_ref()));
            set.extend(self.set.iter().flatten().cloned());
        }
        set.extend(table_as_set(over.options.as_ref()));
        set.extend(over.set.iter().flatten().cloned());
        let given = self.set.is_some() || self.options.is_some();
        let given = (given && !other_target) || over.set.is_some() || over.options.is_some();
        let mut merged = self.pick_over(over);
        merged.set = given.then_some(set);
        merged.options = None;
        merged
    }

    fn pick_over(self, over: SpecFile) -> SpecFile {
        macro_rules! pick {
            ($($field:ident),*) => { SpecFile { $($field: over.$field.or(self.$field)),* } };
        }
        pick!(
            name,
            target,
            set,
            options,
            endpoints,
            workload,
            nemesis,
            backend,
            cluster,
            hosts,
            hosts_file,
            ssh_key,
            vagrant_dir,
            provider,
            vagrant_box,
            nodes,
            time_limit,
            concurrency,
            rate,
            seed,
            bug,
            nemesis_interval,
            nemesis_targets,
            partitions,
            latency,
            jitter,
            loss,
            recovery,
            op_timeout,
            keys_per_window,
            ops_per_key,
            consistency_model,
            store,
            slo
        )
    }
}

/// Where the nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `fissure node` processes on loopback, links through Fissure's proxies.
    Local,
    /// A container per node, controlled over SSH.
    Docker,
    /// Hosts that exist already, over SSH (`--hosts` or `--hosts-file`).
    Ssh,
    /// Vagrant machines (`vagrant/Vagrantfile`), then driven as SSH hosts.
    Vagrant,
    /// A system the user already runs, at `--endpoints`: clients only, no faults.
    None,
}

impl BackendKind {
    /// Whether nodes are reached over SSH (and so heal, ledgers and `fissure cluster` apply).
    pub fn over_ssh(self) -> bool {
        matches!(
            self,
            BackendKind::Docker | BackendKind::Ssh | BackendKind::Vagrant
        )
    }
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
            BackendKind::Ssh => "ssh",
            BackendKind::Vagrant => "vagrant",
            BackendKind::None => "none",
        }
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(BackendKind::Local),
            "docker" => Ok(BackendKind::Docker),
            "ssh" => Ok(BackendKind::Ssh),
            "vagrant" => Ok(BackendKind::Vagrant),
            "none" => Ok(BackendKind::None),
            other => Err(format!(
                "unknown backend {other:?}; use local, docker, ssh, vagrant, or none (an \
                 existing system)"
            )),
        }
    }
}

/// A fully resolved run: every default filled in and every value checked.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// The test's name in the store (`store/<name>/<stamp>/`).
    pub name: String,
    /// A shipped target's name, or a target file's absolute path.
    pub target: String,
    /// `--backend none`: the client addresses of a system already running.
    pub endpoints: Vec<String>,
    /// The target's definition, as its file says.
    pub def: crate::target::TargetDef,
    /// The folder the target file's relative paths start from.
    pub target_dir: PathBuf,
    /// The target's options, every one given (defaults filled in).
    pub options: std::collections::BTreeMap<String, String>,
    /// The bank workload's accounts on this target and cluster.
    pub accounts: Vec<String>,
    pub workload: workloads::workload::WorkloadKind,
    pub nemesis: Vec<nuclei::nemesis::FaultKind>,
    pub backend: BackendKind,
    /// docker, ssh, vagrant: an existing cluster to run on (else one is made for the run).
    pub cluster: Option<String>,
    /// ssh: the hosts as given (`--hosts`), a hosts file, the key for all.
    pub hosts: Vec<String>,
    pub hosts_file: Option<PathBuf>,
    pub ssh_key: Option<PathBuf>,
    /// ssh: the hosts, resolved (empty on an existing cluster).
    pub ssh_hosts: Vec<crate::backend::ssh::HostSpec>,
    /// vagrant: the Vagrantfile's folder (else one per cluster in the state directory).
    pub vagrant_dir: Option<PathBuf>,
    /// vagrant: docker, libvirt or virtualbox.
    pub provider: String,
    /// vagrant: the box or image, if not the default.
    pub vagrant_box: Option<String>,
    pub nodes: usize,
    pub time_limit: Duration,
    pub concurrency: usize,
    /// Total client operations per second (all processes together).
    pub rate: f64,
    pub seed: u64,
    pub bug: Option<String>,
    pub nemesis_interval: Duration,
    pub nemesis_targets: Vec<nuclei::nemesis::Target>,
    pub partitions: Vec<nuclei::nemesis::PartitionKind>,
    pub latency: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// How long clients keep going after everything is healed, before the final reads.
    pub recovery: Duration,
    /// A client gives up on an operation after this long (it becomes `info`).
    pub op_timeout: Duration,
    pub keys_per_window: usize,
    pub ops_per_key: u64,
    /// append, wr: what the isolation checker holds the history to.
    pub consistency_model: checkers::txn::ConsistencyModel,
    pub store: PathBuf,
    /// Service levels to check (none: no SLO verdict).
    pub slo: Option<checkers::SloSpec>,
}

/// Bounds that keep every time computation of a run far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
const MIN_RATE: f64 = 0.01;
const MAX_RATE: f64 = 10_000_000.0;

/// The defaults: a meaningful half-minute test of raft-kv under partitions and crashes.
pub mod defaults {
    use std::time::Duration;
    pub const TARGET: &str = "raft-kv";
    /// (twopc's is `bank`: it only moves money.)
    pub const WORKLOAD: &str = "register";
    pub const NEMESIS: &[&str] = &["partition", "kill"];
    pub const NODES: usize = 5;
    pub const TIME_LIMIT: Duration = Duration::from_secs(30);
    pub const CONCURRENCY: usize = 10;
    pub const RATE: f64 = 100.0;
    pub const NEMESIS_INTERVAL: Duration = Duration::from_secs(5);
    pub const RECOVERY: Duration = Duration::from_secs(3);
    pub const OP_TIMEOUT: Duration = Duration::from_secs(3);
    pub const STORE: &str = "store";
}

impl SpecFile {
    /// `--hosts` (with `--ssh-key`) or `--hosts-file`, resolved; only `--backend ssh` takes
    /// them, and it needs them unless it runs on an existing cluster.
    pub(crate) fn ssh_hosts(
        &self,
        backend: BackendKind,
    ) -> anyhow::Result<Vec<crate::backend::ssh::HostSpec>> {
        use crate::backend::ssh::hosts;
        let given = self.hosts.is_some() || self.hosts_file.is_some() || self.ssh_key.is_some();
        if backend != BackendKind::Ssh {
            if given {
                bail!("hosts, hosts-file, ssh-key: only for --backend ssh");
            }
            return Ok(Vec::new());
        }
        let key = self.ssh_key.as_deref().map(|k| {
            hosts::expand_home(k).unwrap_or_else(|| {
                std::env::current_dir()
                    .map(|dir| dir.join(k))
                    .unwrap_or_else(|_| k.to_path_buf())
            })
        });
        match (&self.hosts, &self.hosts_file, &self.cluster) {
            (Some(_), Some(_), _) => bail!("hosts, hosts-file: give one of them, not both"),
            (Some(list), None, None) => {
                let Some(key) = key else {
                    bail!("ssh-key: --hosts needs the private key that logs in, e.g. --ssh-key ~/.ssh/id_ed25519");
                };
                hosts::parse_list(&list.join(","), &key)
                    .map_err(|e| anyhow::anyhow!("hosts: {e:#}"))
            }
            (None, Some(file), None) => hosts::read_file(file, key.as_deref())
                .map_err(|e| anyhow::anyhow!("hosts-file: {e:#}")),
            (None, None, None) => bail!(
                "hosts: --backend ssh needs the hosts (--hosts root@10.0.0.1,admin@10.0.0.2:2222 \
                 --ssh-key KEY, or --hosts-file FILE), or --cluster NAME from `fissure cluster up \
                 --backend ssh`"
            ),
            (_, _, Some(_)) if self.hosts.is_some() || self.hosts_file.is_some() => bail!(
                "hosts: --cluster already names the hosts; leave --hosts and --hosts-file out"
            ),
            (_, _, Some(_)) => Ok(Vec::new()),
        }
    }

    /// Fills in defaults and checks every value; errors name the setting (`--nodes` /
    /// `nodes`). A missing seed is drawn at random (and stored, so the run can be repeated).
    pub fn resolve(&self) -> anyhow::Result<RunSpec> {
        use nuclei::nemesis::NemesisConfig;
        let nemesis_defaults = NemesisConfig::default();
        let target = self.target.clone().unwrap_or(defaults::TARGET.into());
        let found =
            crate::target::Target::find(&target).map_err(|e| anyhow::anyhow!("target: {e:#}"))?;
        // A file is remembered by its absolute path, so the stored spec reruns from anywhere.
        let target = match &found.file {
            Some(file) => file.display().to_string(),
            None => target,
        };
        let def = &found.def;
        let workload: workloads::workload::WorkloadKind = self
            .workload
            .as_deref()
            .unwrap_or_else(|| {
                if def.workloads.iter().any(|w| w == defaults::WORKLOAD) {
                    defaults::WORKLOAD
                } else {
                    def.workloads[0].as_str()
                }
            })
            .parse()
            .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
        def.check_workload(workload)
            .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
        let mut set: Vec<String> = (self.options.iter().flatten())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        set.extend(self.set.iter().flatten().cloned());
        let options = def.options_for(&set).map_err(|e| anyhow::anyhow!("{e}"))?;
        let backend: BackendKind = self
            .backend
            .as_deref()
            .unwrap_or("local")
            .parse()
            .map_err(|e| anyhow::anyhow!("backend: {e}"))?;
        let nemesis = match &self.nemesis {
            Some(list) => parse_list(list, "nemesis")?,
            // An existing system is not Fissure's to break.
            None if backend == BackendKind::None => Vec::new(),
            // The default faults, less those this target cannot take here (asked for by name,
            // they are refused below, with the reason).
            None => parse_list(defaults::NEMESIS, "nemesis")?
                .into_iter()
                .filter(|f| def.cannot(*f, backend).is_none())
                .collect(),
        };
        let endpoints = self.endpoints.clone().unwrap_or_default();
        match backend {
            BackendKind::None if endpoints.is_empty() => bail!(
                "endpoints: --backend none needs the nodes' client addresses, e.g. \
                 --endpoints 10.0.0.1:2379,10.0.0.2:2379"
            ),
            BackendKind::None if !nemesis.is_empty() => bail!(
                "nemesis: --backend none makes no faults (the system is not Fissure's to break); \
                 use --nemesis none"
            ),
            BackendKind::None => {
                for e in &endpoints {
                    if e.rsplit_once(':')
                        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
                    {
                        bail!("endpoints: {e:?} is not host:port");
                    }
                }
            }
            _ if !endpoints.is_empty() => {
                bail!("endpoints: only for --backend none (a system you already run)")
            }
            _ => {}
        }
        if let Some(cluster) = &self.cluster {
            if !backend.over_ssh() {
                bail!(
                    "cluster: --cluster names a cluster from `fissure cluster up`; add --backend \
                     docker, ssh or vagrant"
                );
            }
            crate::backend::state::check_name(cluster)
                .map_err(|e| anyhow::anyhow!("cluster: {e}"))?;
        }
        let ssh_hosts = self.ssh_hosts(backend)?;
        let provider = self.provider.clone().unwrap_or_else(|| "docker".into());
        if backend == BackendKind::Vagrant {
            if !["docker", "libvirt", "virtualbox"].contains(&provider.as_str()) {
                bail!("provider: {provider:?} is not docker, libvirt or virtualbox");
            }
        } else if self.provider.is_some()
            || self.vagrant_dir.is_some()
            || self.vagrant_box.is_some()
        {
            bail!("provider, vagrant-dir, vagrant-box: only for --backend vagrant");
        }
        // On an existing cluster, the run uses all of its nodes unless told otherwise.
        let nodes = match (self.nodes, &self.cluster) {
            (Some(nodes), None) if !ssh_hosts.is_empty() && nodes != ssh_hosts.len() => bail!(
                "nodes: --nodes {nodes} but {} hosts; leave --nodes out",
                ssh_hosts.len()
            ),
            (None, None) if !ssh_hosts.is_empty() => ssh_hosts.len(),
            (Some(nodes), _) if backend == BackendKind::None && nodes != endpoints.len() => bail!(
                "nodes: --nodes {nodes} but {} endpoints; leave --nodes out",
                endpoints.len()
            ),
            _ if backend == BackendKind::None => endpoints.len(),
            (Some(nodes), _) => nodes,
            (None, Some(cluster)) => crate::backend::state::ClusterState::load(cluster)
                .map_err(|e| anyhow::anyhow!("cluster: {e:#}"))?
                .nodes
                .len(),
            (None, None) => defaults::NODES.clamp(def.min_nodes, def.max_nodes),
        };
        def.check_nodes(nodes)
            .map_err(|e| anyhow::anyhow!("nodes: {e}"))?;
        if let Some(bug) = &self.bug {
            def.check_bug(bug)
                .map_err(|e| anyhow::anyhow!("bug: {e}"))?;
        }
        def.check_faults(&nemesis, backend)
            .map_err(|e| anyhow::anyhow!("nemesis: {e}"))?;
        if backend == BackendKind::Vagrant
            && nemesis.iter().any(|f| f.skews_clocks())
            && def.node.clock == crate::target::TargetClock::System
        {
            let own_clocks = match &self.cluster {
                Some(cluster) => {
                    crate::backend::state::ClusterState::load(cluster)
                        .map_err(|e| anyhow::anyhow!("cluster: {e:#}"))?
                        .own_clocks
                }
                None => provider != "docker",
            };
            if !own_clocks {
                bail!(
                    "nemesis: clock: {}",
                    crate::target::system_clock_needed(&def.name)
                );
            }
        }
        let accounts = def
            .bank_accounts(nodes, &options)
            .map_err(|e| anyhow::anyhow!("target: {e}"))?;
        let time_limit = self.time_limit.unwrap_or(defaults::TIME_LIMIT);
        if time_limit.is_zero() {
            bail!("time-limit: must be more than 0 (e.g. 30s)");
        }
        let concurrency = self.concurrency.unwrap_or(defaults::CONCURRENCY);
        if !(1..=10_000).contains(&concurrency) {
            bail!("concurrency: must be between 1 and 10000, got {concurrency}");
        }
        let rate = self.rate.unwrap_or(defaults::RATE);
        if !(rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate)) {
            bail!(
                "rate: must be between {MIN_RATE} and {MAX_RATE} operations per second, got {rate}"
            );
        }
        let nemesis_interval = self.nemesis_interval.unwrap_or(defaults::NEMESIS_INTERVAL);
        if nemesis_interval.is_zero() {
            bail!("nemesis-interval: must be more than 0 (e.g. 5s)");
        }
        let loss = self.loss.unwrap_or(nemesis_defaults.loss);
        if !(0.0..=1.0).contains(&loss) {
            bail!("loss: must be a share between 0 and 1, got {loss}");
        }
        let op_timeout = self.op_timeout.unwrap_or(defaults::OP_TIMEOUT);
        if op_timeout.is_zero() {
            bail!("op-timeout: must be more than 0 (e.g. 3s)");
        }
        let keys_per_window = self.keys_per_window.unwrap_or(4);
        let ops_per_key = self.ops_per_key.unwrap_or(100);
        if !(1..=100_000).contains(&keys_per_window) || !(1..=1_000_000_000).contains(&ops_per_key)
        {
            bail!("keys-per-window (1 to 100000) and ops-per-key (1 to 10^9): out of range");
        }
        let consistency_model = match &self.consistency_model {
            Some(name) => crate::target::parse_consistency_model(name)
                .map_err(|e| anyhow::anyhow!("consistency-model: {e}"))?,
            None => def
                .consistency_model(&options)
                .map_err(|e| anyhow::anyhow!("target: {}: {e}", def.name))?,
        };
        let workload_name = workload.to_string();
        let name = match &self.name {
            Some(name) => check_name(name)?,
            None => format!("{}-{workload_name}", def.name),
        };
        let spec = RunSpec {
            name,
            endpoints,
            target,
            def: def.clone(),
            target_dir: found.base_dir(),
            options,
            accounts,
            workload,
            nemesis,
            backend,
            cluster: self.cluster.clone(),
            hosts: self.hosts.clone().unwrap_or_default(),
            hosts_file: self.hosts_file.clone(),
            ssh_key: self.ssh_key.clone(),
            ssh_hosts,
            vagrant_dir: self.vagrant_dir.clone(),
            provider,
            vagrant_box: self.vagrant_box.clone(),
            nodes,
            time_limit,
            concurrency,
            rate,
            seed: self.seed.unwrap_or_else(rand::random),
            bug: self.bug.clone(),
            nemesis_interval,
            // Defaults keep what fits the cluster; what the user asks for is checked below.
            nemesis_targets: match &self.nemesis_targets {
                Some(list) => parse_list(list, "nemesis-targets")?,
                None => (nemesis_defaults.targets.iter().copied())
                    .filter(|t| t.min_nodes() <= nodes)
                    .collect(),
            },
            partitions: match &self.partitions {
                Some(list) => parse_list(list, "partitions")?,
                None => (nemesis_defaults.partitions.iter().copied())
                    .filter(|p| p.min_nodes() <= nodes)
                    .collect(),
            },
            latency: self.latency.unwrap_or(nemesis_defaults.latency),
            jitter: self.jitter.unwrap_or(nemesis_defaults.jitter),
            loss,
            recovery: self.recovery.unwrap_or(defaults::RECOVERY),
            op_timeout,
            keys_per_window,
            ops_per_key,
            consistency_model,
            // Absolute, so that the stored spec reruns into the same store from anywhere.
            store: std::path::absolute(
                self.store
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(defaults::STORE)),
            )
            .map_err(|e| anyhow::anyhow!("store: {e}"))?,
            slo: match &self.slo {
                Some(slo) => {
                    slo.validate().map_err(anyhow::Error::msg)?;
                    (!slo.is_empty()).then(|| slo.clone())
                }
                None => None,
            },
        };
        for (setting, d) in [
            ("time-limit", spec.time_limit),
            ("nemesis-interval", spec.nemesis_interval),
            ("latency", spec.latency),
            ("jitter", spec.jitter),
            ("recovery", spec.recovery),
            ("op-timeout", spec.op_timeout),
        ] {
            if d > MAX_DURATION {
                bail!(
                    "{setting}: {} is longer than a run may be (7 days)",
                    format_duration(d)
                );
            }
        }
        if !spec.nemesis.is_empty() && spec.time_limit < 2 * spec.nemesis_interval {
            bail!(
                "time-limit: {} is too short for nemesis-interval {}: a fault starts after one \
                 interval and ends after another; use --time-limit {} or more, or a shorter \
                 --nemesis-interval",
                format_duration(spec.time_limit),
                format_duration(spec.nemesis_interval),
                format_duration(2 * spec.nemesis_interval)
            );
        }
        let wants = |kind| spec.nemesis.contains(&kind);
        if wants(nuclei::nemesis::FaultKind::Partition) && spec.partitions.is_empty() {
            if self.partitions.is_some() {
                bail!("partitions: the partition fault needs at least one partition shape");
            }
            bail!("nemesis: a partition needs at least 2 nodes; the cluster has {nodes}");
        }
        if !spec.nemesis.is_empty() {
            spec.nemesis_config()
                .validate_for_cluster(nodes)
                .map_err(|e| anyhow::anyhow!("nemesis: {e:#}"))?;
        }
        Ok(spec)
    }
}

impl RunSpec {
    /// The spec as a [`SpecFile`] with every setting given: what `test.json` stores.
    pub fn to_file(&self) -> SpecFile {
        let names = |items: &[String]| Some(items.to_vec());
        SpecFile {
            name: Some(self.name.clone()),
            target: Some(self.target.clone()),
            set: Some(
                (self.options.iter())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            options: None,
            workload: Some(self.workload.to_string()),
            nemesis: names(&strings(&self.nemesis)),
            backend: Some(self.backend.name().into()),
            endpoints: (!self.endpoints.is_empty()).then(|| self.endpoints.clone()),
            cluster: self.cluster.clone(),
            hosts: (!self.hosts.is_empty()).then(|| self.hosts.clone()),
            hosts_file: self.hosts_file.clone(),
            ssh_key: self.ssh_key.clone(),
            vagrant_dir: self.vagrant_dir.clone(),
            provider: (self.backend == BackendKind::Vagrant).then(|| self.provider.clone()),
            vagrant_box: self.vagrant_box.clone(),
            nodes: Some(self.nodes),
            time_limit: Some(self.time_limit),
            concurrency: Some(self.concurrency),
            rate: Some(self.rate),
            seed: Some(self.seed),
            bug: self.bug.clone(),
            nemesis_interval: Some(self.nemesis_interval),
            nemesis_targets: names(&strings(&self.nemesis_targets)),
            partitions: names(&strings(&self.partitions)),
            latency: Some(self.latency),
            jitter: Some(self.jitter),
            loss: Some(self.loss),
            recovery: Some(self.recovery),
            op_timeout: Some(self.op_timeout),
            keys_per_window: Some(self.keys_per_window),
            ops_per_key: Some(self.ops_per_key),
            consistency_model: serde_json::to_value(self.consistency_model)
                .ok()
                .and_then(|v| v.as_str().map(String::from)),
            store: Some(self.store.clone()),
            slo: self.slo.clone(),
        }
    }

    /// The nemesis settings for [`nuclei::nemesis`].
    pub fn nemesis_config(&self) -> nuclei::nemesis::NemesisConfig {
        nuclei::nemesis::NemesisConfig {
            faults: self.nemesis.clone(),
            interval: self.nemesis_interval,
            targets: self.nemesis_targets.clone(),
            partitions: self.partitions.clone(),
            latency: self.latency,
            jitter: self.jitter,
            loss: self.loss,
            ..Default::default()
        }
    }

    /// The workload as this target's client runs it: a bundled target's by its mode (quorum has
    /// no cas), any other's with every operation its workloads define.
    pub fn build_workload(&self) -> anyhow::Result<workloads::workload::Workload> {
        let options = self.workload_options();
        match &self.def.bundled {
            Some(mode) => workloads::workload::build(self.workload, mode, &options),
            None => workloads::workload::build_with_cas(self.workload, &options),
        }
        .map_err(anyhow::Error::msg)
    }

    /// The workload settings for [`workloads::workload`].
    pub fn workload_options(&self) -> workloads::workload::WorkloadOptions {
        workloads::workload::WorkloadOptions {
            keys_per_window: self.keys_per_window,
            ops_per_key: self.ops_per_key,
            accounts: self.accounts.clone(),
            initial_balance: self
                .options
                .get("initial-balance")
                .and_then(|b| b.parse().ok())
                .unwrap_or(workloads::workload::WorkloadOptions::default().initial_balance),
            consistency_model: self.consistency_model,
            ..Default::default()
        }
    }

    /// A command line that reruns this test exactly (same seed).
    pub fn rerun_command(&self, run_dir: &Path) -> String {
        format!("fissure run --spec {}", run_dir.display())
    }
}

/// An `[options]` table as `NAME=VALUE` items.
fn table_as_set(table: Option<&std::collections::BTreeMap<String, String>>) -> Vec<String> {
    (table.into_iter().flatten())
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn parse_list<T, S>(items: &[S], setting: &str) -> anyhow::Result<Vec<T>>
where
    T: FromStr,
    T::Err: std::fmt::Display,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    for item in items {
        let item = item.as_ref().trim();
        if item.is_empty() || item == "none" {
            continue;
        }
        out.push(
            item.parse()
                .map_err(|e| anyhow::anyhow!("{setting}: {item:?}: {e}"))?,
        );
    }
    Ok(out)
}

/// Test names become directory names: keep them to letters, digits, `-`, `_` and `.`.
fn check_name(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name != "latest"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        bail!(
            "name: {name:?} must be letters, digits, '-', '_' or '.' and not \"latest\" (it names \
             a directory)"
        );
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests;
