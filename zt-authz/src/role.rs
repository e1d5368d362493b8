//! Roles: named permission sets with a scope. System roles are the same in every tenant and
//! locked; custom roles are the tenant's own.

use serde::{Deserialize, Serialize};
use zt_core::RoleId;

use crate::error::{Error, Result};
use crate::permission::{Permission, PermissionSet, Tier};

/// Where a role is assigned, and so where its permissions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleScope {
    /// Assigned per tenant. Any tier: tenant and member powers apply tenant-wide, channel powers
    /// in the channels one is a member of, group powers over every group one can see.
    Tenant,
    /// Assigned per channel: channel powers in that channel.
    Channel,
    /// Assigned per group: group powers over that group, and channel powers in its linked
    /// channels.
    Group,
}

impl RoleScope {
    /// The tiers a role of this scope may hold.
    pub fn allows(self, tier: Tier) -> bool {
        match self {
            RoleScope::Tenant => true,
            RoleScope::Channel => tier == Tier::Channel,
            RoleScope::Group => matches!(tier, Tier::Group | Tier::Channel),
        }
    }
}

/// The built-in roles. Their permission sets are fixed by zt and cannot be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemRole {
    /// Everything, and the only role that may grant or remove owner.
    Owner,
    /// Everything but owner matters.
    Admin,
    /// A regular member.
    Member,
    /// A guest: only the channels they are added to.
    Guest,
    /// Read-only compliance access: audit logs and analytics.
    Auditor,
    /// Every channel power, in one channel.
    ChannelAdmin,
    /// Every group power over one group, and membership and settings of its linked channels.
    GroupAdmin,
}

impl SystemRole {
    /// Every system role.
    pub const ALL: [SystemRole; 7] = [
        SystemRole::Owner,
        SystemRole::Admin,
        SystemRole::Member,
        SystemRole::Guest,
        SystemRole::Auditor,
        SystemRole::ChannelAdmin,
        SystemRole::GroupAdmin,
    ];

    /// The stable name.
    pub const fn name(self) -> &'static str {
        match self {
            SystemRole::Owner => "owner",
            SystemRole::Admin => "admin",
            SystemRole::Member => "member",
            SystemRole::Guest => "guest",
            SystemRole::Auditor => "auditor",
            SystemRole::ChannelAdmin => "channel_admin",
            SystemRole::GroupAdmin => "group_admin",
        }
    }

    /// The same id in every tenant: `rol_` and 31 zeros and the role's number.
    pub const fn id(self) -> RoleId {
        let mut bytes = [0u8; 16];
        bytes[15] = self as u8 + 1;
        RoleId::from_bytes(bytes)
    }

    /// The system role with this id.
    pub fn from_id(id: RoleId) -> Option<Self> {
        SystemRole::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Where it is assigned.
    pub const fn scope(self) -> RoleScope {
        match self {
            SystemRole::ChannelAdmin => RoleScope::Channel,
            SystemRole::GroupAdmin => RoleScope::Group,
            _ => RoleScope::Tenant,
        }
    }

    /// What it grants (before cascades).
    pub fn permissions(self) -> PermissionSet {
        use Permission as P;
        let member_writes = [
            P::ReadChannel,
            P::PostMessage,
            P::EditOwnMessage,
            P::DeleteOwnMessage,
        ];
        match self {
            SystemRole::Owner | SystemRole::Admin => PermissionSet::all(),
            SystemRole::Member => {
                PermissionSet::tier(Tier::Member).union(PermissionSet::from(member_writes))
            }
            SystemRole::Guest => PermissionSet::from(member_writes)
                .union(PermissionSet::from([P::StartDirectMessage])),
            SystemRole::Auditor => {
                PermissionSet::from([P::ViewAdminConsole, P::ViewAuditLogs, P::ViewAnalytics])
            }
            SystemRole::ChannelAdmin => PermissionSet::tier(Tier::Channel),
            SystemRole::GroupAdmin => PermissionSet::tier(Tier::Group)
                .union(PermissionSet::from([P::ManageSubscribers, P::EditChannel])),
        }
    }

    /// The role record.
    pub fn role(self) -> Role {
        Role {
            id: self.id(),
            name: self.name().to_owned(),
            scope: self.scope(),
            permissions: self.permissions(),
            system: Some(self),
        }
    }
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Its id.
    pub id: RoleId,
    /// Its name, unique in the tenant.
    pub name: String,
    /// Where it is assigned.
    pub scope: RoleScope,
    /// What it grants; cascades are applied when evaluating, never stored here.
    pub permissions: PermissionSet,
    /// Set for the built-in roles, which are locked.
    pub system: Option<SystemRole>,
}

/// The longest role name, in bytes.
pub const MAX_ROLE_NAME: usize = 64;

impl Role {
    /// Checks the name and that every permission fits the scope.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_ROLE_NAME
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(Error::InvalidInput(format!(
                "role name {:?} must be 1 to {MAX_ROLE_NAME} ASCII letters, digits, _ - .",
                self.name.chars().take(80).collect::<String>()
            )));
        }
        if let Some(p) = self
            .permissions
            .iter()
            .find(|p| !self.scope.allows(p.tier()))
        {
            return Err(Error::InvalidInput(format!(
                "a {:?} role cannot hold {p} (a {:?} power)",
                self.scope,
                p.tier()
            )));
        }
        Ok(())
    }

    /// Whether zt defines it (and it is locked).
    pub fn is_system(&self) -> bool {
        self.system.is_some()
    }
}
