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
    /// The caller's session is not valid (expired, revoked, unknown), or a sign-in failed.
    #[error("not authenticated")]
    Unauthenticated,
    /// Too many attempts (sign-in limits, a lockout): retry after the time given. Said alike for
    /// accounts that do not exist.
    #[error("too many attempts; retry in {} s", retry_after.as_secs().max(1))]
    TooManyAttempts {
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// A dependency is out (the store, the key service): retry later.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What was unavailable.
        message: String,
        /// The dependency's own error.
        #[source]
        source: Option<zt_storage::BoxError>,
    },
    /// Single sign-on was refused: the check that failed (never a token or a claim).
    #[error("single sign-on failed: {0}")]
    SsoRefused(zt_core::identity::SsoRefusal),
    /// A backup or archive does not verify: a part altered, reordered, dropped or cut short, or
    /// signed by another key. The message names what.
    #[error("does not verify: {0}")]
    Tampered(String),
    /// Stored data is damaged, or the audit log refused the record of an action.
    #[error("internal: {message}")]
    Internal {
        /// What failed.
        message: String,
        /// The lower error, kept whole.
        #[source]
        source: Option<zt_storage::BoxError>,
    },
}

/// What kind of failure an [`Error`] is: what an embedding server maps its answers from, and
/// what tests assert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No such thing, or one the caller may not see.
    NotFound,
    /// The caller may see it but not do this.
    Forbidden,
    /// A field of the request is unusable.
    InvalidInput,
    /// The request collides with the state.
    Conflict,
    /// The caller's session is not valid.
    Unauthenticated,
    /// Too many attempts; wait.
    TooManyAttempts,
    /// A dependency is out; a retry may help.
    Unavailable,
    /// A backup or archive does not verify.
    Tampered,
    /// Damage, or a record that could not be written.
    Internal,
    /// Single sign-on refused, with the check that failed.
    SsoRefused(zt_core::identity::SsoRefusal),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Unauthenticated => ErrorKind::Unauthenticated,
            Error::TooManyAttempts { .. } => ErrorKind::TooManyAttempts,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Tampered(_) => ErrorKind::Tampered,
            Error::Internal { .. } => ErrorKind::Internal,
            Error::SsoRefused(r) => ErrorKind::SsoRefused(*r),
        }
    }

    /// Whether the same call may succeed later (a dependency was out).
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::SsoRefused(r) => r.is_temporary(),
            _ => self.kind() == ErrorKind::Unavailable,
        }
    }

    /// An internal failure described by `message`, keeping `source` whole.
    pub(crate) fn internal(
        message: impl Into<String>,
        source: impl Into<zt_storage::BoxError>,
    ) -> Self {
        Error::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A damaged record, with nothing below to keep.
    pub(crate) fn damaged(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
            source: None,
        }
    }

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
            _ if e.is_temporary() => Error::Unavailable {
                message: "the store".into(),
                source: Some(Box::new(e)),
            },
            _ => Error::internal("the store", e),
        }
    }
}

impl From<zt_core::Error> for Error {
    fn from(e: zt_core::Error) -> Self {
        match e {
            zt_core::Error::AuthenticationFailed => Error::Unauthenticated,
            zt_core::Error::TooManyAttempts { retry_after } => {
                Error::TooManyAttempts { retry_after }
            }
            zt_core::Error::NotFound(m) => Error::NotFound(m),
            zt_core::Error::Conflict(m) => Error::Conflict(m),
            zt_core::Error::InvalidInput(m) => Error::invalid("request", m),
            zt_core::Error::InvalidId { expected, reason } => {
                Error::invalid("id", format!("{expected}: {reason}"))
            }
            zt_core::Error::Storage(e) => e.into(),
            zt_core::Error::Sso(refusal) => Error::SsoRefused(refusal),
            other if other.is_temporary() => Error::Unavailable {
                message: "identity or audit".into(),
                source: Some(Box::new(other)),
            },
            other => Error::internal("identity or audit", other),
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
            other if other.is_temporary() => Error::Unavailable {
                message: "authorization".into(),
                source: Some(Box::new(other)),
            },
            other => Error::internal("authorization", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn lower_errors_keep_their_kind_and_stay_whole_as_the_source() {
        let out = Error::from(zt_storage::Error::unavailable("a stalled disk", None));
        assert_eq!(out.kind(), ErrorKind::Unavailable);
        assert!(out.is_temporary());
        let source = out
            .source()
            .and_then(|s| s.downcast_ref::<zt_storage::Error>());
        assert_eq!(
            source.map(zt_storage::Error::kind),
            Some(zt_storage::ErrorKind::Unavailable)
        );

        let damaged = Error::from(zt_storage::Error::corrupt("a torn page", None));
        assert_eq!(damaged.kind(), ErrorKind::Internal);
        assert!(!damaged.is_temporary());
        assert!(damaged.source().is_some());

        let refused = Error::from(zt_core::Error::audit(
            "a login",
            zt_storage::Error::corrupt("the log is damaged", None),
        ));
        assert_eq!(refused.kind(), ErrorKind::Internal);
        let source = refused
            .source()
            .and_then(|s| s.downcast_ref::<zt_core::Error>());
        assert_eq!(
            source.map(zt_core::Error::kind),
            Some(zt_core::ErrorKind::Audit)
        );

        // An audit record that could not be written because the log's store is out: a retry may
        // help, through every layer.
        let stalled = zt_authz::Error::Audit(zt_core::Error::Storage(
            zt_storage::Error::unavailable("a stalled disk", None),
        ));
        assert_eq!(stalled.kind(), zt_authz::ErrorKind::Audit);
        assert!(stalled.is_temporary());
        assert_eq!(Error::from(stalled).kind(), ErrorKind::Unavailable);

        let conflict = Error::from(zt_core::Error::Conflict("taken".into()));
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
        assert_eq!(Error::Unauthenticated.kind(), ErrorKind::Unauthenticated);
    }
}
