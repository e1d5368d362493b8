//! The API tunnel's head parsers (request and response): never panic, whatever arrives.
#![no_main]

include!("../checks/tunnel_head.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
