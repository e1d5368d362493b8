//! A deployment for the chat tests: a store (memory, or sled in a directory), a keyring over it,
//! a recording audit sink, an in-process bus and a manual clock.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "shared by several test files, each using part of it; helpers panic on failure"
)]

use std::sync::Arc;

use secrecy::SecretString;
use zt_chat::{Caller, Chat, ChatConfig, Deps, Workspace};
use zt_core::identity::{NewUser, PasswordConfig};
use zt_core::{InProcessBus, ManualClock, Timestamp, UserId};
use zt_crypto::Kms as _;
use zt_storage::{EncryptingStore, KvKeyRecords, KvStore, MemoryStore, Namespace};

pub use zt_core::testing::RecordingSink;

pub const PASSWORD: &str = "violet kettle rides at dawn";

pub struct World {
    pub inner: Arc<dyn KvStore>,
    pub chat: Chat,
    pub audit: Arc<RecordingSink>,
    pub clock: Arc<ManualClock>,
}

pub async fn world_over(inner: Arc<dyn KvStore>) -> World {
    world_with(inner, |_| {}).await
}

pub async fn world_with(inner: Arc<dyn KvStore>, tune: impl FnOnce(&mut ChatConfig)) -> World {
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    let key = zt_crypto::KeyId::new("tenants").unwrap();
    kms.create_key(&key).await.unwrap();
    let records = Namespace::new("zt.keys").unwrap();
    let keyring = Arc::new(zt_crypto::Keyring::new(
        kms,
        Arc::new(KvKeyRecords::new(inner.clone(), records.clone())),
        key,
        zt_crypto::KeyringConfig::default(),
    ));
    let system: Arc<dyn KvStore> = Arc::new(
        EncryptingStore::new(inner.clone(), keyring.clone(), "system")
            .reserve_namespace(records.clone()),
    );
    let audit = Arc::new(RecordingSink::default());
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_764_400_000_000,
    )));
    let deps = Deps {
        inner: inner.clone(),
        keyring,
        key_records: records,
        system,
        audit: audit.clone(),
        audit_logs: audit.clone(),
        bus: Arc::new(InProcessBus::new(1024)),
        clock: clock.clone(),
    };
    let mut config = ChatConfig {
        // Cheap hashing: these tests are about chat, not password cost.
        password: PasswordConfig {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
            allow_weak: true,
            ..PasswordConfig::default()
        },
        ..ChatConfig::default()
    };
    tune(&mut config);
    World {
        inner,
        chat: Chat::new(deps, config).unwrap(),
        audit,
        clock,
    }
}

pub async fn world() -> World {
    world_over(Arc::new(MemoryStore::new())).await
}

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.test")),
        display_name: format!("{name} display"),
    }
}

pub fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

/// A member of `workspace`, created by `admin` (through the door every embedder has:
/// `create_user`, which grants the member role), logged in.
pub async fn member(workspace: &Workspace, admin: &Caller, name: &str) -> Caller {
    workspace
        .create_user(admin, new_user(name), &password())
        .await
        .unwrap();
    login(workspace, name).await
}

pub async fn login(workspace: &Workspace, name: &str) -> Caller {
    workspace.login(name, &password(), None).await.unwrap().1
}

pub fn id_of(caller: &Caller) -> UserId {
    caller.user()
}
