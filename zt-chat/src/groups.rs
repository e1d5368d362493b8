//! Groups: public, private or hidden; members by source (manual, OIDC, SCIM); subgroups; and
//! channels linked to a group, whose membership then mirrors it while their chat visibility stays
//! their own. Structure and membership live in zt-authz; the group's own record (its name) is
//! sealed, and names are blinded lookup keys.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use zt_authz::{
    Action, Change, Changer, Group, GroupVisibility, Membership, MentionPolicy, Resource, Scope,
    Source, SystemRole,
};
use zt_core::{ChannelId, GroupId, Timestamp, UserId};
use zt_storage::{Batch, KvStoreExt as _, codec};

use crate::error::{Error, Result};
use crate::hub::Event;
use crate::workspace::{Caller, Workspace};

/// The longest group name, in characters.
pub const MAX_GROUP_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    id: GroupId,
    pub(crate) name: String,
    /// Who made it; the nil id for a group SCIM made.
    created_by: UserId,
    created: Timestamp,
}

/// A group as a caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Its id.
    pub id: GroupId,
    /// Its name (mentioned as `@name`).
    pub name: String,
    /// Who sees it.
    pub visibility: GroupVisibility,
    /// The group it is a subgroup of.
    pub parent: Option<GroupId>,
    /// Who may mention it.
    pub mention: MentionPolicy,
    /// The channels linked to it (those the caller may see).
    pub linked: Vec<ChannelId>,
}

/// What a group should become ([`Workspace::update_group`]); `None` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupUpdate {
    /// Who sees it (`manage_group_members`).
    pub visibility: Option<GroupVisibility>,
    /// Who may mention it (`manage_mention_restrictions`).
    pub mention: Option<MentionPolicy>,
    /// Its parent, `Some(None)` for none (`manage_subgroups` over the old and the new parent).
    pub parent: Option<Option<GroupId>>,
}

fn name_key(name: &str) -> Vec<u8> {
    crate::names::key(name)
}

fn check_name(name: &str) -> Result<String> {
    let name = crate::names::canonical(name);
    let name = name.as_str();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_GROUP_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::invalid(
            "name",
            format!("1 to {MAX_GROUP_NAME} letters, digits, - _ ."),
        ));
    }
    Ok(name.to_owned())
}

impl Workspace {
    /// Adds to `batch` the group's own record and name index under `name`: a new group's, or
    /// (`renaming`) a rename of an existing one under its current version. The name is
    /// claimed only if free, so a taken one fails the commit as a conflict.
    pub(crate) async fn group_record_writes(
        &self,
        batch: &mut Batch,
        id: GroupId,
        name: &str,
        renaming: bool,
    ) -> Result<()> {
        let name = check_name(name)?;
        let record = if renaming {
            let (mut record, version) = self
                .ctx
                .store
                .get_decoded::<Record>(&self.ns.groups, &id.to_bytes())
                .await?
                .ok_or_else(|| Error::NotFound("group".into()))?;
            if name_key(&record.name) != name_key(&name) {
                batch.delete(&self.ns.group_names, &name_key(&record.name));
                batch.put_if_absent(&self.ns.group_names, &name_key(&name), &id.to_bytes());
            }
            batch.require_version(&self.ns.groups, &id.to_bytes(), version);
            record.name = name;
            record
        } else {
            batch.put_if_absent(&self.ns.group_names, &name_key(&name), &id.to_bytes());
            Record {
                id,
                name,
                created_by: UserId::from_bytes([0; 16]),
                created: self.ctx.clock.now(),
            }
        };
        batch.put(&self.ns.groups, &id.to_bytes(), &codec::encode(&record)?);
        Ok(())
    }

    pub(crate) fn group_now(&self, id: GroupId) -> Option<Group> {
        self.authz.authorizer().with_model(|m| m.group(id).cloned())
    }

    async fn group_info(&self, caller: &Caller, id: GroupId) -> Result<GroupInfo> {
        let group = self
            .group_now(id)
            .ok_or_else(|| Error::NotFound("group".into()))?;
        let (record, _) = self
            .ctx
            .store
            .get_decoded::<Record>(&self.ns.groups, &id.to_bytes())
            .await?
            .ok_or_else(|| Error::NotFound("group".into()))?;
        let linked: Vec<ChannelId> = self
            .authz
            .authorizer()
            .with_model(|m| m.linked_channels(id).collect());
        let mut visible = Vec::new();
        for channel in linked {
            if self
                .authz
                .authorize(caller.principal(), Action::View, Resource::Channel(channel))
                .await?
                .allowed
            {
                visible.push(channel);
            }
        }
        Ok(GroupInfo {
            id,
            name: record.name,
            visibility: group.visibility,
            parent: group.parent,
            mention: group.mention,
            linked: visible,
        })
    }

    /// Creates a group (`create_group`; `manage_subgroups` over the parent if any). The creator
    /// becomes its member and group admin, in the same commit.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Conflict`] for a name taken, [`Error::Forbidden`],
    /// [`Error::NotFound`] for a parent the caller cannot see.
    pub async fn create_group(
        &self,
        caller: &Caller,
        name: &str,
        visibility: GroupVisibility,
        parent: Option<GroupId>,
    ) -> Result<GroupInfo> {
        let name = check_name(name)?;
        let id = GroupId::generate(&*self.ctx.clock);
        let record = Record {
            id,
            name: name.clone(),
            created_by: caller.user(),
            created: self.ctx.clock.now(),
        };
        let mut extra = Batch::new();
        extra.put_if_absent(&self.ns.group_names, &name_key(&name), &id.to_bytes());
        extra.put_if_absent(&self.ns.groups, &id.to_bytes(), &codec::encode(&record)?);
        let chat = Changer::System("chat".into());
        let steps = vec![
            (
                Changer::Principal(caller.principal()),
                Change::PutGroup(Group {
                    id,
                    visibility,
                    parent,
                    mention: MentionPolicy::Anyone,
                }),
            ),
            (
                chat.clone(),
                Change::AddMember {
                    user: caller.user(),
                    of: Membership::Group(id),
                    source: Source::Manual,
                },
            ),
            (
                chat,
                Change::Grant {
                    user: caller.user(),
                    role: SystemRole::GroupAdmin.id(),
                    at: Scope::Group(id),
                },
            ),
        ];
        match self.authz.apply_all(steps, extra).await {
            Ok(_) => {}
            Err(zt_authz::Error::Conflict(_))
                if self
                    .ctx
                    .store
                    .get(&self.ns.group_names, &name_key(&name))
                    .await?
                    .is_some() =>
            {
                return Err(self.name_unavailable(caller).await);
            }
            Err(e) => return Err(e.into()),
        }
        self.announce(Event::GroupChanged(id));
        self.group_info(caller, id).await
    }

    /// The group, if the caller can see it.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn group(&self, caller: &Caller, id: GroupId) -> Result<GroupInfo> {
        self.require(caller, Action::View, Resource::Group(id), "group")
            .await?;
        self.group_info(caller, id).await
    }

    /// The group called `name`, if the caller may mention it: what a mention lookup offers.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none the caller may mention.
    pub async fn find_group(&self, caller: &Caller, name: &str) -> Result<GroupInfo> {
        let id = match self
            .ctx
            .store
            .get(&self.ns.group_names, &name_key(name.trim()))
            .await?
        {
            Some(entry) => <[u8; 16]>::try_from(entry.value.as_slice())
                .map(GroupId::from_bytes)
                .map_err(|_| Error::damaged("a group name record is damaged"))?,
            None => return Err(Error::NotFound("group".into())),
        };
        self.require(caller, Action::Mention, Resource::Group(id), "group")
            .await?;
        self.group_info(caller, id).await
    }

    /// Every group the caller can see (hidden ones only with `view_hidden_groups`).
    ///
    /// # Errors
    /// The store's.
    pub async fn groups(&self, caller: &Caller) -> Result<Vec<GroupInfo>> {
        self.authz
            .authorize(caller.principal(), Action::View, Resource::Tenant)
            .await?;
        let ids = self.authz.authorizer().visible_groups(caller.principal());
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.group_info(caller, id).await?);
        }
        Ok(out)
    }

    /// Changes a group's visibility, mention policy or parent (each with its own permission).
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], [`Error::InvalidInput`] for a subgroup cycle.
    pub async fn update_group(
        &self,
        caller: &Caller,
        id: GroupId,
        update: GroupUpdate,
    ) -> Result<GroupInfo> {
        self.require(caller, Action::View, Resource::Group(id), "group")
            .await?;
        let mut group = self
            .group_now(id)
            .ok_or_else(|| Error::NotFound("group".into()))?;
        if let Some(v) = update.visibility {
            group.visibility = v;
        }
        if let Some(m) = update.mention {
            group.mention = m;
        }
        if let Some(p) = update.parent {
            group.parent = p;
        }
        self.authz
            .apply(
                &Changer::Principal(caller.principal()),
                Change::PutGroup(group),
            )
            .await?;
        self.group_info(caller, id).await
    }

    /// Deletes a group without subgroups; its linked channels lose the members it gave them.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] while it has subgroups.
    pub async fn delete_group(&self, caller: &Caller, id: GroupId) -> Result<()> {
        self.require(caller, Action::View, Resource::Group(id), "group")
            .await?;
        let (record, version) = self
            .ctx
            .store
            .get_decoded::<Record>(&self.ns.groups, &id.to_bytes())
            .await?
            .ok_or_else(|| Error::NotFound("group".into()))?;
        let mut extra = Batch::new();
        extra.require_version(&self.ns.groups, &id.to_bytes(), version);
        extra.delete(&self.ns.groups, &id.to_bytes());
        extra.delete(&self.ns.group_names, &name_key(&record.name));
        // A group SCIM made frees its SCIM name and external id with it.
        if let Some((scim, scim_version)) = self
            .scim_groups
            .get(&*self.ctx.store, id.to_bytes())
            .await?
        {
            self.scim_groups
                .remove(&mut extra, id.to_bytes(), &scim.attributes()?, scim_version);
        }
        self.authz
            .apply_all(
                vec![(
                    Changer::Principal(caller.principal()),
                    Change::RemoveGroup(id),
                )],
                extra,
            )
            .await?;
        Ok(())
    }

    /// Adds (or removes) `user` to the group by hand (`manage_group_members`; leaving needs no
    /// power). A membership that SCIM or OIDC also gives remains until they drop it.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`].
    pub async fn set_group_member(
        &self,
        caller: &Caller,
        id: GroupId,
        user: UserId,
        member: bool,
    ) -> Result<()> {
        let of = Membership::Group(id);
        let source = Source::Manual;
        let change = if member {
            Change::AddMember { user, of, source }
        } else {
            Change::RemoveMember { user, of, source }
        };
        self.apply_as(caller, change).await?;
        self.announce_group(id);
        Ok(())
    }

    /// What an identity provider says of `user`'s membership of the group (`source` is OIDC or
    /// SCIM): the deployment's own change, after it authenticated the provider.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for the manual source; [`Error::NotFound`].
    pub async fn sync_group_member(
        &self,
        provider: Source,
        id: GroupId,
        user: UserId,
        member: bool,
    ) -> Result<()> {
        if provider == Source::Manual {
            return Err(Error::invalid("source", "OIDC or SCIM"));
        }
        let of = Membership::Group(id);
        let change = if member {
            Change::AddMember {
                user,
                of,
                source: provider,
            }
        } else {
            Change::RemoveMember {
                user,
                of,
                source: provider,
            }
        };
        self.authz
            .apply(&Changer::System(provider.name().into()), change)
            .await?;
        self.announce_group(id);
        Ok(())
    }

    /// Who gives `user` their membership of the group (manual, OIDC, SCIM; none when not a
    /// member), if the caller can see the group.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn group_member_sources(
        &self,
        caller: &Caller,
        id: GroupId,
        user: UserId,
    ) -> Result<zt_authz::Sources> {
        self.require(caller, Action::View, Resource::Group(id), "group")
            .await?;
        Ok(self
            .authz
            .authorizer()
            .with_model(|m| m.group_sources(id, user)))
    }

    /// Links (or unlinks) a channel to a group: its membership then mirrors the group's
    /// (`manage_linked_channels` over the group, `manage_subscribers` in the channel).
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`].
    pub async fn link_channel(
        &self,
        caller: &Caller,
        group: GroupId,
        channel: ChannelId,
        linked: bool,
    ) -> Result<()> {
        let mut current = self
            .authz
            .authorizer()
            .with_model(|m| m.channel(channel).cloned())
            .ok_or_else(|| Error::NotFound("channel".into()))?;
        let mut groups: BTreeSet<GroupId> = current.groups.clone();
        if linked {
            groups.insert(group);
        } else {
            groups.remove(&group);
        }
        current.groups = groups;
        self.authz
            .apply(
                &Changer::Principal(caller.principal()),
                Change::PutChannel(current),
            )
            .await?;
        self.announce(Event::MembershipChanged(channel));
        Ok(())
    }

    pub(crate) fn announce_group(&self, group: GroupId) {
        self.announce(Event::GroupChanged(group));
        let linked: Vec<ChannelId> = self
            .authz
            .authorizer()
            .with_model(|m| m.linked_channels(group).collect());
        for channel in linked {
            self.announce(Event::MembershipChanged(channel));
        }
    }
}
