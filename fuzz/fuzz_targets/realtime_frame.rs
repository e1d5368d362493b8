//! The realtime channel's decoder (Noise handshake, transport frames, record framing, client
//! records): never panics, whatever a client sends.
#![no_main]

include!("../checks/realtime_frame.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
