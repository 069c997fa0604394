//! Jepsen's 2015 etcd logs as published with Porcupine's test data:
//! `INFO  jepsen.util - <process>\t<type>\t<f>\t<value>` (some files use spaces instead of tabs).
//!
//! Values are EDN (`nil`, integers, `[old new]`, `:timed-out`). An invocation carries the argument
//! (the written value, the CAS pair, nil for a read); an `:ok :read` carries what was read, where
//! nil means the key did not exist yet.

use super::{edn, FormatError};
use crate::history::{Event, EventType, History, Process};

/// Lines of the op log carry this marker; everything else in a Jepsen log is noise.
pub(super) const MARKER: &str = "jepsen.util - ";

pub(super) fn parse(text: &str) -> Result<History, FormatError> {
    let mut history = History::default();
    let mut last_line = 1;
    for (i, raw) in text.lines().enumerate() {
        last_line = i + 1;
        let Some(at) = raw.find(MARKER) else {
            continue;
        };
        let event = parse_op(&raw[at + MARKER.len()..], last_line, history.events.len())?;
        history.events.push(event);
        history.source_lines.push(last_line);
    }
    if history.events.is_empty() {
        return Err(FormatError::new(
            last_line,
            format!("no `{MARKER}` op lines: not a Jepsen etcd log"),
        ));
    }
    Ok(history)
}

/// Parses `<process> <type> <f> <value>` (whitespace-separated; the value may contain spaces).
fn parse_op(text: &str, line: usize, position: usize) -> Result<Event, FormatError> {
    let fail = |message: String| FormatError::new(line, message);
    let (process, rest) = token(text).ok_or_else(|| fail("missing process".into()))?;
    let (kind, rest) = token(rest).ok_or_else(|| fail("missing type after the process".into()))?;
    let (f, rest) = token(rest).ok_or_else(|| fail("missing function after the type".into()))?;
    let value = rest.trim();
    if value.is_empty() {
        return Err(fail("missing value after the function".into()));
    }

    let process = match process.strip_prefix(':').unwrap_or(process) {
        "nemesis" => Process::Nemesis,
        p => Process::Client(p.parse().map_err(|_| {
            fail(format!(
                "invalid process {process:?}; expected a non-negative integer or :nemesis"
            ))
        })?),
    };
    let mut kind = match kind {
        ":invoke" => EventType::Invoke,
        ":ok" => EventType::Ok,
        ":fail" => EventType::Fail,
        ":info" => EventType::Info,
        _ => {
            return Err(fail(format!(
                "unknown type {kind:?}; expected :invoke, :ok, :fail or :info"
            )))
        }
    };
    let f = f
        .strip_prefix(':')
        .filter(|f| !f.is_empty())
        .ok_or_else(|| fail(format!("invalid function {f:?}; expected a keyword")))?;
    let value = edn::to_json(&edn::parse_value(value, line)?);

    // A read that "failed" timed out: etcd may or may not have served it, and a read changes
    // nothing, so it is indeterminate rather than a failure the model would have to explain.
    if kind == EventType::Fail && f == "read" {
        kind = EventType::Info;
    }
    Ok(Event {
        index: position as u64,
        time: None,
        process,
        kind,
        f: f.to_string(),
        key: None,
        value,
        node: None,
        error: None,
    })
}

/// The first whitespace-separated token and the rest of the text after it.
fn token(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_tabs_and_spaces_and_keeps_arguments() {
        let text = "noise\n\
            INFO  jepsen.util - 1\t:invoke\t:cas\t[0 3]\n\
            INFO  jepsen.util - 1   :fail   :cas    [0 3]\n\
            INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
            INFO  jepsen.util - 2\t:fail\t:read\t:timed-out\n\
            INFO  jepsen.util - 3\t:invoke\t:write\t4\n\
            INFO  jepsen.util - 3\t:info\t:write\t:timed-out\n";
        let h = parse(text).unwrap();
        assert_eq!(h.source_lines, vec![2, 3, 4, 5, 6, 7]);
        let e = &h.events;
        assert_eq!(e[0].value, json!([0, 3]));
        assert_eq!((e[1].kind, e[1].index), (EventType::Fail, 1));
        assert_eq!(e[2].value, json!(null));
        assert_eq!(e[3].kind, EventType::Info, "a failed read is indeterminate");
        assert_eq!(e[3].value, json!("timed-out"));
        assert_eq!((e[4].f.as_str(), &e[4].value), ("write", &json!(4)));
        assert_eq!(
            (e[5].kind, &e[5].value),
            (EventType::Info, &json!("timed-out"))
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err =
            parse("x\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - oops\n")
                .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = parse("INFO  jepsen.util - 0\t:done\t:read\tnil\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains(":done"), "{err}");
        let err = parse("INFO  jepsen.util - 0\t:ok\t:cas\t[1 2\n").unwrap_err();
        assert!(err.to_string().starts_with("line 1: invalid EDN"), "{err}");
        let err = parse("just\nnoise\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("not a Jepsen etcd log"), "{err}");
    }

    /// Regression (fuzzing work): a deeply nested value overflowed the EDN parser's stack.
    #[test]
    fn deep_values_are_an_error() {
        let text = format!(
            "INFO  jepsen.util - 0\t:invoke\t:write\t{}\n",
            "#{".repeat(50_000)
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.to_string(), "line 1: values nest deeper than 64 levels");
    }
}
