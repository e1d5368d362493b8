//! The one error type of zt-audit, with a kind for callers to decide by and whether a retry may
//! help.

use std::sync::Arc;

use crate::merkle::ProofError;

/// The result type of zt-audit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of zt-audit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A checkpoint or signed note is malformed.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// Bytes are not a canonical audit entry.
    #[error("malformed audit entry: {0}")]
    MalformedEntry(String),
    /// A name, origin or other input is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No signature by the expected key verifies.
    #[error("no valid signature by {0}")]
    BadSignature(String),
    /// Stored log data is missing or damaged.
    #[error("corrupt log: {0}")]
    Corrupt(String),
    /// What was asked for lies below the prune point: entries there are gone, and only signed
    /// checkpoint sizes keep consistency proofs.
    #[error("pruned: entries below {below} were removed by retention")]
    Pruned {
        /// The first index that was kept.
        below: u64,
    },
    /// A checkpoint smaller than the one already held: the log was rolled back.
    #[error("rollback: a checkpoint at size {offered} is older than the one held at {held}")]
    Rollback {
        /// The size held.
        held: u64,
        /// The size offered.
        offered: u64,
    },
    /// A legal hold forbids pruning.
    #[error("a legal hold is set: the log cannot be pruned")]
    LegalHold,
    /// What was asked for lies beyond the end of the log: an index, a range or a prune point past
    /// its size. The caller's mistake, not a broken proof.
    #[error("beyond the log: {asked} is past its size {size}")]
    OutOfRange {
        /// The index or size asked for.
        asked: u64,
        /// The log's size.
        size: u64,
    },
    /// The group commit this append was part of failed: the leader's error, shared by every
    /// appender of the group (its kind is the leader's).
    #[error("the group commit failed: {0}")]
    GroupCommit(#[source] Arc<Error>),
    /// The store below failed.
    #[error(transparent)]
    Storage(#[from] zt_storage::Error),
    /// A proof did not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// What kind of failure an [`Error`] is, for callers to decide by (tests assert kinds, never
/// messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed (a name, an origin, an entry too large).
    InvalidInput,
    /// Stored or presented data does not parse or does not hold together: a malformed entry or
    /// checkpoint, a bad signature, a damaged log, a proof that fails.
    Corrupt,
    /// A checkpoint older than the one held: the log was rolled back.
    Rollback,
    /// Below the prune point: those entries are gone.
    Pruned,
    /// Past the end of the log.
    OutOfRange,
    /// A legal hold forbids the change.
    LegalHold,
    /// The store below failed; [`Error::is_temporary`] says whether a retry may help.
    Storage(zt_storage::ErrorKind),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::MalformedCheckpoint(_)
            | Error::MalformedEntry(_)
            | Error::BadSignature(_)
            | Error::Corrupt(_)
            | Error::Proof(_) => ErrorKind::Corrupt,
            Error::Rollback { .. } => ErrorKind::Rollback,
            Error::Pruned { .. } => ErrorKind::Pruned,
            Error::OutOfRange { .. } => ErrorKind::OutOfRange,
            Error::LegalHold => ErrorKind::LegalHold,
            Error::Storage(e) => ErrorKind::Storage(e.kind()),
            Error::GroupCommit(leader) => leader.kind(),
        }
    }

    /// Whether the same call may succeed later (the store was unavailable); never for damage or
    /// a refusal.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Storage(e) => e.is_temporary(),
            Error::GroupCommit(leader) => leader.is_temporary(),
            Error::InvalidInput(_)
            | Error::MalformedCheckpoint(_)
            | Error::MalformedEntry(_)
            | Error::BadSignature(_)
            | Error::Corrupt(_)
            | Error::Pruned { .. }
            | Error::Rollback { .. }
            | Error::LegalHold
            | Error::OutOfRange { .. }
            | Error::Proof(_) => false,
        }
    }
}
