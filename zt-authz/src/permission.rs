//! Permissions: each power its own flag, in one of four tiers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a permission applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Administration of the tenant (the admin console and what it manages).
    Tenant,
    /// What a member may do in the tenant (create channels, start direct messages, ...).
    Member,
    /// Powers inside one channel.
    Channel,
    /// Powers over one group.
    Group,
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident = ($text:literal, $tier:ident),)*) => {
        /// One power. The names (`manage_users`, ...) are stable: they are stored and appear in
        /// decisions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission {
            $($(#[$doc])* $name,)*
        }

        impl Permission {
            /// Every permission, in declaration (and bit) order.
            pub const ALL: &'static [Permission] = &[$(Permission::$name,)*];

            /// The stable name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Permission::$name => $text,)*
                }
            }

            /// The tier it belongs to.
            pub const fn tier(self) -> Tier {
                match self {
                    $(Permission::$name => Tier::$tier,)*
                }
            }

            /// The permission with this stable name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Permission::$name),)*
                    _ => None,
                }
            }
        }
    };
}

permissions! {
    // Tenant administration.
    /// Open the admin console. Every other tenant power implies it.
    ViewAdminConsole = ("view_admin_console", Tenant),
    /// Create, change, deactivate and delete users (never one more privileged than oneself).
    ManageUsers = ("manage_users", Tenant),
    /// Define roles and assign them.
    ManageRoles = ("manage_roles", Tenant),
    /// Password policy, lockout, session policy, SSO and SCIM settings.
    ManageAuthentication = ("manage_authentication", Tenant),
    /// General server settings.
    ManageServerSettings = ("manage_server_settings", Tenant),
    /// Retention, legal hold, export and deletion policy.
    ManagePrivacyAndData = ("manage_privacy_and_data", Tenant),
    /// Backups and restores.
    ManageBackups = ("manage_backups", Tenant),
    /// Keys, KMS and rotation.
    ManageEncryption = ("manage_encryption", Tenant),
    /// Read and export the audit logs.
    ViewAuditLogs = ("view_audit_logs", Tenant),
    /// The embeddable web chat.
    ManageWebChat = ("manage_web_chat", Tenant),
    /// Usage statistics.
    ViewAnalytics = ("view_analytics", Tenant),
    /// Server updates.
    ManageUpdates = ("manage_updates", Tenant),
    /// The channel directory: which public channels are listed and how.
    ManageChannelDirectory = ("manage_channel_directory", Tenant),
    /// File storage quotas and clean-up.
    ManageStorageData = ("manage_storage_data", Tenant),
    // Member powers.
    /// Create public channels.
    CreatePublicChannel = ("create_public_channel", Member),
    /// Create private channels.
    CreatePrivateChannel = ("create_private_channel", Member),
    /// Create groups.
    CreateGroup = ("create_group", Member),
    /// Start direct messages.
    StartDirectMessage = ("start_direct_message", Member),
    /// See and read the public channels one is not a member of (guests do not).
    BrowsePublicChannels = ("browse_public_channels", Member),
    /// See the tenant's member directory.
    ViewMemberDirectory = ("view_member_directory", Member),
    // Channel powers.
    /// Read the channel's messages.
    ReadChannel = ("read_channel", Channel),
    /// Post messages.
    PostMessage = ("post_message", Channel),
    /// Edit one's own messages.
    EditOwnMessage = ("edit_own_message", Channel),
    /// Delete one's own messages.
    DeleteOwnMessage = ("delete_own_message", Channel),
    /// Delete anyone's messages (moderation).
    DeleteAnyMessage = ("delete_any_message", Channel),
    /// Add and remove members.
    ManageSubscribers = ("manage_subscribers", Channel),
    /// Change the channel's name, topic and settings.
    EditChannel = ("edit_channel", Channel),
    /// Archive the channel.
    ArchiveChannel = ("archive_channel", Channel),
    /// Delete the channel.
    DeleteChannel = ("delete_channel", Channel),
    /// Assign channel roles.
    ManageChannelRoles = ("manage_channel_roles", Channel),
    // Group powers.
    /// Add and remove members.
    ManageGroupMembers = ("manage_group_members", Group),
    /// Attach and detach subgroups (whose members become the group's).
    ManageSubgroups = ("manage_subgroups", Group),
    /// Link channels to the group (their membership then mirrors it).
    ManageLinkedChannels = ("manage_linked_channels", Group),
    /// Who may mention the group.
    ManageMentionRestrictions = ("manage_mention_restrictions", Group),
    /// See hidden groups (in a tenant role: all of them; in a group role: that group).
    ViewHiddenGroups = ("view_hidden_groups", Group),
}

/// The number of permissions.
pub const COUNT: usize = Permission::ALL.len();
const _: () = assert!(COUNT <= 64, "a PermissionSet is one u64");

impl Permission {
    const fn bit(self) -> u64 {
        1 << (self as u8)
    }

    /// The permission with this bit index.
    pub fn from_index(index: usize) -> Option<Self> {
        Permission::ALL.get(index).copied()
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Permission::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown permission {name:?}")))
    }
}

/// A set of permissions: one bit each.
///
/// ```
/// use zt_authz::{Permission, PermissionSet};
///
/// let set = PermissionSet::from([Permission::ReadChannel, Permission::PostMessage]);
/// assert!(set.contains(Permission::PostMessage));
/// assert!(!set.contains(Permission::DeleteChannel));
/// assert_eq!(set.len(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// No permission.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Every permission.
    pub const fn all() -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < COUNT {
            bits |= 1 << i;
            i += 1;
        }
        PermissionSet(bits)
    }

    /// The permissions of one tier.
    pub fn tier(tier: Tier) -> Self {
        Permission::ALL
            .iter()
            .filter(|p| p.tier() == tier)
            .copied()
            .collect()
    }

    /// The raw bits (bit `i` is `Permission::ALL[i]`).
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether `permission` is in the set.
    #[inline]
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Whether every permission of `other` is in the set.
    pub const fn contains_all(self, other: PermissionSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Adds `permission`.
    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    /// The union.
    #[must_use]
    pub const fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    /// The intersection.
    #[must_use]
    pub const fn intersection(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 & other.0)
    }

    /// The permissions of `self` not in `other`.
    #[must_use]
    pub const fn difference(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many permissions it holds.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The permissions, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

impl<const N: usize> From<[Permission; N]> for PermissionSet {
    fn from(permissions: [Permission; N]) -> Self {
        permissions.into_iter().collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Permission::name))
            .finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_follow_the_declaration() {
        for (i, p) in Permission::ALL.iter().enumerate() {
            assert_eq!(Permission::from_name(p.name()), Some(*p));
            assert_eq!(*p as usize, i);
            assert_eq!(Permission::from_index(i), Some(*p));
        }
        assert_eq!(PermissionSet::all().len(), COUNT);
        let tiers: usize = [Tier::Tenant, Tier::Member, Tier::Channel, Tier::Group]
            .into_iter()
            .map(|t| PermissionSet::tier(t).len())
            .sum();
        assert_eq!(tiers, COUNT);
        assert!(Permission::from_name("root").is_none());
    }
}
