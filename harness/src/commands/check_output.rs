//! What `fissure check` prints: a summary a person reads in seconds, or one JSON object.

use super::check::Setup;
use super::history_file::Loaded;
use checkers::linearizability::Counterexample;
use checkers::{LinearizabilityResult, Operation, Outcome, Verdict};
use serde_json::{json, Value};
use std::fmt::Write;

/// The JSON object: the checker's result plus where it came from and how long each stage took.
pub fn json(loaded: &Loaded, setup: &Setup, result: &LinearizabilityResult) -> String {
    let mut object = json!({
        "file": loaded.path.display().to_string(),
        "format": loaded.format.name(),
        "init": setup.init,
        "parse_ms": round(loaded.parse_ms),
        "check_ms": round(result.check_ms),
        "shrink_ms": round(result.shrink_ms),
    });
    let Value::Object(fields) = serde_json::to_value(result).expect("results serialize") else {
        unreachable!("a result is an object")
    };
    for (k, v) in fields {
        object.as_object_mut().unwrap().entry(k).or_insert(v);
    }
    object.to_string()
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

pub fn summary(loaded: &Loaded, setup: &Setup, result: &LinearizabilityResult) -> String {
    let mut out = String::new();
    let verdict = match result.valid {
        Verdict::Valid => "VALID: linearizable",
        Verdict::Invalid => "INVALID: not linearizable",
        Verdict::Unknown => "UNKNOWN: gave up",
    };
    let _ = writeln!(out, "{}: {verdict}", loaded.path.display());
    let _ = writeln!(
        out,
        "  model {} (init {}, fail means {}), format {}",
        result.model,
        setup.init,
        result.failures.name(),
        loaded.format
    );
    let split = if result.split_by_key {
        ""
    } else {
        ", checked whole"
    };
    let _ = writeln!(
        out,
        "  {} operation{} ({} to place) in {} partition{}{split}",
        result.ops,
        if result.ops == 1 { "" } else { "s" },
        result.checked_ops,
        result.partitions,
        if result.partitions == 1 { "" } else { "s" }
    );
    let shrink = if result.counterexample.is_some() {
        format!(", counterexample {:.1} ms", result.shrink_ms)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  parse {:.1} ms, check {:.1} ms ({} configurations explored){shrink}",
        loaded.parse_ms, result.check_ms, result.stats.configurations
    );
    if let Some(reason) = &result.reason {
        let _ = writeln!(out, "  why: {reason}");
    }
    if let Some(note) = &result.note {
        let _ = writeln!(out, "  note: {note}");
    }
    if let Some(cx) = &result.counterexample {
        write_counterexample(&mut out, cx);
    }
    out
}

fn write_counterexample(out: &mut String, cx: &Counterexample) {
    let key = cx
        .key
        .as_ref()
        .map_or(String::new(), |k| format!(" on key {k}"));
    let _ = writeln!(
        out,
        "\nCounterexample{key} ({} operations in this partition):",
        cx.partition_ops
    );
    let shown = cx.prefix_tail.len();
    let _ = writeln!(
        out,
        "  longest linearizable prefix: {} operations{}",
        cx.prefix.len(),
        if shown < cx.prefix.len() {
            format!(", the last {shown}:")
        } else {
            ":".into()
        }
    );
    for op in &cx.prefix_tail {
        let _ = writeln!(out, "    {}", describe(op));
    }
    for op in &cx.unplaceable {
        let _ = writeln!(out, "  cannot be placed next:\n    {}", describe(op));
    }
    let states: Vec<String> = cx.states_before.iter().map(Value::to_string).collect();
    let _ = writeln!(out, "  model states just before: {}", states.join(", "));
    if !cx.pending.is_empty() {
        let _ = writeln!(out, "  other operations open at that point:");
        for op in &cx.pending {
            let _ = writeln!(out, "    {}", describe(op));
        }
    }
    if let Some(minimal) = &cx.minimal {
        let _ = writeln!(
            out,
            "  smaller history that is still not linearizable ({} operations, reads removed):",
            minimal.len()
        );
        for op in minimal {
            let _ = writeln!(out, "    {}", describe(op));
        }
    }
}

/// `p3 cas [1,2] -> ok [1,2]   (index 12..15)`
fn describe(op: &Operation) -> String {
    let result = match op.outcome {
        Outcome::Ok => format!("ok {}", op.output),
        Outcome::Fail => "fail".to_string(),
        Outcome::Info => "info (unknown)".to_string(),
    };
    let span = match op.complete_index {
        Some(done) => format!("index {}..{}", op.invoke_index, done),
        None => format!("index {}..", op.invoke_index),
    };
    let key = op
        .key
        .as_ref()
        .map_or(String::new(), |k| format!(" key {k}"));
    format!(
        "p{} {}{key} {} -> {result}   ({span})",
        op.process, op.f, op.input
    )
}
