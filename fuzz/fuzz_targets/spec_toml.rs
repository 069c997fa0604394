#![no_main]
//! Feeds any bytes to `harness::fuzzing::spec_toml` (see that function for what it covers).

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fuzzing::spec_toml(data));
