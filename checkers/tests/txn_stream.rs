//! `read_txn_jsonl` against the general path (`read_jsonl`, pairing, `guess_workload`,
//! `txn_history`): the same transactions, key names and workload on generated, synthetic and
//! corpus histories, and errors that name the line.

#[path = "support/txn_gen.rs"]
mod txn_gen;

use checkers::history::{read_jsonl, write_jsonl, Event, EventType, History, Process};
use checkers::txn::synth::{list_append_history, SynthOptions};
use checkers::txn::{guess_workload, read_txn_jsonl, txn_history, TxnHistory, TxnWorkload};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::Path;
use txn_gen::{events, script, txn_history_of, Shape};

/// The general path on JSON Lines text, its error as text.
fn general(text: &str, workload: Option<TxnWorkload>) -> Result<TxnHistory, String> {
    let history = read_jsonl(text.as_bytes()).map_err(|e| e.to_string())?;
    let ops = history.operations().map_err(|e| e.to_string())?;
    let workload = match workload {
        Some(w) => w,
        None => guess_workload(&ops).map_err(|e| e.to_string())?,
    };
    txn_history(&ops, workload).map_err(|e| e.to_string())
}

fn streamed(text: &str, workload: Option<TxnWorkload>) -> Result<TxnHistory, String> {
    read_txn_jsonl(text.as_bytes(), workload).map_err(|e| e.to_string())
}

fn jsonl(events: &[Event]) -> String {
    let mut out = Vec::new();
    write_jsonl(&mut out, &History::from_events(events.to_vec())).expect("writes to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Both paths agree: equal histories, or both refuse. Checked with the workload guessed and
/// with each workload given.
fn agree(text: &str) -> Result<(), String> {
    for workload in [
        None,
        Some(TxnWorkload::ListAppend),
        Some(TxnWorkload::RwRegister),
    ] {
        match (general(text, workload), streamed(text, workload)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) => {}
            (a, b) => {
                return Err(format!(
                    "{workload:?}: general {:?}\nstreamed {:?}\n{text}",
                    a.map(|h| (h.workload, h.txns.len())),
                    b.map(|h| (h.workload, h.txns.len()))
                ))
            }
        }
    }
    Ok(())
}

/// Extra variety the generator does not make: keys written as strings, nemesis entries, an
/// operation that is not a transaction, blank lines and missing indices.
fn decorate(events: &[Event], string_keys: bool, extras: u8) -> String {
    let mut out: Vec<Event> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        if string_keys {
            if let Value::Array(mops) = &mut e.value {
                for mop in mops.iter_mut() {
                    if let Some(k) = mop.get(1).and_then(Value::as_i64).filter(|k| k % 2 == 1) {
                        mop[1] = json!(format!("k{k}"));
                    }
                }
            }
        }
        if extras & 1 == 1 && i % 5 == 2 {
            let mut n = Event::client(0, EventType::Info, "start-partition", json!("halves"));
            n.process = Process::Nemesis;
            out.push(n);
        }
        out.push(e);
    }
    if extras & 2 == 2 {
        out.push(Event::client(90, EventType::Invoke, "read", json!(null)));
        out.push(Event::client(90, EventType::Ok, "read", json!([[1, 2]])));
    }
    let mut text = jsonl(&out);
    if extras & 4 == 4 {
        // Blank lines, and no indices: positions stand in for them.
        text = text
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("index");
                format!("{v}\n")
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    text
}

fn shape(workload: TxnWorkload, single_writer: bool) -> Shape {
    Shape {
        workload,
        max_txns: 8,
        glitch_pct: 20,
        mutation_pct: 20,
        final_read: false,
        single_writer,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn list_append_histories_read_alike(
        s in script(shape(TxnWorkload::ListAppend, false)),
        string_keys in any::<bool>(),
        extras in 0u8..8,
    ) {
        let text = decorate(&events(&s), string_keys, extras);
        agree(&text).map_err(TestCaseError::fail)?;
        prop_assert!(streamed(&text, None).is_ok());
    }

    #[test]
    fn rw_register_histories_read_alike(
        s in script(shape(TxnWorkload::RwRegister, true)),
        string_keys in any::<bool>(),
        extras in 0u8..8,
    ) {
        let text = decorate(&events(&s), string_keys, extras);
        agree(&text).map_err(TestCaseError::fail)?;
        prop_assert!(streamed(&text, None).is_ok());
    }

    /// Cut anywhere: a prefix leaves invocations open (info), or a torn last line.
    #[test]
    fn prefixes_read_alike(s in script(shape(TxnWorkload::RwRegister, false)), cut in any::<prop::sample::Index>()) {
        let text = jsonl(&events(&s));
        let end = cut.index(text.len() + 1);
        agree(&text[..end]).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn synthetic_histories_read_alike() {
    for g_single in [false, true] {
        let options = SynthOptions {
            txns: 3000,
            g_single,
            ..SynthOptions::default()
        };
        let (history, _) = list_append_history(&options);
        let mut out = Vec::new();
        write_jsonl(&mut out, &history).unwrap();
        let text = String::from_utf8(out).unwrap();
        let h = streamed(&text, None).unwrap();
        assert_eq!(h.txns.len(), 3000);
        assert_eq!(h, txn_history_of(&history.events, TxnWorkload::ListAppend));
        assert_eq!(Ok(h), general(&text, None));
    }
}

/// Elle's and elle-cli's histories, imported and written as `history.jsonl`.
#[test]
fn corpus_histories_read_alike() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/elle");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.contains("-result") || !(name.ends_with(".json") || name.ends_with(".edn")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(format) = checkers::formats::guess_format(&path, &text) else {
            continue;
        };
        let history = checkers::formats::parse(format, &text).unwrap();
        let mut out = Vec::new();
        write_jsonl(&mut out, &history).unwrap();
        let text = String::from_utf8(out).unwrap();
        agree(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(streamed(&text, None).is_ok(), "{name}");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} corpus histories");
}

#[test]
fn the_workload_is_guessed_from_any_micro_op() {
    // Reads alone first (null reads mean an empty list or an unwritten register), the
    // deciding write only at the end, in a failed transaction's invocation.
    let text = r#"{"process":0,"type":"invoke","f":"txn","value":[["r",1,null]]}
{"process":0,"type":"ok","f":"txn","value":[["r",1,null]]}
{"process":1,"type":"invoke","f":"txn","value":[["r",2,null],["w",2,5]]}
{"process":1,"type":"fail","f":"txn","value":[["r",2,null],["w",2,5]]}
"#;
    let h = streamed(text, None).unwrap();
    assert_eq!(h.workload, TxnWorkload::RwRegister);
    assert_eq!(Ok(h), general(text, None));
    let reads_only = r#"{"process":0,"type":"invoke","f":"txn","value":[["r",1,null]]}
{"process":0,"type":"ok","f":"txn","value":[["r",1,[1,2]]]}
"#;
    assert_eq!(
        streamed(reads_only, None).unwrap().workload,
        TxnWorkload::ListAppend
    );
    let mixed = r#"{"process":0,"type":"invoke","f":"txn","value":[["append",1,1]]}
{"process":0,"type":"ok","f":"txn","value":[["append",1,1]]}
{"process":1,"type":"invoke","f":"txn","value":[["w",2,5]]}
"#;
    let err = streamed(mixed, None).unwrap_err();
    assert!(err.starts_with("line 3:") && err.contains("mixes"), "{err}");
}

#[test]
fn errors_name_the_line() {
    let cases = [
        (
            r#"{"process":0,"type":"ok","f":"txn","value":[["r",1,null]]}"#,
            "line 1: process 0 completes \"txn\" (ok) without an open invocation",
        ),
        (
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\n\n\
             {\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\n",
            "line 3: process 0 invokes \"txn\" while its \"txn\" from line 1 is still open",
        ),
        (
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\n\
             {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":[]}\n",
            "line 2: process 0 completes \"read\" but invoked \"txn\" at line 1",
        ),
        (
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1,1]]}\n\
             {\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",1,\"x\"]]}\n",
            "line 2: operation 0: micro-op [\"append\",1,\"x\"]: values must be integers",
        ),
        (
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1]]}\n",
            "line 1: operation 0: micro-op [\"append\",1] is not [f, key, value]",
        ),
        (
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\n{\"process\":0,\"ty\n{}\n",
            "line 2: not valid JSON",
        ),
        (
            "{\"process\":-1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\n",
            "line 1: not a history event: process must be",
        ),
    ];
    for (text, want) in cases {
        let err = streamed(text, None).unwrap_err();
        assert!(err.starts_with(want), "{err}\nwanted {want}");
    }
    // The general path says the same about the micro-op, naming the operation.
    let err = general(cases[3].0, None).unwrap_err();
    assert!(
        err.ends_with("micro-op [\"append\",1,\"x\"]: values must be integers"),
        "{err}"
    );
}

#[test]
fn a_torn_last_line_is_dropped_and_open_invocations_are_info() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1,1],[\"r\",1,null]]}\n{\"process\":0,\"ty";
    let h = streamed(text, None).unwrap();
    assert_eq!(h.txns.len(), 1);
    assert_eq!(h.txns[0].outcome, checkers::history::Outcome::Info);
    assert_eq!(h.txns[0].ret, None);
    assert_eq!(Ok(h), general(text, None));
}
