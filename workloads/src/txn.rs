//! The transactional workloads `append` (list-append) and `wr` (rw-register), generated as Elle
//! generates them, checked by the isolation checker (`checkers::txn`).
//!
//! Each operation is `{"f":"txn","value":[["append",3,7],["r",4,null]]}`: 1 to `max_ops`
//! micro-ops, each a read or a write (half and half) of a key drawn from a window of active keys.
//! Written values are unique per key (1, 2, 3, ... on each key, so an append's list shows the
//! order of its writes and a register read names its writer). A key retires after
//! `writes_per_key` writes and a fresh key takes its place: histories per key stay short, which
//! keeps version orders cheap to infer, and new keys start from the known empty state.
//!
//! After heal, [`TxnFinalReads`] reads every key that was ever written, so that the last
//! version of every key is known.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::txn::TxnWorkload;
use rand::Rng;
use serde_json::{json, Value};

use crate::generator::{Completion, Context, Generator, Next, OpTemplate, Outcome};

/// Keys per final read transaction (a long read is one log entry; many short ones spread it).
pub const FINAL_READ_KEYS: usize = 16;
/// Attempts of each final read before it is given up.
pub const FINAL_READ_ATTEMPTS: u32 = 10;
/// Pause before a failed final read is tried again.
pub const FINAL_READ_RETRY: Duration = Duration::from_millis(250);

/// The shape of the transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnShape {
    pub workload: TxnWorkload,
    /// Micro-ops per transaction, drawn from `min_ops..=max_ops`.
    pub min_ops: usize,
    pub max_ops: usize,
    /// Keys in use at once.
    pub keys_per_window: usize,
    /// Writes a key takes before it retires.
    pub writes_per_key: u64,
}

impl TxnShape {
    /// What is wrong with this shape, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        if self.min_ops == 0 {
            Some("txn_min_ops is 0")
        } else if self.max_ops < self.min_ops {
            Some("txn_max_ops is below txn_min_ops")
        } else if self.keys_per_window == 0 {
            Some("txn_keys_per_window is 0")
        } else if self.writes_per_key == 0 {
            Some("txn_writes_per_key is 0")
        } else {
            None
        }
    }
}

/// Which keys exist, shared by the main phase (which writes them) and the final reads.
#[derive(Debug, Default)]
struct Keys {
    active: Vec<i64>,
    next_key: i64,
    /// Writes handed out per key: the last value written (values are 1, 2, 3, ...).
    writes: HashMap<i64, u64>,
    /// Every key a write was invoked on, in order.
    written: BTreeSet<i64>,
}

/// The main phase: an infinite source of transactions (bound it with a time limit).
pub struct TxnGen {
    shape: TxnShape,
    keys: Arc<Mutex<Keys>>,
}

/// The two phases of a transactional workload, sharing what keys were written.
pub fn txn_workload(shape: TxnShape) -> (TxnGen, TxnFinalReads) {
    let keys = Arc::new(Mutex::new(Keys::default()));
    (
        TxnGen {
            shape,
            keys: keys.clone(),
        },
        TxnFinalReads {
            workload: shape.workload,
            keys,
            queue: None,
            attempts: HashMap::new(),
            in_flight: 0,
            not_before: Duration::ZERO,
        },
    )
}

impl TxnGen {
    fn txn(&self, rng: &mut rand::rngs::StdRng) -> Value {
        let s = self.shape;
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        while keys.active.len() < s.keys_per_window {
            let fresh = keys.next_key;
            keys.next_key += 1;
            keys.active.push(fresh);
        }
        let n = rng.gen_range(s.min_ops..=s.max_ops);
        let mut mops = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = rng.gen_range(0..keys.active.len());
            let key = keys.active[slot];
            if rng.gen_bool(0.5) {
                mops.push(json!(["r", key, null]));
                continue;
            }
            let value = {
                let count = keys.writes.entry(key).or_insert(0);
                *count += 1;
                *count
            };
            keys.written.insert(key);
            if value >= s.writes_per_key {
                keys.active[slot] = keys.next_key;
                keys.next_key += 1;
            }
            let f = match s.workload {
                TxnWorkload::ListAppend => "append",
                TxnWorkload::RwRegister => "w",
            };
            mops.push(json!([f, key, value]));
        }
        Value::Array(mops)
    }
}

impl Generator for TxnGen {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        match ctx.some_free_process() {
            Some(process) => Next::Invoke {
                process,
                op: OpTemplate::new("txn", self.txn(ctx.rng)),
            },
            None => Next::Pending,
        }
    }
}

/// The final reads: every key ever written, [`FINAL_READ_KEYS`] to a transaction, each retried
/// after a failure (a node may still be catching up) up to [`FINAL_READ_ATTEMPTS`] times.
pub struct TxnFinalReads {
    workload: TxnWorkload,
    keys: Arc<Mutex<Keys>>,
    /// Built when first asked, once the main phase is over.
    queue: Option<VecDeque<OpTemplate>>,
    /// Attempts left, by the read's value as text.
    attempts: HashMap<String, u32>,
    in_flight: usize,
    not_before: Duration,
}

impl TxnFinalReads {
    fn build(&mut self) -> VecDeque<OpTemplate> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let written: Vec<i64> = keys.written.iter().copied().collect();
        written
            .chunks(FINAL_READ_KEYS)
            .map(|chunk| {
                let mops: Vec<Value> = chunk.iter().map(|k| json!(["r", k, null])).collect();
                let op = OpTemplate::new("txn", Value::Array(mops));
                self.attempts
                    .insert(op.value.to_string(), FINAL_READ_ATTEMPTS);
                op
            })
            .collect()
    }

    /// The workload whose keys it reads.
    pub fn workload(&self) -> TxnWorkload {
        self.workload
    }
}

impl Generator for TxnFinalReads {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        if self.queue.is_none() {
            let built = self.build();
            self.queue = Some(built);
        }
        let queue = self.queue.as_mut().expect("built above");
        if queue.is_empty() {
            return if self.in_flight == 0 {
                Next::Done
            } else {
                Next::Pending
            };
        }
        if ctx.now < self.not_before {
            return Next::Wait(self.not_before - ctx.now);
        }
        let Some(process) = ctx.some_free_process() else {
            return Next::Pending;
        };
        let op = queue.pop_front().expect("not empty");
        self.in_flight += 1;
        Next::Invoke { process, op }
    }

    fn observe(&mut self, completion: &Completion) {
        let key = completion.op.value.to_string();
        let Some(left) = self.attempts.get_mut(&key) else {
            return; // a main-phase transaction completing late
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        if completion.outcome == Outcome::Ok {
            return;
        }
        *left = left.saturating_sub(1);
        if *left > 0 {
            if let Some(queue) = self.queue.as_mut() {
                queue.push_back(completion.op.clone());
            }
            self.not_before = completion.time + FINAL_READ_RETRY;
        }
    }
}

#[cfg(test)]
mod tests;
