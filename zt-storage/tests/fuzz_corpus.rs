//! Replays the `codec` and `wal_segment` fuzz corpora (fuzz/corpus/) through the fuzz targets'
//! own checks.

mod codec {
    include!("../../fuzz/checks/codec.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn codec_corpus() {
        replay(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/codec"));
    }
}

#[cfg(feature = "sled")]
mod wal_segment {
    include!("../../fuzz/checks/wal_segment.rs");
    include!("../../fuzz/checks/replay.rs");

    #[test]
    fn wal_segment_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/corpus/wal_segment"
        ));
    }
}
