//! The reference evaluator: the rules of [`crate`] written as plainly as possible, recomputing
//! everything from the model for every question. It is slow on purpose and shares nothing with
//! the fast [`Authorizer`](crate::Authorizer) but the model and the cascade table; the corpus and
//! the property tests check that both always give the same decision with the same reasons.

use std::collections::BTreeSet;

use zt_core::{GroupId, Principal, RoleId, UserId};

use crate::cascade::Cascades;
use crate::decision::{Action, Decision, Reason, Reasons, Resource, Scope};
use crate::model::{ChannelVisibility, GroupVisibility, MentionPolicy, Model};
use crate::permission::{Permission, PermissionSet, Tier};
use crate::role::SystemRole;

/// The reasons a role assigned at `at` grants `p`, if it does.
fn grant(
    model: &Model,
    cascades: &'static Cascades,
    role: RoleId,
    at: Scope,
    p: Permission,
) -> Option<Vec<Reason>> {
    let role = model.role(role)?;
    let (from, rules) = cascades.explain(role.permissions, p)?;
    let mut reasons = vec![Reason::Role { role: role.id, at }];
    if !rules.is_empty() {
        reasons.push(Reason::Cascade { from, rules });
    }
    Some(reasons)
}

fn closed(model: &Model, cascades: &Cascades, role: RoleId) -> PermissionSet {
    model
        .role(role)
        .map_or(PermissionSet::EMPTY, |r| cascades.close(r.permissions))
}

/// Every subgroup below `group`, at any depth.
fn descendants(model: &Model, group: GroupId) -> BTreeSet<GroupId> {
    let mut found = BTreeSet::new();
    let mut todo = vec![group];
    while let Some(g) = todo.pop() {
        for child in model.subgroups(g) {
            if found.insert(child) {
                todo.push(child);
            }
        }
    }
    found
}

/// `user`'s membership of `group`: stored sources, and the first subgroup (by id) holding them.
fn group_membership(model: &Model, group: GroupId, user: UserId) -> Option<Reason> {
    let sources = model.group_sources(group, user);
    let via = descendants(model, group)
        .into_iter()
        .find(|d| !model.group_sources(*d, user).is_empty());
    (!sources.is_empty() || via.is_some()).then_some(Reason::Member { sources, via })
}

fn deny(reasons: &[Reason]) -> Decision {
    let mut out = Reasons::new();
    for r in reasons {
        out.push(*r);
    }
    Decision::deny(out)
}

fn allow(reasons: &[Reason]) -> Decision {
    let mut out = Reasons::new();
    for r in reasons {
        out.push(*r);
    }
    Decision::allow(out)
}

/// The decision for `principal` doing `action` on `resource` in `model`.
pub fn authorize(
    model: &Model,
    cascades: &'static Cascades,
    principal: Principal,
    action: Action,
    resource: Resource,
) -> Decision {
    if principal.tenant != model.tenant() {
        return deny(&[Reason::NotFound]);
    }
    let user = principal.user;
    let tenant_roles: Vec<RoleId> = model.tenant_roles(user).collect();
    if tenant_roles.is_empty() {
        return deny(&[Reason::NoTenantRole]);
    }
    let applicable = match (action, resource) {
        (Action::Do(p), Resource::Tenant) => matches!(p.tier(), Tier::Tenant | Tier::Member),
        (Action::Do(p), Resource::Channel(_)) => p.tier() == Tier::Channel,
        (Action::Do(p), Resource::Group(_)) => p.tier() == Tier::Group,
        (Action::Do(p), Resource::User(_)) => p == Permission::ManageUsers,
        (Action::View, Resource::User(_)) => false,
        (Action::View, _) => true,
        (Action::Mention, Resource::Group(_)) => true,
        (Action::Mention, _) => false,
    };
    if !applicable {
        return deny(&[Reason::NotApplicable]);
    }
    let tenant_grant = |p: Permission| {
        tenant_roles
            .iter()
            .find_map(|r| grant(model, cascades, *r, Scope::Tenant, p))
    };
    match resource {
        Resource::Tenant => match action {
            Action::Do(p) => match tenant_grant(p) {
                Some(reasons) => allow(&reasons),
                None => deny(&[Reason::Missing(p)]),
            },
            _ => allow(
                &tenant_roles
                    .first()
                    .map(|role| Reason::Role {
                        role: *role,
                        at: Scope::Tenant,
                    })
                    .into_iter()
                    .collect::<Vec<_>>(),
            ),
        },
        Resource::User(target) => {
            let Some(reasons) = tenant_grant(Permission::ManageUsers) else {
                return deny(&[Reason::Missing(Permission::ManageUsers)]);
            };
            let owner = SystemRole::Owner.id();
            if model.tenant_roles(target).any(|r| r == owner) && !tenant_roles.contains(&owner) {
                return deny(&[Reason::OwnerOnly]);
            }
            let mine = tenant_roles.iter().fold(PermissionSet::EMPTY, |acc, r| {
                acc.union(closed(model, cascades, *r))
            });
            let theirs = model
                .tenant_roles(target)
                .fold(PermissionSet::EMPTY, |acc, r| {
                    acc.union(closed(model, cascades, r))
                });
            if let Some(p) = theirs.difference(mine).iter().next() {
                return deny(&[Reason::MorePrivileged(p)]);
            }
            allow(&reasons)
        }
        Resource::Channel(c) => {
            let Some(channel) = model.channel(c) else {
                return deny(&[Reason::NotFound]);
            };
            let sources = model.channel_sources(c, user);
            let via = channel
                .groups
                .iter()
                .copied()
                .find(|g| group_membership(model, *g, user).is_some());
            let member = !sources.is_empty() || via.is_some();
            let visibility = if member {
                Reason::Member { sources, via }
            } else if channel.visibility == ChannelVisibility::Public
                && tenant_grant(Permission::BrowsePublicChannels).is_some()
            {
                Reason::Public
            } else {
                return deny(&[Reason::NotVisible]);
            };
            let Action::Do(p) = action else {
                return allow(&[visibility]);
            };
            // Tenant roles apply fully to members, and only to reading for everyone else.
            let from_tenant = if member || p == Permission::ReadChannel {
                tenant_grant(p)
            } else {
                None
            };
            let from_channel = || {
                model
                    .channel_roles(c, user)
                    .find_map(|r| grant(model, cascades, r, Scope::Channel(c), p))
            };
            let from_groups = || {
                channel.groups.iter().find_map(|g| {
                    model
                        .group_roles(*g, user)
                        .find_map(|r| grant(model, cascades, r, Scope::Group(*g), p))
                })
            };
            match from_tenant.or_else(from_channel).or_else(from_groups) {
                Some(reasons) => {
                    let mut all = vec![visibility];
                    all.extend(reasons);
                    allow(&all)
                }
                None => deny(&[visibility, Reason::Missing(p)]),
            }
        }
        Resource::Group(g) => {
            let Some(group) = model.group(g) else {
                return deny(&[Reason::NotFound]);
            };
            let group_grant = |p: Permission| {
                tenant_grant(p).or_else(|| {
                    model
                        .group_roles(g, user)
                        .find_map(|r| grant(model, cascades, r, Scope::Group(g), p))
                })
            };
            let membership = group_membership(model, g, user);
            let visibility = match group.visibility {
                GroupVisibility::Public => Some(Reason::Public),
                GroupVisibility::Private => membership.or_else(|| {
                    // Whoever holds any group power over it: the first such role.
                    let group_powers = PermissionSet::tier(Tier::Group);
                    tenant_roles
                        .iter()
                        .map(|r| (*r, Scope::Tenant))
                        .chain(model.group_roles(g, user).map(|r| (r, Scope::Group(g))))
                        .find(|(r, _)| {
                            !closed(model, cascades, *r)
                                .intersection(group_powers)
                                .is_empty()
                        })
                        .map(|(role, at)| Reason::Role { role, at })
                }),
                GroupVisibility::Hidden => {
                    group_grant(Permission::ViewHiddenGroups).and_then(|r| r.first().copied())
                }
            };
            let Some(visibility) = visibility else {
                return deny(&[Reason::NotVisible]);
            };
            match action {
                Action::View => allow(&[visibility]),
                Action::Mention => match group.mention {
                    MentionPolicy::Anyone => allow(&[visibility]),
                    MentionPolicy::Members => match membership {
                        Some(m) => allow(&[m]),
                        None => deny(&[Reason::MentionRestricted]),
                    },
                    MentionPolicy::Managers => {
                        match group_grant(Permission::ManageMentionRestrictions) {
                            Some(reasons) => {
                                let mut all = vec![visibility];
                                all.extend(reasons);
                                allow(&all)
                            }
                            None => deny(&[Reason::MentionRestricted]),
                        }
                    }
                },
                Action::Do(p) => match group_grant(p) {
                    Some(reasons) => {
                        let mut all = vec![visibility];
                        all.extend(reasons);
                        allow(&all)
                    }
                    None => deny(&[visibility, Reason::Missing(p)]),
                },
            }
        }
    }
}
