//! [`Atom`]: a compact, hashable stand-in for a JSON value, so model states can be cached and
//! interned (`serde_json::Value` is neither `Hash` nor cheap to clone).

use serde_json::Value;
use smol_str::SmolStr;

/// A scalar (or, for anything else, its canonical JSON text) that hashes and compares cheaply.
// The hand-written `PartialEq` below only adds a shortcut (one shared copy is equal to itself), so
// it agrees with the derived `Hash` and `Ord`.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Clone, Debug, Eq, Hash, PartialOrd, Ord)]
pub enum Atom {
    Nil,
    Bool(bool),
    Int(i64),
    /// Short strings (most keys and written values) are stored inline, longer ones shared: no
    /// allocation to compile a typical operation, and O(1) clones of long appended values.
    Str(SmolStr),
    /// Floats, big numbers, arrays and objects, as canonical JSON text.
    Json(SmolStr),
}

/// Equality that first asks whether two long strings are one shared copy: model states are compared
/// whenever they are interned, and a state built from another shares its long values with it.
impl PartialEq for Atom {
    fn eq(&self, other: &Atom) -> bool {
        fn same_text(a: &SmolStr, b: &SmolStr) -> bool {
            (a.is_heap_allocated() && a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
        }
        match (self, other) {
            (Atom::Nil, Atom::Nil) => true,
            (Atom::Bool(a), Atom::Bool(b)) => a == b,
            (Atom::Int(a), Atom::Int(b)) => a == b,
            (Atom::Str(a), Atom::Str(b)) | (Atom::Json(a), Atom::Json(b)) => same_text(a, b),
            _ => false,
        }
    }
}

impl Atom {
    pub fn from_value(value: &Value) -> Atom {
        match value {
            Value::Null => Atom::Nil,
            Value::Bool(b) => Atom::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Atom::Int(i),
                None => Atom::Json(n.to_string().into()),
            },
            Value::String(s) => Atom::Str(s.as_str().into()),
            other => Atom::Json(other.to_string().into()),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Atom::Nil => Value::Null,
            Atom::Bool(b) => Value::Bool(*b),
            Atom::Int(i) => Value::from(*i),
            Atom::Str(s) => Value::String(s.to_string()),
            Atom::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Atom::Nil)
    }
}

impl From<&Value> for Atom {
    fn from(value: &Value) -> Atom {
        Atom::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_values() {
        for v in [
            json!(null),
            json!(true),
            json!(-3),
            json!("x"),
            json!(1.5),
            json!([1, {"a": 2}]),
        ] {
            assert_eq!(Atom::from_value(&v).to_value(), v);
        }
        assert_eq!(Atom::from_value(&json!(2)), Atom::Int(2));
    }
}
