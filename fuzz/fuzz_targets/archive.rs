//! Sealed archives: the age file and the tar stream inside never panic and never verify.
#![no_main]

include!("../checks/archive.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
