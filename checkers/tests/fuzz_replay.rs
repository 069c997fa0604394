//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the fixed crashers
//! (`fuzz/regressions/<target>/`) of the history-format fuzz targets through the very functions
//! the targets call, so that CI checks them in seconds without a fuzzer. See `fuzz/README.md`.

#[path = "support/fuzz_replay.rs"]
mod support;
use support::replay;

#[test]
fn history_jsonl() {
    replay("history_jsonl", checkers::fuzzing::history_jsonl);
}

#[test]
fn history_edn() {
    replay("history_edn", checkers::fuzzing::history_edn);
}

#[test]
fn porcupine_etcd() {
    replay("porcupine_etcd", checkers::fuzzing::porcupine_etcd);
}

#[test]
fn porcupine_kv() {
    replay("porcupine_kv", checkers::fuzzing::porcupine_kv);
}
