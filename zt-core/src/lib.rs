//! # zt-core
//!
//! The shared vocabulary of zt:
//! - typed ids and the [`Clock`] seam;
//! - the audit-event vocabulary: [`AuditEvent`], and one classification,
//!   [`AuditEventKind::class`], that sends each kind to the security store, the compliance store
//!   or both;
//! - the [`AuditSink`] port (writing) and the [`AuditLogs`] port (reading, verifying, legal
//!   hold, pruning), and the [`EventBus`] port with [`InProcessBus`];
//! - [`identity`]: users (unique names and addresses through blinded indexes), argon2id
//!   passwords on a bounded blocking pool, progressive lockout per account and per address,
//!   password login whose failures all look and cost the same, sessions stored only as token
//!   hashes with cached validation that honours every published revocation, and the server's
//!   identity key, and an OpenID Connect relying party ([`identity::Sso`]) with sessions the
//!   provider can end.
//!
//! Still to come with a later issue: SCIM.
//!
//! ## Typed ids
//! Every entity has its own id type, so a channel id cannot be passed where a user id is expected,
//! neither in Rust nor on the wire: each id prints with a short type prefix and parses only with
//! it. Ids are UUIDv7, so they sort by creation time, which keeps time-ordered keys in
//! `zt_storage::KvStore` cheap to scan.
//!
//! ```
//! use zt_core::{ChannelId, ManualClock, Timestamp, UserId};
//!
//! let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
//! let user = UserId::generate(&clock);
//! let text = user.to_string();
//! assert!(text.starts_with("usr_"));
//! assert_eq!(text.parse::<UserId>()?, user);
//! assert!(text.parse::<ChannelId>().is_err()); // wrong type prefix
//! # Ok::<(), zt_core::Error>(())
//! ```

mod audit;
mod audit_logs;
mod bus;
mod clock;
mod error;
pub mod identity;
mod ids;
pub mod rate;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use audit::{
    Actor, AuditClass, AuditEvent, AuditEventKind, AuditReceipt, AuditSink, Detail, Outcome,
};
pub use audit_logs::{
    AuditLogId, AuditLogKind, AuditLogPage, AuditLogVerdict, AuditLogs, AuditRange, AuditRetention,
};
pub use bus::{BusEvent, Delivery, EventBus, InProcessBus, Subscription};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{Error, ErrorKind, Result};
pub use ids::{
    ApprovalId, ChannelId, FileId, GroupId, HoldId, MessageId, Principal, RoleId, SessionId,
    TenantId, UserId,
};
