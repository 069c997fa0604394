#![no_main]
//! Feeds any bytes to `harness::fuzzing::campaign_toml` (see that function for what it covers).

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fuzzing::campaign_toml(data));
