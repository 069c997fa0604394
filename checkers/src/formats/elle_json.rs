//! elle-cli's JSON histories: one JSON array of op objects, as Elle's `jepsen.history` writes
//! them (`{"type":"ok","process":0,"index":1,"value":[["append",1,1],["r",2,[]]]}`).
//!
//! They differ from Fissure's `history.jsonl` in three ways this importer smooths over: the ops
//! sit in one array rather than one per line; a transaction has no `f` (or `"f": null`, or
//! `"txn"`), so it is given `f = "txn"`; and `"time": -1` means "no time recorded".

use super::FormatError;
use crate::history::{Event, History};
use serde_json::Value;

pub(super) fn parse(text: &str) -> Result<History, FormatError> {
    let ops: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        FormatError::new(
            e.line(),
            format!("not a JSON array of op objects (elle-cli's format): {e}"),
        )
    })?;
    let lines = element_lines(text);
    let mut history = History::default();
    for (position, mut op) in ops.into_iter().enumerate() {
        let line = lines.get(position).copied().unwrap_or(0);
        let Some(object) = op.as_object_mut() else {
            return Err(FormatError::new(
                line,
                format!("op {position} is not an object"),
            ));
        };
        let is_txn = object
            .get("value")
            .and_then(Value::as_array)
            .is_some_and(|mops| mops.iter().all(Value::is_array));
        match object.get("f") {
            None | Some(Value::Null) if is_txn => {
                object.insert("f".into(), Value::String("txn".into()));
            }
            None | Some(Value::Null) => {
                return Err(FormatError::new(
                    line,
                    "an op without \"f\" must be a transaction (a list of micro-ops)",
                ))
            }
            _ => {}
        }
        if object
            .get("time")
            .and_then(Value::as_i64)
            .is_some_and(|t| t < 0)
        {
            object.remove("time");
        }
        if object.get("index").is_none() {
            object.insert("index".into(), Value::from(position as u64));
        }
        let event: Event = serde_json::from_value(op)
            .map_err(|e| FormatError::new(line, format!("not a history op: {e}")))?;
        history.events.push(event);
        history.source_lines.push(line);
    }
    Ok(history)
}

/// The 1-based line on which each element of the top-level array starts, so errors can name it.
fn element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth, mut in_string, mut escaped) = (1, 0usize, false, false);
    for c in text.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '\n' => line += 1,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '\n' => line += 1,
            '[' | '{' => {
                if depth == 1 {
                    lines.push(line);
                }
                depth += 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;

    #[test]
    fn reads_elle_cli_transactions() {
        let text = "[{\"index\":0,\"process\":0,\"type\":\"invoke\",\"value\":[[\"append\",1,1],[\"r\",2,null]]},\n \
                    {\"index\":1,\"time\":-1,\"process\":0,\"type\":\"ok\",\"f\":null,\"value\":[[\"append\",1,1],[\"r\",2,[]]]}]";
        let history = parse(text).unwrap();
        assert_eq!(history.events.len(), 2);
        assert_eq!(history.events[1].f, "txn");
        assert_eq!(history.events[1].kind, EventType::Ok);
        assert_eq!(history.events[1].time, None);
        assert_eq!(history.source_lines, vec![1, 2]);
    }

    #[test]
    fn errors_name_the_line_of_the_op() {
        let text = "[{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]},\n {\"process\":0,\"type\":\"done\",\"f\":\"txn\",\"value\":[]}]";
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse("[{\"process\":0,\"type\":\"ok\",\"value\":3}]").unwrap_err();
        assert!(err.message.contains("transaction"), "{err}");
        let err = parse("{\"process\":0}").unwrap_err();
        assert!(err.message.contains("array"), "{err}");
    }
}
