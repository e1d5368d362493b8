//! Replays the `envelope` and `wrapped_key` fuzz corpora through the fuzz targets' own checks.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

mod envelope {
    include!("../../fuzz/checks/envelope.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn envelope_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/envelope"
        ));
    }
}

mod wrapped_key {
    include!("../../fuzz/checks/wrapped_key.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn wrapped_key_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/wrapped_key"
        ));
    }
}

mod archive {
    include!("../../fuzz/checks/archive.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn archive_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/archive"
        ));
    }
}
