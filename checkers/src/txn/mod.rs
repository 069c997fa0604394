//! Transactional isolation checking, the way Elle does it: infer version orders from what
//! transactions read, build the dependency graph (ww, wr, rw, plus realtime and process edges),
//! find cycles and non-cyclic anomalies, and say which consistency models the history rules out.
//!
//! - [`list_append`] and [`rw_register`]: each workload's inference of version orders, its data
//!   edges and the anomalies visible without a cycle.
//! - [`order`]: realtime and process edges; [`graph`]: the adjacency and its components;
//!   [`cycles`]: the shortest cycle of each kind; [`models`]: Elle's lattice of models.
//! - [`explain`]: every edge and anomaly in words.
//! - [`reference`]: a brute-force serializability oracle, for tests; [`synth`]: large synthetic
//!   histories, for benchmarks.

mod anomalies;
mod cycles;
mod explain;
mod graph;
pub mod history;
mod list_append;
mod models;
mod mops;
mod order;
pub mod reference;
pub mod result;
mod rw_register;
mod stream;
pub mod synth;

pub use history::{
    guess_workload, is_txn_operation, txn_history, Elem, Key, Mop, ReadValue, Txn, TxnHistory,
    TxnHistoryError, TxnWorkload,
};
pub use result::{
    Anomaly, AnomalyKind, ConsistencyModel, CycleStep, EdgeKind, TxnCheckOptions, TxnResult,
    TxnStats,
};
pub use stream::read_txn_jsonl;

use std::time::Instant;

use crate::history::Outcome;
use crate::Verdict;
use anomalies::{plain, Collector};
use explain::ExplainData;
use graph::{EdgeList, Graph};

/// Bytes the graph costs per inferred edge (the edge list, then its compressed adjacency).
const BYTES_PER_EDGE: u64 = 12 + 5;

/// Checks a transactional history against `options.consistency_model`.
pub fn check_txn(history: &TxnHistory, options: &TxnCheckOptions) -> TxnResult {
    let started = Instant::now();
    let mut stats = TxnStats {
        txns: history.txns.len(),
        ..TxnStats::default()
    };
    for txn in &history.txns {
        match txn.outcome {
            Outcome::Ok => stats.ok += 1,
            Outcome::Info => stats.info += 1,
            Outcome::Fail => stats.fail += 1,
        }
    }
    let mut out = Collector::new(options.max_reported);
    let mut inferences = Vec::new();
    let verdict = run(
        history,
        options,
        started,
        &mut out,
        &mut inferences,
        &mut stats,
    );
    stats.elapsed_ms = started.elapsed().as_millis() as u64;
    finish(history, options, out, inferences, verdict.err(), stats)
}

/// The analysis proper; `Err` carries why the verdict must be unknown.
fn run(
    h: &TxnHistory,
    options: &TxnCheckOptions,
    started: Instant,
    out: &mut Collector,
    inferences: &mut Vec<String>,
    stats: &mut TxnStats,
) -> Result<(), String> {
    let deadline = options.time_limit.map(|d| started + d);
    let check_time = |phase: &str| match options.time_limit {
        Some(limit) if started.elapsed() > limit => Err(format!(
            "the time limit of {:.1} s ran out {phase}",
            limit.as_secs_f64()
        )),
        _ => Ok(()),
    };
    let analysis: Box<dyn Workload + '_> = match h.workload {
        TxnWorkload::ListAppend => Box::new(list_append::ListAppend::new(h)?),
        TxnWorkload::RwRegister => Box::new(rw_register::RwRegister::new(h, options)?),
    };
    inferences.extend(analysis.inferences());
    check_time("while inferring version orders")?;
    analysis.anomalies(out);
    let mut edges = analysis.edges();
    check_time("while inferring dependencies")?;

    let forbidden = options.consistency_model.forbidden_anomalies();
    let extra = if forbidden.iter().any(|k| k.name().ends_with("-realtime")) {
        inferences.push(format!(
            "realtime: a transaction that completed before another began precedes it \
             ({} forbids realtime anomalies)",
            options.consistency_model
        ));
        edges.extend(order::realtime_edges(h));
        graph::RT
    } else if forbidden.iter().any(|k| k.name().ends_with("-process")) {
        inferences.push(format!(
            "process: each process's transactions take effect in the order it ran them ({} \
             forbids process anomalies)",
            options.consistency_model
        ));
        edges.extend(order::process_edges(h));
        graph::PROC
    } else {
        0
    };
    check_memory(&edges, options)?;
    let graph = Graph::build(h.txns.len(), edges);
    stats.edges = graph.edge_count();
    if graph.edge_count() == 0 {
        out.add(AnomalyKind::EmptyTransactionGraph, || {
            plain(
                AnomalyKind::EmptyTransactionGraph,
                Vec::new(),
                None,
                "empty-transaction-graph: no dependency between any two transactions could be \
                 inferred (nothing read what another wrote, and no order in time), so nothing \
                 can be said about isolation"
                    .into(),
            )
        });
    }
    check_time("while building the graph")?;
    let sccs = graph.sccs();
    stats.nontrivial_sccs = sccs.len();
    stats.largest_scc = sccs.iter().map(Vec::len).max().unwrap_or(0);
    let search = cycles::CycleSearch {
        graph: &graph,
        history: h,
        data: analysis.explainer(),
        extra,
        deadline,
    };
    let found = search.run(sccs, out);
    if found.gave_up > 0 {
        inferences.push(format!(
            "cycle search gave up on {} kind(s) in components too large for its work budget; \
             cycles of those kinds may exist unreported",
            found.gave_up
        ));
    }
    if found.timed_out {
        return Err(format!(
            "the time limit of {:.1} s ran out during the cycle search",
            options.time_limit.unwrap_or_default().as_secs_f64()
        ));
    }
    Ok(())
}

fn check_memory(edges: &EdgeList, options: &TxnCheckOptions) -> Result<(), String> {
    let needed = edges.len() as u64 * BYTES_PER_EDGE;
    match options.memory_limit {
        Some(limit) if needed > limit => Err(format!(
            "the dependency graph needs about {} MiB ({} edges), over the memory limit of {} MiB",
            needed >> 20,
            edges.len(),
            limit >> 20
        )),
        _ => Ok(()),
    }
}

/// What each workload's inference offers the checker.
trait Workload: ExplainData {
    fn inferences(&self) -> Vec<String>;
    fn anomalies(&self, out: &mut Collector);
    fn edges(&self) -> EdgeList;
    fn explainer(&self) -> &dyn ExplainData;
}

impl Workload for list_append::ListAppend<'_> {
    fn inferences(&self) -> Vec<String> {
        vec![
            "list-append: the longest read of each key gives its version order; every other \
             read must be a prefix of it"
                .into(),
            "an append that no read saw came after every element read of its key".into(),
            "an info transaction whose append some read saw committed".into(),
        ]
    }
    fn anomalies(&self, out: &mut Collector) {
        list_append::ListAppend::anomalies(self, out)
    }
    fn edges(&self) -> EdgeList {
        list_append::ListAppend::edges(self)
    }
    fn explainer(&self) -> &dyn ExplainData {
        self
    }
}

impl Workload for rw_register::RwRegister<'_> {
    fn inferences(&self) -> Vec<String> {
        rw_register::RwRegister::inferences(self)
    }
    fn anomalies(&self, out: &mut Collector) {
        rw_register::RwRegister::anomalies(self, out)
    }
    fn edges(&self) -> EdgeList {
        rw_register::RwRegister::edges(self)
    }
    fn explainer(&self) -> &dyn ExplainData {
        self
    }
}

/// The verdict and the models: invalid when an anomaly the model forbids was found, else
/// unknown when the analysis could not finish or had nothing to go on, else valid.
fn finish(
    h: &TxnHistory,
    options: &TxnCheckOptions,
    out: Collector,
    inferences: Vec<String>,
    unknown_reason: Option<String>,
    stats: TxnStats,
) -> TxnResult {
    let found = out.kinds();
    let forbidden = options.consistency_model.forbidden_anomalies();
    let boundary = models::boundary(&found);
    let empty = out.found(AnomalyKind::EmptyTransactionGraph);
    let (valid, unknown_reason) = if found.iter().any(|k| forbidden.contains(k)) {
        (Verdict::Invalid, unknown_reason)
    } else if let Some(reason) = unknown_reason {
        (Verdict::Unknown, Some(reason))
    } else if empty {
        (
            Verdict::Unknown,
            Some("no dependencies between transactions could be inferred".into()),
        )
    } else {
        (Verdict::Valid, None)
    };
    TxnResult {
        valid,
        workload: h.workload,
        consistency_model: options.consistency_model,
        anomaly_types: found,
        anomalies: out.anomalies,
        counts: out.counts,
        not: boundary.not,
        also_not: boundary.also_not,
        strongest_possible: boundary.strongest_possible,
        inferences,
        unknown_reason,
        stats,
    }
}

#[cfg(test)]
mod tests;
