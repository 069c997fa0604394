#![no_main]
//! Feeds any bytes to `checkers::fuzzing::porcupine_etcd` (see that function for what it covers).

libfuzzer_sys::fuzz_target!(|data: &[u8]| checkers::fuzzing::porcupine_etcd(data));
