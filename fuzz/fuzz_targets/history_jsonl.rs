#![no_main]
//! Feeds any bytes to `checkers::fuzzing::history_jsonl` (see that function for what it covers).

libfuzzer_sys::fuzz_target!(|data: &[u8]| checkers::fuzzing::history_jsonl(data));
