//! The replicated state machine: string keys, JSON values, a missing key reads as `null`.

use super::types::Command;
use crate::protocol::Reply;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Kv {
    map: HashMap<String, Value>,
}

impl Kv {
    pub fn get(&self, key: &str) -> Value {
        self.map.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Applies a committed command and returns the client's answer. A cas whose compare fails
    /// changes nothing and is a definite `fail`.
    pub fn apply(&mut self, command: &Command) -> Reply {
        match command {
            Command::Noop => Reply::ok_empty(),
            Command::Put { key, value } => {
                self.set(key, value.clone());
                Reply::ok_empty()
            }
            Command::Cas { key, from, to } => {
                let current = self.get(key);
                if current == *from {
                    self.set(key, to.clone());
                    Reply::ok_empty()
                } else {
                    Reply::fail(format!("compare failed: value is {current}"))
                }
            }
            Command::Txn { mops } => self.txn(mops),
        }
    }

    /// Runs a transaction's micro-ops at once: an `ok` carries them with the reads filled in; a
    /// micro-op that cannot run fails the whole transaction, changing nothing.
    pub fn txn(&mut self, mops: &[crate::txn::Mop]) -> Reply {
        match crate::txn::apply(&mut self.map, mops) {
            Ok(done) => Reply::ok(serde_json::json!(done)),
            Err(e) => Reply::fail(e),
        }
    }

    fn set(&mut self, key: &str, value: Value) {
        if value.is_null() {
            self.map.remove(key);
        } else {
            self.map.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn put_get_and_cas() {
        let mut kv = Kv::default();
        assert_eq!(kv.get("k"), Value::Null);
        let cas = |from: Value, to: Value| Command::Cas {
            key: "k".into(),
            from,
            to,
        };
        assert_eq!(kv.apply(&cas(json!(null), json!(1))), Reply::ok_empty());
        assert!(matches!(
            kv.apply(&cas(json!(2), json!(3))),
            Reply::Fail { .. }
        ));
        assert_eq!(kv.get("k"), json!(1));
        kv.apply(&Command::Put {
            key: "k".into(),
            value: json!({"a": [1]}),
        });
        assert_eq!(kv.get("k"), json!({"a": [1]}));
        assert_eq!(kv.apply(&Command::Noop), Reply::ok_empty());
    }

    #[test]
    fn a_txn_entry_applies_all_its_micro_ops_or_none() {
        use crate::txn::Mop;
        let mut kv = Kv::default();
        let txn = |mops| Command::Txn { mops };
        let reply = kv.apply(&txn(vec![
            Mop::append("t1", json!(1)),
            Mop::read("t1"),
            Mop::read("t2"),
        ]));
        assert_eq!(
            reply,
            Reply::ok(json!([
                ["append", "t1", 1],
                ["r", "t1", [1]],
                ["r", "t2", null]
            ]))
        );
        kv.apply(&Command::Put {
            key: "t2".into(),
            value: json!("x"),
        });
        let reply = kv.apply(&txn(vec![
            Mop::append("t1", json!(2)),
            Mop::append("t2", json!(3)),
        ]));
        assert!(matches!(reply, Reply::Fail { .. }), "{reply:?}");
        assert_eq!(
            kv.get("t1"),
            json!([1]),
            "the failed txn's first append is undone"
        );
        // Its entry round-trips through the log file's JSON.
        let entry = txn(vec![Mop::write("t3", json!(4))]);
        let line = serde_json::to_string(&entry).unwrap();
        assert_eq!(line, r#"{"cmd":"txn","mops":[["w","t3",4]]}"#);
        assert_eq!(serde_json::from_str::<Command>(&line).unwrap(), entry);
    }
}
