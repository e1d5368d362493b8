//! The authorization state of one tenant, as data: roles, assignments, channels, groups and
//! memberships with their sources. Mutations here check shape (ids exist, scopes fit, no subgroup
//! cycle) but not who may make them; that is the guardrails' job ([`crate::guard`]).

use std::collections::BTreeSet;

use crate::cow::CowMap;

use serde::{Deserialize, Serialize};
use zt_core::{ChannelId, GroupId, RoleId, TenantId, UserId};

use crate::error::{Error, Result};
use crate::role::{Role, RoleScope, SystemRole};

/// Who can see a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelVisibility {
    /// Tenant members who may browse public channels see it.
    Public,
    /// Only its members see it (an admin who is not a member sees neither its content nor its
    /// membership).
    Private,
}

/// Who can see a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupVisibility {
    /// Every tenant member.
    Public,
    /// Its members (also through subgroups) and whoever holds a group power over it.
    Private,
    /// Only holders of `view_hidden_groups` (tenant-wide, or over this group); also out of
    /// listings and mention lookups.
    Hidden,
}

/// Who may mention a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MentionPolicy {
    /// Anyone who can see it.
    Anyone,
    /// Its members.
    Members,
    /// Only holders of `manage_mention_restrictions` over it.
    Managers,
}

/// A stored membership source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Added by hand.
    Manual,
    /// From the OpenID provider's claims.
    Oidc,
    /// Pushed by a SCIM client.
    Scim,
}

impl Source {
    /// Every stored source.
    pub const ALL: [Source; 3] = [Source::Manual, Source::Oidc, Source::Scim];

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Manual => "manual",
            Source::Oidc => "oidc",
            Source::Scim => "scim",
        }
    }
}

/// The stored sources of one membership: it exists while at least one source holds it (or,
/// for a channel, a linked group the user belongs to).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Sources(u8);

impl Sources {
    /// No source.
    pub const NONE: Sources = Sources(0);

    /// Whether `source` holds the membership.
    pub const fn contains(self, source: Source) -> bool {
        self.0 & source.bit() != 0
    }

    /// With `source` added.
    #[must_use]
    pub const fn with(self, source: Source) -> Self {
        Sources(self.0 | source.bit())
    }

    /// With `source` removed.
    #[must_use]
    pub const fn without(self, source: Source) -> Self {
        Sources(self.0 & !source.bit())
    }

    /// Whether no source holds it.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The sources, in order.
    pub fn iter(self) -> impl Iterator<Item = Source> {
        Source::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Source::name))
            .finish()
    }
}

/// A channel, as authorization sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Its id.
    pub id: ChannelId,
    /// Who sees it. Set apart from the visibility of any group linked to it.
    pub visibility: ChannelVisibility,
    /// Linked groups: their members (with subgroups) are members of the channel.
    pub groups: BTreeSet<GroupId>,
}

/// A group, as authorization sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// Who sees it.
    pub visibility: GroupVisibility,
    /// The group it is a subgroup of: its members are members of the parent too.
    pub parent: Option<GroupId>,
    /// Who may mention it.
    pub mention: MentionPolicy,
}

/// The state of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    tenant: TenantId,
    roles: CowMap<RoleId, Role>,
    tenant_roles: CowMap<UserId, BTreeSet<RoleId>>,
    channels: CowMap<ChannelId, Channel>,
    groups: CowMap<GroupId, Group>,
    channel_members: CowMap<(ChannelId, UserId), Sources>,
    group_members: CowMap<(GroupId, UserId), Sources>,
    channel_roles: CowMap<(ChannelId, UserId), BTreeSet<RoleId>>,
    group_roles: CowMap<(GroupId, UserId), BTreeSet<RoleId>>,
    // Indexes, kept with every mutation.
    /// (role, user) for every tenant role held: the holders of a role without a scan.
    role_holders: CowMap<(RoleId, UserId), ()>,
    user_channels: CowMap<UserId, BTreeSet<ChannelId>>,
    user_groups: CowMap<UserId, BTreeSet<GroupId>>,
    user_channel_roles: CowMap<UserId, BTreeSet<ChannelId>>,
    user_group_roles: CowMap<UserId, BTreeSet<GroupId>>,
    children: CowMap<GroupId, BTreeSet<GroupId>>,
    linked: CowMap<GroupId, BTreeSet<ChannelId>>,
}

fn index_set<K: Ord + Copy, V: Ord + Copy>(
    index: &mut CowMap<K, BTreeSet<V>>,
    key: K,
    value: V,
    present: bool,
) {
    if present {
        match index.get_mut(&key) {
            Some(set) => {
                set.insert(value);
            }
            None => {
                index.insert(key, BTreeSet::from([value]));
            }
        }
    } else if let Some(set) = index.get_mut(&key) {
        set.remove(&value);
        if set.is_empty() {
            index.remove(&key);
        }
    }
}

impl Model {
    /// A tenant with only the system roles.
    pub fn new(tenant: TenantId) -> Self {
        Model {
            tenant,
            roles: SystemRole::ALL
                .into_iter()
                .map(|r| (r.id(), r.role()))
                .collect(),
            tenant_roles: CowMap::new(),
            role_holders: CowMap::new(),
            channels: CowMap::new(),
            groups: CowMap::new(),
            channel_members: CowMap::new(),
            group_members: CowMap::new(),
            channel_roles: CowMap::new(),
            group_roles: CowMap::new(),
            user_channels: CowMap::new(),
            user_groups: CowMap::new(),
            user_channel_roles: CowMap::new(),
            user_group_roles: CowMap::new(),
            children: CowMap::new(),
            linked: CowMap::new(),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    // ---- Reading ----

    /// A role.
    pub fn role(&self, id: RoleId) -> Option<&Role> {
        self.roles.get(&id)
    }

    /// The role called `name`.
    pub fn role_named(&self, name: &str) -> Option<&Role> {
        self.roles.values().find(|r| r.name == name)
    }

    /// Every role, by id.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// The tenant roles of `user` (empty: not a member of the tenant).
    pub fn tenant_roles(&self, user: UserId) -> impl Iterator<Item = RoleId> + '_ {
        self.tenant_roles.get(&user).into_iter().flatten().copied()
    }

    /// Every user holding a tenant role.
    pub fn users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.tenant_roles.keys().copied()
    }

    /// The holders of `role` at tenant level.
    pub fn holders(&self, role: RoleId) -> impl Iterator<Item = UserId> + '_ {
        self.role_holders
            .range(
                (role, UserId::from_bytes([0; 16])),
                (role, UserId::from_bytes([0xff; 16])),
            )
            .map(|((_, user), ())| *user)
    }

    /// A channel.
    pub fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.get(&id)
    }

    /// Every channel, by id.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// A group.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(&id)
    }

    /// Every group, by id.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The stored sources of `user`'s membership of `channel` (not counting linked groups).
    pub fn channel_sources(&self, channel: ChannelId, user: UserId) -> Sources {
        self.channel_members
            .get(&(channel, user))
            .copied()
            .unwrap_or_default()
    }

    /// The stored sources of `user`'s membership of `group` (not counting subgroups).
    pub fn group_sources(&self, group: GroupId, user: UserId) -> Sources {
        self.group_members
            .get(&(group, user))
            .copied()
            .unwrap_or_default()
    }

    /// Every stored channel membership.
    pub fn channel_memberships(&self) -> impl Iterator<Item = (ChannelId, UserId, Sources)> + '_ {
        self.channel_members.iter().map(|((c, u), s)| (*c, *u, *s))
    }

    /// Every stored group membership.
    pub fn group_memberships(&self) -> impl Iterator<Item = (GroupId, UserId, Sources)> + '_ {
        self.group_members.iter().map(|((g, u), s)| (*g, *u, *s))
    }

    /// The channel roles of `user` in `channel`.
    pub fn channel_roles(
        &self,
        channel: ChannelId,
        user: UserId,
    ) -> impl Iterator<Item = RoleId> + '_ {
        self.channel_roles
            .get(&(channel, user))
            .into_iter()
            .flatten()
            .copied()
    }

    /// The group roles of `user` over `group`.
    pub fn group_roles(&self, group: GroupId, user: UserId) -> impl Iterator<Item = RoleId> + '_ {
        self.group_roles
            .get(&(group, user))
            .into_iter()
            .flatten()
            .copied()
    }

    /// Every channel role assignment.
    pub fn channel_role_assignments(
        &self,
    ) -> impl Iterator<Item = (ChannelId, UserId, &BTreeSet<RoleId>)> + '_ {
        self.channel_roles.iter().map(|((c, u), r)| (*c, *u, r))
    }

    /// Every group role assignment.
    pub fn group_role_assignments(
        &self,
    ) -> impl Iterator<Item = (GroupId, UserId, &BTreeSet<RoleId>)> + '_ {
        self.group_roles.iter().map(|((g, u), r)| (*g, *u, r))
    }

    /// The channels where `user` has stored sources.
    pub fn channels_of(&self, user: UserId) -> impl Iterator<Item = ChannelId> + '_ {
        self.user_channels.get(&user).into_iter().flatten().copied()
    }

    /// The groups where `user` has stored sources.
    pub fn groups_of(&self, user: UserId) -> impl Iterator<Item = GroupId> + '_ {
        self.user_groups.get(&user).into_iter().flatten().copied()
    }

    /// The channels where `user` holds channel roles.
    pub fn channel_roles_of(&self, user: UserId) -> impl Iterator<Item = ChannelId> + '_ {
        self.user_channel_roles
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
    }

    /// The groups where `user` holds group roles.
    pub fn group_roles_of(&self, user: UserId) -> impl Iterator<Item = GroupId> + '_ {
        self.user_group_roles
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
    }

    /// The direct subgroups of `group`.
    pub fn subgroups(&self, group: GroupId) -> impl Iterator<Item = GroupId> + '_ {
        self.children.get(&group).into_iter().flatten().copied()
    }

    /// The channels linked to `group`.
    pub fn linked_channels(&self, group: GroupId) -> impl Iterator<Item = ChannelId> + '_ {
        self.linked.get(&group).into_iter().flatten().copied()
    }

    // ---- Changing ----

    fn existing_role(&self, id: RoleId, scope: RoleScope) -> Result<&Role> {
        let role = self
            .roles
            .get(&id)
            .ok_or_else(|| Error::NotFound(format!("role {id}")))?;
        if role.scope != scope {
            return Err(Error::InvalidInput(format!(
                "role {} is a {:?} role, not a {scope:?} one",
                role.name, role.scope
            )));
        }
        Ok(role)
    }

    /// Adds or replaces a custom role.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad role, a system role, a taken name or a changed scope.
    pub fn put_role(&mut self, role: Role) -> Result<()> {
        role.validate()?;
        if role.is_system() || SystemRole::from_id(role.id).is_some() {
            return Err(Error::InvalidInput(format!(
                "system role {} is locked",
                role.name
            )));
        }
        if let Some(other) = self.role_named(&role.name)
            && other.id != role.id
        {
            return Err(Error::InvalidInput(format!(
                "the role name {} is taken",
                role.name
            )));
        }
        if let Some(old) = self.roles.get(&role.id)
            && old.scope != role.scope
        {
            return Err(Error::InvalidInput("a role's scope cannot change".into()));
        }
        self.roles.insert(role.id, role);
        Ok(())
    }

    /// Whether `role` is assigned anywhere.
    pub fn is_assigned(&self, role: RoleId) -> bool {
        self.tenant_roles.values().any(|r| r.contains(&role))
            || self.channel_roles.values().any(|r| r.contains(&role))
            || self.group_roles.values().any(|r| r.contains(&role))
    }

    /// Removes a custom role that nobody holds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a system role; [`Error::Conflict`] while it is assigned;
    /// [`Error::NotFound`].
    pub fn remove_role(&mut self, id: RoleId) -> Result<Role> {
        if SystemRole::from_id(id).is_some() {
            return Err(Error::InvalidInput("system roles are locked".into()));
        }
        if self.is_assigned(id) {
            return Err(Error::Conflict(
                "the role is still assigned; unassign it first".into(),
            ));
        }
        self.roles
            .remove(&id)
            .ok_or_else(|| Error::NotFound(format!("role {id}")))
    }

    /// Sets `user`'s tenant roles (empty: removes the user from the tenant's authorization).
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::InvalidInput`] for a role that is not a tenant role.
    pub fn set_tenant_roles(&mut self, user: UserId, roles: BTreeSet<RoleId>) -> Result<()> {
        for id in &roles {
            self.existing_role(*id, RoleScope::Tenant)?;
        }
        let old = if roles.is_empty() {
            self.tenant_roles.remove(&user)
        } else {
            self.tenant_roles.insert(user, roles.clone())
        };
        for role in old.unwrap_or_default() {
            self.role_holders.remove(&(role, user));
        }
        for role in roles {
            self.role_holders.insert((role, user), ());
        }
        Ok(())
    }

    /// Adds or replaces a channel.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a linked group that does not exist.
    pub fn put_channel(&mut self, channel: Channel) -> Result<()> {
        if let Some(g) = channel.groups.iter().find(|g| !self.groups.contains_key(g)) {
            return Err(Error::NotFound(format!("group {g}")));
        }
        if let Some(old) = self.channels.get(&channel.id) {
            for g in old.groups.clone() {
                index_set(&mut self.linked, g, channel.id, false);
            }
        }
        for g in &channel.groups {
            index_set(&mut self.linked, *g, channel.id, true);
        }
        self.channels.insert(channel.id, channel);
        Ok(())
    }

    /// Removes a channel with its memberships and channel roles.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn remove_channel(&mut self, id: ChannelId) -> Result<()> {
        let channel = self
            .channels
            .remove(&id)
            .ok_or_else(|| Error::NotFound(format!("channel {id}")))?;
        for g in channel.groups {
            index_set(&mut self.linked, g, id, false);
        }
        let members: Vec<UserId> = self
            .channel_members
            .range(
                (id, UserId::from_bytes([0; 16])),
                (id, UserId::from_bytes([0xff; 16])),
            )
            .map(|((_, u), _)| *u)
            .collect();
        for user in members {
            self.set_channel_sources(id, user, Sources::NONE)?;
        }
        let holders: Vec<UserId> = self
            .channel_roles
            .range(
                (id, UserId::from_bytes([0; 16])),
                (id, UserId::from_bytes([0xff; 16])),
            )
            .map(|((_, u), _)| *u)
            .collect();
        for user in holders {
            self.set_channel_roles(id, user, BTreeSet::new())?;
        }
        Ok(())
    }

    /// Adds or replaces a group.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing parent; [`Error::InvalidInput`] when the parent would
    /// make a cycle.
    pub fn put_group(&mut self, group: Group) -> Result<()> {
        if let Some(parent) = group.parent {
            if !self.groups.contains_key(&parent) {
                return Err(Error::NotFound(format!("group {parent}")));
            }
            // The new parent must not be the group or one of its descendants.
            let mut at = Some(parent);
            while let Some(g) = at {
                if g == group.id {
                    return Err(Error::InvalidInput(format!(
                        "group {} cannot be a subgroup of its own subgroup",
                        group.id
                    )));
                }
                at = self.groups.get(&g).and_then(|g| g.parent);
            }
        }
        if let Some(old_parent) = self.groups.get(&group.id).and_then(|g| g.parent) {
            index_set(&mut self.children, old_parent, group.id, false);
        }
        if let Some(parent) = group.parent {
            index_set(&mut self.children, parent, group.id, true);
        }
        self.groups.insert(group.id, group);
        Ok(())
    }

    /// Removes a group without subgroups: unlinks it from its channels (their members through
    /// it leave) and drops its memberships and group roles.
    ///
    /// # Errors
    /// [`Error::Conflict`] while it has subgroups; [`Error::NotFound`].
    pub fn remove_group(&mut self, id: GroupId) -> Result<()> {
        if !self.groups.contains_key(&id) {
            return Err(Error::NotFound(format!("group {id}")));
        }
        if self.children.contains_key(&id) {
            return Err(Error::Conflict("the group has subgroups".into()));
        }
        for c in self.linked_channels(id).collect::<Vec<_>>() {
            if let Some(mut channel) = self.channels.get(&c).cloned() {
                channel.groups.remove(&id);
                self.put_channel(channel)?;
            }
        }
        let lo = (id, UserId::from_bytes([0; 16]));
        let hi = (id, UserId::from_bytes([0xff; 16]));
        let members: Vec<UserId> = self
            .group_members
            .range(lo, hi)
            .map(|((_, u), _)| *u)
            .collect();
        for user in members {
            self.set_group_sources(id, user, Sources::NONE)?;
        }
        let holders: Vec<UserId> = self
            .group_roles
            .range(lo, hi)
            .map(|((_, u), _)| *u)
            .collect();
        for user in holders {
            self.set_group_roles(id, user, BTreeSet::new())?;
        }
        if let Some(parent) = self.groups.remove(&id).and_then(|g| g.parent) {
            index_set(&mut self.children, parent, id, false);
        }
        Ok(())
    }

    /// Sets the stored sources of `user`'s membership of `channel`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown channel.
    pub fn set_channel_sources(
        &mut self,
        channel: ChannelId,
        user: UserId,
        sources: Sources,
    ) -> Result<()> {
        if !self.channels.contains_key(&channel) && !sources.is_empty() {
            return Err(Error::NotFound(format!("channel {channel}")));
        }
        if sources.is_empty() {
            self.channel_members.remove(&(channel, user));
        } else {
            self.channel_members.insert((channel, user), sources);
        }
        index_set(&mut self.user_channels, user, channel, !sources.is_empty());
        Ok(())
    }

    /// Sets the stored sources of `user`'s membership of `group`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown group.
    pub fn set_group_sources(
        &mut self,
        group: GroupId,
        user: UserId,
        sources: Sources,
    ) -> Result<()> {
        if !self.groups.contains_key(&group) && !sources.is_empty() {
            return Err(Error::NotFound(format!("group {group}")));
        }
        if sources.is_empty() {
            self.group_members.remove(&(group, user));
        } else {
            self.group_members.insert((group, user), sources);
        }
        index_set(&mut self.user_groups, user, group, !sources.is_empty());
        Ok(())
    }

    /// Sets `user`'s channel roles in `channel`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown channel or role; [`Error::InvalidInput`] for a role
    /// that is not a channel role.
    pub fn set_channel_roles(
        &mut self,
        channel: ChannelId,
        user: UserId,
        roles: BTreeSet<RoleId>,
    ) -> Result<()> {
        if !roles.is_empty() && !self.channels.contains_key(&channel) {
            return Err(Error::NotFound(format!("channel {channel}")));
        }
        for id in &roles {
            self.existing_role(*id, RoleScope::Channel)?;
        }
        index_set(
            &mut self.user_channel_roles,
            user,
            channel,
            !roles.is_empty(),
        );
        if roles.is_empty() {
            self.channel_roles.remove(&(channel, user));
        } else {
            self.channel_roles.insert((channel, user), roles);
        }
        Ok(())
    }

    /// Sets `user`'s group roles over `group`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown group or role; [`Error::InvalidInput`] for a role
    /// that is not a group role.
    pub fn set_group_roles(
        &mut self,
        group: GroupId,
        user: UserId,
        roles: BTreeSet<RoleId>,
    ) -> Result<()> {
        if !roles.is_empty() && !self.groups.contains_key(&group) {
            return Err(Error::NotFound(format!("group {group}")));
        }
        for id in &roles {
            self.existing_role(*id, RoleScope::Group)?;
        }
        index_set(&mut self.user_group_roles, user, group, !roles.is_empty());
        if roles.is_empty() {
            self.group_roles.remove(&(group, user));
        } else {
            self.group_roles.insert((group, user), roles);
        }
        Ok(())
    }
}
