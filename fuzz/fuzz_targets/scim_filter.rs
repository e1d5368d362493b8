//! SCIM filters and PATCH paths (the text identity providers send): never panic, and a parsed
//! filter's canonical text parses back to it.
#![no_main]

include!("../checks/scim_filter.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
