//! Transactions over a key-value map: a list of micro-ops applied all or nothing, as Elle's
//! list-append and rw-register workloads write them (`["append","t3",7]`, `["w","t3",7]`,
//! `["r","t3",null]`; the reply fills each read in).
//!
//! One implementation serves every bundled mode that has transactions (raft-kv applies it to its
//! state machine from one log entry, echo under its mutex), so "atomic" means the same thing in
//! both: the micro-ops run against an overlay of the map, and the overlay is written back only
//! when every micro-op succeeded.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// One micro-op on the wire: `[f, key, value]` with `f` one of `append`, `w`, `r`. The value of
/// an `r` is `null` in a request and what was read in a reply (a list key's whole list, a
/// register's value; `null` for a key never written).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mop(pub String, pub String, pub Value);

impl Mop {
    pub fn append(key: impl Into<String>, value: Value) -> Mop {
        Mop("append".into(), key.into(), value)
    }

    pub fn write(key: impl Into<String>, value: Value) -> Mop {
        Mop("w".into(), key.into(), value)
    }

    pub fn read(key: impl Into<String>) -> Mop {
        Mop("r".into(), key.into(), Value::Null)
    }

    pub fn key(&self) -> &str {
        &self.1
    }

    /// True for `r`: a micro-op that changes nothing.
    pub fn is_read(&self) -> bool {
        self.0 == "r"
    }
}

/// Applies `mops` to `map` atomically and returns them completed (reads filled in). A micro-op
/// that cannot run (an unknown function, an append to a key that holds no list) fails the whole
/// transaction and leaves `map` as it was. Writing `null` removes the key, as a put of `null`
/// does.
pub fn apply(map: &mut HashMap<String, Value>, mops: &[Mop]) -> Result<Vec<Mop>, String> {
    // The transaction's own writes, read back by its later micro-ops, written at the end.
    let mut overlay: BTreeMap<&str, Value> = BTreeMap::new();
    let mut done = Vec::with_capacity(mops.len());
    for mop in mops {
        let Mop(f, key, value) = mop;
        let current = match overlay.get(key.as_str()) {
            Some(v) => v.clone(),
            None => map.get(key).cloned().unwrap_or(Value::Null),
        };
        match f.as_str() {
            "r" => {
                done.push(Mop(f.clone(), key.clone(), current));
                continue;
            }
            "w" => {
                overlay.insert(key, value.clone());
            }
            "append" => {
                let mut list = match current {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items,
                    other => {
                        return Err(format!(
                            "cannot append to {key}: it holds {other}, not a list"
                        ))
                    }
                };
                list.push(value.clone());
                overlay.insert(key, Value::Array(list));
            }
            other => {
                return Err(format!(
                    "no micro-op {other:?}: a transaction has append, w and r"
                ))
            }
        }
        done.push(mop.clone());
    }
    for (key, value) in overlay {
        if value.is_null() {
            map.remove(key);
        } else {
            map.insert(key.to_string(), value);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_see_earlier_writes_of_the_same_transaction() {
        let mut map = HashMap::new();
        let done = apply(
            &mut map,
            &[
                Mop::read("a"),
                Mop::append("a", json!(1)),
                Mop::append("a", json!(2)),
                Mop::read("a"),
                Mop::write("b", json!(5)),
                Mop::read("b"),
            ],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            json!([
                ["r", "a", null],
                ["append", "a", 1],
                ["append", "a", 2],
                ["r", "a", [1, 2]],
                ["w", "b", 5],
                ["r", "b", 5]
            ])
        );
        assert_eq!(map["a"], json!([1, 2]));
        assert_eq!(map["b"], json!(5));
    }

    #[test]
    fn a_failing_micro_op_changes_nothing() {
        let mut map = HashMap::from([("r".to_string(), json!(3))]);
        let err = apply(
            &mut map,
            &[Mop::append("a", json!(1)), Mop::append("r", json!(2))],
        )
        .unwrap_err();
        assert!(err.contains("not a list"), "{err}");
        assert!(!map.contains_key("a"));
        let err = apply(&mut map, &[Mop("cas".into(), "a".into(), json!(1))]).unwrap_err();
        assert!(err.contains("append, w and r"), "{err}");
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn writing_null_removes_the_key() {
        let mut map = HashMap::from([("k".to_string(), json!(3))]);
        apply(&mut map, &[Mop::write("k", Value::Null)]).unwrap();
        assert!(map.is_empty());
    }

    #[test]
    fn wire_shape_is_elles() {
        let mop: Mop = serde_json::from_str(r#"["append","t3",7]"#).unwrap();
        assert_eq!(mop, Mop::append("t3", json!(7)));
        assert!(serde_json::from_str::<Mop>(r#"["r","t3"]"#).is_err());
    }
}
