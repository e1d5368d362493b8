//! The chat tests' deployment is `zt_chat::testing::World` (memory or a sled directory, the
//! fixed KMS, a recording audit sink, an in-process bus, a manual clock); these are the few
//! helpers the test files share on top.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "shared by several test files, each using part of it; helpers panic on failure"
)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use zt_chat::{Caller, Workspace};
use zt_core::UserId;
use zt_storage::{Batch, Entry, KeyRange, KvStore, MemoryStore, Namespace, ScanOptions, ScanPage};

pub use zt_chat::testing::{new_user, password};

/// The removals for good among the events queued on `feed` now: each event's channel and the
/// messages it names.
pub fn removals(
    feed: &mut zt_chat::Subscription,
) -> Vec<(zt_core::ChannelId, Vec<zt_core::MessageId>)> {
    let mut out = Vec::new();
    while let Ok(Some(event)) = feed.try_next() {
        if let zt_chat::Event::Removed { channel, messages } = &*event {
            out.push((*channel, messages.clone()));
        }
    }
    out
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

/// Makes `user` an administrator of `workspace` (tenant-wide), as `by`.
pub async fn grant_admin(workspace: &Workspace, by: &Caller, user: UserId) {
    workspace
        .change_access(
            by,
            zt_authz::Change::Grant {
                user,
                role: zt_authz::SystemRole::Admin.id(),
                at: zt_authz::Scope::Tenant,
            },
        )
        .await
        .unwrap();
}

pub fn id_of(caller: &Caller) -> UserId {
    caller.user()
}

/// The store below encryption, which can fail one commit writing to a namespace whose name
/// ends with a given suffix (a crash at that step): the one after `skip` such commits.
pub struct Breakable {
    pub inner: MemoryStore,
    fail: Mutex<Option<(&'static str, usize)>>,
}

impl Breakable {
    pub fn new() -> Arc<Self> {
        Arc::new(Breakable {
            inner: MemoryStore::new(),
            fail: Mutex::new(None),
        })
    }

    /// Fails the commit after `skip` commits writing to a namespace ending with `suffix`.
    pub fn fail_on(&self, suffix: &'static str, skip: usize) {
        *self.fail.lock().unwrap() = Some((suffix, skip));
    }
}

#[async_trait]
impl KvStore for Breakable {
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
        {
            let mut armed = self.fail.lock().unwrap();
            if let Some((suffix, skip)) = *armed
                && batch
                    .writes()
                    .iter()
                    .any(|w| w.namespace().as_str().ends_with(suffix))
            {
                if skip == 0 {
                    *armed = None;
                    return Err(zt_storage::Error::unavailable("the process died", None));
                }
                *armed = Some((suffix, skip - 1));
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
