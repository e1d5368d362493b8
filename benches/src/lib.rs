//! Benchmarks of the zt crates live in `benches/`; run them with `cargo bench -p zt-benches`.
