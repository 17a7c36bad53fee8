//! shared::fuzzing::webhook_split on the fuzzer's input; the corpus replays through it in shared's tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shared::fuzzing::webhook_split(data));
