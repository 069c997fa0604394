//! Which anomalies rule out which consistency models, so the report can say *why* each model
//! in the checker's `not` and `also_not` is out. The checker decides what is ruled out; this only
//! explains it. Facts from Adya's isolation levels, Cerone et al.'s atomic-visibility models and
//! Elle's lattice, encoded here as three small tables (swap for a checker method when it has one).

use checkers::txn::{AnomalyKind, ConsistencyModel};
use std::collections::BTreeSet;

use ConsistencyModel as M;

/// `a` implies each of its list: finding `a` means finding those too. Names are Elle's, with the
/// classes no checker reports alone (G1, G2, GSI, ...) in between.
const IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    // Reads that fit no single version order: one of them saw a write that never committed.
    ("incompatible-order", &["G1a"]),
    // A read of the transaction's own later write: a one-transaction cycle.
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["G2-item"]),
];

/// What each model forbids on top of the weaker models it implies.
const FORBIDS: &[(ConsistencyModel, &[&str])] = &[
    (
        M::ReadUncommitted,
        &["G0", "duplicate-elements", "cyclic-versions"],
    ),
    (M::ReadCommitted, &["G1"]),
    (M::CursorStability, &["G1", "lost-update"]),
    (M::ConsistentView, &["G1", "G-single"]),
    (M::RepeatableRead, &["G1", "G2-item", "lost-update"]),
    (M::ReadAtomic, &["internal", "G1a", "future-read"]),
    (M::UpdateAtomic, &["lost-update"]),
    (
        M::SnapshotIsolation,
        &["internal", "G1", "GSI", "G-nonadjacent"],
    ),
    (M::Serializable, &["internal", "G1", "G2"]),
    (
        M::StrictSerializable,
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
    (M::StrongSessionReadUncommitted, &["G0-process"]),
    (M::StrongSessionReadCommitted, &["G1c-process"]),
    (M::StrongReadUncommitted, &["G0-realtime"]),
    (M::StrongReadCommitted, &["G1c-realtime"]),
    (
        M::StrongSessionSnapshotIsolation,
        &["internal", "G1-process", "G-nonadjacent-process"],
    ),
    (
        M::StrongSnapshotIsolation,
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    (M::StrongSessionSerializable, &["G1-process", "G2-process"]),
];

/// A history satisfying the model on the left satisfies each on the right.
const WEAKER: &[(ConsistencyModel, &[ConsistencyModel])] = &[
    (
        M::StrictSerializable,
        &[
            M::Serializable,
            M::StrongSnapshotIsolation,
            M::StrongSessionSerializable,
        ],
    ),
    (
        M::StrongSessionSerializable,
        &[M::Serializable, M::StrongSessionSnapshotIsolation],
    ),
    (M::Serializable, &[M::RepeatableRead, M::SnapshotIsolation]),
    (
        M::StrongSnapshotIsolation,
        &[M::StrongSessionSnapshotIsolation, M::StrongReadCommitted],
    ),
    (
        M::StrongSessionSnapshotIsolation,
        &[M::SnapshotIsolation, M::StrongSessionReadCommitted],
    ),
    (
        M::SnapshotIsolation,
        &[M::ConsistentView, M::UpdateAtomic, M::ReadCommitted],
    ),
    (M::UpdateAtomic, &[M::ReadAtomic]),
    (M::ReadAtomic, &[M::ReadCommitted]),
    (M::ConsistentView, &[M::CursorStability]),
    (M::RepeatableRead, &[M::CursorStability, M::ReadCommitted]),
    (M::CursorStability, &[M::ReadCommitted]),
    (M::ReadCommitted, &[M::ReadUncommitted]),
    (
        M::StrongReadCommitted,
        &[M::StrongSessionReadCommitted, M::StrongReadUncommitted],
    ),
    (
        M::StrongSessionReadCommitted,
        &[M::ReadCommitted, M::StrongSessionReadUncommitted],
    ),
    (M::StrongReadUncommitted, &[M::StrongSessionReadUncommitted]),
    (M::StrongSessionReadUncommitted, &[M::ReadUncommitted]),
];

/// Elle's name of an anomaly kind (its JSON name).
pub fn anomaly_name(kind: AnomalyKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// The model's name as results.json spells it (`repeatable-read`).
pub fn model_name(model: ConsistencyModel) -> String {
    serde_json::to_value(model)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{model:?}"))
}

/// `start` and everything reachable from it through `next`.
fn closure<T: Ord + Copy>(start: T, next: impl Fn(T) -> Vec<T>) -> BTreeSet<T> {
    let mut seen = BTreeSet::from([start]);
    let mut todo = vec![start];
    while let Some(at) = todo.pop() {
        for n in next(at) {
            if seen.insert(n) {
                todo.push(n);
            }
        }
    }
    seen
}

/// Every anomaly class that `kind` being present implies, itself included.
fn implied(kind: AnomalyKind) -> BTreeSet<String> {
    let name = anomaly_name(kind);
    let start: &str = IMPLIES
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .find(|n| *n == name)
        .unwrap_or("");
    let mut out: BTreeSet<String> = closure(start, |a| {
        (IMPLIES.iter())
            .filter(|(from, _)| *from == a)
            .flat_map(|(_, to)| to.iter().copied())
            .collect()
    })
    .into_iter()
    .filter(|n| !n.is_empty())
    .map(str::to_string)
    .collect();
    out.insert(name);
    out
}

/// Every anomaly class the model forbids, through the weaker models it implies.
fn forbidden(model: ConsistencyModel) -> BTreeSet<&'static str> {
    closure(model, |m| {
        (WEAKER.iter())
            .filter(|(from, _)| *from == m)
            .flat_map(|(_, to)| to.iter().copied())
            .collect()
    })
    .into_iter()
    .flat_map(|m| {
        (FORBIDS.iter())
            .filter(move |(n, _)| *n == m)
            .flat_map(|(_, a)| a.iter().copied())
    })
    .collect()
}

/// The anomaly kinds among `found` that rule `model` out.
pub fn ruling_out(model: ConsistencyModel, found: &[AnomalyKind]) -> Vec<AnomalyKind> {
    let forbidden = forbidden(model);
    found
        .iter()
        .copied()
        .filter(|k| implied(*k).iter().any(|a| forbidden.contains(a.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnomalyKind as A;

    #[test]
    fn read_skew_rules_out_repeatable_read_and_up_but_not_read_committed() {
        let found = [A::GSingle];
        for model in [
            M::ConsistentView,
            M::RepeatableRead,
            M::SnapshotIsolation,
            M::Serializable,
            M::StrictSerializable,
        ] {
            assert_eq!(ruling_out(model, &found), vec![A::GSingle], "{model:?}");
        }
        for model in [M::ReadCommitted, M::ReadUncommitted, M::ReadAtomic] {
            assert!(ruling_out(model, &found).is_empty(), "{model:?}");
        }
    }

    #[test]
    fn realtime_and_process_variants_rule_out_only_the_strong_models() {
        let found = [A::G2ItemRealtime];
        assert_eq!(
            ruling_out(M::StrictSerializable, &found),
            vec![A::G2ItemRealtime]
        );
        assert!(ruling_out(M::Serializable, &found).is_empty());
        let found = [A::G0Process];
        assert!(!ruling_out(M::StrongSessionReadUncommitted, &found).is_empty());
        assert!(ruling_out(M::ReadUncommitted, &found).is_empty());
    }

    #[test]
    fn aborted_reads_rule_out_read_committed_and_everything_above() {
        let found = [A::G1a, A::GSingle];
        assert_eq!(ruling_out(M::ReadCommitted, &found), vec![A::G1a]);
        assert_eq!(ruling_out(M::ReadAtomic, &found), vec![A::G1a]);
        assert_eq!(
            ruling_out(M::RepeatableRead, &found),
            vec![A::G1a, A::GSingle]
        );
        assert!(ruling_out(M::ReadUncommitted, &found).is_empty());
        assert_eq!(
            ruling_out(M::ReadUncommitted, &[A::DuplicateElements]),
            vec![A::DuplicateElements]
        );
        assert!(ruling_out(M::StrictSerializable, &[A::EmptyTransactionGraph]).is_empty());
    }

    #[test]
    fn names_are_the_json_names() {
        assert_eq!(anomaly_name(A::GSingleRealtime), "G-single-item-realtime");
        assert_eq!(model_name(M::RepeatableRead), "repeatable-read");
    }
}
