//! What the identity tests share: a tenant's encrypting store over memory, with the identity
//! namespaces blinded, a recording audit sink, a bus and a manual clock.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "shared by several test files, each using part of it; helpers panic on failure"
)]

use std::sync::Arc;

use zt_core::identity::{
    CREDENTIALS, EMAILS, LOCKOUT, SESSION_POLICY, SESSIONS, USER_SESSIONS, USERNAMES, USERS,
};
use zt_core::{InProcessBus, ManualClock, TenantId, Timestamp};
use zt_crypto::Kms as _;
use zt_storage::{
    EncryptingStore, KeyRange, KvKeyRecords, KvStore, MemoryStore, Namespace, ScanOptions,
};

pub use zt_core::testing::RecordingSink;

pub struct Base {
    pub inner: Arc<dyn KvStore>,
    pub store: Arc<dyn KvStore>,
    pub audit: Arc<RecordingSink>,
    pub bus: Arc<InProcessBus>,
    pub clock: Arc<ManualClock>,
    pub tenant: TenantId,
}

impl Base {
    /// The tenant context the identity services take.
    pub fn ctx(&self) -> zt_core::identity::TenantContext {
        zt_core::identity::TenantContext {
            store: self.store.clone(),
            tenant: self.tenant,
            clock: self.clock.clone(),
            audit: self.audit.clone(),
            bus: self.bus.clone(),
        }
    }
}

pub fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

pub async fn base() -> Base {
    let inner: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    kms.create_key(&zt_crypto::KeyId::new("tenants").unwrap())
        .await
        .unwrap();
    let keyring = Arc::new(zt_crypto::Keyring::new(
        kms,
        Arc::new(KvKeyRecords::new(inner.clone(), ns("zt.keys"))),
        zt_crypto::KeyId::new("tenants").unwrap(),
        zt_crypto::KeyringConfig::default(),
    ));
    let store = zt_core::identity::blind_identity(
        EncryptingStore::new(inner.clone(), keyring, "tenant-1").reserve_namespace(ns("zt.keys")),
    )
    .unwrap();
    Base {
        inner,
        store: Arc::new(store),
        audit: Arc::new(RecordingSink::default()),
        bus: Arc::new(InProcessBus::new(64)),
        clock: Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_764_400_000_000,
        ))),
        tenant: TenantId::from_bytes([1; 16]),
    }
}

/// Every key and value the inner store holds in the identity namespaces and the key records.
pub async fn stored_bytes(inner: &dyn KvStore) -> Vec<u8> {
    let mut out = Vec::new();
    for name in [
        USERS,
        USERNAMES,
        EMAILS,
        CREDENTIALS,
        LOCKOUT,
        SESSIONS,
        USER_SESSIONS,
        SESSION_POLICY,
        "zt.keys",
    ] {
        let page = inner
            .scan(&ns(name), &KeyRange::all(), ScanOptions::new())
            .await
            .unwrap();
        assert!(page.next.is_none());
        for entry in page.entries {
            out.extend(entry.key);
            out.extend(entry.value);
        }
    }
    out
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
