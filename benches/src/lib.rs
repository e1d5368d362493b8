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

/// The disk's own limit for durable appends, for criterion's `iter_custom`: appends `iters`
/// copies of `record` to a fresh file in `dir` in groups of `group` (one `write` per group) and
/// calls `fdatasync` after each group, as a log that makes every group durable must at least do.
/// The durable storage and audit figures are reported as ratios to this.
///
/// # Panics
/// When the file cannot be created or written: a benchmark has no caller to return an error to.
pub fn raw_append_fdatasync(
    dir: &std::path::Path,
    record: &[u8],
    group: u64,
    iters: u64,
) -> Duration {
    use std::io::Write as _;
    #[allow(
        clippy::expect_used,
        reason = "a benchmark stops on a failed set-up step"
    )]
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.join("raw-append.log"))
        .expect("create the raw append file");
    let group = group.max(1);
    let mut buffer = Vec::with_capacity(record.len() * group as usize);
    let start = Instant::now();
    let mut done = 0;
    while done < iters {
        let n = group.min(iters - done);
        buffer.clear();
        for _ in 0..n {
            buffer.extend_from_slice(record);
        }
        #[allow(clippy::expect_used, reason = "a benchmark stops on a failed write")]
        {
            file.write_all(&buffer).expect("append");
            file.sync_data().expect("fdatasync");
        }
        done += n;
    }
    start.elapsed()
}

/// The disk's limit beside a bench's durable figures, in the same run: `record` appended raw
/// with one `fdatasync` per group of 1, 64 and 1,000.
pub fn bench_raw_disk(c: &mut criterion::Criterion, bench: &str, record: &[u8]) {
    let mut group = c.benchmark_group(format!("{bench}/raw_append_fdatasync"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(criterion::Throughput::Elements(1));
    #[allow(
        clippy::expect_used,
        reason = "a benchmark stops on a failed set-up step"
    )]
    let dir = tempfile::tempdir().expect("temporary directory");
    for records in [1u64, 64, 1000] {
        group.bench_function(criterion::BenchmarkId::new("group", records), |b| {
            b.iter_custom(|iters| raw_append_fdatasync(dir.path(), record, records, iters))
        });
    }
    group.finish();
}
