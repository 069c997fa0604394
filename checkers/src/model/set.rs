//! A set of elements with `add`, `remove` and whole-set `read`s (Knossos' set, plus removal).

use super::{Atom, Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;
use std::collections::BTreeSet;

/// A set operation, compiled.
#[derive(Clone, Debug, PartialEq)]
pub enum SetOp {
    Add(Atom),
    Remove(Atom),
    /// A read and the elements it returned, sorted; duplicates are kept so such a read can never
    /// match a set. `None` when the result is unknown.
    Read(Option<Vec<Atom>>),
    /// An operation that certainly had no effect and observed nothing (a failed add or remove).
    Nothing,
}

/// A set of any values, starting empty or at the given elements.
#[derive(Clone, Debug)]
pub struct SetModel {
    init: BTreeSet<Atom>,
}

impl SetModel {
    pub fn new(init: &Value) -> Result<SetModel, String> {
        let init = match init {
            Value::Null => BTreeSet::new(),
            Value::Array(items) => items.iter().map(Atom::from_value).collect(),
            other => {
                return Err(format!(
                    "the set model's initial value must be null (empty) or an array of elements, got {other}"
                ))
            }
        };
        Ok(SetModel { init })
    }
}

impl Model for SetModel {
    type State = BTreeSet<Atom>;
    type Op = SetOp;

    fn name(&self) -> &'static str {
        "set"
    }

    fn init(&self) -> BTreeSet<Atom> {
        self.init.clone()
    }

    fn prepare(&self, op: &Operation) -> Result<SetOp, ModelError> {
        match (op.f.as_str(), op.outcome) {
            ("add" | "remove", Outcome::Fail) => Ok(SetOp::Nothing),
            ("add", _) => Ok(SetOp::Add(Atom::from_value(&op.input))),
            ("remove", _) => Ok(SetOp::Remove(Atom::from_value(&op.input))),
            ("read", Outcome::Ok) => match &op.output {
                Value::Array(items) => {
                    let mut seen: Vec<Atom> = items.iter().map(Atom::from_value).collect();
                    seen.sort();
                    Ok(SetOp::Read(Some(seen)))
                }
                other => Err(ModelError::new(
                    op,
                    format!("a set read returns an array of elements, got {other}"),
                )),
            },
            ("read", _) => Ok(SetOp::Read(None)),
            _ => Err(ModelError::unknown_f(op, "set", &["add", "remove", "read"])),
        }
    }

    fn step(&self, state: &BTreeSet<Atom>, op: &SetOp) -> Option<BTreeSet<Atom>> {
        match op {
            SetOp::Add(element) if !state.contains(element) => {
                let mut next = state.clone();
                next.insert(element.clone());
                Some(next)
            }
            SetOp::Remove(element) if state.contains(element) => {
                let mut next = state.clone();
                next.remove(element);
                Some(next)
            }
            SetOp::Add(_) | SetOp::Remove(_) | SetOp::Read(None) | SetOp::Nothing => {
                Some(state.clone())
            }
            SetOp::Read(Some(seen)) => state.iter().eq(seen.iter()).then(|| state.clone()),
        }
    }

    fn is_read_only(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_) | SetOp::Nothing)
    }

    fn describe_state(&self, state: &BTreeSet<Atom>) -> Value {
        Value::Array(state.iter().map(Atom::to_value).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use serde_json::json;

    fn set(items: &[i64]) -> BTreeSet<Atom> {
        items.iter().map(|&i| Atom::Int(i)).collect()
    }

    #[test]
    fn adds_removes_and_reads_in_any_order() {
        let m = SetModel::new(&json!([1])).unwrap();
        let add = m
            .prepare(&op("add", json!(2), Outcome::Ok, json!(null)))
            .unwrap();
        let s = m.step(&m.init(), &add).unwrap();
        assert_eq!(s, set(&[1, 2]));
        assert_eq!(m.step(&s, &add), Some(s.clone()));
        let read = m
            .prepare(&op("read", json!(null), Outcome::Ok, json!([2, 1])))
            .unwrap();
        assert_eq!(m.step(&s, &read), Some(s.clone()));
        assert_eq!(m.step(&m.init(), &read), None);
        let remove = m
            .prepare(&op("remove", json!(1), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&s, &remove), Some(set(&[2])));
        assert_eq!(m.describe_state(&s), json!([1, 2]));
    }

    #[test]
    fn duplicate_reads_never_match() {
        let m = SetModel::new(&json!([1])).unwrap();
        let read = m
            .prepare(&op("read", json!(null), Outcome::Ok, json!([1, 1])))
            .unwrap();
        assert_eq!(m.step(&m.init(), &read), None);
    }

    #[test]
    fn unknown_and_failed_operations() {
        let m = SetModel::new(&json!(null)).unwrap();
        let info = m
            .prepare(&op("add", json!("x"), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(info, SetOp::Add(Atom::Str("x".into())));
        let failed = m
            .prepare(&op("add", json!("x"), Outcome::Fail, json!(null)))
            .unwrap();
        assert_eq!(m.step(&m.init(), &failed), Some(m.init()));
        let unknown_read = m
            .prepare(&op("read", json!(null), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&set(&[3]), &unknown_read), Some(set(&[3])));
        assert!(m.is_read_only(&failed) && m.is_read_only(&unknown_read));
        assert!(!m.is_read_only(&info));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(SetModel::new(&json!(3))
            .unwrap_err()
            .contains("array of elements"));
        let m = SetModel::new(&json!(null)).unwrap();
        let err = m
            .prepare(&op("read", json!(null), Outcome::Ok, json!(5)))
            .unwrap_err();
        assert!(err.message.contains("array of elements"), "{err}");
        let err = m
            .prepare(&op("cas", json!(null), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("no function \"cas\""), "{err}");
    }
}
