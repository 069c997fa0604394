//! A map of registers read and written together in transactions (Knossos' multi-register).
//!
//! Keys are strings; integer keys are spelled as strings so that `txn` micro-ops and the object
//! shorthand (whose keys JSON forces to be strings) name the same registers.

use super::{Atom, Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum MicroOp {
    /// Reads a register and must see this value.
    Read(Atom, Atom),
    Write(Atom, Atom),
}

/// A transaction, compiled: micro-ops applied in order, atomically. Reads whose value is unknown
/// are dropped, and a transaction that certainly had no effect is empty.
#[derive(Clone, Debug, PartialEq)]
pub struct Txn(pub Vec<MicroOp>);

/// Registers that start at one value (null by default), or each at its own value (Knossos'
/// `(multi-register {:x 0 :y 0})`: registers the map does not name start at null).
#[derive(Clone, Debug)]
pub struct MultiRegister {
    /// Where registers not in `initial` start.
    default: Atom,
    /// Per-register initial values, sorted by key.
    initial: Vec<(Atom, Atom)>,
}

impl MultiRegister {
    pub fn new(init: &Value) -> Result<MultiRegister, String> {
        match init {
            Value::Object(map) => {
                let mut initial: Vec<(Atom, Atom)> = map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::Array(_) | Value::Object(_) => Err(format!(
                            "register {k:?} must start at a scalar value, got {v}"
                        )),
                        scalar => Ok((Atom::Str(k.as_str().into()), Atom::from_value(scalar))),
                    })
                    .collect::<Result<_, _>>()?;
                initial.sort();
                Ok(MultiRegister {
                    default: Atom::Nil,
                    initial,
                })
            }
            Value::Array(_) => Err(format!(
                "the multi-register model's initial value must be null (every register null), a \
                 scalar every register starts at, or a map {{register: value}} (others start at \
                 null), got {init}"
            )),
            scalar => Ok(MultiRegister {
                default: Atom::from_value(scalar),
                initial: Vec::new(),
            }),
        }
    }

    /// The value `key` holds before anything writes it.
    fn initial(&self, key: &Atom) -> &Atom {
        match self.initial.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(i) => &self.initial[i].1,
            Err(_) => &self.default,
        }
    }

    fn get<'a>(&'a self, registers: &'a [(Atom, Atom)], key: &Atom) -> &'a Atom {
        match registers.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(i) => &registers[i].1,
            Err(_) => self.initial(key),
        }
    }

    /// Keeps only registers that differ from their initial value, so equal maps are equal states.
    fn set(&self, registers: &mut Vec<(Atom, Atom)>, key: &Atom, value: &Atom) {
        let initial = value == self.initial(key);
        match registers.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(i) if initial => {
                registers.remove(i);
            }
            Ok(i) => registers[i].1 = value.clone(),
            Err(_) if initial => {}
            Err(i) => registers.insert(i, (key.clone(), value.clone())),
        }
    }
}

fn key(value: &Value) -> Option<Atom> {
    match value {
        Value::String(s) => Some(Atom::Str(s.as_str().into())),
        Value::Number(n) => n.as_i64().map(|i| Atom::Str(i.to_string().into())),
        _ => None,
    }
}

/// `[[f, key, value], ...]` as (is a write, key, value) triples.
fn micro_ops(value: &Value) -> Option<Vec<(bool, Atom, &Value)>> {
    fn micro(m: &Value) -> Option<(bool, Atom, &Value)> {
        let [f, k, v] = m.as_array()?.as_slice() else {
            return None;
        };
        let is_write = match f.as_str()? {
            "read" | "r" => false,
            "write" | "w" => true,
            _ => return None,
        };
        Some((is_write, key(k)?, v))
    }
    value.as_array()?.iter().map(micro).collect()
}

fn prepare_txn(op: &Operation) -> Result<Txn, ModelError> {
    let bad = |what: &str, got: &Value| {
        let shape = "an array of [\"read\" or \"write\", key, value] with string or integer keys";
        ModelError::new(op, format!("a txn's {what} must be {shape}, got {got}"))
    };
    let input = micro_ops(&op.input).ok_or_else(|| bad("input", &op.input))?;
    let same_shape = |out: &[(bool, Atom, &Value)]| {
        out.len() == input.len()
            && out
                .iter()
                .zip(&input)
                .all(|(o, i)| o.0 == i.0 && o.1 == i.1)
    };
    let output = match op.outcome {
        Outcome::Fail => return Ok(Txn(Vec::new())),
        Outcome::Info => None,
        Outcome::Ok => match micro_ops(&op.output) {
            Some(out) if same_shape(&out) => Some(out),
            _ => return Err(bad("output (the input's micro-ops, completed)", &op.output)),
        },
    };
    let compiled = input
        .iter()
        .enumerate()
        .filter_map(|(i, (is_write, k, v))| match &output {
            _ if *is_write => Some(MicroOp::Write(k.clone(), Atom::from_value(v))),
            Some(out) => Some(MicroOp::Read(k.clone(), Atom::from_value(out[i].2))),
            None => None,
        });
    Ok(Txn(compiled.collect()))
}

/// The shorthand `read` (output `{key: value}`) and `write` (input `{key: value}`).
fn prepare_object(op: &Operation, is_write: bool) -> Result<Txn, ModelError> {
    let what = if is_write { "input" } else { "output" };
    let object = if is_write { &op.input } else { &op.output };
    // A read without an ok output observed nothing; a failed write did nothing.
    if !is_write && op.outcome != Outcome::Ok {
        return Ok(Txn(Vec::new()));
    }
    let map = object.as_object().ok_or_else(|| {
        let f = &op.f;
        ModelError::new(
            op,
            format!("{f}'s {what} must be an object {{key: value}}, got {object}"),
        )
    })?;
    if op.outcome == Outcome::Fail {
        return Ok(Txn(Vec::new()));
    }
    let make: fn(Atom, Atom) -> MicroOp = if is_write {
        MicroOp::Write
    } else {
        MicroOp::Read
    };
    let micro_ops = map
        .iter()
        .map(|(k, v)| make(Atom::Str(k.as_str().into()), Atom::from_value(v)));
    Ok(Txn(micro_ops.collect()))
}

impl Model for MultiRegister {
    /// Registers that differ from the initial value, sorted by key.
    type State = Vec<(Atom, Atom)>;
    type Op = Txn;

    fn name(&self) -> &'static str {
        "multi-register"
    }

    fn init(&self) -> Vec<(Atom, Atom)> {
        Vec::new()
    }

    fn prepare(&self, op: &Operation) -> Result<Txn, ModelError> {
        match op.f.as_str() {
            "txn" => prepare_txn(op),
            "read" => prepare_object(op, false),
            "write" => prepare_object(op, true),
            _ => Err(ModelError::unknown_f(
                op,
                "multi-register",
                &["txn", "read", "write"],
            )),
        }
    }

    fn step(&self, state: &Vec<(Atom, Atom)>, op: &Txn) -> Option<Vec<(Atom, Atom)>> {
        let mut registers = state.clone();
        for micro_op in &op.0 {
            match micro_op {
                MicroOp::Read(k, seen) if self.get(&registers, k) != seen => return None,
                MicroOp::Read(..) => {}
                MicroOp::Write(k, v) => self.set(&mut registers, k, v),
            }
        }
        Some(registers)
    }

    fn admits(&self, state: &Vec<(Atom, Atom)>, op: &Txn) -> bool {
        if !self.is_read_only(op) {
            return self.step(state, op).is_some();
        }
        op.0.iter().all(|micro_op| match micro_op {
            MicroOp::Read(k, seen) => self.get(state, k) == seen,
            MicroOp::Write(..) => true,
        })
    }

    fn is_read_only(&self, op: &Txn) -> bool {
        op.0.iter().all(|m| matches!(m, MicroOp::Read(..)))
    }

    /// The registers that differ from their initial value, as `{key: value}`.
    fn describe_state(&self, state: &Vec<(Atom, Atom)>) -> Value {
        let text = |k: &Atom| match k.to_value() {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let map = |pairs: &[(Atom, Atom)]| -> serde_json::Map<String, Value> {
            pairs.iter().map(|(k, v)| (text(k), v.to_value())).collect()
        };
        // Registers not listed hold their initial value; say which, or `{}` reads as "empty".
        let mut described = serde_json::json!({
            "changed_keys": map(state),
            "others": self.default.to_value(),
        });
        if !self.initial.is_empty() {
            described["initial"] = Value::Object(map(&self.initial));
        }
        described
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::op;
    use serde_json::json;

    fn prep(f: &str, input: Value, outcome: Outcome, output: Value) -> Result<Txn, ModelError> {
        MultiRegister::new(&json!(null))
            .unwrap()
            .prepare(&op(f, input, outcome, output))
    }

    #[test]
    fn transactions_read_their_own_writes() {
        let m = MultiRegister::new(&json!(null)).unwrap();
        let input = json!([["write", "x", 1], ["read", "x", null], ["read", 2, null]]);
        let output = json!([["write", "x", 1], ["read", "x", 1], ["read", 2, null]]);
        let txn = prep("txn", input.clone(), Outcome::Ok, output).unwrap();
        let s = m.step(&m.init(), &txn).unwrap();
        assert_eq!(
            m.describe_state(&s),
            json!({"changed_keys": {"x": 1}, "others": null})
        );
        let stale = json!([["write", "x", 1], ["read", "x", 1], ["read", 2, 5]]);
        let stale = prep("txn", input, Outcome::Ok, stale).unwrap();
        assert_eq!(m.step(&s, &stale), None);
        assert!(!m.is_read_only(&txn));
    }

    #[test]
    fn a_map_gives_each_register_its_own_initial_value() {
        let m = MultiRegister::new(&json!({"x": 0, "y": 0})).unwrap();
        let read = |output: Value| {
            let txn = op(
                "txn",
                json!([["r", "x", null], ["r", "z", null]]),
                Outcome::Ok,
                output,
            );
            m.prepare(&txn).unwrap()
        };
        // Named registers start at their value, others at null, and writing the initial value
        // back gives the initial state.
        assert!(m
            .step(&m.init(), &read(json!([["r", "x", 0], ["r", "z", null]])))
            .is_some());
        assert!(m
            .step(
                &m.init(),
                &read(json!([["r", "x", null], ["r", "z", null]]))
            )
            .is_none());
        let write = |v: i64| {
            let txn = json!([["w", "x", v]]);
            m.prepare(&op("txn", txn.clone(), Outcome::Ok, txn))
                .unwrap()
        };
        let s = m.step(&m.init(), &write(5)).unwrap();
        assert_eq!(m.step(&s, &write(0)), Some(m.init()));
        assert_eq!(
            m.describe_state(&s),
            json!({"changed_keys": {"x": 5}, "others": null, "initial": {"x": 0, "y": 0}})
        );
        let nested = MultiRegister::new(&json!({"x": [1]})).unwrap_err();
        assert!(nested.contains("\"x\""), "{nested}");
        assert!(MultiRegister::new(&json!([0])).is_err());
    }

    #[test]
    fn shorthand_and_init_value() {
        let m = MultiRegister::new(&json!(0)).unwrap();
        let write = op("write", json!({"1": 3, "y": 0}), Outcome::Ok, json!(null));
        let s = m.step(&m.init(), &m.prepare(&write).unwrap()).unwrap();
        assert_eq!(s, vec![(Atom::Str("1".into()), Atom::Int(3))]);
        let read = op(
            "txn",
            json!([["r", 1, null]]),
            Outcome::Ok,
            json!([["r", 1, 3]]),
        );
        assert_eq!(m.step(&s, &m.prepare(&read).unwrap()), Some(s.clone()));
        let read = op("read", json!(null), Outcome::Ok, json!({"1": 0, "z": 0}));
        let read = m.prepare(&read).unwrap();
        assert_eq!(m.step(&s, &read), None);
        assert_eq!(m.step(&m.init(), &read), Some(m.init()));
        assert!(m.is_read_only(&read));
        let unwrite = op("write", json!({"1": 0}), Outcome::Ok, json!(null));
        assert_eq!(m.step(&s, &m.prepare(&unwrite).unwrap()), Some(m.init()));
    }

    #[test]
    fn unknown_and_failed_transactions() {
        let input = json!([["read", "x", null], ["write", "x", 1]]);
        let info = prep("txn", input.clone(), Outcome::Info, json!(null)).unwrap();
        let write = MicroOp::Write(Atom::Str("x".into()), Atom::Int(1));
        assert_eq!(info, Txn(vec![write]));
        let failed = prep("txn", input, Outcome::Fail, json!(null)).unwrap();
        assert_eq!(failed, Txn(Vec::new()));
        let failed_write = prep("write", json!({"x": 1}), Outcome::Fail, json!(null)).unwrap();
        let read = prep("read", json!(null), Outcome::Info, json!(null)).unwrap();
        let m = MultiRegister::new(&json!(null)).unwrap();
        assert!(m.is_read_only(&failed) && m.is_read_only(&failed_write) && m.is_read_only(&read));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(MultiRegister::new(&json!([1]))
            .unwrap_err()
            .contains("scalar"));
        let err = prep(
            "txn",
            json!([["read", [1], null]]),
            Outcome::Info,
            json!(null),
        );
        assert!(err.unwrap_err().message.contains("string or integer keys"));
        let err = prep(
            "txn",
            json!([["read", "x", null]]),
            Outcome::Ok,
            json!([["read", "y", 1]]),
        );
        assert!(err.unwrap_err().message.contains("output"));
        let err = prep("write", json!(3), Outcome::Ok, json!(null)).unwrap_err();
        assert!(err.message.contains("object {key: value}"), "{err}");
        let err = prep("cas", json!(null), Outcome::Ok, json!(null)).unwrap_err();
        assert!(err.message.contains("no function \"cas\""), "{err}");
    }
}
