//! Backups (issue 20, item 3): taken by an operator, restored into an empty store through the
//! KMS and, with the KMS gone, through the offline recovery identity; a wipe reaches old
//! backups by both paths; tampering refused; key rotation; who may.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests report failures by panicking"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use zt_authz::ChannelVisibility;
use zt_chat::testing::World;
use zt_chat::{
    BackupInfo, BackupKeys, BackupSettings, Caller, ErrorKind, FileInfo, PageRequest, Workspace,
    restore_archive,
};
use zt_core::{AuditEvent, AuditEventKind, ChannelId, Outcome};
use zt_crypto::archive::ArchiveIdentity;
use zt_crypto::{KdfParams, Kms, LocalKms, SigningKey};
use zt_storage::{KvStore, MemoryStore};

use common::{grant_admin, id_of, login, member, new_user, password};

const HOUR: Duration = Duration::from_secs(3600);

struct Deployment {
    dir: tempfile::TempDir,
    world: World,
    kms: Arc<LocalKms>,
    offline: ArchiveIdentity,
    signer: Arc<SigningKey>,
    workspace: Arc<Workspace>,
    ada: Caller,
    bob: Caller,
    room: ChannelId,
    file: FileInfo,
}

impl Deployment {
    fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }
}

fn pass(text: &str) -> SecretString {
    SecretString::from(text)
}

/// A deployment on a local KMS with backups managed from workspace "Acme", which has a
/// channel with messages (one edited) and a file.
async fn deployment() -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let kms = Arc::new(
        LocalKms::create(
            &dir.path().join("kms.json"),
            &pass("the deployment's passphrase"),
            KdfParams::insecure_for_tests(),
        )
        .await
        .unwrap(),
    );
    let world = World::with_kms(Arc::new(MemoryStore::new()), kms.clone(), |config| {
        config.wipe_delay_floor = HOUR;
    })
    .await;
    let (workspace, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let offline = ArchiveIdentity::generate();
    let signer = Arc::new(SigningKey::generate());
    let world = world.with_backups(BackupSettings {
        dir: dir.path().join("backups"),
        recovery: vec![offline.recipient()],
        kms: kms.clone(),
        signer: Arc::clone(&signer),
        operators: workspace.tenant(),
    });
    let workspace = world.chat.workspace(workspace.tenant()).await.unwrap();
    let ada = login(&workspace, "ada").await;
    let bob = member(&workspace, &ada, "bob").await;
    let room = workspace
        .create_channel(&ada, "general", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    workspace.add_member(&ada, room, id_of(&bob)).await.unwrap();
    let said = workspace
        .post(&bob, room, "first plans", None, &[])
        .await
        .unwrap();
    workspace
        .edit(&bob, room, said.id, "first real plans")
        .await
        .unwrap();
    // Messages of one millisecond have no order between them; the world's clock stands still.
    world.clock.advance(Duration::from_secs(1));
    workspace
        .post(&ada, room, "second thoughts", None, &[])
        .await
        .unwrap();
    let mut upload = workspace
        .upload(&bob, room, "plans.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"the plans themselves").await.unwrap();
    let file = upload.finish(None).await.unwrap();
    Deployment {
        dir,
        world,
        kms,
        offline,
        signer,
        workspace,
        ada,
        bob,
        room,
        file,
    }
}

fn events_of(world: &World, kind: AuditEventKind) -> Vec<AuditEvent> {
    world
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// The texts of a channel, oldest first, as `name` reads them in the restored world.
async fn texts(
    world: &World,
    tenant: zt_core::TenantId,
    name: &str,
    room: ChannelId,
) -> Vec<String> {
    let workspace = world.chat.workspace(tenant).await.unwrap();
    let caller = login(&workspace, name).await;
    let page = workspace
        .messages(&caller, room, PageRequest::Latest { limit: 50 })
        .await
        .unwrap();
    page.messages.into_iter().map(|m| m.body).collect()
}

/// Whether the workspace could not open because its key is destroyed.
fn key_destroyed(e: &zt_chat::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<zt_crypto::Error>())
        .is_some_and(|c| c.kind() == zt_crypto::ErrorKind::KeyDestroyed)
}

/// The identity of the backup key `info` is sealed to, through the deployment's KMS.
async fn backup_identity(d: &Deployment, info: &BackupInfo) -> ArchiveIdentity {
    let keys = BackupKeys::open(&d.backups(), d.kms.clone()).unwrap();
    keys.identity(&info.backup_key).await.unwrap()
}

/// Backup `info` restored with `identity` into a new memory store.
async fn restore_with(
    d: &Deployment,
    info: &BackupInfo,
    identity: ArchiveIdentity,
) -> Arc<dyn KvStore> {
    let restored: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    restore_archive(
        &archive(&d.backups(), info),
        identity,
        d.signer.verifying_key(),
        Arc::clone(&restored),
    )
    .await
    .unwrap();
    restored
}

/// A new KMS made from the recovery kit beside the backups with the offline identity, under a
/// new passphrase.
async fn recover_kms(d: &Deployment) -> Arc<LocalKms> {
    let kit = std::fs::read(d.backups().join("recovery-kit.zt-kit")).unwrap();
    Arc::new(
        LocalKms::recover(
            &kit,
            &d.offline,
            &d.signer.verifying_key(),
            &d.dir.path().join("recovered-kms.json"),
            &pass("a new passphrase"),
            KdfParams::insecure_for_tests(),
        )
        .await
        .unwrap(),
    )
}

fn archive(dir: &Path, info: &BackupInfo) -> PathBuf {
    dir.join(format!("{}.zt-backup", info.id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_through_the_kms_and_through_the_recovery_identity() {
    let d = deployment().await;
    let info = d.workspace.create_backup(&d.ada).await.unwrap();
    assert!(info.rows > 0 && info.size > 0);
    assert_eq!(
        d.workspace.backups(&d.ada).await.unwrap(),
        std::slice::from_ref(&info)
    );
    let manifest = d.workspace.verify_backup(&d.ada, &info.id).await.unwrap();
    assert_eq!(manifest.metadata["backup"], info.id);
    let created = events_of(&d.world, AuditEventKind::BackupCreated);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].target.as_deref(), Some(info.id.as_str()));
    let tenant = d.workspace.tenant();
    let expected = texts(&d.world, tenant, "bob", d.room).await;
    assert_eq!(expected, ["first real plans", "second thoughts"]);

    // Through the KMS: the backup key opens the archive, the same KMS the workspace keys.
    let keys = BackupKeys::open(&d.backups(), d.kms.clone()).unwrap();
    let identity = keys.identity(&info.backup_key).await.unwrap();
    let restored: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let done = restore_archive(
        &archive(&d.backups(), &info),
        identity.clone(),
        d.signer.verifying_key(),
        Arc::clone(&restored),
    )
    .await
    .unwrap();
    assert_eq!(done.rows, info.rows);
    let again = World::with_kms(Arc::clone(&restored), d.kms.clone(), |_| {}).await;
    assert_eq!(texts(&again, tenant, "bob", d.room).await, expected);
    let file_bytes = {
        let workspace = again.chat.workspace(tenant).await.unwrap();
        let bob = login(&workspace, "bob").await;
        let mut download = workspace.download(&bob, d.room, d.file.id).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = download.next_chunk().await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    };
    assert_eq!(file_bytes, b"the plans themselves");
    // A store that holds rows is never restored over.
    let refused = restore_archive(
        &archive(&d.backups(), &info),
        identity,
        d.signer.verifying_key(),
        Arc::clone(&restored),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);

    // Through the recovery identity, the KMS's file and passphrase gone: the kit beside the
    // backups gives a new KMS under a new passphrase.
    std::fs::remove_file(d.dir.path().join("kms.json")).unwrap();
    let recovered = recover_kms(&d).await;
    let restored = restore_with(&d, &info, d.offline.clone()).await;
    let recovered_world = World::with_kms(restored, recovered, |_| {}).await;
    assert_eq!(
        texts(&recovered_world, tenant, "bob", d.room).await,
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_makes_a_workspace_unreadable_in_old_backups_by_both_paths() {
    let d = deployment().await;
    // A second workspace, to be wiped; its admins approve each other.
    let (doomed, _) = d
        .world
        .chat
        .bootstrap("Doomed", new_user("dora"), &password())
        .await
        .unwrap();
    let dora = login(&doomed, "dora").await;
    let eve = member(&doomed, &dora, "eve").await;
    grant_admin(&doomed, &dora, id_of(&eve)).await;
    let room = doomed
        .create_channel(&dora, "plans", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    doomed
        .post(&dora, room, "doomed secrets", None, &[])
        .await
        .unwrap();
    let info = d.workspace.create_backup(&d.ada).await.unwrap();

    let schedule = doomed.schedule_wipe(&dora, 2 * HOUR).await.unwrap();
    doomed.approve(&eve, schedule.approval).await.unwrap();
    d.world.clock.advance(3 * HOUR);
    let ran = d.world.chat.run_wipes().await.unwrap();
    assert_eq!(ran.len(), 1);
    assert!(ran[0].1.is_ok(), "{:?}", ran[0].1);
    let (acme, doomed_tenant) = (d.workspace.tenant(), doomed.tenant());

    // Through the KMS: Acme comes back; the doomed workspace's key is gone from the KMS.
    let restored = restore_with(&d, &info, backup_identity(&d, &info).await).await;
    let again = World::with_kms(restored, d.kms.clone(), |_| {}).await;
    assert_eq!(texts(&again, acme, "bob", d.room).await.len(), 2);
    let gone = again
        .chat
        .workspace(doomed_tenant)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(key_destroyed(&gone), "{gone:?}");

    // Through the recovery identity: the kit was written again after the wipe, without it.
    let recovered = recover_kms(&d).await;
    let doomed_key = zt_crypto::KeyId::new(&format!("tenants/{doomed_tenant}")).unwrap();
    let versions = recovered.key_versions(&doomed_key).await;
    assert!(
        versions.as_ref().map_or(true, |v| v.is_empty()),
        "the recovered KMS still holds the wiped workspace's key: {versions:?}"
    );
    let restored = restore_with(&d, &info, d.offline.clone()).await;
    let recovered_world = World::with_kms(restored, recovered, |_| {}).await;
    assert_eq!(texts(&recovered_world, acme, "bob", d.room).await.len(), 2);
    let gone = recovered_world
        .chat
        .workspace(doomed_tenant)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(key_destroyed(&gone), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_or_swapped_backup_is_refused_and_named() {
    let d = deployment().await;
    let first = d.workspace.create_backup(&d.ada).await.unwrap();
    d.workspace
        .post(&d.bob, d.room, "later", None, &[])
        .await
        .unwrap();
    d.world.clock.advance(Duration::from_secs(2));
    let second = d.workspace.create_backup(&d.ada).await.unwrap();
    assert_eq!(
        d.workspace.backups(&d.ada).await.unwrap(),
        [first.clone(), second.clone()]
    );

    // One byte changed inside the archive.
    let path = archive(&d.backups(), &first);
    let original = std::fs::read(&path).unwrap();
    let mut altered = original.clone();
    let at = altered.len() / 2;
    altered[at] ^= 1;
    std::fs::write(&path, &altered).unwrap();
    let refused = d
        .workspace
        .verify_backup(&d.ada, &first.id)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");
    let keys = BackupKeys::open(&d.backups(), d.kms.clone()).unwrap();
    let identity = keys.identity(&first.backup_key).await.unwrap();
    let refused = restore_archive(
        &path,
        identity.clone(),
        d.signer.verifying_key(),
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");

    // The second archive put in the first one's place: it verifies, but is not the file the
    // catalog describes.
    std::fs::copy(archive(&d.backups(), &second), &path).unwrap();
    let refused = d
        .workspace
        .verify_backup(&d.ada, &first.id)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");
    std::fs::write(&path, &original).unwrap();
    d.workspace.verify_backup(&d.ada, &first.id).await.unwrap();

    // Signed by another server: refused on restore.
    let stranger = SigningKey::generate();
    let refused = restore_archive(
        &path,
        identity,
        stranger.verifying_key(),
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");

    // Deleting one leaves the other.
    d.workspace.delete_backup(&d.ada, &first.id).await.unwrap();
    assert_eq!(d.workspace.backups(&d.ada).await.unwrap(), [second]);
    assert_eq!(
        d.workspace
            .verify_backup(&d.ada, &first.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        d.workspace
            .verify_backup(&d.ada, "../keys")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(events_of(&d.world, AuditEventKind::BackupDeleted).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_new_backups_use_the_new_key_and_old_ones_still_open() {
    let d = deployment().await;
    let old = d.workspace.create_backup(&d.ada).await.unwrap();
    let new_key = d.workspace.rotate_backup_key(&d.ada).await.unwrap();
    assert_ne!(new_key, old.backup_key);
    d.world.clock.advance(Duration::from_secs(2));
    let new = d.workspace.create_backup(&d.ada).await.unwrap();
    assert_eq!(new.backup_key, new_key);
    d.workspace.verify_backup(&d.ada, &old.id).await.unwrap();
    d.workspace.verify_backup(&d.ada, &new.id).await.unwrap();
    let keys = BackupKeys::open(&d.backups(), d.kms.clone()).unwrap();
    assert_eq!(keys.ids(), [old.backup_key.clone(), new_key.clone()]);
    // The old key does not open the new backup.
    let old_identity = keys.identity(&old.backup_key).await.unwrap();
    let refused = restore_archive(
        &archive(&d.backups(), &new),
        old_identity,
        d.signer.verifying_key(),
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");
    let rotated = events_of(&d.world, AuditEventKind::BackupKeyRotated);
    assert_eq!(rotated.len(), 1);
    // The key file holds no secret in the clear.
    let file = std::fs::read_to_string(d.backups().join("keys.json")).unwrap();
    assert!(
        !file.to_ascii_uppercase().contains("AGE-SECRET-KEY"),
        "{file}"
    );
    assert!(!format!("{keys:?}").contains("AGE-SECRET-KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_of_the_operators_workspace_manage_backups() {
    let d = deployment().await;
    // A member without manage_backups: refused and recorded.
    let refused = d.workspace.create_backup(&d.bob).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let denied = events_of(&d.world, AuditEventKind::AdminAccessDenied);
    assert!(denied.iter().any(|e| e.outcome == Outcome::Denied));
    assert_eq!(
        d.workspace.backups(&d.bob).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    // The owner of another workspace of the same deployment: refused (a backup holds every
    // workspace).
    let (other, _) = d
        .world
        .chat
        .bootstrap("Other", new_user("olga"), &password())
        .await
        .unwrap();
    let olga = login(&other, "olga").await;
    let refused = other.create_backup(&olga).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");
    assert_eq!(
        other.rotate_backup_key(&olga).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    assert!(
        !d.backups().join("keys.json").exists(),
        "nothing was made for a refused caller"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_admin_rotates_keys_and_tells_what_the_recovery_material_covers() {
    let d = deployment().await;
    // Nothing backed up yet: no kit, no coverage.
    let status = d.workspace.recovery_status(&d.ada).await.unwrap();
    assert_eq!(status.recipients, [(d.offline.recipient(), Vec::new())]);
    assert!(status.kit_written.is_none());
    let first = d.workspace.create_backup(&d.ada).await.unwrap();
    let status = d.workspace.recovery_status(&d.ada).await.unwrap();
    assert_eq!(status.recipients[0].1, std::slice::from_ref(&first.id));
    assert!(status.uncovered.is_empty());
    assert_eq!(status.backup_keys, std::slice::from_ref(&first.backup_key));
    assert!(status.kit_written.is_some());

    // Both rotations keep what was written readable, and new writes work under the new keys.
    assert_eq!(d.workspace.rotate_workspace_key(&d.ada).await.unwrap(), 2);
    let (version, rewrapped) = d.workspace.rotate_kms_key(&d.ada).await.unwrap();
    assert_eq!((version, rewrapped), (2, 2));
    let tenant = d.workspace.tenant();
    let own = zt_crypto::KeyId::new(&format!("tenants/{tenant}")).unwrap();
    d.kms.retire(&own, 1).await.unwrap();
    d.world.clock.advance(Duration::from_secs(1));
    d.workspace
        .post(&d.bob, d.room, "after the rotations", None, &[])
        .await
        .unwrap();
    // A fresh service over the same store and KMS reads everything.
    let again = World::with_kms(Arc::clone(&d.world.inner), d.kms.clone(), |_| {}).await;
    assert_eq!(
        texts(&again, tenant, "bob", d.room).await,
        ["first real plans", "second thoughts", "after the rotations"]
    );
    let rotated = events_of(&d.world, AuditEventKind::KeyRotated);
    let targets: Vec<_> = rotated.iter().map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [
            Some("workspace-key".to_string()),
            Some("kms-key".to_string())
        ]
    );
    // A member may do none of it.
    for refused in [
        d.workspace.rotate_workspace_key(&d.bob).await.map(|_| ()),
        d.workspace.rotate_kms_key(&d.bob).await.map(|_| ()),
        d.workspace.recovery_status(&d.bob).await.map(|_| ()),
    ] {
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::Forbidden);
    }
    assert_eq!(events_of(&d.world, AuditEventKind::KeyRotated).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_run_when_due_and_keep_only_the_newest() {
    let d = deployment().await;
    let backups = Arc::clone(d.world.chat.deployment_backups().unwrap());
    // No schedule: nothing runs.
    assert!(backups.run_schedule().await.unwrap().is_none());
    for (caller, every, keep, kind) in [
        (&d.ada, 60, 2, ErrorKind::InvalidInput),   // under an hour
        (&d.ada, 3600, 0, ErrorKind::InvalidInput), // keeps none
        (&d.bob, 3600, 2, ErrorKind::Forbidden),
    ] {
        let refused = d
            .workspace
            .set_backup_schedule(caller, Some(every), keep)
            .await;
        assert_eq!(refused.unwrap_err().kind(), kind, "{every} {keep}");
    }
    let schedule = d
        .workspace
        .set_backup_schedule(&d.ada, Some(3600), 2)
        .await
        .unwrap();
    assert_eq!((schedule.every_secs, schedule.keep), (Some(3600), 2));
    assert_eq!(
        events_of(&d.world, AuditEventKind::BackupScheduleChanged).len(),
        1
    );
    let mut taken = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        last = Some(zt_core::Clock::now(&*d.world.clock));
        let info = backups.run_schedule().await.unwrap().expect("due");
        taken.push(info.id);
        // Not due again until an hour has passed.
        assert!(backups.run_schedule().await.unwrap().is_none());
        d.world.clock.advance(HOUR);
    }
    let kept: Vec<String> = d
        .workspace
        .backups(&d.ada)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(kept, taken[1..], "the oldest beyond two went");
    let deleted = events_of(&d.world, AuditEventKind::BackupDeleted);
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].target.as_deref(), Some(taken[0].as_str()));
    assert_eq!(
        d.workspace.backup_schedule(&d.ada).await.unwrap().last_run,
        last
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_off_site_copy_is_imported_only_when_it_is_ours_and_whole() {
    let d = deployment().await;
    let backups = Arc::clone(d.world.chat.deployment_backups().unwrap());
    let info = d.workspace.create_backup(&d.ada).await.unwrap();
    let off_site = d.dir.path().join("off-site.zt-backup");
    std::fs::copy(archive(&d.backups(), &info), &off_site).unwrap();
    d.workspace.delete_backup(&d.ada, &info.id).await.unwrap();
    let actor = || zt_core::Actor::System("test".into());

    // Altered: refused, and nothing is left in the backup directory.
    let mut altered = std::fs::read(&off_site).unwrap();
    let at = altered.len() / 3;
    altered[at] ^= 4;
    let bad = d.dir.path().join("altered.zt-backup");
    std::fs::write(&bad, &altered).unwrap();
    let refused = backups.import(&bad, actor()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");
    let left: Vec<_> = std::fs::read_dir(d.backups())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("zt-backup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Ours and whole: catalogued from its signed manifest, as it was.
    let imported = backups.import(&off_site, actor()).await.unwrap();
    assert_eq!(imported, info);
    d.workspace.verify_backup(&d.ada, &info.id).await.unwrap();
    assert_eq!(events_of(&d.world, AuditEventKind::BackupImported).len(), 1);
    let again = backups.import(&off_site, actor()).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);

    // Another deployment's backup: none of our keys opens it.
    let other = deployment().await;
    let theirs = other.workspace.create_backup(&other.ada).await.unwrap();
    let refused = backups
        .import(&archive(&other.backups(), &theirs), actor())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");
}

/// A row of the largest size a store takes rides in a backup and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_rows_back_up_and_restore() {
    let d = deployment().await;
    let namespace = zt_storage::Namespace::new("test.large").unwrap();
    let large = vec![0x6b; zt_storage::MAX_VALUE_LEN];
    let mut batch = zt_storage::Batch::new();
    batch.put(&namespace, b"large", &large);
    batch.put(&namespace, b"small", b"s");
    d.world.inner.commit(batch).await.unwrap();
    let info = d.workspace.create_backup(&d.ada).await.unwrap();
    let restored = restore_with(&d, &info, backup_identity(&d, &info).await).await;
    let entry = restored.get(&namespace, b"large").await.unwrap().unwrap();
    assert_eq!(entry.value.len(), large.len());
    assert!(restored.get(&namespace, b"small").await.unwrap().is_some());
}

/// What a backup or an import cut short left (a stop during the export) is removed by the next
/// backup, and never listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_short_backup_leaves_nothing_after_the_next() {
    let d = deployment().await;
    std::fs::create_dir_all(d.backups()).unwrap();
    let stale = [
        d.backups().join("bk-1-deadbeef.zt-backup.partial"),
        d.backups().join("import-0badf00d.zt-backup.partial"),
    ];
    for file in &stale {
        std::fs::write(file, b"half an archive").unwrap();
    }
    assert!(d.workspace.backups(&d.ada).await.unwrap().is_empty());
    let info = d.workspace.create_backup(&d.ada).await.unwrap();
    for file in &stale {
        assert!(!file.exists(), "{} is still there", file.display());
    }
    assert_eq!(d.workspace.backups(&d.ada).await.unwrap(), [info]);
}
