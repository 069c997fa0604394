//! list-append: every read shows the order of the appends before it, so the longest read of a
//! key is its version order (Elle's inference). From that order come the ww, wr and rw edges,
//! and the anomalies visible without a cycle: aborted and intermediate reads, incompatible
//! orders, duplicates, dirty updates, internal and future reads, lost updates.
//!
//! Reads are never copied: a read is located in the order by its last element, and checked
//! against the longest read as a prefix once.

use rustc_hash::{FxHashMap, FxHashSet};

use super::anomalies::{plain, Collector};
use super::explain::{list, t, ExplainData};
use super::graph::{EdgeList, RW, WR, WW};
use super::history::{Elem, Key, Mop, ReadValue, TxnHistory};
use super::result::{AnomalyKind, EdgeKind};
use crate::history::Outcome;

const NONE: u32 = u32::MAX;

/// Who appended an element, and where it sits in its key's version order.
#[derive(Clone, Copy)]
struct Append {
    txn: u32,
    mop: u32,
    /// Index in the key's version order, or `NONE` when no read saw it.
    pos: u32,
}

pub(crate) struct ListAppend<'h> {
    h: &'h TxnHistory,
    keys: FxHashMap<Key, u32>,
    appends: FxHashMap<(u32, Elem), Append>,
    /// Per key: the version order (the longest read, each element once).
    orders: Vec<Vec<Elem>>,
    /// Per key: the longest read as read, to check other reads against as prefixes.
    longest: Vec<Option<(u32, u32)>>,
    /// Per key: committed transactions whose appends no read saw; they follow the whole order.
    unread: Vec<Vec<(u32, Elem)>>,
}

fn list_of(mop: &Mop) -> Option<(Key, &[Elem])> {
    match mop {
        Mop::Read {
            key,
            value: ReadValue::List(l),
        } => Some((*key, l.as_slice())),
        _ => None,
    }
}

impl<'h> ListAppend<'h> {
    /// Infers the version orders. Fails (verdict unknown) when an element was appended twice to
    /// a key: the inference needs unique appends.
    pub(crate) fn new(h: &'h TxnHistory) -> Result<ListAppend<'h>, String> {
        let mut keys: FxHashMap<Key, u32> = FxHashMap::default();
        let mut appends: FxHashMap<(u32, Elem), Append> = FxHashMap::default();
        for (ti, txn) in h.txns.iter().enumerate() {
            for (mi, mop) in txn.mops.iter().enumerate() {
                let n = keys.len() as u32;
                let k = *keys.entry(mop.key()).or_insert(n);
                if let Mop::Append { key, value } = mop {
                    let rec = Append {
                        txn: ti as u32,
                        mop: mi as u32,
                        pos: NONE,
                    };
                    if let Some(prev) = appends.insert((k, *value), rec) {
                        return Err(format!(
                            "{value} was appended to key {key} twice ({} and {}); the version \
                             order can only be inferred when each element is appended once",
                            t(prev.txn),
                            t(ti as u32)
                        ));
                    }
                }
            }
        }
        let nkeys = keys.len();
        let mut longest: Vec<Option<(u32, u32)>> = vec![None; nkeys];
        let mut longest_len = vec![0usize; nkeys];
        for (ti, txn) in h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            for (mi, mop) in txn.mops.iter().enumerate() {
                if let Some((key, l)) = list_of(mop) {
                    let k = keys[&key] as usize;
                    if !l.is_empty() && l.len() > longest_len[k] {
                        longest_len[k] = l.len();
                        longest[k] = Some((ti as u32, mi as u32));
                    }
                }
            }
        }
        let mut la = ListAppend {
            h,
            keys,
            appends,
            orders: vec![Vec::new(); nkeys],
            longest,
            unread: vec![Vec::new(); nkeys],
        };
        for k in 0..nkeys {
            let Some(src) = la.longest[k] else { continue };
            let read = la.read_at(src).1;
            let mut seen = FxHashSet::default();
            let order: Vec<Elem> = read.iter().copied().filter(|e| seen.insert(*e)).collect();
            for (i, e) in order.iter().enumerate() {
                if let Some(a) = la.appends.get_mut(&(k as u32, *e)) {
                    a.pos = i as u32;
                }
            }
            la.orders[k] = order;
        }
        let mut unread: Vec<Vec<(u32, Elem)>> = vec![Vec::new(); nkeys];
        for (&(k, e), a) in &la.appends {
            if a.pos == NONE && h.txns[a.txn as usize].outcome == Outcome::Ok {
                unread[k as usize].push((a.txn, e));
            }
        }
        for u in &mut unread {
            u.sort_unstable();
        }
        la.unread = unread;
        Ok(la)
    }

    fn read_at(&self, (t, m): (u32, u32)) -> (Key, &'h [Elem]) {
        list_of(&self.h.txns[t as usize].mops[m as usize]).expect("a read")
    }

    fn outcome(&self, txn: u32) -> Outcome {
        self.h.txns[txn as usize].outcome
    }

    /// The writer of an element, when it did not fail.
    fn committed_writer(&self, k: u32, e: Elem) -> Option<u32> {
        self.appends
            .get(&(k, e))
            .filter(|a| self.outcome(a.txn) != Outcome::Fail)
            .map(|a| a.txn)
    }

    /// True when `read` is a prefix of the key's longest read.
    fn compatible(&self, k: u32, read: &[Elem]) -> bool {
        match self.longest[k as usize] {
            Some(src) => {
                let l = self.read_at(src).1;
                read.len() <= l.len() && l[..read.len()] == *read
            }
            None => read.is_empty(),
        }
    }

    /// The version a read observed: how many elements of the order precede it (0 = the empty
    /// list), or `NONE` when its last element is not in the order.
    fn version(&self, k: u32, read: &[Elem]) -> u32 {
        match read.last() {
            None => 0,
            Some(e) => match self.appends.get(&(k, *e)) {
                Some(a) if a.pos != NONE => a.pos + 1,
                _ => NONE,
            },
        }
    }

    /// ww, wr and rw edges between transactions.
    pub(crate) fn edges(&self) -> EdgeList {
        let mut edges = EdgeList::default();
        for (k, order) in self.orders.iter().enumerate() {
            let k = k as u32;
            let writers: Vec<Option<u32>> =
                order.iter().map(|e| self.committed_writer(k, *e)).collect();
            for w in writers.windows(2) {
                if let (Some(a), Some(b)) = (w[0], w[1]) {
                    edges.add(a, b, WW);
                }
            }
            if let Some(Some(last)) = writers.last() {
                for &(b, _) in &self.unread[k as usize] {
                    edges.add(*last, b, WW);
                }
            }
        }
        for (ti, txn) in self.h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let r = ti as u32;
            for mop in &txn.mops {
                let Some((key, read)) = list_of(mop) else {
                    continue;
                };
                let k = self.keys[&key];
                if let Some(e) = read.last() {
                    if let Some(w) = self.committed_writer(k, *e) {
                        edges.add(w, r, WR);
                    }
                }
                let v = self.version(k, read);
                let order = &self.orders[k as usize];
                if v == NONE {
                    continue;
                }
                if (v as usize) < order.len() {
                    if let Some(w) = self.committed_writer(k, order[v as usize]) {
                        edges.add(r, w, RW);
                    }
                } else {
                    for &(w, _) in &self.unread[k as usize] {
                        edges.add(r, w, RW);
                    }
                }
            }
        }
        edges
    }

    /// The anomalies seen without cycles.
    pub(crate) fn anomalies(&self, out: &mut Collector) {
        self.order_anomalies(out);
        self.read_anomalies(out);
        self.dirty_updates(out);
        self.lost_updates(out);
        for (ti, txn) in self.h.txns.iter().enumerate() {
            if txn.outcome == Outcome::Ok && repeats_a_key(&txn.mops) {
                self.internal(ti as u32, out);
            }
        }
    }

    fn order_anomalies(&self, out: &mut Collector) {
        let mut bad_keys: FxHashSet<u32> = FxHashSet::default();
        for (ti, txn) in self.h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            for mop in &txn.mops {
                let Some((key, read)) = list_of(mop) else {
                    continue;
                };
                let k = self.keys[&key];
                if self.compatible(k, read) {
                    continue;
                }
                let src = self.longest[k as usize].expect("a longer read exists");
                if bad_keys.insert(k) {
                    let longest = self.read_at(src).1;
                    out.add(AnomalyKind::IncompatibleOrder, || {
                        plain(
                            AnomalyKind::IncompatibleOrder,
                            vec![ti, src.0 as usize],
                            Some(key),
                            format!(
                                "incompatible-order: {} read key {key} as {} and {} read it as \
                                 {}; neither is a prefix of the other, so no single order of \
                                 appends explains both",
                                t(ti as u32),
                                list(read),
                                t(src.0),
                                list(longest)
                            ),
                        )
                    });
                }
                let mut seen = FxHashSet::default();
                if let Some(dup) = read.iter().find(|e| !seen.insert(**e)) {
                    out.add(AnomalyKind::DuplicateElements, || {
                        plain(
                            AnomalyKind::DuplicateElements,
                            vec![ti],
                            Some(key),
                            format!(
                                "duplicate-elements: {} read key {key} as {}, where {dup} \
                                 appears more than once; each element is appended once",
                                t(ti as u32),
                                list(read)
                            ),
                        )
                    });
                }
            }
        }
        // Reads that are prefixes of the longest read repeat an element only if it does.
        for (k, src) in self.longest.iter().enumerate() {
            let Some(src) = *src else { continue };
            let (key, read) = self.read_at(src);
            if read.len() != self.orders[k].len() && !bad_keys.contains(&(k as u32)) {
                let dup = self.orders[k]
                    .iter()
                    .zip(read)
                    .find(|(a, b)| a != b)
                    .map_or(read[self.orders[k].len()], |(_, b)| *b);
                out.add(AnomalyKind::DuplicateElements, || {
                    plain(
                        AnomalyKind::DuplicateElements,
                        vec![src.0 as usize],
                        Some(key),
                        format!(
                            "duplicate-elements: {} read key {key} as {}, where {dup} appears \
                             more than once; each element is appended once",
                            t(src.0),
                            list(read)
                        ),
                    )
                });
            }
        }
    }

    fn read_anomalies(&self, out: &mut Collector) {
        // First position of an aborted element in each order: reads shorter than it are clean.
        let first_failed: Vec<u32> = self
            .orders
            .iter()
            .enumerate()
            .map(|(k, order)| {
                order
                    .iter()
                    .position(|e| {
                        self.appends
                            .get(&(k as u32, *e))
                            .is_some_and(|a| self.outcome(a.txn) == Outcome::Fail)
                    })
                    .map_or(NONE, |p| p as u32)
            })
            .collect();
        for (ti, txn) in self.h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let r = ti as u32;
            for mop in &txn.mops {
                let Some((key, read)) = list_of(mop) else {
                    continue;
                };
                let k = self.keys[&key];
                let clean =
                    self.compatible(k, read) && read.len() as u32 <= first_failed[k as usize];
                if !clean {
                    for e in read {
                        let Some(a) = self.appends.get(&(k, *e)) else {
                            continue;
                        };
                        if self.outcome(a.txn) == Outcome::Fail && a.txn != r {
                            out.add(AnomalyKind::G1a, || {
                                plain(
                                    AnomalyKind::G1a,
                                    vec![ti, a.txn as usize],
                                    Some(key),
                                    format!(
                                        "G1a (aborted read): {} read key {key} as {}, which \
                                         includes {e}, appended by {}, which failed",
                                        t(r),
                                        list(read),
                                        t(a.txn)
                                    ),
                                )
                            });
                        }
                    }
                }
                let Some(e) = read.last() else { continue };
                let Some(a) = self.appends.get(&(k, *e)) else {
                    continue;
                };
                if a.txn == r {
                    continue;
                }
                let writer = &self.h.txns[a.txn as usize];
                let later = writer.mops[a.mop as usize + 1..]
                    .iter()
                    .find_map(|m| match m {
                        Mop::Append { key: k2, value } if *k2 == key => Some(*value),
                        _ => None,
                    });
                if let Some(next) = later {
                    out.add(AnomalyKind::G1b, || {
                        plain(
                            AnomalyKind::G1b,
                            vec![ti, a.txn as usize],
                            Some(key),
                            format!(
                                "G1b (intermediate read): {} read key {key} as {}, ending with \
                                 {e}, but {} appended {next} to key {key} after {e} in the same \
                                 transaction: {} saw a state that never committed",
                                t(r),
                                list(read),
                                t(a.txn),
                                t(r)
                            ),
                        )
                    });
                }
            }
        }
    }

    /// A committed append directly after aborted ones in the version order (Elle's walk: info
    /// appends neither clear nor prove an aborted state).
    fn dirty_updates(&self, out: &mut Collector) {
        for (k, order) in self.orders.iter().enumerate() {
            let key = self.key_of(k as u32);
            let mut last: (Outcome, Option<u32>) = (Outcome::Ok, None);
            let mut run: Vec<Elem> = Vec::new();
            for e in order {
                let Some(a) = self.appends.get(&(k as u32, *e)) else {
                    continue;
                };
                let now = self.outcome(a.txn);
                run.push(*e);
                match (last.0, now) {
                    (_, Outcome::Info) | (Outcome::Fail, Outcome::Fail) => {}
                    (Outcome::Fail, Outcome::Ok) => {
                        let aborted = last.1.expect("an aborted writer");
                        let values = run.clone();
                        out.add(AnomalyKind::DirtyUpdate, || {
                            plain(
                                AnomalyKind::DirtyUpdate,
                                vec![aborted as usize, a.txn as usize],
                                Some(key),
                                format!(
                                    "dirty-update: on key {key}, {} appended {e} on top of \
                                     {}, whose append failed (elements {}): a committed write \
                                     built on an aborted one",
                                    t(a.txn),
                                    t(aborted),
                                    list(&values)
                                ),
                            )
                        });
                        last = (now, Some(a.txn));
                        run = vec![*e];
                    }
                    _ => {
                        last = (now, Some(a.txn));
                        run = vec![*e];
                    }
                }
            }
        }
    }

    /// Two committed transactions that read the same version of a key and both appended to it.
    fn lost_updates(&self, out: &mut Collector) {
        // (key, version length, last element, txn)
        let mut cases: Vec<(u32, usize, Elem, u32)> = Vec::new();
        for (ti, txn) in self.h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            for (i, mop) in txn.mops.iter().enumerate() {
                let Some((key, read)) = list_of(mop) else {
                    continue;
                };
                let earlier = txn.mops[..i].iter().any(|m| m.key() == key);
                let appends_later = txn.mops[i + 1..]
                    .iter()
                    .any(|m| matches!(m, Mop::Append { key: k2, .. } if *k2 == key));
                if !earlier && appends_later {
                    let k = self.keys[&key];
                    cases.push((k, read.len(), *read.last().unwrap_or(&Elem::MIN), ti as u32));
                }
            }
        }
        cases.sort_unstable();
        for group in cases.chunk_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2)) {
            if group.len() < 2 {
                continue;
            }
            let key = self.key_of(group[0].0);
            let txns: Vec<usize> = group.iter().map(|c| c.3 as usize).collect();
            let (t0, m0) = (group[0].3, self.first_read(group[0].3, key));
            let seen = self.read_at((t0, m0)).1;
            out.add(AnomalyKind::LostUpdate, || {
                let names: Vec<String> = txns.iter().map(|x| t(*x as u32)).collect();
                plain(
                    AnomalyKind::LostUpdate,
                    txns.clone(),
                    Some(key),
                    format!(
                        "lost-update: {} all read key {key} as {} and then appended to it; \
                         they cannot all have committed in some order, so an update was lost",
                        names.join(", "),
                        list(seen)
                    ),
                )
            });
        }
    }

    fn first_read(&self, txn: u32, key: Key) -> u32 {
        self.h.txns[txn as usize]
            .mops
            .iter()
            .position(|m| matches!(m, Mop::Read { key: k, .. } if *k == key))
            .expect("the transaction read the key") as u32
    }

    fn key_of(&self, k: u32) -> Key {
        let src = self.longest[k as usize];
        match src {
            Some(s) => self.read_at(s).0,
            None => {
                *self
                    .keys
                    .iter()
                    .find(|(_, v)| **v == k)
                    .expect("an interned key")
                    .0
            }
        }
    }

    /// internal (a read that disagrees with the transaction's own earlier reads and appends) and
    /// future-read (a read of an element the transaction appends later).
    fn internal(&self, ti: u32, out: &mut Collector) {
        let mops = &self.h.txns[ti as usize].mops;
        // Per key: the expected list, and whether its beginning is unknown (appends only).
        let mut expect: Vec<(Key, bool, Vec<Elem>)> = Vec::new();
        let mut internal_done = false;
        for (i, mop) in mops.iter().enumerate() {
            let key = mop.key();
            let slot = expect.iter().position(|s| s.0 == key);
            match mop {
                Mop::Append { value, .. } => match slot {
                    Some(s) => expect[s].2.push(*value),
                    None => expect.push((key, true, vec![*value])),
                },
                Mop::Read {
                    value: ReadValue::List(read),
                    ..
                } => {
                    if let Some(future) = mops[i + 1..].iter().find_map(|m| match m {
                        Mop::Append { key: k2, value } if *k2 == key && read.contains(value) => {
                            Some(*value)
                        }
                        _ => None,
                    }) {
                        out.add(AnomalyKind::FutureRead, || {
                            plain(
                                AnomalyKind::FutureRead,
                                vec![ti as usize],
                                Some(key),
                                format!(
                                    "future-read: {} read key {key} as {}, which includes \
                                     {future}, an element {} appends only later",
                                    t(ti),
                                    list(read),
                                    t(ti)
                                ),
                            )
                        });
                    }
                    if let Some(s) = slot {
                        let (_, open, want) = &expect[s];
                        let ok = if *open {
                            read.len() >= want.len() && read[read.len() - want.len()..] == **want
                        } else {
                            read == want
                        };
                        if !ok && !internal_done {
                            internal_done = true;
                            let want = if *open {
                                format!("a list ending in {}", list(want))
                            } else {
                                list(want)
                            };
                            out.add(AnomalyKind::Internal, || {
                                plain(
                                    AnomalyKind::Internal,
                                    vec![ti as usize],
                                    Some(key),
                                    format!(
                                        "internal: {} read key {key} as {}, but its own earlier \
                                         reads and appends say it must see {want}",
                                        t(ti),
                                        list(read)
                                    ),
                                )
                            });
                        }
                        expect[s] = (key, false, read.clone());
                    } else {
                        expect.push((key, false, read.clone()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Whether some key appears twice among the micro-ops: only then can a transaction disagree
/// with itself.
fn repeats_a_key(mops: &[Mop]) -> bool {
    if mops.len() <= 16 {
        return mops
            .iter()
            .enumerate()
            .any(|(i, m)| mops[..i].iter().any(|p| p.key() == m.key()));
    }
    let mut seen = FxHashSet::default();
    mops.iter().any(|m| !seen.insert(m.key()))
}

impl ExplainData for ListAppend<'_> {
    fn data_edge(&self, from: u32, to: u32, kind: EdgeKind) -> Option<(Key, Option<Elem>, String)> {
        let txns = &self.h.txns;
        match kind {
            EdgeKind::Ww => txns[to as usize].mops.iter().find_map(|m| {
                let Mop::Append { key, value } = m else {
                    return None;
                };
                let k = self.keys[key];
                let order = &self.orders[k as usize];
                let a = self.appends.get(&(k, *value))?;
                let (prev, unread) = if a.pos == NONE {
                    (*order.last()?, true)
                } else if a.pos > 0 {
                    (order[a.pos as usize - 1], false)
                } else {
                    return None;
                };
                (self.committed_writer(k, prev) == Some(from)).then(|| {
                    let note = if unread { " (no read saw it)" } else { "" };
                    (
                        *key,
                        Some(*value),
                        format!(
                            "{} appended {value}{note} to key {key} after {} appended {prev}: ww",
                            t(to),
                            t(from)
                        ),
                    )
                })
            }),
            EdgeKind::Wr => txns[to as usize].mops.iter().find_map(|m| {
                let (key, read) = list_of(m)?;
                let e = read.last()?;
                (self.committed_writer(self.keys[&key], *e) == Some(from)).then(|| {
                    (
                        key,
                        Some(*e),
                        format!(
                            "{} read key {key} as {}, the last element written by {}: wr",
                            t(to),
                            list(read),
                            t(from)
                        ),
                    )
                })
            }),
            EdgeKind::Rw => txns[from as usize].mops.iter().find_map(|m| {
                let (key, read) = list_of(m)?;
                let k = self.keys[&key];
                let v = self.version(k, read);
                let order = &self.orders[k as usize];
                if v == NONE {
                    return None;
                }
                let next = if (v as usize) < order.len() {
                    let e = order[v as usize];
                    (self.committed_writer(k, e) == Some(to)).then_some(e)
                } else {
                    self.unread[k as usize]
                        .iter()
                        .find(|(w, _)| *w == to)
                        .map(|(_, e)| *e)
                }?;
                Some((
                    key,
                    Some(next),
                    format!(
                        "{} appended {next} to key {key} after {} read key {key} as {}: rw",
                        t(to),
                        t(from),
                        list(read)
                    ),
                ))
            }),
            _ => None,
        }
    }
}
