//! Typed-id parsing: never panics, and whatever parses prints back to the same text.
#![no_main]

include!("../checks/ids.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
