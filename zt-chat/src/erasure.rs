//! Complete user deletion: a checklist that leaves nothing of the user behind but their id.
//!
//! [`Workspace::delete_user`] (`manage_users` over the user; never a workspace's last owner)
//! goes through it in this order, each step idempotent, so that a deletion cut short (a crash,
//! a store that went away) is finished by asking again:
//!
//! 1. **Roles and memberships** go, in one commit (the last-owner guard refuses before anything
//!    else changes).
//! 2. The account is **deactivated** (if it was active): no sign-in from here on, and every
//!    session ends with its realtime stream.
//! 3. The user's **content**, by the workspace's [`AuthoredContent`] policy: kept with the
//!    author pseudonymised (the id stays on the messages, and resolves to a tombstone with no
//!    name, address or display name), or deleted: messages with every earlier text of them,
//!    files to tombstones with their name withheld. Content a [legal hold](crate::holds) keeps
//!    (a hold on the user as custodian, or on the channel) stays either way, and is counted.
//! 4. **Sessions** (their records), **identity links** (OIDC, with the provider sessions they
//!    index), the **password hash** and the **lock states** of the user's name are removed.
//! 5. The **account** becomes a tombstone: username and address freed, the SCIM document gone,
//!    recorded as `user.deleted` with what the deletion did (the actor by its id only).
//! 6. The user's **profile key** is destroyed. Every live identity record of a user (profile,
//!    password hash, SCIM document, session list, identity links) is sealed under a key of that
//!    user's own; once it is gone, no copy of those records (an old backup, a disk's free
//!    pages) opens, whatever keys the KMS still holds.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use zt_chat::AuthoredContent;
//!
//! let world = zt_chat::testing::World::new().await;
//! let password = zt_chat::testing::password();
//! let (workspace, _) = world.chat.bootstrap("Acme", zt_chat::testing::new_user("ada"), &password).await?;
//! let (_, ada) = workspace.login("ada", &password, None).await?;
//! let ben = workspace.create_user(&ada, zt_chat::testing::new_user("ben"), &password).await?;
//!
//! workspace.set_authored_content(&ada, AuthoredContent::Delete).await?;
//! let report = workspace.delete_user(&ada, ben.id).await?;
//! assert_eq!(report.user.state, zt_core::identity::UserState::Deleted);
//! assert!(workspace.login("ben", &password, None).await.is_err());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use zt_authz::{Change, Changer};
use zt_core::identity::{User, UserState};
use zt_core::{Actor, AuditEventKind, ChannelId, Detail, UserId};
use zt_storage::{Batch, ErrorKind as StorageKind, KeyRange, KvStoreExt as _, ScanOptions, codec};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::workspace::{Caller, Workspace};

/// The record of the workspace's [`AuthoredContent`] policy, in the retention namespace.
const POLICY_KEY: &[u8] = b"authored-content";

/// How many times a batch is read again after a concurrent change before the deletion gives up
/// (and can be asked again).
const MAX_CONFLICTS: u32 = 8;

/// What happens to a deleted user's messages and files (`manage_privacy_and_data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthoredContent {
    /// Kept, with the author pseudonymised: the author's id stays, and resolves to a tombstone
    /// with no name, address or display name.
    #[default]
    Keep,
    /// Deleted: messages with their history; files to tombstones, name withheld. Content under
    /// a legal hold stays.
    Delete,
}

impl AuthoredContent {
    /// Its name in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthoredContent::Keep => "keep",
            AuthoredContent::Delete => "delete",
        }
    }
}

/// What a user's deletion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserDeletion {
    /// The tombstone the user is now.
    pub user: User,
    /// The policy their content followed.
    pub content: AuthoredContent,
    /// Messages of theirs removed.
    pub messages: u64,
    /// Earlier texts of those messages removed.
    pub revisions: u64,
    /// Files of theirs whose content was removed.
    pub files: u64,
    /// Messages and files of theirs a legal hold kept.
    pub spared: u64,
    /// Sessions ended.
    pub sessions: u64,
    /// Identity links removed.
    pub links: u64,
    /// Whether the user had been deleted already, and this call finished the work (the
    /// profile key).
    pub finished_earlier: bool,
}

/// What steps 1 to 4 of a deletion did.
#[derive(Debug, Default)]
pub(crate) struct Erased {
    pub(crate) messages: u64,
    pub(crate) revisions: u64,
    pub(crate) files: u64,
    pub(crate) spared: u64,
    pub(crate) sessions: u64,
    pub(crate) links: u64,
}

impl Workspace {
    /// The workspace's policy for deleted users' content (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn authored_content(&self, caller: &Caller) -> Result<AuthoredContent> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        Ok(self.authored_content_policy().await?.0)
    }

    async fn authored_content_policy(&self) -> Result<(AuthoredContent, u64)> {
        Ok(self
            .ctx
            .store
            .get_decoded::<AuthoredContent>(&self.ns.retention, POLICY_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Sets the workspace's policy for deleted users' content (`manage_privacy_and_data`),
    /// recorded (`settings.changed`, target `authored_content`) before it applies.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Conflict`] for a concurrent change.
    pub async fn set_authored_content(
        &self,
        caller: &Caller,
        policy: AuthoredContent,
    ) -> Result<AuthoredContent> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        let (_, version) = self.authored_content_policy().await?;
        let event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target("authored_content")
            .detail("policy", policy.as_str())?;
        self.ctx.audit.append(event).await?;
        let mut batch = Batch::new();
        crate::store::require_as_read(&mut batch, &self.ns.retention, POLICY_KEY, version);
        batch.put(&self.ns.retention, POLICY_KEY, &codec::encode(&policy)?);
        self.ctx.store.commit(batch).await?;
        Ok(policy)
    }

    /// Deletes `user` for good (`manage_users` over them; never a workspace's last owner),
    /// leaving nothing of theirs behind: see the [module's docs](self) for the checklist. Asked
    /// again for a user whose deletion was cut short, it finishes the work.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (also for the last owner); [`Error::NotFound`];
    /// [`Error::Conflict`] when the user's content kept changing meanwhile (ask again);
    /// [`Error::Unavailable`] when the store or the key service is out (ask again).
    pub async fn delete_user(&self, caller: &Caller, user: UserId) -> Result<UserDeletion> {
        let target = self.manage(caller, user).await?;
        let actor = Actor::User(caller.user());
        let content = self.authored_content_in_force().await?;
        if target.state == UserState::Deleted {
            self.destroy_profile_key(user).await?;
            return Ok(UserDeletion {
                user: target,
                content,
                messages: 0,
                revisions: 0,
                files: 0,
                spared: 0,
                sessions: 0,
                links: 0,
                finished_earlier: true,
            });
        }
        let erased = self
            .erase_user_data(
                &actor,
                &Changer::Principal(caller.principal()),
                &target,
                content,
            )
            .await?;
        let count = |n: u64| Detail::from(i64::try_from(n).unwrap_or(i64::MAX));
        let tombstone = self
            .users
            .delete_with(
                &actor,
                user,
                vec![
                    ("content", Detail::from(content.as_str())),
                    ("messages", count(erased.messages)),
                    ("revisions", count(erased.revisions)),
                    ("files", count(erased.files)),
                    ("spared", count(erased.spared)),
                ],
            )
            .await?;
        self.destroy_profile_key(user).await?;
        Ok(UserDeletion {
            user: tombstone,
            content,
            messages: erased.messages,
            revisions: erased.revisions,
            files: erased.files,
            spared: erased.spared,
            sessions: erased.sessions,
            links: erased.links,
            finished_earlier: false,
        })
    }

    /// Steps 1 to 4 of a deletion (see the module's docs), for every door that deletes a user
    /// (an administrator, a SCIM client): what is left is the account itself, then the key.
    pub(crate) async fn erase_user_data(
        &self,
        actor: &Actor,
        changer: &Changer,
        target: &User,
        content: AuthoredContent,
    ) -> Result<Erased> {
        let user = target.id;
        self.authz.ensure_removable(user).await?;
        self.authz.apply(changer, Change::RemoveUser(user)).await?;
        if target.state == UserState::Active {
            self.users.deactivate(actor, user).await?;
        }
        let mut erased = match content {
            AuthoredContent::Keep => Erased::default(),
            AuthoredContent::Delete => self.remove_authored(user).await?,
        };
        let sessions = self.sessions.revoke_all(actor, user, None).await?;
        erased.sessions = u64::try_from(sessions).unwrap_or(u64::MAX);
        for provider in self.sso.links_of(user).await? {
            if self.sso.unlink(actor, user, &provider).await? {
                erased.links += 1;
            }
        }
        self.auth.forget(target).await?;
        Ok(erased)
    }

    /// The workspace's policy for deleted users' content, unchecked (for the doors that
    /// delete users).
    pub(crate) async fn authored_content_in_force(&self) -> Result<AuthoredContent> {
        Ok(self.authored_content_policy().await?.0)
    }

    /// Step 6: the user's profile key destroyed (idempotent).
    pub(crate) async fn destroy_profile_key(&self, user: UserId) -> Result<()> {
        self.keyring
            .destroy_scope_key(&self.ctx.tenant.to_string(), &self.scopes.user(user))
            .await
            .map_err(|e| Error::Unavailable {
                message: "the user's profile key could not be destroyed; delete the user again"
                    .into(),
                source: Some(Box::new(e)),
            })
    }

    /// Removes `user`'s messages (with their history) channel by channel and their files'
    /// content, in batches each one commit under the holds epoch, sparing what a hold keeps.
    async fn remove_authored(&self, user: UserId) -> Result<Erased> {
        let mut removed = Erased::default();
        let mut channel = self.next_channel(None);
        while let Some(current) = channel {
            self.remove_messages_of(current, user, &mut removed).await?;
            channel = self.next_channel(Some(current));
        }
        self.remove_files_of(user, &mut removed).await?;
        Ok(removed)
    }

    /// Commits `batch` (if it holds anything) under the holds epoch read with `held`.
    /// Returns whether it went in; `false` after a conflict (an edit or a hold meanwhile: read
    /// the same page again), until [`MAX_CONFLICTS`] in a row.
    async fn commit_held(
        &self,
        mut batch: Batch,
        held: &crate::holds::HeldSet,
        conflicts: &mut u32,
    ) -> Result<bool> {
        if batch.is_empty() {
            return Ok(true);
        }
        held.guard(self, &mut batch);
        match self.ctx.store.commit(batch).await {
            Ok(_) => {
                *conflicts = 0;
                Ok(true)
            }
            Err(e) if e.kind() == StorageKind::Conflict && *conflicts < MAX_CONFLICTS => {
                *conflicts += 1;
                Ok(false)
            }
            Err(e) if e.kind() == StorageKind::Conflict => Err(Error::Conflict(
                "the user's content kept changing; delete the user again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_messages_of(
        &self,
        channel: ChannelId,
        user: UserId,
        removed: &mut Erased,
    ) -> Result<()> {
        let batch_size = self.retention_config.batch.max(1);
        let mut after: Option<Vec<u8>> = None;
        let mut conflicts = 0;
        loop {
            let held = self.held_set().await?;
            let start = match &after {
                Some(key) => Bound::Excluded(key.clone()),
                None => Bound::Included(channel.to_bytes().to_vec()),
            };
            let range = KeyRange::new(start, KeyRange::prefix(&channel.to_bytes()).end);
            let page = self
                .ctx
                .store
                .scan(
                    &self.ns.messages,
                    &range,
                    ScanOptions::new().limit(batch_size),
                )
                .await?;
            let mut batch = Batch::new();
            let mut this = Erased::default();
            let mut ids = Vec::new();
            for entry in &page.entries {
                let message = codec::decode::<crate::messages::MessageHead>(&entry.value)?;
                if message.author != user {
                    continue;
                }
                if held.keeping(channel, user).is_some() {
                    this.spared += 1;
                    continue;
                }
                crate::messages::remove_message(&self.ns, &mut batch, entry, &message);
                ids.push(message.id);
                this.messages += 1;
                this.revisions += u64::from(message.revision);
            }
            if !self.commit_held(batch, &held, &mut conflicts).await? {
                continue; // read the same page again
            }
            if !ids.is_empty() {
                self.announce(crate::hub::Event::Removed {
                    channel,
                    messages: ids,
                });
            }
            removed.messages += this.messages;
            removed.revisions += this.revisions;
            removed.spared += this.spared;
            match (page.next, page.entries.last()) {
                (Some(_), Some(last)) => after = Some(last.key.clone()),
                _ => return Ok(()),
            }
        }
    }

    async fn remove_files_of(&self, user: UserId, removed: &mut Erased) -> Result<()> {
        let batch_size = self.retention_config.batch.max(1);
        let mut after: Option<Vec<u8>> = None;
        let mut conflicts = 0;
        loop {
            let held = self.held_set().await?;
            let page = self.file_records(after.clone(), batch_size).await?;
            let now = self.ctx.clock.now();
            let mut batch = Batch::new();
            let (mut files, mut spared) = (0, 0);
            for (mut info, version) in page.files {
                if info.uploader != user || info.is_removed() {
                    continue;
                }
                if held.keeping(info.channel, user).is_some() {
                    spared += 1;
                    continue;
                }
                info.name = None;
                info.expired = Some(now);
                self.erase_file_content(&mut info, version, &mut batch)?;
                files += 1;
            }
            if !self.commit_held(batch, &held, &mut conflicts).await? {
                continue; // read the same page again
            }
            removed.files += files;
            removed.spared += spared;
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }
}
