//! Workload definitions: for each workload, the operations clients run, the final reads after
//! heal, which checkers judge the history, and the client that maps its operations onto a
//! target's protocol (`targets::protocol`).
//!
//! History shapes (the checkers rely on them):
//! - **register**: `read` (value `null`, output the value read, `null` if missing), `write v`,
//!   `cas [from, to]`, each on an integer `key` from [`independent`](crate::generator::independent).
//!   Key N is the target key `rN`.
//! - **bank**: `transfer {"from":"a1","to":"a2","amount":5}` and `read` (output every balance,
//!   `{"a0":10,...}`).
//! - **set**: `add n` (unique increasing integers) and `read` (output the elements, an array).
//! - **counter**: `add n` (a small positive increment) and `read` (output the counter, an
//!   integer; 0 before any add), on one counter.
//! - **append** and **wr**: `txn` with a list of micro-ops, exactly as Elle writes them
//!   (`[["append",3,7],["r",4,null]]`; `w` instead of `append` for wr), the ok completion's output
//!   the micro-ops with the reads filled in (see [`crate::txn`]). Key N is the target key `tN`.
//!
//! What a target can run depends on its operations: cas needs consensus, so quorum runs the
//! register workload without cas (checked with the `register` model) and cannot run bank, set or
//! counter, which need an atomic read-modify-write. twopc serves only transfers and reads.
//! Transactions need a `txn` request: raft-kv and echo have one, quorum and twopc do not.

#[cfg(test)]
mod client_tests;
mod clients;
pub mod counter;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bank::{bank_ops, bank_read, initial_balances};
use crate::client::Client;
use crate::generator::{from_fn, until_ok, Generator};
use crate::register::{register_independent, RegisterMix};
use crate::set::{set_adds, set_read};
use crate::txn::{txn_workload, TxnShape};
use checkers::txn::{ConsistencyModel, TxnWorkload};
use counter::{counter_ops, counter_read};

/// Which workload a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Register,
    Bank,
    Set,
    Counter,
    /// Elle's list-append transactions.
    Append,
    /// Elle's rw-register transactions.
    Wr,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 6] = [
        WorkloadKind::Register,
        WorkloadKind::Bank,
        WorkloadKind::Set,
        WorkloadKind::Counter,
        WorkloadKind::Append,
        WorkloadKind::Wr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Bank => "bank",
            WorkloadKind::Set => "set",
            WorkloadKind::Counter => "counter",
            WorkloadKind::Append => "append",
            WorkloadKind::Wr => "wr",
        }
    }

    /// The transactional workload it is, if it is one.
    pub fn txn(self) -> Option<TxnWorkload> {
        match self {
            WorkloadKind::Append => Some(TxnWorkload::ListAppend),
            WorkloadKind::Wr => Some(TxnWorkload::RwRegister),
            _ => None,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("no workload {s:?}; there are register, bank, set, counter, append and wr")
            })
    }
}

/// A checker to run on the history, with what it needs to know about the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "checker", rename_all = "kebab-case")]
pub enum CheckerSpec {
    /// Linearizability per key with `model` (`register`, `cas-register`) from `init`.
    Linearizable { model: String, init: Value },
    /// The bank invariants over `accounts`, each starting at `initial_balance`.
    Bank {
        accounts: Vec<String>,
        initial_balance: i64,
    },
    /// Lost, unexpected and duplicated elements of the set.
    Set,
    /// Every ok read of the counter (from 0) within the bounds its adds allow.
    Counter,
    /// Transactional isolation (Elle's checker): the anomalies of `workload`'s history, judged
    /// against `consistency_model` (strict serializable unless the target or spec says less).
    Isolation {
        workload: TxnWorkload,
        #[serde(default = "strict_serializable")]
        consistency_model: ConsistencyModel,
    },
}

fn strict_serializable() -> ConsistencyModel {
    ConsistencyModel::StrictSerializable
}

/// Knobs of the workloads; each workload reads only its own. Missing fields take the defaults,
/// unknown ones are refused (a typo in a campaign file should not pass silently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadOptions {
    /// register: keys in use at once.
    pub keys_per_window: usize,
    /// register: operations per key (short per-key histories keep checking cheap).
    pub ops_per_key: u64,
    /// register: values are drawn from `0..register_values` (few, so cas sometimes succeeds).
    pub register_values: u64,
    /// bank: the account names (twopc's participants must hold exactly these).
    pub accounts: Vec<String>,
    /// bank: every account's balance before the test.
    pub initial_balance: i64,
    /// bank: transfers move `1..=max_transfer`.
    pub max_transfer: i64,
    /// append, wr: micro-ops per transaction are drawn from `txn_min_ops..=txn_max_ops`.
    pub txn_min_ops: usize,
    pub txn_max_ops: usize,
    /// append, wr: keys in use at once (few keys, more conflicts between transactions).
    pub txn_keys_per_window: usize,
    /// append, wr: writes a key takes before it retires and a fresh key enters (short version
    /// orders keep the check cheap).
    pub txn_writes_per_key: u64,
    /// append, wr: the consistency model the isolation checker holds the history to (the
    /// target's `consistency-model`, else strict serializable).
    pub consistency_model: ConsistencyModel,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        Self {
            keys_per_window: 5,
            ops_per_key: 200,
            register_values: 5,
            accounts: (0..5).map(|i| format!("a{i}")).collect(),
            // twopc's own default, so its participants need no --initial-balance.
            initial_balance: 100,
            max_transfer: 5,
            txn_min_ops: 1,
            txn_max_ops: 4,
            txn_keys_per_window: 8,
            txn_writes_per_key: 32,
            consistency_model: ConsistencyModel::StrictSerializable,
        }
    }
}

impl WorkloadOptions {
    /// Checks the options `kind` reads.
    pub fn validate(&self, kind: WorkloadKind) -> Result<(), String> {
        let problem = match kind {
            WorkloadKind::Register if self.keys_per_window == 0 => "keys_per_window is 0",
            WorkloadKind::Register if self.ops_per_key == 0 => "ops_per_key is 0",
            WorkloadKind::Register if self.register_values == 0 => "register_values is 0",
            WorkloadKind::Bank if self.accounts.len() < 2 => "a bank needs two accounts or more",
            WorkloadKind::Bank if has_duplicates(&self.accounts) => "accounts repeat a name",
            WorkloadKind::Bank if self.initial_balance < 0 => "initial_balance is negative",
            WorkloadKind::Bank if self.max_transfer < 1 => "max_transfer is below 1",
            WorkloadKind::Append | WorkloadKind::Wr => match self.txn_shape(kind) {
                Some(shape) => match shape.problem() {
                    Some(problem) => problem,
                    None => return Ok(()),
                },
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        Err(format!("{kind} workload: {problem}"))
    }
}

impl WorkloadOptions {
    /// The transactions `kind` makes, if it is a transactional workload.
    pub fn txn_shape(&self, kind: WorkloadKind) -> Option<TxnShape> {
        Some(TxnShape {
            workload: kind.txn()?,
            min_ops: self.txn_min_ops,
            max_ops: self.txn_max_ops,
            keys_per_window: self.txn_keys_per_window,
            writes_per_key: self.txn_writes_per_key,
        })
    }
}

fn has_duplicates(names: &[String]) -> bool {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// A workload ready to drive.
pub struct Workload {
    pub kind: WorkloadKind,
    /// Infinite: the runner adds the rate and the time limit.
    pub main: Box<dyn Generator>,
    /// Run after heal, once the main phase's operations have completed.
    pub final_reads: Option<Box<dyn Generator>>,
    pub checkers: Vec<CheckerSpec>,
}

/// The bundled targets, by what their clients can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    RaftKv,
    Quorum,
    Twopc,
    Echo,
}

impl Target {
    fn parse(name: &str) -> Result<Target, String> {
        match name {
            "raft-kv" => Ok(Target::RaftKv),
            "quorum" => Ok(Target::Quorum),
            "twopc" => Ok(Target::Twopc),
            "echo" => Ok(Target::Echo),
            _ => Err(format!(
                "no target {name:?}; fissure-node has raft-kv, quorum, twopc and echo"
            )),
        }
    }

    /// Serves get, put and a linearizable cas.
    fn has_cas(self) -> bool {
        matches!(self, Target::RaftKv | Target::Echo)
    }
}

/// Whether `target` can run `kind`; the error says why not and names a target that can.
pub fn supports(kind: WorkloadKind, target: &str) -> Result<(), String> {
    let parsed = Target::parse(target)?;
    let why = match (kind, parsed) {
        (WorkloadKind::Register | WorkloadKind::Set | WorkloadKind::Counter, Target::Twopc) => {
            "twopc serves only transfer and read-all"
        }
        (WorkloadKind::Bank | WorkloadKind::Set | WorkloadKind::Counter, Target::Quorum) => {
            "it needs an atomic read-modify-write and quorum has no cas"
        }
        (WorkloadKind::Append | WorkloadKind::Wr, Target::Quorum | Target::Twopc) => {
            "it needs transactions (a txn request) and this target has none"
        }
        _ => return Ok(()),
    };
    let alternative = match kind {
        WorkloadKind::Bank => "twopc or raft-kv",
        _ => "raft-kv",
    };
    Err(format!(
        "the {kind} workload cannot run on {target}: {why}; use {alternative}"
    ))
}

/// The workload `kind` as `target` can run it (on quorum, the register workload has no cas and
/// is checked with the `register` model). Errors: an unsupported pair (see [`supports`]) or
/// options `kind` cannot use.
pub fn build(
    kind: WorkloadKind,
    target: &str,
    options: &WorkloadOptions,
) -> Result<Workload, String> {
    supports(kind, target)?;
    build_for(kind, Target::parse(target)?.has_cas(), options)
}

/// The workload `kind` for a client that serves every operation the workloads define (cas
/// included): a target defined by a file, with a built-in client or an adapter.
pub fn build_with_cas(kind: WorkloadKind, options: &WorkloadOptions) -> Result<Workload, String> {
    build_for(kind, true, options)
}

fn build_for(kind: WorkloadKind, cas: bool, options: &WorkloadOptions) -> Result<Workload, String> {
    options.validate(kind)?;
    let o = options;
    Ok(match kind {
        WorkloadKind::Register => {
            let weights = RegisterMix {
                read: 1,
                write: 1,
                cas: u32::from(cas),
                values: o.register_values,
            };
            let model = if cas { "cas-register" } else { "register" };
            Workload {
                kind,
                main: register_independent(o.keys_per_window, o.ops_per_key, weights).boxed(),
                final_reads: None,
                checkers: vec![CheckerSpec::Linearizable {
                    model: model.into(),
                    init: Value::Null,
                }],
            }
        }
        WorkloadKind::Bank => Workload {
            kind,
            main: bank_ops(o.accounts.clone(), o.max_transfer).boxed(),
            final_reads: Some(final_reads(from_fn(|_, _| bank_read()))),
            checkers: vec![CheckerSpec::Bank {
                accounts: o.accounts.clone(),
                initial_balance: o.initial_balance,
            }],
        },
        WorkloadKind::Set => Workload {
            kind,
            main: set_adds().boxed(),
            final_reads: Some(final_reads(from_fn(|_, _| set_read()))),
            checkers: vec![CheckerSpec::Set],
        },
        WorkloadKind::Counter => Workload {
            kind,
            main: counter_ops().boxed(),
            final_reads: Some(final_reads(from_fn(|_, _| counter_read()))),
            checkers: vec![CheckerSpec::Counter],
        },
        WorkloadKind::Append | WorkloadKind::Wr => {
            let shape = o.txn_shape(kind).expect("a transactional workload");
            let (main, finals) = txn_workload(shape);
            Workload {
                kind,
                main: main.boxed(),
                final_reads: Some(finals.boxed()),
                checkers: vec![CheckerSpec::Isolation {
                    workload: shape.workload,
                    consistency_model: o.consistency_model,
                }],
            }
        }
    })
}

/// A client of one process running `kind` against the `target` node at `addr`. Call
/// [`supports`] (or [`build`]) first: for a pair it refuses, every operation fails with that
/// message, without contacting the node.
pub fn target_client(
    kind: WorkloadKind,
    target: &str,
    addr: String,
    options: &WorkloadOptions,
) -> Box<dyn Client> {
    let parsed = match supports(kind, target).and_then(|()| Target::parse(target)) {
        Ok(parsed) => parsed,
        Err(why) => return Box::new(crate::client::Refuse { why }),
    };
    match (kind, parsed) {
        (WorkloadKind::Register, t) => Box::new(clients::RegisterClient::new(addr, t.has_cas())),
        (WorkloadKind::Bank, Target::Twopc) => Box::new(clients::TwopcBankClient::new(addr)),
        (WorkloadKind::Bank, _) => Box::new(clients::KvBankClient::new(
            addr,
            initial_balances(&options.accounts, options.initial_balance),
        )),
        (WorkloadKind::Set, _) => Box::new(clients::KvSetClient::new(addr)),
        (WorkloadKind::Counter, _) => Box::new(clients::KvCounterClient::new(addr)),
        (WorkloadKind::Append | WorkloadKind::Wr, _) => Box::new(clients::KvTxnClient::new(addr)),
    }
}

/// One good read per process at the end, retrying failed ones for a while (a lock held by an
/// in-doubt transaction, or a node still catching up, must not leave the checker blind).
fn final_reads(read: impl Generator + 'static) -> Box<dyn Generator> {
    until_ok(10, std::time::Duration::from_millis(250), read).boxed()
}

#[cfg(test)]
mod tests;
