//! An integer counter with `add`/`increment` and `read`.

use super::{Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// A counter operation, compiled.
#[derive(Clone, Debug, PartialEq)]
pub enum CounterOp {
    /// Adds a delta, which may be negative.
    Add(i64),
    /// A read and the value it returned, or `None` when the result is unknown.
    Read(Option<i64>),
    /// An operation that certainly had no effect and observed nothing (a failed add).
    Nothing,
}

/// A counter starting at 0 or at the given integer.
#[derive(Clone, Debug)]
pub struct Counter {
    init: i64,
}

impl Counter {
    pub fn new(init: &Value) -> Result<Counter, String> {
        match init {
            Value::Null => Ok(Counter { init: 0 }),
            other => other.as_i64().map(|init| Counter { init }).ok_or_else(|| {
                format!(
                    "the counter model's initial value must be null (0) or an integer, got {other}"
                )
            }),
        }
    }
}

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn init(&self) -> i64 {
        self.init
    }

    fn prepare(&self, op: &Operation) -> Result<CounterOp, ModelError> {
        match op.f.as_str() {
            "add" | "increment" => {
                let delta = match &op.input {
                    Value::Null => 1,
                    other => other.as_i64().ok_or_else(|| {
                        ModelError::new(
                            op,
                            format!(
                                "{} takes an integer delta (or null for 1), got {other}",
                                op.f
                            ),
                        )
                    })?,
                };
                Ok(match op.outcome {
                    Outcome::Fail => CounterOp::Nothing,
                    Outcome::Ok | Outcome::Info => CounterOp::Add(delta),
                })
            }
            "read" => match op.outcome {
                Outcome::Ok => op
                    .output
                    .as_i64()
                    .map(|seen| CounterOp::Read(Some(seen)))
                    .ok_or_else(|| {
                        ModelError::new(
                            op,
                            format!("a counter read returns an integer, got {}", op.output),
                        )
                    }),
                Outcome::Info | Outcome::Fail => Ok(CounterOp::Read(None)),
            },
            _ => Err(ModelError::unknown_f(
                op,
                "counter",
                &["add", "increment", "read"],
            )),
        }
    }

    fn step(&self, state: &i64, op: &CounterOp) -> Option<i64> {
        match op {
            // An overflowing add is outside what an i64 counter can model, so it cannot happen.
            CounterOp::Add(delta) => state.checked_add(*delta),
            CounterOp::Read(Some(seen)) => (seen == state).then_some(*state),
            CounterOp::Read(None) | CounterOp::Nothing => Some(*state),
        }
    }

    fn is_read_only(&self, op: &CounterOp) -> bool {
        matches!(
            op,
            CounterOp::Read(_) | CounterOp::Nothing | CounterOp::Add(0)
        )
    }

    fn describe_state(&self, state: &i64) -> Value {
        Value::from(*state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use serde_json::json;

    #[test]
    fn adds_and_reads() {
        let m = Counter::new(&json!(10)).unwrap();
        let inc = m
            .prepare(&op("increment", json!(null), Outcome::Ok, json!(null)))
            .unwrap();
        assert_eq!(m.step(&m.init(), &inc), Some(11));
        let sub = m
            .prepare(&op("add", json!(-4), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&11, &sub), Some(7));
        let read = m
            .prepare(&op("read", json!(null), Outcome::Ok, json!(7)))
            .unwrap();
        assert_eq!(m.step(&7, &read), Some(7));
        assert_eq!(m.step(&8, &read), None);
        assert_eq!(m.step(&i64::MAX, &inc), None);
        assert_eq!(m.describe_state(&7), json!(7));
        assert_eq!(Counter::new(&json!(null)).unwrap().init(), 0);
    }

    #[test]
    fn failed_and_unknown_operations() {
        let m = Counter::new(&json!(null)).unwrap();
        let failed = m
            .prepare(&op("add", json!(2), Outcome::Fail, json!(null)))
            .unwrap();
        assert_eq!(m.step(&3, &failed), Some(3));
        let unknown_read = m
            .prepare(&op("read", json!(null), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&3, &unknown_read), Some(3));
        let zero = m
            .prepare(&op("add", json!(0), Outcome::Ok, json!(null)))
            .unwrap();
        let add = m
            .prepare(&op("add", json!(2), Outcome::Ok, json!(null)))
            .unwrap();
        assert!(m.is_read_only(&failed) && m.is_read_only(&unknown_read) && m.is_read_only(&zero));
        assert!(!m.is_read_only(&add));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Counter::new(&json!("x")).unwrap_err().contains("integer"));
        let m = Counter::new(&json!(0)).unwrap();
        let err = m
            .prepare(&op("add", json!(1.5), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("integer delta"), "{err}");
        let err = m
            .prepare(&op("read", json!(null), Outcome::Ok, json!("3")))
            .unwrap_err();
        assert!(err.message.contains("returns an integer"), "{err}");
        let err = m
            .prepare(&op("decrement", json!(1), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("no function"), "{err}");
    }
}
