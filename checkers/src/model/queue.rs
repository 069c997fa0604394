//! A FIFO queue with `enqueue` and `dequeue` (Knossos' fifo-queue). A dequeue that returns null
//! found the queue empty, so null itself cannot be enqueued.

use super::{Atom, Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;
use std::collections::VecDeque;

/// A queue operation, compiled.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueOp {
    Enqueue(Atom),
    /// A dequeue that returned this value from the front.
    Dequeue(Atom),
    /// A dequeue that found the queue empty (returned null, or ran and failed).
    Empty,
    /// A dequeue with an unknown result: it removed the front, if there was one.
    DequeueUnknown,
    /// An operation that certainly had no effect and observed nothing (a failed enqueue).
    Nothing,
}

/// A FIFO queue, starting empty or with the given elements (front first).
#[derive(Clone, Debug)]
pub struct FifoQueue {
    init: VecDeque<Atom>,
}

impl FifoQueue {
    pub fn new(init: &Value) -> Result<FifoQueue, String> {
        let init = match init {
            Value::Null => VecDeque::new(),
            Value::Array(items) if items.iter().all(|v| !v.is_null()) => {
                items.iter().map(Atom::from_value).collect()
            }
            other => {
                return Err(format!(
                    "the queue model's initial value must be null (empty) or an array of non-null \
                     elements, front first, got {other}"
                ))
            }
        };
        Ok(FifoQueue { init })
    }
}

impl Model for FifoQueue {
    type State = VecDeque<Atom>;
    type Op = QueueOp;

    fn name(&self) -> &'static str {
        "queue"
    }

    fn init(&self) -> VecDeque<Atom> {
        self.init.clone()
    }

    fn prepare(&self, op: &Operation) -> Result<QueueOp, ModelError> {
        match (op.f.as_str(), op.outcome) {
            ("enqueue", _) if op.input.is_null() => Err(ModelError::new(
                op,
                "enqueue takes a non-null value (a dequeue returning null means the queue was empty)",
            )),
            ("enqueue", Outcome::Fail) => Ok(QueueOp::Nothing),
            ("enqueue", _) => Ok(QueueOp::Enqueue(Atom::from_value(&op.input))),
            ("dequeue", Outcome::Ok) if op.output.is_null() => Ok(QueueOp::Empty),
            ("dequeue", Outcome::Ok) => Ok(QueueOp::Dequeue(Atom::from_value(&op.output))),
            ("dequeue", Outcome::Fail) => Ok(QueueOp::Empty),
            ("dequeue", Outcome::Info) => Ok(QueueOp::DequeueUnknown),
            _ => Err(ModelError::unknown_f(op, "queue", &["enqueue", "dequeue"])),
        }
    }

    fn step(&self, state: &VecDeque<Atom>, op: &QueueOp) -> Option<VecDeque<Atom>> {
        match op {
            QueueOp::Enqueue(value) => {
                let mut next = state.clone();
                next.push_back(value.clone());
                Some(next)
            }
            QueueOp::Dequeue(value) if state.front() != Some(value) => None,
            QueueOp::Dequeue(_) | QueueOp::DequeueUnknown => {
                let mut next = state.clone();
                next.pop_front();
                Some(next)
            }
            QueueOp::Empty => state.is_empty().then(VecDeque::new),
            QueueOp::Nothing => Some(state.clone()),
        }
    }

    fn is_read_only(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Empty | QueueOp::Nothing)
    }

    fn describe_state(&self, state: &VecDeque<Atom>) -> Value {
        Value::Array(state.iter().map(Atom::to_value).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use serde_json::json;

    fn queue(items: &[i64]) -> VecDeque<Atom> {
        items.iter().map(|&i| Atom::Int(i)).collect()
    }

    #[test]
    fn fifo_order() {
        let m = FifoQueue::new(&json!([1])).unwrap();
        let enqueue = m
            .prepare(&op("enqueue", json!(2), Outcome::Ok, json!(2)))
            .unwrap();
        let s = m.step(&m.init(), &enqueue).unwrap();
        assert_eq!(s, queue(&[1, 2]));
        let deq1 = m
            .prepare(&op("dequeue", json!(null), Outcome::Ok, json!(1)))
            .unwrap();
        let deq2 = m
            .prepare(&op("dequeue", json!(null), Outcome::Ok, json!(2)))
            .unwrap();
        assert_eq!(m.step(&s, &deq2), None);
        assert_eq!(m.step(&s, &deq1), Some(queue(&[2])));
        assert_eq!(m.step(&queue(&[]), &deq1), None);
        assert_eq!(m.describe_state(&s), json!([1, 2]));
        assert!(!m.is_read_only(&enqueue) && !m.is_read_only(&deq1));
    }

    #[test]
    fn empty_dequeues() {
        let m = FifoQueue::new(&json!(null)).unwrap();
        let null = m
            .prepare(&op("dequeue", json!(null), Outcome::Ok, json!(null)))
            .unwrap();
        let failed = m
            .prepare(&op("dequeue", json!(null), Outcome::Fail, json!(null)))
            .unwrap();
        for empty in [&null, &failed] {
            assert_eq!(m.step(&queue(&[]), empty), Some(queue(&[])));
            assert_eq!(m.step(&queue(&[1]), empty), None);
            assert!(m.is_read_only(empty));
        }
    }

    #[test]
    fn unknown_and_failed_operations() {
        let m = FifoQueue::new(&json!(null)).unwrap();
        let unknown = m
            .prepare(&op("dequeue", json!(null), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&queue(&[1, 2]), &unknown), Some(queue(&[2])));
        assert_eq!(m.step(&queue(&[]), &unknown), Some(queue(&[])));
        assert!(!m.is_read_only(&unknown));
        let info = m
            .prepare(&op("enqueue", json!(3), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&queue(&[]), &info), Some(queue(&[3])));
        let failed = m
            .prepare(&op("enqueue", json!(3), Outcome::Fail, json!(null)))
            .unwrap();
        assert_eq!(m.step(&queue(&[1]), &failed), Some(queue(&[1])));
        assert!(m.is_read_only(&failed));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(FifoQueue::new(&json!({"a": 1}))
            .unwrap_err()
            .contains("front first"));
        assert!(FifoQueue::new(&json!([1, null])).is_err());
        let m = FifoQueue::new(&json!(null)).unwrap();
        let err = m
            .prepare(&op("enqueue", json!(null), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("non-null"), "{err}");
        let err = m
            .prepare(&op("peek", json!(null), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("no function \"peek\""), "{err}");
    }
}
