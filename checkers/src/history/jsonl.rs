//! `history.jsonl`: one JSON object per line (DESIGN.md §3).

use super::{Event, History};
use std::io::{self, BufRead, Write};
use thiserror::Error;

/// A line that is not a valid event, or an I/O failure while reading.
#[derive(Debug, Error)]
pub enum JsonlError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("reading history: {0}")]
    Io(#[from] io::Error),
}

/// Reads a JSON Lines history. Blank lines are skipped; an event without `index` gets its position.
///
/// A last line cut short (no newline, not valid JSON) is what a controller killed mid-write
/// leaves; it is dropped with a warning rather than making the whole history unreadable.
pub fn read_jsonl(mut reader: impl BufRead) -> Result<History, JsonlError> {
    let mut history = History::default();
    let mut line = String::new();
    let mut line_no = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let torn = !line.ends_with('\n');
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) if torn && e.is_eof() => {
                tracing::warn!(line = line_no, "ignoring a torn last line: {e}");
                break;
            }
            Err(e) => {
                return Err(JsonlError::Line {
                    line: line_no,
                    message: format!("not valid JSON: {e}"),
                })
            }
        };
        if let Some(big) = oversized_integer(&value) {
            return Err(JsonlError::Line {
                line: line_no,
                message: format!(
                    "the number {big} does not fit in 64 bits and would be compared inexactly; \
                     write it as a string"
                ),
            });
        }
        let has_index = value.get("index").is_some();
        let mut event: Event = serde_json::from_value(value).map_err(|e| JsonlError::Line {
            line: line_no,
            message: format!("not a history event: {e}"),
        })?;
        if !has_index {
            event.index = history.events.len() as u64;
        }
        history.events.push(event);
        history.source_lines.push(line_no);
    }
    Ok(history)
}

/// An integer too large for 64 bits, which serde_json reads as a float: two different such
/// numbers could compare equal.
fn oversized_integer(value: &serde_json::Value) -> Option<f64> {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64()?;
            (x.fract() == 0.0 && x.abs() >= 9.2e18).then_some(x)
        }
        Value::Array(items) => items.iter().find_map(oversized_integer),
        Value::Object(fields) => fields.values().find_map(oversized_integer),
        _ => None,
    }
}

/// Writes a history as JSON Lines, one event per line.
pub fn write_jsonl(mut writer: impl Write, history: &History) -> io::Result<()> {
    for event in &history.events {
        serde_json::to_writer(&mut writer, event)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process};
    use serde_json::json;

    #[test]
    fn round_trips_the_design_example() {
        let text = r#"{"index":7,"time":18203311,"process":3,"type":"invoke","f":"cas","key":"k2","value":[1,4],"node":"n3"}
{"index":9,"time":19400102,"process":3,"type":"ok","f":"cas","key":"k2","value":[1,4],"node":"n3"}
{"index":10,"time":20000000,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n4","n5"]}}}
"#;
        let history = read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(history.events.len(), 3);
        assert_eq!(history.events[0].key, Some(json!("k2")));
        assert_eq!(history.events[1].kind, EventType::Ok);
        assert_eq!(history.events[2].process, Process::Nemesis);
        let mut out = Vec::new();
        write_jsonl(&mut out, &history).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":0,\"type\":\"done\",\"f\":\"read\"}\n";
        let err = read_jsonl(text.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 3:"), "{err}");
        assert!(err.contains("done"), "{err}");
        let err = read_jsonl("{oops".as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 1: not valid JSON"), "{err}");
        let err = read_jsonl("{\"process\":-1,\"type\":\"ok\",\"f\":\"r\"}".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("process must be"), "{err}");
    }

    #[test]
    fn a_torn_last_line_is_dropped_but_a_torn_middle_is_an_error() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"ty";
        assert_eq!(read_jsonl(text.as_bytes()).unwrap().events.len(), 1);
        let text = "{\"process\":0,\"ty\n{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
        assert!(read_jsonl(text.as_bytes()).is_err());
    }

    #[test]
    fn integers_beyond_64_bits_are_refused() {
        let text =
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":18446744073709551616}\n";
        let err = read_jsonl(text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("does not fit in 64 bits"), "{err}");
    }

    #[test]
    fn missing_index_is_the_position() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n";
        let history = read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(history.events[1].index, 1);
        assert_eq!(history.source_lines, vec![1, 2]);
    }
}
