//! Retention and legal holds on content (issue 19, items 1 and 2): what a run removes and what
//! it spares, files to tombstones, the floor, a crash in the middle of a run, a hold placed while
//! a batch is being prepared, channel deletion under a hold, and the audit of each step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests report failures by panicking"
)]

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use zt_authz::ChannelVisibility;
use zt_chat::testing::World;
use zt_chat::{
    Approvable, Approved, Caller, ErrorKind, HoldScope, PageRequest, RetentionConfig,
    RetentionPolicy, RetentionTarget, Workspace,
};
use zt_core::{AuditEventKind, AuditLogKind, ChannelId, Detail};
use zt_storage::{Batch, Entry, KeyRange, KvStore, MemoryStore, Namespace, ScanOptions, ScanPage};

use common::{grant_admin, id_of, login, member, new_user, password};

const DAY: Duration = Duration::from_secs(24 * 3600);
const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

/// The store below encryption, with two hooks on the commits of a retention run (those that
/// write the run's progress): one that fails them after a number of them (a crash), and one
/// that runs something just before the next one (a concurrent change).
struct Hooked {
    inner: MemoryStore,
    /// Retention commits still allowed; negative: no limit.
    crash_after: AtomicI64,
    before_next: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl Hooked {
    fn new() -> Arc<Self> {
        Arc::new(Hooked {
            inner: MemoryStore::new(),
            crash_after: AtomicI64::new(-1),
            before_next: Mutex::new(None),
        })
    }
}

#[async_trait]
impl KvStore for Hooked {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> zt_storage::Result<Option<Entry>> {
        self.inner.get(namespace, key).await
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> zt_storage::Result<ScanPage> {
        self.inner.scan(namespace, range, options).await
    }

    async fn commit(&self, batch: Batch) -> zt_storage::Result<zt_storage::Version> {
        let retention = batch
            .writes()
            .iter()
            .any(|w| w.namespace().as_str().ends_with("chat.retention"));
        if retention {
            let hook = self.before_next.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
            let left = self.crash_after.load(Ordering::SeqCst);
            if left == 0 {
                return Err(zt_storage::Error::unavailable("the process died", None));
            }
            if left > 0 {
                self.crash_after.store(left - 1, Ordering::SeqCst);
            }
        }
        self.inner.commit(batch).await
    }

    async fn close(&self) -> zt_storage::Result<()> {
        self.inner.close().await
    }

    async fn export(&self, sink: &mut dyn zt_storage::ExportSink) -> zt_storage::Result<u64> {
        self.inner.export(sink).await
    }
}

struct Setup {
    world: World,
    store: Arc<Hooked>,
    workspace: Arc<Workspace>,
    admin: Caller,
    /// A second administrator, who approves what the first asks.
    carol: Caller,
    bob: Caller,
    room: ChannelId,
}

impl Setup {
    /// Releases `hold` as it must be: the first administrator asks, the second approves.
    async fn release(&self, hold: zt_core::HoldId) -> zt_chat::Result<zt_chat::LegalHold> {
        let w = &self.workspace;
        let request = w
            .request_approval(&self.admin, Approvable::ReleaseLegalHold(hold))
            .await?;
        match w.approve(&self.carol, request.id).await? {
            Approved::LegalHoldReleased(hold) => Ok(hold),
            other => panic!("{other:?}"),
        }
    }
}

async fn setup(batch: usize) -> Setup {
    let store = Hooked::new();
    let world = World::with(store.clone() as Arc<dyn KvStore>, |config| {
        config.retention = RetentionConfig { floor: DAY, batch };
    })
    .await;
    let (workspace, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let admin = login(&workspace, "ada").await;
    let bob = member(&workspace, &admin, "bob").await;
    let carol = member(&workspace, &admin, "carol").await;
    grant_admin(&workspace, &admin, id_of(&carol)).await;
    let room = workspace
        .create_channel(&admin, "general", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    workspace
        .add_member(&admin, room, id_of(&bob))
        .await
        .unwrap();
    Setup {
        world,
        store,
        workspace,
        admin,
        carol,
        bob,
        room,
    }
}

fn month_policy() -> Option<RetentionPolicy> {
    Some(RetentionPolicy {
        messages: Some(MONTH),
        files: Some(MONTH),
    })
}

async fn bodies(workspace: &Workspace, caller: &Caller, channel: ChannelId) -> Vec<String> {
    workspace
        .messages(caller, channel, PageRequest::Latest { limit: 200 })
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| {
            if m.deleted.is_some() {
                "(deleted)".to_owned()
            } else {
                m.body
            }
        })
        .collect()
}

/// How many rows the tenant's history namespace holds.
async fn history_rows(s: &Setup) -> usize {
    let store = s.world.tenant_store(s.workspace.tenant()).await;
    let ns = Namespace::new("chat.b.message_history").unwrap();
    store
        .scan(&ns, &KeyRange::all(), ScanOptions::default())
        .await
        .unwrap()
        .entries
        .len()
}

fn manifests(world: &World) -> Vec<zt_core::AuditEvent> {
    world
        .audit
        .events()
        .into_iter()
        .filter(|e| {
            e.kind == AuditEventKind::RetentionCleanup && e.target.as_deref() == Some("content")
        })
        .collect()
}

fn number(event: &zt_core::AuditEvent, name: &str) -> i64 {
    match event.details.get(name) {
        Some(Detail::Number(n)) => *n,
        other => panic!("{name}: {other:?}"),
    }
}

fn text(event: &zt_core::AuditEvent, name: &str) -> String {
    match event.details.get(name) {
        Some(Detail::Text(t)) => t.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn messages_past_the_period_go_with_their_history_and_newer_ones_stay() {
    let s = setup(500).await;
    let w = &s.workspace;
    let edited = w
        .post(&s.bob, s.room, "first draft", None, &[])
        .await
        .unwrap();
    w.edit(&s.bob, s.room, edited.id, "second draft")
        .await
        .unwrap();
    w.edit(&s.bob, s.room, edited.id, "final").await.unwrap();
    let deleted = w.post(&s.bob, s.room, "oops", None, &[]).await.unwrap();
    w.delete_message(&s.bob, s.room, deleted.id).await.unwrap();
    assert_eq!(history_rows(&s).await, 3);

    // Nothing is past a period nobody set: the default keeps everything.
    s.world.clock.advance(MONTH + DAY);
    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().messages, 0);

    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    w.post(&s.bob, s.room, "fresh", None, &[]).await.unwrap();
    let report = w.run_retention(&s.admin).await.unwrap();
    let totals = report.totals();
    assert_eq!(
        (totals.messages, totals.revisions, totals.spared),
        (2, 3, 0)
    );
    assert_eq!(report.channels[&s.room].messages, 2);
    assert!(!report.resumed);
    assert_eq!(bodies(w, &s.admin, s.room).await, ["fresh"]);
    assert_eq!(history_rows(&s).await, 0, "the earlier texts went too");

    // The manifest names the policy, the counts per channel, and who ran it.
    let manifest = manifests(&s.world).pop().unwrap();
    assert_eq!(manifest.actor, zt_core::Actor::User(id_of(&s.admin)));
    assert_eq!(number(&manifest, "messages"), 2);
    assert_eq!(number(&manifest, "revisions"), 3);
    assert_eq!(number(&manifest, "parts"), 1);
    assert!(text(&manifest, "policy").contains(&format!("messages {}s", MONTH.as_secs())));
    assert!(text(&manifest, "channels").contains(&format!("{}=messages:2,", s.room)));

    // A second run finds nothing more.
    assert_eq!(
        w.run_retention(&s.admin).await.unwrap().totals().messages,
        0
    );
}

/// A client that shows a channel drops what retention removed: each committed batch is
/// announced with its messages, to those who may read the channel and to no one else.
#[tokio::test]
async fn clients_hear_which_messages_a_run_removed_where_they_may_read() {
    let s = setup(2).await;
    let w = &s.workspace;
    let secret = w
        .create_channel(&s.admin, "secret", ChannelVisibility::Private, "")
        .await
        .unwrap()
        .id;
    let mut old = Vec::new();
    for i in 0..5 {
        let message = w
            .post(&s.bob, s.room, &format!("old {i}"), None, &[])
            .await
            .unwrap();
        old.push(message.id);
    }
    w.post(&s.admin, secret, "an old secret", None, &[])
        .await
        .unwrap();
    s.world.clock.advance(MONTH + DAY);
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    w.post(&s.bob, s.room, "fresh", None, &[]).await.unwrap();
    let (bob, _) = w.login("bob", &password(), None).await.unwrap();
    let mut bobs = w.subscribe(&bob).await.unwrap();
    let (ada, _) = w.login("ada", &password(), None).await.unwrap();
    let mut adas = w.subscribe(&ada).await.unwrap();

    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().messages, 6);
    let removed = |feed: &mut zt_chat::Subscription| {
        let mut heard = Vec::new();
        for (channel, messages) in common::removals(feed) {
            assert!(messages.len() <= 2, "one event a batch");
            heard.extend(messages.into_iter().map(|m| (channel, m)));
        }
        heard
    };
    old.sort_unstable();
    let in_room: Vec<_> = old.iter().map(|m| (s.room, *m)).collect();
    assert_eq!(
        removed(&mut bobs),
        in_room,
        "nothing of the private channel"
    );
    let heard = removed(&mut adas);
    assert_eq!(heard.len(), 6);
    assert!(heard.iter().any(|(c, _)| *c == secret));
}

#[tokio::test]
async fn a_channel_override_replaces_the_workspace_policy_and_the_floor_holds() {
    let s = setup(500).await;
    let w = &s.workspace;
    let kept = w
        .create_channel(&s.admin, "records", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    w.post(&s.admin, kept, "kept for ever", None, &[])
        .await
        .unwrap();
    w.post(&s.admin, s.room, "goes", None, &[]).await.unwrap();
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    let settings = w
        .set_retention(
            &s.admin,
            RetentionTarget::Channel(kept),
            Some(RetentionPolicy::default()),
        )
        .await
        .unwrap();
    assert_eq!(settings.for_channel(kept), RetentionPolicy::default());
    assert_eq!(settings.for_channel(s.room), month_policy().unwrap());
    assert_eq!(w.retention(&s.admin).await.unwrap(), settings);

    // Shorter than the deployment's floor, or in an unknown channel: refused, nothing changed.
    let short = Some(RetentionPolicy {
        messages: Some(DAY - Duration::from_secs(1)),
        files: None,
    });
    for target in [RetentionTarget::Workspace, RetentionTarget::Channel(kept)] {
        let refused = w.set_retention(&s.admin, target, short).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{target:?}");
    }
    let unknown = ChannelId::from_bytes([3; 16]);
    let refused = w
        .set_retention(&s.admin, RetentionTarget::Channel(unknown), month_policy())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound);
    assert_eq!(w.retention(&s.admin).await.unwrap(), settings);

    // A member may neither read nor set it, nor run it; the refusal is recorded.
    let refused = w.retention(&s.bob).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let refused = w
        .set_retention(&s.bob, RetentionTarget::Workspace, None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    assert_eq!(
        w.run_retention(&s.bob).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    assert!(
        s.world
            .audit
            .kinds()
            .contains(&AuditEventKind::AdminAccessDenied)
    );

    s.world.clock.advance(MONTH + DAY);
    w.run_retention(&s.admin).await.unwrap();
    assert_eq!(bodies(w, &s.admin, kept).await, ["kept for ever"]);
    assert!(bodies(w, &s.admin, s.room).await.is_empty());

    // Removing the override: the channel follows the workspace again.
    w.set_retention(&s.admin, RetentionTarget::Channel(kept), None)
        .await
        .unwrap();
    w.run_retention(&s.admin).await.unwrap();
    assert!(bodies(w, &s.admin, kept).await.is_empty());
    let changes = s
        .world
        .audit
        .events()
        .into_iter()
        .filter(|e| {
            e.kind == AuditEventKind::SettingsChanged && e.target.as_deref() == Some("retention")
        })
        .count();
    assert_eq!(
        changes, 3,
        "each accepted change is recorded, no refused one"
    );
}

#[tokio::test]
async fn holds_keep_a_custodians_and_a_channels_content_with_history_and_later_deletions() {
    let s = setup(2).await;
    let w = &s.workspace;
    let ada = id_of(&s.admin);
    let bob = id_of(&s.bob);
    let quiet = w
        .create_channel(&s.admin, "quiet", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    w.post(&s.admin, s.room, "ada in general", None, &[])
        .await
        .unwrap();
    let bobs = w
        .post(&s.bob, s.room, "bob's plan", None, &[])
        .await
        .unwrap();
    w.edit(&s.bob, s.room, bobs.id, "bob's revised plan")
        .await
        .unwrap();
    let later = w
        .post(&s.bob, s.room, "bob's confession", None, &[])
        .await
        .unwrap();
    w.post(&s.admin, quiet, "ada in quiet", None, &[])
        .await
        .unwrap();

    let custodian = w
        .place_legal_hold(&s.admin, HoldScope::Custodian(bob), "Matter 2026-114")
        .await
        .unwrap();
    // Holds list by start time; within one millisecond of the test clock, by random id.
    s.world.clock.advance(Duration::from_millis(1));
    let channel = w
        .place_legal_hold(&s.admin, HoldScope::Channel(quiet), "Matter 2026-115")
        .await
        .unwrap();
    assert_eq!(custodian.owner, ada);
    assert_eq!(
        w.legal_holds(&s.admin).await.unwrap(),
        [custodian.clone(), channel.clone()]
    );
    // Deleted after the hold began: the text moves to the history, which the hold keeps.
    w.delete_message(&s.bob, s.room, later.id).await.unwrap();

    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    s.world.clock.advance(MONTH + DAY);
    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().messages, 1, "only ada's message in general");
    assert_eq!(report.spared_by[&custodian.id], 2);
    assert_eq!(report.spared_by[&channel.id], 1);
    // Posted in the same millisecond of the test clock: their order is the ids' random bits.
    let mut left = bodies(w, &s.admin, s.room).await;
    left.sort();
    assert_eq!(left, ["(deleted)", "bob's revised plan"]);
    assert_eq!(bodies(w, &s.admin, quiet).await, ["ada in quiet"]);
    assert_eq!(
        history_rows(&s).await,
        2,
        "the edit's and the deletion's earlier texts"
    );
    let manifest = manifests(&s.world).pop().unwrap();
    let holds = text(&manifest, "holds");
    assert!(holds.contains(&format!("{}=2", custodian.id)), "{holds}");
    assert!(holds.contains(&format!("{}=1", channel.id)), "{holds}");

    // Placing and releasing are recorded with the hold, its scope and (placing) its reason.
    let placed = s
        .world
        .audit
        .events()
        .into_iter()
        .find(|e| e.kind == AuditEventKind::LegalHoldPlaced)
        .unwrap();
    assert_eq!(
        placed.target.as_deref(),
        Some(custodian.id.to_string().as_str())
    );
    assert_eq!(text(&placed, "scope"), "custodian");
    assert_eq!(text(&placed, "held"), bob.to_string());
    assert_eq!(text(&placed, "reason"), "Matter 2026-114");

    // Released: what they kept is subject to retention again.
    s.release(custodian.id).await.unwrap();
    s.release(channel.id).await.unwrap();
    assert!(
        s.world
            .audit
            .kinds()
            .contains(&AuditEventKind::LegalHoldReleased)
    );
    assert_eq!(
        s.release(channel.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().messages, 3);
    assert_eq!(history_rows(&s).await, 0);
}

#[tokio::test]
async fn only_the_privacy_area_places_holds_and_a_hold_needs_a_real_subject_and_reason() {
    let s = setup(500).await;
    let w = &s.workspace;
    let bob = id_of(&s.bob);
    let refused = w
        .place_legal_hold(&s.bob, HoldScope::Custodian(bob), "me")
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    assert_eq!(
        w.legal_holds(&s.bob).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    for (scope, reason, kind) in [
        (HoldScope::Custodian(bob), "", ErrorKind::InvalidInput),
        (
            HoldScope::Custodian(bob),
            "case\u{1b}[2J",
            ErrorKind::InvalidInput,
        ),
        (
            HoldScope::Custodian(zt_core::UserId::from_bytes([4; 16])),
            "case",
            ErrorKind::NotFound,
        ),
        (
            HoldScope::Channel(ChannelId::from_bytes([4; 16])),
            "case",
            ErrorKind::NotFound,
        ),
    ] {
        let refused = w
            .place_legal_hold(&s.admin, scope, reason)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), kind, "{scope:?} {reason:?}");
    }
    assert!(w.legal_holds(&s.admin).await.unwrap().is_empty());
    assert!(
        !s.world
            .audit
            .kinds()
            .contains(&AuditEventKind::LegalHoldPlaced)
    );
}

#[tokio::test]
async fn the_audit_log_hold_is_one_case_of_the_same_model() {
    let s = setup(500).await;
    let w = &s.workspace;
    let first = w
        .place_legal_hold(&s.admin, HoldScope::AuditLogs, "regulator's request")
        .await
        .unwrap();
    let second = w
        .place_legal_hold(&s.admin, HoldScope::AuditLogs, "second matter")
        .await
        .unwrap();
    assert!(
        w.audit_retention(&s.admin)
            .await
            .unwrap()
            .security
            .legal_hold
    );
    s.release(first.id).await.unwrap();
    assert!(
        w.audit_retention(&s.admin)
            .await
            .unwrap()
            .security
            .legal_hold,
        "another hold on the logs still stands"
    );
    s.release(second.id).await.unwrap();
    let retention = w.audit_retention(&s.admin).await.unwrap();
    assert!(!retention.security.legal_hold && !retention.compliance.legal_hold);

    // The older switch speaks the same model: on places a hold, off releases every one.
    w.set_audit_legal_hold(&s.admin, true).await.unwrap();
    let holds = w.legal_holds(&s.admin).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].scope, HoldScope::AuditLogs);
    assert!(
        w.audit_retention(&s.admin)
            .await
            .unwrap()
            .compliance
            .legal_hold
    );
    let refused = w
        .prune_audit(&s.admin, AuditLogKind::Security, 1)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    // Releasing takes a second person: the switch refuses, the approval releases.
    let refused = w.set_audit_legal_hold(&s.admin, false).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    s.release(holds[0].id).await.unwrap();
    w.set_audit_legal_hold(&s.admin, false).await.unwrap();
    assert!(w.legal_holds(&s.admin).await.unwrap().is_empty());
    assert!(
        !w.audit_retention(&s.admin)
            .await
            .unwrap()
            .security
            .legal_hold
    );
}

#[tokio::test]
async fn files_past_their_period_leave_tombstones_without_content() {
    let s = setup(500).await;
    let w = &s.workspace;
    let mut upload = w
        .upload(&s.bob, s.room, "report.pdf", "application/pdf")
        .await
        .unwrap();
    upload
        .write(&vec![7u8; zt_chat::files::CHUNK + 10])
        .await
        .unwrap();
    let old = upload.finish(Some(b"thumbnail")).await.unwrap();
    w.set_retention(
        &s.admin,
        RetentionTarget::Workspace,
        Some(RetentionPolicy {
            messages: None,
            files: Some(MONTH),
        }),
    )
    .await
    .unwrap();
    s.world.clock.advance(MONTH + DAY);
    let mut upload = w
        .upload(&s.bob, s.room, "new.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"new").await.unwrap();
    let new = upload.finish(None).await.unwrap();

    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().files, 1);
    let tombstone = w.file(&s.bob, s.room, old.id).await.unwrap();
    assert!(tombstone.expired.is_some() && tombstone.deleted.is_none());
    assert!(tombstone.is_removed());
    assert_eq!(
        tombstone.name.as_deref(),
        Some("report.pdf"),
        "who uploaded what, when"
    );
    assert_eq!(
        w.download(&s.bob, s.room, old.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(w.preview(&s.bob, s.room, old.id).await.unwrap(), None);
    let store = s.world.tenant_store(w.tenant()).await;
    let chunks = store
        .scan(
            &Namespace::new("chat.b.file_chunks").unwrap(),
            &KeyRange::all(),
            ScanOptions::default(),
        )
        .await
        .unwrap()
        .entries;
    assert_eq!(chunks.len(), 1, "only the new file's chunk is left");
    let mut download = w.download(&s.bob, s.room, new.id).await.unwrap();
    assert_eq!(download.next_chunk().await.unwrap().unwrap(), b"new");
    assert!(
        w.delete_file(&s.bob, s.room, old.id, false)
            .await
            .unwrap()
            .expired
            .is_some()
    );

    // The data check counts the tombstone as one, not as a file missing its chunks.
    assert!(s.world.chat.check_data(w.tenant()).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_run_that_crashed_half_way_is_finished_by_the_next_with_every_count() {
    let s = setup(2).await;
    let w = &s.workspace;
    for i in 0..7 {
        w.post(&s.bob, s.room, &format!("old {i}"), None, &[])
            .await
            .unwrap();
    }
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    s.world.clock.advance(MONTH + DAY);
    w.post(&s.bob, s.room, "new", None, &[]).await.unwrap();

    // Two batches of two messages commit, then the process "dies".
    s.store.crash_after.store(2, Ordering::SeqCst);
    let crashed = w.run_retention(&s.admin).await.unwrap_err();
    assert_eq!(crashed.kind(), ErrorKind::Unavailable);
    assert_eq!(
        bodies(w, &s.admin, s.room).await.len(),
        4,
        "3 old and the new one"
    );
    assert!(
        manifests(&s.world).is_empty(),
        "no manifest for a run that did not end"
    );

    s.store.crash_after.store(-1, Ordering::SeqCst);
    // The next run, a day later, resumes the first: its periods count from when it began.
    s.world.clock.advance(DAY);
    let report = w.run_retention(&s.admin).await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        report.totals().messages,
        7,
        "the counts before the crash are kept"
    );
    assert_eq!(bodies(w, &s.admin, s.room).await, ["new"]);
    let manifest = manifests(&s.world).pop().unwrap();
    assert_eq!(number(&manifest, "messages"), 7);
    assert_eq!(manifest.details.get("resumed"), Some(&Detail::Flag(true)));

    // And the one after that starts afresh.
    assert!(!w.run_retention(&s.admin).await.unwrap().resumed);
}

#[tokio::test]
async fn a_hold_placed_while_a_batch_is_prepared_keeps_what_it_covers() {
    let s = setup(500).await;
    let w = Arc::clone(&s.workspace);
    let bob = id_of(&s.bob);
    w.post(&s.bob, s.room, "bob's old words", None, &[])
        .await
        .unwrap();
    w.post(&s.admin, s.room, "ada's old words", None, &[])
        .await
        .unwrap();
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    s.world.clock.advance(MONTH + DAY);

    // The hold lands after the run read the holds and prepared its first batch, just before
    // that batch commits.
    let (hook_workspace, admin) = (Arc::clone(&w), s.admin);
    *s.store.before_next.lock().unwrap() = Some(Box::pin(async move {
        hook_workspace
            .place_legal_hold(&admin, HoldScope::Custodian(bob), "late matter")
            .await
            .unwrap();
    }));
    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().messages, 1);
    assert_eq!(report.totals().spared, 1);
    assert_eq!(bodies(&w, &s.admin, s.room).await, ["bob's old words"]);
}

/// The run reads the policy once; a change made while a batch is prepared fails that batch, and
/// the run goes on under the new policy (here: keep everything), removing nothing more.
#[tokio::test]
async fn a_policy_changed_while_a_batch_is_prepared_applies_at_once() {
    let s = setup(500).await;
    let w = Arc::clone(&s.workspace);
    for i in 0..3 {
        w.post(&s.admin, s.room, &format!("old words {i}"), None, &[])
            .await
            .unwrap();
    }
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    s.world.clock.advance(MONTH + DAY);
    let (hook_workspace, admin) = (Arc::clone(&w), s.admin);
    *s.store.before_next.lock().unwrap() = Some(Box::pin(async move {
        hook_workspace
            .set_retention(&admin, RetentionTarget::Workspace, None)
            .await
            .unwrap();
    }));
    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.totals().messages, 0, "{report:?}");
    assert_eq!(bodies(&w, &s.admin, s.room).await.len(), 3);
}

#[tokio::test]
async fn a_channel_whose_content_is_held_cannot_be_deleted() {
    let s = setup(500).await;
    let w = &s.workspace;
    let bob = id_of(&s.bob);
    let other = w
        .create_channel(&s.admin, "other", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    let files = w
        .create_channel(&s.admin, "files", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    w.add_member(&s.admin, files, bob).await.unwrap();
    w.post(&s.bob, s.room, "bob was here", None, &[])
        .await
        .unwrap();
    w.post(&s.admin, other, "only ada", None, &[])
        .await
        .unwrap();
    let mut upload = w
        .upload(&s.bob, files, "a.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"a").await.unwrap();
    upload.finish(None).await.unwrap();

    let hold = w
        .place_legal_hold(&s.admin, HoldScope::Custodian(bob), "Matter 7")
        .await
        .unwrap();
    for held in [s.room, files] {
        let refused = w.delete_channel(&s.admin, held).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Conflict, "{held}");
    }
    assert_eq!(bodies(w, &s.admin, s.room).await, ["bob was here"]);
    // A channel the custodian never wrote in goes.
    w.delete_channel(&s.admin, other).await.unwrap();

    s.release(hold.id).await.unwrap();
    let on_channel = w
        .place_legal_hold(&s.admin, HoldScope::Channel(s.room), "Matter 8")
        .await
        .unwrap();
    assert_eq!(
        w.delete_channel(&s.admin, s.room).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    w.delete_channel(&s.admin, files).await.unwrap();
    s.release(on_channel.id).await.unwrap();
    w.delete_channel(&s.admin, s.room).await.unwrap();

    // Retention reads past the deleted channels' file records (their key is destroyed).
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    let report = w.run_retention(&s.admin).await.unwrap();
    assert_eq!(report.unreadable_files, 1);
}

#[tokio::test]
async fn the_schedule_runs_every_workspace_as_the_system() {
    let s = setup(500).await;
    let w = &s.workspace;
    w.post(&s.bob, s.room, "old", None, &[]).await.unwrap();
    w.set_retention(&s.admin, RetentionTarget::Workspace, month_policy())
        .await
        .unwrap();
    // A second workspace keeps everything: the schedule passes it over, with no manifest.
    s.world
        .chat
        .bootstrap("Other", new_user("eve"), &password())
        .await
        .unwrap();
    s.world.clock.advance(MONTH + DAY);
    let results = s.world.chat.run_retention().await.unwrap();
    assert_eq!(results.len(), 1);
    let (tenant, report) = &results[0];
    assert_eq!(*tenant, w.tenant());
    assert_eq!(report.as_ref().unwrap().totals().messages, 1);
    let all = manifests(&s.world);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].actor, zt_core::Actor::System("retention".into()));
    assert_eq!(all[0].tenant, Some(w.tenant()));
}

#[tokio::test]
async fn releasing_a_hold_takes_a_second_person_within_the_window() {
    let s = setup(500).await;
    let w = &s.workspace;
    let hold = w
        .place_legal_hold(&s.admin, HoldScope::Custodian(id_of(&s.bob)), "Matter 9")
        .await
        .unwrap();
    let action = Approvable::ReleaseLegalHold(hold.id);

    // A member may not ask; an unknown hold cannot be asked about.
    let refused = w.request_approval(&s.bob, action).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let unknown = Approvable::ReleaseLegalHold(zt_core::HoldId::from_bytes([5; 16]));
    let refused = w.request_approval(&s.admin, unknown).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound);

    // The one who asked cannot approve; the attempt is on record, and nothing is released.
    let request = w.request_approval(&s.admin, action).await.unwrap();
    assert_eq!(
        w.approvals(&s.carol).await.unwrap(),
        std::slice::from_ref(&request)
    );
    let refused = w.approve(&s.admin, request.id).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let denied = s
        .world
        .audit
        .events()
        .into_iter()
        .find(|e| e.kind == AuditEventKind::ApprovalGranted)
        .unwrap();
    assert_eq!(denied.outcome, zt_core::Outcome::Denied);
    assert_eq!(text(&denied, "reason"), "same_person");
    // Nor may a member approve.
    let refused = w.approve(&s.bob, request.id).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    assert_eq!(
        w.legal_holds(&s.admin).await.unwrap(),
        std::slice::from_ref(&hold)
    );

    // Past the window the request is refused and gone.
    s.world.clock.advance(DAY + Duration::from_secs(1));
    let refused = w.approve(&s.carol, request.id).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    assert!(w.approvals(&s.carol).await.unwrap().is_empty());
    assert_eq!(
        w.approve(&s.carol, request.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Asked again and approved by another administrator: released, once.
    let request = w.request_approval(&s.admin, action).await.unwrap();
    let Approved::LegalHoldReleased(released) = w.approve(&s.carol, request.id).await.unwrap()
    else {
        panic!("not a release")
    };
    assert_eq!(released.id, hold.id);
    assert!(w.legal_holds(&s.admin).await.unwrap().is_empty());
    assert_eq!(
        w.approve(&s.carol, request.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let released = s
        .world
        .audit
        .events()
        .into_iter()
        .find(|e| e.kind == AuditEventKind::LegalHoldReleased)
        .unwrap();
    assert_eq!(released.actor, zt_core::Actor::User(id_of(&s.carol)));
    assert_eq!(text(&released, "requested_by"), id_of(&s.admin).to_string());
    assert!(
        s.world
            .audit
            .kinds()
            .contains(&AuditEventKind::ApprovalRequested)
    );
}
