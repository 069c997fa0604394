//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the fixed crashers
//! (`fuzz/regressions/<target>/`) of the spec and campaign fuzz targets through the very functions
//! the targets call, so that CI checks them in seconds without a fuzzer. See `fuzz/README.md`.

#[path = "../../checkers/tests/support/fuzz_replay.rs"]
mod support;
use support::replay;

#[test]
fn spec_toml() {
    replay("spec_toml", harness::fuzzing::spec_toml);
}

#[test]
fn campaign_toml() {
    replay("campaign_toml", harness::fuzzing::campaign_toml);
}
