//! Replays the `audit_entry` fuzz corpus through the fuzz target's own check.
#![allow(
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

include!("../../fuzz/checks/audit_entry.rs");
include!("../../fuzz/checks/replay.rs");

#[test]
fn audit_entry_corpus() {
    replay(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/audit_entry"
    ));
}
