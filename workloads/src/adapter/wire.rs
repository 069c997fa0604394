//! The adapter protocol's lines: requests Fissure writes, answers it accepts. Pure, so every
//! rule about what counts as an answer is tested here without a process.

use serde::Serialize;
use serde_json::Value;

use crate::client::ClientReply;

/// Longest answer line accepted (a set read of many elements is long, but not this long).
pub(crate) const MAX_LINE: usize = 64 << 20;

/// One request line, as the adapter reads it.
#[derive(Debug, Serialize)]
pub(crate) struct Request<'a> {
    pub id: u64,
    pub process: u64,
    pub f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a Value>,
    pub value: &'a Value,
    pub node: &'a str,
    pub address: &'a str,
    /// How long Fissure waits for the answer; an adapter should answer `info` itself before.
    pub timeout_ms: u64,
}

impl Request<'_> {
    /// The request as one line, newline included.
    pub(crate) fn line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a request serializes");
        line.push('\n');
        line
    }
}

/// At most `max` characters of `text`, marked when cut: for quoting babble in a log line.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head:?}... ({} bytes)", text.len())
    } else {
        format!("{head:?}")
    }
}

/// Reads the adapter's answer to request `expected_id` from one stdout line (without its
/// newline). `Err` says what was wrong with it, in words for the user who wrote the adapter:
/// the line is babble, and the operation's outcome is unknown.
pub(crate) fn parse_answer(line: &str, expected_id: u64) -> Result<ClientReply, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Err("printed an empty line instead of an answer".into());
    }
    let quoted = || snippet(line, 200);
    let parsed: Value = serde_json::from_str(line).map_err(|e| {
        format!(
            "printed {} which is not JSON ({e}); stdout is for answers only, log to stderr",
            quoted()
        )
    })?;
    let Value::Object(mut fields) = parsed else {
        return Err(format!("printed {}, not a JSON object", quoted()));
    };
    let id = match fields.remove("id") {
        Some(Value::Number(n)) if n.is_u64() => n.as_u64().expect("checked"),
        Some(other) => {
            return Err(format!(
                "answered with id {other}, not the request's integer id {expected_id}"
            ))
        }
        None => return Err(format!("answered {} without an \"id\"", quoted())),
    };
    if id != expected_id {
        return Err(format!(
            "answered id {id} while request {expected_id} was waiting: one answer per request, \
             in order, with the request's id"
        ));
    }
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(other) => return Err(format!("answered type {other}, not a string")),
        None => return Err(format!("answered {} without a \"type\"", quoted())),
    };
    let value = fields.remove("value").unwrap_or(Value::Null);
    let error = match fields.remove("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(error)) => Some(error),
        Some(other) => return Err(format!("answered error {other}, not a string")),
    };
    if let Some(extra) = fields.keys().next() {
        return Err(format!(
            "answered with a field {extra:?}; an answer has only id, type, value and error"
        ));
    }
    match kind.as_str() {
        "ok" if error.is_some() => Err(format!(
            "answered ok with an error ({:?}): an ok has no error; answer fail or info",
            error.unwrap_or_default()
        )),
        "ok" => Ok(ClientReply::ok(value)),
        "fail" => Ok(ClientReply::fail(
            error.unwrap_or_else(|| "the adapter answered fail".into()),
        )),
        "info" => Ok(ClientReply::info(
            error.unwrap_or_else(|| "the adapter answered info".into()),
        )),
        "unknown" => Err(
            "answered type \"unknown\"; an adapter answers ok, fail or info (info is what a \
             node's unknown becomes)"
                .into(),
        ),
        other => Err(format!(
            "answered type {other:?}; the types are ok, fail and info"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Outcome;
    use serde_json::json;

    #[test]
    fn requests_are_one_json_line_with_every_field() {
        let key = json!(3);
        let value = json!([1, 2]);
        let request = Request {
            id: 7,
            process: 12,
            f: "cas",
            key: Some(&key),
            value: &value,
            node: "n2",
            address: "127.0.0.1:7002",
            timeout_ms: 5000,
        };
        let line = request.line();
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"id": 7, "process": 12, "f": "cas", "key": 3, "value": [1, 2],
                   "node": "n2", "address": "127.0.0.1:7002", "timeout_ms": 5000})
        );
        let keyless = Request {
            key: None,
            ..request
        };
        let parsed: Value = serde_json::from_str(&keyless.line()).unwrap();
        assert!(parsed.get("key").is_none(), "{parsed}");
    }

    #[test]
    fn good_answers_map_to_their_outcome() {
        assert_eq!(
            parse_answer(r#"{"id":4,"type":"ok","value":[1,2]}"#, 4),
            Ok(ClientReply::ok(json!([1, 2])))
        );
        assert_eq!(
            parse_answer("{\"id\":4,\"type\":\"ok\"}\r\n", 4),
            Ok(ClientReply::ok(Value::Null))
        );
        assert_eq!(
            parse_answer(r#"{"id":4,"type":"fail","error":"compare failed"}"#, 4),
            Ok(ClientReply::fail("compare failed"))
        );
        assert_eq!(
            parse_answer(r#"{"id":4,"type":"info","error":"timed out"}"#, 4),
            Ok(ClientReply::info("timed out"))
        );
        // A fail or info without an error still says where it came from; null errors are none.
        let fail = parse_answer(r#"{"id":4,"type":"fail","error":null}"#, 4).unwrap();
        assert_eq!(fail.outcome, Outcome::Fail);
        assert!(fail.error.unwrap().contains("adapter"));
        let info = parse_answer(r#"{"id":4,"type":"info","value":5}"#, 4).unwrap();
        assert_eq!((info.outcome, info.output), (Outcome::Info, Value::Null));
    }

    #[test]
    fn anything_else_is_babble_that_says_what_was_wrong() {
        for (line, says) in [
            ("", "empty line"),
            ("hello", "not JSON"),
            (r#"{"id":4,"type":"ok"} trailing"#, "not JSON"),
            ("[4, \"ok\"]", "not a JSON object"),
            (r#"{"type":"ok"}"#, "without an \"id\""),
            (r#"{"id":"4","type":"ok"}"#, "not the request's integer id"),
            (r#"{"id":-4,"type":"ok"}"#, "not the request's integer id"),
            (r#"{"id":5,"type":"ok"}"#, "answered id 5 while request 4"),
            (r#"{"id":4}"#, "without a \"type\""),
            (r#"{"id":4,"type":1}"#, "not a string"),
            (r#"{"id":4,"type":"OK"}"#, "the types are ok, fail and info"),
            (r#"{"id":4,"type":"unknown"}"#, "info is what"),
            (r#"{"id":4,"type":"ok","values":[1]}"#, "a field \"values\""),
            (
                r#"{"id":4,"type":"fail","error":{"code":1}}"#,
                "not a string",
            ),
            (r#"{"id":4,"type":"ok","error":"x"}"#, "an ok has no error"),
        ] {
            let err = parse_answer(line, 4).expect_err(line);
            assert!(err.contains(says), "{line:?}: {err}");
        }
    }

    #[test]
    fn snippets_are_cut_and_quoted() {
        assert_eq!(snippet("abc", 10), "\"abc\"");
        let long = "x".repeat(300);
        let cut = snippet(&long, 5);
        assert!(
            cut.starts_with("\"xxxxx\"...") && cut.contains("300 bytes"),
            "{cut}"
        );
    }
}
