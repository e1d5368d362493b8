//! Storage benchmarks: commits, reads and scans on memory and durable sled, and group-commit
//! throughput with 1 and 64 concurrent committers on sled.
//!
//! `cargo bench -p zt-benches --bench storage`, then `python3 scripts/bench-ratios.py` for the
//! ratios reported in docs/PERFORMANCE.md.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use zt_storage::{
    Batch, KeyRange, KvStore, MemoryStore, Namespace, ScanOptions, SledConfig, SledStore,
};

struct Backend {
    name: &'static str,
    store: Arc<dyn KvStore>,
    _dir: Option<tempfile::TempDir>,
}

fn backends(rt: &Runtime) -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let sled = rt
        .block_on(SledStore::open(SledConfig::new(dir.path())))
        .expect("open sled");
    vec![
        Backend {
            name: "memory",
            store: Arc::new(MemoryStore::new()),
            _dir: None,
        },
        Backend {
            name: "sled",
            store: Arc::new(sled),
            _dir: Some(dir),
        },
    ]
}

fn ns() -> Namespace {
    Namespace::new("bench").expect("namespace")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn commits(c: &mut Criterion) {
    let rt = runtime();
    let value = vec![0x5au8; 256];
    let mut group = c.benchmark_group("storage/commit");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for backend in backends(&rt) {
        let store = backend.store.clone();
        let mut i = 0u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("single_put", backend.name), |b| {
            b.to_async(&rt).iter(|| {
                i += 1;
                let mut batch = Batch::new();
                batch.put(&ns(), &i.to_be_bytes(), &value);
                let store = store.clone();
                async move { store.commit(batch).await.expect("commit") }
            })
        });
        group.throughput(Throughput::Elements(100));
        group.bench_function(BenchmarkId::new("batch_100", backend.name), |b| {
            b.to_async(&rt).iter(|| {
                let mut batch = Batch::new();
                for _ in 0..100 {
                    i += 1;
                    batch.put(&ns(), &i.to_be_bytes(), &value);
                }
                let store = store.clone();
                async move { store.commit(batch).await.expect("commit") }
            })
        });
        rt.block_on(store.close()).expect("close");
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("storage/read");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    for backend in backends(&rt) {
        let store = backend.store.clone();
        rt.block_on(async {
            for chunk in 0u32..10 {
                let mut batch = Batch::new();
                for i in chunk * 1000..(chunk + 1) * 1000 {
                    batch.put(&ns(), &i.to_be_bytes(), &[0x42u8; 256]);
                }
                store.commit(batch).await.expect("fill");
            }
        });
        let mut i = 0u32;
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("get", backend.name), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 7919) % 10_000;
                let store = store.clone();
                async move { store.get(&ns(), &i.to_be_bytes()).await.expect("get") }
            })
        });
        group.throughput(Throughput::Elements(100));
        group.bench_function(BenchmarkId::new("scan_100", backend.name), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 7919) % 9_900;
                let range = KeyRange::new(
                    std::ops::Bound::Included(i.to_be_bytes().to_vec()),
                    std::ops::Bound::Unbounded,
                );
                let store = store.clone();
                async move {
                    let page = store
                        .scan(&ns(), &range, ScanOptions::new().limit(100))
                        .await
                        .expect("scan");
                    assert_eq!(page.entries.len(), 100);
                }
            })
        });
        rt.block_on(store.close()).expect("close");
    }
    group.finish();
}

/// Durable commits per second on sled with `committers` concurrent tasks, each committing its
/// own single-key batches.
fn group_commit(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("storage/group_commit_sled");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    for committers in [1u64, 64] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn KvStore> = Arc::new(
            rt.block_on(SledStore::open(SledConfig::new(dir.path())))
                .expect("open sled"),
        );
        let mut next_key = 0u64;
        group.bench_function(BenchmarkId::new("committers", committers), |b| {
            b.iter_custom(|iters| {
                // Fresh keys for every measurement.
                let base = next_key;
                next_key += iters + committers;
                let store = store.clone();
                let per_task = iters.div_ceil(committers).max(1);
                zt_benches::time_concurrent(&rt, committers, iters, move |t, n| {
                    let store = store.clone();
                    async move {
                        let key = base + t * per_task + n;
                        let mut batch = Batch::new();
                        batch.put(&ns(), &key.to_be_bytes(), &[1u8; 128]);
                        store.commit(batch).await.expect("commit");
                    }
                })
            })
        });
        rt.block_on(store.close()).expect("close");
    }
    group.finish();
    // The same records (key and value) raw.
    zt_benches::bench_raw_disk(c, "storage", &[0u8; 8 + 128]);
}

/// `EncryptingStore` over durable sled against plain sled: reads (where decryption shows) and
/// single-put commits (where the flush dominates).
fn encrypting(c: &mut Criterion) {
    use zt_crypto::Kms as _;
    let rt = runtime();
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    let kms_key = zt_crypto::KeyId::new("tenants").unwrap();
    rt.block_on(kms.create_key(&kms_key)).unwrap();
    let plain_dir = tempfile::tempdir().unwrap();
    let encrypted_dir = tempfile::tempdir().unwrap();
    let open = |dir: &std::path::Path| -> Arc<dyn KvStore> {
        Arc::new(rt.block_on(SledStore::open(SledConfig::new(dir))).unwrap())
    };
    let plain = open(plain_dir.path());
    let inner = open(encrypted_dir.path());
    let records_ns = Namespace::new("zt.keys").unwrap();
    let keyring = Arc::new(zt_crypto::Keyring::new(
        kms,
        Arc::new(zt_storage::KvKeyRecords::new(
            inner.clone(),
            records_ns.clone(),
        )),
        kms_key,
        zt_crypto::KeyringConfig::default(),
    ));
    let encrypted: Arc<dyn KvStore> = Arc::new(
        zt_storage::EncryptingStore::new(inner.clone(), keyring, "tenant-1")
            .reserve_namespace(records_ns),
    );
    let mut group = c.benchmark_group("storage/encrypting");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    for (name, store) in [("plain_sled", &plain), ("encrypted_sled", &encrypted)] {
        rt.block_on(async {
            let mut batch = Batch::new();
            for i in 0u32..1000 {
                batch.put(&ns(), &i.to_be_bytes(), &[0x42u8; 256]);
            }
            store.commit(batch).await.unwrap();
        });
        let mut i = 0u32;
        group.bench_function(BenchmarkId::new("get", name), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 7919) % 1000;
                let store = store.clone();
                async move { store.get(&ns(), &i.to_be_bytes()).await.unwrap() }
            })
        });
        let mut n = 1_000_000u32;
        group.bench_function(BenchmarkId::new("single_put", name), |b| {
            b.to_async(&rt).iter(|| {
                n += 1;
                let mut batch = Batch::new();
                batch.put(&ns(), &n.to_be_bytes(), &[0x42u8; 256]);
                let store = store.clone();
                async move { store.commit(batch).await.unwrap() }
            })
        });
    }
    group.finish();
    rt.block_on(plain.close()).unwrap();
    rt.block_on(inner.close()).unwrap();
}

criterion_group!(benches, commits, reads, group_commit, encrypting);
criterion_main!(benches);
