//! The entry points of the fuzz targets in `fuzz/` for the files a user writes (spec and campaign
//! TOML), shared with the corpus replay in `tests/fuzz_replay.rs` so that CI runs every saved
//! input through exactly the code the fuzzer ran.
//!
//! Each goes as far as `fissure run --spec` or `fissure campaign` go before touching a cluster:
//! parse, then resolve every run. Nothing here may panic, hang or allocate without bound; a bad
//! file is an error value. Results are discarded.

use crate::campaign::Campaign;
use crate::spec::SpecFile;

/// A spec file's text, as `fissure run --spec FILE` reads and resolves it.
pub fn spec_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = SpecFile::from_toml(text) {
        if let Ok(spec) = file.resolve() {
            // What a run stores in test.json must rerun: the same spec, read back.
            let stored = serde_json::to_string(&spec.to_file()).expect("a spec serializes");
            let again: SpecFile = serde_json::from_str(&stored).expect("a stored spec reads back");
            let again = again.resolve().expect("a stored spec resolves again");
            assert_eq!(again, spec, "a stored spec reruns the same test");
        }
    }
}

/// A campaign file's text, as `fissure campaign FILE` reads and expands it.
pub fn campaign_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Campaign::parse(text, None);
}
