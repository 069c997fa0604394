//! list-append: every read shows the order of the appends before it, so the longest read of a
//! key is its version order (Elle's inference). From that order come the ww, wr and rw edges,
//! and the anomalies visible without a cycle: aborted and intermediate reads, incompatible
//! orders, duplicates, dirty updates, internal and future reads, lost updates.
//!
//! The checks that need no cycle are in [`checks`].
//!
//! Reads are never copied: a read is located in the order by its last element, and checked
//! against the longest read as a prefix once.

mod checks;

use rustc_hash::{FxHashMap, FxHashSet};

use super::explain::{list, t, ExplainData};
use super::graph::{EdgeList, RW, WR, WW};
use super::history::{Elem, Key, Mop, ReadValue, TxnHistory};
use super::result::EdgeKind;
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
