//! The log over real stores: linear indices under concurrency (one and two writers' instances),
//! roots that match a recomputation from the stored entries, proofs from storage, durability.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use zt_audit::log::AuditLog;
use zt_audit::merkle::{self, leaf_hash, verify_inclusion};
use zt_core::{Actor, AuditEvent, AuditEventKind, Timestamp};
use zt_storage::{KvStore, MemoryStore, Namespace, SledConfig, SledStore};

/// A canonical entry whose target is `label`.
fn entry(label: &str) -> Vec<u8> {
    zt_audit::entry::encode(
        &AuditEvent::new(
            AuditEventKind::LoginFailed,
            Actor::Anonymous,
            Timestamp::from_unix_millis(1_764_400_000_000),
        )
        .target(label),
    )
}

fn ns() -> Namespace {
    Namespace::new("audit.security").unwrap()
}

/// The leaf hashes of every stored entry, read back in index order.
async fn stored_leaves(log: &AuditLog, size: u64) -> Vec<merkle::Hash> {
    let mut leaves = Vec::new();
    for i in 0..size {
        leaves.push(leaf_hash(&log.entry(i).await.unwrap().expect("entry")));
    }
    leaves
}

#[tokio::test]
async fn appends_build_the_tree_the_verifier_expects() {
    let log = AuditLog::new(Arc::new(MemoryStore::new()), ns());
    assert_eq!(log.tree_head().await.unwrap(), (0, merkle::empty_root()));
    for i in 0u64..37 {
        assert_eq!(log.append(entry(&format!("entry {i}"))).await.unwrap(), i);
    }
    let (size, root) = log.tree_head().await.unwrap();
    assert_eq!(size, 37);
    let leaves = stored_leaves(&log, size).await;
    assert_eq!(root, merkle::root(&leaves, size));
    for past in [1u64, 2, 3, 8, 16, 20, 37] {
        assert_eq!(
            log.root_at(past).await.unwrap(),
            merkle::root(&leaves, past),
            "size {past}"
        );
    }
    for (index, tree) in [(0u64, 1u64), (5, 8), (36, 37), (17, 20), (0, 37), (31, 32)] {
        let proof = log.inclusion_proof(index, tree).await.unwrap();
        let root = merkle::root(&leaves, tree);
        verify_inclusion(index, tree, &leaves[index as usize], &proof, &root).unwrap();
        assert_eq!(
            proof,
            merkle::inclusion_proof(&leaves, index, tree).unwrap()
        );
    }
    assert!(log.inclusion_proof(37, 37).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_instances_stay_linear() {
    // Two logs over one store stand for two processes sharing a database.
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let logs = [
        Arc::new(AuditLog::new(store.clone(), ns())),
        Arc::new(AuditLog::new(store.clone(), ns())),
    ];
    let mut tasks = Vec::new();
    for writer in 0..32u32 {
        let log = Arc::clone(&logs[(writer % 2) as usize]);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for n in 0..10u32 {
                let entry = entry(&format!("writer {writer} entry {n}"));
                mine.push((log.append(entry.clone()).await.unwrap(), entry));
            }
            mine
        }));
    }
    let mut seen = BTreeSet::new();
    let mut all = Vec::new();
    for task in tasks {
        for (index, entry) in task.await.unwrap() {
            assert!(seen.insert(index), "index {index} given twice");
            all.push((index, entry));
        }
    }
    assert_eq!(seen.len(), 320);
    assert_eq!(
        seen.iter().copied().collect::<Vec<_>>(),
        (0..320).collect::<Vec<_>>()
    );
    for (index, entry) in &all {
        assert_eq!(logs[0].entry(*index).await.unwrap().as_ref(), Some(entry));
    }
    let (size, root) = logs[1].tree_head().await.unwrap();
    assert_eq!(size, 320);
    assert_eq!(
        root,
        merkle::root(&stored_leaves(&logs[0], size).await, size)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_survives_a_reopen_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let open = || async { Arc::new(SledStore::open(SledConfig::new(dir.path())).await.unwrap()) };
    let store = open().await;
    let log = AuditLog::new(store.clone(), ns());
    for i in 0..10u64 {
        log.append(entry(&i.to_string())).await.unwrap();
    }
    let head = log.tree_head().await.unwrap();
    store.close().await.unwrap();
    drop((log, store));
    let store = open().await;
    let log = AuditLog::new(store.clone(), ns());
    assert_eq!(log.tree_head().await.unwrap(), head);
    assert_eq!(log.append(entry("after")).await.unwrap(), 10);
    // Only canonical audit entries go in.
    assert!(matches!(
        log.append(b"not an entry".to_vec()).await,
        Err(zt_audit::Error::MalformedEntry(_))
    ));
    assert_eq!(log.tree_head().await.unwrap().0, 11);
    let (size, root) = log.tree_head().await.unwrap();
    assert_eq!(root, merkle::root(&stored_leaves(&log, size).await, size));
    store.close().await.unwrap();
}

/// A store whose commits fail with damage, not with something a retry could cure.
struct DamagedStore(MemoryStore);

#[async_trait::async_trait]
impl KvStore for DamagedStore {
    async fn get(
        &self,
        namespace: &Namespace,
        key: &[u8],
    ) -> zt_storage::Result<Option<zt_storage::Entry>> {
        self.0.get(namespace, key).await
    }
    async fn scan(
        &self,
        namespace: &Namespace,
        range: &zt_storage::KeyRange,
        options: zt_storage::ScanOptions,
    ) -> zt_storage::Result<zt_storage::ScanPage> {
        self.0.scan(namespace, range, options).await
    }
    async fn commit(&self, _: zt_storage::Batch) -> zt_storage::Result<zt_storage::Version> {
        Err(zt_storage::Error::corrupt("a damaged page", None))
    }
    async fn close(&self) -> zt_storage::Result<()> {
        self.0.close().await
    }

    async fn export(&self, sink: &mut dyn zt_storage::ExportSink) -> zt_storage::Result<u64> {
        self.0.export(sink).await
    }
}

/// Every appender of a failed group commit hears the leader's real failure: damage is damage
/// for all of them, never "unavailable, retry".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_reports_the_leaders_kind_to_every_appender() {
    let log = AuditLog::new(Arc::new(DamagedStore(MemoryStore::new())), ns());
    let appends: Vec<_> = (0..16)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(entry(&format!("e{i}"))).await })
        })
        .collect();
    for append in appends {
        let err = append.await.unwrap().unwrap_err();
        assert_eq!(
            err.kind(),
            zt_audit::ErrorKind::Storage(zt_storage::ErrorKind::Corrupt),
            "{err}"
        );
        assert!(!err.is_temporary(), "{err}");
    }
}

/// Asking past the end of the log is its own kind, not a failed proof.
#[tokio::test]
async fn a_range_past_the_end_is_out_of_range() {
    let log = AuditLog::new(Arc::new(MemoryStore::new()), ns());
    for i in 0..3 {
        log.append(entry(&format!("e{i}"))).await.unwrap();
    }
    fn kind<T>(result: zt_audit::Result<T>) -> zt_audit::ErrorKind {
        match result {
            Err(e) => e.kind(),
            Ok(_) => panic!("expected an error"),
        }
    }
    assert_eq!(
        kind(log.entries(0, 4).await),
        zt_audit::ErrorKind::OutOfRange
    );
    assert_eq!(kind(log.root_at(9).await), zt_audit::ErrorKind::OutOfRange);
    assert_eq!(
        kind(log.inclusion_proof(0, 9).await),
        zt_audit::ErrorKind::OutOfRange
    );
    assert_eq!(
        kind(log.consistency_proof(1, 9).await),
        zt_audit::ErrorKind::OutOfRange
    );
    assert_eq!(kind(log.prune(4).await), zt_audit::ErrorKind::OutOfRange);
    assert_eq!(
        kind(log.entries(2, 1).await),
        zt_audit::ErrorKind::InvalidInput
    );
    assert_eq!(log.entries(0, 3).await.unwrap().len(), 3);
}
