//! The one error type of zt-chat: what an embedding server maps to its responses.

use zt_authz::{Decision, Reason};

/// The result type of zt-chat.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of every zt-chat call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such thing, or one the caller may not see (the two are not told apart).
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller may see it but not do this; the reasons are the decision's, about the caller's
    /// own permissions only.
    #[error("forbidden: {}", reasons.join(", "))]
    Forbidden {
        /// The decision's reason codes (`missing:post_message`, ...).
        reasons: Vec<String>,
    },
    /// A field of the request is unusable.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The request collides with the state (a name taken, an archived channel, a change made
    /// meanwhile).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's session is not valid (expired, revoked, unknown).
    #[error("not authenticated")]
    Unauthenticated,
    /// A dependency is out (the store, the key service): retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data is damaged, or the audit log refused the record of an action.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            message: message.into(),
        }
    }

    /// The error for a refused decision: not found when the resource is invisible to the caller,
    /// forbidden (with the reasons) otherwise.
    pub(crate) fn denied(decision: &Decision, what: &str) -> Self {
        let hidden = decision.reasons.iter().any(|r| {
            matches!(
                r,
                Reason::NotVisible | Reason::NotFound | Reason::NoTenantRole
            )
        });
        if hidden {
            Error::NotFound(what.to_owned())
        } else {
            Error::Forbidden {
                reasons: decision.codes(),
            }
        }
    }
}

impl From<zt_storage::Error> for Error {
    fn from(e: zt_storage::Error) -> Self {
        use zt_storage::ErrorKind as K;
        match e.kind() {
            K::Conflict => Error::Conflict("changed meanwhile; read again and retry".into()),
            K::InvalidInput => Error::invalid("request", e.to_string()),
            _ if e.is_temporary() => Error::Unavailable(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }
}

impl From<zt_core::Error> for Error {
    fn from(e: zt_core::Error) -> Self {
        match e {
            zt_core::Error::AuthenticationFailed => Error::Unauthenticated,
            zt_core::Error::NotFound(m) => Error::NotFound(m),
            zt_core::Error::Conflict(m) => Error::Conflict(m),
            zt_core::Error::InvalidInput(m) => Error::invalid("request", m),
            zt_core::Error::InvalidId { expected, reason } => {
                Error::invalid("id", format!("{expected}: {reason}"))
            }
            zt_core::Error::Storage(e) => e.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<zt_authz::Error> for Error {
    fn from(e: zt_authz::Error) -> Self {
        match e {
            zt_authz::Error::Refused(decision) => Error::denied(&decision, "resource"),
            zt_authz::Error::NotFound(m) => Error::NotFound(m),
            zt_authz::Error::Conflict(m) => Error::Conflict(m),
            zt_authz::Error::InvalidInput(m) => Error::invalid("request", m),
            zt_authz::Error::Escalation(path) => Error::Forbidden {
                reasons: vec![format!("escalation:{path}")],
            },
            zt_authz::Error::Storage(e) => e.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}
