//! A key-value map with `get`, `put` and `append` (Porcupine's kv model, and Fissure's own kv
//! workloads). The state is the whole map, so one history can be checked whole; a history split by
//! key is checked with [`KeyValueByKey`], whose state is one key's value.

mod by_key;
mod value;

pub use by_key::KeyValueByKey;

use super::{Atom, Model, ModelError};
use crate::history::Operation;
use serde_json::Value;
use smallvec::SmallVec;
use std::hash::{BuildHasher, Hash, Hasher};
use value::{Hashed, ValueOp};

/// A key, with its hash computed once when the operation is compiled (every step that touches the
/// key needs it).
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    atom: Atom,
    hash: u64,
}

impl Key {
    fn new(atom: Atom) -> Key {
        Key {
            hash: rustc_hash::FxBuildHasher.hash_one(&atom),
            atom,
        }
    }
}

/// A compiled key-value operation: its key, and what it does to the key's value.
#[derive(Clone, Debug, PartialEq)]
pub struct KvOp {
    key: Key,
    op: ValueOp,
}

/// One key's value in a [`KvState`].
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    key_hash: u64,
    key: Atom,
    value: Hashed,
}

impl Entry {
    /// The entry's share of its state's hash.
    fn hash(&self) -> u64 {
        (self.key_hash ^ self.value.hash.rotate_left(29)).wrapping_mul(0xA24B_AED4_963E_E407)
    }

    /// Sorts entries by key hash, then key: finding a key compares words, not strings.
    fn order(&self, key: &Key) -> std::cmp::Ordering {
        self.key_hash
            .cmp(&key.hash)
            .then_with(|| self.key.cmp(&key.atom))
    }
}

/// The map, as sorted entries holding only keys whose value differs from the initial one, so that
/// equal maps are equal states.
///
/// One entry is stored inline, so a state of one changed key does not allocate for the map. The
/// state carries its own hash, kept up to date entry by entry: the checker hashes every new state,
/// and hashing every key's (often long, appended-to) value on every step would dominate a search
/// over many keys.
#[derive(Clone, Debug, Default)]
pub struct KvState {
    entries: SmallVec<[Entry; 1]>,
    /// Wrapping sum of the entries' hashes (order-free, and an entry's share can be taken out).
    hash: u64,
}

impl KvState {
    /// Where `key` is, or would go. Most states hold a few keys, where a scan comparing hashes
    /// beats a binary search.
    fn find(&self, key: &Key) -> Result<usize, usize> {
        if self.entries.len() > 8 {
            return self.entries.binary_search_by(|e| e.order(key));
        }
        for (i, e) in self.entries.iter().enumerate() {
            if e.key_hash == key.hash && e.key == key.atom {
                return Ok(i);
            }
            if e.order(key) == std::cmp::Ordering::Greater {
                return Err(i);
            }
        }
        Err(self.entries.len())
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
    init: Hashed,
}

impl KeyValue {
    /// `init` is every key's initial value (Porcupine's kv: `""`).
    pub fn new(init: &Value) -> KeyValue {
        KeyValue {
            init: Hashed::new(Atom::from_value(init)),
        }
    }

    /// `key`'s value, given where [`KvState::find`] found it.
    fn value_at<'a>(&'a self, state: &'a KvState, at: Result<usize, usize>) -> &'a Hashed {
        match at {
            Ok(i) => &state.entries[i].value,
            Err(_) => &self.init,
        }
    }

    /// The state with `key` (found at `at`) set to `value`.
    fn with(&self, state: &KvState, key: &Key, at: Result<usize, usize>, value: Hashed) -> KvState {
        // Copied with room for one more entry, so that setting a new key does not grow it again.
        let mut entries = SmallVec::with_capacity(state.entries.len() + 1);
        entries.extend(state.entries.iter().cloned());
        let mut next = KvState {
            entries,
            hash: state.hash,
        };
        self.set(&mut next, key, at, value);
        next
    }

    /// Sets `key` (found at `at`) to `value` in `state`, dropping the entry when the value is the
    /// initial one, so that equal maps stay equal states.
    fn set(&self, state: &mut KvState, key: &Key, at: Result<usize, usize>, value: Hashed) {
        let changed = value != self.init;
        let entry = Entry {
            key_hash: key.hash,
            key: key.atom.clone(),
            value,
        };
        match at {
            Ok(i) => {
                state.hash = state.hash.wrapping_sub(state.entries[i].hash());
                if changed {
                    state.hash = state.hash.wrapping_add(entry.hash());
                    state.entries[i] = entry;
                } else {
                    state.entries.remove(i);
                }
            }
            Err(i) if changed => {
                state.hash = state.hash.wrapping_add(entry.hash());
                state.entries.insert(i, entry);
            }
            Err(_) => {}
        }
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
        let (key, op) = value::compile(op)?;
        Ok(KvOp {
            key: Key::new(Atom::from_value(key)),
            op,
        })
    }

    fn step(&self, state: &KvState, op: &KvOp) -> Option<KvState> {
        if op.op.is_read_only() {
            return self.admits(state, op).then(|| state.clone());
        }
        let at = state.find(&op.key);
        let value = self.value_at(state, at).after(&op.op)?;
        Some(self.with(state, &op.key, at, value))
    }

    fn apply(&self, state: &mut KvState, op: &KvOp) -> bool {
        if op.op.is_read_only() {
            return self.admits(state, op);
        }
        let at = state.find(&op.key);
        let Some(value) = self.value_at(state, at).after(&op.op) else {
            return false;
        };
        self.set(state, &op.key, at, value);
        true
    }

    fn can_satisfy(
        &self,
        state: &KvState,
        read: &KvOp,
        others: &mut dyn Iterator<Item = &KvOp>,
    ) -> bool {
        let key = &read.key;
        let put_pending = || {
            for other in others {
                if matches!(other.op, ValueOp::Put(_)) && other.key == *key {
                    return true;
                }
            }
            false
        };
        self.value_at(state, state.find(key))
            .can_still_read(&read.op, put_pending)
    }

    fn state_bytes(&self, state: &KvState) -> usize {
        std::mem::size_of::<KvState>()
            + state
                .entries
                .iter()
                .map(|e| std::mem::size_of::<Entry>() + value::text_bytes(&e.key) + e.value.bytes())
                .sum::<usize>()
    }

    fn admits(&self, state: &KvState, op: &KvOp) -> bool {
        self.value_at(state, state.find(&op.key)).admits(&op.op)
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        op.op.is_read_only()
    }

    fn describe_state(&self, state: &KvState) -> Value {
        let map: serde_json::Map<String, Value> = state
            .entries
            .iter()
            .map(|e| (key_text(&e.key), e.value.value.to_value()))
            .collect();
        serde_json::json!({ "changed_keys": map, "others": self.init.value.to_value() })
    }

    fn keyed(&self) -> bool {
        true
    }
}

/// A key as a JSON object's field name: strings as they are, anything else as its JSON text.
fn key_text(key: &Atom) -> String {
    match key.to_value() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
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
