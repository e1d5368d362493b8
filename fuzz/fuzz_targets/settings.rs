//! The server's TOML settings file: never panics, whatever the text.
#![no_main]

include!("../checks/settings.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
