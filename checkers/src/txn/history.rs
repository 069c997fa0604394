//! Transactional histories as the isolation checker reads them: each operation a transaction of
//! micro-ops over integer keys, in Elle's two workloads.
//!
//! In Fissure's own `history.jsonl` a transaction is an event with `f = "txn"` whose value is the
//! list of micro-ops, exactly as Elle and elle-cli write them: `[["append",k,v],["r",k,null]]` on
//! invocation and `[["append",k,v],["r",k,[1,2]]]` on an `ok` completion (list-append), or
//! `[["w",k,v],["r",k,null]]` (rw-register). Importers of Elle's EDN and elle-cli's JSON produce the
//! same events, so one conversion serves every source.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

use super::mops::{self, Guess, KeyTable};
use crate::history::{Operation, Outcome};

/// A key of the transactional store. Elle's generators use small integers; so do ours. Keys
/// written as strings (`"x"`) are numbered on import; [`TxnHistory::key_name`] gives them back.
pub type Key = i64;
/// An element appended to a list, or a value written to a register (unique per key).
pub type Elem = i64;

/// Which of Elle's transactional workloads a history comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxnWorkload {
    /// `append k v` and `r k` reading the whole list.
    ListAppend,
    /// `w k v` and `r k` reading one register.
    RwRegister,
}

impl TxnWorkload {
    pub fn name(self) -> &'static str {
        match self {
            TxnWorkload::ListAppend => "list-append",
            TxnWorkload::RwRegister => "rw-register",
        }
    }
}

impl fmt::Display for TxnWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TxnWorkload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "list-append" | "append" => Ok(TxnWorkload::ListAppend),
            "rw-register" | "wr" => Ok(TxnWorkload::RwRegister),
            _ => Err(format!(
                "no transactional workload {s:?}; there are list-append and rw-register"
            )),
        }
    }
}

/// What a read returned, when it is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadValue {
    /// Not known: the read of an invocation, or of a transaction that did not complete `ok`.
    Unknown,
    /// list-append: the list read (`null` in an `ok` completion reads as empty).
    List(Vec<Elem>),
    /// rw-register: the value read, `None` for the initial (never written) state.
    Register(Option<Elem>),
}

/// One micro-op of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mop {
    Append { key: Key, value: Elem },
    Write { key: Key, value: Elem },
    Read { key: Key, value: ReadValue },
}

impl Mop {
    pub fn key(&self) -> Key {
        match self {
            Mop::Append { key, .. } | Mop::Write { key, .. } | Mop::Read { key, .. } => *key,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, Mop::Read { .. })
    }
}

/// One transaction: an invocation paired with its completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    /// Position in [`TxnHistory::txns`] (invocation order): the `T` number in explanations.
    pub id: usize,
    pub process: u64,
    pub outcome: Outcome,
    /// The micro-ops: the completion's for `ok` (reads filled in), else the invocation's.
    pub mops: Vec<Mop>,
    /// Positions of the invocation and completion among the history's events: real-time order.
    pub call: usize,
    pub ret: Option<usize>,
    /// `index` of the invocation and completion events as recorded, for naming them to people.
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
}

/// A transactional history, ready for the isolation checker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnHistory {
    pub workload: TxnWorkload,
    pub txns: Vec<Txn>,
    /// The names of keys the history wrote as strings, by the number they were given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_names: BTreeMap<Key, String>,
}

impl TxnHistory {
    /// A key as the history wrote it: `3`, or `x` for a string key.
    pub fn key_name(&self, key: Key) -> String {
        self.key_names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }
}

/// A transactional history that cannot be read, with the operation it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnHistoryError {
    /// `index` of the offending invocation, when one is to blame.
    pub invoke_index: Option<u64>,
    pub message: String,
}

impl fmt::Display for TxnHistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.invoke_index {
            Some(i) => write!(f, "operation {i}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TxnHistoryError {}

/// True when the operation is a transaction (`f = "txn"`, or no `f` at all as in elle-cli files,
/// with a list of micro-ops as its value).
pub fn is_txn_operation(op: &Operation) -> bool {
    (op.f == "txn" || op.f.is_empty()) && op.input.is_array()
}

/// The workload the micro-ops say: any `append` means list-append, any `w` rw-register;
/// reads alone are guessed as list-append (Elle's default workload).
pub fn guess_workload(ops: &[Operation]) -> Result<TxnWorkload, TxnHistoryError> {
    let mut guess = Guess::default();
    for op in ops.iter().filter(|op| is_txn_operation(op)) {
        let mops = op.input.as_array().into_iter().flatten();
        for mop in mops.chain(op.output.as_array().into_iter().flatten()) {
            if let Some(f) = mop.get(0).and_then(Value::as_str) {
                guess.see(f);
            }
        }
    }
    guess.workload().map_err(|message| TxnHistoryError {
        invoke_index: None,
        message,
    })
}

/// The transactions of a history, read as `workload`. Operations that are not transactions
/// (nemesis entries, other `f`s) are skipped. String keys are numbered after the largest integer
/// key, in order of first appearance.
pub fn txn_history(
    ops: &[Operation],
    workload: TxnWorkload,
) -> Result<TxnHistory, TxnHistoryError> {
    let mut txns = Vec::new();
    let mut keys = KeyTable::default();
    for op in ops.iter().filter(|op| is_txn_operation(op)) {
        // An `ok` completion's micro-ops carry what the reads saw.
        let known = op.outcome == Outcome::Ok;
        let source = if known && op.output.is_array() {
            &op.output
        } else {
            &op.input
        };
        let mops = mops::from_value(source, workload, known, txns.len(), &mut keys).map_err(
            |message| TxnHistoryError {
                invoke_index: Some(op.invoke_index),
                message,
            },
        )?;
        txns.push(Txn {
            id: txns.len(),
            process: op.process,
            outcome: op.outcome,
            mops,
            call: op.call,
            ret: op.ret,
            invoke_index: op.invoke_index,
            complete_index: op.complete_index,
        });
    }
    let key_names = keys.finish(&mut txns);
    Ok(TxnHistory {
        workload,
        txns,
        key_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History};
    use serde_json::json;

    fn ops(events: Vec<(u64, EventType, Value)>) -> Vec<Operation> {
        History::from_events(
            events
                .into_iter()
                .map(|(p, kind, value)| Event::client(p, kind, "txn", value))
                .collect(),
        )
        .operations()
        .unwrap()
    }

    #[test]
    fn reads_list_append_and_names_string_keys() {
        let ops = ops(vec![
            (
                0,
                EventType::Invoke,
                json!([["append", "x", 1], ["r", 7, null]]),
            ),
            (
                0,
                EventType::Ok,
                json!([["append", "x", 1], ["r", 7, null]]),
            ),
            (1, EventType::Invoke, json!([["r", "x", null]])),
            (1, EventType::Info, json!([["r", "x", null]])),
        ]);
        assert_eq!(guess_workload(&ops), Ok(TxnWorkload::ListAppend));
        let h = txn_history(&ops, TxnWorkload::ListAppend).unwrap();
        assert_eq!(h.txns.len(), 2);
        let x = h.txns[0].mops[0].key();
        assert_eq!(
            x, 8,
            "string keys are numbered after the largest integer key"
        );
        assert_eq!(h.key_name(x), "x");
        assert_eq!(h.key_name(7), "7");
        assert_eq!(
            h.txns[0].mops[1],
            Mop::Read {
                key: 7,
                value: ReadValue::List(vec![])
            }
        );
        assert_eq!(
            h.txns[1].mops[0],
            Mop::Read {
                key: x,
                value: ReadValue::Unknown
            }
        );
    }

    #[test]
    fn refuses_micro_ops_of_the_other_workload() {
        let ops = ops(vec![
            (0, EventType::Invoke, json!([["w", 1, 1]])),
            (0, EventType::Ok, json!([["w", 1, 1], ["append", 1, 2]])),
        ]);
        assert!(guess_workload(&ops).is_err());
        let err = txn_history(&ops, TxnWorkload::RwRegister).unwrap_err();
        assert!(err.message.contains("w and r"), "{err}");
        let err = txn_history(&ops, TxnWorkload::ListAppend).unwrap_err();
        assert!(err.message.contains("append and r"), "{err}");
    }
}
