//! The `AuditLogs` port: reading, verifying, holding and pruning the audit logs that an
//! [`AuditSink`](crate::AuditSink) writes. zt-audit implements it; zt-chat's admin areas reach
//! the logs only through it, so the chat service never depends on the log's implementation.

use async_trait::async_trait;

use crate::audit::{Actor, AuditEvent};
use crate::error::Result;
use crate::ids::TenantId;

/// Which of a tenant's two audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditLogKind {
    /// Attacks, authentication, authorization, key outages, privilege changes. Always on.
    Security,
    /// Data lifecycle and its access, privilege changes.
    Compliance,
}

impl AuditLogKind {
    /// `security` or `compliance`.
    pub fn name(self) -> &'static str {
        match self {
            AuditLogKind::Security => "security",
            AuditLogKind::Compliance => "compliance",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "security" => Some(AuditLogKind::Security),
            "compliance" => Some(AuditLogKind::Compliance),
            _ => None,
        }
    }
}

/// One audit log: a tenant's (or, with `None`, the deployment's) log of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditLogId {
    /// The tenant, or `None` for deployment-wide events.
    pub tenant: Option<TenantId>,
    /// Which of its logs.
    pub kind: AuditLogKind,
}

/// Which events of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditRange {
    /// The newest `limit` events.
    Newest {
        /// How many.
        limit: u64,
    },
    /// Up to `limit` events from index `from` on.
    From {
        /// The first index.
        from: u64,
        /// How many at most.
        limit: u64,
    },
}

/// A page of an audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLogPage {
    /// How many entries the log ever had (its tree size when read).
    pub size: u64,
    /// The first index the log still holds; those below were pruned.
    pub pruned_below: u64,
    /// The events, oldest first, each with its index.
    pub events: Vec<(u64, AuditEvent)>,
    /// The newest checkpoint signed over the log (a C2SP signed note), if any was signed yet.
    pub checkpoint: Option<String>,
}

/// What a verification of one log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLogVerdict {
    /// Every entry, proof and checkpoint holds.
    Valid {
        /// The size verified.
        size: u64,
    },
    /// The first problem found.
    Invalid {
        /// What is wrong, and where.
        finding: String,
    },
}

/// What retention left of one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    /// How many entries the log ever had.
    pub size: u64,
    /// The first index it still holds.
    pub pruned_below: u64,
    /// Whether a legal hold is placed, which refuses pruning.
    pub legal_hold: bool,
}

/// Reading, verifying, holding and pruning audit logs.
///
/// # Contract
/// - `read` records the read (`audit.read`, with the range) before it returns anything, and
///   reads only the entries it returns, never the whole log.
/// - `verify` checks the log with the implementation's checkpoint key; a failed verification is
///   itself recorded (`audit.verification_failed`).
/// - `set_legal_hold` applies to both logs of the tenant and is recorded
///   (`legal_hold.placed` / `legal_hold.released`).
/// - `prune` is recorded (`retention.cleanup`) before it removes anything, so the record
///   survives; under a legal hold it is recorded as denied and refused with
///   [`Error::Conflict`](crate::Error::Conflict).
///
/// # Errors
/// [`Error::InvalidInput`](crate::Error::InvalidInput) for a range or prune point outside the
/// log; [`Error::Conflict`](crate::Error::Conflict) for pruning under a legal hold;
/// [`Error::Audit`](crate::Error::Audit) when the record of the access cannot be written (then
/// nothing is returned or changed); the store's errors.
#[async_trait]
pub trait AuditLogs: Send + Sync + 'static {
    /// The events of `log` in `range`, read by `reader`.
    async fn read(
        &self,
        reader: &Actor,
        log: AuditLogId,
        range: AuditRange,
    ) -> Result<AuditLogPage>;

    /// Verifies `log`, for `verifier`.
    async fn verify(&self, verifier: &Actor, log: AuditLogId) -> Result<AuditLogVerdict>;

    /// What retention left of `log`.
    async fn retention(&self, log: AuditLogId) -> Result<AuditRetention>;

    /// Places (`true`) or releases a legal hold on both logs of `tenant`, by `actor`.
    async fn set_legal_hold(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        hold: bool,
    ) -> Result<()>;

    /// Removes the entries of `log` below `below`, keeping later proofs verifiable, by `actor`.
    async fn prune(&self, actor: &Actor, log: AuditLogId, below: u64) -> Result<()>;

    /// Signs a checkpoint of `log` over every entry it holds now and returns it (a C2SP signed
    /// note), such as the final one of a workspace about to be wiped.
    async fn checkpoint(&self, log: AuditLogId) -> Result<String>;
}
