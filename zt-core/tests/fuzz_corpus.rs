//! Replays the `ids` fuzz corpus (fuzz/corpus/ids) through the fuzz target's own check.

include!("../../fuzz/checks/ids.rs");
include!("../../fuzz/checks/replay.rs");

#[test]
fn ids_corpus() {
    replay(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/ids"));
}
