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
    after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown, 3 error."
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
    /// Run one node of a bundled system under test (what the local backend starts; the same as
    /// the `fissure-node` binary).
    #[command(hide = true)]
    Node {
        #[command(subcommand)]
        node: targets::cli::NodeCli,
    },
}

/// `fissure run` (DESIGN.md §8). Every setting may also come from `--spec file.toml` (same names,
/// e.g. `time-limit = "30s"`); flags override the file.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown, 3 error. \
Results go to <store>/<name>/<stamp>/ (and <store>/latest).")]
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
    /// The system under test: raft-kv, quorum, twopc or echo [default: raft-kv].
    #[arg(long)]
    pub target: Option<String>,
    /// register, bank or set [default: register].
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults, comma separated: partition, kill, pause, clock, latency, loss; or none
    /// [default: partition,kill].
    #[arg(long, value_delimiter = ',')]
    pub nemesis: Option<Vec<String>>,
    /// Where nodes run [default: local].
    #[arg(long)]
    pub backend: Option<String>,
    /// Cluster size [default: 5].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// How long faults and clients run (then heal, recovery, final reads) [default: 30s].
    #[arg(long, value_parser = crate::spec::parse_duration)]
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
    /// The test's name in the store [default: <target>-<workload>].
    #[arg(long)]
    pub name: Option<String>,
    /// Time between a fault's start and stop, and between faults [default: 5s].
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub nemesis_interval: Option<Duration>,
    /// Which nodes faults aim at, comma separated: one, minority, majority, all, primaries.
    #[arg(long, value_delimiter = ',')]
    pub nemesis_targets: Option<Vec<String>>,
    /// Partition shapes, comma separated: halves, random-halves, majorities-ring, bridge,
    /// isolate-one, isolate-primary [default: all].
    #[arg(long, value_delimiter = ',')]
    pub partitions: Option<Vec<String>>,
    /// Added latency of the latency fault.
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub latency: Option<Duration>,
    /// Jitter of the latency fault (uniform ±).
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub jitter: Option<Duration>,
    /// Share of packets the loss fault loses (0 to 1).
    #[arg(long)]
    pub loss: Option<f64>,
    /// How long clients go on after everything is healed [default: 3s].
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub recovery: Option<Duration>,
    /// A client operation with no answer after this long is `info` [default: 3s].
    #[arg(long, value_parser = crate::spec::parse_duration)]
    pub op_timeout: Option<Duration>,
    /// register: keys written at once.
    #[arg(long)]
    pub keys_per_window: Option<usize>,
    /// register: operations per key before a fresh key replaces it.
    #[arg(long)]
    pub ops_per_key: Option<u64>,
    /// Where runs are stored [default: store].
    #[arg(long)]
    pub store: Option<PathBuf>,
}

impl RunArgs {
    /// The settings these flags give (unset flags stay unset, so a spec file can give them).
    pub fn to_spec_file(&self) -> crate::spec::SpecFile {
        crate::spec::SpecFile {
            name: self.name.clone(),
            target: self.target.clone(),
            workload: self.workload.clone(),
            nemesis: self.nemesis.clone(),
            backend: self.backend.clone(),
            nodes: self.nodes,
            time_limit: self.time_limit,
            concurrency: self.concurrency,
            rate: self.rate,
            seed: self.seed,
            bug: self.bug.clone(),
            nemesis_interval: self.nemesis_interval,
            nemesis_targets: self.nemesis_targets.clone(),
            partitions: self.partitions.clone(),
            latency: self.latency,
            jitter: self.jitter,
            loss: self.loss,
            recovery: self.recovery,
            op_timeout: self.op_timeout,
            keys_per_window: self.keys_per_window,
            ops_per_key: self.ops_per_key,
            store: self.store.clone(),
        }
    }
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
    /// A history file (jsonl, Jepsen/Knossos EDN, Porcupine etcd log or kv lines), or a stored run
    /// directory holding history.jsonl.
    pub history: PathBuf,

    /// The model to check against [default: the format's convention, else guessed from the
    /// functions used]. One of: register, cas-register, kv, multi-register, set, counter, mutex,
    /// queue.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<ModelKind>,

    /// The history's format [default: guessed from the file]. One of: jsonl, edn, porcupine-etcd,
    /// porcupine-kv.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,

    /// The model's initial value, as JSON (a bare word is taken as a string) [default: the
    /// source's convention: Knossos registers 0, Porcupine etcd null, Porcupine kv ""].
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
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
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

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::spec::parse_duration(s)
}
