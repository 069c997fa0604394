//! list-append's anomalies without cycles: incompatible orders and duplicates, aborted and
//! intermediate reads, dirty updates, lost updates, internal and future reads.

use rustc_hash::FxHashSet;

use super::{list_of, ListAppend, NONE};
use crate::history::Outcome;
use crate::txn::anomalies::{plain, Collector};
use crate::txn::explain::{list, t};
use crate::txn::history::{Elem, Key, Mop, ReadValue};
use crate::txn::result::AnomalyKind;

impl ListAppend<'_> {
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
