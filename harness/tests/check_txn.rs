//! `fissure check` and `fissure convert` on Elle's transactional histories: formats guessed,
//! anomalies explained, models ruled out, exit codes, and EDN that Elle reads back.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn corpus(path: &str) -> String {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/elle"))
        .join(path)
        .display()
        .to_string()
}

fn fissure(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(args)
        .output()
        .expect("fissure runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_g_single_is_explained_and_rules_out_repeatable_read() {
    let file = corpus("paper-example.json");
    let out = fissure(&["check", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("INVALID: not strict-serializable"),
        "{stdout}"
    );
    assert!(stdout.contains("G-single-item"), "{stdout}");
    assert!(
        stdout.contains("rules out:") && stdout.contains("repeatable-read"),
        "{stdout}"
    );
    assert!(stdout.contains(": rw"), "each edge is explained: {stdout}");

    let out = fissure(&["check", "--json", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let result = json(&out);
    assert_eq!(result["valid"], Value::Bool(false));
    assert_eq!(result["format"], "elle-json");
    assert_eq!(result["workload"], "list-append");
    assert!(strings(&result["anomaly_types"]).contains(&"G-single-item".to_string()));
    assert!(strings(&result["not"]).contains(&"repeatable-read".to_string()));
    let cycle = &result["anomalies"]["G-single-item"][0]["cycle"];
    assert!(cycle.as_array().is_some_and(|c| c.len() >= 2), "{result}");
}

#[test]
fn the_consistency_model_decides_validity() {
    // G-single (read skew) is allowed by read committed, forbidden by snapshot isolation.
    let file = corpus("paper-example.json");
    let out = fissure(&["check", "--consistency-model", "read-committed", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = fissure(&["check", "--consistency-model", "snapshot-isolation", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // G2-item (write skew) is allowed by snapshot isolation, not by serializability.
    let file = corpus("list-append-anomaly-g2-item.json");
    let out = fissure(&["check", "--consistency-model", "snapshot-isolation", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = fissure(&["check", "--consistency-model", "serializable", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn valid_histories_and_both_workloads_and_formats() {
    for file in [
        "list-append-valid-multiple-processes.json",
        "rw-register.json",
        "rw-register.edn",
    ] {
        let out = fissure(&["check", &corpus(file)]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out));
    }
    let out = fissure(&[
        "check",
        "--json",
        &corpus("rw-register-anomaly-g1a-aborted-read.json"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let result = json(&out);
    assert_eq!(result["workload"], "rw-register");
    assert!(
        strings(&result["anomaly_types"]).contains(&"G1a".to_string()),
        "{result}"
    );
    // Nothing to infer between transactions: no verdict.
    let out = fissure(&["check", &corpus("list-append-valid-read-empty.json")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn converted_to_edn_a_history_keeps_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    for (file, code) in [
        ("list-append-anomaly-g2-item.json", 1),
        ("rw-register.json", 0),
    ] {
        let edn = dir.path().join(file.replace(".json", ".edn"));
        let out = fissure(&[
            "convert",
            "--to",
            "edn",
            &corpus(file),
            "-o",
            edn.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let written = std::fs::read_to_string(&edn).unwrap();
        assert!(written.contains(":f :txn"), "{written}");
        assert!(
            written.contains("[[:"),
            "micro-ops as Elle writes them: {written}"
        );
        let out = fissure(&["check", edn.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(code), "{file}: {}", text(&out));
    }
}

#[test]
fn bad_transactional_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.json");
    std::fs::write(
        &mixed,
        r#"[{"type":"invoke","process":0,"value":[["append",1,1],["w",2,2]]}]"#,
    )
    .unwrap();
    let out = fissure(&["check", mixed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("--workload"), "{}", text(&out));
    let out = fissure(&[
        "check",
        "--workload",
        "rw-register",
        mixed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("append"), "{}", text(&out));
    let out = fissure(&[
        "check",
        "--consistency-model",
        "linearizable-ish",
        &corpus("rw-register.json"),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("no consistency model"),
        "{}",
        text(&out)
    );
}

/// The result without what differs between runs and sources.
fn verdict_part(mut result: Value) -> Value {
    let object = result.as_object_mut().unwrap();
    for field in ["file", "format", "parse_ms", "check_ms"] {
        object.remove(field);
    }
    object["stats"]
        .as_object_mut()
        .unwrap()
        .remove("elapsed_ms");
    result
}

#[test]
fn jsonl_transactions_are_read_as_they_stream_with_the_same_result() {
    // history.jsonl is read one line at a time straight into transactions; the other formats
    // are read whole. Either way the check must say the same.
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "paper-example.json",
        "list-append-anomaly-g2-item.json",
        "list-append-gh-30.edn",
        "rw-register.json",
        "rw-register-anomaly-g1a-aborted-read.json",
    ] {
        let jsonl = dir.path().join(format!("{file}.jsonl"));
        let jsonl = jsonl.to_str().unwrap();
        let out = fissure(&["convert", "--to", "jsonl", &corpus(file), "-o", jsonl]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let whole = fissure(&["check", "--json", &corpus(file)]);
        let streamed = fissure(&["check", "--json", jsonl]);
        assert_eq!(whole.status.code(), streamed.status.code(), "{file}");
        let streamed = json(&streamed);
        assert_eq!(streamed["format"], "jsonl");
        assert_eq!(verdict_part(json(&whole)), verdict_part(streamed), "{file}");
    }
    // A completion nobody invoked: the line is named.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",1,null]]}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",1,[]]]}\n\
         {\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",1,[]]]}\n",
    )
    .unwrap();
    let out = fissure(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains(
            "bad.jsonl: line 3: process 1 completes \"txn\" (ok) without an open invocation"
        ),
        "{}",
        text(&out)
    );
}
