//! Operations, and their statistics per time window and per phase.

use super::faults::FaultWindow;
use super::{PhaseStats, WindowStats};
use crate::{EventType, History, Outcome, Process};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;

/// A client operation as the SLO checker sees it.
#[derive(Clone, Debug)]
pub(super) struct Op<'a> {
    pub f: &'a str,
    pub invoke_ns: u64,
    /// `None` when the completion is missing or has no time.
    pub complete_ns: Option<u64>,
    /// `Info` also for ops never completed.
    pub outcome: Outcome,
}

/// Client ops with an invocation time. Pairs by process only, so that a history the strict
/// pairing rejects still gets service levels; that error is other checkers' to report.
pub(super) fn client_ops(history: &History) -> Vec<Op<'_>> {
    let mut ops: Vec<Option<Op>> = Vec::new();
    let mut open: FxHashMap<u64, usize> = FxHashMap::default();
    for e in &history.events {
        let Process::Client(process) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            // An earlier open op of this process stays never completed.
            open.insert(process, ops.len());
            ops.push(e.time.map(|invoke_ns| Op {
                f: &e.f,
                invoke_ns,
                complete_ns: None,
                outcome: Outcome::Info,
            }));
        } else if let Some(op) = open.remove(&process).and_then(|i| ops[i].as_mut()) {
            op.complete_ns = e.time;
            op.outcome = match e.kind {
                EventType::Ok => Outcome::Ok,
                EventType::Fail => Outcome::Fail,
                _ => Outcome::Info,
            };
        }
    }
    ops.into_iter().flatten().collect()
}

/// Counts and latencies of a set of ops.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    /// Info ops and ops never completed.
    pub info: usize,
    /// Latency quantiles of the ok ops (nearest rank), in ms; `None` without ok ops.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// ok / ops; `None` without ops.
    pub availability: Option<f64>,
    /// (fail + info) / ops; `None` without ops.
    pub error_rate: Option<f64>,
}

#[derive(Default)]
struct Acc {
    ops: usize,
    ok: usize,
    fail: usize,
    info: usize,
    latencies: Vec<u64>,
}

impl Acc {
    fn add(&mut self, op: &Op) {
        self.ops += 1;
        match op.outcome {
            Outcome::Ok => {
                self.ok += 1;
                if let Some(done) = op.complete_ns {
                    self.latencies.push(done.saturating_sub(op.invoke_ns));
                }
            }
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }

    fn finish(mut self) -> Stats {
        self.latencies.sort_unstable();
        let ls = &self.latencies;
        let at = |q: f64| {
            let rank = ((q * ls.len() as f64).ceil() as usize).clamp(1, ls.len());
            ls[rank - 1] as f64 / 1e6
        };
        let ratio = |n: usize| (self.ops > 0).then(|| n as f64 / self.ops as f64);
        Stats {
            ops: self.ops,
            ok: self.ok,
            fail: self.fail,
            info: self.info,
            p50_ms: (!ls.is_empty()).then(|| at(0.5)),
            p99_ms: (!ls.is_empty()).then(|| at(0.99)),
            max_ms: (!ls.is_empty()).then(|| at(1.0)),
            availability: ratio(self.ok),
            error_rate: ratio(self.fail + self.info),
        }
    }
}

/// Stats of all ops and, per named kind, of that kind's ops.
#[derive(Default)]
struct Group {
    all: Acc,
    by_op: BTreeMap<String, Acc>,
}

impl Group {
    fn new(kinds: &[&str]) -> Group {
        let by_op = kinds.iter().map(|k| (k.to_string(), Acc::default()));
        Group {
            all: Acc::default(),
            by_op: by_op.collect(),
        }
    }

    fn add(&mut self, op: &Op) {
        self.all.add(op);
        if let Some(acc) = self.by_op.get_mut(op.f) {
            acc.add(op);
        }
    }

    fn finish(self) -> (Stats, BTreeMap<String, Stats>) {
        let by_op = self.by_op.into_iter().map(|(k, acc)| (k, acc.finish()));
        (self.all.finish(), by_op.collect())
    }
}

pub(super) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Windows `[i·width, (i+1)·width)` up to the one holding `end_ns`; ops by invocation time.
pub(super) fn windows(ops: &[Op], end_ns: u64, width_ns: u64, kinds: &[&str]) -> Vec<WindowStats> {
    let count = (end_ns / width_ns) as usize + 1;
    let mut groups: Vec<Group> = (0..count).map(|_| Group::new(kinds)).collect();
    for op in ops {
        groups[((op.invoke_ns / width_ns) as usize).min(count - 1)].add(op);
    }
    let width_s = secs(width_ns);
    (groups.into_iter().enumerate())
        .map(|(i, group)| {
            let (stats, by_op) = group.finish();
            WindowStats {
                start_s: secs((i as u64).saturating_mul(width_ns)),
                end_s: secs((i as u64 + 1).saturating_mul(width_ns)),
                ok_per_s: stats.ok as f64 / width_s,
                stats,
                by_op,
            }
        })
        .collect()
}

/// A named stretch of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Span {
    pub name: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The phases' time ranges: steady, one per fault window, after heal.
pub(super) fn phase_spans(faults: &[FaultWindow], end_ns: u64) -> Vec<Span> {
    let span = |name: String, start_ns: u64, end_ns: u64| Span {
        name,
        start_ns,
        end_ns,
    };
    let mut spans = Vec::new();
    let first = faults.iter().map(|f| f.start_ns).min();
    match first {
        None => spans.push(span("steady".into(), 0, end_ns)),
        Some(first) if first > 0 => spans.push(span("steady".into(), 0, first)),
        Some(_) => {}
    }
    for fault in faults {
        let end = fault.end_ns.unwrap_or(end_ns);
        spans.push(span(
            format!("during {}", fault.label()),
            fault.start_ns,
            end,
        ));
    }
    let ends: Option<Vec<u64>> = faults.iter().map(|f| f.end_ns).collect();
    if let Some(last_heal) = ends.and_then(|e| e.into_iter().max()) {
        spans.push(span("after heal".into(), last_heal, end_ns.max(last_heal)));
    }
    spans
}

/// Phase statistics over the ops invoked in each span; the run's end belongs to spans ending
/// there.
pub(super) fn phases(ops: &[Op], spans: &[Span], end_ns: u64, kinds: &[&str]) -> Vec<PhaseStats> {
    (spans.iter())
        .map(|span| {
            let mut group = Group::new(kinds);
            let last = span.end_ns == end_ns;
            let within = |t: u64| t >= span.start_ns && (t < span.end_ns || (last && t == end_ns));
            for op in ops.iter().filter(|op| within(op.invoke_ns)) {
                group.add(op);
            }
            let (stats, by_op) = group.finish();
            PhaseStats {
                name: span.name.clone(),
                start_s: secs(span.start_ns),
                end_s: secs(span.end_ns),
                stats,
                by_op,
            }
        })
        .collect()
}

/// The names of the spans overlapping `[start, end)`, comma-separated.
pub(super) fn phase_names(spans: &[Span], start_ns: u64, end_ns: u64) -> Option<String> {
    let names: Vec<&str> = (spans.iter())
        .filter(|s| s.start_ns < end_ns && start_ns < s.end_ns.max(s.start_ns + 1))
        .map(|s| s.name.as_str())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}
