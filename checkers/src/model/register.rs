//! A read/write register, and a register that also supports compare-and-set.

use super::{Atom, Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// A register operation, compiled.
#[derive(Clone, Debug, PartialEq)]
pub enum RegisterOp {
    /// A read and the value it returned, or `None` when the result is unknown.
    Read(Option<Atom>),
    Write(Atom),
    /// A compare-and-set from `from` to `to`, with what is known of its result.
    Cas {
        from: Atom,
        to: Atom,
        result: CasResult,
    },
    /// An operation that certainly had no effect and observed nothing (a failed write or read).
    Nothing,
}

/// What a history says about a compare-and-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasResult {
    /// It matched and set the new value.
    Swapped,
    /// It ran and its compare failed (Porcupine's reading of `fail`).
    CompareFailed,
    /// Unknown: it may have run (and then swapped if it matched) or not.
    Unknown,
}

/// A single register holding any value, with `read` and `write`, and, when made with
/// [`Register::with_cas`], `cas` (value `[expected, new]`).
#[derive(Clone, Debug)]
pub struct Register {
    init: Atom,
    cas: bool,
}

impl Register {
    /// A read/write register (model name `register`).
    pub fn new(init: &Value) -> Register {
        Register {
            init: Atom::from_value(init),
            cas: false,
        }
    }

    /// A read/write/compare-and-set register (model name `cas-register`).
    pub fn with_cas(init: &Value) -> Register {
        Register {
            init: Atom::from_value(init),
            cas: true,
        }
    }

    fn prepare_cas(op: &Operation) -> Result<RegisterOp, ModelError> {
        let (from, to) = match op.input.as_array().map(Vec::as_slice) {
            Some([from, to]) => (Atom::from_value(from), Atom::from_value(to)),
            _ => {
                return Err(ModelError::new(
                    op,
                    format!("cas takes [expected, new], got {}", op.input),
                ))
            }
        };
        let result = match op.outcome {
            Outcome::Ok => CasResult::Swapped,
            Outcome::Fail => CasResult::CompareFailed,
            Outcome::Info => CasResult::Unknown,
        };
        Ok(RegisterOp::Cas { from, to, result })
    }
}

fn prepare_read_write(op: &Operation) -> Option<RegisterOp> {
    match (op.f.as_str(), op.outcome) {
        ("read", Outcome::Ok) => Some(RegisterOp::Read(Some(Atom::from_value(&op.output)))),
        ("read", _) => Some(RegisterOp::Read(None)),
        ("write", Outcome::Fail) => Some(RegisterOp::Nothing),
        ("write", _) => Some(RegisterOp::Write(Atom::from_value(&op.input))),
        _ => None,
    }
}

fn step_register(state: &Atom, op: &RegisterOp) -> Option<Atom> {
    match op {
        RegisterOp::Read(Some(seen)) => (seen == state).then(|| state.clone()),
        RegisterOp::Read(None) | RegisterOp::Nothing => Some(state.clone()),
        RegisterOp::Write(value) => Some(value.clone()),
        RegisterOp::Cas { from, to, result } => match result {
            CasResult::Swapped => (from == state).then(|| to.clone()),
            CasResult::CompareFailed => (from != state).then(|| state.clone()),
            CasResult::Unknown if from == state => Some(to.clone()),
            CasResult::Unknown => Some(state.clone()),
        },
    }
}

/// A read of `v` can still succeed if the register holds `v` or something pending could write it.
fn can_satisfy(
    state: &Atom,
    read: &RegisterOp,
    others: &mut dyn Iterator<Item = &RegisterOp>,
) -> bool {
    let RegisterOp::Read(Some(seen)) = read else {
        return true;
    };
    if seen == state {
        return true;
    }
    for op in others {
        let writes_seen = match op {
            RegisterOp::Write(v) => v == seen,
            RegisterOp::Cas { to, result, .. } => to == seen && *result != CasResult::CompareFailed,
            _ => false,
        };
        if writes_seen {
            return true;
        }
    }
    false
}

fn is_read_only(op: &RegisterOp) -> bool {
    matches!(
        op,
        RegisterOp::Read(_)
            | RegisterOp::Nothing
            | RegisterOp::Cas {
                result: CasResult::CompareFailed,
                ..
            }
    )
}

impl Model for Register {
    type State = Atom;
    type Op = RegisterOp;

    fn name(&self) -> &'static str {
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }
    fn init(&self) -> Atom {
        self.init.clone()
    }
    fn prepare(&self, op: &Operation) -> Result<RegisterOp, ModelError> {
        if self.cas && op.f == "cas" {
            return Register::prepare_cas(op);
        }
        prepare_read_write(op).ok_or_else(|| {
            let expected: &[&str] = if self.cas {
                &["read", "write", "cas"]
            } else {
                &["read", "write"]
            };
            ModelError::unknown_f(op, self.name(), expected)
        })
    }
    fn step(&self, state: &Atom, op: &RegisterOp) -> Option<Atom> {
        step_register(state, op)
    }
    fn is_read_only(&self, op: &RegisterOp) -> bool {
        is_read_only(op)
    }
    fn can_satisfy(
        &self,
        state: &Atom,
        read: &RegisterOp,
        others: &mut dyn Iterator<Item = &RegisterOp>,
    ) -> bool {
        can_satisfy(state, read, others)
    }
    fn describe_state(&self, state: &Atom) -> Value {
        state.to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use serde_json::json;

    #[test]
    fn cas_semantics() {
        let m = Register::with_cas(&json!(0));
        let s0 = m.init();
        let swap = m
            .prepare(&op("cas", json!([0, 5]), Outcome::Ok, json!([0, 5])))
            .unwrap();
        assert_eq!(m.step(&s0, &swap), Some(Atom::Int(5)));
        assert_eq!(m.step(&Atom::Int(1), &swap), None);
        let failed = m
            .prepare(&op("cas", json!([0, 5]), Outcome::Fail, json!(null)))
            .unwrap();
        assert_eq!(m.step(&s0, &failed), None);
        assert_eq!(m.step(&Atom::Int(1), &failed), Some(Atom::Int(1)));
        let unknown = m
            .prepare(&op("cas", json!([0, 5]), Outcome::Info, json!(null)))
            .unwrap();
        assert_eq!(m.step(&s0, &unknown), Some(Atom::Int(5)));
        assert_eq!(m.step(&Atom::Int(1), &unknown), Some(Atom::Int(1)));
        assert!(m
            .prepare(&op("cas", json!(3), Outcome::Ok, json!(3)))
            .is_err());
    }

    #[test]
    fn reads_and_writes() {
        let m = Register::new(&json!(null));
        let read_nil = m
            .prepare(&op("read", json!(null), Outcome::Ok, json!(null)))
            .unwrap();
        assert_eq!(m.step(&m.init(), &read_nil), Some(Atom::Nil));
        let write = m
            .prepare(&op("write", json!("a"), Outcome::Info, json!(null)))
            .unwrap();
        let s = m.step(&m.init(), &write).unwrap();
        assert_eq!(m.step(&s, &read_nil), None);
        assert!(m.is_read_only(&read_nil));
        assert!(!m.is_read_only(&write));
        let err = m
            .prepare(&op("cas", json!([1, 2]), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("no function \"cas\""), "{err}");
    }
}
