//! Replays the saved inputs of a fuzz target (`fuzz/corpus/<target>/` and the fixed crashers in
//! `fuzz/regressions/<target>/`) through the function the target calls. Shared by the replay tests
//! of `checkers` and `harness`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Runs every saved input of `target` through `run`; fails naming each input that panics, and
/// when there is no input at all (a moved folder must not pass in silence).
pub fn replay(target: &str, run: fn(&[u8])) {
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
