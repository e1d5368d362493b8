//! The one error type of zt-crypto.

/// The result type of zt-crypto.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is. Callers and tests match on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A ciphertext, envelope or wrapped key did not open. Deliberately says nothing more.
    Decrypt,
    /// The request is malformed (sizes, names, formats of things the caller built).
    InvalidInput,
    /// No key with this id (or version) exists.
    KeyNotFound,
    /// The key version was retired: it no longer unwraps.
    KeyRetired,
    /// The key was destroyed (crypto-shredding): data under it is gone for good.
    KeyDestroyed,
    /// The passphrase does not open the key file.
    WrongPassphrase,
    /// Stored key material or a key file is damaged or of an unknown format.
    Corrupt,
    /// The KMS cannot be reached right now; a retry may succeed.
    Unavailable,
    /// Any other failure of a backend (HSM, file system).
    Backend,
    /// A signature did not verify.
    BadSignature,
    /// A sealed archive is damaged or was altered: a part changed, reordered, dropped, added or
    /// cut short, or its manifest signed by another key. The message names the part.
    Tampered,
}

/// The error of zt-crypto.
///
/// Decryption failures are opaque on purpose ([`ErrorKind::Decrypt`]): which check failed
/// (commitment, tag, format) goes to `tracing` at debug level, never to the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Did not decrypt.
    #[error("decryption failed")]
    Decrypt,
    /// Malformed request.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Unknown key or key version.
    #[error("key not found: {0}")]
    KeyNotFound(String),
    /// Retired key version.
    #[error("key version retired: {0}")]
    KeyRetired(String),
    /// Destroyed key.
    #[error("key destroyed: {0}")]
    KeyDestroyed(String),
    /// Wrong passphrase for a key file.
    #[error("the passphrase does not open {0}")]
    WrongPassphrase(String),
    /// Damaged or unknown key material.
    #[error("corrupt key material: {0}")]
    Corrupt(String),
    /// The KMS is unreachable or busy.
    #[error("KMS unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
        /// The cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A signature did not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// A sealed archive does not verify; the message says where and how.
    #[error("archive does not verify: {0}")]
    Tampered(String),
    /// Another backend failure.
    #[error("KMS backend error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Decrypt => ErrorKind::Decrypt,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::KeyNotFound(_) => ErrorKind::KeyNotFound,
            Error::KeyRetired(_) => ErrorKind::KeyRetired,
            Error::KeyDestroyed(_) => ErrorKind::KeyDestroyed,
            Error::WrongPassphrase(_) => ErrorKind::WrongPassphrase,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::BadSignature => ErrorKind::BadSignature,
            Error::Tampered(_) => ErrorKind::Tampered,
        }
    }

    /// Whether the same call may succeed if retried unchanged later.
    pub fn is_temporary(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable)
    }

    /// A backend failure with its cause.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An unavailability with an optional cause.
    pub fn unavailable(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Unavailable {
            message: message.into(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    pub(crate) fn tampered(message: impl Into<String>) -> Self {
        Error::Tampered(message.into())
    }
}
