//! Audit entry decoding: never panics, and accepted bytes are canonical.
#![no_main]

include!("../checks/audit_entry.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
