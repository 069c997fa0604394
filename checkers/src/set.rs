//! The set invariant (DESIGN.md §4), with Jepsen's semantics: clients add elements, and the final
//! reads (those begun after every add completed) must hold every acknowledged element and nothing
//! that was never added. Duplicates in any read break set semantics too. Elements are compared by
//! JSON value, so any element type works; integers sort numerically in the lists.

use crate::bank::{at, short_json, OutcomeCounts, MAX_LISTED};
use crate::{Operation, Outcome};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A list cut at [`MAX_LISTED`] items, with the full count kept.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capped<T> {
    pub count: usize,
    pub items: Vec<T>,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            count: 0,
            items: Vec::new(),
        }
    }
}

impl<T> Capped<T> {
    fn push(&mut self, item: T) {
        self.count += 1;
        if self.items.len() < MAX_LISTED {
            self.items.push(item);
        }
    }
}

/// An ok read, as findings name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sighting {
    pub op: usize,
    pub process: u64,
    /// Completion time of the read (ns since test start), else its invocation time, if known.
    pub time: Option<u64>,
}

impl Sighting {
    fn of(op: &Operation) -> Sighting {
        Sighting {
            op: op.id,
            process: op.process,
            time: op.return_time.or(op.call_time),
        }
    }
}

/// A read the verdict rests on, and how many distinct elements it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FinalRead {
    #[serde(flatten)]
    pub read: Sighting,
    pub size: usize,
}

/// An acknowledged element missing from a final read begun after the acknowledgement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LostElement {
    pub element: Value,
    /// The earliest acknowledged add of it, and when it completed.
    pub add_op: usize,
    pub acked_at: Option<u64>,
    /// The last ok read that held it; `None` when no read ever did.
    pub last_seen: Option<Sighting>,
}

/// An element held more than once by a read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Duplicate {
    pub element: Value,
    /// The first read (in completion order) that held it more than once.
    pub first: Sighting,
    /// The most copies any one read held, and how many reads held several.
    pub copies: usize,
    pub reads: usize,
}

/// A final read that lacks elements other final reads hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    #[serde(flatten)]
    pub read: Sighting,
    pub missing: Capped<Value>,
}

/// An ok read whose value is not an array.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MalformedRead {
    #[serde(flatten)]
    pub read: Sighting,
    pub value: Value,
}

/// The set checker's verdict and evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SetResult {
    /// False iff something was lost, unexpected or duplicated, or an ok read was not an array.
    /// True with `final_read == false` means nothing could be checked: callers may treat that
    /// as unknown.
    pub valid: bool,
    pub summary: String,
    pub final_read: bool,
    /// False when no ok read began after every add completed, so the last ok read stood in.
    pub final_reads_after_adds: bool,
    pub final_reads: Capped<FinalRead>,
    pub adds: OutcomeCounts,
    pub reads: OutcomeCounts,
    /// Operations that are neither adds nor reads (ignored).
    pub other_ops: usize,
    /// Distinct elements with at least one add invocation.
    pub attempted: usize,
    /// Distinct elements with at least one ok add.
    pub acknowledged: usize,
    /// Attempted elements the final reads hold: every final read begun after the
    /// acknowledgement, for acknowledged ones; any final read, for the rest.
    pub ok: Capped<Value>,
    pub lost: Capped<LostElement>,
    /// Held by a final read but never attempted.
    pub unexpected: Capped<Value>,
    /// Held by a final read though every add of it was indeterminate (part of `ok`).
    pub recovered: Capped<Value>,
    pub duplicated: Capped<Duplicate>,
    /// Held by a final read though every add of it failed (part of `ok`). Like Jepsen, we do
    /// not count this against the system; it is listed for the reviewer.
    pub failed_present: Capped<Value>,
    /// Acknowledged after the stand-in final read began and absent from it: cannot tell.
    pub unsettled: Capped<Value>,
    pub divergences: Capped<Divergence>,
    pub malformed_reads: Capped<MalformedRead>,
}

/// An element's identity: integers by numeric value, anything else by canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Int(i128),
    Other(String),
}

fn key(v: &Value) -> Key {
    match (v.as_i64(), v.as_u64()) {
        (Some(i), _) => Key::Int(i.into()),
        (None, Some(u)) => Key::Int(u.into()),
        _ => {
            let mut s = String::new();
            canonical(v, &mut s);
            Key::Other(s)
        }
    }
}

/// JSON with object keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one element.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What the adds of one element amount to.
#[derive(Default)]
struct Attempt {
    /// The earliest-completing ok add: (completion position, op id, completion time).
    ack: Option<(usize, usize, Option<u64>)>,
    indeterminate: bool,
}

/// An ok read with an array value: element → copies.
struct Parsed<'a> {
    op: &'a Operation,
    elements: BTreeMap<Key, usize>,
}

/// Checks a set history against its final reads.
pub fn check_set(ops: &[Operation]) -> SetResult {
    let mut r = SetResult {
        final_reads_after_adds: true,
        ..SetResult::default()
    };
    // Each element's JSON as first recorded, by an add or else by a read.
    let mut values: BTreeMap<Key, Value> = BTreeMap::new();
    let mut attempts: BTreeMap<Key, Attempt> = BTreeMap::new();
    let mut last_add_completion: Option<usize> = None;
    let mut ok_reads: Vec<&Operation> = Vec::new();
    for op in ops {
        match op.f.as_str() {
            "add" => {
                r.adds.count(op.outcome);
                last_add_completion = last_add_completion.max(op.ret);
                let k = key(&op.input);
                values.entry(k.clone()).or_insert_with(|| op.input.clone());
                let attempt = attempts.entry(k).or_default();
                match op.outcome {
                    Outcome::Ok => {
                        let ack = (op.ret.unwrap_or(op.call), op.id, op.return_time);
                        if !matches!(attempt.ack, Some(earlier) if earlier <= ack) {
                            attempt.ack = Some(ack);
                        }
                    }
                    Outcome::Info => attempt.indeterminate = true,
                    Outcome::Fail => {}
                }
            }
            "read" => {
                r.reads.count(op.outcome);
                if op.outcome == Outcome::Ok {
                    ok_reads.push(op);
                }
            }
            _ => r.other_ops += 1,
        }
    }
    r.attempted = attempts.len();
    r.acknowledged = attempts.values().filter(|a| a.ack.is_some()).count();
    ok_reads.sort_by_key(|op| (op.ret.unwrap_or(op.call), op.id));

    // Parse every ok read, in completion order, noting sightings and duplicates.
    let mut last_seen: BTreeMap<Key, Sighting> = BTreeMap::new();
    let mut duplicates: BTreeMap<Key, Duplicate> = BTreeMap::new();
    let mut parsed: Vec<Parsed> = Vec::new();
    for op in ok_reads {
        let Value::Array(items) = &op.output else {
            let (read, value) = (Sighting::of(op), op.output.clone());
            r.malformed_reads.push(MalformedRead { read, value });
            continue;
        };
        let mut elements: BTreeMap<Key, usize> = BTreeMap::new();
        for item in items {
            let k = key(item);
            values.entry(k.clone()).or_insert_with(|| item.clone());
            *elements.entry(k).or_default() += 1;
        }
        for (k, &copies) in &elements {
            last_seen.insert(k.clone(), Sighting::of(op));
            if copies > 1 {
                let d = duplicates.entry(k.clone()).or_insert_with(|| Duplicate {
                    element: values[k].clone(),
                    first: Sighting::of(op),
                    copies,
                    reads: 0,
                });
                d.copies = d.copies.max(copies);
                d.reads += 1;
            }
        }
        parsed.push(Parsed { op, elements });
    }
    duplicates.into_values().for_each(|d| r.duplicated.push(d));

    // Final reads: begun after every recorded add completion; else the last ok read.
    let mut finals: Vec<&Parsed> = parsed
        .iter()
        .filter(|p| !matches!(last_add_completion, Some(last) if p.op.call <= last))
        .collect();
    if let (true, Some(last)) = (finals.is_empty(), parsed.last()) {
        finals.push(last);
        r.final_reads_after_adds = false;
    }
    r.final_read = !finals.is_empty();
    if !r.final_read {
        return finish(r);
    }
    for f in &finals {
        let (read, size) = (Sighting::of(f.op), f.elements.len());
        r.final_reads.push(FinalRead { read, size });
    }
    let union: BTreeSet<&Key> = finals.iter().flat_map(|f| f.elements.keys()).collect();

    for (k, attempt) in &attempts {
        let element = values[k].clone();
        let Some((ack_pos, add_op, acked_at)) = attempt.ack else {
            if union.contains(k) {
                r.ok.push(element.clone());
                if attempt.indeterminate {
                    r.recovered.push(element);
                } else {
                    r.failed_present.push(element);
                }
            }
            continue;
        };
        // Only final reads begun after the acknowledgement must hold it. None such (possible
        // only for the stand-in read): present is ok, absent proves nothing.
        let mut after = finals.iter().filter(|f| f.op.call > ack_pos).peekable();
        if after.peek().is_none() && !union.contains(k) {
            r.unsettled.push(element);
        } else if after.all(|f| f.elements.contains_key(k)) {
            r.ok.push(element);
        } else {
            let last_seen = last_seen.get(k).cloned();
            r.lost.push(LostElement {
                element,
                add_op,
                acked_at,
                last_seen,
            });
        }
    }
    for k in union.iter().filter(|k| !attempts.contains_key(**k)) {
        r.unexpected.push(values[*k].clone());
    }
    // With one final read, the union is that read and nothing is missing.
    for f in &finals {
        let mut missing = Capped::default();
        for k in union.iter().filter(|k| !f.elements.contains_key(**k)) {
            missing.push(values[*k].clone());
        }
        if missing.count > 0 {
            let read = Sighting::of(f.op);
            r.divergences.push(Divergence { read, missing });
        }
    }

    finish(r)
}

fn finish(mut r: SetResult) -> SetResult {
    r.valid = r.lost.count + r.unexpected.count + r.duplicated.count + r.malformed_reads.count == 0;
    r.summary = summarize(&r);
    r
}

fn summarize(r: &SetResult) -> String {
    let mut problems: Vec<String> = Vec::new();
    if let Some(first) = r.lost.items.first() {
        let seen = match &first.last_seen {
            Some(s) => format!("last seen by op {}{}", s.op, at(s.time)),
            None => "never read".to_string(),
        };
        let (n, of, e) = (r.lost.count, r.acknowledged, short_json(&first.element));
        problems.push(format!(
            "{n} of {of} acknowledged adds lost (first: {e}, {seen})"
        ));
    }
    if let Some(first) = r.unexpected.items.first() {
        let n = r.unexpected.count;
        let first = short_json(first);
        problems.push(format!(
            "{n} unexpected element{} (first: {first})",
            plural(n)
        ));
    }
    if let Some(d) = r.duplicated.items.first() {
        let (n, e) = (r.duplicated.count, short_json(&d.element));
        problems.push(format!(
            "{n} duplicated element{} (first: {e}, {} copies in op {})",
            plural(n),
            d.copies,
            d.first.op
        ));
    }
    if let Some(m) = r.malformed_reads.items.first() {
        let (n, when, v) = (
            r.malformed_reads.count,
            at(m.read.time),
            short_json(&m.value),
        );
        problems.push(format!(
            "{n} ok read{} not an array (first: op {}{when} returned {v})",
            plural(n),
            m.read.op
        ));
    }
    let problems = problems.join(", ");

    let Some(last) = r.final_reads.items.last() else {
        let adds = format!(
            "{} adds attempted, {} acknowledged",
            r.attempted, r.acknowledged
        );
        return if problems.is_empty() {
            format!("no ok read completed: the set could not be checked ({adds})")
        } else {
            format!("{problems}; no well-formed read remained to check against ({adds})")
        };
    };
    let against = match r.final_reads.count {
        1 => format!("the final read (op {}{})", last.read.op, at(last.read.time)),
        n => format!("{n} final reads"),
    };
    let mut s = if problems.is_empty() {
        format!(
            "all {} acknowledged adds were in {against} ({} attempted, {} recovered)",
            r.acknowledged, r.attempted, r.recovered.count
        )
    } else {
        format!("{problems}, checked against {against}")
    };
    if !r.final_reads_after_adds {
        s.push_str("; no read began after every add completed, so the last ok read stood in");
    }
    if r.unsettled.count > 0 {
        let n = r.unsettled.count;
        s.push_str(&format!(
            "; {n} acknowledged after it began and absent (unsettled)"
        ));
    }
    if r.divergences.count > 0 {
        let n = r.divergences.count;
        s.push_str(&format!("; {n} final reads lacked elements others held"));
    }
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests;
