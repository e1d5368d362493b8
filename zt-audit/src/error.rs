//! The one error type of zt-audit.

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
    /// The store below failed.
    #[error(transparent)]
    Storage(#[from] zt_storage::Error),
    /// A proof did not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
}
