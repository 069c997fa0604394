//! A key-value map with `get`, `put` and `append` (Porcupine's kv model, and Fissure's own kv
//! workloads). The state is the whole map, so one history can be checked whole or split by key.

use super::{Atom, Model, ModelError};
use crate::history::{Operation, Outcome};
use serde_json::Value;
use smol_str::SmolStr;
use std::hash::{BuildHasher, Hash, Hasher};

/// A compiled key-value operation.
#[derive(Clone, Debug, PartialEq)]
pub enum KvOp {
    /// A get and the value it returned (`None`: unknown).
    Get(Atom, Option<Atom>),
    Put(Atom, Atom),
    Append(Atom, SmolStr),
    /// An operation that certainly had no effect.
    Nothing,
}

/// The map, as sorted `(key, value)` pairs holding only keys whose value differs from the initial
/// one, so that equal maps are equal states.
///
/// It carries its own hash, kept up to date entry by entry: the checker hashes every new state,
/// and hashing every key's (often long, appended-to) value on every step would dominate a search
/// over many keys.
#[derive(Clone, Debug, Default)]
pub struct KvState {
    /// `(key, value, the value's hash)`: a value's hash is computed once, when it is set, and an
    /// append extends it from the suffix alone.
    entries: Vec<(Atom, Atom, u64)>,
    /// Wrapping sum of the entries' hashes (order-free, and an entry's share can be taken out).
    hash: u64,
}

/// The multiplier of the strings' polynomial hash (odd, with well-spread bits).
const POLY_BASE: u64 = 0x9E37_79B9_7F4A_7C15;

impl KvState {
    /// A value's hash: polynomial for strings, so that `value_hash(a + b)` is `extend(value_hash(a),
    /// b)`; any other value by Fx.
    fn value_hash(value: &Atom) -> u64 {
        match value {
            Atom::Str(s) => Self::extend(0, s),
            other => rustc_hash::FxBuildHasher.hash_one(other),
        }
    }

    fn extend(hash: u64, suffix: &str) -> u64 {
        suffix.bytes().fold(hash, |h, b| {
            h.wrapping_mul(POLY_BASE).wrapping_add(u64::from(b) + 1)
        })
    }

    fn entry_hash(key: &Atom, value_hash: u64) -> u64 {
        rustc_hash::FxBuildHasher.hash_one((key, value_hash))
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.entries == other.entries
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

#[derive(Clone, Debug)]
pub struct KeyValue {
    init: Atom,
    init_hash: u64,
}

impl KeyValue {
    /// `init` is every key's initial value (Porcupine's kv: `""`).
    pub fn new(init: &Value) -> KeyValue {
        let init = Atom::from_value(init);
        KeyValue {
            init_hash: KvState::value_hash(&init),
            init,
        }
    }

    /// `key`'s value and its hash (as [`KvState::value_hash`] computes it).
    fn lookup_hashed<'a>(&'a self, state: &'a KvState, key: &Atom) -> (&'a Atom, u64) {
        match state.entries.binary_search_by(|(k, ..)| k.cmp(key)) {
            Ok(i) => (&state.entries[i].1, state.entries[i].2),
            Err(_) => (&self.init, self.init_hash),
        }
    }

    fn lookup<'a>(&'a self, state: &'a KvState, key: &Atom) -> &'a Atom {
        self.lookup_hashed(state, key).0
    }

    /// The state with `key` set to `value`, whose hash is `value_hash`.
    fn with(&self, state: &KvState, key: &Atom, value: Atom, value_hash: u64) -> KvState {
        let entries = &state.entries;
        let (before, after) = match entries.binary_search_by(|(k, ..)| k.cmp(key)) {
            Ok(i) => (i, i + 1),
            Err(i) => (i, i),
        };
        let mut hash = state.hash;
        if let Some((k, _, old)) = entries.get(before).filter(|_| after > before) {
            hash = hash.wrapping_sub(KvState::entry_hash(k, *old));
        }
        let changed = value != self.init;
        // Built at its final size in one allocation (a clone, then an insert, would grow it).
        let mut next = Vec::with_capacity(before + usize::from(changed) + entries.len() - after);
        next.extend_from_slice(&entries[..before]);
        if changed {
            hash = hash.wrapping_add(KvState::entry_hash(key, value_hash));
            next.push((key.clone(), value, value_hash));
        }
        next.extend_from_slice(&entries[after..]);
        KvState {
            entries: next,
            hash,
        }
    }
}

const FUNCTIONS: &[&str] = &["get", "put", "append", "read", "write"];

/// `a` then `b`, built once: on the stack when short enough to be stored inline, else in one
/// allocation (appends are most of what a kv search does, so no `format!`).
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

impl Model for KeyValue {
    type State = KvState;
    type Op = KvOp;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn init(&self) -> KvState {
        KvState::default()
    }

    fn prepare(&self, op: &Operation) -> Result<KvOp, ModelError> {
        let key = match &op.key {
            Some(key) => Atom::from_value(key),
            None => return Err(ModelError::new(op, "kv operations need a \"key\"")),
        };
        let f = op.f.as_str();
        if !FUNCTIONS.contains(&f) {
            return Err(ModelError::unknown_f(op, "kv", FUNCTIONS));
        }
        Ok(match (f, op.outcome) {
            ("get" | "read", Outcome::Ok) => KvOp::Get(key, Some(Atom::from_value(&op.output))),
            ("get" | "read", _) => KvOp::Get(key, None),
            (_, Outcome::Fail) => KvOp::Nothing,
            ("put" | "write", _) => KvOp::Put(key, Atom::from_value(&op.input)),
            _ => match &op.input {
                Value::String(s) => KvOp::Append(key, s.as_str().into()),
                other => {
                    return Err(ModelError::new(
                        op,
                        format!("append takes a string, got {other}"),
                    ))
                }
            },
        })
    }

    fn step(&self, state: &KvState, op: &KvOp) -> Option<KvState> {
        match op {
            KvOp::Get(key, Some(seen)) => (self.lookup(state, key) == seen).then(|| state.clone()),
            KvOp::Get(_, None) | KvOp::Nothing => Some(state.clone()),
            KvOp::Put(key, value) => {
                Some(self.with(state, key, value.clone(), KvState::value_hash(value)))
            }
            KvOp::Append(key, suffix) => {
                let (current, current_hash) = self.lookup_hashed(state, key);
                // Appending to nothing starts a string: its hash starts from the empty string's.
                let (joined, hash): (SmolStr, u64) = match current {
                    Atom::Str(s) => (join(s, suffix), KvState::extend(current_hash, suffix)),
                    Atom::Nil => (suffix.clone(), KvState::extend(0, suffix)),
                    // Appending to a non-string cannot produce any observation we model.
                    _ => return None,
                };
                Some(self.with(state, key, Atom::Str(joined), hash))
            }
        }
    }

    /// A get can still see `v` if the key holds `v`, if a put to the key could still happen, or
    /// if appends could still get there: the current value is a prefix of `v`.
    fn can_satisfy(
        &self,
        state: &KvState,
        read: &KvOp,
        others: &mut dyn Iterator<Item = &KvOp>,
    ) -> bool {
        let KvOp::Get(key, Some(seen)) = read else {
            return true;
        };
        let current = self.lookup(state, key);
        if current == seen {
            return true;
        }
        for op in others {
            if matches!(op, KvOp::Put(k, _) if k == key) {
                return true;
            }
        }
        match (current, seen) {
            (Atom::Str(now), Atom::Str(seen)) => seen.starts_with(&**now),
            (Atom::Nil, Atom::Str(_)) => true,
            _ => false,
        }
    }

    fn state_bytes(&self, state: &KvState) -> usize {
        let text = |a: &Atom| match a {
            Atom::Str(s) | Atom::Json(s) => s.len() + 16,
            _ => 0,
        };
        std::mem::size_of::<KvState>()
            + state
                .entries
                .iter()
                .map(|(k, v, _)| std::mem::size_of::<(Atom, Atom, u64)>() + text(k) + text(v))
                .sum::<usize>()
    }

    fn admits(&self, state: &KvState, op: &KvOp) -> bool {
        match op {
            KvOp::Get(key, Some(seen)) => self.lookup(state, key) == seen,
            KvOp::Get(_, None) | KvOp::Nothing => true,
            _ => self.step(state, op).is_some(),
        }
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(..) | KvOp::Nothing)
    }

    fn describe_state(&self, state: &KvState) -> Value {
        let map: serde_json::Map<String, Value> = state
            .entries
            .iter()
            .map(|(k, v, _)| {
                let key = match k.to_value() {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (key, v.to_value())
            })
            .collect();
        serde_json::json!({ "changed_keys": map, "others": self.init.to_value() })
    }

    fn keyed(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::keyed;
    use serde_json::json;

    #[test]
    fn put_append_get() {
        let m = KeyValue::new(&json!(""));
        let append = |k: &str, v: &str| {
            m.prepare(&keyed(
                "append",
                json!(k),
                json!(v),
                Outcome::Ok,
                json!(null),
            ))
            .unwrap()
        };
        let get = |k: &str, v: &str| {
            m.prepare(&keyed("get", json!(k), json!(null), Outcome::Ok, json!(v)))
                .unwrap()
        };
        let s = m.step(&m.init(), &append("a", "x")).unwrap();
        let s = m.step(&s, &append("a", "y")).unwrap();
        assert!(m.step(&s, &get("a", "xy")).is_some());
        assert!(m.step(&s, &get("b", "")).is_some());
        assert!(m.step(&s, &get("a", "x")).is_none());
        let put = m
            .prepare(&keyed(
                "put",
                json!("a"),
                json!(""),
                Outcome::Ok,
                json!(null),
            ))
            .unwrap();
        // Putting the initial value back gives the initial state: states stay canonical.
        assert_eq!(m.step(&s, &put).unwrap(), m.init());
        assert!(m.is_read_only(&get("a", "")));
    }

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
    fn appended_and_written_values_hash_alike() {
        // From "" and from nothing at all (null): an append to nothing starts a string.
        for init in [json!(""), json!(null)] {
            let m = KeyValue::new(&init);
            let op = |f: &str, v: &str| {
                m.prepare(&keyed(f, json!("k"), json!(v), Outcome::Ok, json!(null)))
                    .unwrap()
            };
            let appended = m.step(&m.init(), &op("append", "ab")).unwrap();
            let appended = m.step(&appended, &op("append", "cd")).unwrap();
            let written = m.step(&m.init(), &op("put", "abcd")).unwrap();
            assert_eq!(appended, written, "init {init}");
            let hash = |s: &KvState| rustc_hash::FxBuildHasher.hash_one(s);
            assert_eq!(hash(&appended), hash(&written), "init {init}");
            let other = m.step(&m.init(), &op("put", "abdc")).unwrap();
            assert_ne!(appended, other);
        }
    }

    #[test]
    fn admits_agrees_with_step_on_reads() {
        let m = KeyValue::new(&json!(""));
        let put = m
            .prepare(&keyed(
                "put",
                json!("k"),
                json!("v"),
                Outcome::Ok,
                json!(null),
            ))
            .unwrap();
        let s = m.step(&m.init(), &put).unwrap();
        for seen in [json!("v"), json!(""), json!("w")] {
            let get = m
                .prepare(&keyed("get", json!("k"), json!(null), Outcome::Ok, seen))
                .unwrap();
            assert_eq!(m.admits(&s, &get), m.step(&s, &get).is_some());
        }
    }

    #[test]
    fn rejects_missing_key_and_bad_append() {
        let m = KeyValue::new(&json!(""));
        let no_key = crate::model::test_support::op("get", json!(null), Outcome::Ok, json!(""));
        assert!(m.prepare(&no_key).unwrap_err().message.contains("key"));
        let bad = keyed("append", json!("a"), json!(3), Outcome::Ok, json!(null));
        assert!(m.prepare(&bad).unwrap_err().message.contains("string"));
    }
}
