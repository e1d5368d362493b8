//! A write-ahead log segment of the sled store, read as opening the store reads it.
#![no_main]

include!("../checks/wal_segment.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
