//! The one error type of zt-storage.

use std::fmt;

use crate::Version;

/// A boxed error from a backend library, kept out of public signatures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of zt-storage.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is. Tests and callers match on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value that the caller required is not stored.
    NotFound,
    /// A precondition of a batch did not hold; nothing was written.
    Conflict,
    /// The request itself is malformed (namespace, key or value size, batch shape).
    InvalidInput,
    /// Stored data or the database files are damaged or of an unknown format.
    Corrupt,
    /// The backend cannot be reached or is busy right now; a retry may succeed.
    Unavailable,
    /// The store was closed by its owner.
    Closed,
    /// The value was encrypted under a key that has been destroyed (crypto-shredding): it is gone.
    KeyDestroyed,
    /// Any other failure of the backend library or the operating system.
    Backend,
}

/// Which precondition of a batch failed, and what was found instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictDetail {
    /// The namespace of the key whose precondition failed.
    pub namespace: String,
    /// The key whose precondition failed.
    pub key: Vec<u8>,
    /// What the batch required.
    pub expected: crate::Precondition,
    /// The key's version when the batch was checked; `None` when the key was absent.
    pub found: Option<Version>,
}

impl fmt::Display for ConflictDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}: required ", self.namespace, DisplayKey(&self.key))?;
        match self.expected {
            crate::Precondition::Absent => f.write_str("absent")?,
            crate::Precondition::Version(v) => write!(f, "version {v}")?,
        }
        match self.found {
            None => f.write_str(", found absent"),
            Some(v) => write!(f, ", found version {v}"),
        }
    }
}

/// Prints a key as text where it is printable ASCII and as `\xNN` escapes elsewhere.
pub(crate) struct DisplayKey<'a>(pub(crate) &'a [u8]);

impl fmt::Display for DisplayKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Long keys are cut so an error message stays one readable line.
        const SHOWN: usize = 64;
        for &b in self.0.iter().take(SHOWN) {
            if b.is_ascii_graphic() && b != b'\\' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > SHOWN {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// The error of every zt-storage operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required value is not stored.
    #[error("not found: {0}")]
    NotFound(String),
    /// A precondition of a batch failed; nothing of the batch was written.
    #[error("precondition failed on {0}")]
    Conflict(Box<ConflictDetail>),
    /// The request is malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Stored data or database files are damaged or of an unknown format.
    #[error("corrupt store: {message}")]
    Corrupt {
        /// What is damaged.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend is unreachable or busy; a retry may succeed.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// Why it is unavailable.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// The value's key was destroyed.
    #[error("the value's encryption key was destroyed: {0}")]
    KeyDestroyed(String),
    /// Any other backend failure.
    #[error("storage backend error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Closed => ErrorKind::Closed,
            Error::KeyDestroyed(_) => ErrorKind::KeyDestroyed,
            Error::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// Whether the same call may succeed if retried unchanged later.
    ///
    /// A [`Conflict`](ErrorKind::Conflict) is not temporary: the caller must read again and build a
    /// new batch.
    pub fn is_temporary(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable)
    }

    /// The conflict detail, when this is a [`Conflict`](ErrorKind::Conflict).
    pub fn conflict(&self) -> Option<&ConflictDetail> {
        match self {
            Error::Conflict(detail) => Some(detail),
            _ => None,
        }
    }

    /// Wraps a backend library's error.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A corruption error with an optional cause.
    pub fn corrupt(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Error::Corrupt {
            message: message.into(),
            source,
        }
    }

    /// An unavailability error with an optional cause.
    pub fn unavailable(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Error::Unavailable {
            message: message.into(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_key_escapes_binary_and_cuts_long_keys() {
        assert_eq!(DisplayKey(b"a\x00\xff\\").to_string(), "a\\x00\\xff\\x5c");
        let long = vec![b'k'; 100];
        assert!(DisplayKey(&long).to_string().ends_with("...(100 bytes)"));
    }

    #[test]
    fn only_unavailable_is_temporary() {
        assert!(Error::unavailable("busy", None).is_temporary());
        assert!(!Error::Closed.is_temporary());
        assert!(!Error::invalid("x").is_temporary());
        let conflict = Error::Conflict(Box::new(ConflictDetail {
            namespace: "ns".into(),
            key: b"k".to_vec(),
            expected: crate::Precondition::Absent,
            found: Some(3),
        }));
        assert!(!conflict.is_temporary());
        assert_eq!(
            conflict.to_string(),
            "precondition failed on ns/k: required absent, found version 3"
        );
    }
}
