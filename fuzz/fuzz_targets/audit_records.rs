//! Stored audit log records (head, prune point, chunks, nodes, checkpoints, bridges): the log and
//! the verifier read any bytes without panicking.
#![no_main]

include!("../checks/audit_records.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
