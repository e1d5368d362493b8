//! ID-token and back-channel logout-token checks (the back-channel route takes tokens from
//! anyone): never panic, and nothing but the provider's own token verifies.
#![no_main]

include!("../checks/sso_tokens.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
