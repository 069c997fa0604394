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
use std::fmt;

use crate::history::{Operation, Outcome};

/// A key of the transactional store. Elle's generators use small integers; so do ours.
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
    let mut appends = false;
    let mut writes = false;
    for op in ops.iter().filter(|op| is_txn_operation(op)) {
        for mop in op.input.as_array().into_iter().flatten() {
            match mop.get(0).and_then(Value::as_str) {
                Some("append") => appends = true,
                Some("w") => writes = true,
                _ => {}
            }
        }
    }
    match (appends, writes) {
        (true, true) => Err(TxnHistoryError {
            invoke_index: None,
            message: "the history mixes appends (list-append) and writes (rw-register); \
                      split it, or say which workload with --workload"
                .into(),
        }),
        (false, true) => Ok(TxnWorkload::RwRegister),
        _ => Ok(TxnWorkload::ListAppend),
    }
}

/// The transactions of a history, read as `workload`. Operations that are not transactions
/// (nemesis entries, other `f`s) are skipped.
pub fn txn_history(
    ops: &[Operation],
    workload: TxnWorkload,
) -> Result<TxnHistory, TxnHistoryError> {
    let mut txns = Vec::new();
    for op in ops.iter().filter(|op| is_txn_operation(op)) {
        let source = if op.outcome == Outcome::Ok && op.output.is_array() {
            &op.output
        } else {
            &op.input
        };
        let known = op.outcome == Outcome::Ok;
        let mops = source
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| parse_mop(m, workload, known))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|message| TxnHistoryError {
                invoke_index: Some(op.invoke_index),
                message,
            })?;
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
    Ok(TxnHistory { workload, txns })
}

fn parse_mop(mop: &Value, workload: TxnWorkload, known: bool) -> Result<Mop, String> {
    let parts = mop
        .as_array()
        .filter(|p| p.len() == 3)
        .ok_or_else(|| format!("micro-op {mop} is not [f, key, value]"))?;
    let f = parts[0]
        .as_str()
        .ok_or_else(|| format!("micro-op {mop}: its function is not a string"))?;
    let key = parts[1]
        .as_i64()
        .ok_or_else(|| format!("micro-op {mop}: keys must be integers"))?;
    let int = |v: &Value| {
        v.as_i64()
            .ok_or_else(|| format!("micro-op {mop}: values must be integers"))
    };
    match (f, workload) {
        ("append", TxnWorkload::ListAppend) => Ok(Mop::Append {
            key,
            value: int(&parts[2])?,
        }),
        ("w", TxnWorkload::RwRegister) => Ok(Mop::Write {
            key,
            value: int(&parts[2])?,
        }),
        ("r", _) if !known => Ok(Mop::Read {
            key,
            value: ReadValue::Unknown,
        }),
        ("r", TxnWorkload::ListAppend) => {
            let list = match &parts[2] {
                Value::Null => Vec::new(),
                Value::Array(items) => items.iter().map(int).collect::<Result<_, _>>()?,
                other => return Err(format!("micro-op {mop}: a list read of {other}")),
            };
            Ok(Mop::Read {
                key,
                value: ReadValue::List(list),
            })
        }
        ("r", TxnWorkload::RwRegister) => Ok(Mop::Read {
            key,
            value: ReadValue::Register(match &parts[2] {
                Value::Null => None,
                v => Some(int(v)?),
            }),
        }),
        _ => Err(format!(
            "micro-op {mop}: {f:?} is not a micro-op of {workload} (it has {})",
            match workload {
                TxnWorkload::ListAppend => "append and r",
                TxnWorkload::RwRegister => "w and r",
            }
        )),
    }
}
