//! Linearizability checking (DESIGN.md §4).
//!
//! The history is split into independent partitions (one per key, by P-compositionality: a history
//! is linearizable iff each key's sub-history is), each partition is searched with Wing–Gong–Lowe
//! (see [`search`]), and partitions run in parallel with rayon. The verdict is `invalid` as soon as
//! one partition is, `unknown` if a time or memory budget ran out first, and `valid` otherwise.

mod budget;
mod counterexample;
mod schedule;
mod search;
mod sequential;

pub use budget::{Abort, Progress};
pub use counterexample::Counterexample;
use counterexample::ShrinkBudget;

use crate::history::{Operation, Outcome};
use crate::model::{
    Counter, FailureSemantics, FifoQueue, KeyValue, KeyValueByKey, Model, ModelError, ModelKind,
    MultiRegister, Mutex, Register, SetModel,
};
use budget::Budget;
use rustc_hash::FxHashMap;
use schedule::run_in_rounds;
use search::SearchOp;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How to check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub failures: FailureSemantics,
    /// Split a keyed model's history by key (always done for models of a single object).
    pub split_by_key: bool,
    /// Give up with `unknown` after this long.
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` when the search's estimated memory reaches this many bytes.
    pub memory_limit: Option<u64>,
    /// Shrink an invalid partition to a small failing sub-history (bounded in time).
    pub shrink: bool,
    pub progress: Arc<Progress>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            failures: FailureSemantics::DidNotHappen,
            split_by_key: true,
            time_limit: None,
            memory_limit: None,
            shrink: true,
            progress: Arc::default(),
        }
    }
}

/// The three verdicts. Serialized as `true`, `false` and `"unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Verdict::Valid => s.serialize_bool(true),
            Verdict::Invalid => s.serialize_bool(false),
            Verdict::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Verdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Verdict::Valid),
            serde_json::Value::Bool(false) => Ok(Verdict::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Verdict::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "a verdict is true, false or \"unknown\", not {other}"
            ))),
        }
    }
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Search effort, summed over partitions.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stats {
    pub steps: u64,
    pub configurations: u64,
    pub states: u64,
}

/// What the linearizability checker found.
#[derive(Clone, Debug, Serialize)]
pub struct LinearizabilityResult {
    pub valid: Verdict,
    pub model: String,
    /// Client operations in the history.
    pub ops: usize,
    /// Operations the search had to place (failed ops and unknown reads need no place).
    pub checked_ops: usize,
    pub partitions: usize,
    pub split_by_key: bool,
    pub failures: FailureSemantics,
    /// Why the verdict is invalid or unknown, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Something a reader should know about a verdict that is not a failure (e.g. that the history
    /// had no client operation at all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    pub stats: Stats,
    /// Time to the verdict: partitioning and searching.
    pub check_ms: f64,
    /// Time spent after the verdict building the counterexample, shrinking included (bounded by a
    /// small multiple of the check's own effort).
    pub shrink_ms: f64,
}

/// A history the checker cannot start on.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("initial value for the {model} model: {message}")]
    Init {
        model: &'static str,
        message: String,
    },
}

/// Starts the thread pool that the search's later rounds use, on a thread of its own, so that a
/// caller about to check a large history does not wait for it after the first round.
pub fn warm_up() {
    std::thread::spawn(rayon::current_num_threads);
}

/// Checks `ops` against the built-in model `kind` starting from `init` (`null`: the model's
/// natural default).
pub fn check_model(
    kind: ModelKind,
    init: &Value,
    ops: &[Operation],
    options: &CheckOptions,
) -> Result<LinearizabilityResult, CheckError> {
    let bad_init = |message: String| CheckError::Init {
        model: kind.name(),
        message,
    };
    Ok(match kind {
        ModelKind::Register => check(&Register::new(init), ops, options)?,
        ModelKind::CasRegister => check(&Register::with_cas(init), ops, options)?,
        // Split by key, each partition is one key: its state need not be a map.
        ModelKind::KeyValue if options.split_by_key => {
            check(&KeyValueByKey::new(init), ops, options)?
        }
        ModelKind::KeyValue => check(&KeyValue::new(init), ops, options)?,
        ModelKind::MultiRegister => {
            check(&MultiRegister::new(init).map_err(bad_init)?, ops, options)?
        }
        ModelKind::Set => check(&SetModel::new(init).map_err(bad_init)?, ops, options)?,
        ModelKind::Counter => check(&Counter::new(init).map_err(bad_init)?, ops, options)?,
        ModelKind::Mutex => check(&Mutex::new(init).map_err(bad_init)?, ops, options)?,
        ModelKind::Queue => check(&FifoQueue::new(init).map_err(bad_init)?, ops, options)?,
    })
}

/// One independently checkable part of the history.
pub(crate) struct Partition<O> {
    pub(crate) key: Option<Value>,
    /// Indices into the history's operations, parallel to `ops`.
    pub(crate) sources: Vec<usize>,
    pub(crate) ops: Vec<SearchOp<O>>,
}

/// A finished partition: its index and outcome.
pub(crate) type Finished<S> = (usize, PartitionOutcome<S>);

pub(crate) enum PartitionOutcome<S> {
    Valid,
    Invalid(Box<search::Stuck<S>>),
    Aborted,
}

/// Checks `ops` (from [`crate::history::History::operations`]) against any model.
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation],
    options: &CheckOptions,
) -> Result<LinearizabilityResult, ModelError> {
    let started = Instant::now();
    let split = options.split_by_key || !model.keyed();
    let partitions = partition(model, ops, options.failures, split)?;
    let checked_ops = partitions.iter().map(|p| p.ops.len()).sum();
    let budget = Budget::new(
        options.time_limit,
        options.memory_limit,
        options.progress.clone(),
    );
    let progress = &options.progress;
    progress
        .partitions_total
        .store(partitions.len(), Ordering::Relaxed);
    progress.partitions_done.store(0, Ordering::Relaxed);

    let (outcomes, search_stats) = run_in_rounds(model, &partitions, &budget);
    let stats = Stats {
        steps: search_stats.steps,
        configurations: search_stats.configurations,
        states: search_stats.states,
    };
    // Report the first invalid partition in key order. (When several keys are invalid, which ones
    // finish before the others are cancelled can vary from run to run.)
    let invalid = outcomes.iter().find_map(|(i, outcome)| match outcome {
        PartitionOutcome::Invalid(stuck) => Some((*i, stuck)),
        _ => None,
    });
    let aborted = outcomes.len() < partitions.len()
        || outcomes
            .iter()
            .any(|(_, o)| matches!(o, PartitionOutcome::Aborted));

    // The verdict is in: what follows (the counterexample, and shrinking it) is timed apart.
    let check_time = started.elapsed();
    let explaining = Instant::now();
    let (valid, reason, counterexample) = if let Some((i, stuck)) = invalid {
        let partition = &partitions[i];
        let shrink_budget = options
            .shrink
            .then(|| shrink_time(check_time, budget.remaining()))
            .flatten()
            .map(|time| ShrinkBudget::after_check(stats.steps, time));
        let cx = counterexample::build(
            model,
            ops,
            partition,
            stuck,
            shrink_budget,
            options.memory_limit,
        );
        (Verdict::Invalid, Some(cx.summary()), Some(cx))
    } else if aborted {
        let why = budget
            .abort_reason()
            .map_or_else(|| "the search was cancelled".to_string(), |a| a.to_string());
        let done = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, PartitionOutcome::Valid))
            .count();
        let reason = format!(
            "{why} before the search finished ({done} of {} partitions proven linearizable)",
            partitions.len()
        );
        (Verdict::Unknown, Some(reason), None)
    } else {
        (Verdict::Valid, None, None)
    };

    // Knossos' convention: a history of nemesis entries alone is linearizable, vacuously.
    let note = ops.is_empty().then(|| {
        "the history has no client operation: there is nothing to place, so it is linearizable \
         (vacuously)"
            .to_string()
    });
    Ok(LinearizabilityResult {
        valid,
        model: model.name().to_string(),
        ops: ops.len(),
        checked_ops,
        partitions: partitions.len(),
        split_by_key: split,
        failures: options.failures,
        reason,
        note,
        counterexample,
        stats,
        check_ms: check_time.as_secs_f64() * 1e3,
        shrink_ms: explaining.elapsed().as_secs_f64() * 1e3,
    })
}

/// Shrinking is a courtesy: besides its step budget it gets at most four times the check's own time
/// (at least a millisecond), never more than two seconds, and never more than half of the time left.
fn shrink_time(check: Duration, remaining: Option<Duration>) -> Option<Duration> {
    let cap = (check * 4).clamp(Duration::from_millis(1), Duration::from_secs(2));
    match remaining {
        None => Some(cap),
        Some(left) if left < Duration::from_millis(20) => None,
        Some(left) => Some(cap.min(left / 2)),
    }
}

/// Drops operations that need no place in a linearization, compiles the rest, and groups them.
fn partition<M: Model>(
    model: &M,
    ops: &[Operation],
    failures: FailureSemantics,
    split: bool,
) -> Result<Vec<Partition<M::Op>>, ModelError> {
    /// Groups sort as their keys' JSON text would (strings first), without writing that text for
    /// the common case of string keys.
    #[derive(PartialEq, Eq, PartialOrd, Ord, Hash)]
    enum GroupKey<'a> {
        Whole,
        Str(&'a str),
        Other(String),
    }
    // First each operation's group and each group's size, so that every partition is allocated
    // once at its size (a check of a small history is mostly such overheads).
    let mut groups: FxHashMap<GroupKey, (usize, usize)> =
        FxHashMap::with_capacity_and_hasher(ops.len().min(64), Default::default());
    let mut group_of = Vec::with_capacity(ops.len());
    for op in ops {
        let key = match (&op.key, split) {
            (Some(Value::String(key)), true) => GroupKey::Str(key),
            (Some(key), true) => GroupKey::Other(key.to_string()),
            _ => GroupKey::Whole,
        };
        let next_id = groups.len();
        let (id, size) = groups.entry(key).or_insert((next_id, 0));
        *size += 1;
        group_of.push(*id);
    }
    let mut sorted: Vec<(GroupKey, (usize, usize))> = groups.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut partitions: Vec<Partition<M::Op>> = Vec::with_capacity(sorted.len());
    let mut slot_of_id = vec![0; sorted.len()];
    for (slot, (_, (id, size))) in sorted.into_iter().enumerate() {
        slot_of_id[id] = slot;
        partitions.push(Partition {
            key: None,
            sources: Vec::with_capacity(size),
            ops: Vec::with_capacity(size),
        });
    }
    for (index, (op, id)) in ops.iter().zip(group_of).enumerate() {
        let group = &mut partitions[slot_of_id[id]];
        if split && group.key.is_none() {
            group.key.clone_from(&op.key);
        }
        if op.outcome == Outcome::Fail && failures == FailureSemantics::DidNotHappen {
            continue;
        }
        let compiled = model.prepare(op)?;
        // An indeterminate operation that changes nothing may as well never have happened.
        if op.outcome == Outcome::Info && model.is_read_only(&compiled) {
            continue;
        }
        group.sources.push(index);
        group.ops.push(SearchOp {
            op: compiled,
            call: op.call,
            ret: match op.outcome {
                Outcome::Info => None,
                _ => op.ret,
            },
        });
    }
    // A group whose every operation needs no place is no partition.
    partitions.retain(|p| !p.ops.is_empty());
    Ok(partitions)
}
