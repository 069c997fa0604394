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
}
