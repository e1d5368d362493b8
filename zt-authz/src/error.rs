//! The one error type of zt-authz.

use crate::decision::Decision;

/// The result type of zt-authz.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of zt-authz. A refused authorization question is not an error but a
/// [`Decision`]; a refused *change* is [`Error::Refused`], carrying the decision that refused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cascade table has a cycle (named in order).
    #[error("cascade cycle: {0}")]
    CascadeCycle(String),
    /// A request is malformed: an unknown name, a permission in a role of the wrong scope, a
    /// subgroup cycle.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The role, channel, group or user does not exist in this tenant (or is in another).
    #[error("not found: {0}")]
    NotFound(String),
    /// The change collides with another made meanwhile; read again and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A guardrail or the escalation analysis refused the change; the decision says why.
    #[error("refused: {0}")]
    Refused(Box<Decision>),
    /// The change would open a way to escalate privilege (the path is named).
    #[error("refused: the change opens an escalation path: {0}")]
    Escalation(String),
    /// The audit sink could not record the change, so it was not made.
    #[error("audit: the change could not be recorded, so it was not made")]
    Audit(#[source] zt_core::Error),
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] zt_storage::Error),
}

impl From<zt_core::Error> for Error {
    fn from(e: zt_core::Error) -> Self {
        match e {
            zt_core::Error::Storage(e) => Error::Storage(e),
            zt_core::Error::InvalidInput(m) => Error::InvalidInput(m),
            zt_core::Error::NotFound(m) => Error::NotFound(m),
            zt_core::Error::Conflict(m) => Error::Conflict(m),
            other => Error::Audit(other),
        }
    }
}

/// What kind of failure an [`Error`] is, for callers to decide by (tests assert kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The rules themselves are inconsistent (a cascade cycle).
    Invalid,
    /// A malformed request.
    InvalidInput,
    /// No such role, channel, group or user in this tenant.
    NotFound,
    /// A change made meanwhile; read again and retry.
    Conflict,
    /// A guardrail refused the change ([`Error::Refused`], [`Error::Escalation`]).
    Refused,
    /// The change could not be recorded, so it was not made.
    Audit,
    /// The store below failed; [`Error::is_temporary`] says whether a retry may help.
    Storage(zt_storage::ErrorKind),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::CascadeCycle(_) => ErrorKind::Invalid,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Refused(_) | Error::Escalation(_) => ErrorKind::Refused,
            Error::Audit(_) => ErrorKind::Audit,
            Error::Storage(e) => ErrorKind::Storage(e.kind()),
        }
    }

    /// Whether the same call may succeed later: the store (or the audit log's store) was
    /// unavailable.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Storage(e) => e.is_temporary(),
            Error::Audit(e) => e.is_temporary(),
            Error::CascadeCycle(_)
            | Error::InvalidInput(_)
            | Error::NotFound(_)
            | Error::Conflict(_)
            | Error::Refused(_)
            | Error::Escalation(_) => false,
        }
    }
}
