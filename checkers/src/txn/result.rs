//! What the isolation checker says about a history: anomalies with their explanations, the
//! consistency models they rule out, and a verdict against the model asked for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use super::history::{Elem, Key};
use crate::linearizability::Verdict;

/// An isolation anomaly, named as Elle names it (`G-single-item-realtime` etc. in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AnomalyKind {
    // Cycles in the dependency graph (Adya's phenomena, Elle's naming).
    #[serde(rename = "G0")]
    G0,
    #[serde(rename = "G0-process")]
    G0Process,
    #[serde(rename = "G0-realtime")]
    G0Realtime,
    #[serde(rename = "G1c")]
    G1c,
    #[serde(rename = "G1c-process")]
    G1cProcess,
    #[serde(rename = "G1c-realtime")]
    G1cRealtime,
    #[serde(rename = "G-single-item")]
    GSingle,
    #[serde(rename = "G-single-item-process")]
    GSingleProcess,
    #[serde(rename = "G-single-item-realtime")]
    GSingleRealtime,
    #[serde(rename = "G-nonadjacent-item")]
    GNonadjacent,
    #[serde(rename = "G-nonadjacent-item-process")]
    GNonadjacentProcess,
    #[serde(rename = "G-nonadjacent-item-realtime")]
    GNonadjacentRealtime,
    #[serde(rename = "G2-item")]
    G2Item,
    #[serde(rename = "G2-item-process")]
    G2ItemProcess,
    #[serde(rename = "G2-item-realtime")]
    G2ItemRealtime,
    // Anomalies found without a cycle.
    #[serde(rename = "G1a")]
    G1a,
    #[serde(rename = "G1b")]
    G1b,
    #[serde(rename = "internal")]
    Internal,
    #[serde(rename = "dirty-update")]
    DirtyUpdate,
    #[serde(rename = "duplicate-elements")]
    DuplicateElements,
    #[serde(rename = "incompatible-order")]
    IncompatibleOrder,
    #[serde(rename = "future-read")]
    FutureRead,
    #[serde(rename = "lost-update")]
    LostUpdate,
    #[serde(rename = "cyclic-versions")]
    CyclicVersions,
    /// Nothing could be inferred between transactions: no verdict is possible (Elle's `unknown`).
    #[serde(rename = "empty-transaction-graph")]
    EmptyTransactionGraph,
}

/// A consistency model of Elle's lattice (Adya's PL levels, snapshot isolation, sessions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyModel {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    SnapshotIsolation,
    Serializable,
    StrictSerializable,
    StrongSessionReadUncommitted,
    StrongSessionReadCommitted,
    StrongSessionSnapshotIsolation,
    StrongSessionSerializable,
    // Further models of the lattice that reports name (Elle's names).
    CursorStability,
    UpdateAtomic,
    ReadAtomic,
    ConsistentView,
    StrongSnapshotIsolation,
    StrongReadUncommitted,
    StrongReadCommitted,
    ForwardConsistentView,
    UpdateSerializable,
    MonotonicAtomicView,
    MonotonicSnapshotRead,
    MonotonicView,
    ParallelSnapshotIsolation,
    Prefix,
    CausalCerone,
}

/// The kind of a dependency edge between two transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Write-write: the second overwrote (appended after) the first's version.
    Ww,
    /// Write-read: the second read what the first wrote.
    Wr,
    /// Read-write (anti-dependency): the second wrote a version after the one the first read.
    Rw,
    /// The first completed before the second was invoked.
    Realtime,
    /// Both ran on the same process, the first one earlier.
    Process,
}

/// One edge of a cycle, with why it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleStep {
    /// `Txn::id`s.
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The value (element, register value) the edge is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Elem>,
    /// In words: "T12 appended 4 to key 3 after T7 read key 3 as [1 2]: rw".
    pub why: String,
}

/// One anomaly found, with the transactions involved and, for cycles, the shortest cycle found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// `Txn::id`s involved, in the order the explanation names them.
    pub txns: Vec<usize>,
    /// For cycle anomalies: the cycle, each step from the previous step's `to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<CycleStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The whole explanation in words.
    pub explanation: String,
}

/// Options of the isolation checker (Elle's names in comments).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnCheckOptions {
    /// The model that decides validity (`:consistency-models`).
    pub consistency_model: ConsistencyModel,
    /// rw-register: each key is linearizable, so real-time order gives version order
    /// (`:linearizable-keys?`).
    pub linearizable_keys: bool,
    /// rw-register: each key is sequentially consistent, so process order gives version order
    /// (`:sequential-keys?`).
    pub sequential_keys: bool,
    /// rw-register: a transaction that reads a key then writes it writes the next version
    /// (`:wfr-keys?`).
    pub wfr_keys: bool,
    /// Give up with `unknown` after this long.
    #[serde(with = "humantime_serde_opt", default)]
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` past this many bytes of graph.
    pub memory_limit: Option<u64>,
    /// Cycles reported per anomaly kind (the shortest first).
    pub max_reported: usize,
}

impl Default for TxnCheckOptions {
    fn default() -> Self {
        Self {
            consistency_model: ConsistencyModel::StrictSerializable,
            linearizable_keys: false,
            sequential_keys: false,
            wfr_keys: false,
            time_limit: None,
            memory_limit: None,
            max_reported: 8,
        }
    }
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(Duration::from_secs_f64))
    }
}

/// What the isolation checker found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnResult {
    /// Against `options.consistency_model`: invalid when an anomaly it forbids was found,
    /// unknown when nothing could be inferred or the budget ran out.
    pub valid: Verdict,
    pub workload: super::history::TxnWorkload,
    pub consistency_model: ConsistencyModel,
    /// Every anomaly kind found, sorted.
    pub anomaly_types: Vec<AnomalyKind>,
    /// The anomalies of each kind (at most `max_reported` each; `counts` has the totals).
    pub anomalies: BTreeMap<AnomalyKind, Vec<Anomaly>>,
    pub counts: BTreeMap<AnomalyKind, usize>,
    /// The weakest models the history rules out (Elle's `not`).
    pub not: Vec<ConsistencyModel>,
    /// Every other model ruled out because a weaker one is (Elle's `also-not`).
    pub also_not: Vec<ConsistencyModel>,
    /// The strongest models the history may still satisfy.
    pub strongest_possible: Vec<ConsistencyModel>,
    /// The inferences the verdict rests on, in words ("initial state first",
    /// "per-key linearizable: real-time order gives version order", ...).
    pub inferences: Vec<String>,
    /// Why the verdict is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    pub stats: TxnStats,
}

/// How much work the check did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TxnStats {
    pub txns: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    pub edges: usize,
    pub nontrivial_sccs: usize,
    pub largest_scc: usize,
    pub elapsed_ms: u64,
}
