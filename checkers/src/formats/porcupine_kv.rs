//! Porcupine's key-value test histories: one EDN op map per line,
//! `{:process N, :type :invoke|:ok, :f :get|:put|:append, :key "k", :value "v"|nil}`.
//!
//! Unlike Knossos files there is no outer vector, and a nil value means nothing special (a `get`
//! invocation has no argument), so the op maps are read as they are.

use super::{edn, FormatError};
use crate::history::History;

pub(super) fn parse(text: &str) -> Result<History, FormatError> {
    let mut history = History::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with(';') {
            continue;
        }
        let map = edn::op_map(edn::parse_value(raw, line)?, line)?;
        let event = edn::event_from_map(&map, line, history.events.len())?;
        history.events.push(event);
        history.source_lines.push(line);
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process};
    use serde_json::json;

    #[test]
    fn reads_one_map_per_line() {
        let text = "{:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\n\
                    {:process 0, :type :ok, :f :get, :key \"7\", :value \"x 0 1 y\"}\n";
        let h = parse(text).unwrap();
        assert_eq!(h.source_lines, vec![1, 3]);
        let e = &h.events;
        assert_eq!(e[0].process, Process::Client(0));
        assert_eq!((e[0].f.as_str(), &e[0].key), ("get", &Some(json!("7"))));
        assert_eq!(e[0].value, json!(null));
        assert_eq!((e[1].kind, e[1].index), (EventType::Ok, 1));
        assert_eq!(
            e[1].value,
            json!("x 0 1 y"),
            "a nil-free ok get is kept as is"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = "{:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\
                    {:process 0, :type :ok, :f :get, :key \"7\" :value}\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse("\n{:type :ok, :f :get}\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: op map has no :process");
        let err = parse("[1 2]\n").unwrap_err();
        assert!(err.message.contains("expected an op map"), "{err}");
    }

    /// Regression (fuzzing work): a deeply nested value overflowed the EDN parser's stack.
    #[test]
    fn deep_values_are_an_error() {
        let text = format!(
            "\n{{:process 0, :type :invoke, :f :get, :value {}}}\n",
            "[".repeat(50_000)
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.to_string(), "line 2: values nest deeper than 64 levels");
    }
}
