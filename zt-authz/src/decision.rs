//! Questions and answers: an [`Action`] on a [`Resource`] by a principal gives a [`Decision`]
//! whose reasons name what allowed it (role, scope, membership source, cascade rule) or what was
//! missing. A deny is a value, not an error.

use std::fmt;
use std::ops::Deref;

use zt_core::{ChannelId, GroupId, RoleId, UserId};

use crate::model::Sources;
use crate::permission::Permission;

/// What a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Use a power on the resource (its tier must fit the resource).
    Do(Permission),
    /// See the resource exist: a channel or group in a listing, its membership, the tenant.
    View,
    /// Mention a group.
    Mention,
}

/// What the action is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The principal's tenant (tenant and member powers).
    Tenant,
    /// A channel (channel powers).
    Channel(ChannelId),
    /// A group (group powers).
    Group(GroupId),
    /// A user of the tenant, as the target of `manage_users`.
    User(UserId),
}

/// Where a role was assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Tenant-wide.
    Tenant,
    /// In one channel.
    Channel(ChannelId),
    /// Over one group.
    Group(GroupId),
}

/// One reason of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// This role, assigned at this scope, grants it.
    Role {
        /// The role.
        role: RoleId,
        /// Where it is assigned.
        at: Scope,
    },
    /// It is implied by `from` (which the role grants) through these cascade rules.
    Cascade {
        /// The permission the role grants.
        from: Permission,
        /// The rules, in order.
        rules: &'static [&'static str],
    },
    /// The principal is a member: through these stored sources, and through this linked group
    /// (for a channel) or subgroup (for a group).
    Member {
        /// The stored sources (manual, OIDC, SCIM).
        sources: Sources,
        /// The first linked group or subgroup it comes through, if any.
        via: Option<GroupId>,
    },
    /// The resource is public and the principal may see public ones.
    Public,
    /// This permission is missing.
    Missing(Permission),
    /// The resource exists but the principal may not see it (the caller answers "not found").
    NotVisible,
    /// No such resource in the principal's tenant (including anything of another tenant).
    NotFound,
    /// The action does not apply to this kind of resource.
    NotApplicable,
    /// The principal holds no role in the tenant.
    NoTenantRole,
    /// Only an owner may do this to an owner.
    OwnerOnly,
    /// The target holds this permission, which the principal does not.
    MorePrivileged(Permission),
    /// The group's mention policy does not let the principal mention it.
    MentionRestricted,
    /// The change would leave the tenant without an owner.
    LastOwner,
    /// Only the deployment (SCIM, OIDC) manages memberships from this source.
    SystemSource,
    /// System roles are locked: no one changes or deletes them, whichever they are.
    SystemRole,
}

impl Reason {
    /// A short, stable code for tests and logs, such as `role:rol_…@channel:chn_…` or
    /// `missing:post_message`.
    pub fn code(&self) -> String {
        match self {
            Reason::Role { role, at } => match at {
                Scope::Tenant => format!("role:{role}@tenant"),
                Scope::Channel(c) => format!("role:{role}@channel:{c}"),
                Scope::Group(g) => format!("role:{role}@group:{g}"),
            },
            Reason::Cascade { from, rules } => format!("cascade:{from}:{}", rules.join(",")),
            Reason::Member { sources, via } => {
                let mut parts: Vec<String> = sources.iter().map(|s| s.name().to_owned()).collect();
                if let Some(g) = via {
                    parts.push(format!("group:{g}"));
                }
                format!("member:{}", parts.join(","))
            }
            Reason::Public => "public".into(),
            Reason::Missing(p) => format!("missing:{p}"),
            Reason::NotVisible => "not-visible".into(),
            Reason::NotFound => "not-found".into(),
            Reason::NotApplicable => "not-applicable".into(),
            Reason::NoTenantRole => "no-tenant-role".into(),
            Reason::OwnerOnly => "owner-only".into(),
            Reason::MorePrivileged(p) => format!("more-privileged:{p}"),
            Reason::MentionRestricted => "mention-restricted".into(),
            Reason::LastOwner => "last-owner".into(),
            Reason::SystemSource => "system-source".into(),
            Reason::SystemRole => "system-role".into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Role { role, at } => match at {
                Scope::Tenant => write!(f, "role {role} (tenant-wide)"),
                Scope::Channel(c) => write!(f, "role {role} in channel {c}"),
                Scope::Group(g) => write!(f, "role {role} over group {g}"),
            },
            Reason::Cascade { from, rules } => {
                write!(f, "implied by {from} (cascade {})", rules.join(" then "))
            }
            Reason::Member { sources, via } => {
                write!(f, "member")?;
                if !sources.is_empty() {
                    write!(f, " ({sources:?})")?;
                }
                if let Some(g) = via {
                    write!(f, " through group {g}")?;
                }
                Ok(())
            }
            Reason::Public => f.write_str("public"),
            Reason::Missing(p) => write!(f, "missing {p}"),
            Reason::NotVisible => f.write_str("not visible to the principal"),
            Reason::NotFound => f.write_str("not found in the principal's tenant"),
            Reason::NotApplicable => f.write_str("the action does not apply to this resource"),
            Reason::NoTenantRole => f.write_str("no role in the tenant"),
            Reason::OwnerOnly => f.write_str("only an owner may do this to an owner"),
            Reason::MorePrivileged(p) => write!(f, "the target holds {p}, the principal does not"),
            Reason::MentionRestricted => f.write_str("the group's mention policy forbids it"),
            Reason::LastOwner => f.write_str("the tenant would be left without an owner"),
            Reason::SystemSource => {
                f.write_str("memberships from SCIM or OIDC are managed by the deployment only")
            }
            Reason::SystemRole => f.write_str("system roles are locked"),
        }
    }
}

/// The reasons of one decision (at most four, kept inline: deciding never allocates).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reasons {
    len: u8,
    items: [Reason; Reasons::CAPACITY],
}

impl Reasons {
    /// The most reasons a decision carries.
    pub const CAPACITY: usize = 4;

    /// No reason.
    pub const fn new() -> Self {
        Reasons {
            len: 0,
            items: [Reason::NotFound; Reasons::CAPACITY],
        }
    }

    /// Adds a reason (past the capacity it is dropped; no decision needs more).
    pub fn push(&mut self, reason: Reason) {
        if let Some(slot) = self.items.get_mut(usize::from(self.len)) {
            *slot = reason;
            self.len += 1;
        }
    }
}

impl Default for Reasons {
    fn default() -> Self {
        Reasons::new()
    }
}

impl Deref for Reasons {
    type Target = [Reason];

    fn deref(&self) -> &[Reason] {
        &self.items[..usize::from(self.len)]
    }
}

impl fmt::Debug for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> From<[Reason; N]> for Reasons {
    fn from(reasons: [Reason; N]) -> Self {
        let mut out = Reasons::new();
        for r in reasons {
            out.push(r);
        }
        out
    }
}

/// The answer: allowed or not, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Whether the action may proceed.
    pub allowed: bool,
    /// Why: what allowed it, or what was missing.
    pub reasons: Reasons,
}

impl Decision {
    /// An allow with these reasons.
    pub fn allow(reasons: Reasons) -> Self {
        Decision {
            allowed: true,
            reasons,
        }
    }

    /// A deny with these reasons.
    pub fn deny(reasons: Reasons) -> Self {
        Decision {
            allowed: false,
            reasons,
        }
    }

    /// The reason codes, in order (see [`Reason::code`]).
    pub fn codes(&self) -> Vec<String> {
        self.reasons.iter().map(Reason::code).collect()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.allowed { "allowed" } else { "denied" })?;
        for (i, reason) in self.reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{reason}")?;
        }
        Ok(())
    }
}
