//! rw-register: registers hold one value, so a read says nothing about the order of earlier
//! writes. The version order of each key is what the options allow us to infer: the initial
//! (nil) state first; write-follows-read (`wfr_keys`); real-time order (`linearizable_keys`);
//! process order (`sequential_keys`). A cycle among a key's versions is `cyclic-versions`, and
//! that key gives no ww or rw edges. Transactions are related through their *external* reads
//! (before their own writes of the key) and their *final* writes of each key, as in Elle.

use rustc_hash::{FxHashMap, FxHashSet};

use super::anomalies::{plain, Collector};
use super::explain::{reg, t, ExplainData};
use super::graph::{EdgeList, Graph, RW, WR, WW};
use super::history::{Elem, Key, Mop, ReadValue, TxnHistory};
use super::result::{AnomalyKind, EdgeKind, TxnCheckOptions};
use crate::history::Outcome;

/// Why one version of a key precedes another.
#[derive(Clone, Copy, PartialEq)]
enum Why {
    Initial,
    Wfr,
    Realtime,
    Process,
}

#[derive(Clone, Copy)]
struct Write {
    txn: u32,
    /// The transaction's last write of the key: only final writes are versions others see.
    last: bool,
}

/// A transaction's dealings with one key: its external read and its final write.
#[derive(Clone, Copy)]
struct Touch {
    key: u32,
    read: Option<Option<Elem>>,
    write: Option<Elem>,
}

pub(crate) struct RwRegister<'h> {
    h: &'h TxnHistory,
    options: TxnCheckOptions,
    keys: FxHashMap<Key, u32>,
    key_names: Vec<Key>,
    writes: FxHashMap<(u32, Elem), Write>,
    touch_start: Vec<u32>,
    touches: Vec<Touch>,
    versions: FxHashMap<(u32, Option<Elem>), u32>,
    version_of: Vec<(u32, Option<Elem>)>,
    /// Version edges as inferred: (from, to, why, the transactions that show it).
    vedges: Vec<(u32, u32, Why, u32, u32)>,
    vgraph: Graph,
    cyclic: FxHashSet<u32>,
}

impl<'h> RwRegister<'h> {
    pub(crate) fn new(h: &'h TxnHistory, options: &TxnCheckOptions) -> Result<Self, String> {
        let mut keys: FxHashMap<Key, u32> = FxHashMap::default();
        let mut key_names = Vec::new();
        let mut writes: FxHashMap<(u32, Elem), Write> = FxHashMap::default();
        let mut touch_start = Vec::with_capacity(h.txns.len() + 1);
        let mut touches = Vec::new();
        for (ti, txn) in h.txns.iter().enumerate() {
            touch_start.push(touches.len() as u32);
            let first = touches.len();
            for (mi, mop) in txn.mops.iter().enumerate() {
                let k = *keys.entry(mop.key()).or_insert_with(|| {
                    key_names.push(mop.key());
                    key_names.len() as u32 - 1
                });
                let slot = touches[first..].iter().position(|t: &Touch| t.key == k);
                let slot = slot.map(|s| s + first).unwrap_or_else(|| {
                    touches.push(Touch {
                        key: k,
                        read: None,
                        write: None,
                    });
                    touches.len() - 1
                });
                match mop {
                    Mop::Write { key, value } => {
                        let last = !txn.mops[mi + 1..]
                            .iter()
                            .any(|m| matches!(m, Mop::Write { key: k2, .. } if k2 == key));
                        let rec = Write {
                            txn: ti as u32,
                            last,
                        };
                        if let Some(prev) = writes.insert((k, *value), rec) {
                            return Err(format!(
                                "{value} was written to key {key} twice ({} and {}); versions \
                                 can only be told apart when each value is written once",
                                t(prev.txn),
                                t(ti as u32)
                            ));
                        }
                        if last {
                            touches[slot].write = Some(*value);
                        }
                    }
                    Mop::Read {
                        value: ReadValue::Register(v),
                        ..
                    } if touches[slot].read.is_none() && touches[slot].write.is_none() => {
                        let wrote_before = txn.mops[..mi]
                            .iter()
                            .any(|m| m.is_write() && m.key() == mop.key());
                        if !wrote_before {
                            touches[slot].read = Some(*v);
                        }
                    }
                    _ => {}
                }
            }
        }
        touch_start.push(touches.len() as u32);
        let mut r = RwRegister {
            h,
            options: options.clone(),
            keys,
            key_names,
            writes,
            touch_start,
            touches,
            versions: FxHashMap::default(),
            version_of: Vec::new(),
            vedges: Vec::new(),
            vgraph: Graph::build(0, EdgeList::default()),
            cyclic: FxHashSet::default(),
        };
        r.infer_versions();
        Ok(r)
    }

    fn touches(&self, txn: u32) -> &[Touch] {
        &self.touches
            [self.touch_start[txn as usize] as usize..self.touch_start[txn as usize + 1] as usize]
    }

    fn ok(&self, txn: u32) -> bool {
        self.h.txns[txn as usize].outcome == Outcome::Ok
    }

    fn version(&mut self, key: u32, value: Option<Elem>) -> u32 {
        let next = self.version_of.len() as u32;
        let id = *self.versions.entry((key, value)).or_insert(next);
        if id == next {
            self.version_of.push((key, value));
        }
        id
    }

    fn add_vedge(
        &mut self,
        key: u32,
        from: Option<Elem>,
        to: Option<Elem>,
        why: Why,
        a: u32,
        b: u32,
    ) {
        if from != to {
            let (f, t) = (self.version(key, from), self.version(key, to));
            self.vedges.push((f, t, why, a, b));
        }
    }

    /// The version a transaction leaves a key in (its final write, else what it read), and the
    /// one it starts from (what it read, else its write).
    fn exit(t: &Touch) -> Option<Option<Elem>> {
        t.write.map(Some).or(t.read)
    }
    fn entry(t: &Touch) -> Option<Option<Elem>> {
        t.read.or(t.write.map(Some))
    }

    fn infer_versions(&mut self) {
        let n = self.h.txns.len() as u32;
        // Every final write and external read is a version.
        for ti in 0..n {
            if self.h.txns[ti as usize].outcome == Outcome::Fail {
                continue;
            }
            for i in self.touch_start[ti as usize]..self.touch_start[ti as usize + 1] {
                let tc = self.touches[i as usize];
                if let Some(w) = tc.write {
                    self.version(tc.key, Some(w));
                }
                if let (Some(r), true) = (tc.read, self.ok(ti)) {
                    self.version(tc.key, r);
                }
            }
        }
        if self.options.wfr_keys {
            let oks: Vec<u32> = (0..n).filter(|t| self.ok(*t)).collect();
            for ti in oks {
                for tc in self.touches(ti).to_vec() {
                    if let (Some(r), Some(w)) = (tc.read, tc.write) {
                        self.add_vedge(tc.key, r, Some(w), Why::Wfr, ti, ti);
                    }
                }
            }
        }
        if self.options.linearizable_keys {
            self.realtime_versions();
        }
        if self.options.sequential_keys {
            let mut last: FxHashMap<(u64, u32), u32> = FxHashMap::default();
            let mut order: Vec<u32> = (0..n).filter(|t| self.ok(*t)).collect();
            order.sort_by_key(|t| self.h.txns[*t as usize].call);
            for b in order {
                let process = self.h.txns[b as usize].process;
                for tb in self.touches(b).to_vec() {
                    if let Some(&a) = last.get(&(process, tb.key)) {
                        let ta = *self
                            .touches(a)
                            .iter()
                            .find(|x| x.key == tb.key)
                            .expect("a touch");
                        if let (Some(x), Some(y)) = (Self::exit(&ta), Self::entry(&tb)) {
                            self.add_vedge(tb.key, x, y, Why::Process, a, b);
                        }
                    }
                    last.insert((process, tb.key), b);
                }
            }
        }
        // The initial state precedes every version nothing else is known to precede.
        let mut has_pred = vec![false; self.version_of.len()];
        for e in &self.vedges {
            has_pred[e.1 as usize] = true;
        }
        for (v, &pred) in has_pred.iter().enumerate() {
            let (key, value) = self.version_of[v];
            if !pred && value.is_some() {
                self.add_vedge(key, None, value, Why::Initial, u32::MAX, u32::MAX);
            }
        }
        let mut list = EdgeList::default();
        for e in &self.vedges {
            list.add(e.0, e.1, WW);
        }
        self.vgraph = Graph::build(self.version_of.len(), list);
        for scc in self.vgraph.sccs() {
            self.cyclic.insert(self.version_of[scc[0] as usize].0);
        }
    }

    /// Real-time order per key, with the same frontier reduction as realtime edges.
    fn realtime_versions(&mut self) {
        let h = self.h;
        let mut events: Vec<(usize, bool, u32)> = Vec::new();
        for txn in h.txns.iter().filter(|t| t.outcome == Outcome::Ok) {
            events.push((txn.call, true, txn.id as u32));
            if let Some(r) = txn.ret {
                events.push((r, false, txn.id as u32));
            }
        }
        events.sort_unstable();
        let mut frontier: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (_, invoke, b) in events {
            let tb_all = self.touches(b).to_vec();
            if invoke {
                for tb in &tb_all {
                    let Some(y) = Self::entry(tb) else { continue };
                    for a in frontier.get(&tb.key).cloned().unwrap_or_default() {
                        let ta = *self
                            .touches(a)
                            .iter()
                            .find(|x| x.key == tb.key)
                            .expect("a touch");
                        if let Some(x) = Self::exit(&ta) {
                            self.add_vedge(tb.key, x, y, Why::Realtime, a, b);
                        }
                    }
                }
            } else {
                let call = h.txns[b as usize].call;
                for tb in &tb_all {
                    let f = frontier.entry(tb.key).or_default();
                    f.retain(|x| h.txns[*x as usize].ret.is_some_and(|r| r > call));
                    f.push(b);
                }
            }
        }
    }

    /// The committed (not failed) transaction whose final write is `value`.
    fn writer(&self, key: u32, value: Option<Elem>) -> Option<u32> {
        let w = self.writes.get(&(key, value?))?;
        (w.last && self.h.txns[w.txn as usize].outcome != Outcome::Fail).then_some(w.txn)
    }

    pub(crate) fn inferences(&self) -> Vec<String> {
        let mut v = vec![
            "initial state: every key starts unwritten (nil), before every written version"
                .to_string(),
        ];
        let o = &self.options;
        if o.wfr_keys {
            v.push("write-follows-read (wfr_keys): a transaction that read a key and then wrote it installed the version after the one it read".into());
        }
        if o.linearizable_keys {
            v.push("linearizable keys: a transaction that completed before another began saw or wrote an earlier version of every key both touched".into());
        }
        if o.sequential_keys {
            v.push("sequential keys: each process sees each key's versions in order".into());
        }
        if !(o.wfr_keys || o.linearizable_keys || o.sequential_keys) {
            v.push("no wfr, linearizable or sequential keys: written versions are not ordered among themselves, so ww and rw edges come only from reads of the initial state".into());
        }
        v.push("reads are external (before the transaction's own write of the key) and writes final (its last write of the key)".into());
        v
    }

    pub(crate) fn edges(&self) -> EdgeList {
        let mut edges = EdgeList::default();
        // Readers of each version (external reads of ok transactions).
        let mut readers: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for ti in 0..self.h.txns.len() as u32 {
            if !self.ok(ti) {
                continue;
            }
            for tc in self.touches(ti) {
                let Some(r) = tc.read else { continue };
                if let Some(w) = self.writer(tc.key, r) {
                    edges.add(w, ti, WR);
                }
                if let Some(&v) = self.versions.get(&(tc.key, r)) {
                    readers.entry(v).or_default().push(ti);
                }
            }
        }
        for v1 in 0..self.vgraph.vertices() as u32 {
            let (key, val1) = self.version_of[v1 as usize];
            if self.cyclic.contains(&key) {
                continue;
            }
            for (v2, _) in self.vgraph.out(v1) {
                let Some(w2) = self.writer(key, self.version_of[v2 as usize].1) else {
                    continue;
                };
                if let Some(w1) = self.writer(key, val1) {
                    edges.add(w1, w2, WW);
                }
                for &r in readers.get(&v1).map(Vec::as_slice).unwrap_or_default() {
                    edges.add(r, w2, RW);
                }
            }
        }
        edges
    }

    pub(crate) fn anomalies(&self, out: &mut Collector) {
        self.cyclic_versions(out);
        let mut lost: Vec<(u32, Option<Elem>, u32)> = Vec::new();
        for (ti, txn) in self.h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let me = ti as u32;
            let mut known: Vec<(Key, Option<Elem>)> = Vec::new();
            let mut internal = false;
            for (mi, mop) in txn.mops.iter().enumerate() {
                let key = mop.key();
                let k = self.keys[&key];
                let slot = known.iter().position(|x| x.0 == key);
                match mop {
                    Mop::Write { value, .. } => match slot {
                        Some(s) => known[s].1 = Some(*value),
                        None => known.push((key, Some(*value))),
                    },
                    Mop::Read {
                        value: ReadValue::Register(v),
                        ..
                    } => {
                        if let Some(s) = slot {
                            let want = known[s].1;
                            if want != *v && !internal {
                                internal = true;
                                out.add(AnomalyKind::Internal, || {
                                    plain(AnomalyKind::Internal, vec![ti], Some(key), format!(
                                        "internal: {} read key {key} = {}, but its own earlier read or write of the key says {}",
                                        t(me), reg(*v), reg(want)))
                                });
                            }
                            known[s].1 = *v;
                        } else {
                            known.push((key, *v));
                        }
                        let Some(value) = v else { continue };
                        let Some(w) = self.writes.get(&(k, *value)) else {
                            continue;
                        };
                        if w.txn == me {
                            // A read of the transaction's own write is fine once the write has
                            // happened (the internal check above holds it to the latest one). A
                            // read of a write the transaction makes only later saw a state no
                            // serial order has. Elle's rw-register checker has no name for this
                            // (its internal check only looks back, and the wr self-edge it
                            // builds is no cycle); we call it future-read, as list-append does
                            // for a read of an element the transaction appends later: the same
                            // phenomenon, so the same place in the lattice (ruled out from
                            // read-atomic and read-committed up), not internal, which Elle
                            // keeps for disagreements with the transaction's earlier micro-ops.
                            let later = !txn.mops[..mi].iter().any(|m| {
                                matches!(m, Mop::Write { key: k2, value: v2 } if *k2 == key && v2 == value)
                            });
                            if later {
                                out.add(AnomalyKind::FutureRead, || {
                                    plain(AnomalyKind::FutureRead, vec![ti], Some(key), format!(
                                        "future-read: {} read key {key} = {value}, a value it writes only later in the same transaction",
                                        t(me)))
                                });
                            }
                            continue;
                        }
                        let writer = &self.h.txns[w.txn as usize];
                        if writer.outcome == Outcome::Fail {
                            out.add(AnomalyKind::G1a, || {
                                plain(AnomalyKind::G1a, vec![ti, w.txn as usize], Some(key), format!(
                                    "G1a (aborted read): {} read key {key} = {value}, written by {}, which failed",
                                    t(me), t(w.txn)))
                            });
                        } else if !w.last {
                            out.add(AnomalyKind::G1b, || {
                                plain(AnomalyKind::G1b, vec![ti, w.txn as usize], Some(key), format!(
                                    "G1b (intermediate read): {} read key {key} = {value}, which {} overwrote later in the same transaction: a state that never committed",
                                    t(me), t(w.txn)))
                            });
                        }
                    }
                    _ => {}
                }
            }
            for tc in self.touches(me) {
                if let (Some(r), Some(_)) = (tc.read, tc.write) {
                    lost.push((tc.key, r, me));
                }
            }
        }
        lost.sort_unstable();
        for group in lost.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            if group.len() < 2 {
                continue;
            }
            let key = self.key_names[group[0].0 as usize];
            let txns: Vec<usize> = group.iter().map(|g| g.2 as usize).collect();
            out.add(AnomalyKind::LostUpdate, || {
                let names: Vec<String> = txns.iter().map(|x| t(*x as u32)).collect();
                plain(AnomalyKind::LostUpdate, txns.clone(), Some(key), format!(
                    "lost-update: {} all read key {key} = {} and then wrote it; they cannot all have committed in some order, so an update was lost",
                    names.join(", "), reg(group[0].1)))
            });
        }
    }

    fn cyclic_versions(&self, out: &mut Collector) {
        for scc in self.vgraph.sccs() {
            let key = self.key_names[self.version_of[scc[0] as usize].0 as usize];
            let cycle = self.version_cycle(&scc);
            out.add(AnomalyKind::CyclicVersions, || {
                let steps: Vec<String> = cycle
                    .windows(2)
                    .map(|w| self.why_version(w[0], w[1]))
                    .collect();
                let txns: Vec<usize> = cycle
                    .windows(2)
                    .filter_map(|w| {
                        let e = self.vedges.iter().find(|e| e.0 == w[0] && e.1 == w[1])?;
                        (e.3 != u32::MAX).then_some(e.3 as usize)
                    })
                    .collect();
                plain(AnomalyKind::CyclicVersions, txns, Some(key), format!(
                    "cyclic-versions: the versions of key {key} must follow each other in a circle, so no order of them exists: {}",
                    steps.join("; ")))
            });
        }
    }

    /// A shortest cycle through the first version of a component, as versions (closed).
    fn version_cycle(&self, scc: &[u32]) -> Vec<u32> {
        let start = scc[0];
        let inside: FxHashSet<u32> = scc.iter().copied().collect();
        let mut parent: FxHashMap<u32, u32> = FxHashMap::default();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for (w, _) in self.vgraph.out(v) {
                if !inside.contains(&w) {
                    continue;
                }
                if w == start {
                    let mut path = vec![start, v];
                    let mut x = v;
                    while x != start {
                        x = parent[&x];
                        path.push(x);
                    }
                    path.reverse();
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        vec![start, start]
    }

    fn why_version(&self, from: u32, to: u32) -> String {
        let (_, a) = self.version_of[from as usize];
        let (_, b) = self.version_of[to as usize];
        let e = self.vedges.iter().find(|e| e.0 == from && e.1 == to);
        let because = match e {
            Some(&(_, _, Why::Wfr, x, _)) => {
                format!("{} read {} and then wrote {}", t(x), reg(a), reg(b))
            }
            Some(&(_, _, Why::Realtime, x, y)) => format!(
                "{} completed before {} began (linearizable keys)",
                t(x),
                t(y)
            ),
            Some(&(_, _, Why::Process, x, y)) => format!(
                "process {} ran {} before {} (sequential keys)",
                self.h.txns[x as usize].process,
                t(x),
                t(y)
            ),
            _ => "the initial state comes first".to_string(),
        };
        format!("{} before {}: {because}", reg(a), reg(b))
    }

    /// A version edge `v1 -> v2` on key `k` between a's and b's touches, with its reason.
    fn find_vedge(
        &self,
        a: &[Touch],
        b: &[Touch],
        use_read: bool,
    ) -> Option<(u32, Option<Elem>, Elem, String)> {
        for tb in b {
            let Some(w2) = tb.write else { continue };
            if self.cyclic.contains(&tb.key) {
                continue;
            }
            for ta in a.iter().filter(|x| x.key == tb.key) {
                let v1 = if use_read {
                    ta.read
                } else {
                    ta.write.map(Some)
                };
                let Some(v1) = v1 else { continue };
                let (Some(&f), Some(&t2)) = (
                    self.versions.get(&(ta.key, v1)),
                    self.versions.get(&(tb.key, Some(w2))),
                ) else {
                    continue;
                };
                if self.vgraph.mask(f, t2) != 0 {
                    return Some((tb.key, v1, w2, self.why_version(f, t2)));
                }
            }
        }
        None
    }
}

impl ExplainData for RwRegister<'_> {
    fn data_edge(&self, from: u32, to: u32, kind: EdgeKind) -> Option<(Key, Option<Elem>, String)> {
        let (a, b) = (self.touches(from), self.touches(to));
        match kind {
            EdgeKind::Wr => b.iter().find_map(|tb| {
                let r = tb.read?;
                (self.writer(tb.key, r) == Some(from)).then(|| {
                    let key = self.key_names[tb.key as usize];
                    (
                        key,
                        r,
                        format!(
                            "{} read key {key} = {}, written by {}: wr",
                            t(to),
                            reg(r),
                            t(from)
                        ),
                    )
                })
            }),
            EdgeKind::Ww => {
                let (k, v1, w2, why) = self.find_vedge(a, b, false)?;
                let key = self.key_names[k as usize];
                Some((
                    key,
                    Some(w2),
                    format!(
                        "{} wrote {w2} to key {key} after {} wrote {} ({why}): ww",
                        t(to),
                        t(from),
                        reg(v1)
                    ),
                ))
            }
            EdgeKind::Rw => {
                let (k, v1, w2, why) = self.find_vedge(a, b, true)?;
                let key = self.key_names[k as usize];
                Some((
                    key,
                    Some(w2),
                    format!(
                    "{} wrote {w2} to key {key}, the version after {}, which {} read ({why}): rw",
                    t(to), reg(v1), t(from)),
                ))
            }
            _ => None,
        }
    }
}
