//! # zt-audit
//!
//! The tamper-evident audit log of zt: every security and compliance event, in an append-only
//! Merkle tree that anyone holding a checkpoint can verify, that survives retention pruning, and
//! that group-commits concurrent appends.
//!
//! - [`trail`]: [`trail::AuditTrail`], the `zt_core::AuditSink` of a deployment. Per tenant a
//!   security log (always on) and a compliance log (where enabled; otherwise compliance-only events
//!   are counted), fed by the central classification in zt-core. Checkpoints every N entries,
//!   every T seconds and on demand; reads, exports and failed verifications are recorded.
//! - [`log`]: [`log::AuditLog`], one log over `zt_storage::KvStore`: group commit under a linear
//!   head (several processes may share a store), inclusion and consistency proofs from storage,
//!   signed checkpoints, legal hold, and pruning that keeps every later proof and every earlier
//!   checkpoint verifiable.
//! - [`verify`]: the independent verifier of a stored log (first bad index, truncation and
//!   rollback against a held checkpoint) and [`verify::CheckpointTracker`] for clients.
//! - [`keyring`]: the keyring's events (KMS outage and recovery, destroyed keys) as audit events.
//! - [`entry`]: the canonical encoding of an audit event, the bytes the tree hashes.
//! - [`merkle`]: RFC 6962 / RFC 9162 hashing and proofs, checked against the transparency-dev
//!   vectors and the RFC 6962 known answers; [`layout`]: the stored records.
//! - [`checkpoint`]: signed tree heads in the C2SP tlog-checkpoint and signed-note formats, with
//!   Ed25519, checked against the independent `signed_note` crate.
//!
//! docs/audit-format.md describes every format.

pub mod checkpoint;
pub mod entry;
mod error;
pub mod keyring;
pub mod layout;
pub mod log;
pub mod merkle;
pub mod trail;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
