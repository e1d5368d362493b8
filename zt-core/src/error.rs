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
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change collides with another: a name already taken, or a record changed meanwhile.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The audit sink could not record an event. The action it describes must not proceed.
    #[error("audit: {0}")]
    Audit(String),
    /// The operating system's random number generator failed, so no secret can be made.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] zt_storage::Error),
}
