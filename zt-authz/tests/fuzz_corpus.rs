//! Replays the `authz_records` fuzz corpus through the fuzz target's own check.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

include!("../../fuzz/checks/authz_records.rs");
include!("../../fuzz/checks/replay.rs");

#[test]
fn authz_records_corpus() {
    replay(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/authz_records"
    ));
}
