//! What a kv operation does to its key's value, shared by the map model ([`super::KeyValue`]) and
//! the one-key model a history split by key is checked with ([`super::KeyValueByKey`]).

use crate::history::{Operation, Outcome};
use crate::model::{Atom, ModelError};
use serde_json::Value;
use smol_str::SmolStr;
use std::hash::BuildHasher;

/// A compiled operation on one key's value.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueOp {
    /// A get and the value it returned (`None`: unknown).
    Get(Option<Atom>),
    Put(Atom),
    Append(SmolStr),
    /// An operation that certainly had no effect.
    Nothing,
}

impl ValueOp {
    pub(super) fn is_read_only(&self) -> bool {
        matches!(self, ValueOp::Get(..) | ValueOp::Nothing)
    }
}

const FUNCTIONS: &[&str] = &["get", "put", "append", "read", "write"];

/// Compiles a recorded kv operation into its key and what it does.
pub(super) fn compile(op: &Operation) -> Result<(&Value, ValueOp), ModelError> {
    let Some(key) = &op.key else {
        return Err(ModelError::new(op, "kv operations need a \"key\""));
    };
    enum Function {
        Get,
        Put,
        Append,
    }
    let function = match op.f.as_str() {
        "get" | "read" => Function::Get,
        "put" | "write" => Function::Put,
        "append" => Function::Append,
        _ => return Err(ModelError::unknown_f(op, "kv", FUNCTIONS)),
    };
    let compiled = match (function, op.outcome) {
        (Function::Get, Outcome::Ok) => ValueOp::Get(Some(Atom::from_value(&op.output))),
        (Function::Get, _) => ValueOp::Get(None),
        (_, Outcome::Fail) => ValueOp::Nothing,
        (Function::Put, _) => ValueOp::Put(Atom::from_value(&op.input)),
        (Function::Append, _) => match &op.input {
            Value::String(s) => ValueOp::Append(s.as_str().into()),
            other => {
                return Err(ModelError::new(
                    op,
                    format!("append takes a string, got {other}"),
                ))
            }
        },
    };
    Ok((key, compiled))
}

/// A value with its hash, computed once when the value is set: an append extends it from the
/// suffix alone, so a long appended-to value is never hashed whole.
#[derive(Clone, Debug)]
pub struct Hashed {
    pub value: Atom,
    pub hash: u64,
}

impl PartialEq for Hashed {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.value == other.value
    }
}

impl Eq for Hashed {}

/// The multiplier of the strings' polynomial hash (odd, with well-spread bits).
const POLY_BASE: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hashed {
    pub fn new(value: Atom) -> Hashed {
        // Polynomial for strings, so that the hash of `a + b` is `extend(hash(a), b)`; any other
        // value by Fx.
        let hash = match &value {
            Atom::Str(s) => extend(0, s),
            other => rustc_hash::FxBuildHasher.hash_one(other),
        };
        Hashed { value, hash }
    }

    /// The value after a write-like `op` (a put or an append), or `None` when `op` cannot take
    /// effect on it.
    pub fn after(&self, op: &ValueOp) -> Option<Hashed> {
        match op {
            ValueOp::Put(value) => Some(Hashed::new(value.clone())),
            ValueOp::Append(suffix) => match &self.value {
                Atom::Str(s) => Some(Hashed {
                    value: Atom::Str(join(s, suffix)),
                    hash: extend(self.hash, suffix),
                }),
                // Appending to nothing starts a string: its hash starts from the empty string's.
                Atom::Nil => Some(Hashed {
                    value: Atom::Str(suffix.clone()),
                    hash: extend(0, suffix),
                }),
                // Appending to a non-string cannot produce any observation we model.
                _ => None,
            },
            ValueOp::Get(_) | ValueOp::Nothing => Some(self.clone()),
        }
    }

    /// Whether a read-only `op` could take effect on this value.
    pub fn admits(&self, op: &ValueOp) -> bool {
        match op {
            ValueOp::Get(Some(seen)) => &self.value == seen,
            _ => true,
        }
    }

    /// Whether a get of this key can still see what it saw: if the key holds it, if a put to the
    /// key could still happen, or if appends could still get there (the current value is a
    /// prefix of it).
    pub fn can_still_read(&self, read: &ValueOp, put_pending: impl FnOnce() -> bool) -> bool {
        let ValueOp::Get(Some(seen)) = read else {
            return true;
        };
        if &self.value == seen || put_pending() {
            return true;
        }
        match (&self.value, seen) {
            (Atom::Str(now), Atom::Str(seen)) => seen.starts_with(&**now),
            (Atom::Nil, Atom::Str(_)) => true,
            _ => false,
        }
    }

    /// Roughly what the value holds, for the memory budget.
    pub fn bytes(&self) -> usize {
        text_bytes(&self.value)
    }
}

pub(super) fn text_bytes(atom: &Atom) -> usize {
    match atom {
        Atom::Str(s) | Atom::Json(s) => s.len() + 16,
        _ => 0,
    }
}

fn extend(hash: u64, suffix: &str) -> u64 {
    suffix.bytes().fold(hash, |h, b| {
        h.wrapping_mul(POLY_BASE).wrapping_add(u64::from(b) + 1)
    })
}

/// `a` then `b`: on the stack when short enough to be stored inline, else copied once into a
/// buffer of the right size and once into the shared copy (appends are most of what a kv search
/// does, so no `format!`, nor smol_str's `FromIterator`, which copies and reallocates more).
fn join(a: &str, b: &str) -> SmolStr {
    const INLINE: usize = 23;
    let len = a.len() + b.len();
    if len <= INLINE {
        let mut buf = [0u8; INLINE];
        buf[..a.len()].copy_from_slice(a.as_bytes());
        buf[a.len()..len].copy_from_slice(b.as_bytes());
        SmolStr::new(std::str::from_utf8(&buf[..len]).expect("two strings joined are UTF-8"))
    } else {
        let mut joined = String::with_capacity(len);
        joined.push_str(a);
        joined.push_str(b);
        joined.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_short_and_long_strings_alike() {
        for (a, b) in [
            ("", ""),
            ("x 1 y", "x 2 y"),
            ("é", "ü"),
            (&"a".repeat(20), "bcdef"),
        ] {
            assert_eq!(join(a, b), format!("{a}{b}"));
        }
    }

    #[test]
    fn an_appended_value_hashes_like_the_same_value_written() {
        for start in [Atom::Str("".into()), Atom::Nil] {
            let appended = Hashed::new(start)
                .after(&ValueOp::Append("ab".into()))
                .and_then(|v| v.after(&ValueOp::Append("cd".into())))
                .unwrap();
            let written = Hashed::new(Atom::Str("abcd".into()));
            assert_eq!(appended, written);
            assert_eq!(appended.hash, written.hash);
        }
    }
}
