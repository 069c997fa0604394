//! Elle's lattice of consistency models and the anomalies each forbids (after Adya, Bailis,
//! Cerone, Daudjee and others, as jepsen-io/elle's consistency_model.clj relates them).
//!
//! Three relations, written as data: which anomaly implies which (a G0 cycle is also a G1c
//! cycle), which model implies which (serializable implies repeatable read), and which
//! anomalies a model forbids directly. A found anomaly rules out every model that forbids it or
//! anything it implies, and every stronger model.

use std::collections::BTreeSet;

use super::result::{AnomalyKind, ConsistencyModel};
use ConsistencyModel::*;

impl ConsistencyModel {
    pub const ALL: [ConsistencyModel; 25] = [
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
    ];

    /// Elle's (friendly) name.
    pub fn name(self) -> &'static str {
        match self {
            ReadUncommitted => "read-uncommitted",
            ReadCommitted => "read-committed",
            RepeatableRead => "repeatable-read",
            SnapshotIsolation => "snapshot-isolation",
            Serializable => "serializable",
            StrictSerializable => "strict-serializable",
            StrongSessionReadUncommitted => "strong-session-read-uncommitted",
            StrongSessionReadCommitted => "strong-session-read-committed",
            StrongSessionSnapshotIsolation => "strong-session-snapshot-isolation",
            StrongSessionSerializable => "strong-session-serializable",
            CursorStability => "cursor-stability",
            UpdateAtomic => "update-atomic",
            ReadAtomic => "read-atomic",
            ConsistentView => "consistent-view",
            StrongSnapshotIsolation => "strong-snapshot-isolation",
            StrongReadUncommitted => "strong-read-uncommitted",
            StrongReadCommitted => "strong-read-committed",
            ForwardConsistentView => "forward-consistent-view",
            UpdateSerializable => "update-serializable",
            MonotonicAtomicView => "monotonic-atomic-view",
            MonotonicSnapshotRead => "monotonic-snapshot-read",
            MonotonicView => "monotonic-view",
            ParallelSnapshotIsolation => "parallel-snapshot-isolation",
            Prefix => "prefix",
            CausalCerone => "causal-cerone",
        }
    }

    /// The models this one implies directly (a history that satisfies `self` satisfies them).
    fn implies(self) -> &'static [ConsistencyModel] {
        match self {
            CausalCerone => &[ReadAtomic],
            ConsistentView => &[CursorStability, MonotonicView],
            CursorStability => &[ReadCommitted],
            ForwardConsistentView => &[ConsistentView],
            ReadCommitted => &[ReadUncommitted],
            Serializable => &[RepeatableRead, UpdateSerializable, SnapshotIsolation],
            UpdateSerializable => &[ForwardConsistentView],
            MonotonicAtomicView => &[ReadCommitted],
            MonotonicView => &[ReadCommitted],
            MonotonicSnapshotRead => &[ReadCommitted],
            ParallelSnapshotIsolation => &[CausalCerone, UpdateAtomic],
            Prefix => &[CausalCerone],
            ReadAtomic => &[MonotonicAtomicView],
            RepeatableRead => &[CursorStability, MonotonicAtomicView],
            UpdateAtomic => &[ReadAtomic],
            SnapshotIsolation => &[
                ForwardConsistentView,
                MonotonicAtomicView,
                MonotonicSnapshotRead,
                ParallelSnapshotIsolation,
                Prefix,
            ],
            StrictSerializable => &[
                Serializable,
                SnapshotIsolation,
                StrongSnapshotIsolation,
                StrongSessionSerializable,
            ],
            StrongSessionReadUncommitted => &[ReadUncommitted],
            StrongSessionReadCommitted => &[ReadCommitted, StrongSessionReadUncommitted],
            StrongReadUncommitted => &[StrongSessionReadUncommitted],
            StrongReadCommitted => &[StrongSessionReadCommitted, StrongReadUncommitted],
            StrongSessionSerializable => &[Serializable, StrongSessionSnapshotIsolation],
            StrongSessionSnapshotIsolation => &[SnapshotIsolation, StrongSessionReadCommitted],
            StrongSnapshotIsolation => &[StrongSessionSnapshotIsolation, StrongReadCommitted],
            ReadUncommitted => &[],
        }
    }

    /// The anomalies (Elle's names, some of them abstract like `G1` or `G2`) this model forbids
    /// beyond what the models it implies forbid.
    fn forbids_directly(self) -> &'static [&'static str] {
        match self {
            CausalCerone | ParallelSnapshotIsolation | Prefix => &["internal", "G1a"],
            CursorStability => &["G1", "G-cursor", "lost-update"],
            MonotonicView => &["G1", "G-monotonic"],
            MonotonicSnapshotRead => &["G1", "G-MSR"],
            ConsistentView => &["G1", "G-single"],
            ForwardConsistentView => &["G1", "G-SIb"],
            Serializable => &["G1", "G2", "internal"],
            ReadCommitted => &["G1"],
            ReadUncommitted => &["G0", "duplicate-elements", "cyclic-versions"],
            SnapshotIsolation => &["internal", "G1", "G-SI", "G-nonadjacent"],
            ReadAtomic => &["internal", "G1a", "future-read"],
            RepeatableRead => &["G1", "G2-item", "lost-update"],
            UpdateAtomic => &["lost-update"],
            StrictSerializable => &["G1", "G1c-realtime", "G2-realtime"],
            StrongSessionReadUncommitted => &["G0-process"],
            StrongSessionReadCommitted => &["G1c-process"],
            StrongReadUncommitted => &["G0-realtime"],
            StrongReadCommitted => &["G1c-realtime"],
            StrongSessionSnapshotIsolation => &["internal", "G1-process", "G-nonadjacent-process"],
            StrongSnapshotIsolation => &["internal", "G1-realtime", "G-nonadjacent-realtime"],
            StrongSessionSerializable => &["G1-process", "G2-process"],
            UpdateSerializable => &["G1", "G-update"],
            MonotonicAtomicView => &[],
        }
    }

    /// Every model this one implies, itself included.
    fn implied_models(self) -> BTreeSet<ConsistencyModel> {
        let mut seen = BTreeSet::from([self]);
        let mut todo = vec![self];
        while let Some(m) = todo.pop() {
            for &w in m.implies() {
                if seen.insert(w) {
                    todo.push(w);
                }
            }
        }
        seen
    }

    /// The anomaly kinds this checker can find that the model forbids: finding any of them
    /// makes a history invalid under it.
    pub fn forbidden_anomalies(self) -> Vec<AnomalyKind> {
        let forbidden: BTreeSet<&str> = self
            .implied_models()
            .into_iter()
            .flat_map(|m| m.forbids_directly().iter().copied())
            .collect();
        AnomalyKind::ALL
            .into_iter()
            .filter(|k| {
                implied_anomalies(&[*k])
                    .iter()
                    .any(|a| forbidden.contains(a))
            })
            .collect()
    }
}

impl std::fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ConsistencyModel {
    type Err = String;
    /// Elle's names, and its aliases (`strong-serializable`, Adya's `PL-2` etc.).
    fn from_str(s: &str) -> Result<Self, String> {
        let alias = match s {
            "strong-serializable" | "PL-SS" => Some(StrictSerializable),
            "conflict-serializable" | "PL-3" => Some(Serializable),
            "PL-2.99" => Some(RepeatableRead),
            "PL-2" => Some(ReadCommitted),
            "PL-1" => Some(ReadUncommitted),
            "PL-SI" => Some(SnapshotIsolation),
            "PL-CS" => Some(CursorStability),
            "PL-2+" => Some(ConsistentView),
            "PL-FCV" => Some(ForwardConsistentView),
            "PL-3U" => Some(UpdateSerializable),
            "PL-MSR" => Some(MonotonicSnapshotRead),
            "PL-2L" => Some(MonotonicView),
            "ROLA" => Some(UpdateAtomic),
            "strong-session-PL-1" => Some(StrongSessionReadUncommitted),
            "strong-session-PL-2" => Some(StrongSessionReadCommitted),
            "strong-PL-1" => Some(StrongReadUncommitted),
            "strong-PL-2" => Some(StrongReadCommitted),
            _ => None,
        };
        alias
            .or_else(|| ConsistencyModel::ALL.into_iter().find(|m| m.name() == s))
            .ok_or_else(|| {
                let names: Vec<&str> = ConsistencyModel::ALL.iter().map(|m| m.name()).collect();
                format!("no consistency model {s:?}; there are {}", names.join(", "))
            })
    }
}

/// Elle's anomaly implications: each anomaly, and what finding it also means.
fn implies_anomaly(a: &str) -> &'static [&'static str] {
    match a {
        "G0" => &["G1c", "G0-process"],
        "G0-process" => &["G1c-process", "G0-realtime"],
        "G0-realtime" => &["G1c-realtime"],
        "G1a" | "G1b" => &["G1"],
        "G1c" => &["G1", "G1c-process"],
        "G1c-process" => &["G1c-realtime", "G1-process"],
        "G1c-realtime" => &["G1-realtime"],
        "G1" => &["G1-process"],
        "G1-process" => &["G1-realtime"],
        "G-single-item" => &["G-single", "G-single-item-process", "G-nonadjacent-item"],
        "G-single-item-process" => &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
        "G-single-item-realtime" => &["G-single-realtime", "G-nonadjacent-item-realtime"],
        "G-single" => &["G-nonadjacent", "GSIb", "G-single-process"],
        "G-single-process" => &["G-nonadjacent-process", "G-single-realtime"],
        "G-single-realtime" => &["G-nonadjacent-realtime"],
        "G-nonadjacent-item" => &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
        "G-nonadjacent-item-process" => &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
        "G-nonadjacent-item-realtime" => &["G2-item-realtime", "G-nonadjacent-realtime"],
        "G-nonadjacent" => &["G2", "G-nonadjacent-process"],
        "G-nonadjacent-process" => &["G2-process", "G-nonadjacent-realtime"],
        "G-nonadjacent-realtime" => &["G2-realtime"],
        "G2" => &["G2-process"],
        "G2-item" => &["G2", "G2-item-process"],
        "G2-item-process" => &["G2-process", "G2-item-realtime"],
        "G2-item-realtime" => &["G2-realtime"],
        "G2-process" => &["G2-realtime"],
        "GSIa" | "GSIb" => &["GSI"],
        "incompatible-order" | "dirty-update" => &["G1a"],
        "future-read" => &["G1c"],
        "lost-update" => &["write-skew", "G2-item"],
        "write-skew" => &["G2"],
        _ => &[],
    }
}

/// The anomalies found, and every anomaly they imply, by name.
fn implied_anomalies(found: &[AnomalyKind]) -> BTreeSet<&'static str> {
    let mut seen: BTreeSet<&'static str> = found.iter().map(|k| k.name()).collect();
    let mut todo: Vec<&'static str> = seen.iter().copied().collect();
    while let Some(a) = todo.pop() {
        for &b in implies_anomaly(a) {
            if seen.insert(b) {
                todo.push(b);
            }
        }
    }
    seen
}

/// What the found anomalies say about the lattice.
pub(crate) struct Boundary {
    /// The weakest models ruled out.
    pub not: Vec<ConsistencyModel>,
    /// The other models ruled out (stronger than some in `not`).
    pub also_not: Vec<ConsistencyModel>,
    /// The strongest models not ruled out.
    pub strongest_possible: Vec<ConsistencyModel>,
}

pub(crate) fn boundary(found: &[AnomalyKind]) -> Boundary {
    let anomalies = implied_anomalies(found);
    let impossible: BTreeSet<ConsistencyModel> = ConsistencyModel::ALL
        .into_iter()
        .filter(|m| {
            m.implied_models()
                .iter()
                .any(|w| w.forbids_directly().iter().any(|a| anomalies.contains(a)))
        })
        .collect();
    let below = |m: ConsistencyModel, set: &BTreeSet<ConsistencyModel>| {
        m.implied_models()
            .iter()
            .any(|w| *w != m && set.contains(w))
    };
    let not: Vec<ConsistencyModel> = impossible
        .iter()
        .copied()
        .filter(|m| !below(*m, &impossible))
        .collect();
    let also_not = impossible
        .iter()
        .copied()
        .filter(|m| !not.contains(m))
        .collect();
    let possible: BTreeSet<ConsistencyModel> = ConsistencyModel::ALL
        .into_iter()
        .filter(|m| !impossible.contains(m))
        .collect();
    let strongest_possible = possible
        .iter()
        .copied()
        .filter(|m| {
            !possible
                .iter()
                .any(|p| p != m && p.implied_models().contains(m))
        })
        .collect();
    let by_name = |mut v: Vec<ConsistencyModel>| {
        v.sort_by_key(|m| m.name());
        v
    };
    Boundary {
        not: by_name(not),
        also_not: by_name(also_not),
        strongest_possible: by_name(strongest_possible),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnomalyKind as A;

    fn names(ms: &[ConsistencyModel]) -> Vec<&'static str> {
        let mut v: Vec<&str> = ms.iter().map(|m| m.name()).collect();
        v.sort();
        v
    }

    #[test]
    fn boundaries_match_elles_results() {
        let cases: &[(&[AnomalyKind], &[&str])] = &[
            (&[A::GSingle], &["consistent-view", "repeatable-read"]),
            (&[A::G2Item], &["repeatable-read"]),
            (&[A::G1a], &["read-committed"]),
            (&[A::G1b, A::GSingle], &["read-committed"]),
            (&[A::LostUpdate], &["cursor-stability", "update-atomic"]),
            (&[A::Internal], &["read-atomic"]),
            (&[A::G0], &["read-uncommitted"]),
            (&[A::CyclicVersions], &["read-uncommitted"]),
            (&[A::GSingleRealtime], &["strong-snapshot-isolation"]),
            (&[A::G1cProcess], &["strong-session-read-committed"]),
            (&[A::G1cRealtime], &["strong-read-committed"]),
            (
                &[A::GSingle, A::Internal],
                &["consistent-view", "read-atomic", "repeatable-read"],
            ),
            (&[A::FutureRead], &["read-committed"]),
        ];
        for (found, want) in cases {
            let b = boundary(found);
            assert_eq!(names(&b.not), *want, "{found:?}");
        }
        let b = boundary(&[A::GSingleRealtime]);
        assert_eq!(names(&b.also_not), vec!["strict-serializable"]);
        let b = boundary(&[A::LostUpdate]);
        assert_eq!(
            names(&b.also_not),
            vec![
                "consistent-view",
                "forward-consistent-view",
                "parallel-snapshot-isolation",
                "repeatable-read",
                "serializable",
                "snapshot-isolation",
                "strict-serializable",
                "strong-session-serializable",
                "strong-session-snapshot-isolation",
                "strong-snapshot-isolation",
                "update-serializable",
            ]
        );
    }

    #[test]
    fn nothing_found_leaves_strict_serializable() {
        let b = boundary(&[]);
        assert!(b.not.is_empty() && b.also_not.is_empty());
        assert_eq!(b.strongest_possible, vec![StrictSerializable]);
        let b = boundary(&[A::GSingleRealtime]);
        assert_eq!(
            names(&b.strongest_possible),
            vec!["strong-read-committed", "strong-session-serializable"]
        );
    }

    #[test]
    fn forbidden_anomalies_follow_the_lattice() {
        let ser = Serializable.forbidden_anomalies();
        assert!(ser.contains(&A::G2Item) && ser.contains(&A::G1a) && ser.contains(&A::GSingle));
        assert!(!ser.contains(&A::G2ItemRealtime) && !ser.contains(&A::GSingleRealtime));
        let si = SnapshotIsolation.forbidden_anomalies();
        assert!(si.contains(&A::GSingle) && !si.contains(&A::G2Item));
        let rc = ReadCommitted.forbidden_anomalies();
        assert!(rc.contains(&A::G1c) && rc.contains(&A::G0) && !rc.contains(&A::GSingle));
        assert!(!rc.contains(&A::EmptyTransactionGraph));
        let strict = StrictSerializable.forbidden_anomalies();
        assert!(strict.contains(&A::G2ItemRealtime) && strict.contains(&A::G0Process));
        assert!(!strict.contains(&A::EmptyTransactionGraph));
    }

    #[test]
    fn names_and_aliases_parse() {
        for m in ConsistencyModel::ALL {
            assert_eq!(m.name().parse::<ConsistencyModel>(), Ok(m));
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::json!(m.name())
            );
        }
        assert_eq!("strong-serializable".parse(), Ok(StrictSerializable));
        assert!("linearizable"
            .parse::<ConsistencyModel>()
            .unwrap_err()
            .contains("read-committed"));
    }
}
