//! The one error type of zt-core.

/// The result type of zt-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of zt-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Text that should be an id is not one of the expected type.
    #[error("invalid {expected} id: {reason}")]
    InvalidId {
        /// The id type that was expected, such as `UserId`.
        expected: &'static str,
        /// What is wrong with the text.
        reason: String,
    },
    /// A request is malformed (for example an audit detail that looks like a secret).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A login failed. Deliberately says nothing more: an unknown user, a wrong password, a
    /// locked or deactivated account all look alike to the caller.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// Too many sign-in attempts: from this address, at this account from here, or in all.
    /// Said alike for an account that does not exist, so it confirms none.
    #[error("too many sign-in attempts; retry in {} s", retry_after.as_secs().max(1))]
    TooManyAttempts {
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change collides with another: a name already taken, or a record changed meanwhile.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The audit sink could not record an event. The action it describes must not proceed.
    #[error("audit: {message}")]
    Audit {
        /// What could not be recorded.
        message: String,
        /// The sink's own error, kept whole.
        #[source]
        source: Option<zt_storage::BoxError>,
    },
    /// The operating system's random number generator failed, so no secret can be made.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
    /// Single sign-on was refused: the check that failed, never a token or a claim's value.
    #[error("single sign-on failed: {}", .0.code())]
    Sso(crate::identity::SsoRefusal),
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] zt_storage::Error),
}

/// What kind of failure an [`Error`] is, for callers to decide by (tests assert kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed input, an id included.
    InvalidInput,
    /// A failed login (deliberately not told apart).
    AuthenticationFailed,
    /// Too many attempts; retry after the time given.
    TooManyAttempts,
    /// The thing asked for does not exist.
    NotFound,
    /// The change collides with another.
    Conflict,
    /// The audit sink refused the record; the action did not happen.
    Audit,
    /// No randomness was available.
    Randomness,
    /// Single sign-on refused, with the check that failed.
    Sso(crate::identity::SsoRefusal),
    /// The store below failed; [`Error::is_temporary`] says whether a retry may help.
    Storage(zt_storage::ErrorKind),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidId { .. } | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::AuthenticationFailed => ErrorKind::AuthenticationFailed,
            Error::TooManyAttempts { .. } => ErrorKind::TooManyAttempts,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Audit { .. } => ErrorKind::Audit,
            Error::Randomness(_) => ErrorKind::Randomness,
            Error::Sso(refusal) => ErrorKind::Sso(*refusal),
            Error::Storage(e) => ErrorKind::Storage(e.kind()),
        }
    }

    /// Whether the same call may succeed later: the store was unavailable.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Storage(e) => e.is_temporary(),
            Error::Sso(refusal) => refusal.is_temporary(),
            Error::InvalidId { .. }
            | Error::InvalidInput(_)
            | Error::AuthenticationFailed
            | Error::TooManyAttempts { .. }
            | Error::NotFound(_)
            | Error::Conflict(_)
            | Error::Audit { .. }
            | Error::Randomness(_) => false,
        }
    }

    /// The audit sink's refusal to record `message`, keeping the sink's error.
    pub fn audit(message: impl Into<String>, source: impl Into<zt_storage::BoxError>) -> Self {
        Error::Audit {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}
