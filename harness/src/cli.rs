//! Command-line definitions (DESIGN.md §8).

use crate::sizes::ByteSize;
use checkers::formats::Format;
use checkers::{FailureSemantics, ModelKind};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "fissure",
    version,
    about = "Finds consistency bugs in distributed systems: runs tests under faults and checks their histories.",
    after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown, 3 error, 4 valid but a declared \
                  service level was breached (run and check)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test: bring up a cluster, drive clients and faults, record, heal, check, store.
    Run(Box<RunArgs>),
    /// Check a recorded history for linearizability.
    Check(CheckArgs),
    /// Rewrite a history in another format: EDN for Knossos or Elle, or Fissure's jsonl.
    Convert(ConvertArgs),
    /// Run a campaign: a matrix of runs from a TOML file, each with an expectation.
    Campaign(CampaignArgs),
    /// Merge the stores of a sharded campaign's shards into one store, index and JUnit file.
    Merge(MergeArgs),
    /// Write a run's report.html from its stored files (and refresh the store's index.html).
    Report(ReportArgs),
    /// Serve a store's reports over HTTP.
    Serve(ServeArgs),
    /// Manage clusters that outlive one run: up, down, status.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Undo every fault a cluster's ledger lists (after a crashed or killed controller):
    /// removes Fissure's iptables chains and netem, resumes paused targets, resets clocks,
    /// restarts killed targets.
    Heal(HealArgs),
    /// Check what a backend needs and print which faults will work, with the fix for each.
    Doctor(DoctorArgs),
    /// Targets: list the shipped ones, print one, or check a target file.
    Target {
        #[command(subcommand)]
        action: TargetAction,
    },
    /// The docker backend's node image.
    Image {
        #[command(subcommand)]
        action: ImageAction,
    },
    /// Run one node of a bundled system under test (what the local backend starts; the same as
    /// the `fissure-node` binary).
    #[command(hide = true)]
    Node {
        #[command(subcommand)]
        node: Box<targets::cli::NodeCli>,
    },
    /// Run a node's link daemon: link proxies steered by a faults file (latency without netem).
    #[command(hide = true)]
    Links {
        /// The proxies to run (JSON: {"links":[{"name","listen","upstream"}]}).
        #[arg(long)]
        config: PathBuf,
        /// The faults in force, re-read while running.
        #[arg(long)]
        faults: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 every run met its expectation, 1 some missed, 3 error.")]
pub struct CampaignArgs {
    /// The campaign file (e.g. campaigns/smoke.toml).
    pub file: PathBuf,
    /// Runs at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Also write a JUnit XML file here (one test case per run).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Store every run here instead of where the campaign says.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// List the runs the campaign expands to, and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only the K-th of N slices of the campaign (e.g. 2/3): the same slices on every
    /// machine, balanced by expected duration. Merge the shards' stores with `fissure merge`.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<crate::campaign::shard::Shard>,
    /// With --shard: runs without a seed in the campaign file get one derived from this salt
    /// (e.g. the date or the CI pipeline's id) rather than a random one, so every shard expands
    /// the campaign alike [default: "" (the same seeds every time)].
    #[arg(long, requires = "shard")]
    pub seed_salt: Option<String>,
}

fn parse_shard(s: &str) -> Result<crate::campaign::shard::Shard, String> {
    s.parse()
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 every run met its expectation, 1 some missed, 3 error \
                        (a shard missing or given twice, campaigns that differ, a file conflict)."
)]
pub struct MergeArgs {
    /// The shards' stores (each written by `fissure campaign --shard K/N`).
    #[arg(required = true)]
    pub stores: Vec<PathBuf>,
    /// The store to merge into (created if missing; may be one of the shards' stores).
    #[arg(long)]
    pub into: PathBuf,
    /// Also write the combined JUnit XML file here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory (store/<test>/<stamp>), or with --index a store.
    pub dir: PathBuf,
    /// Rewrite the store's index.html only.
    #[arg(long)]
    pub index: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Where to listen; loopback by default (anything else is reachable from other machines).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
}

#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Start a cluster and wait until every node answers SSH: containers on a network of their
    /// own (docker), hosts you name (ssh: Fissure installs what it needs there), or Vagrant
    /// machines (vagrant).
    Up {
        /// The cluster's name: containers are <name>-n1, <name>-n2, ...
        #[arg(default_value = "fissure")]
        name: String,
        #[arg(long, default_value = "docker")]
        backend: String,
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Make the node image with this target's packages (a shipped name or a target file),
        /// so that runs of it can use the cluster.
        #[arg(long)]
        target: Option<String>,
        /// ssh: the hosts, comma separated, each `[user@]host[:port][=peer-address]`.
        #[arg(long, value_delimiter = ',')]
        hosts: Option<Vec<String>>,
        /// ssh: a hosts file instead of --hosts.
        #[arg(long)]
        hosts_file: Option<PathBuf>,
        /// ssh: the private key that logs in to the hosts.
        #[arg(long)]
        ssh_key: Option<PathBuf>,
        /// vagrant: the Vagrantfile's folder [default: one per cluster in the state directory].
        #[arg(long)]
        vagrant_dir: Option<PathBuf>,
        /// vagrant: docker, libvirt or virtualbox.
        #[arg(long, default_value = "docker")]
        provider: String,
        /// vagrant: the box (libvirt, virtualbox) or image (docker) [default:
        /// $FISSURE_VAGRANT_BOX, else debian/bookworm64; Fissure's node image].
        #[arg(long)]
        vagrant_box: Option<String>,
    },
    /// Remove a cluster: its containers, network and state (key, pinned host keys, ledger).
    Down {
        #[arg(default_value = "fissure")]
        name: String,
        #[arg(long, default_value = "docker")]
        backend: String,
        /// Even while a run is using it; ssh: forget hosts that no longer answer.
        #[arg(long)]
        force: bool,
    },
    /// Show clusters: nodes, containers, SSH, and faults their ledgers say are in force.
    Status {
        /// One cluster [default: all].
        name: Option<String>,
        #[arg(long, default_value = "docker")]
        backend: String,
    },
}

#[derive(Debug, Args)]
pub struct HealArgs {
    /// The cluster to heal [default: every known cluster].
    pub cluster: Option<String>,
    /// Even while a run is using it (that run's faults are undone under it).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The backend to check: local, docker, ssh or vagrant.
    #[arg(long, default_value = "local")]
    pub backend: String,
    /// docker, ssh: check this cluster's nodes [default: docker makes a probe container for
    /// the check; ssh checks --hosts].
    #[arg(long)]
    pub cluster: Option<String>,
    /// ssh: the hosts to check, as `fissure run --hosts` takes them.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Option<Vec<String>>,
    /// ssh: a hosts file instead of --hosts.
    #[arg(long)]
    pub hosts_file: Option<std::path::PathBuf>,
    /// ssh: the private key that logs in to the hosts.
    #[arg(long)]
    pub ssh_key: Option<std::path::PathBuf>,
    /// vagrant: the provider to check (docker, libvirt, virtualbox).
    #[arg(long, default_value = "docker")]
    pub provider: String,
}

#[derive(Debug, Subcommand)]
pub enum TargetAction {
    /// The shipped targets, with what each runs.
    List,
    /// Print a target's file (a shipped name or a path).
    Show { target: String },
    /// Check a target file: its keys, templates and options. Exit 3 on an error naming the key.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ImageAction {
    /// Build the node image now, even if it is cached, and print its reference.
    Build,
    /// Build the node image only if it is not cached, and print its reference.
    Ensure,
    /// Print the reference of the node image for this recipe (built or not).
    Name,
}

/// `fissure run` (DESIGN.md §8). Every setting may also come from `--spec file.toml` (same names,
/// e.g. `time-limit = "30s"`); flags override the file.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown, 3 error, 4 valid but a \
declared SLO was breached. Results go to <store>/<name>/<stamp>/ (and <store>/latest)."
)]
pub struct RunArgs {
    /// Read settings from a TOML file, or rerun a stored run (its directory or test.json).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Print the schedule this seed gives (client operations and faults) and exit, without
    /// starting anything.
    #[arg(long)]
    pub plan: bool,
    /// With --plan: how many client operations to print.
    #[arg(long, default_value_t = 200, requires = "plan")]
    pub plan_ops: u64,
    #[command(flatten)]
    pub settings: crate::spec::SpecFile,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A history file in any format `check` reads, or a stored run directory.
    pub history: PathBuf,

    /// The output format: edn (Jepsen, Knossos, Elle) or jsonl (Fissure).
    #[arg(long, value_enum)]
    pub to: OutputFormat,

    /// The input's format [default: guessed from the file].
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,

    /// Write here instead of to standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OutputFormat {
    Edn,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A history file (jsonl, Jepsen/Knossos/Elle EDN, elle-cli JSON, Porcupine etcd log or kv
    /// lines), or a stored run directory holding history.jsonl. Transactional histories (Elle's
    /// list-append, rw-register) are checked for isolation anomalies.
    pub history: PathBuf,

    /// The model to check against [default: the format's convention, else guessed from the
    /// functions used]. One of: register, cas-register, kv, multi-register, set, counter, mutex,
    /// queue.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<ModelKind>,

    /// The history's format [default: guessed from the file]. One of: jsonl, edn, porcupine-etcd,
    /// porcupine-kv, elle-json.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,

    /// The model's initial value, as JSON (a bare word is taken as a string); for multi-register
    /// also a map of each register's value, e.g. '{"x":0,"y":0}' (others start at null)
    /// [default: the source's convention: Knossos registers 0, Porcupine etcd null, Porcupine kv
    /// ""].
    #[arg(long, allow_hyphen_values = true)]
    pub init: Option<String>,

    /// What a `fail` completion means: did-not-happen (Jepsen, Knossos) or observed (Porcupine: it
    /// ran and failed, e.g. a CAS whose compare failed) [default: the format's convention].
    #[arg(long, value_parser = parse_failures)]
    pub fail_means: Option<FailureSemantics>,

    /// Check a keyed model's history whole instead of key by key.
    #[arg(long)]
    pub no_split: bool,

    /// Give up with verdict `unknown` after this long (e.g. 30s, 5m; 0 for no limit).
    #[arg(long, default_value = "10m", value_parser = crate::spec::parse_duration)]
    pub time_limit: Duration,

    /// Give up with verdict `unknown` when the search's memory reaches this (e.g. 512MiB, 4GiB)
    /// [default: half of this machine's memory].
    #[arg(long)]
    pub memory_limit: Option<ByteSize>,

    /// Do not shrink an invalid history to a smaller failing sub-history.
    #[arg(long)]
    pub no_shrink: bool,

    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub isolation: IsolationArgs,
}

/// How `fissure check` reads a transactional (Elle) history. A history of `txn` operations is
/// checked for isolation anomalies rather than linearizability.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IsolationArgs {
    /// The transactional workload: list-append or rw-register [default: guessed from the
    /// micro-ops: appends mean list-append, writes rw-register].
    #[arg(long, value_parser = parse_txn_workload)]
    pub workload: Option<checkers::txn::TxnWorkload>,

    /// The consistency model whose anomalies make the history invalid: read-uncommitted,
    /// read-committed, repeatable-read, snapshot-isolation, serializable, strict-serializable,
    /// strong-session-* ... [default: strict-serializable].
    #[arg(long, value_parser = crate::target::parse_consistency_model)]
    pub consistency_model: Option<checkers::txn::ConsistencyModel>,

    /// rw-register: every key is linearizable, so real-time order gives each key's version order.
    #[arg(long)]
    pub linearizable_keys: bool,

    /// rw-register: every key is sequentially consistent, so process order gives version order.
    #[arg(long)]
    pub sequential_keys: bool,

    /// rw-register: a transaction's write of a key it read follows the version it read.
    #[arg(long)]
    pub wfr_keys: bool,
}

impl IsolationArgs {
    /// True if any option asks for an isolation check.
    pub fn any(&self) -> bool {
        self.workload.is_some()
            || self.consistency_model.is_some()
            || self.linearizable_keys
            || self.sequential_keys
            || self.wfr_keys
    }
}

fn parse_txn_workload(s: &str) -> Result<checkers::txn::TxnWorkload, String> {
    s.parse()
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_failures(s: &str) -> Result<FailureSemantics, String> {
    s.parse()
}
