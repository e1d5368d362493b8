//! The one error type of zt-core.

/// The result type of zt-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of zt-core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}
