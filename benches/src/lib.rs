//! Shared helpers of the zt benchmarks in `benches/`; run them with `cargo bench -p zt-benches`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// Whether this is a smoke run rather than a measurement: `cargo bench` passes `--bench` to a
/// benchmark binary and `cargo test --benches` does not (CI runs the latter, with `-- --test`).
/// A smoke run does each benchmark once on small data, as criterion's test mode does.
pub fn smoke() -> bool {
    std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench")
}

/// Times `iters` operations spread over `workers` concurrent tasks, for criterion's
/// `iter_custom`: worker `w` runs `op(w, n)` for `n` in `0..ceil(iters / workers)`. The elapsed
/// time is scaled back to exactly `iters` operations.
///
/// # Panics
/// When a worker task panics (a failed benchmark operation): a benchmark has no caller to return
/// an error to.
pub fn time_concurrent<F, Fut>(rt: &Runtime, workers: u64, iters: u64, op: F) -> Duration
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let per_worker = iters.div_ceil(workers).max(1);
    let op = Arc::new(op);
    rt.block_on(async move {
        let start = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let op = Arc::clone(&op);
                tokio::spawn(async move {
                    for n in 0..per_worker {
                        op(w, n).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            #[allow(clippy::panic, reason = "a benchmark stops on a failed operation")]
            if let Err(e) = task.await {
                panic!("benchmark task failed: {e}");
            }
        }
        start
            .elapsed()
            .mul_f64(iters as f64 / (per_worker * workers) as f64)
    })
}
