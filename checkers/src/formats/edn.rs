//! Knossos and Jepsen EDN histories: import, and export in the same shape.
//!
//! Each op map is parsed on its own, after [`scan`] has found where it starts, so that errors name
//! the line of the op that is wrong.

mod scan;

use super::FormatError;
use crate::history::{Event, EventType, History, Process};
use edn_format::{Keyword, Value as Edn};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Parses a Knossos/Jepsen EDN history: one vector or list of op maps, or (as Jepsen's own
/// `history.edn` is written) a bare sequence of op maps.
pub(super) fn parse(text: &str) -> Result<History, FormatError> {
    let mut history = History::default();
    for form in scan::top_level_forms(text)? {
        let map = op_map(parse_value(form.text, form.line)?, form.line)?;
        let mut event = event_from_map(&map, form.line, history.events.len())?;
        // Knossos' register models read `:ok :read nil` as "the read completed but its value is
        // unknown" and let it match any state. Fissure's models compare read values exactly (nil
        // is a real value for them), so the faithful translation is an `info` completion: a read
        // that may have happened at any time with any result, which constrains nothing either.
        if event.kind == EventType::Ok
            && event.f == "read"
            && event.value.is_null()
            && event.process != Process::Nemesis
        {
            event.kind = EventType::Info;
        }
        history.events.push(event);
        history.source_lines.push(form.line);
    }
    Ok(history)
}

/// Parses one EDN value that starts on `line`, naming the line of the error within it.
pub(super) fn parse_value(text: &str, line: usize) -> Result<Edn, FormatError> {
    // The EDN parser recurses once per level, and the decimal type behind it overflows or prints
    // gigabytes on extreme exponents: refuse both before it reads the text.
    scan::check_limits(text, line)?;
    edn_format::parse_str(text).map_err(|e| {
        // `edn-format` swaps its names: `col` counts lines (1-based), `row` counts columns.
        let at = line + e.col.max(1) - 1;
        let detail = match &e.error {
            edn_format::ParserError::UnexpectedCharacter(c) => {
                format!("unexpected character {c:?}")
            }
            edn_format::ParserError::BadInt { parsing, .. } => format!("bad integer {parsing:?}"),
            edn_format::ParserError::BadFloat { parsing, .. } => format!("bad float {parsing:?}"),
            edn_format::ParserError::DuplicateKeyInMap { value } => {
                format!("duplicate key {value}")
            }
            other => other.to_string().to_lowercase(),
        };
        FormatError::new(at, format!("invalid EDN: {detail}"))
    })
}

/// The map of an op, looking through tags such as `#jepsen.history.Op{...}`.
pub(super) fn op_map(value: Edn, line: usize) -> Result<BTreeMap<Edn, Edn>, FormatError> {
    match value {
        Edn::Map(map) => Ok(map),
        Edn::TaggedElement(_, inner) => op_map(*inner, line),
        other => {
            let mut shown = other.to_string();
            if shown.len() > 40 {
                shown = format!("{}...", shown.chars().take(40).collect::<String>());
            }
            Err(FormatError::new(
                line,
                format!("expected an op map, found {shown}"),
            ))
        }
    }
}

/// Builds an event from an op map's known keys (others are ignored). `position` is the event's
/// place in the history, its index when the map has no `:index`.
pub(super) fn event_from_map(
    map: &BTreeMap<Edn, Edn>,
    line: usize,
    position: usize,
) -> Result<Event, FormatError> {
    let get = |name: &str| {
        map.get(&Edn::Keyword(Keyword::from_name(name)))
            .filter(|v| **v != Edn::Nil)
    };
    let fail = |message: String| FormatError::new(line, message);
    let missing = |name: &str| fail(format!("op map has no :{name}"));
    let count = |name: &str| -> Result<Option<u64>, FormatError> {
        match get(name) {
            None => Ok(None),
            Some(Edn::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(v) => Err(fail(format!(
                ":{name} must be a non-negative integer, got {v}"
            ))),
        }
    };

    let process = match get("process").ok_or_else(|| missing("process"))? {
        Edn::Integer(n) if *n >= 0 => Process::Client(*n as u64),
        v if name_of(v).as_deref() == Some("nemesis") => Process::Nemesis,
        v => {
            return Err(fail(format!(
                "invalid :process {v}; expected a non-negative integer or :nemesis"
            )))
        }
    };
    let kind_value = get("type").ok_or_else(|| missing("type"))?;
    let kind = match name_of(kind_value).as_deref() {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        _ => {
            return Err(fail(format!(
                "unknown :type {kind_value}; expected :invoke, :ok, :fail or :info"
            )))
        }
    };
    // Elle's transactional histories may leave `:f` out: a value that is a vector of micro-op
    // vectors is a transaction.
    let is_txn = matches!(get("value"), Some(Edn::Vector(mops))
        if mops.iter().all(|m| matches!(m, Edn::Vector(_))));
    let f = match get("f") {
        None if is_txn => "txn".to_string(),
        None => return Err(missing("f")),
        Some(f_value) => name_of(f_value).ok_or_else(|| {
            fail(format!(
                "invalid :f {f_value}; expected a keyword or string"
            ))
        })?,
    };
    let node = match get("node") {
        None => None,
        Some(v) => Some(name_of(v).ok_or_else(|| fail(format!("invalid :node {v}")))?),
    };
    Ok(Event {
        index: count("index")?.unwrap_or(position as u64),
        time: count("time")?,
        process,
        kind,
        f,
        key: get("key").map(to_json),
        value: get("value").map(to_json).unwrap_or(Value::Null),
        node,
        error: get("error").map(to_json),
    })
}

/// The text of a keyword (without its colon), string or symbol.
fn name_of(value: &Edn) -> Option<String> {
    match value {
        Edn::Keyword(k) => Some(keyword_text(k)),
        Edn::String(s) => Some(s.clone()),
        Edn::Symbol(s) => Some(s.to_string()),
        _ => None,
    }
}

fn keyword_text(k: &Keyword) -> String {
    match k.namespace() {
        Some(ns) => format!("{ns}/{}", k.name()),
        None => k.name().to_string(),
    }
}

/// Converts an EDN value to JSON, the history model's value type. Keywords lose their colon
/// because sources use them as symbolic values (`:timed-out`) that other formats spell as strings.
pub(super) fn to_json(value: &Edn) -> Value {
    match value {
        Edn::Nil => Value::Null,
        Edn::Boolean(b) => Value::Bool(*b),
        Edn::Character(c) => Value::String(c.to_string()),
        Edn::String(s) => Value::String(s.clone()),
        Edn::Symbol(s) => Value::String(s.to_string()),
        Edn::Keyword(k) => Value::String(keyword_text(k)),
        Edn::Integer(n) => Value::from(*n),
        Edn::Float(x) => float(x.into_inner(), || value.to_string()),
        // Beyond 64 bits, keep EDN's own spelling so it stays distinct from the string "123".
        Edn::BigInt(n) => match n.to_string().parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(format!("{n}N")),
        },
        Edn::BigDec(d) => match d.to_string().parse::<f64>() {
            Ok(x) => float(x, || d.to_string()),
            Err(_) => Value::String(d.to_string()),
        },
        Edn::List(items) | Edn::Vector(items) => Value::Array(items.iter().map(to_json).collect()),
        Edn::Set(items) => Value::Array(items.iter().map(to_json).collect()),
        Edn::Map(entries) => {
            let object: Map<String, Value> = entries
                .iter()
                .map(|(k, v)| (name_of(k).unwrap_or_else(|| k.to_string()), to_json(v)))
                .collect();
            Value::Object(object)
        }
        Edn::Inst(t) => Value::String(t.to_rfc3339()),
        Edn::Uuid(u) => Value::String(u.to_string()),
        Edn::TaggedElement(_, inner) => to_json(inner),
    }
}

/// JSON has no NaN or infinity; those keep their EDN spelling as a string.
fn float(x: f64, text: impl FnOnce() -> String) -> Value {
    Number::from_f64(x).map_or_else(|| Value::String(text()), Value::Number)
}

/// Writes a history as a Knossos/Jepsen EDN vector, one op map per line.
///
/// Lossy in one case only: an `ok` `read` of `null` comes back as `info`, because that is what
/// `:ok :read nil` means to Knossos (see [`parse`]).
pub fn write_edn(mut writer: impl Write, history: &History) -> io::Result<()> {
    writer.write_all(b"[")?;
    let mut line = String::new();
    for (i, event) in history.events.iter().enumerate() {
        line.clear();
        if i > 0 {
            line.push_str("\n ");
        }
        write_event(&mut line, event);
        writer.write_all(line.as_bytes())?;
    }
    writer.write_all(b"]\n")?;
    writer.flush()
}

fn write_event(out: &mut String, e: &Event) {
    out.push_str(&format!("{{:index {}", e.index));
    if let Some(time) = e.time {
        out.push_str(&format!(", :time {time}"));
    }
    match e.process {
        Process::Client(n) => out.push_str(&format!(", :process {n}")),
        Process::Nemesis => out.push_str(", :process :nemesis"),
    }
    out.push_str(&format!(", :type :{}, :f ", e.kind.as_str()));
    write_name(out, &e.f);
    if let Some(key) = &e.key {
        out.push_str(", :key ");
        write_value(out, key);
    }
    out.push_str(", :value ");
    if e.f == "txn" {
        write_micro_ops(out, &e.value);
    } else {
        write_value(out, &e.value);
    }
    if let Some(node) = &e.node {
        out.push_str(", :node ");
        write_string(out, node);
    }
    if let Some(error) = &e.error {
        out.push_str(", :error ");
        write_value(out, error);
    }
    out.push('}');
}

/// `:f` as a keyword, as Jepsen writes it, unless the name would not read back as one.
fn write_name(out: &mut String, name: &str) {
    let mut chars = name.chars();
    let keyword = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_?!*+.<>=$%&".contains(c));
    if keyword {
        out.push(':');
        out.push_str(name);
    } else {
        write_string(out, name);
    }
}

/// A transaction's value as Elle writes it, micro-op names as keywords: `[[:append 3 7] [:r 4
/// nil]]`, so that Elle reads it back as the same transaction.
fn write_micro_ops(out: &mut String, value: &Value) {
    let Some(mops) = value.as_array() else {
        return write_value(out, value);
    };
    out.push('[');
    for (i, mop) in mops.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match mop.as_array().map(Vec::as_slice) {
            Some([Value::String(f), rest @ ..]) => {
                out.push('[');
                write_name(out, f);
                for part in rest {
                    out.push(' ');
                    write_value(out, part);
                }
                out.push(']');
            }
            _ => write_value(out, mop),
        }
    }
    out.push(']');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                // Beyond i64: EDN needs the bigint suffix to read it back.
                out.push_str(&format!("{u}N"));
            } else {
                // `{:?}` always keeps a `.` or an exponent, so the number reads back as a float.
                out.push_str(&format!("{:?}", n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(object) => {
            out.push('{');
            for (i, (k, v)) in object.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push(' ');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// An EDN string literal; newlines are escaped so each op stays on one line.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(history: &History) -> String {
        let mut out = Vec::new();
        write_edn(&mut out, history).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_knossos_vectors_with_comments_and_nemesis() {
        let text = "; a comment [with {brackets\n\
            [{:process 0, :type :invoke, :f :cas, :value [1 2], :time 5}\n \
             ; \"quoted\" }\n \
             {:process 0, :type :fail, :f :cas, :value [1 2], :error [:timeout nil]}\n \
             {:process :nemesis,\n  :type :info,\n  :f :start,\n  :value \"Cut off [:n1 #{:n2}]\"}\n \
             {:process 1, :type :invoke, :f :read, :value nil, :index 40}\n \
             {:process 1, :type :ok, :f :read, :value nil}]\n";
        let h = parse(text).unwrap();
        assert_eq!(h.source_lines, vec![2, 4, 5, 9, 10]);
        let e = &h.events;
        assert_eq!((e[0].time, &e[0].value), (Some(5), &json!([1, 2])));
        assert_eq!(e[1].error, Some(json!(["timeout", null])));
        assert_eq!(e[2].process, Process::Nemesis);
        assert_eq!(e[2].value, json!("Cut off [:n1 #{:n2}]"));
        assert_eq!((e[2].index, e[3].index, e[4].index), (2, 40, 4));
        assert_eq!(
            e[4].kind,
            EventType::Info,
            ":ok :read nil is an unknown read"
        );
    }

    #[test]
    fn reads_lists_bare_sequences_and_tagged_maps() {
        let list = parse("({:process 0 :type :invoke :f :write :value 3})").unwrap();
        assert_eq!(list.events[0].value, json!(3));
        let bare = "{:index 0, :type :invoke, :process 0, :f :read, :value nil}\n\
                    #jepsen.history.Op{:index 1, :type :ok, :process 0, :f :read, :value 2}\n";
        let h = parse(bare).unwrap();
        assert_eq!(h.source_lines, vec![1, 2]);
        assert_eq!(h.events[1].value, json!(2));
    }

    #[test]
    fn converts_edn_values_to_json() {
        let v = parse_value(
            "{:a #{1 2}, \"s\" (:k \\c 1.5 nil true), 3 #inst \"2020-01-01T00:00:00Z\", :n 99999999999999999999N}",
            1,
        )
        .unwrap();
        assert_eq!(
            to_json(&v),
            json!({"a": [1, 2], "s": ["k", "c", 1.5, null, true],
                   "3": "2020-01-01T00:00:00+00:00", "n": "99999999999999999999N"})
        );
    }

    #[test]
    fn errors_name_the_line() {
        let line_of = |text: &str| parse(text).unwrap_err();
        let ok = "[{:process 0, :type :invoke, :f :read}\n";
        let err = line_of(&format!("{ok} {{:process 0, :type :done, :f :read}}]"));
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown :type :done"), "{err}");
        let err = line_of(&format!("{ok}\n {{:process 0,\n :type}}]"));
        assert!(err.to_string().starts_with("line 4: invalid EDN"), "{err}");
        let err = line_of(&format!("{ok} 7]"));
        assert_eq!(err.to_string(), "line 2: expected an op map, found 7");
        let err = line_of(&format!("{ok} {{:type :ok, :f :read}}]"));
        assert_eq!(err.to_string(), "line 2: op map has no :process");
        let err = line_of("[{:process -1, :type :invoke, :f :read}]");
        assert!(err.message.contains("invalid :process -1"), "{err}");
        let err = line_of("[{:process 0, :type :invoke, :f :read, :time \"x\"}]");
        assert!(err.message.contains(":time must be"), "{err}");
    }

    /// Regression (fuzzing work): the EDN parser recurses per level, so a deep value in one op
    /// (or in a Porcupine line, which does not go through the scanner) overflowed the stack.
    #[test]
    fn values_at_the_depth_limit_parse_and_deeper_ones_are_refused() {
        for (open, close) in [("[", "]"), ("#{", "}"), ("#t ", ""), ("(", ")")] {
            let value = |n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
            assert!(parse_value(&value(scan::MAX_DEPTH), 1).is_ok(), "{open}");
            let err = parse_value(&value(50_000), 7).unwrap_err();
            assert_eq!(err.to_string(), "line 7: values nest deeper than 64 levels");
        }
        let op = format!(
            "[{{:process 0, :type :invoke, :f :read}}\n \
             {{:process 0, :type :ok, :f :read, :value {}}}]",
            "#t ".repeat(50_000)
        );
        assert_eq!(parse(&op).unwrap_err().line, 2);
    }

    /// Found by fuzzing (history_edn): `1484275015961.5e300184427500M` made an error message
    /// print the decimal, which writes out all 300 billion zeros (out of memory); an exponent
    /// near 2^63 overflowed inside the decimal parser (a panic in debug builds).
    #[test]
    fn decimals_with_huge_exponents_are_refused_before_parsing() {
        let err = parse("[1484275015961.5e300184427500M]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: the decimal 1484275015961.5e300184427500M is out of range: exponents beyond \
             \u{b1}400 are refused"
        );
        for huge in [
            "1e-9223372036854775808M",
            "-0.1E+9223372036854775807M",
            "1e401M",
        ] {
            let err = parse_value(&format!("{{:a [#{{{huge}}}]}}"), 3).unwrap_err();
            assert!(err.to_string().starts_with("line 3: the decimal"), "{err}");
            assert!(parse_value(&format!("[#_ {huge} 1]"), 1).is_err());
            // Where the EDN parser ends an atom and this scanner does not.
            for glued in [
                format!("{huge}#x"),
                format!("\\({huge}"),
                format!("#{huge}"),
            ] {
                assert!(parse_value(&format!("[{glued}]"), 1).is_err(), "{glued}");
            }
        }
        // Numbers start with any numeric character, and the exponent may have two signs.
        for odd in ["\u{663}.5e-9223372036854775808M", "1e+-99999999999M"] {
            assert!(parse_value(odd, 1).is_err(), "{odd}");
        }
        // At the limit they are read, and kept as text where a float cannot hold them.
        let v = parse_value("[1e400M 1.5e-300M 1e0400M]", 1).unwrap();
        assert_eq!(to_json(&v)[0], json!(format!("1{}", "0".repeat(400))));
        assert_eq!(to_json(&v)[1], json!(1.5e-300));
        assert_eq!(to_json(&v)[2], to_json(&v)[0]);
    }

    /// Found by fuzzing (history_edn): `\u:vp\u{684}ok` panicked in edn-format, which slices the
    /// four bytes after `\u` out of the text even when they end inside a character.
    #[test]
    fn unicode_character_literals_with_non_ascii_digits_are_an_error() {
        for text in [
            "\\u:vp\u{684}ok",
            "[1 \\u \"\u{e9}\"]",
            "(a\\u\u{e9}\u{e9})",
            "#t\\u12\u{e9}",
        ] {
            let err = parse_value(text, 2).unwrap_err();
            assert_eq!(
                err.to_string(),
                "line 2: invalid character literal: `\\u` must be followed by four hex digits",
                "{text}"
            );
        }
        assert_eq!(
            parse_value("[\\u00e9 \\u]", 1).unwrap(),
            parse_value("[\\\u{e9} \\u]", 1).unwrap()
        );
    }

    #[test]
    fn writes_one_op_per_line_and_reads_back() {
        let mut events = vec![
            Event::client(3, EventType::Invoke, "cas", json!([1, 2])).with_key(json!("k")),
            Event::client(3, EventType::Ok, "cas", json!([1, 2])).with_key(json!("k")),
            Event::client(
                1,
                EventType::Invoke,
                "put a",
                json!({"x\"\n": [1.0, -2, 1e300]}),
            ),
            Event::client(1, EventType::Fail, "put a", json!(u64::MAX)),
        ];
        events[1].time = Some(120);
        events[3].error = Some(json!({"code": "tab\there\\"}));
        events[3].node = Some("n1".into());
        events.push(Event {
            process: Process::Nemesis,
            ..Event::client(0, EventType::Info, "start-partition", json!({"n1": ["n2"]}))
        });
        let history = History::from_events(events);
        let text = write(&history);
        assert_eq!(
            text.lines().nth(1).unwrap(),
            r#" {:index 1, :time 120, :process 3, :type :ok, :f :cas, :key "k", :value [1 2]}"#
        );
        assert!(text.contains(":process :nemesis, :type :info, :f :start-partition"));
        assert!(text.contains(r#":f "put a""#), "{text}");
        assert_eq!(text.lines().count(), 5);
        assert_eq!(parse(&text).unwrap().events, history.events);
        assert_eq!(write(&History::default()), "[]\n");
    }

    #[test]
    fn transactions_without_f_read_as_txn_and_write_back_as_elle_reads_them() {
        let text = "{:index 1, :type :invoke, :process 2, :value [[:append 4 2] [:r 5 nil]]}\n\
                    {:index 4, :type :ok, :process 2, :value [[:append 4 2] [:r 5 [1 2]]]}\n";
        let history = parse(text).unwrap();
        assert_eq!(history.events[0].f, "txn");
        assert_eq!(
            history.events[1].value,
            serde_json::json!([["append", 4, 2], ["r", 5, [1, 2]]])
        );
        let written = write(&history);
        assert!(
            written.contains(":value [[:append 4 2] [:r 5 [1 2]]]"),
            "{written}"
        );
        assert_eq!(parse(&written).unwrap().events, history.events);
        let err = parse("{:type :invoke, :process 2, :value 3}").unwrap_err();
        assert!(err.message.contains(":f"), "{err}");
    }
}
