//! A whole zt-chat deployment in memory for tests and benchmarks (feature `testing`). **It
//! provides NO SECURITY**: its KMS is `InsecureFixedKms`, its audit sink a `RecordingSink` that
//! verifies nothing, and its password hashing cheap.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let world = zt_chat::testing::World::new().await;
//! let owner = zt_chat::testing::new_user("ada");
//! let password = zt_chat::testing::password();
//! let (workspace, _) = world.chat.bootstrap("Acme", owner, &password).await.unwrap();
//! workspace.login("ada", &password, None).await.unwrap();
//! assert!(world.audit.kinds().contains(&zt_core::AuditEventKind::LoginSucceeded));
//! # });
//! ```
#![allow(
    clippy::expect_used,
    reason = "a test harness reports a broken set-up by panicking"
)]

use std::sync::Arc;

use secrecy::SecretString;
use zt_core::identity::{NewUser, PasswordConfig};
use zt_core::testing::RecordingSink;
use zt_core::{InProcessBus, ManualClock, Timestamp};
use zt_crypto::Kms as _;
use zt_storage::{KvStore, MemoryStore};

use crate::{Chat, ChatConfig, Deps};

/// zt-chat's earlier namespaces and the ones they move to when a workspace opens.
pub const LEGACY_NAMESPACES: [(&str, &str); 7] = crate::store::LEGACY_NAMESPACES;

/// The password [`password`] returns: long enough for the policy.
pub const PASSWORD: &str = "violet kettle rides at dawn";

/// A deployment for tests: the store below encryption, the chat service over it, the recording
/// audit sink (also its `AuditLogs`), and the manual clock every part reads.
pub struct World {
    /// The store below encryption (what an attacker with the disk sees).
    pub inner: Arc<dyn KvStore>,
    /// The chat service.
    pub chat: Chat,
    /// Every audit event, in order.
    pub audit: Arc<RecordingSink>,
    /// The time, moved by hand.
    pub clock: Arc<ManualClock>,
    /// The KMS (by default one for every world of the process).
    pub kms: Arc<dyn zt_crypto::Kms>,
}

/// Cheap argon2 settings: tests are about what zt does, not what a password costs. The clock of
/// a test world stands still unless moved, so the sign-in limiter gets a burst no test reaches
/// (its own tests are zt-core's).
pub fn fast_passwords() -> PasswordConfig {
    PasswordConfig {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
        allow_weak: true,
        sign_in: zt_core::identity::SignInLimits {
            per_address_burst: 100_000,
            ..zt_core::identity::SignInLimits::default()
        },
        ..PasswordConfig::default()
    }
}

impl World {
    /// A world over a fresh memory store.
    pub async fn new() -> Self {
        Self::over(Arc::new(MemoryStore::new())).await
    }

    /// A world over `inner` (sled in a directory, for persistence tests).
    pub async fn over(inner: Arc<dyn KvStore>) -> Self {
        Self::with(inner, |_| {}).await
    }

    /// A world over `inner` whose chat settings `tune` adjusts.
    ///
    /// # Panics
    /// When the fixed KMS or the service cannot be set up (a broken build, not a test failure).
    pub async fn with(inner: Arc<dyn KvStore>, tune: impl FnOnce(&mut ChatConfig)) -> Self {
        // One KMS for every world of the process, as a deployment's KMS outlives its
        // processes: a world opened again over the same store finds each workspace's own KMS
        // key (`tenants/<tenant>`) where the first one made it.
        static KMS: std::sync::OnceLock<Arc<zt_crypto::InsecureFixedKms>> =
            std::sync::OnceLock::new();
        let kms = Arc::clone(KMS.get_or_init(|| Arc::new(zt_crypto::InsecureFixedKms::new())));
        Self::with_kms(inner, kms, tune).await
    }

    /// A world over `inner` whose KMS is `kms` (a `LocalKms` in a directory, to test what
    /// needs the KMS's own file); its key `tenants` is made when missing.
    ///
    /// # Panics
    /// As [`World::with`].
    pub async fn with_kms(
        inner: Arc<dyn KvStore>,
        kms: Arc<dyn zt_crypto::Kms>,
        tune: impl FnOnce(&mut ChatConfig),
    ) -> Self {
        let key = zt_crypto::KeyId::new("tenants").expect("a valid key id");
        if kms.key_versions(&key).await.is_err() {
            // Two worlds starting at once may both try; one wins.
            let _ = kms.create_key(&key).await;
        }
        let audit = Arc::new(RecordingSink::default());
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_764_400_000_000,
        )));
        let deps = Deps::new(
            Arc::clone(&inner),
            Arc::clone(&kms),
            key,
            audit.clone(),
            audit.clone(),
            Arc::new(InProcessBus::new(4096)),
            clock.clone(),
        )
        .expect("the deployment's parts");
        let mut config = ChatConfig {
            password: fast_passwords(),
            ..ChatConfig::default()
        };
        tune(&mut config);
        World {
            inner,
            chat: Chat::new(deps, config).expect("the chat service"),
            audit,
            clock,
            kms,
        }
    }

    /// This world with backups (see [`Chat::with_backups`]).
    ///
    /// # Panics
    /// When the settings are refused.
    pub fn with_backups(self, settings: crate::BackupSettings) -> Self {
        World {
            chat: self.chat.with_backups(settings).expect("backup settings"),
            ..self
        }
    }

    /// A keyring over the key records in `inner` (a copy of the store, such as a backup) with
    /// this world's KMS, set as the deployment's is.
    pub fn keyring_over(&self, inner: Arc<dyn KvStore>) -> Arc<zt_crypto::Keyring> {
        let records =
            zt_storage::KvKeyRecords::standard(inner).expect("the key records' namespace");
        Arc::new(zt_crypto::Keyring::new(
            self.kms.clone(),
            Arc::new(records),
            zt_crypto::KeyId::new("tenants").expect("a valid key id"),
            zt_crypto::KeyringConfig::default().kms_key_per_tenant(true),
        ))
    }
}

impl World {
    /// `tenant`'s encrypting store over [`inner`](Self::inner), laid out and sealed as its
    /// workspace's (blinded namespaces, channel scopes). For tests that look below the API.
    ///
    /// # Panics
    /// When the index key cannot be had (a broken set-up).
    pub async fn tenant_store(
        &self,
        tenant: zt_core::TenantId,
    ) -> zt_storage::EncryptingStore<zt_storage::PrefixedStore<Arc<dyn KvStore>>> {
        let keyring = self.chat.keyring();
        let scopes = crate::store::KeyScopes::of(&keyring, tenant)
            .await
            .expect("the index key");
        crate::store::tenant_store(Arc::clone(&self.inner), keyring, tenant, scopes)
            .expect("the tenant's store")
    }

    /// Where the store below encryption holds `key` of `namespace` (a zt-chat, zt-core or
    /// zt-authz namespace name, such as `chat.b.file_chunks`) for `tenant`: the tenant's own
    /// namespace and the key as stored (blinded where the layout blinds it). For tests that
    /// damage one record on disk.
    ///
    /// # Panics
    /// For a namespace name or key the layout refuses (a broken test).
    pub async fn raw_row(
        &self,
        tenant: zt_core::TenantId,
        namespace: &str,
        key: &[u8],
    ) -> (zt_storage::Namespace, Vec<u8>) {
        let store = self.tenant_store(tenant).await;
        let name = zt_storage::Namespace::new(namespace).expect("a namespace name");
        let stored = store
            .stored_key_of(&name, key)
            .await
            .expect("a key the layout holds");
        let raw = zt_storage::Namespace::new(&format!(
            "{}{namespace}",
            crate::store::tenant_prefix(tenant)
        ))
        .expect("a prefixed name");
        (raw, stored)
    }
}

impl World {
    /// Makes workspace `tenant` look as an earlier version left it: `user`'s identity records
    /// sealed under their namespaces' shared keys, as before users had keys of their own, and
    /// the workspace's record without a layout. For tests of the upgrade when it opens.
    ///
    /// # Panics
    /// When the store or the keys fail (a broken set-up).
    pub async fn as_before_user_keys(&self, tenant: zt_core::TenantId, user: zt_core::UserId) {
        use zt_storage::KvStoreExt as _;
        let today = self.tenant_store(tenant).await;
        let before =
            crate::store::laid_out(Arc::clone(&self.inner), self.chat.keyring(), tenant, None)
                .expect("the earlier layout");
        for name in crate::store::USER_SCOPED {
            let namespace = zt_storage::Namespace::new(name).expect("a namespace name");
            let rows: Vec<zt_storage::Entry> =
                futures_util::TryStreamExt::try_collect(today.scan_stream(
                    &namespace,
                    zt_storage::KeyRange::all(),
                    zt_storage::ScanOptions::new(),
                ))
                .await
                .expect("the user's rows");
            let mut batch = zt_storage::Batch::new();
            for row in rows.iter().filter(|r| r.key.starts_with(&user.to_bytes())) {
                batch.put(&namespace, &row.key, &row.value);
            }
            if !batch.is_empty() {
                before.commit(batch).await.expect("rows sealed as before");
            }
        }
        let (system, workspaces) = (self.chat.system_store(), self.chat.workspaces_namespace());
        let (mut info, version) = system
            .get_decoded::<crate::WorkspaceInfo>(workspaces, &tenant.to_bytes())
            .await
            .expect("the workspace record")
            .expect("a workspace");
        info.layout = 0;
        let mut batch = zt_storage::Batch::new();
        batch.require_version(workspaces, &tenant.to_bytes(), version);
        batch.put(
            workspaces,
            &tenant.to_bytes(),
            &zt_storage::codec::encode(&info).expect("the record"),
        );
        system.commit(batch).await.expect("the record as before");
    }
}

/// A new user named `name`, with an address and a display name derived from it.
pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.test")),
        display_name: format!("{name} display"),
    }
}

/// [`PASSWORD`] as a secret.
pub fn password() -> SecretString {
    SecretString::from(PASSWORD)
}
