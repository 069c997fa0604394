//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the fixed crashers
//! (`fuzz/regressions/<target>/`) of the history-format fuzz targets through the very functions
//! the targets call, so that CI checks them in seconds without a fuzzer. See `fuzz/README.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Runs every saved input of `target` through `run`; fails naming each input that panics, and
/// when there is no input at all (a moved folder must not pass in silence).
fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files: Vec<PathBuf> = Vec::new();
    for folder in ["corpus", "regressions"] {
        let dir = fuzz.join(folder).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no saved inputs for {target} under {}",
        fuzz.display()
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = match std::fs::read(path) {
                Ok(data) => data,
                // A fuzzer running meanwhile replaces corpus files as it shortens them.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
                Err(e) => panic!("cannot read {}: {e}", path.display()),
            };
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} panicked:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

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
