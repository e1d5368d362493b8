//! The keyring over a real KMS adapter and in-memory records.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use zt_crypto::{
    DataKey, EncryptionContext, ErrorKind, InsecureFixedKms, KeyId, KeyRef, KeyVersion, Keyring,
    KeyringConfig, KeyringEvent, Kms, MemoryKeyRecords, OutagePolicy, WrappedKey,
};

/// Counts unwraps, to see the cache at work.
struct CountingKms {
    inner: InsecureFixedKms,
    unwraps: AtomicUsize,
}

#[async_trait]
impl Kms for CountingKms {
    async fn create_key(&self, key_id: &KeyId) -> zt_crypto::Result<KeyRef> {
        self.inner.create_key(key_id).await
    }
    async fn key_versions(&self, key_id: &KeyId) -> zt_crypto::Result<Vec<KeyVersion>> {
        self.inner.key_versions(key_id).await
    }
    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> zt_crypto::Result<WrappedKey> {
        self.inner.wrap(key_id, key, context).await
    }
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> zt_crypto::Result<DataKey> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap(wrapped, context).await
    }
    async fn rotate(&self, key_id: &KeyId) -> zt_crypto::Result<u32> {
        self.inner.rotate(key_id).await
    }
    async fn retire(&self, key_id: &KeyId, version: u32) -> zt_crypto::Result<()> {
        self.inner.retire(key_id, version).await
    }
    async fn destroy(&self, key_id: &KeyId) -> zt_crypto::Result<()> {
        self.inner.destroy(key_id).await
    }
}

struct Fixture {
    kms: Arc<CountingKms>,
    records: MemoryKeyRecords,
    events: Arc<Mutex<Vec<KeyringEvent>>>,
}

impl Fixture {
    async fn new() -> Self {
        let kms = Arc::new(CountingKms {
            inner: InsecureFixedKms::new(),
            unwraps: AtomicUsize::new(0),
        });
        kms.create_key(&KeyId::new("tenants").unwrap())
            .await
            .unwrap();
        Fixture {
            kms,
            records: MemoryKeyRecords::default(),
            events: Arc::default(),
        }
    }

    fn keyring(&self, config: KeyringConfig) -> Keyring {
        let events = Arc::clone(&self.events);
        Keyring::new(
            self.kms.clone(),
            Arc::new(self.records.clone()),
            KeyId::new("tenants").unwrap(),
            config,
        )
        .with_events(Arc::new(move |e| events.lock().unwrap().push(e)))
    }

    fn unwraps(&self) -> usize {
        self.kms.unwraps.load(Ordering::SeqCst)
    }

    fn events(&self) -> Vec<KeyringEvent> {
        self.events.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_scope_key_is_created_once_and_read_back_by_any_keyring() {
    let f = Fixture::new().await;
    let first = f.keyring(KeyringConfig::default());
    let key = first.scope_key("t1", "channel-1").await.unwrap();
    let sealed = key.seal(b"hello", b"ctx").unwrap();
    // Another keyring (another node, or after a restart) reads the same key from the records.
    let second = f.keyring(KeyringConfig::default());
    let again = second.existing_scope_key("t1", "channel-1").await.unwrap();
    assert_eq!(again.open(&sealed, b"ctx").unwrap(), b"hello");
    // Records hold only wrapped keys: no record contains the sealed text's key in clear, and
    // every record is a tenant or scope record.
    assert_eq!(f.records.names(), ["scope/t1/channel-1", "tenant/t1"]);
}

#[tokio::test]
async fn scopes_and_tenants_do_not_share_keys() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    let sealed = ring
        .scope_key("t1", "a")
        .await
        .unwrap()
        .seal(b"x", b"")
        .unwrap();
    for (tenant, scope) in [("t1", "b"), ("t2", "a")] {
        let other = ring.scope_key(tenant, scope).await.unwrap();
        assert_eq!(
            other.open(&sealed, b"").unwrap_err().kind(),
            ErrorKind::Decrypt
        );
    }
}

#[tokio::test]
async fn reading_never_creates_a_key() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    let err = ring.existing_scope_key("t1", "never").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyNotFound);
    assert!(f.records.raw("scope/t1/never").is_none());
}

#[tokio::test]
async fn destroying_a_scope_key_shreds_its_data_everywhere() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    let other_node = f.keyring(KeyringConfig::default());
    let sealed = ring
        .scope_key("t1", "user-9")
        .await
        .unwrap()
        .seal(b"pii", b"")
        .unwrap();
    other_node.existing_scope_key("t1", "user-9").await.unwrap();
    ring.destroy_scope_key("t1", "user-9").await.unwrap();
    ring.destroy_scope_key("t1", "user-9").await.unwrap(); // idempotent
    assert_eq!(
        ring.existing_scope_key("t1", "user-9")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::KeyDestroyed
    );
    assert_eq!(
        ring.scope_key("t1", "user-9").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed,
        "a destroyed scope is not silently re-created"
    );
    // A fresh keyring sees the tombstone too; the record no longer holds the wrapped key.
    let fresh = f.keyring(KeyringConfig::default());
    assert_eq!(
        fresh
            .existing_scope_key("t1", "user-9")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::KeyDestroyed
    );
    assert!(f.records.raw("scope/t1/user-9").unwrap().len() < 8);
    assert!(f.events().contains(&KeyringEvent::ScopeKeyDestroyed {
        tenant: "t1".into(),
        scope: "user-9".into()
    }));
    let _ = sealed;
}

#[tokio::test]
async fn tenant_key_rotation_keeps_older_scope_keys_readable() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    let old = ring
        .scope_key("t1", "old")
        .await
        .unwrap()
        .seal(b"1", b"")
        .unwrap();
    assert_eq!(ring.rotate_tenant_key("t1").await.unwrap(), 2);
    let new = ring
        .scope_key("t1", "new")
        .await
        .unwrap()
        .seal(b"2", b"")
        .unwrap();
    let fresh = f.keyring(KeyringConfig::default());
    assert_eq!(
        fresh
            .existing_scope_key("t1", "old")
            .await
            .unwrap()
            .open(&old, b"")
            .unwrap(),
        b"1"
    );
    assert_eq!(
        fresh
            .existing_scope_key("t1", "new")
            .await
            .unwrap()
            .open(&new, b"")
            .unwrap(),
        b"2"
    );
    // The new scope key is wrapped under tenant key version 2.
    let record = f.records.raw("scope/t1/new").unwrap();
    let header = zt_crypto::envelope::EnvelopeHeader::parse(&record[5..]).unwrap();
    assert_eq!(
        (header.key.id.as_str(), header.key.version),
        ("tenant/t1", 2)
    );
}

#[tokio::test]
async fn cached_keys_spare_the_kms_until_their_ttl() {
    tokio::time::pause();
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default().ttl(Duration::from_secs(60)));
    ring.scope_key("t1", "a").await.unwrap();
    let after_first = f.unwraps();
    for _ in 0..10 {
        ring.scope_key("t1", "a").await.unwrap();
    }
    assert_eq!(f.unwraps(), after_first, "cached");
    tokio::time::advance(Duration::from_secs(61)).await;
    ring.scope_key("t1", "a").await.unwrap();
    assert_eq!(
        f.unwraps(),
        after_first + 1,
        "expired: the tenant key is unwrapped again"
    );
}

#[tokio::test]
async fn the_cache_stays_within_its_bound() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default().max_cached(2));
    for i in 0..20 {
        ring.scope_key("t1", &format!("s{i}")).await.unwrap();
    }
    // With room for two keys, revisiting many scopes needs the KMS again.
    let before = f.unwraps();
    for i in 0..20 {
        ring.existing_scope_key("t1", &format!("s{i}"))
            .await
            .unwrap();
    }
    assert!(f.unwraps() > before);
}

#[tokio::test]
async fn by_default_an_outage_fails_closed_even_for_cached_keys() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    ring.scope_key("t1", "a").await.unwrap();
    f.kms.inner.set_unavailable(true);
    // The first call that needs the KMS (a new tenant) reveals the outage...
    let err = ring.scope_key("t2", "b").await.unwrap_err();
    assert!(err.is_temporary());
    // ...after which even the cached key is refused.
    let err = ring.scope_key("t1", "a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    f.kms.inner.set_unavailable(false);
    ring.scope_key("t1", "a").await.unwrap();
    ring.scope_key("t2", "b").await.unwrap();
    let events = f.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, KeyringEvent::KmsOutage { .. }))
            .count(),
        1,
        "one outage reported: {events:?}"
    );
    assert!(events.contains(&KeyringEvent::KmsRecovered));
}

#[tokio::test]
async fn serve_cached_keeps_cached_keys_until_their_ttl() {
    tokio::time::pause();
    let f = Fixture::new().await;
    let ring = f.keyring(
        KeyringConfig::default()
            .ttl(Duration::from_secs(30))
            .outage(OutagePolicy::ServeCached),
    );
    let key = ring.scope_key("t1", "a").await.unwrap();
    let sealed = key.seal(b"m", b"").unwrap();
    f.kms.inner.set_unavailable(true);
    assert!(ring.scope_key("t2", "b").await.unwrap_err().is_temporary());
    let cached = ring.scope_key("t1", "a").await.unwrap();
    assert_eq!(cached.open(&sealed, b"").unwrap(), b"m");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(ring.scope_key("t1", "a").await.unwrap_err().is_temporary());
}

#[tokio::test]
async fn the_index_key_is_stable_per_tenant_and_survives_rotation() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    let before = ring
        .index_key("t1")
        .await
        .unwrap()
        .blind("username", b"alice");
    ring.rotate_tenant_key("t1").await.unwrap();
    let fresh = f.keyring(KeyringConfig::default());
    let after = fresh
        .index_key("t1")
        .await
        .unwrap()
        .blind("username", b"alice");
    assert_eq!(before, after);
    let index = fresh.index_key("t1").await.unwrap();
    assert_ne!(
        index.blind("username", b"alice"),
        index.blind("email", b"alice")
    );
    assert_ne!(
        before,
        fresh
            .index_key("t2")
            .await
            .unwrap()
            .blind("username", b"alice")
    );
    assert_eq!(format!("{index:?}"), "IndexKey(<redacted>)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_agrees_on_one_key() {
    let f = Fixture::new().await;
    let rings: Vec<_> = (0..8)
        .map(|_| Arc::new(f.keyring(KeyringConfig::default())))
        .collect();
    let tasks: Vec<_> = rings
        .iter()
        .map(|ring| {
            let ring = Arc::clone(ring);
            tokio::spawn(async move {
                let key = ring.scope_key("t1", "contended").await.unwrap();
                key.seal(b"same key?", b"").unwrap()
            })
        })
        .collect();
    let mut sealed = Vec::new();
    for task in tasks {
        sealed.push(task.await.unwrap());
    }
    let reader = f.keyring(KeyringConfig::default());
    let key = reader.existing_scope_key("t1", "contended").await.unwrap();
    for s in &sealed {
        assert_eq!(key.open(s, b"").unwrap(), b"same key?");
    }
}

#[tokio::test]
async fn a_kms_key_rotation_needs_only_a_rewrap_of_tenant_keys() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    let sealed = ring
        .scope_key("t1", "s")
        .await
        .unwrap()
        .seal(b"kept", b"")
        .unwrap();
    ring.rotate_tenant_key("t1").await.unwrap();
    let kms_key = KeyId::new("tenants").unwrap();
    assert_eq!(f.kms.rotate(&kms_key).await.unwrap(), 2);
    assert_eq!(
        ring.rewrap_tenant_keys("t1").await.unwrap(),
        2,
        "both tenant key versions"
    );
    assert_eq!(
        ring.rewrap_tenant_keys("t1").await.unwrap(),
        0,
        "already current"
    );
    // The old KMS version can go: everything still opens through a fresh keyring.
    f.kms.retire(&kms_key, 1).await.unwrap();
    let fresh = f.keyring(KeyringConfig::default());
    let key = fresh.existing_scope_key("t1", "s").await.unwrap();
    assert_eq!(key.open(&sealed, b"").unwrap(), b"kept");
    assert_eq!(fresh.rewrap_tenant_keys("nobody").await.unwrap(), 0);
}

#[tokio::test]
async fn a_tenants_own_kms_key_rotates_and_its_keys_are_rewrapped_in_one_call() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default().kms_key_per_tenant(true));
    let sealed = ring
        .scope_key("t1", "s")
        .await
        .unwrap()
        .seal(b"kept", b"")
        .unwrap();
    assert_eq!(ring.rotate_tenant_kms_key("t1").await.unwrap(), (2, 1));
    // The tenant's own KMS key rotated, the shared one did not.
    let own = KeyId::new("tenants/t1").unwrap();
    assert_eq!(f.kms.key_versions(&own).await.unwrap().len(), 2);
    assert_eq!(
        f.kms
            .key_versions(&KeyId::new("tenants").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // The old version can be retired at once: everything opens through a fresh keyring.
    f.kms.retire(&own, 1).await.unwrap();
    let fresh = f.keyring(KeyringConfig::default().kms_key_per_tenant(true));
    let key = fresh.existing_scope_key("t1", "s").await.unwrap();
    assert_eq!(key.open(&sealed, b"").unwrap(), b"kept");
}

#[tokio::test]
async fn destroying_a_tenant_leaves_no_copy_of_its_keys_that_opens() {
    use zt_crypto::KeyRecords as _;
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default().kms_key_per_tenant(true));
    let sealed = ring
        .scope_key("t1", "channel-1")
        .await
        .unwrap()
        .seal(b"the tenant's words", b"ctx")
        .unwrap();
    let other = ring
        .scope_key("t2", "channel-1")
        .await
        .unwrap()
        .seal(b"another tenant", b"ctx")
        .unwrap();
    // A backup of the key records, taken before.
    let copy = f.records.clone_deep();

    let done = ring.destroy_tenant("t1").await.unwrap();
    assert!(done.kms_key_destroyed);
    assert_eq!(done.shared_versions, 0);
    let refused = ring
        .existing_scope_key("t1", "channel-1")
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::KeyDestroyed);
    // Nothing of the tenant is made again, and calling again is no error.
    assert_eq!(
        ring.scope_key("t1", "new").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
    ring.destroy_tenant("t1").await.unwrap();
    // The copy of the records, put back (a restore), opens nothing of the tenant: its KMS key
    // is gone from the KMS.
    let restored = Keyring::new(
        f.kms.clone(),
        Arc::new(copy),
        KeyId::new("tenants").unwrap(),
        KeyringConfig::default().kms_key_per_tenant(true),
    );
    assert!(
        restored
            .existing_scope_key("t1", "channel-1")
            .await
            .is_err()
    );
    // The other tenant is untouched.
    let key = restored
        .existing_scope_key("t2", "channel-1")
        .await
        .unwrap();
    assert_eq!(key.open(&other, b"ctx").unwrap(), b"another tenant");
    let _ = sealed;
    assert!(f.events().contains(&KeyringEvent::TenantDestroyed {
        tenant: "t1".into()
    }));
    assert!(f.records.get("tenant/t1").await.unwrap().is_some());
}

#[tokio::test]
async fn a_tenant_under_the_shared_kms_key_is_told_its_copies_still_open() {
    let f = Fixture::new().await;
    let ring = f.keyring(KeyringConfig::default());
    ring.scope_key("t1", "a").await.unwrap();
    let copy = f.records.clone_deep();
    let done = ring.destroy_tenant("t1").await.unwrap();
    assert!(!done.kms_key_destroyed);
    assert_eq!(done.shared_versions, 1);
    assert_eq!(
        ring.existing_scope_key("t1", "a").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
    // What the report warns of: the shared key still unwraps a copy.
    let restored = Keyring::new(
        f.kms.clone(),
        Arc::new(copy),
        KeyId::new("tenants").unwrap(),
        KeyringConfig::default(),
    );
    assert!(restored.existing_scope_key("t1", "a").await.is_ok());
}
