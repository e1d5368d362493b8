//! Channels: public and private ones with a unique name, and direct messages between two or more
//! users (private channels without a name). Visibility and membership live in zt-authz; the
//! channel's own record (name, topic, state) is sealed under the channel's scope key.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zt_authz::{
    Action, Change, Changer, Channel, ChannelVisibility, Membership, Permission, Resource, Scope,
    Source, SystemRole,
};
use zt_core::{ChannelId, Timestamp, UserId};
use zt_storage::{Batch, KvStoreExt as _, codec};

use crate::error::{Error, Result};
use crate::hub::Event;
use crate::store::KeyScopes;
use crate::workspace::{Caller, Workspace};

/// The longest channel name, in characters.
pub const MAX_NAME: usize = 64;
/// The longest topic, in characters.
pub const MAX_TOPIC: usize = 512;
/// The most members of a direct message.
pub const MAX_DIRECT_MEMBERS: usize = 8;

/// What kind of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A named channel, public or private.
    Standard,
    /// A direct message between its members.
    Direct,
}

/// A channel's own record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    id: ChannelId,
    kind: ChannelKind,
    name: String,
    topic: String,
    archived: bool,
    created_by: UserId,
    created: Timestamp,
    /// Left out of the directory for those who are not members (`manage_channel_directory`).
    /// Absent in records written before it existed: listed.
    #[serde(default)]
    unlisted: bool,
}

/// What [`Workspace::update_channel`] changes: the fields given, in one commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelUpdate {
    /// A new name (`edit_channel`).
    pub name: Option<String>,
    /// A new topic (`edit_channel`).
    pub topic: Option<String>,
    /// Archive (`true`) or unarchive (`archive_channel`).
    pub archived: Option<bool>,
}

/// A channel as a caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Its id.
    pub id: ChannelId,
    /// Standard or direct.
    pub kind: ChannelKind,
    /// Its name (empty for a direct message).
    pub name: String,
    /// Its topic.
    pub topic: String,
    /// Public or private.
    pub visibility: ChannelVisibility,
    /// Whether it is archived (readable, not writable).
    pub archived: bool,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created: Timestamp,
    /// Whether the directory shows it to those who are not members. Only a public channel can be
    /// unlisted; members, and those with `manage_channel_directory`, always see it.
    pub listed: bool,
}

fn check_text(field: &'static str, value: &str, max: usize, empty_ok: bool) -> Result<String> {
    // A name is kept in its canonical form, so look-alikes are one name (crate::names).
    let canonical;
    let value = if field == "name" {
        canonical = crate::names::canonical(value);
        canonical.as_str()
    } else {
        value.trim()
    };
    if (!empty_ok && value.is_empty()) || value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("{} to {max} characters", if empty_ok { 0 } else { 1 }),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "no control characters"));
    }
    Ok(value.to_owned())
}

/// The lookup key of a name: names are unique without case and in canonical form.
fn name_key(name: &str) -> Vec<u8> {
    crate::names::key(name)
}

impl Workspace {
    async fn record(&self, id: ChannelId) -> Result<Option<(Record, u64)>> {
        Ok(self
            .ctx
            .store
            .get_decoded::<Record>(&self.ns.channels, &id.to_bytes())
            .await?)
    }

    fn info(&self, record: Record) -> Result<ChannelInfo> {
        let visibility = self
            .authz
            .authorizer()
            .with_model(|m| m.channel(record.id).map(|c| c.visibility))
            .ok_or_else(|| Error::NotFound("channel".into()))?;
        Ok(ChannelInfo {
            id: record.id,
            kind: record.kind,
            name: record.name,
            topic: record.topic,
            visibility,
            archived: record.archived,
            created_by: record.created_by,
            created: record.created,
            listed: !record.unlisted,
        })
    }

    /// Creates a channel; the creator becomes its member and channel admin. Everything (the
    /// channel in authorization, the membership, the role, the record, the name) is one commit.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name or topic; [`Error::Conflict`] for a name taken;
    /// [`Error::Forbidden`] without `create_public_channel` / `create_private_channel`.
    pub async fn create_channel(
        &self,
        caller: &Caller,
        name: &str,
        visibility: ChannelVisibility,
        topic: &str,
    ) -> Result<ChannelInfo> {
        let name = check_text("name", name, MAX_NAME, false)?;
        let topic = check_text("topic", topic, MAX_TOPIC, true)?;
        let id = ChannelId::generate(&*self.ctx.clock);
        let record = Record {
            id,
            kind: ChannelKind::Standard,
            name: name.clone(),
            topic,
            archived: false,
            created_by: caller.user(),
            created: self.ctx.clock.now(),
            unlisted: false,
        };
        let mut extra = Batch::new();
        extra.put_if_absent(&self.ns.channel_names, &name_key(&name), &id.to_bytes());
        extra.put_if_absent(&self.ns.channels, &id.to_bytes(), &codec::encode(&record)?);
        let chat = Changer::System("chat".into());
        let steps = vec![
            (
                Changer::Principal(caller.principal()),
                Change::PutChannel(Channel {
                    id,
                    visibility,
                    groups: BTreeSet::new(),
                }),
            ),
            (
                chat.clone(),
                Change::AddMember {
                    user: caller.user(),
                    of: Membership::Channel(id),
                    source: Source::Manual,
                },
            ),
            (
                chat,
                Change::Grant {
                    user: caller.user(),
                    role: SystemRole::ChannelAdmin.id(),
                    at: Scope::Channel(id),
                },
            ),
        ];
        match self.authz.apply_all(steps, extra).await {
            Ok(_) => {}
            // The only precondition that can fail with a fresh id is the name's.
            Err(zt_authz::Error::Conflict(_)) if self.name_taken(&name).await? => {
                return Err(self.name_unavailable(caller).await);
            }
            Err(e) => return Err(e.into()),
        }
        self.info(record)
    }

    async fn name_taken(&self, name: &str) -> Result<bool> {
        Ok(self
            .ctx
            .store
            .get(&self.ns.channel_names, &name_key(name))
            .await?
            .is_some())
    }

    /// The channel, if the caller can see it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it does not exist or the caller cannot see it.
    pub async fn channel(&self, caller: &Caller, id: ChannelId) -> Result<ChannelInfo> {
        self.require(caller, Action::View, Resource::Channel(id), "channel")
            .await?;
        let (record, _) = self
            .record(id)
            .await?
            .ok_or_else(|| Error::NotFound("channel".into()))?;
        self.info(record)
    }

    /// The channel directory: every channel the caller can see, by id.
    ///
    /// # Errors
    /// The store's.
    pub async fn directory(&self, caller: &Caller) -> Result<Vec<ChannelInfo>> {
        // Catch up with changes made elsewhere before listing.
        self.authz
            .authorize(caller.principal(), Action::View, Resource::Tenant)
            .await?;
        let ids = self.authz.authorizer().visible_channels(caller.principal());
        let curator = self
            .authz
            .authorize(
                caller.principal(),
                Action::Do(Permission::ManageChannelDirectory),
                Resource::Tenant,
            )
            .await?
            .allowed;
        let mine: BTreeSet<ChannelId> = self
            .authz
            .authorizer()
            .with_model(|m| m.channels_of(caller.user()).collect());
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((record, _)) = self.record(id).await?
                && (!record.unlisted || curator || mine.contains(&id))
            {
                out.push(self.info(record)?);
            }
        }
        Ok(out)
    }

    /// Every channel the caller can see, with its listing: the channel-directory admin area
    /// (`manage_channel_directory`; a refusal is recorded as `admin.access_denied`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn admin_channel_directory(&self, caller: &Caller) -> Result<Vec<ChannelInfo>> {
        self.enter_admin_area(caller, crate::AdminArea::ChannelDirectory)
            .await?;
        self.directory(caller).await
    }

    /// Lists a public channel in the directory, or leaves it out for those who are not members
    /// (`manage_channel_directory`, over a channel the caller can see). The change is recorded
    /// as `settings.changed` (target `channel_directory`, with the channel and the listing)
    /// before it applies.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`]; [`Error::InvalidInput`] (`channel`) for a
    /// private channel or a direct message, which no directory shows to non-members anyway;
    /// [`Error::Internal`] when the record cannot be written (nothing changes then).
    pub async fn set_listed(
        &self,
        caller: &Caller,
        id: ChannelId,
        listed: bool,
    ) -> Result<ChannelInfo> {
        self.enter_admin_area(caller, crate::AdminArea::ChannelDirectory)
            .await?;
        self.require(caller, Action::View, Resource::Channel(id), "channel")
            .await?;
        let public = self.authz.authorizer().with_model(|m| {
            m.channel(id)
                .is_some_and(|c| c.visibility == ChannelVisibility::Public)
        });
        if !public {
            return Err(Error::invalid(
                "channel",
                "only a public channel is listed or unlisted",
            ));
        }
        let event = self
            .event(zt_core::AuditEventKind::SettingsChanged, caller)
            .target("channel_directory")
            .detail("channel", id.to_string())?
            .detail("listed", zt_core::Detail::Flag(listed))?;
        self.ctx.audit.append(event).await?;
        self.rewrite_record(id, |record, _, _| {
            if !public || record.kind != ChannelKind::Standard {
                return Err(Error::invalid(
                    "channel",
                    "only a public channel is listed or unlisted",
                ));
            }
            record.unlisted = !listed;
            Ok(())
        })
        .await
    }

    /// Changes a record with `edit`, once the caller's right to was checked.
    async fn rewrite_record(
        &self,
        id: ChannelId,
        edit: impl FnOnce(&mut Record, &mut Batch, &Workspace) -> Result<()>,
    ) -> Result<ChannelInfo> {
        let (mut record, version) = self
            .record(id)
            .await?
            .ok_or_else(|| Error::NotFound("channel".into()))?;
        let mut batch = Batch::new();
        edit(&mut record, &mut batch, self)?;
        batch.require_version(&self.ns.channels, &id.to_bytes(), version);
        batch.put(&self.ns.channels, &id.to_bytes(), &codec::encode(&record)?);
        self.ctx.store.commit(batch).await?;
        self.announce(Event::ChannelChanged(id));
        self.info(record)
    }

    /// Renames a standard channel (`edit_channel`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Conflict`] for a name taken, [`Error::Forbidden`],
    /// [`Error::NotFound`].
    pub async fn rename_channel(
        &self,
        caller: &Caller,
        id: ChannelId,
        name: &str,
    ) -> Result<ChannelInfo> {
        self.update_channel(
            caller,
            id,
            ChannelUpdate {
                name: Some(name.to_owned()),
                ..ChannelUpdate::default()
            },
        )
        .await
    }

    /// Changes several things of a channel at once, in one commit: each field given needs its
    /// own permission (`edit_channel` for the name and topic, `archive_channel` for the
    /// archive flag), and all are checked before anything changes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name or topic, or an empty update; [`Error::Conflict`]
    /// for a name taken; [`Error::Forbidden`]; [`Error::NotFound`].
    pub async fn update_channel(
        &self,
        caller: &Caller,
        id: ChannelId,
        update: ChannelUpdate,
    ) -> Result<ChannelInfo> {
        if update.name.is_none() && update.topic.is_none() && update.archived.is_none() {
            return Err(Error::invalid("update", "nothing to change"));
        }
        if update.name.is_some() || update.topic.is_some() {
            self.require_in(caller, id, Permission::EditChannel).await?;
        }
        if update.archived.is_some() {
            self.require_in(caller, id, Permission::ArchiveChannel)
                .await?;
        }
        let name = match &update.name {
            Some(name) => {
                let name = check_text("name", name, MAX_NAME, false)?;
                let taken = self.name_taken(&name).await?;
                if taken {
                    let current = self.record(id).await?.map(|(record, _)| record.name);
                    if current.is_none_or(|current| name_key(&current) != name_key(&name)) {
                        return Err(self.name_unavailable(caller).await);
                    }
                }
                Some((name, taken))
            }
            None => None,
        };
        let topic = match &update.topic {
            Some(topic) => Some(check_text("topic", topic, MAX_TOPIC, true)?),
            None => None,
        };
        self.rewrite_record(id, |record, batch, w| {
            if let Some((name, taken)) = name {
                if record.kind == ChannelKind::Direct {
                    return Err(Error::invalid("name", "direct messages have no name"));
                }
                if name_key(&record.name) != name_key(&name) {
                    if taken {
                        // Taken meanwhile.
                        return Err(Error::Conflict("that name is not available".into()));
                    }
                    batch.delete(&w.ns.channel_names, &name_key(&record.name));
                    batch.put_if_absent(&w.ns.channel_names, &name_key(&name), &id.to_bytes());
                }
                record.name = name;
            }
            if let Some(topic) = topic {
                record.topic = topic;
            }
            if let Some(archived) = update.archived {
                record.archived = archived;
            }
            Ok(())
        })
        .await
    }

    /// Sets the topic (`edit_channel`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Forbidden`], [`Error::NotFound`].
    pub async fn set_topic(
        &self,
        caller: &Caller,
        id: ChannelId,
        topic: &str,
    ) -> Result<ChannelInfo> {
        self.update_channel(
            caller,
            id,
            ChannelUpdate {
                topic: Some(topic.to_owned()),
                ..ChannelUpdate::default()
            },
        )
        .await
    }

    /// Archives or unarchives the channel (`archive_channel`). An archived channel is read-only.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`].
    pub async fn set_archived(
        &self,
        caller: &Caller,
        id: ChannelId,
        archived: bool,
    ) -> Result<ChannelInfo> {
        self.update_channel(
            caller,
            id,
            ChannelUpdate {
                archived: Some(archived),
                ..ChannelUpdate::default()
            },
        )
        .await
    }

    /// Deletes the channel (`delete_channel`): its authorization, record and name go in one
    /// commit, then its scope key is destroyed, which makes every message of it unreadable
    /// (crypto-shredding) before any clean-up removes the ciphertext.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`]; [`Error::Conflict`] while a legal hold keeps
    /// content of the channel ([`crate::holds`]); [`Error::Unavailable`] when the key could not
    /// be destroyed yet (the channel is gone; retrying the deletion of its key is safe).
    pub async fn delete_channel(&self, caller: &Caller, id: ChannelId) -> Result<()> {
        self.require_in(caller, id, Permission::DeleteChannel)
            .await?;
        let (record, version) = self
            .record(id)
            .await?
            .ok_or_else(|| Error::NotFound("channel".into()))?;
        // Held content survives: no deletion, which would shred it, while a hold keeps any;
        // a hold placed meanwhile makes the commit fail.
        let held = self.ensure_channel_unheld(id).await?;
        let mut extra = Batch::new();
        held.guard(self, &mut extra);
        extra.require_version(&self.ns.channels, &id.to_bytes(), version);
        extra.delete(&self.ns.channels, &id.to_bytes());
        if record.kind == ChannelKind::Standard {
            extra.delete(&self.ns.channel_names, &name_key(&record.name));
        }
        self.authz
            .apply_all(
                vec![(
                    Changer::Principal(caller.principal()),
                    Change::RemoveChannel(id),
                )],
                extra,
            )
            .await?;
        let tenant = self.ctx.tenant.to_string();
        let unavailable = |e: zt_crypto::Error| Error::Unavailable {
            message: "the channel's key could not be destroyed yet".into(),
            source: Some(Box::new(e)),
        };
        // A channel made before scopes were blinded may still have a key of the older name.
        self.keyring
            .destroy_existing_scope_key(&tenant, &KeyScopes::legacy(id))
            .await
            .map_err(unavailable)?;
        self.keyring
            .destroy_scope_key(&tenant, &self.scopes.scope(id))
            .await
            .map_err(unavailable)
    }

    /// Adds `user` to the channel by hand: oneself to a public channel one can see, anyone with
    /// `manage_subscribers` there.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a channel the caller cannot see; [`Error::Forbidden`].
    pub async fn add_member(
        &self,
        caller: &Caller,
        channel: ChannelId,
        user: UserId,
    ) -> Result<()> {
        self.membership(caller, channel, user, true).await
    }

    /// Removes the manual source of `user`'s membership: oneself always, others with
    /// `manage_subscribers`. A membership that also comes from a linked group, OIDC or SCIM
    /// remains.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a channel the caller cannot see; [`Error::Forbidden`].
    pub async fn remove_member(
        &self,
        caller: &Caller,
        channel: ChannelId,
        user: UserId,
    ) -> Result<()> {
        self.membership(caller, channel, user, false).await
    }

    async fn membership(
        &self,
        caller: &Caller,
        channel: ChannelId,
        user: UserId,
        add: bool,
    ) -> Result<()> {
        let of = Membership::Channel(channel);
        let change = if add {
            Change::AddMember {
                user,
                of,
                source: Source::Manual,
            }
        } else {
            Change::RemoveMember {
                user,
                of,
                source: Source::Manual,
            }
        };
        self.apply_as(caller, change).await?;
        self.announce(Event::MembershipChanged(channel));
        Ok(())
    }

    /// The direct message between the caller and `others` (created on first use; the same set
    /// of members always gets the same channel).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for fewer than one or more than seven others, or an unknown or
    /// inactive user; [`Error::Forbidden`] without `start_direct_message`.
    pub async fn direct(&self, caller: &Caller, others: &[UserId]) -> Result<ChannelInfo> {
        self.require(
            caller,
            Action::Do(Permission::StartDirectMessage),
            Resource::Tenant,
            "tenant",
        )
        .await?;
        let mut members: BTreeSet<UserId> = others.iter().copied().collect();
        members.insert(caller.user());
        if members.len() < 2 || members.len() > MAX_DIRECT_MEMBERS {
            return Err(Error::invalid(
                "members",
                format!("2 to {MAX_DIRECT_MEMBERS} distinct users, the caller included"),
            ));
        }
        for user in &members {
            let active = self
                .users
                .get(*user)
                .await?
                .is_some_and(|u| u.state == zt_core::identity::UserState::Active);
            if !active {
                return Err(Error::invalid(
                    "members",
                    format!("{user} is not an active user"),
                ));
            }
        }
        let mut digest = Sha256::new();
        for user in &members {
            digest.update(user.to_bytes());
        }
        let key = digest.finalize().to_vec();
        if let Some(id) = self.direct_index(&key).await? {
            return self.channel(caller, id).await;
        }
        let id = ChannelId::generate(&*self.ctx.clock);
        let record = Record {
            id,
            kind: ChannelKind::Direct,
            name: String::new(),
            topic: String::new(),
            archived: false,
            created_by: caller.user(),
            created: self.ctx.clock.now(),
            unlisted: false,
        };
        let mut extra = Batch::new();
        extra.put_if_absent(&self.ns.direct, &key, &id.to_bytes());
        extra.put_if_absent(&self.ns.channels, &id.to_bytes(), &codec::encode(&record)?);
        let chat = Changer::System("chat".into());
        let mut steps = vec![(
            chat.clone(),
            Change::PutChannel(Channel {
                id,
                visibility: ChannelVisibility::Private,
                groups: BTreeSet::new(),
            }),
        )];
        for user in &members {
            steps.push((
                chat.clone(),
                Change::AddMember {
                    user: *user,
                    of: Membership::Channel(id),
                    source: Source::Manual,
                },
            ));
        }
        match self.authz.apply_all(steps, extra).await {
            Ok(_) => self.info(record),
            Err(zt_authz::Error::Conflict(m)) => match self.direct_index(&key).await? {
                // Opened concurrently by another member: that one it is.
                Some(id) => self.channel(caller, id).await,
                None => Err(Error::Conflict(m)),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn direct_index(&self, key: &[u8]) -> Result<Option<ChannelId>> {
        match self.ctx.store.get(&self.ns.direct, key).await? {
            None => Ok(None),
            Some(entry) => <[u8; 16]>::try_from(entry.value.as_slice())
                .map(|id| Some(ChannelId::from_bytes(id)))
                .map_err(|_| Error::damaged("a direct-message index record is damaged")),
        }
    }
}
