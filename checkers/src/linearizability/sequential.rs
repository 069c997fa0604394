//! Partitions whose operations never overlap in time: checked by replaying them in order.
//!
//! When every operation of a partition returned before the next one was invoked (and none is
//! indeterminate), real-time order allows exactly one linearization: the order they ran in. The
//! partition is linearizable iff the model accepts that sequence, so no search, cache or state
//! table is needed. Histories with one client per key, and single-client tests, are like this; and
//! the check of a small history is otherwise mostly the search's setup.

use super::search::{SearchOp, SearchResult, SearchStats, Stuck};
use crate::model::Model;

/// True if no two operations overlap: each returns before the next is invoked. `ops` are in
/// invocation order.
pub(crate) fn is_sequential<O>(ops: &[SearchOp<O>]) -> bool {
    ops.iter().all(|op| op.ret.is_some())
        && ops
            .windows(2)
            .all(|pair| pair[0].ret.is_some_and(|ret| ret < pair[1].call))
}

/// Replays a sequential partition (see [`is_sequential`]) through the model.
pub(crate) fn check<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    stats: &mut SearchStats,
) -> SearchResult<M::State> {
    let mut state = model.init();
    stats.states += 1;
    for (i, op) in ops.iter().enumerate() {
        stats.steps += 1;
        stats.configurations += 1;
        if model.is_read_only(&op.op) {
            if model.admits(&state, &op.op) {
                continue;
            }
        } else if model.apply(&mut state, &op.op) {
            stats.states += 1;
            continue;
        }
        // Nothing else could have gone first: what ran before it is the whole prefix, and no
        // other operation was pending.
        return SearchResult::NotLinearizable(Box::new(Stuck {
            prefix: (0..i as u32).collect(),
            blocked: i as u32,
            states: vec![state],
            pending: Vec::new(),
        }));
    }
    SearchResult::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use crate::model::Register;
    use crate::Outcome;
    use serde_json::{json, Value};

    fn compiled(
        model: &Register,
        f: &str,
        value: Value,
        call: usize,
        ret: Option<usize>,
    ) -> SearchOp<<Register as Model>::Op> {
        let (input, output) = if f == "read" {
            (Value::Null, value)
        } else {
            (value, Value::Null)
        };
        let outcome = if ret.is_some() {
            Outcome::Ok
        } else {
            Outcome::Info
        };
        SearchOp {
            op: model.prepare(&op(f, input, outcome, output)).unwrap(),
            call,
            ret,
        }
    }

    #[test]
    fn overlapping_or_indeterminate_operations_are_not_sequential() {
        let m = Register::new(&json!(0));
        let w = |call, ret| compiled(&m, "write", json!(1), call, ret);
        assert!(is_sequential(&[w(0, Some(1)), w(2, Some(3))]));
        assert!(!is_sequential(&[w(0, Some(2)), w(1, Some(3))]));
        assert!(!is_sequential(&[w(0, Some(1)), w(2, None)]));
    }

    #[test]
    fn a_sequence_is_replayed_and_its_first_misfit_reported() {
        let m = Register::new(&json!(0));
        let ops = [
            compiled(&m, "write", json!(1), 0, Some(1)),
            compiled(&m, "read", json!(1), 2, Some(3)),
            compiled(&m, "read", json!(2), 4, Some(5)),
        ];
        let mut stats = SearchStats::default();
        assert!(matches!(
            check(&m, &ops[..2], &mut stats),
            SearchResult::Linearizable
        ));
        let SearchResult::NotLinearizable(stuck) = check(&m, &ops, &mut stats) else {
            panic!("a read of 2 after a write of 1 is not linearizable");
        };
        assert_eq!((stuck.prefix, stuck.blocked), (vec![0, 1], 2));
        assert!(stuck.pending.is_empty());
    }
}
