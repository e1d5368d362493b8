// Replays every file of one corpus directory through `check`; included by each crate's
// `tests/fuzz_corpus.rs` after the target's check.

/// Runs `check` on every file in `dir`; fails when the directory is empty.
#[allow(clippy::expect_used, reason = "a test reports an unreadable corpus by failing")]
fn replay(dir: &str) {
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        check(&data);
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus in {dir} is empty");
}
