//! The audit trail as the `AuditSink`: routing by class, compliance off, checkpoints by count,
//! by timer and on demand, recorded reads and exports, and two trails over one store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use zt_audit::checkpoint::{NoteSigner, NoteVerifier};
use zt_audit::entry;
use zt_audit::log::AuditLog;
use zt_audit::trail::{AuditConfig, AuditTrail, LogAddress, LogKind};
use zt_audit::verify::Verdict;
use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, TenantId, Timestamp, UserId};
use zt_crypto::SigningKey;
use zt_storage::{Batch, KvStore, MemoryStore, SledConfig, SledStore};

fn at() -> Timestamp {
    Timestamp::from_unix_millis(1_764_400_000_000)
}

fn tenant() -> TenantId {
    TenantId::from_bytes([7; 16])
}

fn event(kind: AuditEventKind) -> AuditEvent {
    AuditEvent::new(kind, Actor::User(UserId::from_bytes([1; 16])), at()).tenant(tenant())
}

fn trail(store: Arc<dyn KvStore>, config: AuditConfig) -> AuditTrail {
    let signer = NoteSigner::new("zt.test/audit", SigningKey::generate()).unwrap();
    AuditTrail::new(store, signer, config)
}

fn address(kind: LogKind) -> LogAddress {
    LogAddress {
        tenant: Some(tenant()),
        kind,
    }
}

async fn size(trail_store: &Arc<dyn KvStore>, kind: LogKind) -> u64 {
    AuditLog::new(trail_store.clone(), address(kind).namespace())
        .tree_head()
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn events_go_to_the_logs_their_class_names() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let trail = trail(store.clone(), AuditConfig::default());
    // Security only, compliance only, both.
    let r = trail
        .append(event(AuditEventKind::LoginFailed))
        .await
        .unwrap();
    assert_eq!((r.security, r.compliance), (Some(0), None));
    let r = trail
        .append(event(AuditEventKind::DataExported))
        .await
        .unwrap();
    assert_eq!((r.security, r.compliance), (None, Some(0)));
    let r = trail
        .append(event(AuditEventKind::RoleChanged))
        .await
        .unwrap();
    assert_eq!((r.security, r.compliance), (Some(1), Some(1)));
    assert_eq!(size(&store, LogKind::Security).await, 2);
    assert_eq!(size(&store, LogKind::Compliance).await, 2);
    // The stored bytes are the canonical encoding of the event.
    let log = AuditLog::new(store.clone(), address(LogKind::Security).namespace());
    let stored = log.entry(1).await.unwrap().unwrap();
    assert_eq!(
        entry::decode(&stored).unwrap(),
        event(AuditEventKind::RoleChanged)
    );
    // Deployment-wide events have their own logs.
    let r = trail
        .append(AuditEvent::new(
            AuditEventKind::KmsUnavailable,
            Actor::System("keyring".into()),
            at(),
        ))
        .await
        .unwrap();
    assert_eq!(r.security, Some(0));
    let listed = AuditTrail::listed(&*store).await.unwrap();
    let names: BTreeSet<_> = listed
        .iter()
        .map(|(ns, _, _)| ns.as_str().to_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains("audit/system/security"));
    assert!(listed.iter().all(|(_, _, key)| key == trail.verifier_key()));
}

#[tokio::test]
async fn with_compliance_off_compliance_only_events_are_counted_not_stored() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let config = AuditConfig {
        compliance: false,
        ..AuditConfig::default()
    };
    let trail = trail(store.clone(), config);
    let r = trail
        .append(event(AuditEventKind::DataExported))
        .await
        .unwrap();
    assert_eq!((r.security, r.compliance), (None, None));
    trail
        .append(event(AuditEventKind::FileDeleted))
        .await
        .unwrap();
    // Both-class events still reach the security log and are not counted as skipped.
    let r = trail
        .append(event(AuditEventKind::RoleChanged))
        .await
        .unwrap();
    assert_eq!((r.security, r.compliance), (Some(0), None));
    assert_eq!(trail.compliance_skipped(Some(tenant())), 2);
    assert_eq!(trail.compliance_skipped(None), 0);
    assert_eq!(size(&store, LogKind::Compliance).await, 0);
}

#[tokio::test]
async fn checkpoints_are_signed_by_count_by_timer_and_on_demand() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let config = AuditConfig {
        checkpoint_every: 4,
        checkpoint_interval: Duration::from_millis(20),
        ..AuditConfig::default()
    };
    let trail = Arc::new(trail(store.clone(), config));
    let key = NoteVerifier::from_verifier_key(trail.verifier_key()).unwrap();
    let log = AuditLog::new(store.clone(), address(LogKind::Security).namespace());
    for _ in 0..5 {
        trail
            .append(event(AuditEventKind::LoginFailed))
            .await
            .unwrap();
    }
    // By count: at 4.
    let latest = key
        .verify(&log.latest_checkpoint().await.unwrap().unwrap())
        .unwrap();
    assert_eq!(latest.size, 4);
    assert_eq!(latest.origin, format!("zt/audit/{}/security", tenant()));
    // By timer: the fifth entry is signed within an interval or two.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let trail = trail.clone();
        tokio::spawn(async move {
            trail
                .run_checkpointer(async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    let mut signed = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        signed = key
            .verify(&log.latest_checkpoint().await.unwrap().unwrap())
            .unwrap()
            .size;
        if signed == 5 {
            break;
        }
    }
    assert_eq!(signed, 5, "the timer signs unsigned entries");
    stop.send(()).unwrap();
    runner.await.unwrap();
    // Nothing new: nothing to sign.
    assert_eq!(trail.checkpoint_due().await.unwrap(), 0);
    // On demand.
    trail
        .append(event(AuditEventKind::LoginFailed))
        .await
        .unwrap();
    let note = trail.checkpoint(&address(LogKind::Security)).await.unwrap();
    assert_eq!(key.verify(&note).unwrap().size, 6);
}

#[tokio::test]
async fn reading_and_exporting_are_recorded_and_verification_failures_too() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let trail = trail(store.clone(), AuditConfig::default());
    for _ in 0..3 {
        trail
            .append(event(AuditEventKind::RoleChanged))
            .await
            .unwrap();
    }
    let auditor = Actor::User(UserId::from_bytes([9; 16]));
    let events = trail
        .read(&auditor, &address(LogKind::Security), 0, 2)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    // audit.read is a compliance event: the compliance log now ends with it.
    let compliance = AuditLog::new(store.clone(), address(LogKind::Compliance).namespace());
    let (n, _) = compliance.tree_head().await.unwrap();
    let last = entry::decode(&compliance.entry(n - 1).await.unwrap().unwrap()).unwrap();
    assert_eq!(last.kind, AuditEventKind::AuditLogRead);
    assert_eq!(last.actor, auditor);

    let export = trail
        .export(&auditor, &address(LogKind::Security))
        .await
        .unwrap();
    // audit.exported is recorded in both logs, before the export is taken.
    let exported = entry::decode(export.entries.last().unwrap()).unwrap();
    assert_eq!(exported.kind, AuditEventKind::AuditLogExported);
    assert_eq!(export.first, 0);
    let key = NoteVerifier::from_verifier_key(trail.verifier_key()).unwrap();
    let checkpoint = key.verify(&export.checkpoint).unwrap();
    let leaves: Vec<_> = export
        .entries
        .iter()
        .map(|e| zt_audit::merkle::leaf_hash(e))
        .collect();
    assert_eq!(
        zt_audit::merkle::root(&leaves, checkpoint.size),
        checkpoint.root
    );

    assert!(matches!(
        trail
            .verify(&auditor, &address(LogKind::Security))
            .await
            .unwrap(),
        Verdict::Valid(_)
    ));
    // Damage an entry: verification fails and says so in the security log.
    let ns = address(LogKind::Security).namespace();
    let mut key0 = b"b".to_vec();
    key0.extend_from_slice(&0u64.to_be_bytes());
    let mut record = store.get(&ns, &key0).await.unwrap().unwrap().value;
    let last_byte = record.len() - 1;
    record[last_byte] ^= 1;
    let mut batch = Batch::new();
    batch.put_owned(&ns, key0, record);
    store.commit(batch).await.unwrap();
    let verdict = trail
        .verify(&auditor, &address(LogKind::Security))
        .await
        .unwrap();
    assert!(
        matches!(verdict, Verdict::Invalid(ref f) if f.index == Some(0)),
        "{verdict:?}"
    );
    let security = AuditLog::new(store.clone(), ns);
    let (n, _) = security.tree_head().await.unwrap();
    let last = entry::decode(&security.entry(n - 1).await.unwrap().unwrap()).unwrap();
    assert_eq!(last.kind, AuditEventKind::AuditVerificationFailed);
}

#[tokio::test]
async fn retention_prunes_unless_a_legal_hold_is_placed() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let trail = trail(
        store.clone(),
        AuditConfig {
            checkpoint_every: 5,
            ..AuditConfig::default()
        },
    );
    for _ in 0..20 {
        trail
            .append(event(AuditEventKind::LoginFailed))
            .await
            .unwrap();
    }
    let admin = Actor::User(UserId::from_bytes([3; 16]));
    let security = address(LogKind::Security);
    trail
        .set_legal_hold(&admin, Some(tenant()), true)
        .await
        .unwrap();
    assert!(trail.retention(&security).await.unwrap().legal_hold);
    assert!(matches!(
        trail.prune(&admin, &security, 10).await,
        Err(zt_audit::Error::LegalHold)
    ));
    trail
        .set_legal_hold(&admin, Some(tenant()), false)
        .await
        .unwrap();
    trail.prune(&admin, &security, 10).await.unwrap();
    let status = trail.retention(&security).await.unwrap();
    assert_eq!((status.pruned_below, status.legal_hold), (10, false));
    assert!(status.size > 20, "{status:?}");
    let log = AuditLog::new(store.clone(), security.namespace());
    assert_eq!(log.pruned_below().await.unwrap(), 10);
    // Placing and releasing the hold (both logs) and both cleanups are on record.
    let (n, _) = log.tree_head().await.unwrap();
    let kinds: Vec<_> = log
        .entries(10, n)
        .await
        .unwrap()
        .iter()
        .map(|e| entry::decode(e).unwrap().kind)
        .collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        [
            AuditEventKind::LegalHoldPlaced,
            AuditEventKind::LegalHoldReleased
        ]
    );
    let compliance = AuditLog::new(store.clone(), address(LogKind::Compliance).namespace());
    let (m, _) = compliance.tree_head().await.unwrap();
    let cleanups: Vec<_> = compliance
        .entries(0, m)
        .await
        .unwrap()
        .iter()
        .map(|e| entry::decode(e).unwrap())
        .filter(|e| e.kind == AuditEventKind::RetentionCleanup)
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        cleanups,
        [zt_core::Outcome::Denied, zt_core::Outcome::Success]
    );
    assert!(matches!(
        trail.verify(&admin, &security).await.unwrap(),
        Verdict::Valid(r) if r.first == 10
    ));
}

/// Two trails (as two processes would have) append concurrently through one sled database:
/// every index is handed out once, the logs stay contiguous and verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_trails_over_one_database_stay_linear() {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
    // Two store handles on the one database, one per trail.
    let store: Arc<dyn KvStore> = Arc::new(sled.clone());
    let other: Arc<dyn KvStore> = Arc::new(sled);
    let seed = SigningKey::generate().to_seed();
    let make = |store: Arc<dyn KvStore>| {
        let signer = NoteSigner::new("zt.test/audit", SigningKey::from_seed(&seed)).unwrap();
        Arc::new(AuditTrail::new(
            store,
            signer,
            AuditConfig {
                checkpoint_every: 16,
                ..AuditConfig::default()
            },
        ))
    };
    let trails = [make(store.clone()), make(other)];
    let mut tasks = Vec::new();
    for n in 0..200 {
        let trail = trails[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            trail
                .append(event(AuditEventKind::RoleChanged))
                .await
                .unwrap()
        }));
    }
    let mut security = BTreeSet::new();
    let mut compliance = BTreeSet::new();
    for task in tasks {
        let receipt = task.await.unwrap();
        assert!(security.insert(receipt.security.unwrap()));
        assert!(compliance.insert(receipt.compliance.unwrap()));
    }
    assert_eq!(security, (0..200).collect());
    assert_eq!(compliance, (0..200).collect());
    for kind in [LogKind::Security, LogKind::Compliance] {
        let verdict = trails[0]
            .verify(&Actor::System("test".into()), &address(kind))
            .await
            .unwrap();
        assert!(
            matches!(verdict, Verdict::Valid(ref r) if r.size == 200 && r.checkpoints > 0),
            "{verdict:?}"
        );
    }
    store.close().await.unwrap();
}

/// The trail through the `AuditLogs` port that zt-chat's admin areas use: pages read what they
/// return and are recorded with their range; errors come with the port's kinds.
#[tokio::test]
async fn the_audit_logs_port_reads_pages_and_reports_kinds() {
    use zt_core::{AuditLogId, AuditLogKind, AuditLogVerdict, AuditLogs, AuditRange};
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let trail = trail(
        store.clone(),
        AuditConfig {
            checkpoint_every: 5,
            ..AuditConfig::default()
        },
    );
    for _ in 0..30 {
        trail
            .append(event(AuditEventKind::LoginFailed))
            .await
            .unwrap();
    }
    let logs: &dyn AuditLogs = &trail;
    let log = AuditLogId {
        tenant: Some(tenant()),
        kind: AuditLogKind::Security,
    };
    let reader = Actor::User(UserId::from_bytes([4; 16]));
    let page = logs
        .read(&reader, log, AuditRange::Newest { limit: 3 })
        .await
        .unwrap();
    assert_eq!(page.size, 30, "the size before the read's own record");
    let indices: Vec<u64> = page.events.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [27, 28, 29]);
    assert!(page.checkpoint.is_some(), "signed at 30 by count");
    let page = logs
        .read(
            &reader,
            log,
            AuditRange::From {
                from: 29,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "a page ends at the log's end");
    // Reads go to the compliance log, each with its range.
    let compliance = AuditLogId {
        kind: AuditLogKind::Compliance,
        ..log
    };
    let reads = logs
        .read(&reader, compliance, AuditRange::Newest { limit: 10 })
        .await
        .unwrap();
    let ranges: Vec<_> = reads
        .events
        .iter()
        .filter(|(_, e)| e.kind == AuditEventKind::AuditLogRead)
        .map(|(_, e)| e.details.get("range").cloned())
        .collect();
    assert_eq!(
        ranges,
        [
            Some(zt_core::Detail::Text("27..30".into())),
            Some(zt_core::Detail::Text("29..30".into()))
        ]
    );
    for from in [31, u64::MAX] {
        assert!(matches!(
            logs.read(&reader, log, AuditRange::From { from, limit: 1 })
                .await,
            Err(zt_core::Error::InvalidInput(_))
        ));
    }
    assert!(matches!(
        logs.verify(&reader, log).await.unwrap(),
        AuditLogVerdict::Valid { .. }
    ));

    logs.set_legal_hold(&reader, Some(tenant()), true)
        .await
        .unwrap();
    assert!(logs.retention(log).await.unwrap().legal_hold);
    assert!(matches!(
        logs.prune(&reader, log, 5).await,
        Err(zt_core::Error::Conflict(_))
    ));
    logs.set_legal_hold(&reader, Some(tenant()), false)
        .await
        .unwrap();
    assert!(matches!(
        logs.prune(&reader, log, 1_000).await,
        Err(zt_core::Error::InvalidInput(_))
    ));
    logs.prune(&reader, log, 5).await.unwrap();
    assert_eq!(logs.retention(log).await.unwrap().pruned_below, 5);
    assert!(matches!(
        logs.read(&reader, log, AuditRange::From { from: 4, limit: 1 })
            .await,
        Err(zt_core::Error::InvalidInput(_))
    ));
    let oldest = logs
        .read(&reader, log, AuditRange::Newest { limit: 1_000 })
        .await
        .unwrap();
    assert_eq!(oldest.pruned_below, 5);
    assert_eq!(oldest.events.first().map(|(i, _)| *i), Some(5));
}
