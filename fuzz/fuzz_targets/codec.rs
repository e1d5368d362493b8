//! The storage codec on bytes read back from disk: never panics, whatever the bytes.
#![no_main]

include!("../checks/codec.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
