//! A counter's reads within bounds (Jepsen's counter checker). The counter starts at 0; `add`
//! ops carry their increment in the invocation's value (any integer, negative allowed), and ok
//! `read` ops the value read. A single counter: keys are ignored.
//!
//! For each ok read, with ops ordered by their positions in the history:
//! - an ok add that completed before the read was invoked certainly took effect (definite);
//! - an ok or info add invoked before the read completed, and not definite, may have (possible);
//! - a failed add never happened, and an add invoked after the read completed cannot count.
//!
//! The read must lie in `[lower, upper]`, where lower = definite + the negative possible
//! increments and upper = definite + the positive possible increments. Reads that are not
//! integers are bad too, as are ok or info adds whose increment is not an integer (they make
//! every bound unknown).

use crate::bank::MAX_LISTED;
use crate::{Operation, Outcome};
use serde::Serialize;
use serde_json::Value;

/// An ok read outside its bounds, or not an integer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BadCounterRead {
    /// The read.
    pub op: Operation,
    /// The value read; `None` when it is not an integer.
    pub value: Option<i64>,
    pub lower: i64,
    pub upper: i64,
    pub message: String,
}

/// An ok or info add whose increment is not an integer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MalformedAdd {
    pub op: usize,
    pub invoke_index: u64,
    pub input: Value,
}

/// The counter checker's verdict and evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CounterResult {
    /// False iff some read was bad or some add malformed. True with `reads == 0` means nothing
    /// could be checked: callers may treat that as unknown.
    pub valid: bool,
    /// Ok reads checked.
    pub reads: usize,
    /// Add ops of any outcome.
    pub adds: usize,
    pub bad_read_count: usize,
    /// The first bad reads in completion order, at most 100.
    pub bad_reads: Vec<BadCounterRead>,
    pub malformed_adds: Vec<MalformedAdd>,
    pub reason: String,
}

/// Checks every ok read of a counter history (ops from `History::operations()`).
pub fn check_counter(ops: &[Operation]) -> CounterResult {
    let adds: Vec<&Operation> = ops.iter().filter(|op| op.f == "add").collect();
    let mut malformed_adds = Vec::new();
    // (call, increment) of adds that may have happened; (ret, increment) of ok ones.
    let mut maybe: Vec<(usize, i128)> = Vec::new();
    let mut done: Vec<(usize, i128)> = Vec::new();
    for op in adds.iter().filter(|op| op.outcome != Outcome::Fail) {
        let Some(increment) = op.input.as_i64() else {
            malformed_adds.push(MalformedAdd {
                op: op.id,
                invoke_index: op.invoke_index,
                input: op.input.clone(),
            });
            continue;
        };
        maybe.push((op.call, i128::from(increment)));
        if let (Outcome::Ok, Some(ret)) = (op.outcome, op.ret) {
            done.push((ret, i128::from(increment)));
        }
    }
    let maybe = Prefix::new(maybe);
    let done = Prefix::new(done);

    let mut reads: Vec<&Operation> = (ops.iter())
        .filter(|op| op.f == "read" && op.outcome == Outcome::Ok)
        .collect();
    reads.sort_by_key(|op| (op.ret.unwrap_or(op.call), op.id));
    let mut bad = Vec::new();
    for read in &reads {
        let ret = read.ret.unwrap_or(usize::MAX);
        // Definite adds are among the possible ones (they were invoked before they completed),
        // so: lower = their positive part + every possible negative part, and vice versa.
        let (def_pos, def_neg) = done.before(read.call);
        let (pos, neg) = maybe.before(ret);
        let lower = clamp(def_pos + neg);
        let upper = clamp(def_neg + pos);
        let at = read.invoke_index;
        let (value, message) = match read.output.as_i64() {
            Some(v) if (lower..=upper).contains(&v) => continue,
            Some(v) => (
                Some(v),
                format!("read {v} at index {at} outside [{lower}, {upper}]"),
            ),
            None => {
                let shown = crate::bank::short_json(&read.output);
                (
                    None,
                    format!("read {shown} at index {at} is not an integer"),
                )
            }
        };
        bad.push(BadCounterRead {
            op: (*read).clone(),
            value,
            lower,
            upper,
            message,
        });
    }

    let bad_read_count = bad.len();
    let reason = summarize(&bad, reads.len(), &malformed_adds);
    bad.truncate(MAX_LISTED);
    malformed_adds.truncate(MAX_LISTED);
    CounterResult {
        valid: bad_read_count == 0 && malformed_adds.is_empty(),
        reads: reads.len(),
        adds: adds.len(),
        bad_read_count,
        bad_reads: bad,
        malformed_adds,
        reason,
    }
}

fn clamp(x: i128) -> i64 {
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Increments sorted by position, with running sums of their positive and negative parts.
struct Prefix {
    positions: Vec<usize>,
    /// `sums[i]`: (positive, negative) sums of the first `i` increments.
    sums: Vec<(i128, i128)>,
}

impl Prefix {
    fn new(mut items: Vec<(usize, i128)>) -> Prefix {
        items.sort_unstable();
        let mut sums = vec![(0, 0)];
        let (mut pos, mut neg) = (0, 0);
        for (_, inc) in &items {
            if *inc > 0 {
                pos += inc;
            } else {
                neg += inc;
            }
            sums.push((pos, neg));
        }
        let positions = items.into_iter().map(|(p, _)| p).collect();
        Prefix { positions, sums }
    }

    /// Sums of the increments positioned strictly before `position`.
    fn before(&self, position: usize) -> (i128, i128) {
        self.sums[self.positions.partition_point(|p| *p < position)]
    }
}

fn summarize(bad: &[BadCounterRead], reads: usize, malformed: &[MalformedAdd]) -> String {
    let mut parts = Vec::new();
    if let Some(first) = bad.first() {
        let out = bad.iter().filter(|b| b.value.is_some()).count();
        let what = if out == bad.len() {
            "out of bounds".to_string()
        } else {
            let non_integer = bad.len() - out;
            format!("bad ({out} out of bounds, {non_integer} not an integer)")
        };
        parts.push(format!(
            "{} of {reads} reads {what}; first: {}",
            bad.len(),
            first.message
        ));
    }
    if let Some(first) = malformed.first() {
        parts.push(format!(
            "{} adds with a non-integer increment; first: {} at index {}",
            malformed.len(),
            crate::bank::short_json(&first.input),
            first.invoke_index
        ));
    }
    if !parts.is_empty() {
        return parts.join("; ");
    }
    match reads {
        0 => "no read completed ok: nothing to check".to_string(),
        n => format!("all {n} reads within bounds"),
    }
}

#[cfg(test)]
mod tests;
