//! # zt-chat
//!
//! The chat service of zt, composed from the other crates: every call takes an authenticated
//! [`Caller`] (only a login or a valid session token makes one), is authorized through zt-authz,
//! stores through the tenant's `EncryptingStore` (each channel's records under the channel's own
//! key, each tenant in namespaces of its own), and is audited where it changes who may do what.
//!
//! - [`Chat`]: the deployment's workspaces. [`Chat::bootstrap`] makes a workspace (tenant) with
//!   its first owner; workspaces share nothing, and another workspace's ids are not found.
//! - [`Workspace`]: one tenant, and the only door to it: it hands out no raw handle (see
//!   [`admin`] for the doors that stay closed).
//!   - Login and sessions, and users under `manage_users` ([`people`]).
//!   - The admin areas, each behind its own permission: authorize, record, apply ([`admin`]).
//!   - Channels: public, private and direct; create, rename, topic, archive, delete, the
//!     directory ([`channels`]).
//!   - Groups: public, private and hidden; members by source (manual here, OIDC and SCIM
//!     through [`Workspace::sync_group_member`]); subgroups; linked channels that mirror a group
//!     ([`groups`]).
//!   - Messages: post, edit with history, delete to a tombstone, threads, mentions, pages both
//!     ways ([`messages`]).
//!   - Files: chunked uploads and downloads, a size limit, deletion to a tombstone ([`files`]).
//!   - Retention of messages and files per workspace and channel, run on a schedule or on
//!     demand, resumable, recorded as a manifest ([`retention`]); legal holds on custodians,
//!     channels and the audit logs, which retention and channel deletion respect ([`holds`]);
//!     releasing one takes a second administrator's approval ([`approvals`]).
//! - [`hub`]: realtime subscriptions that receive what their caller may read, decided as each
//!   event is published, and that end when the session does.
//! - [`Deps`]: what a deployment gives it, assembled in one place; with the `testing` feature,
//!   `testing::World` is a whole deployment in memory.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use secrecy::SecretString;
//! use zt_authz::ChannelVisibility;
//! use zt_chat::{Chat, ChatConfig, Deps, PageRequest};
//! use zt_core::identity::{NewUser, PasswordConfig};
//! use zt_crypto::Kms as _;
//! use zt_storage::MemoryStore;
//!
//! // The deployment: a store, a KMS (an HSM or `LocalKms` in production) and its key, the audit
//! // ports (a deployment's zt_audit AuditTrail), a bus and a clock.
//! let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
//! let key = zt_crypto::KeyId::new("tenants")?;
//! kms.create_key(&key).await?;
//! let deps = Deps::new(
//!     Arc::new(MemoryStore::new()),
//!     kms,
//!     key,
//!     Arc::new(zt_core::testing::NullSink),
//!     Arc::new(zt_core::testing::NullSink),
//!     Arc::new(zt_core::InProcessBus::default()),
//!     Arc::new(zt_core::SystemClock),
//! )?;
//! # let password_config = PasswordConfig { m_cost_kib: 64, t_cost: 1, allow_weak: true, ..Default::default() };
//! let chat = Chat::new(deps, ChatConfig { password: password_config, ..Default::default() })?;
//!
//! let owner = NewUser { username: "ada".into(), email: None, display_name: "Ada".into() };
//! let password = SecretString::from("violet kettle rides at dawn");
//! let (workspace, _) = chat.bootstrap("Acme", owner, &password).await?;
//! let (_token, ada) = workspace.login("ada", &password, None).await?;
//! let room = workspace.create_channel(&ada, "general", ChannelVisibility::Public, "").await?;
//! workspace.post(&ada, room.id, "hello", None, &[]).await?;
//! let page = workspace.messages(&ada, room.id, PageRequest::Latest { limit: 10 }).await?;
//! assert_eq!(page.messages[0].body, "hello");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod admin;
pub mod approvals;
pub mod backups;
pub mod channels;
pub mod erasure;
pub mod error;
pub mod files;
pub mod groups;
pub mod holds;
pub mod housekeeping;
pub mod hub;
pub mod integrity;
pub mod messages;
pub mod names;
pub mod people;
pub mod retention;
pub mod scim;
pub mod source;
pub mod sso;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod updates;
pub mod wipe;
pub mod workspace;

pub use admin::{AdminArea, AuditLogsRetention, RoleSummary};
pub use approvals::{Approvable, Approval, Approved};
pub use backups::{
    BackupInfo, BackupKeys, BackupSchedule, BackupSettings, Backups, RecoveryStatus, Restored,
    restore_archive,
};
pub use channels::{ChannelInfo, ChannelKind, ChannelUpdate};
pub use erasure::{AuthoredContent, UserDeletion};
pub use error::{Error, ErrorKind, Result};
pub use files::{Download, FileInfo, Upload};
pub use groups::{GroupInfo, GroupUpdate};
pub use holds::{HoldScope, LegalHold};
pub use housekeeping::{StorageCleanUp, StorageUse, Usage};
pub use hub::{CloseReason, Event, Subscription};
pub use messages::{Mention, Message, MessagePage, PageRequest};
pub use people::ProfileUpdate;
pub use retention::{
    RetentionConfig, RetentionPolicy, RetentionReport, RetentionSettings, RetentionTarget,
};
pub use scim::{ScimCaller, ScimMethod, ScimRate, ScimRequest, ScimResponse};
pub use sso::DeviceSignIn;
pub use wipe::{WipePhase, WipeSchedule};
pub use workspace::{
    Caller, Chat, ChatConfig, Deps, LAYOUT, SYSTEM_TENANT, Workspace, WorkspaceInfo,
};
