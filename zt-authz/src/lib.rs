//! # zt-authz
//!
//! Authorization for zt: deny by default, with decisions that explain themselves.
//!
//! - **Permissions** ([`Permission`]) are single flags in four tiers: tenant administration,
//!   member powers, channel powers and group powers.
//! - **Cascades** ([`cascade::RULES`]): one declarative table ("delete channel implies archive,
//!   edit and manage subscribers"; "every admin power implies the admin console"; ...), closed
//!   once when the role graph is built, where a cycle is an error. Stored roles hold only what
//!   was granted.
//! - **Roles** ([`Role`]): the locked system roles ([`SystemRole`]: owner, admin, member,
//!   guest, auditor, channel admin, group admin) and the tenant's custom roles, each assigned at
//!   the tenant, in a channel, or over a group (whose powers then also reach its linked
//!   channels).
//! - **Segmentation** ([`Model`]): public channels are visible to members who may browse them,
//!   private channels only to their members, whoever else holds what role. Groups are public,
//!   private (members and holders of a power over the group) or hidden (only with
//!   `view_hidden_groups`). A channel linked to a group counts the group's members, subgroups
//!   included, as its own; memberships record their sources (manual, OIDC, SCIM, the linked
//!   group), and the membership lasts while any source holds it. Another tenant's resources do
//!   not exist.
//! - **Decisions** ([`Decision`]): [`Authorizer::authorize`] answers with the role, scope,
//!   membership source and cascade rule that allowed it, or what was missing. A deny is a value.
//!   [`reference::authorize`] answers the same questions the slow, obvious way; the corpus in
//!   `tests/corpus` and the property tests hold the two to the same answers.
//!
//! The rules a decision follows, for a principal of the tenant holding at least one tenant role:
//!
//! | question | allowed when |
//! |---|---|
//! | a tenant or member power on the tenant | a tenant role implies it |
//! | `manage_users` on a user | a tenant role implies it, the target is no owner unless the principal is one, and the target holds nothing the principal lacks |
//! | see a channel | a member (any source), or the channel is public and a tenant role implies `browse_public_channels` |
//! | a channel power | the channel is visible, and a tenant role implies it (for non-members: only `read_channel`), or a channel role there, or a group role over a linked group |
//! | see a group | public; private: a member (subgroups count) or any group power over it; hidden: `view_hidden_groups` over it |
//! | a group power | the group is visible and a tenant role or a group role over it implies it |
//! | mention a group | visible, and the mention policy (anyone, members, managers) lets the principal |
//!
//! Roles are tried in a fixed order (tenant roles, then channel roles, then group roles over
//! linked groups, each by id); the first that grants is the one named.
//!
//! Changes go through [`Authz`], one tenant's service over its store: [`guard`] decides who may
//! make each [`Change`] (nobody grants what they do not hold; only owners touch owner or
//! `manage_roles`; the last owner stays; settings areas are all or nothing), [`analysis`] refuses
//! a change that would open an escalation path, and every change is one conditional commit with
//! the tenant's version, audited and announced on the `EventBus`, so the next decision anywhere
//! sees it.

pub mod analysis;
pub mod authorizer;
pub mod cascade;
mod cow;
pub mod decision;
pub mod error;
pub mod guard;
pub mod model;
pub mod permission;
pub mod records;
pub mod reference;
pub mod role;
pub mod service;

pub use authorizer::Authorizer;
pub use cascade::Cascades;
pub use decision::{Action, Decision, Reason, Reasons, Resource, Scope};
pub use error::{Error, ErrorKind, Result};
pub use guard::{Change, Membership, SettingsArea};
pub use model::{
    Channel, ChannelVisibility, Group, GroupVisibility, MentionPolicy, Model, Source, Sources,
};
pub use permission::{Permission, PermissionSet, Tier};
pub use role::{Role, RoleScope, SystemRole};
pub use service::{Authz, Changer};
