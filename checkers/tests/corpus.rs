//! Every history in the conformance corpus gets its expected verdict, read with its source's
//! conventions (model, initial value, meaning of `fail`), both split by key and, for kv, whole.

#[path = "support/corpus.rs"]
mod corpus;

use checkers::formats::{self, Format};
use checkers::{check_model, CheckOptions, Verdict};
use serde_json::Value;

fn verdict(entry: &corpus::Entry, split_by_key: bool) -> Verdict {
    let history = formats::parse(entry.format, &corpus::read(&entry.path))
        .unwrap_or_else(|e| panic!("{}: {e}", entry.path));
    let ops = history.operations().unwrap();
    let conventions = entry.format.conventions();
    let options = CheckOptions {
        failures: conventions.failures,
        split_by_key,
        ..CheckOptions::default()
    };
    let init = conventions.init.unwrap_or(Value::Null);
    let result = check_model(conventions.model.unwrap(), &init, &ops, &options).unwrap();
    if result.valid == Verdict::Invalid {
        let cx = result.counterexample.as_ref().expect("a counterexample");
        assert!(
            !cx.unplaceable.is_empty() && !cx.states_before.is_empty(),
            "{}",
            entry.path
        );
    }
    result.valid
}

#[test]
fn every_corpus_history_gets_its_expected_verdict() {
    let manifest = corpus::manifest();
    assert!(
        manifest.len() >= 114,
        "the manifest lists {} histories",
        manifest.len()
    );
    let mut wrong = Vec::new();
    for entry in &manifest {
        let expected = if entry.linearizable {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        let got = verdict(entry, true);
        if got != expected {
            wrong.push(format!(
                "{}: expected {expected:?}, got {got:?}",
                entry.path
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn kv_histories_checked_whole_agree() {
    for entry in corpus::manifest() {
        // The 50-client histories take seconds whole in debug builds; the bench covers them.
        if entry.format != Format::PorcupineKv || entry.path.contains("c50") {
            continue;
        }
        let expected = if entry.linearizable {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(
            verdict(&entry, false),
            expected,
            "{} checked whole",
            entry.path
        );
    }
}
