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
    #[error("audit: {0}")]
    Audit(String),
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] zt_storage::Error),
}

impl From<zt_core::Error> for Error {
    fn from(e: zt_core::Error) -> Self {
        match e {
            zt_core::Error::Storage(e) => Error::Storage(e),
            zt_core::Error::InvalidInput(m) => Error::InvalidInput(m),
            other => Error::Audit(other.to_string()),
        }
    }
}
