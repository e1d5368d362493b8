//! Replays the `audit_entry` and `audit_records` fuzz corpora through the fuzz targets' own
//! checks.
#![allow(
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

mod audit_entry {
    include!("../../fuzz/checks/audit_entry.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn audit_entry_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/audit_entry"
        ));
    }
}

mod audit_records {
    include!("../../fuzz/checks/audit_records.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn audit_records_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/audit_records"
        ));
    }
}
