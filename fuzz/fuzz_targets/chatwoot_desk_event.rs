//! The desk's Chatwoot reader (`fuzz_desk_event`) on the fuzzer's input; the corpus replays
//! through it in the desk's tests.
#![no_main]

#[path = "../../functions/desk/src/chatwoot.rs"]
mod chatwoot;

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatwoot::fuzz_desk_event(data));
