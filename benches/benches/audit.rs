//! The audit log on sled:
//! - durable appends per second with 1 and 64 concurrent writers (group commit);
//! - full verification of a stored log against raw SHA-256 over the same entry bytes;
//! - inclusion and consistency proof generation at 1,000 and 1,000,000 entries.
//!
//! `cargo bench -p zt-benches --bench audit`, then `python3 scripts/bench-ratios.py`. In a smoke
//! run (`--test`, or under `cargo test`) the logs are smaller so the set-up stays quick.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;
use zt_audit::entry;
use zt_audit::log::AuditLog;
use zt_audit::verify::{Verdict, VerifyOptions, verify_log};
use zt_core::{Actor, AuditEvent, AuditEventKind, Outcome, TenantId, Timestamp, UserId};
use zt_storage::{KvStore, Namespace, SledConfig, SledStore};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A realistic event: a role change with a target, a source address and three details (about
/// 200 bytes encoded).
fn event(i: u64) -> Vec<u8> {
    let event = AuditEvent::new(
        AuditEventKind::RoleChanged,
        Actor::User(UserId::from_bytes([0x11; 16])),
        Timestamp::from_unix_millis(1_764_400_000_000 + i as i64),
    )
    .tenant(TenantId::from_bytes([0x22; 16]))
    .target(format!("user:usr_{i:032x}"))
    .outcome(Outcome::Success)
    .source(std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]))
    .detail("from_role", "member")
    .unwrap()
    .detail("to_role", "admin")
    .unwrap()
    .detail("approvals", 2)
    .unwrap();
    entry::encode(&event)
}

fn sled(rt: &Runtime, dir: &tempfile::TempDir) -> Arc<dyn KvStore> {
    Arc::new(
        rt.block_on(SledStore::open(SledConfig::new(dir.path())))
            .unwrap(),
    )
}

/// Appends `n` events quickly: many concurrent appends share each commit.
fn fill(rt: &Runtime, log: &AuditLog, n: u64) {
    rt.block_on(async {
        let mut next = 0;
        while next < n {
            let wave: Vec<_> = (next..n.min(next + 8192))
                .map(|i| {
                    let log = log.clone();
                    tokio::spawn(async move { log.append(event(i)).await.unwrap() })
                })
                .collect();
            for task in wave {
                task.await.unwrap();
            }
            next = n.min(next + 8192);
        }
    });
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("audit/append_sled");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    for writers in [1u64, 64] {
        let dir = tempfile::tempdir().unwrap();
        let store = sled(&rt, &dir);
        let log = AuditLog::new(store.clone(), Namespace::new("audit.security").unwrap());
        let entry = event(0);
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
    // The same records raw: what a chunk stores per entry (leaf hash, length, entry bytes).
    zt_benches::bench_raw_disk(c, "audit", &[0u8; 32 + 4 + 200]);
}

fn verification(c: &mut Criterion) {
    let rt = runtime();
    let n = if zt_benches::smoke() { 2_000 } else { 100_000 };
    let dir = tempfile::tempdir().unwrap();
    let store = sled(&rt, &dir);
    let ns = Namespace::new("audit.security").unwrap();
    let log = AuditLog::new(store.clone(), ns.clone());
    fill(&rt, &log, n);
    let entries = rt.block_on(log.entries(0, n)).unwrap();
    let bytes: u64 = entries.iter().map(|e| e.len() as u64).sum();

    let mut group = c.benchmark_group("audit/verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("raw_sha256", |b| {
        b.iter(|| {
            let mut hasher = Sha256::new();
            for entry in &entries {
                hasher.update(entry);
            }
            hasher.finalize()
        })
    });
    // Reading the chunks alone: the storage part of a verification.
    group.bench_function("scan_only_sled", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut next = Some(zt_storage::KeyRange::prefix(b"b"));
                let mut total = 0usize;
                while let Some(range) = next.take() {
                    let page = store
                        .scan(&ns, &range, zt_storage::ScanOptions::new())
                        .await
                        .unwrap();
                    total += page.entries.iter().map(|e| e.value.len()).sum::<usize>();
                    next = page.next;
                }
                total
            })
        })
    });
    // On every core (the default), and on one thread.
    for (name, threads) in [("full_log_sled", 0), ("full_log_sled_1_thread", 1)] {
        let options = VerifyOptions {
            threads,
            ..VerifyOptions::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let verdict = rt
                    .block_on(verify_log(&*store, &ns, &options, &mut |_, _| {}))
                    .unwrap();
                assert!(matches!(verdict, Verdict::Valid(ref r) if r.size == n));
            })
        });
    }
    group.finish();
    rt.block_on(store.close()).unwrap();
}

fn proofs(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("audit/proof");
    group.sample_size(20);
    let large = if zt_benches::smoke() {
        20_000
    } else {
        1_000_000
    };
    for n in [1_000u64, large] {
        let dir = tempfile::tempdir().unwrap();
        let store = sled(&rt, &dir);
        let log = AuditLog::new(store.clone(), Namespace::new("audit.security").unwrap());
        fill(&rt, &log, n);
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("inclusion", n), |b| {
            b.iter(|| {
                // Spread over the log: a multiplicative walk of the indices.
                i = (i + 0x9e37_79b9) % n;
                rt.block_on(log.inclusion_proof(i, n)).unwrap()
            })
        });
        let mut m = 1u64;
        group.bench_function(BenchmarkId::new("consistency", n), |b| {
            b.iter(|| {
                m = (m + 0x9e37_79b9) % (n - 1) + 1;
                rt.block_on(log.consistency_proof(m, n)).unwrap()
            })
        });
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

criterion_group!(benches, appends, verification, proofs);
criterion_main!(benches);
