//! Which of the anomalies found rule out a consistency model, so the report can say *why* each
//! model in the checker's `not` and `also_not` is out. The lattice is the checker's
//! ([`ConsistencyModel::forbidden_anomalies`]); this only reads it.

use checkers::txn::{AnomalyKind, ConsistencyModel};

/// The anomaly kinds among `found` that rule `model` out.
pub fn ruling_out(model: ConsistencyModel, found: &[AnomalyKind]) -> Vec<AnomalyKind> {
    let forbidden = model.forbidden_anomalies();
    found
        .iter()
        .copied()
        .filter(|k| forbidden.contains(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnomalyKind as A;
    use ConsistencyModel as M;

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
    fn aborted_reads_rule_out_read_committed_and_everything_above() {
        let found = [A::G1a, A::GSingle];
        assert_eq!(ruling_out(M::ReadCommitted, &found), vec![A::G1a]);
        assert_eq!(
            ruling_out(M::RepeatableRead, &found),
            vec![A::G1a, A::GSingle]
        );
        assert!(ruling_out(M::ReadUncommitted, &found).is_empty());
        assert!(ruling_out(M::StrictSerializable, &[A::EmptyTransactionGraph]).is_empty());
    }
}
