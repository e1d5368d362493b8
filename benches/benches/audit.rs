//! Durable audit appends per second on sled with 1 and 64 concurrent writers (group commit).
//!
//! `cargo bench -p zt-benches --bench audit`, then `python3 scripts/bench-ratios.py`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use zt_audit::log::AuditLog;
use zt_storage::{KvStore, Namespace, SledConfig, SledStore};

fn appends(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("audit/append_sled");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    for writers in [1u64, 64] {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(
            rt.block_on(SledStore::open(SledConfig::new(dir.path())))
                .unwrap(),
        );
        let log = Arc::new(AuditLog::new(
            store.clone(),
            Namespace::new("audit.security").unwrap(),
        ));
        // A realistic entry: about 200 bytes of canonical encoding.
        let entry = vec![0x5au8; 200];
        group.bench_function(BenchmarkId::new("writers", writers), |b| {
            b.iter_custom(|iters| {
                let log = log.clone();
                let entry = entry.clone();
                zt_benches::time_concurrent(&rt, writers, iters, move |_, _| {
                    let log = log.clone();
                    let entry = entry.clone();
                    async move {
                        log.append(entry).await.unwrap();
                    }
                })
            })
        });
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
