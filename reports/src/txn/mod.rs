//! The isolation section of a report: the transactional checker's verdict against the model it
//! checked, a card per anomaly kind (its meaning, count, and the first few found drawn as
//! transactions on the history's axis with the cycle's dependencies as arrows), and the models
//! the history rules out with the anomalies that rule each out.
//!
//! It reads the checker's [`TxnResult`] as stored and the transactions from the history; it
//! judges nothing itself. Everything from a history is escaped (the template autoescapes, the
//! SVG escapes by hand).

mod cycle_svg;
pub mod models;
#[cfg(test)]
mod tests;

use crate::html::escape;
use anyhow::{anyhow, Context};
use checkers::txn::{
    txn_history, Anomaly, AnomalyKind, EdgeKind, Mop, ReadValue, Txn, TxnHistory, TxnResult,
    TxnWorkload,
};
use checkers::Verdict;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

const TEMPLATE: &str = include_str!("../templates/txn.html");

/// The key of `results.json`'s `checkers` under which the harness stores a [`TxnResult`]; any
/// checker result with `anomaly_types` is read as one too.
pub const CHECKER_KEY: &str = "txn";

/// Anomalies drawn per kind; the rest are counted.
const EXAMPLES: usize = 3;
/// Rows (transactions) drawn per anomaly.
const MAX_ROWS: usize = 16;
/// Characters of a transaction's micro-ops in the tables.
const MOPS_CHARS: usize = 400;

/// Styles for the section's markup.
pub const CSS: &str = "\
.tx-headline{font-size:15px;margin:.4em 0 .6em}
.tx-headline .badge{font-weight:700;padding:2px 8px;border-radius:5px;color:#fff;margin-right:4px}
.tx-headline .badge.fail{background:#c4302b}.tx-headline .badge.ok{background:#1f8a4c}
.tx-headline .badge.info{background:#b7791f}
.tx-card{border-left:4px solid #c4302b}
.tx-kind{margin:4px 0}
.tx-meaning{margin:.2em 0 .6em;color:#344054}
.tx-nth{font-weight:600;margin:.8em 0 .3em}
.tx-scroll{overflow-x:auto;max-width:100%;border:1px solid #ddd;background:#fff}
.tx-svg{display:block;font:11px sans-serif}
.tx-lane{fill:#f7f7f8}
.tx-grid{stroke:#e8e8e8}
.tx-tick{fill:#666;text-anchor:middle}
.tx-proc{fill:#333;text-anchor:end;font-weight:600}
.tx-box rect{stroke:#0005;stroke-width:.7}
.tx-ok rect{fill:#d6e9ff}.tx-fail rect{fill:#fde2ef}.tx-info rect{fill:#ffe3b3}
.tx-open rect{fill:#eee;stroke-dasharray:3 2}
.tx-head{font-weight:700;fill:#111}.tx-mops{fill:#333;font-family:ui-monospace,monospace;font-size:10px}
.tx-edge path{fill:none;stroke:var(--c);stroke-width:1.8}.tx-edge polygon{fill:var(--c)}
.tx-label rect{fill:#fff;fill-opacity:.9;stroke:var(--c);stroke-width:.8}
.tx-label text{font-weight:700;fill:var(--c)}
.tx-e-ww{--c:#1c6dd0}.tx-e-wr{--c:#2b8a3e}.tx-e-rw{--c:#d9480f}.tx-e-rt{--c:#667085}.tx-e-proc{--c:#7048e8}
.tx-e-rt path{stroke-dasharray:6 3}.tx-e-proc path{stroke-dasharray:2 3}
.tx-k{display:inline-block;font:bold 11px ui-monospace,monospace;padding:0 5px;border-radius:3px;color:#fff;background:var(--c);margin-right:4px}
.tx-steps{margin:.4em 0;padding-left:22px}.tx-steps li{margin:2px 0}
.tx-explanation{margin:.4em 0}
.tx-txns td,.tx-txns th{font-size:12.5px}
.tx-txns code{word-break:break-all}
.tx-models .tx-checked td{background:#fdecec;font-weight:600}
";

/// The section's view of a TxnResult and the transactions it names.
#[derive(Serialize)]
struct Section {
    verdict: &'static str,
    class: &'static str,
    model: String,
    workload: String,
    headline: String,
    unknown_reason: Option<String>,
    found: Vec<Found>,
    strongest: Vec<String>,
    inferences: Vec<String>,
    stats: String,
    history_note: Option<String>,
    cards: Vec<Card>,
    models: Vec<ModelRow>,
}

#[derive(Serialize)]
struct Found {
    name: String,
    count: usize,
}

#[derive(Serialize)]
struct Card {
    name: String,
    meaning: &'static str,
    count: usize,
    examples: Vec<Example>,
    more: usize,
}

#[derive(Serialize)]
struct Example {
    title: String,
    svg: String,
    legend: Vec<&'static str>,
    steps: Vec<StepRow>,
    explanation: String,
    txns: Vec<TxnRow>,
    missing: String,
}

#[derive(Serialize)]
struct StepRow {
    kind: &'static str,
    label: String,
    from: String,
    to: String,
    why: String,
}

#[derive(Serialize)]
struct TxnRow {
    name: String,
    process: u64,
    outcome: &'static str,
    at: String,
    mops: String,
}

#[derive(Serialize)]
struct ModelRow {
    name: String,
    weakest: bool,
    checked: bool,
    by: Vec<String>,
}

fn kind_name(kind: AnomalyKind) -> String {
    kind.name().to_string()
}

fn model_str(model: checkers::txn::ConsistencyModel) -> String {
    model.name().to_string()
}

/// What the report calls an edge kind: `ww`, `wr`, `rw`, `rt`, `proc`.
pub fn edge_name(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Ww => "ww",
        EdgeKind::Wr => "wr",
        EdgeKind::Rw => "rw",
        EdgeKind::Realtime => "rt",
        EdgeKind::Process => "proc",
    }
}

/// What an anomaly kind means, in one line.
pub fn meaning(kind: AnomalyKind) -> &'static str {
    use AnomalyKind as A;
    match kind {
        A::G0 => "dirty write: a cycle of write-write dependencies, two transactions' writes interleaved",
        A::G0Process => "dirty write with process order: write-write dependencies and one process's own order form a cycle",
        A::G0Realtime => "dirty write with real time: write-write dependencies contradict the order in which transactions completed",
        A::G1c => "circular information flow: transactions each saw (or overwrote) the other's effects, a cycle of ww and wr dependencies",
        A::G1cProcess => "circular information flow with process order: a process's transaction saw effects of its own later one",
        A::G1cRealtime => "circular information flow with real time: a transaction saw effects of one that began after it finished",
        A::GSingle => "read skew: a transaction observed part of another's effects, one anti-dependency (rw) in the cycle",
        A::GSingleProcess => "read skew with process order: a process failed to see its own earlier transaction's writes, one anti-dependency",
        A::GSingleRealtime => "stale read: a transaction missed the writes of one that completed before it began, one anti-dependency",
        A::GNonadjacent => "a cycle with several anti-dependencies, none adjacent: forbidden by snapshot isolation, allowed by weaker models",
        A::GNonadjacentProcess => "non-adjacent anti-dependencies with process order: forbidden by strong-session snapshot isolation",
        A::GNonadjacentRealtime => "non-adjacent anti-dependencies with real time: forbidden by strong snapshot isolation",
        A::G2Item => "write skew: transactions each missed the other's writes, a cycle with adjacent anti-dependencies",
        A::G2ItemProcess => "write skew with process order: anti-dependencies and one process's own order form a cycle",
        A::G2ItemRealtime => "write skew with real time: anti-dependencies contradict the order in which transactions completed",
        A::G1a => "aborted read: a committed transaction read a value written by a transaction that failed",
        A::G1b => "intermediate read: a transaction read a value its writer later overwrote within the same transaction",
        A::Internal => "internal inconsistency: a transaction's read disagrees with its own earlier reads or writes",
        A::DirtyUpdate => "dirty update: a committed write was built on a version written by a transaction that failed",
        A::DuplicateElements => "duplicate elements: a list read holds an element twice, though each was appended once",
        A::IncompatibleOrder => "incompatible order: two reads of one key saw lists that cannot both be prefixes of one version order",
        A::FutureRead => "future read: a transaction read a value it would only write later",
        A::LostUpdate => "lost update: transactions read the same version of a key and each wrote it, so one update was lost",
        A::CyclicVersions => "cyclic versions: the version order inferred for a key has a cycle",
        A::EmptyTransactionGraph => "nothing could be inferred between transactions, so no verdict is possible",
    }
}

fn list_short(list: &[i64]) -> String {
    let show = |items: &[i64]| items.iter().map(i64::to_string).collect::<Vec<_>>();
    if list.len() <= 4 {
        format!("[{}]", show(list).join(" "))
    } else {
        format!(
            "[{} … {}]",
            show(&list[..2]).join(" "),
            show(&list[list.len() - 1..]).join(" ")
        )
    }
}

fn mop_text(mop: &Mop, short: bool) -> String {
    match mop {
        Mop::Append { key, value } => format!("a k{key} {value}"),
        Mop::Write { key, value } => format!("w k{key} {value}"),
        Mop::Read { key, value } => {
            let read = match value {
                ReadValue::Unknown => "?".to_string(),
                ReadValue::List(list) if short => list_short(list),
                ReadValue::List(list) => format!(
                    "[{}]",
                    list.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                ReadValue::Register(Some(v)) => v.to_string(),
                ReadValue::Register(None) => "nil".to_string(),
            };
            format!("r k{key} {read}")
        }
    }
}

/// Micro-ops abbreviated for a box: `a k3 7, r k4 [1 2 … 9]`.
pub fn mops_short(mops: &[Mop]) -> String {
    mops.iter()
        .map(|m| mop_text(m, true))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mops_full(mops: &[Mop]) -> String {
    let full = mops
        .iter()
        .map(|m| mop_text(m, false))
        .collect::<Vec<_>>()
        .join(", ");
    match full.char_indices().nth(MOPS_CHARS) {
        Some((at, _)) => format!("{}… (cut; see history.jsonl)", &full[..at]),
        None => full,
    }
}

fn history_span(txn: &Txn) -> String {
    match txn.complete_index {
        Some(c) => format!("#{}..#{c}", txn.invoke_index),
        None => format!("#{}, never completed", txn.invoke_index),
    }
}

/// Everything about a transaction, for hover titles.
fn txn_title(txn: &Txn) -> String {
    format!(
        "T{} on process {} ({}), history {}: {}",
        txn.id,
        txn.process,
        cycle_svg::outcome_word(txn.outcome),
        history_span(txn),
        mops_full(&txn.mops)
    )
}

fn find(history: &TxnHistory, id: usize) -> Option<&Txn> {
    match history.txns.get(id) {
        Some(t) if t.id == id => Some(t),
        _ => history.txns.iter().find(|t| t.id == id),
    }
}

fn example(anomaly: &Anomaly, nth: usize, history: &TxnHistory) -> Example {
    // Rows: the cycle's transactions in cycle order, else those the anomaly names.
    let mut ids: Vec<usize> = Vec::new();
    for id in (anomaly.cycle.iter())
        .flat_map(|s| [s.from, s.to])
        .chain(anomaly.txns.iter().copied())
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let missing: Vec<String> = (ids.iter())
        .filter(|id| find(history, **id).is_none())
        .map(|id| format!("T{id}"))
        .collect();
    let mut txns: Vec<&Txn> = ids.iter().filter_map(|id| find(history, *id)).collect();
    if anomaly.cycle.is_empty() {
        // No arrows to chain: rows in the order the transactions began.
        txns.sort_by_key(|t| t.call);
    }
    let drawn = &txns[..txns.len().min(MAX_ROWS)];
    let svg = if missing.is_empty() {
        cycle_svg::draw(drawn, &anomaly.cycle)
    } else {
        String::new()
    };
    let legend: BTreeSet<EdgeKind> = anomaly.cycle.iter().map(|s| s.kind).collect();
    let mut title = format!("#{nth}");
    if let Some(k) = anomaly.key {
        let _ = write!(title, " on key {k}");
    }
    let _ = write!(
        title,
        ": {}",
        ids.iter()
            .map(|i| format!("T{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if txns.len() > MAX_ROWS {
        let _ = write!(title, " (the first {MAX_ROWS} drawn)");
    }
    Example {
        title,
        svg,
        legend: legend.into_iter().map(edge_name).collect(),
        steps: (anomaly.cycle.iter())
            .map(|s| StepRow {
                kind: edge_name(s.kind),
                label: cycle_svg::step_label(s),
                from: format!("T{}", s.from),
                to: format!("T{}", s.to),
                why: s.why.clone(),
            })
            .collect(),
        explanation: anomaly.explanation.clone(),
        txns: txns
            .iter()
            .map(|t| TxnRow {
                name: format!("T{}", t.id),
                process: t.process,
                outcome: cycle_svg::outcome_word(t.outcome),
                at: history_span(t),
                mops: mops_full(&t.mops),
            })
            .collect(),
        missing: missing.join(", "),
    }
}

fn headline(result: &TxnResult) -> String {
    let model = model_str(result.consistency_model);
    let found: Vec<String> = result.anomaly_types.iter().map(|k| kind_name(*k)).collect();
    let forbidding = models::ruling_out(result.consistency_model, &result.anomaly_types);
    match result.valid {
        Verdict::Invalid if !forbidding.is_empty() => format!(
            "the history is not {model}: it shows {}.",
            forbidding
                .iter()
                .map(|k| kind_name(*k))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Verdict::Invalid => format!("the history is not {model} (found {}).", found.join(", ")),
        Verdict::Valid if found.is_empty() => {
            format!("no anomaly found in {} transactions.", result.stats.txns)
        }
        Verdict::Valid => format!("found only {}, which {model} allows.", found.join(", ")),
        Verdict::Unknown => format!(
            "no verdict{}.",
            if found.is_empty() {
                String::new()
            } else {
                format!(" (found {})", found.join(", "))
            }
        ),
    }
}

/// The section for `result`, with the transactions it names taken from `history` (an empty
/// history draws nothing and says which transactions it lacks).
pub fn txn_section(result: &TxnResult, history: &TxnHistory) -> anyhow::Result<String> {
    section(result, history, None)
}

fn section(
    result: &TxnResult,
    history: &TxnHistory,
    history_note: Option<String>,
) -> anyhow::Result<String> {
    let count = |k: AnomalyKind| {
        (result.counts.get(&k).copied())
            .unwrap_or_else(|| result.anomalies.get(&k).map_or(0, Vec::len))
    };
    let mut kinds: Vec<AnomalyKind> = result.anomaly_types.clone();
    kinds.extend(result.anomalies.keys().copied());
    kinds.sort();
    kinds.dedup();
    let cards = (kinds.iter())
        .map(|&kind| {
            let found = result.anomalies.get(&kind).map_or(&[][..], Vec::as_slice);
            let examples: Vec<Example> = (found.iter().take(EXAMPLES).enumerate())
                .map(|(i, a)| example(a, i + 1, history))
                .collect();
            Card {
                name: kind_name(kind),
                meaning: meaning(kind),
                count: count(kind).max(found.len()),
                more: count(kind).max(found.len()) - examples.len(),
                examples,
            }
        })
        .collect();
    let row = |m, weakest| ModelRow {
        name: model_str(m),
        weakest,
        checked: m == result.consistency_model,
        by: models::ruling_out(m, &kinds)
            .into_iter()
            .map(kind_name)
            .collect(),
    };
    let mut model_rows: Vec<ModelRow> = result.not.iter().map(|m| row(*m, true)).collect();
    model_rows.extend(result.also_not.iter().map(|m| row(*m, false)));
    let s = &result.stats;
    let view = Section {
        verdict: match result.valid {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        },
        class: match result.valid {
            Verdict::Valid => "ok",
            Verdict::Invalid => "fail",
            Verdict::Unknown => "info",
        },
        model: model_str(result.consistency_model),
        workload: result.workload.name().into(),
        headline: headline(result),
        unknown_reason: result.unknown_reason.clone(),
        found: kinds
            .iter()
            .map(|k| Found {
                name: kind_name(*k),
                count: count(*k),
            })
            .collect(),
        strongest: result
            .strongest_possible
            .iter()
            .map(|m| model_str(*m))
            .collect(),
        inferences: result.inferences.clone(),
        stats: format!(
            "{} transactions ({} ok, {} info, {} fail), {} dependency edges, {} strongly \
             connected components (largest {}), {} ms",
            s.txns, s.ok, s.info, s.fail, s.edges, s.nontrivial_sccs, s.largest_scc, s.elapsed_ms
        ),
        history_note,
        cards,
        models: model_rows,
    };
    let mut tera = tera::Tera::default();
    tera.add_raw_template("txn.html", TEMPLATE)
        .context("the isolation section's template")?;
    tera.render(
        "txn.html",
        &tera::Context::from_serialize(&view).context("the isolation section's data")?,
    )
    .context("rendering the isolation section")
}

/// The transactions of a stored `history.jsonl`, read as `workload`.
pub fn read_history(path: &Path, workload: TxnWorkload) -> anyhow::Result<TxnHistory> {
    let shown = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {shown}"))?;
    let history = checkers::history::read_jsonl(std::io::BufReader::new(file))
        .map_err(|e| anyhow!("{shown}: {e}"))?;
    let ops = history.operations().map_err(|e| anyhow!("{shown}: {e}"))?;
    txn_history(&ops, workload).map_err(|e| anyhow!("{shown}: {e}"))
}

/// True if a checker's stored result is the isolation checker's.
pub fn is_txn_result(name: &str, result: &Value) -> bool {
    name == CHECKER_KEY || result.get("anomaly_types").is_some()
}

/// The view of a stored isolation result for the checker card, with its transactions read from
/// the run's `history.jsonl`. A result or history that cannot be read says so instead.
pub fn checker_view(result: &Value, history_file: &Path) -> String {
    let result: TxnResult = match serde_json::from_value(result.clone()) {
        Ok(r) => r,
        Err(e) => {
            return format!(
                "<p class=\"fail\">This isolation result cannot be read ({}); it is shown in full \
                 below.</p>",
                escape(&e.to_string())
            )
        }
    };
    let (history, note) = match read_history(history_file, result.workload) {
        Ok(h) => (h, None),
        Err(e) => (
            TxnHistory {
                key_names: Default::default(),
                workload: result.workload,
                txns: Vec::new(),
            },
            Some(format!(
                "The transactions could not be read, so none is drawn: {e:#}"
            )),
        ),
    };
    section(&result, &history, note).unwrap_or_else(|e| {
        format!(
            "<p class=\"fail\">The isolation section could not be rendered: {}</p>",
            escape(&format!("{e:#}"))
        )
    })
}
