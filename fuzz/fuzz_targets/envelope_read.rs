//! shared::fuzzing::envelope_read on the fuzzer's input; the corpus replays through it in shared's tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shared::fuzzing::envelope_read(data));
