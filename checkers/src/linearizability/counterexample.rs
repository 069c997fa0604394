//! Counterexamples for invalid verdicts, and their shrinking.
//!
//! Shrinking removes only read-only operations (reads, failed or no-op operations). That is what
//! makes it sound: dropping a read from a linearizable history leaves it linearizable, so a
//! sub-history that is still not linearizable after dropping reads proves the original wrong too.
//! Dropping writes could manufacture violations the system never committed (a read of a value whose
//! write was removed), so writes always stay.

use super::budget::{Budget, Progress};
use super::search::{self, SearchOp, SearchResult, SearchStats, Stuck};
use super::Partition;
use crate::history::Operation;
use crate::model::Model;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Shrinking may take this many search steps for every step the check itself took: a counterexample
/// should never cost much more than the verdict.
const SHRINK_STEPS_PER_CHECK_STEP: u64 = 2;
/// ...and at least this many, so that a check that found its violation at once still gets a few
/// trials (about a millisecond's work).
const MIN_SHRINK_STEPS: u64 = 4096;
/// Shrunk sub-histories are reported only up to this size; larger ones are no easier to read.
const MAX_MINIMAL_OPS: usize = 256;
/// How many operations of the linearized prefix are reported in full.
const PREFIX_TAIL: usize = 32;

/// Evidence that a history is not linearizable, from its first failing partition.
#[derive(Clone, Debug, Serialize)]
pub struct Counterexample {
    /// The partition's key (`null` when the history was checked whole).
    pub key: Option<Value>,
    /// Operations in the failing partition.
    pub partition_ops: usize,
    /// The longest linearizable prefix found, as operation ids in linearization order.
    pub prefix: Vec<usize>,
    /// The last operations of that prefix in full, for display.
    pub prefix_tail: Vec<Operation>,
    /// The operation that could not be placed: its completion came before any legal point for it.
    pub unplaceable: Vec<Operation>,
    /// Other operations still open at that point: what could have gone next.
    pub pending: Vec<Operation>,
    /// Model states in which that operation was found not to fit, at the end of prefixes as long
    /// as the longest (a sample: at most 8).
    pub states_before: Vec<Value>,
    /// A smaller sub-history that is still not linearizable (reads removed), if shrinking helped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimal: Option<Vec<Operation>>,
}

impl Counterexample {
    /// One sentence for summaries and reports.
    pub fn summary(&self) -> String {
        let op = &self.unplaceable[0];
        let key = match &self.key {
            Some(k) => format!(" on key {k}"),
            None => String::new(),
        };
        let input = if op.input.is_null() {
            String::new()
        } else {
            format!(" {}", op.input)
        };
        let mut states = self
            .states_before
            .first()
            .map_or_else(String::new, |s| truncate(&s.to_string(), 120));
        if self.states_before.len() > 1 {
            states.push_str(&format!(
                " (or {} other states tried)",
                self.states_before.len() - 1
            ));
        }
        format!(
            "{}{input} {}{key} by process {} (invoked at index {}) cannot be linearized: the \
             longest linearizable prefix found has {} operations and leaves the model in state \
             {states}, where it does not fit",
            op.f,
            describe_outcome(op),
            op.process,
            op.invoke_index,
            self.prefix.len(),
        )
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn describe_outcome(op: &Operation) -> String {
    match op.outcome {
        crate::history::Outcome::Ok => format!("returning {}", op.output),
        crate::history::Outcome::Fail => "failing".to_string(),
        crate::history::Outcome::Info => "with unknown result".to_string(),
    }
}

pub(super) fn build<M: Model>(
    model: &M,
    ops: &[Operation],
    partition: &Partition<M::Op>,
    stuck: &Stuck<M::State>,
    shrink_budget: Option<ShrinkBudget>,
    memory_limit: Option<u64>,
) -> Counterexample {
    let source = |local: u32| &ops[partition.sources[local as usize]];
    let prefix: Vec<usize> = stuck.prefix.iter().map(|&i| source(i).id).collect();
    let tail_start = stuck.prefix.len().saturating_sub(PREFIX_TAIL);
    Counterexample {
        key: partition.key.clone(),
        partition_ops: partition.ops.len(),
        prefix,
        prefix_tail: stuck.prefix[tail_start..]
            .iter()
            .map(|&i| source(i).clone())
            .collect(),
        unplaceable: vec![source(stuck.blocked).clone()],
        pending: stuck.pending.iter().map(|&i| source(i).clone()).collect(),
        states_before: stuck
            .states
            .iter()
            .map(|s| model.describe_state(s))
            .collect(),
        minimal: shrink_budget
            .and_then(|budget| shrink(model, &partition.ops, budget, memory_limit))
            .filter(|kept| kept.len() <= MAX_MINIMAL_OPS)
            .map(|kept| kept.into_iter().map(|i| source(i as u32).clone()).collect()),
    }
}

/// What shrinking may spend: a bound in search steps (so the same history shrinks the same way on
/// any machine) and one in time (so a slow model cannot make it long).
#[derive(Clone, Copy, Debug)]
pub(super) struct ShrinkBudget {
    pub steps: u64,
    pub time: Duration,
}

impl ShrinkBudget {
    /// A budget proportional to what the check itself spent.
    pub(super) fn after_check(check_steps: u64, time: Duration) -> ShrinkBudget {
        ShrinkBudget {
            steps: check_steps
                .saturating_mul(SHRINK_STEPS_PER_CHECK_STEP)
                .max(MIN_SHRINK_STEPS),
            time,
        }
    }
}

/// Delta debugging over the partition's read-only operations. Returns the local indices of the
/// operations kept, or `None` when nothing could be removed.
fn shrink<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    limits: ShrinkBudget,
    memory_limit: Option<u64>,
) -> Option<Vec<usize>> {
    let budget = Budget::new(
        Some(limits.time),
        memory_limit,
        Arc::new(Progress::default()),
    );
    let mut spent = SearchStats::default();
    let mut keep = vec![true; ops.len()];
    let mut candidates: Vec<usize> = (0..ops.len())
        .filter(|&i| model.is_read_only(&ops[i].op))
        .collect();
    let mut removed_any = false;
    let mut chunks = 2usize;
    'outer: while !candidates.is_empty() {
        let size = candidates.len().div_ceil(chunks);
        for start in (0..candidates.len()).step_by(size) {
            let chunk = &candidates[start..(start + size).min(candidates.len())];
            chunk.iter().for_each(|&i| keep[i] = false);
            let trial: Vec<SearchOp<M::Op>> = (0..ops.len())
                .filter(|&i| keep[i])
                .map(|i| ops[i].clone())
                .collect();
            let left = limits.steps.saturating_sub(spent.steps);
            match search::search(model, &trial, &budget, left, &mut spent) {
                Some(SearchResult::NotLinearizable(_)) => {
                    removed_any = true;
                    candidates.drain(start..(start + size).min(candidates.len()));
                    chunks = (chunks - 1).max(2);
                    continue 'outer;
                }
                Some(SearchResult::Linearizable) => chunk.iter().for_each(|&i| keep[i] = true),
                Some(SearchResult::Aborted) | None => {
                    chunk.iter().for_each(|&i| keep[i] = true);
                    break 'outer;
                }
            }
        }
        if chunks >= candidates.len() {
            break;
        }
        chunks = (chunks * 2).min(candidates.len());
    }
    removed_any.then(|| (0..ops.len()).filter(|&i| keep[i]).collect())
}
