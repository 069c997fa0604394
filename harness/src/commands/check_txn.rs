//! `fissure check` on a transactional history: Elle's list-append or rw-register, checked for
//! isolation anomalies against a consistency model.

use super::history_file::{self, Loaded};
use crate::cli::CheckArgs;
use crate::sizes::default_memory_limit;
use crate::{EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID};
use anyhow::{anyhow, Context};
use checkers::formats::{self, Format};
use checkers::txn::{self, TxnCheckOptions, TxnHistory, TxnResult};
use checkers::{Operation, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::fmt::Write;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the transactions came from, for what is printed beside the result.
pub struct Source {
    pub path: PathBuf,
    pub format: Format,
    pub parse_ms: f64,
}

impl Source {
    pub fn of(loaded: &Loaded) -> Source {
        Source {
            path: loaded.path.clone(),
            format: loaded.format,
            parse_ms: loaded.parse_ms,
        }
    }
}

/// True when the history should be checked for isolation: it holds transactions and no
/// linearizability model was asked for, or an isolation option was given.
pub fn applies(args: &CheckArgs, ops: &[Operation]) -> bool {
    args.model.is_none() && (args.isolation.any() || ops.iter().any(txn::is_txn_operation))
}

/// Reads a JSON Lines history whose first lines hold a transaction straight into transactions,
/// one line at a time ([`txn::read_txn_jsonl`]): the general path's events and operations would
/// cost gigabytes at a million transactions. `None` for any other history (EDN, elle-json, no
/// transaction near the start, `--model`): the general path reads those.
pub fn read_streaming(args: &CheckArgs) -> anyhow::Result<Option<(Source, TxnHistory)>> {
    if args.model.is_some() || args.format.is_some_and(|f| f != Format::Jsonl) {
        return Ok(None);
    }
    let path = history_file::resolve(&args.history)?;
    let Ok(head) = history_file::head(&path) else {
        return Ok(None);
    };
    if formats::guess_format(&path, &head) != Some(Format::Jsonl) && args.format.is_none() {
        return Ok(None);
    }
    if !head_has_txn(&head) {
        return Ok(None);
    }
    let shown = path.display().to_string();
    let started = Instant::now();
    let file = File::open(&path).with_context(|| format!("cannot read history {shown}"))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let history = txn::read_txn_jsonl(reader, args.isolation.workload)
        .map_err(|e| anyhow!("{shown}: {e}"))?;
    let source = Source {
        path,
        format: Format::Jsonl,
        parse_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    Ok(Some((source, history)))
}

/// Whether the complete lines of a file's head hold a transaction.
fn head_has_txn(head: &str) -> bool {
    let complete = &head[..head.rfind('\n').map_or(0, |i| i + 1)];
    checkers::history::read_jsonl(complete.as_bytes())
        .ok()
        .and_then(|h| h.operations().ok())
        .is_some_and(|ops| ops.iter().any(txn::is_txn_operation))
}

/// The transactions of operations read by the general path.
pub fn read_operations(
    args: &CheckArgs,
    source: &Source,
    ops: &[Operation],
) -> anyhow::Result<TxnHistory> {
    let path = source.path.display();
    let workload = match args.isolation.workload {
        Some(workload) => workload,
        None => txn::guess_workload(ops).map_err(|e| anyhow!("{path}: {e}"))?,
    };
    txn::txn_history(ops, workload).map_err(|e| anyhow!("{path}: {e}"))
}

pub fn run(args: &CheckArgs, source: &Source, history: TxnHistory) -> anyhow::Result<u8> {
    let path = source.path.display().to_string();
    let workload = history.workload;
    let defaults = TxnCheckOptions::default();
    let options = TxnCheckOptions {
        consistency_model: args
            .isolation
            .consistency_model
            .unwrap_or(defaults.consistency_model),
        linearizable_keys: args.isolation.linearizable_keys,
        sequential_keys: args.isolation.sequential_keys,
        wfr_keys: args.isolation.wfr_keys,
        time_limit: (!args.time_limit.is_zero()).then_some(args.time_limit),
        memory_limit: Some(args.memory_limit.map_or_else(default_memory_limit, |m| m.0)),
        ..defaults
    };
    tracing::info!(%path, format = %source.format, %workload, txns = history.txns.len(),
        model = ?options.consistency_model, "checking isolation");
    let spinner = Spinner::start(history.txns.len());
    let started = Instant::now();
    let result = txn::check_txn(&history, &options);
    let check_ms = started.elapsed().as_secs_f64() * 1e3;
    spinner.stop();
    if args.json {
        println!("{}", json_output(source, &result, check_ms));
    } else {
        print!("{}", summary(source, &history, &result, check_ms));
    }
    Ok(match result.valid {
        Verdict::Valid => EXIT_VALID,
        Verdict::Invalid => EXIT_INVALID,
        Verdict::Unknown => EXIT_UNKNOWN,
    })
}

/// The checker's result plus where it came from and how long each stage took.
fn json_output(source: &Source, result: &TxnResult, check_ms: f64) -> String {
    let mut object = json!({
        "file": source.path.display().to_string(),
        "format": source.format.name(),
        "checker": "isolation",
        "parse_ms": round(source.parse_ms),
        "check_ms": round(check_ms),
    });
    if let Ok(Value::Object(fields)) = serde_json::to_value(result) {
        for (k, v) in fields {
            object.as_object_mut().unwrap().entry(k).or_insert(v);
        }
    }
    object.to_string()
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Anomalies and models as Elle names them, comma-separated.
fn names<T: std::fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a person reads: the verdict, what was found, each anomaly retold, the models ruled out.
pub fn summary(source: &Source, history: &TxnHistory, result: &TxnResult, check_ms: f64) -> String {
    let mut out = String::new();
    let model = result.consistency_model.to_string();
    let verdict = match result.valid {
        Verdict::Valid => format!("VALID: no anomaly {model} forbids"),
        Verdict::Invalid => format!("INVALID: not {model}"),
        Verdict::Unknown => "UNKNOWN: no verdict".to_string(),
    };
    let _ = writeln!(out, "{}: {verdict}", source.path.display());
    let s = &result.stats;
    let _ = writeln!(
        out,
        "  {} history, format {}: {} transactions ({} ok, {} info, {} fail), {} dependency edges",
        result.workload, source.format, s.txns, s.ok, s.info, s.fail, s.edges
    );
    let _ = writeln!(
        out,
        "  parse {:.1} ms, check {:.1} ms",
        source.parse_ms, check_ms
    );
    if let Some(reason) = &result.unknown_reason {
        let _ = writeln!(out, "  why unknown: {reason}");
    }
    for inference in &result.inferences {
        let _ = writeln!(out, "  inferred: {inference}");
    }
    if !result.anomaly_types.is_empty() {
        let _ = writeln!(out, "  anomalies: {}", names(&result.anomaly_types));
    }
    if !result.not.is_empty() {
        let also = if result.also_not.is_empty() {
            String::new()
        } else {
            format!(" (hence also not {})", names(&result.also_not))
        };
        let _ = writeln!(out, "  rules out: {}{also}", names(&result.not));
    }
    if !result.strongest_possible.is_empty() {
        let _ = writeln!(out, "  may still be: {}", names(&result.strongest_possible));
    }
    for (kind, anomalies) in &result.anomalies {
        let total = result.counts.get(kind).copied().unwrap_or(anomalies.len());
        let _ = writeln!(out, "\n  {} ({total} found)", kind);
        for anomaly in anomalies.iter().take(2) {
            let _ = writeln!(out, "    {}", anomaly.explanation);
            for step in &anomaly.cycle {
                if !anomaly.explanation.contains(&step.why) {
                    let _ = writeln!(out, "      - {}", step.why);
                }
            }
            for &id in anomaly.txns.iter().take(6) {
                if let Some(t) = history.txns.get(id) {
                    let _ = writeln!(out, "      T{id}: {}", describe(t));
                }
            }
        }
    }
    out
}

/// `p3 ok [append 1 2] [r 2 [1]]` (invoked at index 14).
fn describe(t: &txn::Txn) -> String {
    let mops: Vec<String> = t
        .mops
        .iter()
        .map(|m| match m {
            txn::Mop::Append { key, value } => format!("[append {key} {value}]"),
            txn::Mop::Write { key, value } => format!("[w {key} {value}]"),
            txn::Mop::Read { key, value } => match value {
                txn::ReadValue::Unknown => format!("[r {key} ?]"),
                txn::ReadValue::List(list) => format!(
                    "[r {key} [{}]]",
                    list.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                txn::ReadValue::Register(Some(v)) => format!("[r {key} {v}]"),
                txn::ReadValue::Register(None) => format!("[r {key} nil]"),
            },
        })
        .collect();
    format!(
        "p{} {} {} (invoked at index {})",
        t.process,
        outcome_name(t.outcome),
        mops.join(" "),
        t.invoke_index
    )
}

/// A spinner on stderr for checks that take a while (large histories).
struct Spinner(Option<ProgressBar>);

impl Spinner {
    fn start(txns: usize) -> Spinner {
        if txns < 50_000 {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} checking {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(format!("{txns} transactions"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(bar))
    }

    fn stop(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

fn outcome_name(outcome: checkers::Outcome) -> &'static str {
    match outcome {
        checkers::Outcome::Ok => "ok",
        checkers::Outcome::Fail => "fail",
        checkers::Outcome::Info => "info",
    }
}
