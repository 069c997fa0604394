//! A lock with `acquire` and `release`. Like Knossos' mutex it does not track owners: any process
//! may release a held lock, so it catches double grants but not releases by a non-holder.

use super::{Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// A mutex operation, compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexOp {
    /// Takes a free lock.
    Acquire,
    /// Frees a held lock.
    Release,
    /// An acquire that ran and was refused: the lock was held at that point.
    Refused,
    /// An operation that certainly had no effect and observed nothing (a failed release).
    Nothing,
}

/// A lock that starts free (or held, with `true`).
#[derive(Clone, Debug)]
pub struct Mutex {
    init: bool,
}

impl Mutex {
    pub fn new(init: &Value) -> Result<Mutex, String> {
        match init {
            Value::Null => Ok(Mutex { init: false }),
            Value::Bool(held) => Ok(Mutex { init: *held }),
            other => Err(format!(
                "the mutex model's initial value must be null or false (free) or true (held), got {other}"
            )),
        }
    }
}

impl Model for Mutex {
    /// Whether the lock is held.
    type State = bool;
    type Op = MutexOp;

    fn name(&self) -> &'static str {
        "mutex"
    }

    fn init(&self) -> bool {
        self.init
    }

    fn prepare(&self, op: &Operation) -> Result<MutexOp, ModelError> {
        // Inputs (lock names, owner ids) are ignored: the model has one anonymous lock.
        match (op.f.as_str(), op.outcome) {
            ("acquire", Outcome::Ok | Outcome::Info) => Ok(MutexOp::Acquire),
            ("acquire", Outcome::Fail) => Ok(MutexOp::Refused),
            ("release", Outcome::Ok | Outcome::Info) => Ok(MutexOp::Release),
            // A release can fail because another process holds the lock, which a model without
            // owners cannot tell from "not held": it proves nothing about the state.
            ("release", Outcome::Fail) => Ok(MutexOp::Nothing),
            _ => Err(ModelError::unknown_f(op, "mutex", &["acquire", "release"])),
        }
    }

    fn step(&self, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
            MutexOp::Refused => held.then_some(true),
            MutexOp::Nothing => Some(*held),
        }
    }

    fn is_read_only(&self, op: &MutexOp) -> bool {
        matches!(op, MutexOp::Refused | MutexOp::Nothing)
    }

    fn describe_state(&self, held: &bool) -> Value {
        Value::Bool(*held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use serde_json::json;

    fn prepare(m: &Mutex, f: &str, outcome: Outcome) -> MutexOp {
        m.prepare(&op(f, json!(null), outcome, json!(null)))
            .unwrap()
    }

    #[test]
    fn acquire_and_release() {
        let m = Mutex::new(&json!(null)).unwrap();
        assert!(!m.init());
        let acquire = prepare(&m, "acquire", Outcome::Ok);
        let release = prepare(&m, "release", Outcome::Ok);
        assert_eq!(m.step(&false, &acquire), Some(true));
        assert_eq!(m.step(&true, &acquire), None);
        assert_eq!(m.step(&true, &release), Some(false));
        assert_eq!(m.step(&false, &release), None);
        assert_eq!(prepare(&m, "acquire", Outcome::Info), acquire);
        assert_eq!(prepare(&m, "release", Outcome::Info), release);
        assert_eq!(m.describe_state(&true), json!(true));
        assert!(!m.is_read_only(&acquire) && !m.is_read_only(&release));
    }

    #[test]
    fn failed_operations() {
        let m = Mutex::new(&json!(true)).unwrap();
        assert!(m.init());
        let refused = prepare(&m, "acquire", Outcome::Fail);
        assert_eq!(m.step(&true, &refused), Some(true));
        assert_eq!(m.step(&false, &refused), None);
        let failed_release = prepare(&m, "release", Outcome::Fail);
        assert_eq!(m.step(&true, &failed_release), Some(true));
        assert_eq!(m.step(&false, &failed_release), Some(false));
        assert!(m.is_read_only(&refused) && m.is_read_only(&failed_release));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Mutex::new(&json!(1)).unwrap_err().contains("true (held)"));
        let m = Mutex::new(&json!(false)).unwrap();
        let err = m
            .prepare(&op("lock", json!(null), Outcome::Ok, json!(null)))
            .unwrap_err();
        assert!(err.message.contains("no function \"lock\""), "{err}");
    }
}
