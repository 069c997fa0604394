//! Edges from time rather than data: realtime (A completed before B was invoked) and process
//! (A and B ran on the same process, A first).
//!
//! Realtime order is quadratic if written out; like Elle we keep only its transitive reduction's
//! worth: each invocation links from the *frontier*, the completed transactions not already
//! known to precede another completed one. A completion removes from the frontier every
//! transaction that completed before it was invoked (they now precede it), so the frontier stays
//! as small as the concurrency and the edges O(n × concurrency).

use rustc_hash::FxHashMap;

use super::graph::{EdgeList, PROC, RT};
use super::history::TxnHistory;
use crate::history::Outcome;

/// Only `ok` transactions are known to have completed; `info` ones may still take effect at any
/// later time, so they get edges in but none out. Failed ones are not in the graph at all.
pub(crate) fn realtime_edges(h: &TxnHistory) -> EdgeList {
    let mut edges = EdgeList::default();
    let mut completions: Vec<(usize, u32)> = h
        .txns
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .filter_map(|t| t.ret.map(|r| (r, t.id as u32)))
        .collect();
    completions.sort_unstable();
    let mut invocations: Vec<(usize, u32)> = h
        .txns
        .iter()
        .filter(|t| t.outcome != Outcome::Fail)
        .map(|t| (t.call, t.id as u32))
        .collect();
    invocations.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut done = completions.into_iter().peekable();
    for (call, b) in invocations {
        while let Some(&(ret, a)) = done.peek() {
            if ret >= call {
                break;
            }
            done.next();
            let a_call = h.txns[a as usize].call;
            frontier.retain(|x| h.txns[*x as usize].ret.is_some_and(|r| r > a_call));
            frontier.push(a);
        }
        for &a in &frontier {
            edges.add(a, b, RT);
        }
    }
    edges
}

/// Each transaction follows the last `ok` one of its process.
pub(crate) fn process_edges(h: &TxnHistory) -> EdgeList {
    let mut edges = EdgeList::default();
    let mut last: FxHashMap<u64, u32> = FxHashMap::default();
    let mut by_call: Vec<&super::history::Txn> = h
        .txns
        .iter()
        .filter(|t| t.outcome != Outcome::Fail)
        .collect();
    by_call.sort_by_key(|t| t.call);
    for txn in by_call {
        if let Some(&a) = last.get(&txn.process) {
            edges.add(a, txn.id as u32, PROC);
        }
        if txn.outcome == Outcome::Ok {
            last.insert(txn.process, txn.id as u32);
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::super::graph::Graph;
    use super::super::history::{Txn, TxnWorkload};
    use super::*;

    fn txn(id: usize, process: u64, call: usize, ret: Option<usize>, outcome: Outcome) -> Txn {
        Txn {
            id,
            process,
            outcome,
            mops: Vec::new(),
            call,
            ret,
            invoke_index: call as u64,
            complete_index: ret.map(|r| r as u64),
        }
    }

    fn reachable(g: &Graph, from: u32, to: u32) -> bool {
        let mut seen = vec![false; g.vertices()];
        let mut todo = vec![from];
        while let Some(v) = todo.pop() {
            if v == to {
                return true;
            }
            for (w, _) in g.out(v) {
                if !std::mem::replace(&mut seen[w as usize], true) {
                    todo.push(w);
                }
            }
        }
        false
    }

    #[test]
    fn realtime_edges_are_reduced_but_keep_the_order() {
        // T0 [0,1], T1 [2,5], T2 [3,4], T3 [6,7], T4 [8, info]
        let h = TxnHistory {
            key_names: Default::default(),
            workload: TxnWorkload::ListAppend,
            txns: vec![
                txn(0, 0, 0, Some(1), Outcome::Ok),
                txn(1, 1, 2, Some(5), Outcome::Ok),
                txn(2, 2, 3, Some(4), Outcome::Ok),
                txn(3, 0, 6, Some(7), Outcome::Ok),
                txn(4, 1, 8, Some(9), Outcome::Info),
            ],
        };
        let g = Graph::build(5, realtime_edges(&h));
        let precedes = |a: &Txn, b: &Txn| a.outcome == Outcome::Ok && a.ret.unwrap() < b.call;
        for a in &h.txns {
            for b in &h.txns {
                assert_eq!(
                    reachable(&g, a.id as u32, b.id as u32) && a.id != b.id,
                    precedes(a, b),
                    "T{} -> T{}",
                    a.id,
                    b.id
                );
            }
        }
        // T0 reaches T3 through T1 and T2, not directly.
        assert_eq!(g.mask(0, 3), 0);
        assert_eq!(g.mask(4, 0) | g.mask(4, 1), 0, "info has no edges out");
    }

    #[test]
    fn process_edges_skip_over_info_but_not_from_it() {
        let h = TxnHistory {
            key_names: Default::default(),
            workload: TxnWorkload::ListAppend,
            txns: vec![
                txn(0, 0, 0, Some(1), Outcome::Ok),
                txn(1, 0, 2, Some(3), Outcome::Info),
                txn(2, 0, 4, Some(5), Outcome::Ok),
                txn(3, 0, 6, Some(7), Outcome::Fail),
            ],
        };
        let g = Graph::build(4, process_edges(&h));
        assert_eq!(g.mask(0, 1), PROC);
        assert_eq!(g.mask(0, 2), PROC);
        assert_eq!(g.mask(1, 2), 0);
        assert_eq!(g.edge_count(), 2);
    }
}
