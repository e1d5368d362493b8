//! Replays the `codec` fuzz corpus (fuzz/corpus/codec) through the fuzz target's own check.

include!("../../fuzz/checks/codec.rs");
include!("../../fuzz/checks/replay.rs");

#[test]
fn codec_corpus() {
    replay(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/codec"));
}
