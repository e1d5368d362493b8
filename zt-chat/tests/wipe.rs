//! Workspace wipe (issue 19, item 4): scheduled with a delay, cancelled, approved by a second
//! person only, refused under a legal hold, executed by destroying the workspace's keys (a copy
//! of the store taken before opens nothing of it with any key the KMS still holds), a final
//! checkpoint of its logs, every record removed, a crash at each step finished by the next run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests report failures by panicking"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use zt_authz::ChannelVisibility;
use zt_chat::testing::World;
use zt_chat::{
    Approvable, Approved, AuthoredContent, Caller, ErrorKind, HoldScope, RetentionPolicy,
    RetentionTarget, WipePhase, WipeSchedule, Workspace,
};
use zt_core::{AuditEventKind, Outcome, TenantId};
use zt_storage::{
    Batch, EncryptingStore, KeyRange, KvStore, MemoryStore, Namespace, PrefixedStore, ScanOptions,
};

use common::{Breakable, grant_admin, id_of, login, member, new_user, password};

const HOUR: Duration = Duration::from_secs(3600);

struct Setup {
    world: World,
    store: Arc<Breakable>,
    workspace: Arc<Workspace>,
    ada: Caller,
    carol: Caller,
    bob: Caller,
}

/// A workspace that used most of what a workspace can hold: users with sessions and
/// passwords, a channel with messages (one edited), a file, a group, retention settings, a
/// SCIM key, an approval request; and a second workspace next to it.
async fn setup() -> Setup {
    let store = Breakable::new();
    let world = World::with(store.clone() as Arc<dyn KvStore>, |config| {
        config.wipe_delay_floor = HOUR;
    })
    .await;
    let (workspace, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let ada = login(&workspace, "ada").await;
    let bob = member(&workspace, &ada, "bob").await;
    let carol = member(&workspace, &ada, "carol").await;
    grant_admin(&workspace, &ada, id_of(&carol)).await;
    let room = workspace
        .create_channel(&ada, "general", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    workspace.add_member(&ada, room, id_of(&bob)).await.unwrap();
    let said = workspace
        .post(&bob, room, "acme's secret plans", None, &[])
        .await
        .unwrap();
    workspace
        .edit(&bob, room, said.id, "acme's real secret plans")
        .await
        .unwrap();
    let mut upload = workspace
        .upload(&bob, room, "plans.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"the plans themselves").await.unwrap();
    upload.finish(Some(b"preview")).await.unwrap();
    workspace
        .create_group(&ada, "builders", zt_authz::GroupVisibility::Private, None)
        .await
        .unwrap();
    workspace
        .set_retention(
            &ada,
            RetentionTarget::Workspace,
            Some(RetentionPolicy {
                messages: Some(Duration::from_secs(400 * 24 * 3600)),
                files: None,
            }),
        )
        .await
        .unwrap();
    workspace
        .set_authored_content(&ada, AuthoredContent::Keep)
        .await
        .unwrap();
    workspace.create_scim_key(&ada, "idp").await.unwrap();
    // The neighbour that must come through untouched.
    let (other, _) = world
        .chat
        .bootstrap("Globex", new_user("gina"), &password())
        .await
        .unwrap();
    let gina = login(&other, "gina").await;
    let theirs = other
        .create_channel(&gina, "lobby", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    other
        .post(&gina, theirs, "globex stays", None, &[])
        .await
        .unwrap();
    Setup {
        world,
        store,
        workspace,
        ada,
        carol,
        bob,
    }
}

fn prefix(tenant: TenantId) -> String {
    format!("t:{}/", hex::encode(tenant.to_bytes()))
}

/// Every row of `tenant`'s namespaces in `store` (namespace, row).
async fn rows_of(store: &MemoryStore, tenant: TenantId) -> Vec<(Namespace, zt_storage::Entry)> {
    let mut out = Vec::new();
    for namespace in store.namespaces() {
        if !namespace.as_str().starts_with(&prefix(tenant)) {
            continue;
        }
        let page = store
            .scan(&namespace, &KeyRange::all(), ScanOptions::default())
            .await
            .unwrap();
        assert!(page.next.is_none());
        out.extend(page.entries.into_iter().map(|e| (namespace.clone(), e)));
    }
    out
}

/// A copy of every row of `store`: what a backup of the disk holds.
async fn copy_of(store: &MemoryStore) -> MemoryStore {
    let copy = MemoryStore::new();
    for namespace in store.namespaces() {
        let page = store
            .scan(&namespace, &KeyRange::all(), ScanOptions::default())
            .await
            .unwrap();
        let mut batch = Batch::new();
        for entry in page.entries {
            batch.put(&namespace, &entry.key, &entry.value);
        }
        if !batch.is_empty() {
            copy.commit(batch).await.unwrap();
        }
    }
    copy
}

/// How many of `tenant`'s rows in `copy` open with the keys in `copy` and the world's KMS.
async fn rows_that_open(world: &World, copy: &MemoryStore, tenant: TenantId) -> (usize, usize) {
    let inner: Arc<dyn KvStore> = Arc::new(copy.clone());
    let keyring = world.keyring_over(Arc::clone(&inner));
    let sealed = EncryptingStore::new(
        PrefixedStore::new(inner, prefix(tenant)).unwrap(),
        keyring,
        tenant.to_string(),
    );
    let (mut opened, mut total) = (0, 0);
    for (namespace, row) in rows_of(copy, tenant).await {
        let own =
            Namespace::new(namespace.as_str().strip_prefix(&prefix(tenant)).unwrap()).unwrap();
        total += 1;
        if sealed.open_stored(&own, &row).await.is_ok() {
            opened += 1;
        }
    }
    (opened, total)
}

async fn approve_wipe(s: &Setup, schedule: &WipeSchedule) -> WipeSchedule {
    match s
        .workspace
        .approve(&s.carol, schedule.approval)
        .await
        .unwrap()
    {
        Approved::WipeApproved(schedule) => schedule,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wipe_makes_every_copy_unreadable_and_removes_every_record() {
    let s = setup().await;
    let w = &s.workspace;
    let tenant = w.tenant();
    let memory = &s.store.inner;
    // The backup, taken before; it opens now (so the check below can fail).
    let backup = copy_of(memory).await;
    let (opened, total) = rows_that_open(&s.world, &backup, tenant).await;
    assert!(total > 20 && opened == total, "{opened} of {total}");

    // Who may, and how soon.
    let refused = w.schedule_wipe(&s.bob, 2 * HOUR).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let refused = w.schedule_wipe(&s.ada, HOUR / 2).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    let schedule = w.schedule_wipe(&s.ada, 2 * HOUR).await.unwrap();
    assert_eq!(schedule.phase, WipePhase::Scheduled);
    assert_eq!(
        w.schedule_wipe(&s.ada, 2 * HOUR).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    // Not approved: nothing runs, even when due.
    s.world.clock.advance(3 * HOUR);
    assert!(s.world.chat.run_wipes().await.unwrap().is_empty());
    // The one who scheduled cannot approve; a second administrator does.
    let own = w.approve(&s.ada, schedule.approval).await.unwrap_err();
    assert_eq!(own.kind(), ErrorKind::Forbidden);
    let approved = approve_wipe(&s, &schedule).await;
    assert_eq!(approved.approved_by, Some(id_of(&s.carol)));

    let ran = s.world.chat.run_wipes().await.unwrap();
    assert_eq!(ran.len(), 1);
    let done = ran.into_iter().next().unwrap().1.unwrap();
    assert!(
        matches!(done.phase, WipePhase::Done { .. }),
        "{:?}",
        done.phase
    );
    assert!(done.kms_key_destroyed);
    assert!(done.unreadable_at.is_some());
    assert_eq!(done.checkpoints.len(), 2);
    assert!(
        done.removed as usize >= total,
        "{} of {total}",
        done.removed
    );

    // Nothing of it is left, and the backup opens nothing of it with any key the KMS holds.
    assert!(rows_of(memory, tenant).await.is_empty());
    let (opened, total) = rows_that_open(&s.world, &backup, tenant).await;
    assert_eq!(opened, 0, "of {total}");
    assert_eq!(
        s.world.chat.workspace(tenant).await.err().unwrap().kind(),
        ErrorKind::NotFound
    );
    assert!(
        s.world
            .chat
            .workspaces()
            .await
            .unwrap()
            .iter()
            .all(|i| i.id != tenant)
    );
    // The neighbour is untouched.
    let globex = s.world.chat.workspaces().await.unwrap()[0].id;
    let other = s.world.chat.workspace(globex).await.unwrap();
    login(&other, "gina").await;
    // Every step is in the logs, which outlive the workspace.
    let kinds = s.world.audit.kinds();
    for kind in [
        AuditEventKind::WipeScheduled,
        AuditEventKind::ApprovalRequested,
        AuditEventKind::ApprovalGranted,
        AuditEventKind::WipeExecuted,
    ] {
        assert!(kinds.contains(&kind), "{kind:?}");
    }
    assert!(
        done.checkpoints[0].contains("size"),
        "a checkpoint over the log: {:?}",
        done.checkpoints
    );
    // Run again: nothing to do.
    assert!(s.world.chat.run_wipes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wipe_is_cancelled_and_waits_for_every_hold() {
    let s = setup().await;
    let w = &s.workspace;
    let schedule = w.schedule_wipe(&s.ada, 2 * HOUR).await.unwrap();
    // A member learns nothing of the request: the same refusal for it and for a made-up id.
    let real = w.approve(&s.bob, schedule.approval).await.unwrap_err();
    let made_up = w
        .approve(&s.bob, zt_core::ApprovalId::generate(&*s.world.clock))
        .await
        .unwrap_err();
    assert_eq!(real.kind(), ErrorKind::Forbidden);
    assert_eq!(real.to_string(), made_up.to_string());
    assert_eq!(
        w.cancel_wipe(&s.bob).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    // Anyone of the area cancels; the request goes with it.
    let cancelled = w.cancel_wipe(&s.carol).await.unwrap();
    assert_eq!(cancelled.approval, schedule.approval);
    assert!(w.wipe_schedule(&s.ada).await.unwrap().is_none());
    assert_eq!(
        w.approve(&s.carol, schedule.approval)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(
        s.world
            .audit
            .kinds()
            .contains(&AuditEventKind::WipeCancelled)
    );

    // A hold refuses the schedule; one placed after scheduling refuses the execution.
    let hold = w
        .place_legal_hold(&s.ada, HoldScope::Custodian(id_of(&s.bob)), "Matter 9")
        .await
        .unwrap();
    assert_eq!(
        w.schedule_wipe(&s.ada, 2 * HOUR).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    let release = w
        .request_approval(&s.ada, Approvable::ReleaseLegalHold(hold.id))
        .await
        .unwrap();
    w.approve(&s.carol, release.id).await.unwrap();
    let schedule = w.schedule_wipe(&s.ada, 2 * HOUR).await.unwrap();
    approve_wipe(&s, &schedule).await;
    w.place_legal_hold(&s.ada, HoldScope::AuditLogs, "Matter 10")
        .await
        .unwrap();
    s.world.clock.advance(3 * HOUR);
    let ran = s.world.chat.run_wipes().await.unwrap();
    assert_eq!(ran[0].1.as_ref().unwrap_err().kind(), ErrorKind::Conflict);
    let refused = s
        .world
        .audit
        .events()
        .into_iter()
        .rfind(|e| e.kind == AuditEventKind::WipeExecuted)
        .unwrap();
    assert_eq!(refused.outcome, Outcome::Denied);
    // Nothing was destroyed: the workspace works.
    login(w, "bob").await;
    assert_eq!(
        w.wipe_schedule(&s.ada).await.unwrap().unwrap().phase,
        WipePhase::Scheduled
    );
}

#[tokio::test]
async fn a_wipe_cut_short_at_any_step_is_finished_by_the_next_run() {
    let s = setup().await;
    let w = &s.workspace;
    let tenant = w.tenant();
    let backup = copy_of(&s.store.inner).await;
    let schedule = w.schedule_wipe(&s.ada, 2 * HOUR).await.unwrap();
    approve_wipe(&s, &schedule).await;
    s.world.clock.advance(3 * HOUR);

    // Cut after the keys went, before the schedule said so.
    s.store.fail_on("chat.wipes", 1);
    let ran = s.world.chat.run_wipes().await.unwrap();
    assert!(ran[0].1.is_err());
    let (opened, _) = rows_that_open(&s.world, &backup, tenant).await;
    assert_eq!(opened, 0, "unreadable from the moment the keys went");
    // Cut in the middle of the removal.
    s.store.fail_on("chat.b.messages", 0);
    let ran = s.world.chat.run_wipes().await.unwrap();
    assert!(ran[0].1.is_err());
    assert!(!rows_of(&s.store.inner, tenant).await.is_empty());
    // The next run finishes.
    let ran = s.world.chat.run_wipes().await.unwrap();
    let done = ran.into_iter().next().unwrap().1.unwrap();
    assert!(matches!(done.phase, WipePhase::Done { .. }));
    assert!(rows_of(&s.store.inner, tenant).await.is_empty());
    let executed = s
        .world
        .audit
        .kinds()
        .into_iter()
        .filter(|k| *k == AuditEventKind::WipeExecuted)
        .count();
    assert_eq!(executed, 1, "executed once, whatever the retries");
}

/// The same crash, under the deployment's real audit trail: after the next run finishes the
/// wipe, both of the workspace's logs verify, and the final checkpoints are signed notes of the
/// trail's origin.
#[tokio::test]
async fn after_a_wipe_cut_short_the_real_audit_logs_verify() {
    let store = Breakable::new();
    let inner: Arc<dyn KvStore> = store.clone();
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    let key = zt_crypto::KeyId::new("tenants").unwrap();
    zt_crypto::Kms::create_key(&*kms, &key).await.unwrap();
    let keyring = Arc::new(zt_crypto::Keyring::new(
        kms,
        Arc::new(zt_storage::KvKeyRecords::standard(Arc::clone(&inner)).unwrap()),
        key,
        zt_crypto::KeyringConfig::default().kms_key_per_tenant(true),
    ));
    let system = Arc::new(EncryptingStore::new(
        Arc::clone(&inner),
        Arc::clone(&keyring),
        zt_chat::SYSTEM_TENANT,
    ));
    let trail = Arc::new(zt_audit::trail::AuditTrail::new(
        system,
        zt_audit::checkpoint::NoteSigner::new("zt.test/audit", zt_crypto::SigningKey::generate())
            .unwrap(),
        zt_audit::trail::AuditConfig::default(),
    ));
    let clock = Arc::new(zt_core::ManualClock::new(
        zt_core::Timestamp::from_unix_millis(1_764_400_000_000),
    ));
    let deps = zt_chat::Deps::with_keyring(
        Arc::clone(&inner),
        keyring,
        trail.clone(),
        trail.clone(),
        Arc::new(zt_core::InProcessBus::new(1024)),
        clock.clone(),
    );
    let chat = zt_chat::Chat::new(
        deps,
        zt_chat::ChatConfig {
            password: zt_chat::testing::fast_passwords(),
            wipe_delay_floor: HOUR,
            ..zt_chat::ChatConfig::default()
        },
    )
    .unwrap();
    let (w, _) = chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let ada = login(&w, "ada").await;
    let carol = member(&w, &ada, "carol").await;
    grant_admin(&w, &ada, id_of(&carol)).await;
    let room = w
        .create_channel(&ada, "general", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    for i in 0..20 {
        w.post(&ada, room, &format!("message {i}"), None, &[])
            .await
            .unwrap();
    }
    let tenant = w.tenant();
    let schedule = w.schedule_wipe(&ada, 2 * HOUR).await.unwrap();
    w.approve(&carol, schedule.approval).await.unwrap();
    clock.advance(3 * HOUR);
    store.fail_on("chat.b.messages", 0);
    assert!(chat.run_wipes().await.unwrap()[0].1.is_err());
    let done = chat.run_wipes().await.unwrap().remove(0).1.unwrap();
    assert!(matches!(done.phase, WipePhase::Done { .. }));
    for note in &done.checkpoints {
        assert!(
            note.contains(&tenant.to_string()) && note.contains("— zt.test/audit "),
            "a note over the workspace's log, signed by the trail: {note}"
        );
    }
    for kind in [
        zt_core::AuditLogKind::Compliance,
        zt_core::AuditLogKind::Security,
    ] {
        let verdict = zt_core::AuditLogs::verify(
            &*trail,
            &zt_core::Actor::System("test".into()),
            zt_core::AuditLogId {
                tenant: Some(tenant),
                kind,
            },
        )
        .await
        .unwrap();
        assert!(
            matches!(verdict, zt_core::AuditLogVerdict::Valid { size } if size > 0),
            "{kind:?}: {verdict:?}"
        );
    }
}

/// A workspace made before each had a KMS key of its own (its keys under the deployment's
/// shared one): its wipe still destroys its key record, and says that copies made before still
/// open, instead of claiming otherwise.
#[tokio::test]
async fn a_wipe_of_a_workspace_under_the_shared_kms_key_says_copies_still_open() {
    let store = Breakable::new();
    let inner: Arc<dyn KvStore> = store.clone();
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    let key = zt_crypto::KeyId::new("tenants").unwrap();
    zt_crypto::Kms::create_key(&*kms, &key).await.unwrap();
    let clock = Arc::new(zt_core::ManualClock::new(
        zt_core::Timestamp::from_unix_millis(1_764_400_000_000),
    ));
    let audit = Arc::new(zt_core::testing::RecordingSink::default());
    let chat = |per_tenant: bool| {
        let keyring = Arc::new(zt_crypto::Keyring::new(
            kms.clone(),
            Arc::new(zt_storage::KvKeyRecords::standard(Arc::clone(&inner)).unwrap()),
            key.clone(),
            zt_crypto::KeyringConfig::default().kms_key_per_tenant(per_tenant),
        ));
        let deps = zt_chat::Deps::with_keyring(
            Arc::clone(&inner),
            keyring,
            audit.clone(),
            audit.clone(),
            Arc::new(zt_core::InProcessBus::new(1024)),
            clock.clone(),
        );
        zt_chat::Chat::new(
            deps,
            zt_chat::ChatConfig {
                password: zt_chat::testing::fast_passwords(),
                wipe_delay_floor: HOUR,
                ..zt_chat::ChatConfig::default()
            },
        )
        .unwrap()
    };
    // Made by an earlier version: under the shared key.
    let before = chat(false);
    let (w, _) = before
        .bootstrap("Old", new_user("ada"), &password())
        .await
        .unwrap();
    let tenant = w.tenant();
    drop((w, before));
    // Wiped by this one.
    let now = chat(true);
    let w = now.workspace(tenant).await.unwrap();
    let ada = login(&w, "ada").await;
    let carol = member(&w, &ada, "carol").await;
    grant_admin(&w, &ada, id_of(&carol)).await;
    let schedule = w.schedule_wipe(&ada, 2 * HOUR).await.unwrap();
    w.approve(&carol, schedule.approval).await.unwrap();
    clock.advance(3 * HOUR);
    let done = now.run_wipes().await.unwrap().remove(0).1.unwrap();
    assert!(matches!(done.phase, WipePhase::Done { .. }));
    assert!(
        !done.kms_key_destroyed,
        "copies under the shared key still open"
    );
    assert!(rows_of(&store.inner, tenant).await.is_empty());
}
