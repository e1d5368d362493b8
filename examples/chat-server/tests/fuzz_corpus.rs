//! Replays the `settings` fuzz corpus (fuzz/corpus/settings) through the fuzz target's own check.

include!("../../../fuzz/checks/settings.rs");
include!("../../../fuzz/checks/replay.rs");

#[test]
fn settings_corpus() {
    replay(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/settings"
    ));
}
