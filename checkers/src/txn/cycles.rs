//! Cycle search: within each strongly connected component, the shortest cycle (breadth-first)
//! of each anomaly kind, from the weakest edge set up (G0, G1c, G-single, G-nonadjacent,
//! G2-item, then their process/realtime variants).
//!
//! Every search starts from an *anchor* edge the kind requires (a wr edge for G1c, an rw edge
//! for G-single, two adjacent rw edges for G2-item, a realtime edge for G0-realtime) and looks
//! for the shortest way back over the edges the kind allows, tracking in a few state bits what
//! the kind needs (an extra realtime/process edge; for G-nonadjacent, whether the last edge was
//! rw and whether a second rw was taken). The cycle found is then named by what it contains, as
//! Elle's explainer does.

use std::collections::VecDeque;
use std::time::Instant;

use super::anomalies::Collector;
use super::explain::{cycle_text, step, ExplainData};
use super::graph::{kinds, Graph, RW, WR, WW};
use super::history::TxnHistory;
use super::result::{Anomaly, AnomalyKind, CycleStep, EdgeKind};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Base {
    G0,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
}

const BASES: [Base; 5] = [
    Base::G0,
    Base::G1c,
    Base::GSingle,
    Base::GNonadjacent,
    Base::G2Item,
];

/// State bits of the search.
const HAS_EXTRA: u8 = 1;
const LAST_RW: u8 = 2;
const TWO_RW: u8 = 4;
const STATES: usize = 8;

/// What the search of one component used and whether it gave up anywhere.
#[derive(Default)]
pub(crate) struct SearchStats {
    /// Searches abandoned because the component was too large for the work budget.
    pub gave_up: usize,
    pub timed_out: bool,
}

pub(crate) struct CycleSearch<'a> {
    pub graph: &'a Graph,
    pub history: &'a TxnHistory,
    pub data: &'a dyn ExplainData,
    /// RT or PROC when those edges are in the graph, else 0.
    pub extra: u8,
    pub deadline: Option<Instant>,
}

struct Scratch {
    /// Local index of each vertex in the current component, `u32::MAX` outside it.
    local: Vec<u32>,
    /// Per (local vertex, state bits): the search round that reached it.
    stamp: Vec<u32>,
    /// Per state: the previous state and the kind of the edge taken.
    parent: Vec<(u32, u8)>,
    round: u32,
}

impl CycleSearch<'_> {
    /// Searches every component, adding what it finds to `out`.
    pub(crate) fn run(&self, mut sccs: Vec<Vec<u32>>, out: &mut Collector) -> SearchStats {
        sccs.sort_by_key(|c| c.len());
        let mut stats = SearchStats::default();
        let mut scratch = Scratch {
            local: vec![u32::MAX; self.graph.vertices()],
            stamp: Vec::new(),
            parent: Vec::new(),
            round: 0,
        };
        for scc in &sccs {
            for (i, &v) in scc.iter().enumerate() {
                scratch.local[v as usize] = i as u32;
            }
            scratch.stamp.clear();
            scratch.stamp.resize(scc.len() * STATES, 0);
            scratch.parent.clear();
            scratch.parent.resize(scc.len() * STATES, (0, 0));
            scratch.round = 0;
            let edges: usize = scc.iter().map(|v| self.graph.out(*v).count()).sum();
            let budget = 100_000 + 16 * edges as u64;
            let variants: &[bool] = if self.extra != 0 {
                &[false, true]
            } else {
                &[false]
            };
            // A process/realtime variant is reported only where the component has no cycle of
            // the base kind without such edges: only then does the anomaly need them.
            let mut plain_found = Vec::new();
            'specs: for &with_extra in variants {
                for base in BASES {
                    if with_extra && plain_found.contains(&base) {
                        continue;
                    }
                    match self.search(scc, base, with_extra, budget, &mut scratch) {
                        Outcome::Found(walk) => {
                            if !with_extra {
                                plain_found.push(base);
                            }
                            self.report(walk, out)
                        }
                        Outcome::None => {}
                        Outcome::GaveUp => stats.gave_up += 1,
                        Outcome::TimedOut => {
                            stats.timed_out = true;
                            break 'specs;
                        }
                    }
                }
            }
            for &v in scc {
                scratch.local[v as usize] = u32::MAX;
            }
            if stats.timed_out {
                break;
            }
        }
        stats
    }

    fn report(&self, walk: Vec<(u32, u32, EdgeKind)>, out: &mut Collector) {
        let kind = classify(&walk);
        out.add(kind, || {
            let steps: Vec<CycleStep> = walk
                .iter()
                .map(|&(a, b, k)| step(self.history, self.data, a, b, k))
                .collect();
            Anomaly {
                kind,
                txns: walk.iter().map(|s| s.0 as usize).collect(),
                explanation: cycle_text(kind, &steps),
                key: None,
                cycle: steps,
            }
        });
    }

    /// The shortest cycle of `base` (with an extra edge when `with_extra`) in the component.
    fn search(
        &self,
        scc: &[u32],
        base: Base,
        with_extra: bool,
        budget: u64,
        s: &mut Scratch,
    ) -> Outcome {
        let extra = if with_extra { self.extra } else { 0 };
        let (anchor, path): (u8, u8) = match base {
            Base::G0 if with_extra => (extra, WW | extra),
            Base::G0 => (WW, WW),
            Base::G1c => (WR, WW | WR | extra),
            Base::GSingle => (RW, WW | WR | extra),
            Base::GNonadjacent | Base::G2Item => (RW, WW | WR | RW | extra),
        };
        let mut work = 0u64;
        for &a in scc {
            for (b, mask) in self.graph.out(a) {
                if mask & anchor == 0 || s.local[b as usize] == u32::MAX {
                    continue;
                }
                if s.round.is_multiple_of(256) && self.deadline.is_some_and(|d| Instant::now() > d)
                {
                    return Outcome::TimedOut;
                }
                let anchor_kind = kinds(mask & anchor).next().expect("an anchor kind");
                let mut starts: Vec<(Walk, u32, u8)> = Vec::new();
                let flag = if extra != 0 && mask & anchor & extra != 0 && base == Base::G0 {
                    HAS_EXTRA
                } else {
                    0
                };
                if base == Base::G2Item {
                    for (c, m2) in self.graph.out(b) {
                        if m2 & RW != 0 && s.local[c as usize] != u32::MAX {
                            starts.push((
                                vec![(a, b, EdgeKind::Rw), (b, c, EdgeKind::Rw)],
                                c,
                                LAST_RW | TWO_RW,
                            ));
                        }
                    }
                } else {
                    let bits = if anchor_kind == EdgeKind::Rw {
                        LAST_RW
                    } else {
                        0
                    };
                    starts.push((vec![(a, b, anchor_kind)], b, bits | flag));
                }
                for (prefix, from, bits) in starts {
                    let goal = |flags: u8| {
                        (extra == 0 || flags & HAS_EXTRA != 0)
                            && (base != Base::GNonadjacent
                                || (flags & TWO_RW != 0 && flags & LAST_RW == 0))
                    };
                    if from == a && goal(bits) {
                        return Outcome::Found(prefix);
                    }
                    let nonadjacent = base == Base::GNonadjacent;
                    let search = Bfs {
                        scc,
                        to: a,
                        path,
                        extra,
                        nonadjacent,
                        goal: &goal,
                    };
                    match self.bfs(&search, from, bits, s, &mut work) {
                        Some(mut rest) => {
                            let mut walk = prefix;
                            walk.append(&mut rest);
                            return Outcome::Found(walk);
                        }
                        None if work > budget => return Outcome::GaveUp,
                        None => {}
                    }
                }
            }
        }
        Outcome::None
    }

    /// Breadth-first from (`from`, `bits`) to `q.to` in a state satisfying `q.goal`, over edges
    /// in `q.path`. Returns the edges taken.
    fn bfs(
        &self,
        q: &Bfs<'_>,
        from: u32,
        bits: u8,
        s: &mut Scratch,
        work: &mut u64,
    ) -> Option<Vec<(u32, u32, EdgeKind)>> {
        let Bfs {
            scc,
            to,
            path,
            extra,
            nonadjacent,
            goal,
        } = *q;
        s.round += 1;
        let round = s.round;
        let state = |v: u32, f: u8, s: &Scratch| s.local[v as usize] as usize * STATES + f as usize;
        let start = state(from, bits, s);
        s.stamp[start] = round;
        let mut queue = VecDeque::from([(from, bits)]);
        while let Some((v, f)) = queue.pop_front() {
            *work += 1;
            for (w, mask) in self.graph.out(v) {
                if s.local[w as usize] == u32::MAX || mask & path == 0 {
                    continue;
                }
                for kind in kinds(mask & path) {
                    let kb = super::graph::bit(kind);
                    let mut nf = f;
                    if kb == RW {
                        if nonadjacent && f & LAST_RW != 0 {
                            continue;
                        }
                        nf |= LAST_RW | TWO_RW;
                    } else {
                        nf &= !LAST_RW;
                    }
                    if kb & extra != 0 {
                        nf |= HAS_EXTRA;
                    }
                    let st = state(w, nf, s);
                    if s.stamp[st] == round {
                        continue;
                    }
                    s.stamp[st] = round;
                    s.parent[st] = (state(v, f, s) as u32, kb);
                    if w == to && goal(nf) {
                        return Some(unwind(scc, st, start, s));
                    }
                    if w != to {
                        queue.push_back((w, nf));
                    }
                }
            }
        }
        None
    }
}

/// One breadth-first search's question.
#[derive(Clone, Copy)]
struct Bfs<'q> {
    scc: &'q [u32],
    to: u32,
    path: u8,
    extra: u8,
    nonadjacent: bool,
    goal: &'q dyn Fn(u8) -> bool,
}

/// The edges from the start state to `st`, following parents.
fn unwind(scc: &[u32], mut st: usize, start: usize, s: &Scratch) -> Vec<(u32, u32, EdgeKind)> {
    let vertex = |st: usize| scc[st / STATES];
    let mut steps = Vec::new();
    while st != start {
        let (prev, kb) = s.parent[st];
        let kind = kinds(kb).next().expect("an edge kind");
        steps.push((vertex(prev as usize), vertex(st), kind));
        st = prev as usize;
    }
    steps.reverse();
    steps
}

/// A cycle or path as (from, to, kind) steps.
type Walk = Vec<(u32, u32, EdgeKind)>;

enum Outcome {
    Found(Vec<(u32, u32, EdgeKind)>),
    None,
    GaveUp,
    TimedOut,
}

/// Names a cycle by its edges, as Elle does: the number of rw edges and whether two are
/// adjacent decide the base; a realtime or process edge adds the suffix.
pub(crate) fn classify(walk: &[(u32, u32, EdgeKind)]) -> AnomalyKind {
    use AnomalyKind::*;
    let count = |k: EdgeKind| walk.iter().filter(|s| s.2 == k).count();
    let rw = count(EdgeKind::Rw);
    let adjacent = (0..walk.len())
        .any(|i| walk[i].2 == EdgeKind::Rw && walk[(i + 1) % walk.len()].2 == EdgeKind::Rw);
    let realtime = count(EdgeKind::Realtime) > 0;
    let process = count(EdgeKind::Process) > 0;
    let pick = |plain, p, r| {
        if realtime {
            r
        } else if process {
            p
        } else {
            plain
        }
    };
    if rw == 1 {
        pick(GSingle, GSingleProcess, GSingleRealtime)
    } else if rw > 1 && adjacent {
        pick(G2Item, G2ItemProcess, G2ItemRealtime)
    } else if rw > 1 {
        pick(GNonadjacent, GNonadjacentProcess, GNonadjacentRealtime)
    } else if count(EdgeKind::Wr) > 0 {
        pick(G1c, G1cProcess, G1cRealtime)
    } else {
        pick(G0, G0Process, G0Realtime)
    }
}
