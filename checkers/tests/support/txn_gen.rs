//! Small random transactional histories for the isolation checker's property tests.
//!
//! A [`Script`] is executed against an in-memory store: processes invoke and complete their
//! transactions in the order the script's schedule says, and each transaction takes effect
//! atomically at its completion (so a glitch-free run is strict-serializable). Glitches make it
//! misbehave the way real stores do: reads from an old snapshot, writes reported but lost, a first
//! write visible before the rest (and even when the transaction then fails). Mutations then
//! overwrite some reads with arbitrary values drawn from what was written, for histories no store
//! would produce (duplicates, reordered lists, aborted reads).

use checkers::history::{Event, EventType, History};
use checkers::txn::{txn_history, Elem, Key, TxnHistory, TxnWorkload};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How a transaction misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Glitch {
    None,
    /// Reads see the store as it was this many commits before the transaction's invocation.
    StaleRead(u8),
    /// Writes change only what the transaction itself reads later; the store never sees them.
    LostWrite,
    /// The first write takes effect at invocation, the rest at completion.
    EarlyWrite,
}

#[derive(Clone, Debug)]
pub struct TxnPlan {
    pub process: u8,
    /// (is a write, key) per micro-op.
    pub mops: Vec<(bool, u8)>,
    /// 0..7 ok, 7..9 info, 9 fail.
    pub outcome: u8,
    /// An info transaction takes effect (at its completion) or not at all.
    pub info_applied: bool,
    pub glitch: Glitch,
    /// Per micro-op: when `Some`, a read's value is replaced by one chosen with these bytes.
    pub mutations: Vec<Option<Vec<u8>>>,
}

#[derive(Clone, Debug)]
pub struct Script {
    pub workload: TxnWorkload,
    pub processes: u8,
    pub keys: u8,
    pub txns: Vec<TxnPlan>,
    /// Which process acts at each step (taken modulo the processes with work left).
    pub schedule: Vec<u8>,
    /// After everything, one more transaction reads every key.
    pub final_read: bool,
    /// rw-register: each key is written by at most one transaction, once (later writes of a
    /// written key become reads), so every key's version order is known: nil, then the write.
    pub single_writer: bool,
}

/// Bounds of generated scripts.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub workload: TxnWorkload,
    pub max_txns: usize,
    /// Chance in 100 that a transaction has a glitch.
    pub glitch_pct: u8,
    /// Chance in 100 that a read is mutated.
    pub mutation_pct: u8,
    pub final_read: bool,
    pub single_writer: bool,
}

fn glitch(pct: u8) -> impl Strategy<Value = Glitch> {
    (0u8..100, 0u8..3, 0u8..3).prop_map(move |(roll, kind, depth)| {
        if roll >= pct {
            return Glitch::None;
        }
        match kind {
            0 => Glitch::StaleRead(depth),
            1 => Glitch::LostWrite,
            _ => Glitch::EarlyWrite,
        }
    })
}

fn txn_plan(shape: Shape) -> impl Strategy<Value = TxnPlan> {
    let mops = prop::collection::vec((any::<bool>(), 0u8..4), 1..=3);
    (
        any::<u8>(),
        mops,
        0u8..10,
        any::<bool>(),
        glitch(shape.glitch_pct),
    )
        .prop_flat_map(move |(process, mops, outcome, info_applied, glitch)| {
            let n = mops.len();
            let mutation = (0u8..100, prop::collection::vec(any::<u8>(), 1..=4))
                .prop_map(move |(roll, bytes)| (roll < shape.mutation_pct).then_some(bytes));
            prop::collection::vec(mutation, n).prop_map(move |mutations| TxnPlan {
                process,
                mops: mops.clone(),
                outcome,
                info_applied,
                glitch,
                mutations,
            })
        })
}

pub fn script(shape: Shape) -> impl Strategy<Value = Script> {
    (
        2u8..=3,
        2u8..=4,
        prop::collection::vec(txn_plan(shape), 1..=shape.max_txns),
        prop::collection::vec(any::<u8>(), 1..24),
    )
        .prop_map(move |(processes, keys, txns, schedule)| Script {
            workload: shape.workload,
            processes,
            keys,
            txns,
            schedule,
            final_read: shape.final_read,
            single_writer: shape.single_writer,
        })
}

type Store = BTreeMap<Key, Vec<Elem>>;

/// A transaction in flight.
struct Open {
    plan: usize,
    /// Micro-ops with their values: (is a write, key, value written).
    mops: Vec<(bool, Key, Elem)>,
    /// Index in `versions` of the store when it was invoked.
    snapshot: usize,
    early_applied: bool,
}

struct Run<'a> {
    script: &'a Script,
    versions: Vec<Store>,
    next_value: BTreeMap<Key, Elem>,
    events: Vec<Event>,
    /// Every value written to each key, for mutations to draw from.
    written: BTreeMap<Key, Vec<Elem>>,
}

/// The script's history, read for the isolation checker.
pub fn txn_history_of(events: &[Event], workload: TxnWorkload) -> TxnHistory {
    let ops = History::from_events(events.to_vec())
        .operations()
        .expect("generated histories pair");
    txn_history(&ops, workload).expect("generated histories read")
}

/// The history a script produces, as events (what `history.jsonl` holds).
pub fn events(script: &Script) -> Vec<Event> {
    let plans = planned_mops(script);
    let mut run = Run {
        script,
        versions: vec![Store::new()],
        next_value: BTreeMap::new(),
        events: Vec::new(),
        written: BTreeMap::new(),
    };
    let procs = script.processes as usize;
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); procs];
    for (i, plan) in script.txns.iter().enumerate() {
        queues[plan.process as usize % procs].push(i);
    }
    for queue in &mut queues {
        queue.reverse();
    }
    let mut open: Vec<Option<Open>> = (0..procs).map(|_| None).collect();
    let mut step = 0;
    loop {
        let busy: Vec<usize> = (0..procs)
            .filter(|&p| open[p].is_some() || !queues[p].is_empty())
            .collect();
        if busy.is_empty() {
            break;
        }
        let choice = script.schedule[step % script.schedule.len()] as usize;
        step += 1;
        let p = busy[choice % busy.len()];
        match open[p].take() {
            None => {
                let plan = queues[p].pop().expect("a busy process has work");
                open[p] = Some(run.invoke(p, plan, &plans[plan]));
            }
            Some(txn) => run.complete(p, txn),
        }
    }
    if script.final_read {
        let mops: Vec<(bool, Key, Elem)> = (0..script.keys as Key).map(|k| (false, k, 0)).collect();
        let p = procs as u64;
        run.events.push(Event::client(
            p,
            EventType::Invoke,
            "txn",
            run.mops_json(&mops, None),
        ));
        let current = run.versions.last().unwrap();
        let reads: Vec<Option<Vec<Elem>>> = mops
            .iter()
            .map(|&(_, key, _)| Some(current.get(&key).cloned().unwrap_or_default()))
            .collect();
        run.events.push(Event::client(
            p,
            EventType::Ok,
            "txn",
            run.mops_json(&mops, Some(&reads)),
        ));
    }
    run.events
}

/// The script's micro-ops after the single-writer rule: (is a write, key) per micro-op.
fn planned_mops(script: &Script) -> Vec<Vec<(bool, Key)>> {
    let mut written = std::collections::BTreeSet::new();
    script
        .txns
        .iter()
        .map(|plan| {
            plan.mops
                .iter()
                .map(|&(write, key)| {
                    let key = (key % script.keys) as Key;
                    let single = script.single_writer && script.workload == TxnWorkload::RwRegister;
                    let write = write && (!single || written.insert(key));
                    (write, key)
                })
                .collect()
        })
        .collect()
}

impl Run<'_> {
    fn register(&self) -> bool {
        self.script.workload == TxnWorkload::RwRegister
    }

    fn invoke(&mut self, p: usize, plan: usize, mops: &[(bool, Key)]) -> Open {
        let mops: Vec<(bool, Key, Elem)> = mops
            .iter()
            .map(|&(write, key)| {
                let value = if write {
                    let next = self.next_value.entry(key).or_insert(1);
                    *next += 1;
                    self.written.entry(key).or_default().push(*next - 1);
                    *next - 1
                } else {
                    0
                };
                (write, key, value)
            })
            .collect();
        self.events.push(Event::client(
            p as u64,
            EventType::Invoke,
            "txn",
            self.mops_json(&mops, None),
        ));
        let mut txn = Open {
            plan,
            mops,
            snapshot: self.versions.len() - 1,
            early_applied: false,
        };
        let early = matches!(self.script.txns[plan].glitch, Glitch::EarlyWrite);
        if let Some(&(_, key, value)) = txn.mops.iter().find(|m| m.0).filter(|_| early) {
            let mut next = self.versions.last().unwrap().clone();
            self.write(&mut next, key, value);
            self.versions.push(next);
            txn.early_applied = true;
        }
        txn
    }

    fn write(&self, store: &mut Store, key: Key, value: Elem) {
        let list = store.entry(key).or_default();
        if self.register() {
            list.clear();
        }
        list.push(value);
    }

    fn complete(&mut self, p: usize, txn: Open) {
        let script = self.script;
        let plan = &script.txns[txn.plan];
        let kind = match plan.outcome {
            0..=6 => EventType::Ok,
            7 | 8 => EventType::Info,
            _ => EventType::Fail,
        };
        let takes_effect = match kind {
            EventType::Ok => true,
            EventType::Info => plan.info_applied,
            _ => false,
        };
        let current = self.versions.last().unwrap().clone();
        let mut view = match plan.glitch {
            Glitch::StaleRead(depth) => {
                self.versions[txn.snapshot.saturating_sub(depth as usize)].clone()
            }
            _ => current.clone(),
        };
        let mut store = current;
        let mut reads = Vec::new();
        for (i, &(write, key, value)) in txn.mops.iter().enumerate() {
            if write {
                self.write(&mut view, key, value);
                let already = txn.early_applied && txn.mops.iter().position(|m| m.0) == Some(i);
                if takes_effect && !already && !matches!(plan.glitch, Glitch::LostWrite) {
                    self.write(&mut store, key, value);
                }
                reads.push(None);
            } else {
                reads.push(Some(view.get(&key).cloned().unwrap_or_default()));
            }
        }
        if takes_effect {
            self.versions.push(store);
        }
        for (i, mutation) in plan.mutations.iter().enumerate() {
            let (write, key, _) = txn.mops[i];
            if let (false, Some(bytes)) = (write, mutation) {
                reads[i] = Some(self.arbitrary(key, bytes));
            }
        }
        let value = if kind == EventType::Ok {
            self.mops_json(&txn.mops, Some(&reads))
        } else {
            self.mops_json(&txn.mops, None)
        };
        self.events
            .push(Event::client(p as u64, kind, "txn", value));
    }

    /// A read value made up from `bytes`: for a list, some of the values written to the key so far
    /// in any order (repeats allowed); for a register, nil or one of them.
    fn arbitrary(&self, key: Key, bytes: &[u8]) -> Vec<Elem> {
        let universe = self.written.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if universe.is_empty() {
            return Vec::new();
        }
        let n = universe.len();
        if self.register() {
            return match bytes[0] as usize % (n + 1) {
                0 => Vec::new(),
                i => vec![universe[i - 1]],
            };
        }
        let len = bytes[0] as usize % (n + 1);
        bytes[1..]
            .iter()
            .chain(std::iter::repeat(&0))
            .take(len)
            .enumerate()
            .map(|(i, &b)| universe[(b as usize + i) % n])
            .collect()
    }

    fn mops_json(&self, mops: &[(bool, Key, Elem)], reads: Option<&[Option<Vec<Elem>>]>) -> Value {
        let register = self.register();
        let items = mops.iter().enumerate().map(|(i, &(write, key, value))| {
            if write {
                json!([if register { "w" } else { "append" }, key, value])
            } else {
                let read = reads.and_then(|r| r[i].as_ref());
                let value = match read {
                    None => Value::Null,
                    Some(list) if register => list.last().map_or(Value::Null, |v| json!(v)),
                    Some(list) => json!(list),
                };
                json!(["r", key, value])
            }
        });
        Value::Array(items.collect())
    }
}
