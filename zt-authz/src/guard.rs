//! Guardrails: who may make which change. Every check asks the current [`Authorizer`], so a
//! change is allowed exactly when the decisions say the actor holds what it needs.
//!
//! - Nobody grants (or revokes) a role containing a permission they do not hold where the role
//!   applies, and nobody defines a role holding more than they do.
//! - Only owners grant or remove owner; the last owner cannot be demoted, deactivated or deleted
//!   ([`Reason::LastOwner`], checked on the changed model).
//! - A holder of `manage_roles` who is not an owner cannot create, change, grant or revoke a role
//!   containing `manage_roles`.
//! - Each settings area is its own permission, and an update touching an area the actor may not
//!   manage is refused as a whole ([`authorize_settings`]).
//! - Memberships from SCIM and OIDC belong to the deployment, never to a principal.

use zt_core::{ChannelId, GroupId, Principal, RoleId, UserId};

use crate::authorizer::Authorizer;
use crate::cascade::Cascades;
use crate::decision::{Action, Decision, Reason, Reasons, Resource, Scope};
use crate::model::{Channel, ChannelVisibility, Group, Model, Source};
use crate::permission::{Permission, PermissionSet, Tier};
use crate::role::{RoleScope, SystemRole};

/// What a membership is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Membership {
    /// A channel.
    Channel(ChannelId),
    /// A group.
    Group(GroupId),
}

/// One change to a tenant's authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Defines a custom role.
    CreateRole {
        /// The new role's id.
        id: RoleId,
        /// Its name.
        name: String,
        /// Where it is assigned.
        scope: RoleScope,
        /// What it grants.
        permissions: PermissionSet,
    },
    /// Renames a custom role or changes what it grants.
    UpdateRole {
        /// The role.
        id: RoleId,
        /// Its new name.
        name: String,
        /// What it grants from now on.
        permissions: PermissionSet,
    },
    /// Removes a custom role nobody holds.
    DeleteRole {
        /// The role.
        id: RoleId,
    },
    /// Assigns a role.
    Grant {
        /// To whom.
        user: UserId,
        /// The role.
        role: RoleId,
        /// Where (it must fit the role's scope).
        at: Scope,
    },
    /// Takes a role back.
    Revoke {
        /// From whom.
        user: UserId,
        /// The role.
        role: RoleId,
        /// Where.
        at: Scope,
    },
    /// Creates a channel or changes its visibility or linked groups.
    PutChannel(Channel),
    /// Deletes a channel (with its memberships and channel roles).
    RemoveChannel(ChannelId),
    /// Creates a group or changes its visibility, parent or mention policy.
    PutGroup(Group),
    /// Deletes a group without subgroups.
    RemoveGroup(GroupId),
    /// Adds one source of a membership.
    AddMember {
        /// Who.
        user: UserId,
        /// Of what.
        of: Membership,
        /// Which source.
        source: Source,
    },
    /// Removes one source of a membership; the membership ends with its last source.
    RemoveMember {
        /// Who.
        user: UserId,
        /// Of what.
        of: Membership,
        /// Which source.
        source: Source,
    },
    /// Takes every role and membership of a user away (before the account is deleted).
    RemoveUser(UserId),
}

/// An area of the tenant's settings; each is managed with its own permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingsArea {
    /// Passwords, lockout, sessions, SSO, SCIM.
    Authentication,
    /// General server settings.
    Server,
    /// Retention, legal hold, export.
    PrivacyAndData,
    /// Backups.
    Backups,
    /// Keys and KMS.
    Encryption,
    /// The web chat.
    WebChat,
    /// Updates.
    Updates,
    /// The channel directory.
    ChannelDirectory,
    /// File storage.
    StorageData,
}

impl SettingsArea {
    /// The permission that manages it.
    pub const fn permission(self) -> Permission {
        match self {
            SettingsArea::Authentication => Permission::ManageAuthentication,
            SettingsArea::Server => Permission::ManageServerSettings,
            SettingsArea::PrivacyAndData => Permission::ManagePrivacyAndData,
            SettingsArea::Backups => Permission::ManageBackups,
            SettingsArea::Encryption => Permission::ManageEncryption,
            SettingsArea::WebChat => Permission::ManageWebChat,
            SettingsArea::Updates => Permission::ManageUpdates,
            SettingsArea::ChannelDirectory => Permission::ManageChannelDirectory,
            SettingsArea::StorageData => Permission::ManageStorageData,
        }
    }
}

/// Whether `actor` may update settings touching all of `areas`: allowed only when every area is
/// (the reasons then name the roles), otherwise refused as a whole with each missing area.
pub fn authorize_settings(
    authz: &Authorizer,
    actor: Principal,
    areas: &[SettingsArea],
) -> Decision {
    let mut allowed = Reasons::new();
    let mut missing = Reasons::new();
    for area in areas {
        let d = authz.authorize(actor, Action::Do(area.permission()), Resource::Tenant);
        if d.allowed {
            if let Some(first) = d.reasons.first() {
                allowed.push(*first);
            }
        } else {
            for r in d.reasons.iter() {
                missing.push(*r);
            }
        }
    }
    if missing.is_empty() && !areas.is_empty() {
        Decision::allow(allowed)
    } else if areas.is_empty() {
        Decision::deny([Reason::NotApplicable].into())
    } else {
        Decision::deny(missing)
    }
}

fn refuse(reason: Reason) -> Box<Decision> {
    Box::new(Decision::deny([reason].into()))
}

fn require(
    authz: &Authorizer,
    actor: Principal,
    action: Action,
    on: Resource,
) -> Result<(), Box<Decision>> {
    let d = authz.authorize(actor, action, on);
    if d.allowed { Ok(()) } else { Err(Box::new(d)) }
}

fn is_owner(model: &Model, user: UserId) -> bool {
    model
        .tenant_roles(user)
        .any(|r| r == SystemRole::Owner.id())
}

/// The permissions of `actor` at the tenant, closed.
fn tenant_powers(model: &Model, cascades: &Cascades, actor: Principal) -> PermissionSet {
    model
        .tenant_roles(actor.user)
        .filter_map(|r| model.role(r))
        .fold(PermissionSet::EMPTY, |acc, r| {
            acc.union(cascades.close(r.permissions))
        })
}

/// Defining or changing a role holding `permissions` (closed).
fn check_role_definition(
    authz: &Authorizer,
    model: &Model,
    cascades: &Cascades,
    actor: Principal,
    permissions: PermissionSet,
) -> Result<(), Box<Decision>> {
    require(
        authz,
        actor,
        Action::Do(Permission::ManageRoles),
        Resource::Tenant,
    )?;
    let closed = cascades.close(permissions);
    if closed.contains(Permission::ManageRoles) && !is_owner(model, actor.user) {
        return Err(refuse(Reason::OwnerOnly));
    }
    hold_all(model, cascades, actor, closed)
}

/// Refuses with the first of `permissions` the actor does not hold tenant-wide.
fn hold_all(
    model: &Model,
    cascades: &Cascades,
    actor: Principal,
    permissions: PermissionSet,
) -> Result<(), Box<Decision>> {
    match permissions
        .difference(tenant_powers(model, cascades, actor))
        .iter()
        .next()
    {
        Some(p) => Err(refuse(Reason::Missing(p))),
        None => Ok(()),
    }
}

/// Granting or revoking `role` at `at`.
fn check_assignment(
    authz: &Authorizer,
    model: &Model,
    cascades: &Cascades,
    actor: Principal,
    role: RoleId,
    at: Scope,
) -> Result<(), Box<Decision>> {
    let Some(definition) = model.role(role) else {
        return Err(refuse(Reason::NotFound));
    };
    let closed = cascades.close(definition.permissions);
    let owner = is_owner(model, actor.user);
    match at {
        Scope::Tenant => {
            require(
                authz,
                actor,
                Action::Do(Permission::ManageRoles),
                Resource::Tenant,
            )?;
            if (role == SystemRole::Owner.id() || closed.contains(Permission::ManageRoles))
                && !owner
            {
                return Err(refuse(Reason::OwnerOnly));
            }
            hold_all(model, cascades, actor, closed)?;
        }
        Scope::Channel(c) => {
            require(
                authz,
                actor,
                Action::Do(Permission::ManageChannelRoles),
                Resource::Channel(c),
            )?;
            for p in closed.iter() {
                require(authz, actor, Action::Do(p), Resource::Channel(c))?;
            }
        }
        Scope::Group(g) => {
            require(
                authz,
                actor,
                Action::Do(Permission::ManageRoles),
                Resource::Tenant,
            )?;
            let linked: Vec<ChannelId> = model.linked_channels(g).collect();
            for p in closed.iter() {
                match p.tier() {
                    Tier::Group => require(authz, actor, Action::Do(p), Resource::Group(g))?,
                    _ if linked.is_empty() => {
                        if !tenant_powers(model, cascades, actor).contains(p) {
                            return Err(refuse(Reason::Missing(p)));
                        }
                    }
                    _ => {
                        for c in &linked {
                            require(authz, actor, Action::Do(p), Resource::Channel(*c))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether `actor` may make `change`, judged by `authz` on its current `model` (a copy of what
/// it evaluates; the caller keeps other changes out meanwhile). The model-wide invariant (an
/// owner remains) is checked separately, on the changed model, by [`check_invariants`].
///
/// # Errors
/// The decision that refused it.
pub fn check(
    authz: &Authorizer,
    model: &Model,
    actor: Principal,
    change: &Change,
) -> Result<(), Box<Decision>> {
    let cascades = authz.cascades();
    let may = |p: Permission, on: Resource| require(authz, actor, Action::Do(p), on);
    if actor.tenant != model.tenant() {
        return Err(refuse(Reason::NotFound));
    }
    match change {
        Change::CreateRole { permissions, .. } => {
            check_role_definition(authz, model, cascades, actor, *permissions)
        }
        // A system role is refused alike for every caller and every system role, before any
        // permission is weighed (the answer must not depend on which role, or who asks).
        Change::UpdateRole { id, .. } | Change::DeleteRole { id }
            if SystemRole::from_id(*id).is_some() =>
        {
            Err(refuse(Reason::SystemRole))
        }
        Change::UpdateRole {
            id, permissions, ..
        } => {
            let Some(old) = model.role(*id) else {
                return Err(refuse(Reason::NotFound));
            };
            // Both what it granted and what it will grant: taking powers away from holders
            // needs them as much as giving them.
            check_role_definition(
                authz,
                model,
                cascades,
                actor,
                old.permissions.union(*permissions),
            )
        }
        Change::DeleteRole { id } => {
            let Some(old) = model.role(*id) else {
                return Err(refuse(Reason::NotFound));
            };
            check_role_definition(authz, model, cascades, actor, old.permissions)
        }
        Change::Grant { role, at, .. } | Change::Revoke { role, at, .. } => {
            check_assignment(authz, model, cascades, actor, *role, *at)
        }
        Change::PutChannel(channel) => match model.channel(channel.id) {
            None => {
                let create = match channel.visibility {
                    ChannelVisibility::Public => Permission::CreatePublicChannel,
                    ChannelVisibility::Private => Permission::CreatePrivateChannel,
                };
                require(authz, actor, Action::Do(create), Resource::Tenant)?;
                for g in &channel.groups {
                    may(Permission::ManageLinkedChannels, Resource::Group(*g))?;
                }
                Ok(())
            }
            Some(old) => {
                let on = Resource::Channel(channel.id);
                if old.visibility != channel.visibility {
                    may(Permission::EditChannel, on)?;
                }
                for g in old.groups.symmetric_difference(&channel.groups) {
                    may(Permission::ManageLinkedChannels, Resource::Group(*g))?;
                    may(Permission::ManageSubscribers, on)?;
                }
                Ok(())
            }
        },
        Change::RemoveChannel(c) => may(Permission::DeleteChannel, Resource::Channel(*c)),
        Change::PutGroup(group) => match model.group(group.id) {
            None => {
                require(
                    authz,
                    actor,
                    Action::Do(Permission::CreateGroup),
                    Resource::Tenant,
                )?;
                if let Some(parent) = group.parent {
                    may(Permission::ManageSubgroups, Resource::Group(parent))?;
                }
                Ok(())
            }
            Some(old) => {
                let on = Resource::Group(group.id);
                if old.visibility != group.visibility {
                    may(Permission::ManageGroupMembers, on)?;
                }
                if old.mention != group.mention {
                    may(Permission::ManageMentionRestrictions, on)?;
                }
                if old.parent != group.parent {
                    for parent in [old.parent, group.parent].into_iter().flatten() {
                        may(Permission::ManageSubgroups, Resource::Group(parent))?;
                    }
                }
                Ok(())
            }
        },
        Change::RemoveGroup(g) => {
            may(Permission::ManageGroupMembers, Resource::Group(*g))?;
            may(Permission::ManageLinkedChannels, Resource::Group(*g))?;
            if let Some(parent) = model.group(*g).and_then(|g| g.parent) {
                may(Permission::ManageSubgroups, Resource::Group(parent))?;
            }
            Ok(())
        }
        Change::AddMember { user, of, source } | Change::RemoveMember { user, of, source } => {
            if *source != Source::Manual {
                return Err(refuse(Reason::SystemSource));
            }
            let adding = matches!(change, Change::AddMember { .. });
            let own = *user == actor.user;
            match of {
                Membership::Channel(c) => {
                    let on = Resource::Channel(*c);
                    // Joining a public channel one can see, and leaving any, need no power.
                    let public = model
                        .channel(*c)
                        .is_some_and(|ch| ch.visibility == ChannelVisibility::Public);
                    if own && !adding {
                        return Ok(());
                    }
                    if own && public && authz.authorize(actor, Action::View, on).allowed {
                        return Ok(());
                    }
                    may(Permission::ManageSubscribers, on)
                }
                Membership::Group(g) => {
                    if own && !adding {
                        return Ok(());
                    }
                    may(Permission::ManageGroupMembers, Resource::Group(*g))
                }
            }
        }
        Change::RemoveUser(user) => may(Permission::ManageUsers, Resource::User(*user)),
    }
}

/// The invariants every changed model keeps, whoever makes the change: a tenant that had an
/// owner still has one.
///
/// # Errors
/// The refusing decision ([`Reason::LastOwner`]).
pub fn check_invariants(before: &Model, after: &Model) -> Result<(), Box<Decision>> {
    let owner = SystemRole::Owner.id();
    let had = before.holders(owner).next().is_some();
    let has = after.holders(owner).next().is_some();
    if had && !has {
        return Err(refuse(Reason::LastOwner));
    }
    Ok(())
}

/// Applies `change` to `model` (shape checks only; see [`check`] for who may).
///
/// # Errors
/// [`crate::Error::InvalidInput`], [`crate::Error::NotFound`], [`crate::Error::Conflict`] from
/// the model.
pub fn apply(model: &mut Model, change: &Change) -> crate::Result<()> {
    use std::collections::BTreeSet;
    match change {
        Change::CreateRole {
            id,
            name,
            scope,
            permissions,
        } => {
            if model.role(*id).is_some() {
                return Err(crate::Error::Conflict(format!("role {id} exists")));
            }
            model.put_role(crate::Role {
                id: *id,
                name: name.clone(),
                scope: *scope,
                permissions: *permissions,
                system: None,
            })
        }
        Change::UpdateRole {
            id,
            name,
            permissions,
        } => {
            let Some(old) = model.role(*id) else {
                return Err(crate::Error::NotFound(format!("role {id}")));
            };
            let role = crate::Role {
                name: name.clone(),
                permissions: *permissions,
                ..old.clone()
            };
            model.put_role(role)
        }
        Change::DeleteRole { id } => model.remove_role(*id).map(|_| ()),
        Change::Grant { user, role, at } | Change::Revoke { user, role, at } => {
            let grant = matches!(change, Change::Grant { .. });
            let edit = |mut set: BTreeSet<RoleId>| {
                if grant {
                    set.insert(*role);
                } else {
                    set.remove(role);
                }
                set
            };
            match at {
                Scope::Tenant => {
                    let roles = edit(model.tenant_roles(*user).collect());
                    model.set_tenant_roles(*user, roles)
                }
                Scope::Channel(c) => {
                    let roles = edit(model.channel_roles(*c, *user).collect());
                    model.set_channel_roles(*c, *user, roles)
                }
                Scope::Group(g) => {
                    let roles = edit(model.group_roles(*g, *user).collect());
                    model.set_group_roles(*g, *user, roles)
                }
            }
        }
        Change::PutChannel(channel) => model.put_channel(channel.clone()),
        Change::RemoveChannel(c) => model.remove_channel(*c),
        Change::PutGroup(group) => model.put_group(group.clone()),
        Change::RemoveGroup(g) => model.remove_group(*g),
        Change::AddMember { user, of, source } | Change::RemoveMember { user, of, source } => {
            let adding = matches!(change, Change::AddMember { .. });
            let edit = |s: crate::Sources| {
                if adding {
                    s.with(*source)
                } else {
                    s.without(*source)
                }
            };
            match of {
                Membership::Channel(c) => {
                    let sources = edit(model.channel_sources(*c, *user));
                    model.set_channel_sources(*c, *user, sources)
                }
                Membership::Group(g) => {
                    let sources = edit(model.group_sources(*g, *user));
                    model.set_group_sources(*g, *user, sources)
                }
            }
        }
        Change::RemoveUser(user) => {
            let channels: Vec<ChannelId> = model.channels_of(*user).collect();
            for c in channels {
                model.set_channel_sources(c, *user, crate::Sources::NONE)?;
            }
            let groups: Vec<GroupId> = model.groups_of(*user).collect();
            for g in groups {
                model.set_group_sources(g, *user, crate::Sources::NONE)?;
            }
            let channel_roles: Vec<ChannelId> = model.channel_roles_of(*user).collect();
            for c in channel_roles {
                model.set_channel_roles(c, *user, BTreeSet::new())?;
            }
            let group_roles: Vec<GroupId> = model.group_roles_of(*user).collect();
            for g in group_roles {
                model.set_group_roles(g, *user, BTreeSet::new())?;
            }
            model.set_tenant_roles(*user, BTreeSet::new())
        }
    }
}
