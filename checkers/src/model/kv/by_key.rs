//! The kv model for a history split by key: each partition holds one key's operations, so a state
//! is that key's value alone. Same semantics as [`super::KeyValue`] on one key, with no map to
//! copy, search or compare on every step — most of a small kv check's time otherwise.

use super::value::{self, Hashed, ValueOp};
use crate::history::Operation;
use crate::model::{Atom, Model, ModelError};
use serde_json::Value;
use std::hash::{Hash, Hasher};

/// One key's value, as a state (hashed by the value's own hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueState(Hashed);

impl Hash for ValueState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

/// Checks one key's operations; the checker only uses it on histories split by key, where every
/// partition has a single key.
#[derive(Clone, Debug)]
pub struct KeyValueByKey {
    init: Hashed,
}

impl KeyValueByKey {
    /// `init` is every key's initial value (Porcupine's kv: `""`).
    pub fn new(init: &Value) -> KeyValueByKey {
        KeyValueByKey {
            init: Hashed::new(Atom::from_value(init)),
        }
    }
}

impl Model for KeyValueByKey {
    type State = ValueState;
    type Op = ValueOp;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn init(&self) -> ValueState {
        ValueState(self.init.clone())
    }

    fn prepare(&self, op: &Operation) -> Result<ValueOp, ModelError> {
        value::compile(op).map(|(_key, op)| op)
    }

    fn step(&self, state: &ValueState, op: &ValueOp) -> Option<ValueState> {
        if op.is_read_only() {
            return state.0.admits(op).then(|| state.clone());
        }
        state.0.after(op).map(ValueState)
    }

    fn admits(&self, state: &ValueState, op: &ValueOp) -> bool {
        state.0.admits(op)
    }

    fn is_read_only(&self, op: &ValueOp) -> bool {
        op.is_read_only()
    }

    fn can_satisfy(
        &self,
        state: &ValueState,
        read: &ValueOp,
        others: &mut dyn Iterator<Item = &ValueOp>,
    ) -> bool {
        let put_pending = || {
            for other in others {
                if matches!(other, ValueOp::Put(_)) {
                    return true;
                }
            }
            false
        };
        state.0.can_still_read(read, put_pending)
    }

    fn state_bytes(&self, state: &ValueState) -> usize {
        std::mem::size_of::<ValueState>() + state.0.bytes()
    }

    fn describe_state(&self, state: &ValueState) -> Value {
        serde_json::json!({ "value": state.0.value.to_value() })
    }

    fn keyed(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use crate::model::test_support::keyed;
    use crate::model::KeyValue;
    use serde_json::json;

    /// The one-key model accepts and rejects exactly what the map model does on one key.
    #[test]
    fn agrees_with_the_map_model_on_one_key() {
        let (map, one) = (KeyValue::new(&json!("")), KeyValueByKey::new(&json!("")));
        let ops = [
            ("append", json!("x"), json!(null)),
            ("get", json!(null), json!("x")),
            ("put", json!("yz"), json!(null)),
            ("get", json!(null), json!("x")),
            ("get", json!(null), json!("yz")),
            ("append", json!("w"), json!(null)),
            ("get", json!(null), json!("yzw")),
            ("put", json!(""), json!(null)),
            ("get", json!(null), json!("")),
        ];
        let (mut s_map, mut s_one) = (map.init(), one.init());
        for (f, input, output) in ops {
            let op = keyed(f, json!("k"), input, Outcome::Ok, output);
            let (m_op, o_op) = (map.prepare(&op).unwrap(), one.prepare(&op).unwrap());
            let (next_map, next_one) = (map.step(&s_map, &m_op), one.step(&s_one, &o_op));
            assert_eq!(next_map.is_some(), next_one.is_some(), "{f} {op:?}");
            if let (Some(a), Some(b)) = (next_map, next_one) {
                (s_map, s_one) = (a, b);
            }
        }
        // Putting the initial value back gives the initial state.
        assert_eq!(s_one, one.init());
        assert_eq!(s_map, map.init());
    }
}
