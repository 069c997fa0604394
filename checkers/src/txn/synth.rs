//! Large synthetic list-append histories, for timing the isolation checker and `fissure check`.
//!
//! Transactions come from a fixed number of concurrent processes, each with one transaction in
//! flight, and take effect atomically at completion against an in-memory store: the history is
//! strict-serializable. Keys rotate the way Elle's generator rotates them: a window of active
//! keys, each retired after a bounded number of appends, so reads stay short however long the
//! history. A few transactions fail (no effect) or end `info` (effect or not, and the process is
//! replaced, as Jepsen does). Optionally exactly one G-single is planted.

use serde_json::{json, Value};

use super::history::{Elem, Key};
use crate::history::{Event, EventType, History};

/// The shape of a synthetic history.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub txns: usize,
    /// Concurrent processes (each with at most one transaction in flight).
    pub processes: usize,
    /// Keys appended to and read at any time.
    pub active_keys: usize,
    /// Appends a key takes before it is retired for a fresh one.
    pub appends_per_key: usize,
    /// Micro-ops per transaction, from 1 to this.
    pub max_mops: usize,
    /// Per thousand transactions: how many fail, and how many end `info`.
    pub fail_per_mille: u32,
    pub info_per_mille: u32,
    pub seed: u64,
    /// Plant one G-single (read skew) half way through.
    pub g_single: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            txns: 10_000,
            processes: 20,
            active_keys: 8,
            appends_per_key: 32,
            max_mops: 4,
            fail_per_mille: 5,
            info_per_mille: 5,
            seed: 1,
            g_single: false,
        }
    }
}

/// The planted G-single, by `Txn::id` (invocation order among transactions): `reader` read
/// `stale_key` without `writer`'s append to it, yet read `writer`'s append to `seen_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlantedGSingle {
    pub writer: usize,
    pub reader: usize,
    pub stale_key: Key,
    pub seen_key: Key,
}

/// A synthetic history in memory, and the G-single planted in it, if asked for.
pub fn list_append_history(options: &SynthOptions) -> (History, Option<PlantedGSingle>) {
    let mut events = Vec::with_capacity(options.txns * 2);
    let planted = list_append_events(options, |e| events.push(e));
    (History::from_events(events), planted)
}

/// Generates the history's events in order, each handed to `emit` (with its `index` set), so
/// a large history can go straight to a file.
pub fn list_append_events(
    options: &SynthOptions,
    emit: impl FnMut(Event),
) -> Option<PlantedGSingle> {
    let mut gen = Generator::new(options, emit);
    let plant_at = options.g_single.then_some(options.txns / 2);
    let mut planted = None;
    while gen.invoked < options.txns {
        if plant_at == Some(gen.invoked) && gen.invoked + 3 <= options.txns {
            planted = Some(gen.plant_g_single());
            continue;
        }
        let slot = gen.rng.below(gen.slots.len());
        match gen.slots[slot].open.take() {
            Some(txn) => gen.complete(slot, txn),
            None => {
                let txn = gen.new_txn();
                gen.invoke(slot, txn);
            }
        }
    }
    for slot in 0..gen.slots.len() {
        if let Some(txn) = gen.slots[slot].open.take() {
            gen.complete(slot, txn);
        }
    }
    planted
}

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy)]
enum Op {
    Append(Key, Elem),
    Read(Key),
}

struct Slot {
    process: u64,
    open: Option<Vec<Op>>,
}

struct Generator<'a, F> {
    options: &'a SynthOptions,
    emit: F,
    rng: Rng,
    slots: Vec<Slot>,
    /// Each key's list; keys are 0, 1, 2, ... and only the window's are appended to.
    lists: Vec<Vec<Elem>>,
    /// Appends allocated per key, counting ones that never took effect: values are 1, 2, 3, ...
    /// per key, so unique.
    allocated: Vec<Elem>,
    window: Vec<Key>,
    next_key: Key,
    invoked: usize,
    index: u64,
}

impl<'a, F: FnMut(Event)> Generator<'a, F> {
    fn new(options: &'a SynthOptions, emit: F) -> Self {
        let processes = options.processes.max(1);
        let keys = options.active_keys.max(2);
        Generator {
            options,
            emit,
            rng: Rng(options.seed),
            slots: (0..processes as u64)
                .map(|process| Slot {
                    process,
                    open: None,
                })
                .collect(),
            lists: vec![Vec::new(); keys],
            allocated: vec![0; keys],
            window: (0..keys as Key).collect(),
            next_key: keys as Key,
            invoked: 0,
            index: 0,
        }
    }

    /// A fresh value for `key`, retiring the key for a new one once it has had its appends.
    fn append_value(&mut self, key: Key) -> Elem {
        self.allocated[key as usize] += 1;
        let value = self.allocated[key as usize];
        if value as usize >= self.options.appends_per_key.max(1) {
            if let Some(pos) = self.window.iter().position(|&k| k == key) {
                self.window[pos] = self.next_key;
                self.next_key += 1;
                self.lists.push(Vec::new());
                self.allocated.push(0);
            }
        }
        value
    }

    fn new_txn(&mut self) -> Vec<Op> {
        let n = 1 + self.rng.below(self.options.max_mops.max(1));
        (0..n)
            .map(|_| {
                let key = self.window[self.rng.below(self.window.len())];
                if self.rng.next() & 1 == 0 {
                    Op::Read(key)
                } else {
                    Op::Append(key, self.append_value(key))
                }
            })
            .collect()
    }

    fn emit(&mut self, slot: usize, kind: EventType, value: Value) {
        let mut event = Event::client(self.slots[slot].process, kind, "txn", value);
        event.index = self.index;
        // A microsecond a step: timestamps in the file, as a recorder writes them.
        event.time = Some(self.index * 1_000);
        self.index += 1;
        (self.emit)(event);
    }

    fn invoke(&mut self, slot: usize, txn: Vec<Op>) {
        self.emit(slot, EventType::Invoke, mops_json(&txn, None));
        self.slots[slot].open = Some(txn);
        self.invoked += 1;
    }

    /// Completes the slot's transaction: it takes effect now, atomically, unless it fails (or
    /// ends `info` and the coin says it never happened).
    fn complete(&mut self, slot: usize, txn: Vec<Op>) {
        let roll = self.rng.below(1000) as u32;
        let fail = roll < self.options.fail_per_mille;
        let info = !fail && roll < self.options.fail_per_mille + self.options.info_per_mille;
        if fail || (info && self.rng.next() & 1 == 0) {
            let kind = if fail {
                EventType::Fail
            } else {
                EventType::Info
            };
            self.emit(slot, kind, mops_json(&txn, None));
        } else {
            let reads = self.execute(&txn);
            let kind = if info { EventType::Info } else { EventType::Ok };
            let value = mops_json(&txn, (!info).then_some(&reads));
            self.emit(slot, kind, value);
        }
        if info {
            // Jepsen gives the crashed process's slot a new process number.
            self.slots[slot].process += self.slots.len() as u64;
        }
    }

    /// Applies the transaction to the store: what each read returns.
    fn execute(&mut self, txn: &[Op]) -> Vec<Option<Vec<Elem>>> {
        txn.iter()
            .map(|op| match *op {
                Op::Append(key, value) => {
                    self.lists[key as usize].push(value);
                    None
                }
                Op::Read(key) => Some(self.lists[key as usize].clone()),
            })
            .collect()
    }

    /// Completes whatever is in flight on the first three slots, then runs, one after the other,
    /// a writer appending to two keys, a reader that sees its append to the second key but reads
    /// the first as it was before (the planted anomaly), and a reader of the first key, so the
    /// stale version's successor is known to the checker.
    fn plant_g_single(&mut self) -> PlantedGSingle {
        for slot in 0..3.min(self.slots.len()) {
            if let Some(txn) = self.slots[slot].open.take() {
                self.complete(slot, txn);
            }
        }
        let [w, r, v] = [0, 1 % self.slots.len(), 2 % self.slots.len()];
        let stale_key = self.window[0];
        let seen_key = self.window[1];
        let writer_txn = vec![
            Op::Append(stale_key, self.append_value(stale_key)),
            Op::Append(seen_key, self.append_value(seen_key)),
        ];
        let writer = self.invoked;
        self.invoke(w, writer_txn.clone());
        self.slots[w].open = None;
        let reads = self.execute(&writer_txn);
        self.emit(w, EventType::Ok, mops_json(&writer_txn, Some(&reads)));

        let reader_txn = vec![Op::Read(stale_key), Op::Read(seen_key)];
        let reader = self.invoked;
        self.invoke(r, reader_txn.clone());
        self.slots[r].open = None;
        let mut reads = self.execute(&reader_txn);
        if let Some(Some(list)) = reads.first_mut() {
            list.pop();
        }
        self.emit(r, EventType::Ok, mops_json(&reader_txn, Some(&reads)));

        let witness = vec![Op::Read(stale_key)];
        self.invoke(v, witness.clone());
        self.slots[v].open = None;
        let reads = self.execute(&witness);
        self.emit(v, EventType::Ok, mops_json(&witness, Some(&reads)));
        PlantedGSingle {
            writer,
            reader,
            stale_key,
            seen_key,
        }
    }
}

/// Micro-ops as Elle writes them; reads `null` until `reads` fills them in.
fn mops_json(txn: &[Op], reads: Option<&Vec<Option<Vec<Elem>>>>) -> Value {
    Value::Array(
        txn.iter()
            .enumerate()
            .map(|(i, op)| match *op {
                Op::Append(key, value) => json!(["append", key, value]),
                Op::Read(key) => {
                    let read = reads.and_then(|r| r[i].as_ref());
                    json!(["r", key, read])
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::reference::{serial_order, Order};
    use crate::txn::{txn_history, TxnWorkload};

    fn small(g_single: bool, seed: u64) -> SynthOptions {
        SynthOptions {
            txns: 12,
            processes: 3,
            active_keys: 3,
            appends_per_key: 4,
            max_mops: 3,
            fail_per_mille: 100,
            info_per_mille: 100,
            seed,
            g_single,
        }
    }

    fn txns(options: &SynthOptions) -> (crate::txn::TxnHistory, Option<PlantedGSingle>) {
        let (history, planted) = list_append_history(options);
        let ops = history.operations().expect("synthetic histories pair");
        let h = txn_history(&ops, TxnWorkload::ListAppend).expect("and read");
        assert_eq!(h.txns.len(), options.txns);
        (h, planted)
    }

    #[test]
    fn histories_without_a_plant_are_strict_serializable() {
        for seed in 0..20 {
            let (h, planted) = txns(&small(false, seed));
            assert_eq!(planted, None);
            let order = serial_order(&h, Order::StrictSerial).unwrap();
            assert!(order.is_some(), "seed {seed}: {h:?}");
        }
    }

    #[test]
    fn a_planted_g_single_is_not_serializable() {
        for seed in 0..20 {
            let (h, planted) = txns(&small(true, seed));
            let planted = planted.expect("planted");
            assert_eq!(
                serial_order(&h, Order::Serial).unwrap(),
                None,
                "seed {seed}"
            );
            let reader = &h.txns[planted.reader];
            assert_eq!(reader.mops[0].key(), planted.stale_key);
            assert!(h.txns[planted.writer].mops.iter().all(|m| m.is_write()));
        }
    }

    #[test]
    fn keys_retire_after_their_appends() {
        let options = SynthOptions {
            txns: 2_000,
            ..SynthOptions::default()
        };
        let (h, _) = txns(&options);
        let longest = h
            .txns
            .iter()
            .flat_map(|t| &t.mops)
            .filter_map(|m| match m {
                crate::txn::Mop::Read {
                    value: crate::txn::ReadValue::List(l),
                    ..
                } => Some(l.len()),
                _ => None,
            })
            .max()
            .unwrap();
        assert!(longest <= options.appends_per_key, "{longest}");
        let keys: std::collections::BTreeSet<Key> = h
            .txns
            .iter()
            .flat_map(|t| &t.mops)
            .map(|m| m.key())
            .collect();
        assert!(keys.len() > 50, "{} keys", keys.len());
    }
}
