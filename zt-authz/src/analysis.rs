//! Escalation analysis: before a role or assignment change is saved, the changed state is
//! searched for ways a principal could raise its own privileges with the powers it would hold,
//! using the guardrails themselves as the rules of the game. A change that opens one is refused,
//! with the path named.
//!
//! Two kinds of path are looked for:
//! - **a role that can grant itself more**: a non-owner holding `manage_roles` (or
//!   `manage_channel_roles` in a channel) who could grant itself a role, or widen a role it
//!   holds, beyond what it holds now;
//! - **a path to owner without an owner**: a non-owner who could grant itself owner, or a change
//!   by the deployment (SCIM, OIDC) that would make an owner while the tenant has owners: once
//!   there is an owner, owners are made by owners.
//!
//! With the guardrails as they are, the first kind finds nothing by construction; it is the net
//! under them, checked on every change so that a future rule cannot open a hole silently.

use std::fmt;

use zt_core::{ChannelId, Principal, RoleId, UserId};

use crate::authorizer::Authorizer;
use crate::cascade::Cascades;
use crate::decision::{Action, Decision, Resource, Scope};
use crate::guard::Change;
use crate::model::Model;
use crate::permission::{Permission, PermissionSet, Tier};
use crate::role::{RoleScope, SystemRole};
use crate::service::Changer;

/// The guardrail the analysis plays by: whether `actor` may make `change` on `model`.
pub type Guard =
    fn(&Authorizer, &Model, Principal, &Change) -> std::result::Result<(), Box<Decision>>;

/// One way to escalate, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationPath {
    /// The principal who would gain.
    pub user: UserId,
    /// The steps, in words.
    pub steps: Vec<String>,
    /// What would be gained.
    pub gains: PermissionSet,
}

impl fmt::Display for EscalationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.user, self.steps.join(" -> "))?;
        if !self.gains.is_empty() {
            write!(f, " (gains {:?})", self.gains)?;
        }
        Ok(())
    }
}

fn tenant_powers(model: &Model, cascades: &Cascades, user: UserId) -> PermissionSet {
    model
        .tenant_roles(user)
        .filter_map(|r| model.role(r))
        .fold(PermissionSet::EMPTY, |acc, r| {
            acc.union(cascades.close(r.permissions))
        })
}

fn channel_powers(authz: &Authorizer, user: Principal, channel: ChannelId) -> PermissionSet {
    PermissionSet::tier(Tier::Channel)
        .iter()
        .filter(|p| {
            authz
                .authorize(user, Action::Do(*p), Resource::Channel(channel))
                .allowed
        })
        .collect()
}

fn name(model: &Model, role: RoleId) -> String {
    model
        .role(role)
        .map_or_else(|| role.to_string(), |r| r.name.clone())
}

/// The escalation paths open in `after`, the state a change by `by` (from `before`) would
/// leave, for the principals in `users` (those whose powers, or whose grantable roles, the change
/// touched), with `guard` as the rules. Empty when there is none.
pub fn escalation_paths(
    before: &Model,
    after: &Model,
    by: &Changer,
    users: &[UserId],
    cascades: &'static Cascades,
    guard: Guard,
) -> Vec<EscalationPath> {
    let mut paths = Vec::new();
    let owner = SystemRole::Owner.id();
    let authz = Authorizer::new(after.clone(), cascades);

    // The deployment makes no owners once the tenant has one.
    if let Changer::System(system) = by
        && before.holders(owner).next().is_some()
    {
        for user in users.iter().copied() {
            let new_owner = after.tenant_roles(user).any(|r| r == owner)
                && !before.tenant_roles(user).any(|r| r == owner);
            if new_owner {
                paths.push(EscalationPath {
                    user,
                    steps: vec![format!(
                        "the deployment ({system}) would make an owner without an owner"
                    )],
                    gains: tenant_powers(after, cascades, user)
                        .difference(tenant_powers(before, cascades, user)),
                });
            }
        }
    }

    for user in users.iter().copied() {
        if after.tenant_roles(user).any(|r| r == owner) {
            continue;
        }
        let principal = Principal {
            tenant: after.tenant(),
            user,
        };
        let mine = tenant_powers(after, cascades, user);
        let held: Vec<RoleId> = after.tenant_roles(user).collect();
        let via = || {
            held.iter()
                .map(|r| name(after, *r))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if mine.contains(Permission::ManageRoles) {
            for role in after.roles().filter(|r| r.scope == RoleScope::Tenant) {
                let change = Change::Grant {
                    user,
                    role: role.id,
                    at: Scope::Tenant,
                };
                if guard(&authz, after, principal, &change).is_err() {
                    continue;
                }
                let gains = cascades.close(role.permissions).difference(mine);
                if role.id == owner || !gains.is_empty() {
                    paths.push(EscalationPath {
                        user,
                        steps: vec![
                            format!("holds {}", via()),
                            format!("may grant itself {}", role.name),
                        ],
                        gains,
                    });
                }
            }
            for id in held.iter().copied() {
                let Some(role) = after.role(id).filter(|r| !r.is_system()) else {
                    continue;
                };
                for p in Permission::ALL
                    .iter()
                    .copied()
                    .filter(|p| !mine.contains(*p))
                {
                    let mut wider = role.permissions;
                    wider.insert(p);
                    let change = Change::UpdateRole {
                        id,
                        name: role.name.clone(),
                        permissions: wider,
                    };
                    if guard(&authz, after, principal, &change).is_ok() {
                        paths.push(EscalationPath {
                            user,
                            steps: vec![
                                format!("holds {}", role.name),
                                format!("may add {p} to it"),
                            ],
                            gains: PermissionSet::from([p]),
                        });
                    }
                }
            }
        }
        // Channel roles, where the user may manage them (only where it is a member or holds
        // roles can it).
        let mut channels: Vec<ChannelId> = after.channels_of(user).collect();
        channels.extend(after.channel_roles_of(user));
        for group in after.groups_of(user).chain(after.group_roles_of(user)) {
            channels.extend(after.linked_channels(group));
        }
        channels.sort();
        channels.dedup();
        for channel in channels {
            if !authz
                .authorize(
                    principal,
                    Action::Do(Permission::ManageChannelRoles),
                    Resource::Channel(channel),
                )
                .allowed
            {
                continue;
            }
            let here = channel_powers(&authz, principal, channel);
            for role in after.roles().filter(|r| r.scope == RoleScope::Channel) {
                let gains = cascades.close(role.permissions).difference(here);
                if gains.is_empty() {
                    continue;
                }
                let change = Change::Grant {
                    user,
                    role: role.id,
                    at: Scope::Channel(channel),
                };
                if guard(&authz, after, principal, &change).is_ok() {
                    paths.push(EscalationPath {
                        user,
                        steps: vec![
                            format!("manages channel roles in {channel}"),
                            format!("may grant itself {} there", role.name),
                        ],
                        gains,
                    });
                }
            }
        }
    }
    paths
}
