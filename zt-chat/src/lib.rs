//! # zt-chat
//!
//! The chat service of zt, composed from the other crates: every call takes an authenticated
//! [`Caller`] (only a login or a valid session token makes one), is authorized through zt-authz,
//! stores through the tenant's `EncryptingStore` (each channel's records under the channel's own
//! key), and is audited where it changes who may do what.
//!
//! - [`Chat`]: the deployment's workspaces. [`Chat::bootstrap`] makes a workspace (tenant) with
//!   its first owner; tenants share nothing, and another tenant's ids are not found.
//! - [`Workspace`]: one tenant. Login and sessions, channels (public, private, direct messages;
//!   create, rename, topic, archive, delete, the directory) and messages (post, edit with
//!   history, delete to a tombstone, threads, mentions, pages both ways) and groups.
//!
//! - [`hub`]: realtime subscriptions that receive what their caller may read, decided as each
//!   event is published, ended when the session is.
//!
//! - Groups: public, private, hidden; members by source (manual here, OIDC and SCIM through
//!   [`Workspace::sync_group_member`]); subgroups; linked channels that mirror a group.
//!
//! - Files: chunked uploads and downloads under the channel's key, a size limit, and deletion to
//!   a tombstone that erases content and preview.

pub mod channels;
pub mod error;
pub mod files;
pub mod groups;
pub mod hub;
pub mod messages;
pub mod people;
pub mod store;
pub mod workspace;

pub use channels::{ChannelInfo, ChannelKind};
pub use error::{Error, Result};
pub use files::{Download, FileInfo, Upload};
pub use groups::{GroupInfo, GroupUpdate};
pub use hub::{CloseReason, Event, Subscription};
pub use messages::{Mention, Message, MessagePage, PageRequest};
pub use workspace::{Caller, Chat, ChatConfig, Deps, Workspace, WorkspaceInfo};
