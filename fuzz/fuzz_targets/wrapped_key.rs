//! Stored wrapped keys: never panic, and round-trip.
#![no_main]

include!("../checks/wrapped_key.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
