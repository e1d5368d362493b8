//! Stored authorization records (roles, assignments, channels, groups, memberships, version):
//! loading never panics, and whatever loads gets the same answers from both evaluators.
#![no_main]

include!("../checks/authz_records.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
