//! Envelope parsing and opening: never panics.
#![no_main]

include!("../checks/envelope.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
